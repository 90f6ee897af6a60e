//! Rate limits per source address and per client_id (issue #14 item 6). One middleware sorts
//! each request into a class (`/authorize`, the token endpoint family, the WebAuthn sign-in
//! endpoints, the admin API), checks the class's per-address limit and then its per-client
//! limit, and answers 429 with `Retry-After` in the shape the caller expects: an OAuth-style JSON
//! error, RFC 9457 problem details on the admin API, or a page on browser pages. Requests of
//! other addresses and clients carry on as normal.
//!
//! The source address is the TCP peer, or, when the peer is one of `smartcard.trusted_proxies`,
//! the right-most address in `smartcard.client_address_header` (`X-Forwarded-For` by default)
//! that is not itself a trusted proxy. IPv6 addresses
//! count per /64 (one host usually holds a whole /64). The client_id is read before the client
//! is authenticated (query, Basic header, form body, assertion `iss`, the bearer token's
//! `client_id` claim): checking the address first means one address cannot use up a client's
//! allowance beyond its own.
//!
//! The limiter is GCRA from the `governor` crate behind [`KeyedLimiter`]. The middleware also
//! sets [`crate::domain::request_origin::ORIGIN`] for the request (address and `User-Agent`), so
//! audit events record where a person acted from and unauthenticated failures can be capped per
//! source, and records the address as `client_ip` on the request's log span.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::pages::Page;
use super::params::{request_id, MAX_BODY};
use super::server::ConnInfo;
use crate::config::{Config, RateClass};
use crate::domain::request_origin::{RequestOrigin, ORIGIN};

/// A keyed rate limiter: `Err(wait)` when the key is over its limit.
pub trait KeyedLimiter<K>: Send + Sync {
    fn check(&self, key: &K) -> Result<(), Duration>;
    /// Forgets keys whose allowance is full again (bounds memory).
    fn forget_idle(&self);
}

struct Gcra<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone + Send + Sync> KeyedLimiter<K> for Gcra<K> {
    fn check(&self, key: &K) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

fn gcra<K: Hash + Eq + Clone + Send + Sync + 'static>(
    per_minute: u32,
    burst: u32,
) -> Option<Box<dyn KeyedLimiter<K>>> {
    let rate = NonZeroU32::new(per_minute)?;
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Some(Box::new(Gcra {
        limiter: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
    }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Authorize,
    Token,
    Webauthn,
    Admin,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Authorize => "authorize",
            Class::Token => "token",
            Class::Webauthn => "webauthn",
            Class::Admin => "admin",
        }
    }
}

struct ClassLimits {
    per_address: Option<Box<dyn KeyedLimiter<IpAddr>>>,
    per_client: Option<Box<dyn KeyedLimiter<String>>>,
}

impl ClassLimits {
    fn new(c: &RateClass) -> ClassLimits {
        ClassLimits {
            per_address: gcra(c.per_address_per_minute, c.per_address_burst),
            per_client: gcra(c.per_client_per_minute, c.per_client_burst),
        }
    }
}

/// Checks per class; built once from the configuration.
pub struct Limits {
    enabled: bool,
    issuer_path: String,
    trusted_proxies: crate::config::TrustedProxies,
    /// `smartcard.client_address_header`, lower case.
    address_header: String,
    classes: [ClassLimits; 4],
    checks: AtomicU64,
}

/// Every this many checks, idle keys are dropped from the limiters.
const FORGET_EVERY: u64 = 8192;

impl Limits {
    pub fn new(config: &Config) -> Arc<Limits> {
        let l = &config.limits;
        Arc::new(Limits {
            enabled: l.enabled,
            issuer_path: config.issuer_path(),
            trusted_proxies: config.smartcard.trusted_proxies.clone(),
            address_header: config.smartcard.client_address_header.to_ascii_lowercase(),
            classes: [
                ClassLimits::new(&l.authorize),
                ClassLimits::new(&l.token),
                ClassLimits::new(&l.webauthn),
                ClassLimits::new(&l.admin),
            ],
            checks: AtomicU64::new(0),
        })
    }

    fn class_limits(&self, class: Class) -> &ClassLimits {
        &self.classes[class as usize]
    }

    /// The class of a request, from its method and path.
    pub fn classify(&self, method: &Method, path: &str) -> Option<Class> {
        if path.starts_with("/admin/api/")
            || path.starts_with("/hr/api/")
            || path.starts_with("/onboarding/api/")
        {
            return Some(Class::Admin);
        }
        let path = path.strip_prefix(self.issuer_path.as_str())?;
        match (method.as_str(), path) {
            (_, "/authorize" | "/card/login") => Some(Class::Authorize),
            // Registration, the agent's calls: as many as token calls allow.
            (_, p) if p.starts_with("/connect/register") || p.starts_with("/agent/v1/") => {
                Some(Class::Token)
            }
            ("POST", "/token" | "/access_token" | "/introspect" | "/revoke" | "/token/revoke") => {
                Some(Class::Token)
            }
            (
                "POST",
                "/webauthn/authenticate/options"
                | "/webauthn/register/options"
                | "/webauthn/authenticate",
            ) => Some(Class::Webauthn),
            _ => None,
        }
    }

    /// The address a request comes from (see the module documentation).
    pub fn source(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusted_proxies.contains(peer) {
            return peer;
        }
        let mut hops: Vec<IpAddr> = Vec::new();
        for value in headers.get_all(self.address_header.as_str()) {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for part in text.split(',') {
                match part.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(canonical(ip)),
                    Err(_) => return peer,
                }
            }
        }
        hops.into_iter()
            .rev()
            .find(|ip| !self.trusted_proxies.contains(*ip))
            .unwrap_or(peer)
    }

    fn forget_idle_now_and_then(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            for c in &self.classes {
                if let Some(l) = &c.per_address {
                    l.forget_idle();
                }
                if let Some(l) = &c.per_client {
                    l.forget_idle();
                }
            }
        }
    }
}

/// IPv4-mapped IPv6 as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The middleware: sets the request's source for the audit cap, and enforces the limits.
pub async fn enforce(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    let source = request
        .extensions()
        .get::<ConnInfo>()
        .map(|c| limits.source(c.peer.ip(), request.headers()));
    let Some(source) = source else {
        return next.run(request).await;
    };
    tracing::Span::current().record("client_ip", tracing::field::display(source));
    let request = match check(&limits, source, request).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let origin = RequestOrigin::new(
        source,
        request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    );
    ORIGIN.scope(origin, next.run(request)).await
}

async fn check(limits: &Limits, source: IpAddr, request: Request) -> Result<Request, Response> {
    if !limits.enabled {
        return Ok(request);
    }
    let Some(class) = limits.classify(request.method(), request.uri().path()) else {
        return Ok(request);
    };
    limits.forget_idle_now_and_then();
    let class_limits = limits.class_limits(class);
    let shape = Shape::of(class, request.uri().path());
    if let Some(l) = &class_limits.per_address {
        if let Err(wait) = l.check(&address_key(source)) {
            return Err(refuse(class, shape, "address", wait, request.headers()));
        }
    }
    let Some(per_client) = &class_limits.per_client else {
        return Ok(request);
    };
    let (request, client_id) = client_id_of(class, request).await;
    if let Some(client_id) = client_id {
        if let Err(wait) = per_client.check(&client_id) {
            tracing::debug!(client_id = %client_id, class = class.name(), "client over its rate limit");
            return Err(refuse(class, shape, "client", wait, request.headers()));
        }
    }
    Ok(request)
}

/// How a refusal is told: what the endpoint's callers read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// OAuth-style JSON (token endpoints, WebAuthn option requests from the page's script).
    Json,
    /// RFC 9457 problem details (admin API).
    Problem,
    /// A page (a browser navigating: `/authorize`, `/card/login`, the WebAuthn form post).
    Page,
}

impl Shape {
    fn of(class: Class, path: &str) -> Shape {
        match class {
            Class::Token => Shape::Json,
            Class::Webauthn if path.ends_with("/options") => Shape::Json,
            Class::Admin => Shape::Problem,
            Class::Authorize | Class::Webauthn => Shape::Page,
        }
    }
}

fn refuse(
    class: Class,
    shape: Shape,
    key: &'static str,
    wait: Duration,
    headers: &HeaderMap,
) -> Response {
    metrics::counter!("careid_rate_limited_total", "class" => class.name(), "key" => key)
        .increment(1);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let detail = format!("too many requests; try again in {secs} s");
    let mut response = match shape {
        Shape::Json => {
            let body = serde_json::json!({
                "error": "too_many_requests",
                "error_description": detail,
            });
            (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
        }
        Shape::Problem => {
            let body = serde_json::json!({
                "type": "about:blank",
                "title": "Too Many Requests",
                "status": 429,
                "detail": detail,
            });
            let mut r = (StatusCode::TOO_MANY_REQUESTS, body.to_string()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            r
        }
        Shape::Page => Page::error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts",
            &format!("There have been too many sign-in requests from your network or for this application. Wait {secs} seconds, then go back to the application and try again."),
            &request_id(headers),
        ),
    };
    let h = response.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The client_id a request names, read without authenticating it. A form body is read (up to
/// [`MAX_BODY`]) and put back; a larger one is passed on untouched for the handler to refuse.
async fn client_id_of(class: Class, request: Request) -> (Request, Option<String>) {
    match class {
        Class::Webauthn => (request, None),
        Class::Admin => {
            let id = bearer_client_id(request.headers());
            (request, id)
        }
        Class::Authorize | Class::Token => {
            let from_query = request
                .uri()
                .query()
                .and_then(|q| form_value(q.as_bytes(), "client_id"));
            if let Some(id) = from_query {
                return (request, Some(id));
            }
            if class == Class::Token {
                if let Some(id) = basic_client_id(request.headers()) {
                    return (request, Some(id));
                }
            }
            let is_form = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.to_ascii_lowercase()
                        .starts_with("application/x-www-form-urlencoded")
                });
            if request.method() != Method::POST || !is_form {
                return (request, None);
            }
            let (parts, body) = request.into_parts();
            let (body, bytes) = buffer(body).await;
            let id = bytes.and_then(|b| {
                form_value(&b, "client_id").or_else(|| {
                    form_value(&b, "client_assertion").and_then(|a| jwt_claim(&a, "iss"))
                })
            });
            (Request::from_parts(parts, body), id)
        }
    }
}

/// Reads a body up to `MAX_BODY` bytes. Returns a body equal to the one read (the bytes read,
/// then whatever followed) and, when it fitted, its bytes.
async fn buffer(body: Body) -> (Body, Option<Bytes>) {
    let mut stream = body.into_data_stream();
    let mut read = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                read.extend_from_slice(&chunk);
                if read.len() > MAX_BODY {
                    let head = futures::stream::once(async move { Ok(Bytes::from(read)) });
                    return (Body::from_stream(head.chain(stream)), None);
                }
            }
            Err(e) => {
                let items: Vec<Result<Bytes, axum::Error>> = vec![Ok(Bytes::from(read)), Err(e)];
                return (Body::from_stream(futures::stream::iter(items)), None);
            }
        }
    }
    let bytes = Bytes::from(read);
    (Body::from(bytes.clone()), Some(bytes))
}

fn form_value(form: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(form)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = value
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("basic "))
        .map(|_| &value[6..])?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, _) = text.split_once(':')?;
    form_value(format!("x={id}").as_bytes(), "x")
}

fn bearer_client_id(headers: &HeaderMap) -> Option<String> {
    jwt_claim(super::params::bearer(headers)?, "client_id")
}

/// A string claim of a JWT's payload, unverified (only to choose a rate-limit key).
fn jwt_claim(jwt: &str, name: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get(name)?
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(toml_proxies: Vec<IpAddr>, path: &str) -> Arc<Limits> {
        let mut c = Config {
            issuer: format!("https://idp.example.org{path}"),
            ..Config::default()
        };
        c.smartcard.trusted_proxies = toml_proxies.into();
        Limits::new(&c)
    }

    #[test]
    fn classes_follow_the_issuer_path_and_aliases() {
        let l = limits(vec![], "/realms/x");
        let post = Method::POST;
        assert_eq!(
            l.classify(&Method::GET, "/realms/x/authorize"),
            Some(Class::Authorize)
        );
        assert_eq!(
            l.classify(&post, "/realms/x/access_token"),
            Some(Class::Token)
        );
        assert_eq!(l.classify(&post, "/token"), None, "outside the issuer path");
        assert_eq!(
            l.classify(&post, "/realms/x/webauthn/register/options"),
            Some(Class::Webauthn)
        );
        assert_eq!(
            l.classify(&Method::GET, "/admin/api/v1/identities"),
            Some(Class::Admin)
        );
        assert_eq!(l.classify(&Method::GET, "/realms/x/jwks"), None);
    }

    #[test]
    fn forwarded_address_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let l = limits(vec![proxy], "");
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 192.0.2.7, 10.0.0.1"),
        );
        assert_eq!(l.source(proxy, &h), "192.0.2.7".parse::<IpAddr>().unwrap());
        let stranger: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(l.source(stranger, &h), stranger, "spoofed header ignored");
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(l.source(proxy, &h), proxy);
    }

    #[test]
    fn the_address_header_is_the_configured_one() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut c = Config::default();
        c.smartcard.trusted_proxies = vec![proxy].into();
        c.smartcard.client_address_header = "X-Real-IP".into();
        let l = Limits::new(&c);
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
        assert_eq!(
            l.source(proxy, &h),
            proxy,
            "X-Forwarded-For is not read then"
        );
        h.insert("x-real-ip", HeaderValue::from_static("192.0.2.8"));
        assert_eq!(l.source(proxy, &h), "192.0.2.8".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(canonical(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn limiter_refuses_beyond_the_burst_with_a_wait() {
        let l = gcra::<String>(60, 2).unwrap();
        let k = "a".to_string();
        assert!(l.check(&k).is_ok());
        assert!(l.check(&k).is_ok());
        let wait = l.check(&k).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(l.check(&"b".to_string()).is_ok(), "other keys unaffected");
        assert!(gcra::<String>(0, 5).is_none(), "rate 0 is no limit");
    }

    #[test]
    fn client_ids_from_basic_and_bearer() {
        let mut h = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD.encode("my%3Aclient:secret");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
        );
        assert_eq!(basic_client_id(&h).as_deref(), Some("my:client"));
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"client_id":"rp-1","sub":"x"}"#);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer eyJhbGciOiJub25lIn0.{payload}.sig")).unwrap(),
        );
        assert_eq!(bearer_client_id(&h).as_deref(), Some("rp-1"));
    }
}

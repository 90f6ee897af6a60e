//! Client authentication at the token endpoint (RFC 6749 §2.3, RFC 7523, OIDC Core §9):
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` and public clients. The method
//! used must be the one the client registered; secrets are compared in constant time; assertion
//! replay is refused by the caller recording each `jti` until it expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::{JwsVerifier, ES256, PS256, RS256, RS512};
use josekit::jwt;
use serde_json::Value;

use super::authorize::Params;
use super::client::{AuthMethod, Client, ASSERTION_ALGS};
use super::secrets;
use crate::clock::UnixTime;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// An assertion may not live longer than this (CIS2 relying parties use 180–300 s).
const MAX_ASSERTION_LIFETIME: i64 = 600;
/// Tolerated clock difference for `iat`/`nbf`.
const LEEWAY: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidClient(String),
}

/// Credentials as presented, before they are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Basic {
        client_id: String,
        secret: String,
    },
    Post {
        client_id: String,
        secret: String,
    },
    Assertion {
        client_id: String,
        assertion: String,
    },
    Public {
        client_id: String,
    },
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Presented::Basic { client_id, .. }
            | Presented::Post { client_id, .. }
            | Presented::Assertion { client_id, .. }
            | Presented::Public { client_id } => client_id,
        }
    }
    pub fn method(&self) -> AuthMethod {
        match self {
            Presented::Basic { .. } => AuthMethod::ClientSecretBasic,
            Presented::Post { .. } => AuthMethod::ClientSecretPost,
            Presented::Assertion { .. } => AuthMethod::PrivateKeyJwt,
            Presented::Public { .. } => AuthMethod::None,
        }
    }
}

fn invalid_request(m: &str) -> ClientAuthError {
    ClientAuthError::InvalidRequest(m.into())
}

/// Works out which method the request uses. More than one method is `invalid_request`.
pub fn presented(
    authorization: Option<&str>,
    params: &Params,
) -> Result<Presented, ClientAuthError> {
    let get = |n: &str| {
        params
            .get(n)
            .map_err(|e| ClientAuthError::InvalidRequest(e.to_string()))
    };
    let body_id = get("client_id")?;
    let body_secret = get("client_secret")?;
    let assertion_type = get("client_assertion_type")?;
    let assertion = get("client_assertion")?;
    let basic = match authorization {
        Some(h) if h.len() > 6 && h[..6].eq_ignore_ascii_case("basic ") => {
            Some(parse_basic(&h[6..])?)
        }
        Some(_) | None => None,
    };
    let methods = [
        basic.is_some(),
        body_secret.is_some(),
        assertion.is_some() || assertion_type.is_some(),
    ]
    .iter()
    .filter(|m| **m)
    .count();
    if methods > 1 {
        return Err(invalid_request(
            "use exactly one client authentication method",
        ));
    }
    if let Some((client_id, secret)) = basic {
        if body_id.is_some_and(|b| b != client_id) {
            return Err(invalid_request(
                "client_id in the body differs from the Authorization header",
            ));
        }
        return Ok(Presented::Basic { client_id, secret });
    }
    if let Some(secret) = body_secret {
        let client_id =
            body_id.ok_or_else(|| invalid_request("client_id is required with client_secret"))?;
        return Ok(Presented::Post {
            client_id: client_id.into(),
            secret: secret.into(),
        });
    }
    if assertion.is_some() || assertion_type.is_some() {
        if assertion_type != Some(JWT_BEARER) {
            return Err(invalid_request("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
        }
        let assertion = assertion.ok_or_else(|| invalid_request("client_assertion is missing"))?;
        let claimed = unverified_issuer(assertion).ok_or_else(|| {
            ClientAuthError::InvalidClient("client_assertion is not a readable JWT".into())
        })?;
        if body_id.is_some_and(|b| b != claimed) {
            return Err(ClientAuthError::InvalidClient(
                "client_id differs from the assertion's issuer".into(),
            ));
        }
        return Ok(Presented::Assertion {
            client_id: claimed,
            assertion: assertion.into(),
        });
    }
    match body_id {
        Some(id) => Ok(Presented::Public {
            client_id: id.into(),
        }),
        None => Err(ClientAuthError::InvalidClient(
            "no client authentication".into(),
        )),
    }
}

/// RFC 6749 §2.3.1: both halves are form-urlencoded before base64.
fn parse_basic(b64: &str) -> Result<(String, String), ClientAuthError> {
    let bad = || ClientAuthError::InvalidClient("malformed Basic credentials".into());
    let decoded = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok((unescape(id), unescape(secret)))
}

fn unverified_issuer(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(String::from)
}

/// Checks a presented secret against the client (method and value).
pub fn check_secret(
    client: &Client,
    presented: &Presented,
    now: crate::clock::UnixTime,
) -> Result<(), ClientAuthError> {
    let bad = || ClientAuthError::InvalidClient("client authentication failed".into());
    if presented.method() != client.metadata.token_endpoint_auth_method {
        return Err(ClientAuthError::InvalidClient(format!(
            "this client authenticates with {}",
            client.metadata.token_endpoint_auth_method.as_str()
        )));
    }
    match presented {
        Presented::Basic { secret, .. } | Presented::Post { secret, .. } => {
            let digest = client.secret_digest.as_deref().ok_or_else(bad)?;
            // A rotated secret still works until its overlap window closes.
            let previous = client
                .previous_secret
                .as_ref()
                .filter(|(_, until)| now < *until)
                .is_some_and(|(old, _)| secrets::matches_digest(secret, old));
            if secrets::matches_digest(secret, digest) || previous {
                Ok(())
            } else {
                Err(bad())
            }
        }
        Presented::Public { .. } => Ok(()),
        Presented::Assertion { .. } => Err(bad()),
    }
}

/// A verified assertion's replay key and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    pub exp: UnixTime,
}

/// Verifies a `private_key_jwt` assertion against the client's keys. `audiences` are the values
/// accepted in `aud`: the issuer and every URL of the token endpoint.
pub fn verify_assertion(
    client: &Client,
    assertion: &str,
    keys: &JwkSet,
    audiences: &[String],
    now: UnixTime,
) -> Result<VerifiedAssertion, ClientAuthError> {
    let fail = |m: &str| ClientAuthError::InvalidClient(format!("client assertion rejected: {m}"));
    let header = jwt::decode_header(assertion).map_err(|_| fail("unreadable header"))?;
    let alg = header.claim("alg").and_then(Value::as_str).unwrap_or("");
    if !ASSERTION_ALGS.contains(&alg) {
        return Err(fail("algorithm not accepted"));
    }
    if client
        .metadata
        .token_endpoint_auth_signing_alg
        .as_deref()
        .is_some_and(|a| a != alg)
    {
        return Err(fail(
            "algorithm differs from the registered token_endpoint_auth_signing_alg",
        ));
    }
    let kid = header.claim("kid").and_then(Value::as_str);
    let candidates: Vec<&Jwk> = match kid {
        Some(kid) => keys.get(kid),
        None => keys.keys(),
    };
    let mut verified = None;
    for jwk in candidates {
        let Ok(verifier) = verifier_for(alg, jwk) else {
            continue;
        };
        if let Ok((payload, _)) = jwt::decode_with_verifier(assertion, verifier.as_ref()) {
            verified = Some(payload);
            break;
        }
    }
    let payload = verified.ok_or_else(|| fail("signature does not match a registered key"))?;
    let claims = payload.claims_set();
    let s = |n: &str| claims.get(n).and_then(Value::as_str);
    let id = client.metadata.client_id.as_str();
    if s("iss") != Some(id) || s("sub") != Some(id) {
        return Err(fail("iss and sub must be the client_id"));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.iter().any(|x| x == a)),
        _ => false,
    };
    if !aud_ok {
        return Err(fail("aud must be the issuer or the token endpoint"));
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| fail("exp is required"))?;
    if exp <= now {
        return Err(fail("expired"));
    }
    if exp > now + MAX_ASSERTION_LIFETIME {
        return Err(fail("exp is too far in the future"));
    }
    if claims
        .get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| iat > now + LEEWAY)
        || claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf > now + LEEWAY)
    {
        return Err(fail("not valid yet"));
    }
    let jti = s("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| fail("jti is required"))?;
    Ok(VerifiedAssertion {
        jti: jti.to_string(),
        exp,
    })
}

fn verifier_for(alg: &str, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
    Ok(match alg {
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk)?),
        "RS512" => Box::new(RS512.verifier_from_jwk(jwk)?),
        "PS256" => Box::new(PS256.verifier_from_jwk(jwk)?),
        _ => Box::new(ES256.verifier_from_jwk(jwk)?),
    })
}

/// A fetched JWKS is used for this long.
const JWKS_FRESH_SECS: i64 = 300;
/// An assertion naming a `kid` the cached set lacks refetches it at most this often per URI.
const JWKS_MISS_REFETCH_SECS: i64 = 60;
/// After a failed fetch, the URI is not tried again for this long.
const JWKS_FAILURE_BACKOFF_SECS: i64 = 30;
/// The largest JWKS document read from a `jwks_uri`; the body is read in chunks and the
/// transfer stops as soon as it grows past this.
pub const JWKS_MAX_BYTES: usize = 64 * 1024;
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Relying parties' key sets fetched from their `jwks_uri`, for `private_key_jwt`.
///
/// An assertion naming an unknown `kid` must not make careid fetch the URI on every request:
/// a set is fresh for [`JWKS_FRESH_SECS`]; a missing `kid` refetches at most once per
/// [`JWKS_MISS_REFETCH_SECS`] (the answer, even without the `kid`, is the cached answer
/// meanwhile); a failed fetch is not retried for [`JWKS_FAILURE_BACKOFF_SECS`] (the last good
/// set, if any, is used meanwhile). Fetches are single-flight per URI: concurrent requests wait
/// for the one fetch in progress and use its result.
#[derive(Default)]
pub struct JwksCache {
    entries: Mutex<HashMap<String, Entry>>,
    /// One lock per URI, held while that URI is fetched.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Clone, Default)]
struct Entry {
    set: Option<(JwkSet, UnixTime)>,
    failed_at: Option<UnixTime>,
}

impl Entry {
    /// The set to answer with without fetching, or None if a fetch is due.
    fn answer(&self, kid: Option<&str>, now: UnixTime) -> Option<Option<JwkSet>> {
        if self
            .failed_at
            .is_some_and(|t| now >= t && now - t < JWKS_FAILURE_BACKOFF_SECS)
        {
            return Some(self.set.as_ref().map(|(s, _)| s.clone()));
        }
        let (set, fetched_at) = self.set.as_ref()?;
        let age = now - fetched_at;
        let has_kid = kid.is_none_or(|k| !set.get(k).is_empty());
        ((has_kid && (0..JWKS_FRESH_SECS).contains(&age))
            || (0..JWKS_MISS_REFETCH_SECS).contains(&age))
        .then(|| Some(set.clone()))
    }
}

impl JwksCache {
    /// The key set at `uri`, for an assertion naming `kid`. None if it cannot be had.
    pub async fn get(
        &self,
        http: &reqwest::Client,
        uri: &str,
        kid: Option<&str>,
        now: UnixTime,
    ) -> Option<JwkSet> {
        if let Some(answer) = self.cached(uri, kid, now) {
            return answer;
        }
        let flight = {
            let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            fetching.entry(uri.to_string()).or_default().clone()
        };
        let _turn = flight.lock().await;
        // Whoever held the turn before may have fetched it meanwhile.
        if let Some(answer) = self.cached(uri, kid, now) {
            metrics::counter!("careid_client_jwks_fetches_total", "outcome" => "shared")
                .increment(1);
            return answer;
        }
        let fetched = fetch_jwks(http, uri).await;
        metrics::counter!("careid_client_jwks_fetches_total", "outcome" => if fetched.is_ok() { "ok" } else { "failed" })
            .increment(1);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(uri.to_string()).or_default();
        match fetched {
            Ok(set) => {
                *entry = Entry {
                    set: Some((set.clone(), now)),
                    failed_at: None,
                };
                Some(set)
            }
            Err(e) => {
                tracing::warn!(jwks_uri = uri, error = %e, "could not fetch client JWKS");
                entry.failed_at = Some(now);
                entry.set.as_ref().map(|(s, _)| s.clone())
            }
        }
    }

    fn cached(&self, uri: &str, kid: Option<&str>, now: UnixTime) -> Option<Option<JwkSet>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(uri)?.answer(kid, now)
    }
}

/// GET `uri` (no redirects, [`JWKS_FETCH_TIMEOUT`]), reading at most [`JWKS_MAX_BYTES`].
async fn fetch_jwks(http: &reqwest::Client, uri: &str) -> Result<JwkSet, String> {
    let mut response = http
        .get(uri)
        .timeout(JWKS_FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let too_large = || format!("JWKS larger than {} KiB", JWKS_MAX_BYTES / 1024);
    if response
        .content_length()
        .is_some_and(|n| n > JWKS_MAX_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > JWKS_MAX_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    JwkSet::from_bytes(&body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    #[test]
    fn basic_header_is_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%3Aclient:p%40ss"));
        let p = pairs("grant_type=authorization_code");
        assert_eq!(
            presented(Some(&header), &Params::new(&p)).unwrap(),
            Presented::Basic {
                client_id: "my:client".into(),
                secret: "p@ss".into()
            }
        );
    }

    #[test]
    fn two_methods_at_once_is_invalid_request() {
        let header = format!("Basic {}", STANDARD.encode("a:b"));
        let p = pairs("client_id=a&client_secret=b");
        assert!(matches!(
            presented(Some(&header), &Params::new(&p)),
            Err(ClientAuthError::InvalidRequest(_))
        ));
    }

    #[test]
    fn client_id_beside_assertion_must_match_its_issuer() {
        let p = pairs(&format!("client_id=other&client_assertion_type={JWT_BEARER}&client_assertion=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhIn0.x"));
        assert!(matches!(
            presented(None, &Params::new(&p)),
            Err(ClientAuthError::InvalidClient(_))
        ));
        let p = pairs(&format!("client_id=a&client_assertion_type={JWT_BEARER}&client_assertion=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhIn0.x"));
        assert_eq!(presented(None, &Params::new(&p)).unwrap().client_id(), "a");
    }
}

//! HTTP: the router, shared state, and the layers every response passes through (request id,
//! tracing, latency metrics, security headers, body limit). Handlers live in the submodules and
//! stay thin: parse, one provider call, map the result.

pub mod admin;
pub mod agent;
pub mod body_limit;
pub mod card;
mod client_cert;
pub mod console;
pub mod error;
pub mod hr;
pub mod limits;
pub mod oidc;
pub mod onboarding;
pub mod onboarding_pages;
pub mod ops;
mod outage;
pub mod pages;
pub mod params;
pub mod register;
pub mod reload;
pub mod role;
pub mod server;
pub mod tls;
pub mod webauthn;

use std::sync::Arc;

use axum::http::{header, HeaderName, HeaderValue, Request};
use axum::routing::{get, post};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::domain::provider::Provider;

/// The sign-in session cookie: host-only, Secure, path `/` (the `__Host-` prefix enforces all three).
pub const SESSION_COOKIE: &str = "__Host-careid_session";

/// The browser-binding cookie: a random value, made at `/authorize` when the browser has none.
/// Pending sign-ins are bound to it, so a flow id (a card link, a role page) is useless in any
/// other browser. Host-only like the session cookie: the card listener must share the issuer's
/// host name (ports do not separate cookies).
pub const BROWSER_COOKIE: &str = "__Host-careid_browser";

#[derive(Clone)]
pub struct AppState {
    pub provider: Arc<Provider>,
    /// Set when the process starts to drain (SIGTERM): `/readyz` answers 503 from then on.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// Where the card-login page lives: the card listener's base URL, or the issuer's origin.
    pub fn card_base(&self) -> String {
        let c = &self.provider.config;
        match &c.smartcard.base_url {
            Some(base) => base.trim_end_matches('/').to_string(),
            None => c
                .issuer
                .strip_suffix(&c.issuer_path())
                .unwrap_or(&c.issuer)
                .to_string(),
        }
    }
}

/// OIDC routes, mounted under the issuer's path. careid's own paths and the CIS2 (ForgeRock)
/// paths that relying parties hard-code both resolve here.
fn oidc_routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route("/authorize", get(oidc::authorize).post(oidc::authorize))
        .route("/login", get(oidc::sign_in_again))
        .route(
            "/token",
            post(oidc::token).fallback(error::oauth_method_not_allowed),
        )
        .route(
            "/access_token",
            post(oidc::token).fallback(error::oauth_method_not_allowed),
        )
        .route("/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .route("/jwks", get(oidc::jwks))
        .route("/connect/jwk_uri", get(oidc::jwks))
        .route("/logout", get(oidc::logout).post(oidc::logout))
        .route("/connect/endSession", get(oidc::logout).post(oidc::logout))
        .route("/card/login", get(card::card_login))
        .route("/role", get(role::role).post(role::role))
        .route("/terms", post(role::terms))
        .route(
            "/introspect",
            post(oidc::introspect).fallback(error::oauth_method_not_allowed),
        )
        .route(
            "/revoke",
            post(oidc::revoke).fallback(error::oauth_method_not_allowed),
        )
        .route(
            "/token/revoke",
            post(oidc::revoke).fallback(error::oauth_method_not_allowed),
        )
        .route(
            "/webauthn/authenticate/options",
            post(webauthn::sign_in_options),
        )
        .route("/webauthn/authenticate", post(webauthn::sign_in))
        .route(
            "/webauthn/register",
            get(webauthn::register_page).post(webauthn::register),
        )
        .route(
            "/webauthn/register/options",
            post(webauthn::register_options),
        )
        .route(
            "/webauthn/invitation",
            get(webauthn::invitation_handover).post(webauthn::invitation_handover),
        )
        .route("/account/authenticators", get(webauthn::account))
        .route(
            "/account/authenticators/{id}/{action}",
            post(webauthn::account_change),
        )
        .merge(agent::routes())
        .merge(register::routes())
}

/// A caller's `x-request-id` is kept (so a proxy's id links the logs) only when it is short and
/// plain; anything else is replaced by a fresh one before it reaches a log line.
async fn drop_malformed_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let ok = request.headers().get("x-request-id").is_none_or(|v| {
        v.len() <= 64
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    });
    if !ok {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// The main listener: everything.
pub fn router(state: AppState) -> Router {
    let path = state.provider.config.issuer_path();
    let oidc = if path.is_empty() {
        oidc_routes()
    } else {
        Router::new().nest(&path, oidc_routes())
    };
    let console = if !state.provider.config.console.enabled {
        Router::new()
    } else if path.is_empty() {
        console::routes()
    } else {
        Router::new().nest(&path, console::routes())
    };
    let portal = if path.is_empty() {
        onboarding_pages::routes()
    } else {
        Router::new().nest(&path, onboarding_pages::routes())
    };
    let routes = Router::new()
        .merge(oidc)
        .merge(console)
        .merge(portal)
        .merge(admin::routes())
        .merge(onboarding::routes())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_with_token))
        .merge(static_routes(&path))
        .layer(axum::middleware::from_fn_with_state(
            params::MAX_BODY,
            body_limit::limit,
        ))
        // HR batches are larger than anything else careid takes (`hr.max_batch_events`).
        .merge(hr::routes().layer(axum::middleware::from_fn_with_state(
            hr::MAX_BATCH_BODY,
            body_limit::limit,
        )));
    with_layers(routes, state)
}

/// The stylesheet and scripts, at the root and, when the issuer has a path, under it too (the
/// pages link them there, so a proxy forwarding only the issuer's prefix serves them).
fn static_routes(issuer_path: &str) -> Router<AppState> {
    let mut routes = Router::new();
    let mut prefixes = vec![String::new()];
    if !issuer_path.is_empty() {
        prefixes.push(issuer_path.to_string());
    }
    for prefix in prefixes {
        routes = routes
            .route(&format!("{prefix}/static/careid.css"), get(ops::stylesheet))
            .route(
                &format!("{prefix}/static/webauthn.js"),
                get(webauthn::script),
            )
            .route(&format!("{prefix}/static/agent.js"), get(agent::script));
    }
    routes
}

/// The card listener: card sign-in only (and the stylesheet and scripts pages use). The token endpoint,
/// the admin API and the rest are not served where browsers present client certificates.
pub fn card_router(state: AppState) -> Router {
    let path = format!("{}/card/login", state.provider.config.issuer_path());
    let routes = Router::new()
        .route(&path, get(card::card_login))
        .route("/healthz", get(ops::healthz))
        .merge(static_routes(&state.provider.config.issuer_path()))
        .layer(axum::middleware::from_fn_with_state(
            params::MAX_BODY,
            body_limit::limit,
        ));
    with_layers(routes, state)
}

/// The layers every response passes through, on every listener.
fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let rate_limits = limits::Limits::new(&state.provider.config);
    let issuer_path: std::sync::Arc<str> = state.provider.config.issuer_path().into();
    routes
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            outage::unavailable_as_503,
        ))
        .layer(axum::middleware::from_fn_with_state(
            issuer_path,
            pages::with_issuer_path,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn(ops::record_latency))
        .layer(axum::middleware::from_fn_with_state(rate_limits, limits::enforce))
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(pages::CSP)))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000")))
        .layer(PropagateRequestIdLayer::new(HeaderName::from_static("x-request-id")))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            // The path only: query strings carry state, hints and (wrongly sent) tokens.
            tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.uri().path(), client_ip = tracing::field::Empty)
        }))
                .layer(SetRequestIdLayer::new(HeaderName::from_static("x-request-id"), MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_malformed_request_id))
}

//! WebAuthn pages and endpoints. Options are fetched as JSON by `static/webauthn.js` (a JSON
//! body cannot be sent cross-site without a CORS preflight careid never grants); the browser's
//! answer comes back as an ordinary form post, so the result is a page like any other sign-in.
//! The ceremony handle lives in a `__Host-` SameSite=Strict cookie, which binds the answer to
//! the browser that asked for the options (login CSRF with someone else's assertion fails).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::{internal_page, no_store};
use super::pages::Page;
use super::params::{self, cookie, request_id};
use super::{AppState, SESSION_COOKIE};
use crate::domain::logout::csrf_token;
use crate::domain::ra::answers::AuthenticatorView;
use crate::domain::secrets;
use crate::domain::webauthn::ceremonies::{PasskeyLoginOutcome, Registrant, Started};
use crate::domain::webauthn::manage::AccountRefusal;
use crate::domain::webauthn::{Kind, PasskeyRejection};

/// Names the started ceremony; host-only, Secure, path `/`, never sent cross-site.
pub const CEREMONY_COOKIE: &str = "__Host-careid_webauthn";

pub const SCRIPT: &str = include_str!("../../static/webauthn.js");

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(
        (
            status,
            Json(json!({ "error": error, "error_description": description })),
        )
            .into_response(),
    )
}

fn rejection_status(r: &PasskeyRejection) -> StatusCode {
    match r {
        PasskeyRejection::Invalid(_) | PasskeyRejection::NoUserHandle => StatusCode::BAD_REQUEST,
        PasskeyRejection::CeremonyExpired | PasskeyRejection::InvitationInvalid => StatusCode::GONE,
        PasskeyRejection::UnknownCredential => StatusCode::NOT_FOUND,
        PasskeyRejection::AlreadyRegistered => StatusCode::CONFLICT,
        _ => StatusCode::FORBIDDEN,
    }
}

/// The options as JSON, with the cookie that names the ceremony.
fn started(app: &AppState, s: Started) -> Response {
    let ttl = app.provider.config.webauthn.ceremony_ttl_secs;
    let mut r = no_store(Json(s.options).into_response());
    let c = format!(
        "{CEREMONY_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={ttl}",
        s.handle
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn clear_ceremony(mut r: Response) -> Response {
    let c = format!("{CEREMONY_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInOptionsRequest {
    flow: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    conditional: bool,
}

/// POST (JSON): options for signing in to a pending login flow.
pub async fn sign_in_options(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SignInOptionsRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(req)) = body else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected a JSON object with flow, and optionally username and conditional",
        );
    };
    match app
        .provider
        .begin_authentication(
            &req.flow,
            req.username.as_deref(),
            req.conditional,
            cookie(&headers, super::BROWSER_COOKIE),
        )
        .await
    {
        Ok(Some(Ok(s))) => started(&app, s),
        Ok(Some(Err(r))) => json_error(rejection_status(&r), r.code(), &r.to_string()),
        Ok(None) => json_error(
            StatusCode::GONE,
            "flow_expired",
            "this sign-in request has expired; go back to the application and start again",
        ),
        Err(e) => {
            tracing::error!(error = %e, "webauthn sign-in options failed");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "careid could not start the sign-in; try again",
            )
        }
    }
}

/// The `credential` field of a form post, the ceremony cookie, and the `flow` field (the
/// sign-in page to go back to), if any.
fn answer_and_handle(
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<(String, String, Option<String>)> {
    let pairs = params::from_form(headers, body).ok()?;
    let credential = pairs.iter().find(|(k, _)| k == "credential")?.1.clone();
    let flow = pairs
        .iter()
        .find(|(k, _)| k == "flow")
        .map(|(_, v)| v.clone());
    let handle = cookie(headers, CEREMONY_COOKIE)?.to_string();
    Some((credential, handle, flow))
}

/// POST (form): the browser's assertion; signs in and goes on as a card sign-in would.
pub async fn sign_in(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let rid = request_id(&headers);
    let Some((answer, handle, flow)) = answer_and_handle(&headers, &body) else {
        return clear_ceremony(expired_page(&rid));
    };
    let previous = cookie(&headers, SESSION_COOKIE);
    let page = match app
        .provider
        .finish_authentication(&handle, &answer, previous)
        .await
    {
        Ok(PasskeyLoginOutcome::SignedIn {
            next,
            session_secret,
        }) => super::role::signed_in(&app, next, &session_secret, &rid),
        // The flow is still open: a link back to its page (checked again there, for this
        // browser) lets the person try their smartcard or another key.
        Ok(PasskeyLoginOutcome::Rejected(r)) => match flow.filter(|f| is_flow_id(f)) {
            Some(flow) => Page::error_with_retry(
                rejection_status(&r),
                "Sign-in refused",
                &r.to_string(),
                &rid,
                &format!("{}?flow={flow}", app.provider.config.endpoint("/login")),
            ),
            None => Page::error(
                rejection_status(&r),
                "Sign-in refused",
                &r.to_string(),
                &rid,
            ),
        },
        Ok(PasskeyLoginOutcome::FlowExpired) => expired_page(&rid),
        Err(e) => internal_page(e, &rid),
    };
    clear_ceremony(page)
}

/// A flow id as careid makes them (random URL-safe text): nothing else goes into the link.
fn is_flow_id(flow: &str) -> bool {
    (16..=128).contains(&flow.len())
        && flow
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn expired_page(rid: &str) -> Response {
    Page::error(
        StatusCode::GONE,
        "This sign-in has expired",
        "Go back to the application you came from and start signing in again.",
        rid,
    )
}

/// GET: the registration page (with an RA's invitation, or for the signed-in user).
pub async fn register_page(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let pairs = params::from_query(query.as_deref()).unwrap_or_default();
    let invitation = pairs
        .iter()
        .find(|(k, _)| k == "invitation")
        .map(|(_, v)| v.clone());
    let c = &app.provider.config;
    let kinds: Vec<_> = Kind::ALL
        .iter()
        .map(|k| json!({ "value": k.as_str(), "label": k.label() }))
        .collect();
    Page::render(
        StatusCode::OK,
        "webauthn_register.html",
        minijinja::context! {
            title => "Register a security key or passkey",
            invitation, kinds,
            options_url => c.endpoint("/webauthn/register/options"),
            finish_url => c.endpoint("/webauthn/register"),
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterOptionsRequest {
    #[serde(default)]
    invitation: Option<String>,
    kind: String,
    #[serde(default)]
    name: String,
}

/// POST (JSON): options for registering an authenticator.
pub async fn register_options(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RegisterOptionsRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(req)) = body else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected a JSON object with kind, name and optionally invitation",
        );
    };
    let Some(kind) = Kind::parse(&req.kind) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "kind must be security_key, passkey or platform",
        );
    };
    let who = match req
        .invitation
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        Some(code) => Registrant::Invitation(code),
        None => Registrant::Session(cookie(&headers, SESSION_COOKIE)),
    };
    match app.provider.begin_registration(who, kind, &req.name).await {
        Ok(Ok(s)) => started(&app, s),
        Ok(Err(r)) => json_error(rejection_status(&r), r.code(), &r.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "webauthn registration options failed");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "careid could not start the registration; try again",
            )
        }
    }
}

/// POST (form): the browser's new credential.
pub async fn register(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let rid = request_id(&headers);
    let Some((answer, handle, _)) = answer_and_handle(&headers, &body) else {
        return clear_ceremony(Page::error(
            StatusCode::GONE,
            "This registration has expired",
            "Start the registration again.",
            &rid,
        ));
    };
    let page = match app.provider.finish_registration(&handle, &answer).await {
        Ok(Ok(c)) => {
            let level = if c.aal >= 3 {
                "It reaches authentication assurance level 3: it can sign you in to every application."
            } else {
                "It reaches authentication assurance level 2 (its attestation is not trusted for level 3, or it is a synced passkey): applications that need level 3 will still ask for your smartcard."
            };
            Page::message(
                "Authenticator registered",
                &format!(
                    "“{}” is now registered to your Care Identity. {level}",
                    c.name
                ),
            )
        }
        Ok(Err(r)) => Page::error(
            rejection_status(&r),
            "Registration refused",
            &r.to_string(),
            &rid,
        ),
        Err(e) => internal_page(e, &rid),
    };
    clear_ceremony(page)
}

/// GET: the signed-in user's authenticators.
pub async fn account(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let rid = request_id(&headers);
    let secret = cookie(&headers, SESSION_COOKIE);
    let account = match app.provider.account(secret).await {
        Ok(Some(a)) => a,
        Ok(None) => return not_signed_in(&rid),
        Err(e) => return internal_page(e, &rid),
    };
    let secret = secret.unwrap_or_default();
    let c = &app.provider.config;
    let credentials: Vec<_> = account
        .credentials
        .iter()
        .map(AuthenticatorView::webauthn)
        .collect();
    let cards: Vec<_> = account
        .cards
        .iter()
        .map(|a| json!({ "id": a.id, "status": a.status, "serial": a.cert_serial }))
        .collect();
    let can_register = account.session.aal >= 3
        && app.provider.now() - account.session.auth_time <= c.webauthn.self_service_max_age_secs;
    Page::render(
        StatusCode::OK,
        "account.html",
        minijinja::context! {
            title => "Your authenticators",
            name => account.user.display_name(), uuid => account.user.uuid,
            credentials, cards, can_register,
            csrf => csrf_token(secret, "account"),
            base => c.endpoint("/account/authenticators"),
            register_url => c.endpoint("/webauthn/register"),
        },
    )
}

fn not_signed_in(rid: &str) -> Response {
    Page::error(
        StatusCode::UNAUTHORIZED,
        "Sign in first",
        "You are not signed in to careid in this browser. Sign in to any application with your smartcard or security key, then come back to this page.",
        rid,
    )
}

/// POST (form): rename or remove one of the user's own authenticators.
pub async fn account_change(
    State(app): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rid = request_id(&headers);
    let Some(secret) = cookie(&headers, SESSION_COOKIE) else {
        return not_signed_in(&rid);
    };
    let pairs = params::from_form(&headers, &body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if !get("csrf_token")
        .is_some_and(|t| secrets::constant_time_eq(t, &csrf_token(secret, "account")))
    {
        return Page::error(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Reload your authenticators page and try again.",
            &rid,
        );
    }
    let result = match action.as_str() {
        "rename" => {
            app.provider
                .rename_own_authenticator(Some(secret), &id, get("name").unwrap_or_default())
                .await
        }
        "remove" => {
            app.provider
                .remove_own_authenticator(Some(secret), &id)
                .await
        }
        _ => {
            return Page::error(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such action.",
                &rid,
            )
        }
    };
    match result {
        Ok(Ok(())) => no_store(
            axum::response::Redirect::to(&app.provider.config.endpoint("/account/authenticators"))
                .into_response(),
        ),
        Ok(Err(AccountRefusal::NotSignedIn)) => not_signed_in(&rid),
        Ok(Err(r)) => Page::error(
            if r == AccountRefusal::NoSuchAuthenticator {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            },
            "That change was not made",
            &r.to_string(),
            &rid,
        ),
        Err(e) => internal_page(e, &rid),
    }
}

/// The person's side of an RA invitation: GET shows a button (so link previews and prefetches
/// do not spend it), POST makes the code and shows it, once.
pub async fn invitation_handover(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let rid = request_id(&headers);
    let query_pairs = params::from_query(query.as_deref()).unwrap_or_default();
    let form_pairs = params::from_query(std::str::from_utf8(&body).ok()).unwrap_or_default();
    let posted = !body.is_empty();
    let pairs = if posted { &form_pairs } else { &query_pairs };
    let Some(handover) = pairs
        .iter()
        .find(|(k, _)| k == "handover")
        .map(|(_, v)| v.clone())
        .filter(|h| !h.is_empty() && h.len() <= 128)
    else {
        return Page::error(
            StatusCode::BAD_REQUEST,
            "This invitation link is not valid",
            "Ask your Registration Authority for a new invitation.",
            &rid,
        );
    };
    let c = &app.provider.config;
    let action = c.endpoint("/webauthn/invitation");
    if !posted {
        return Page::render(
            StatusCode::OK,
            "invitation_handover.html",
            minijinja::context! { title => "Your invitation", handover, action },
        );
    }
    match app.provider.hand_over_invitation(&handover).await {
        Ok(Some((code, invitation))) => {
            let url = crate::domain::login::with_query(
                &c.endpoint("/webauthn/register"),
                &[("invitation", &code)],
            );
            let expires = time::OffsetDateTime::from_unix_timestamp(invitation.expires_at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc2822)
                        .ok()
                })
                .unwrap_or_default();
            Page::render(
                StatusCode::OK,
                "invitation_handover.html",
                minijinja::context! { title => "Your invitation", code, url, expires },
            )
        }
        Ok(None) => Page::error(
            StatusCode::GONE,
            "This invitation has been opened already, or has expired",
            "An invitation is shown once. If you did not open it, tell your Registration Authority at once and ask for a new one.",
            &rid,
        ),
        Err(e) => internal_page(e, &rid),
    }
}

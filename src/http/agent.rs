//! The card agent's doors. For the browser: `POST /login/agent` shows the sign-in code,
//! `GET /login/agent/status` says whether a card has signed, `POST /login/agent/complete`
//! finishes the sign-in. For `careid-agent` (JSON, errors as problem details):
//! `/agent/v1/challenge`, `/agent/v1/login`, and with the agent's bearer token
//! `/agent/v1/heartbeat` and `/agent/v1/removed`. Protocol: `docs/agent.md`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::{internal_page, no_store};
use super::pages::{allowing_form_target, Page};
use super::params::{bearer, cookie, from_form, from_query, request_id, Pairs};
use super::{AppState, BROWSER_COOKIE, SESSION_COOKIE};
use crate::domain::card_agent::AgentError;
use crate::domain::login::{AgentCode, AgentFlowState, CardLoginOutcome};
use crate::model::card_agent::{AgentLoginRequest, ChallengeRequest};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login/agent", post(start))
        .route("/login/agent/status", get(status))
        .route("/login/agent/complete", post(complete))
        .route("/agent/v1/challenge", post(challenge))
        .route("/agent/v1/login", post(login))
        .route("/agent/v1/heartbeat", post(heartbeat))
        .route("/agent/v1/removed", post(removed))
}

fn one<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    let mut values = pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    match (values.next(), values.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

fn expired(rid: &str) -> Response {
    Page::error(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "Sign-in requests are valid for a few minutes, can be used once, and only in the browser that started them. Go back to the application and start again.",
        rid,
    )
}

fn code_page(app: &AppState, flow: &str, code: AgentCode, message: &str) -> Response {
    let c = &app.provider.config;
    let launch_url = format!(
        "careid-agent:sign-in?issuer={}&code={}",
        url::form_urlencoded::byte_serialize(c.issuer.as_bytes()).collect::<String>(),
        code.code
    );
    let status_url = format!(
        "{}?flow={}",
        c.endpoint("/login/agent/status"),
        url::form_urlencoded::byte_serialize(flow.as_bytes()).collect::<String>()
    );
    let page = Page::render(
        StatusCode::OK,
        "agent.html",
        minijinja::context! {
            title => "Sign in with your card agent", client_name => code.client_name, code => code.code,
            flow, launch_url, status_url, issuer => c.issuer, message,
            complete => c.endpoint("/login/agent/complete"),
        },
    );
    no_store(allowing_form_target(page, &code.return_to))
}

/// `POST /login/agent` (form: `flow`): a code for this browser's pending sign-in.
async fn start(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let rid = request_id(&headers);
    let pairs = from_form(&headers, &body).unwrap_or_default();
    let Some(flow) = one(&pairs, "flow") else {
        return expired(&rid);
    };
    match app
        .provider
        .agent_code(flow, cookie(&headers, BROWSER_COOKIE))
        .await
    {
        Ok(Some(code)) => code_page(&app, flow, code, ""),
        Ok(None) => expired(&rid),
        Err(e) => internal_page(e, &rid),
    }
}

/// `GET /login/agent/status?flow=`: `{"state": "waiting" | "ready" | "expired"}`.
async fn status(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = from_query(query.as_deref()).unwrap_or_default();
    let state = match one(&pairs, "flow") {
        Some(flow) => {
            app.provider
                .agent_flow_state(flow, cookie(&headers, BROWSER_COOKIE))
                .await
        }
        None => Ok(AgentFlowState::Expired),
    };
    let state = match state {
        Ok(AgentFlowState::Waiting) => "waiting",
        Ok(AgentFlowState::Ready) => "ready",
        Ok(AgentFlowState::Expired) => "expired",
        Err(e) => return agent_problem(AgentError::Service(e)),
    };
    no_store(Json(json!({ "state": state })).into_response())
}

/// `POST /login/agent/complete` (form: `flow`, `code`): finishes the sign-in once a card has
/// signed; until then the same page again.
async fn complete(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let rid = request_id(&headers);
    let pairs = from_form(&headers, &body).unwrap_or_default();
    let Some(flow) = one(&pairs, "flow") else {
        return expired(&rid);
    };
    let browser = cookie(&headers, BROWSER_COOKIE);
    let outcome = app
        .provider
        .complete_agent_login(flow, cookie(&headers, SESSION_COOKIE), browser)
        .await;
    match outcome {
        Ok(Some(CardLoginOutcome::SignedIn { next, session_secret })) => {
            super::role::signed_in(&app, next, &session_secret, &rid)
        }
        Ok(Some(CardLoginOutcome::Rejected(reason))) => Page::error(
            StatusCode::FORBIDDEN,
            "Your smartcard could not sign you in",
            &format!("{reason}. Check that the right card is in the reader; if it keeps happening, contact your Registration Authority."),
            &rid,
        ),
        Ok(Some(CardLoginOutcome::FlowExpired)) => expired(&rid),
        Ok(None) => {
            let again = app
                .provider
                .agent_code_again(flow, browser, one(&pairs, "code").unwrap_or(""))
                .await;
            match again {
                Ok(Some(code)) => code_page(&app, flow, code, "Your card has not signed in yet: enter the code in the card agent, then your passcode."),
                Ok(None) => expired(&rid),
                Err(e) => internal_page(e, &rid),
            }
        }
        Err(e) => internal_page(e, &rid),
    }
}

fn agent_problem(e: AgentError) -> Response {
    let (status, title) = match &e {
        AgentError::UnknownCode | AgentError::ChallengeInvalid => {
            (StatusCode::BAD_REQUEST, "Sign-in not found")
        }
        AgentError::Card(_) | AgentError::BadSignature => (StatusCode::FORBIDDEN, "Card refused"),
        AgentError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Invalid request"),
        AgentError::InvalidToken => (StatusCode::UNAUTHORIZED, "Authentication required"),
        AgentError::Service(s) => {
            tracing::error!(error = %s, "card agent request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
        }
    };
    let detail = match &e {
        AgentError::Service(_) => "the server could not complete the request".to_string(),
        other => other.to_string(),
    };
    let code = match &e {
        AgentError::UnknownCode => "unknown_code",
        AgentError::ChallengeInvalid => "challenge_invalid",
        AgentError::Card(r) => r.code(),
        AgentError::BadSignature => "bad_signature",
        AgentError::BadRequest(_) => "invalid_request",
        AgentError::InvalidToken => "invalid_token",
        AgentError::Service(_) => "server_error",
    };
    let body = json!({ "type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail, "code": code });
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    no_store(r)
}

/// A JSON body of type `T`, or a problem.
fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, AgentError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(AgentError::BadRequest("the body must be application/json"));
    }
    serde_json::from_slice(body)
        .map_err(|_| AgentError::BadRequest("the body is not the expected JSON"))
}

fn answer<T: serde::Serialize>(result: Result<T, AgentError>) -> Response {
    match result {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => agent_problem(e),
    }
}

async fn challenge(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match json_body::<ChallengeRequest>(&headers, &body) {
        Ok(req) => answer(app.provider.agent_challenge(&req.code).await),
        Err(e) => agent_problem(e),
    }
}

async fn login(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match json_body::<AgentLoginRequest>(&headers, &body) {
        Ok(req) => answer(app.provider.agent_login(&req).await),
        Err(e) => agent_problem(e),
    }
}

async fn heartbeat(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match bearer(&headers) {
        Some(token) => answer(app.provider.agent_heartbeat(token).await),
        None => agent_problem(AgentError::InvalidToken),
    }
}

async fn removed(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match bearer(&headers) {
        Some(token) => answer(app.provider.agent_card_removed(token).await),
        None => agent_problem(AgentError::InvalidToken),
    }
}

const SCRIPT: &str = include_str!("../../static/agent.js");

/// `/static/agent.js`: the agent page's poll.
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

//! `/onboarding/api/v1`: the people side of supplier onboarding, for supplier developers
//! (initial access tokens, test identities, their clients) and onboarding managers (the
//! promotion queue, decisions). The caller is a person's token from careid's own tools
//! (`Provider::onboarding_caller`). Errors are problem details.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::{no_store, Problem};
use super::params::bearer;
use super::AppState;
use crate::domain::onboarding::{OnboardingCaller, OnboardingError};
use crate::domain::ra::AdminError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/onboarding/api/v1/suppliers/{id}/initial-access-tokens",
            post(initial_token),
        )
        .route(
            "/onboarding/api/v1/suppliers/{id}/test-identities",
            post(test_identity),
        )
        .route("/onboarding/api/v1/suppliers/{id}/clients", get(clients))
        .route("/onboarding/api/v1/promotions", get(queue))
        .route("/onboarding/api/v1/promotions/{id}", post(decide))
        .method_not_allowed_fallback(super::error::problem_method_not_allowed)
}

pub fn problem(e: OnboardingError) -> Problem {
    Problem(match e {
        OnboardingError::InvalidToken(m) => AdminError::Unauthenticated(m),
        OnboardingError::Forbidden(m) => AdminError::Forbidden(m),
        OnboardingError::NotFound(m) => AdminError::NotFound(m),
        OnboardingError::Metadata(m) => AdminError::Invalid(m.to_string()),
        OnboardingError::Invalid(m) => AdminError::Invalid(m),
        OnboardingError::Conflict(m) => AdminError::Conflict(m),
        OnboardingError::Service(s) => AdminError::Internal(s),
    })
}

async fn caller(app: &AppState, headers: &HeaderMap) -> Result<OnboardingCaller, Problem> {
    app.provider
        .onboarding_caller(bearer(headers))
        .await
        .map_err(problem)
}

fn ok(body: serde_json::Value) -> Response {
    no_store(Json(body).into_response())
}

async fn initial_token(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let caller = caller(&app, &headers).await?;
    let (token, expires_at) = app
        .provider
        .developer_initial_access_token(&caller, &id)
        .await
        .map_err(problem)?;
    Ok(ok(
        json!({ "initial_access_token": token, "expires_at": expires_at, "registration_endpoint": app.provider.config.endpoint("/connect/register") }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTestIdentity {
    given_name: String,
    family_name: String,
    /// Positions at test organisations the test identity holds from now on.
    #[serde(default)]
    positions: Vec<String>,
}

async fn test_identity(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let caller = caller(&app, &headers).await?;
    let req: NewTestIdentity = serde_json::from_slice(&body)
        .map_err(|e| Problem(AdminError::Invalid(format!("the body: {e}"))))?;
    let made = app
        .provider
        .create_test_identity(
            &caller,
            &id,
            &req.given_name,
            &req.family_name,
            &req.positions,
        )
        .await
        .map_err(problem)?;
    use base64::Engine;
    let card = made.card.map(|c| {
        json!({
            "certificate_pem": c.certificate_pem,
            "pkcs12": base64::engine::general_purpose::STANDARD.encode(&c.pkcs12),
            "pkcs12_password": c.password,
        })
    });
    Ok(ok(json!({
        "uuid": made.user.uuid,
        "given_name": made.user.given_name,
        "family_name": made.user.family_name,
        "test_identity": true,
        "card": card,
        "passkey_invitation_url": made.passkey_invitation_url,
        "passkey_invitation_expires_at": made.invitation_expires_at,
    })))
}

async fn clients(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let caller = caller(&app, &headers).await?;
    if !caller.develops_for(&id) && !caller.manager {
        return Err(problem(OnboardingError::Forbidden(
            "you are not a developer of this supplier".into(),
        )));
    }
    let mut out = Vec::new();
    for sc in app
        .provider
        .db
        .supplier_clients_of(&id)
        .await
        .map_err(|e| problem(e.into()))?
    {
        let client = app
            .provider
            .db
            .client(&sc.client_id)
            .await
            .map_err(|e| problem(e.into()))?;
        let report = app
            .provider
            .db
            .latest_conformance_report(&sc.client_id)
            .await
            .map_err(|e| problem(e.into()))?;
        out.push(json!({
            "client_id": sc.client_id,
            "client_name": client.as_ref().map(|c| c.metadata.client_name.clone()),
            "active": client.as_ref().is_some_and(|c| c.active),
            "stage": client.as_ref().and_then(|c| c.metadata.careid_stage).map(|s| s.as_str()),
            "last_test_sign_in_at": sc.last_test_sign_in_at,
            "last_report": report,
        }));
    }
    Ok(ok(json!({ "clients": out })))
}

async fn queue(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let caller = caller(&app, &headers).await?;
    let requests = app
        .provider
        .promotion_queue(&caller)
        .await
        .map_err(problem)?;
    Ok(ok(json!({ "requests": requests })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    /// `approve` or `refuse`.
    decision: String,
    reason: String,
}

async fn decide(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let caller = caller(&app, &headers).await?;
    let d: Decision = serde_json::from_slice(&body)
        .map_err(|e| Problem(AdminError::Invalid(format!("the body: {e}"))))?;
    let approve = match d.decision.as_str() {
        "approve" => true,
        "refuse" => false,
        _ => {
            return Err(Problem(AdminError::Invalid(
                "decision is approve or refuse".into(),
            )))
        }
    };
    let decided = app
        .provider
        .decide_promotion(&caller, &id, approve, &d.reason)
        .await
        .map_err(problem)?;
    Ok(ok(json!(decided)))
}

//! `/onboarding/`: the pages of supplier onboarding (`docs/onboarding.md`). Supplier developers
//! see their suppliers' clients with their stage and last checks, run the checks, ask for
//! production, make initial access tokens and test identities (the test card and its password
//! shown once); onboarding managers work through the promotion queue. Signed in like the RA
//! console, with careid's own `careid-onboarding` client (a passkey will do); every form carries
//! the session's CSRF token; the rules are the onboarding API's (`domain/onboarding/`).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::console::{clear_cookie, set_cookie, Form};
use super::error::internal_page;
use super::pages::Page;
use super::params::{cookie, from_form, request_id};
use super::AppState;
use crate::domain::console::ConsoleError;
use crate::domain::onboarding::{OnboardingError, PortalUser, PromotionAsked};
use crate::domain::secrets::constant_time_eq;

const PORTAL_COOKIE: &str = "__Host-careid_onboarding";
const SIGNIN_COOKIE: &str = "__Host-careid_onboarding_signin";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/onboarding", get(|| async { Redirect::to("onboarding/") }))
        .route("/onboarding/", get(home))
        .route("/onboarding/signin", get(sign_in))
        .route("/onboarding/callback", get(callback))
        .route("/onboarding/signout", post(sign_out))
        .route("/onboarding/suppliers/{id}/token", post(new_token))
        .route(
            "/onboarding/suppliers/{id}/test-identities",
            post(new_test_identity),
        )
        .route("/onboarding/clients/{id}/checks", post(run_checks))
        .route("/onboarding/clients/{id}/promotion", post(ask_promotion))
        .route("/onboarding/clients/{id}/secret", post(new_secret))
        .route("/onboarding/clients/{id}/keys", post(upload_keys))
        .route("/onboarding/promotions", get(promotions))
        .route("/onboarding/promotions/{id}", post(decide))
}

fn base(app: &AppState) -> String {
    format!("{}/onboarding", app.provider.config.issuer_path())
}

/// The signed-in developer or manager.
pub struct Portal {
    user: PortalUser,
    secret: String,
}

#[derive(Serialize)]
struct Me {
    name: String,
    uuid: String,
    manager: bool,
    csrf: String,
}

impl FromRequestParts<AppState> for Portal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let secret = cookie(&parts.headers, PORTAL_COOKIE).map(String::from);
        match app.provider.portal_user(secret.as_deref()).await {
            Ok(user) => Ok(Portal {
                user,
                secret: secret.unwrap_or_default(),
            }),
            Err(ConsoleError::SignInNeeded) if parts.method == axum::http::Method::GET => {
                Err(to_sign_in(app))
            }
            Err(e) => Err(failure(app, e, &request_id(&parts.headers))),
        }
    }
}

/// A form from a signed-in user whose CSRF token matched.
pub struct PortalForm {
    portal: Portal,
    form: Form,
}

impl FromRequest<AppState> for PortalForm {
    type Rejection = Response;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let portal = Portal::from_request_parts(&mut parts, app).await?;
        let headers = parts.headers.clone();
        let bytes = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|_| {
                message(
                    app,
                    None,
                    StatusCode::BAD_REQUEST,
                    "Not done",
                    "The form could not be read.",
                )
            })?;
        let form = Form(from_form(&headers, &bytes).unwrap_or_default());
        if !constant_time_eq(form.get("csrf"), &portal.user.csrf) {
            return Err(message(app, Some(&portal), StatusCode::FORBIDDEN, "This form was not accepted", "It did not come from this session (an old copy, or another site). Nothing was changed."));
        }
        Ok(PortalForm { portal, form })
    }
}

fn page(
    app: &AppState,
    portal: Option<&Portal>,
    status: StatusCode,
    template: &str,
    ctx: minijinja::Value,
) -> Response {
    let me = portal.map(|p| Me {
        name: p.user.display_name.clone(),
        uuid: p.user.caller.uuid.clone(),
        manager: p.user.caller.manager,
        csrf: p.user.csrf.clone(),
    });
    Page::render(
        status,
        template,
        context! { ..ctx, ..context! { me => me, base => base(app) } },
    )
}

fn message(
    app: &AppState,
    portal: Option<&Portal>,
    status: StatusCode,
    heading: &str,
    text: &str,
) -> Response {
    page(
        app,
        portal,
        status,
        "onboarding/message.html",
        context! { title => heading, heading => heading, message => text },
    )
}

fn refused(app: &AppState, portal: &Portal, e: OnboardingError) -> Response {
    let status = match &e {
        OnboardingError::Forbidden(_) => StatusCode::FORBIDDEN,
        OnboardingError::NotFound(_) => StatusCode::NOT_FOUND,
        OnboardingError::Conflict(_) => StatusCode::CONFLICT,
        OnboardingError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
        OnboardingError::Service(s) => return internal_page(s, "-"),
        _ => StatusCode::BAD_REQUEST,
    };
    message(
        app,
        Some(portal),
        status,
        "Not done",
        &format!("{e}. Nothing was changed."),
    )
}

fn failure(app: &AppState, e: ConsoleError, rid: &str) -> Response {
    let (status, heading, text) = match &e {
        ConsoleError::SignInNeeded => (StatusCode::UNAUTHORIZED, "Sign in", "You are not signed in to supplier onboarding.".to_string()),
        ConsoleError::Expired => (StatusCode::UNAUTHORIZED, "Your session has ended", "You were signed out (the session was left idle, or your sign-in ended). Sign in again.".to_string()),
        ConsoleError::Refused(why) => (StatusCode::FORBIDDEN, "Supplier onboarding is not available to you", format!("{why}.")),
        ConsoleError::Internal(e) => return internal_page(e, rid),
    };
    let mut r = page(
        app,
        None,
        status,
        "onboarding/message.html",
        context! { title => heading, heading => heading, message => text, link => format!("{}/signin", base(app)), link_text => "Sign in" },
    );
    if matches!(e, ConsoleError::Expired) {
        clear_cookie(&mut r, PORTAL_COOKIE);
    }
    r
}

fn to_sign_in(app: &AppState) -> Response {
    let started = app.provider.begin_portal_sign_in();
    let mut r = Redirect::to(&started.authorize_url).into_response();
    set_cookie(
        &mut r,
        SIGNIN_COOKIE,
        &format!("{}.{}", started.state, started.code_verifier),
        "Lax",
        Some(600),
    );
    r
}

async fn sign_in(State(app): State<AppState>) -> Response {
    to_sign_in(&app)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let rid = request_id(&headers);
    let (state, verifier) = cookie(&headers, SIGNIN_COOKIE)
        .unwrap_or("")
        .split_once('.')
        .unwrap_or(("", ""));
    if state.is_empty() || !constant_time_eq(state, q.state.as_deref().unwrap_or("")) {
        return message(
            &app,
            None,
            StatusCode::BAD_REQUEST,
            "Not done",
            "This sign-in was not started in this browser, or it took too long. Start again.",
        );
    }
    let done = match (q.error.as_deref(), q.code.as_deref()) {
        (None, Some(code)) => app.provider.finish_portal_sign_in(code, verifier).await,
        (Some(error), _) => Err(ConsoleError::Refused(format!(
            "the sign-in did not complete ({error})"
        ))),
        (None, None) => Err(ConsoleError::Refused("the sign-in returned no code".into())),
    };
    match done {
        Ok(secret) => {
            if let Some(old) = cookie(&headers, PORTAL_COOKIE) {
                let _ = app.provider.portal_sign_out(old).await;
            }
            let mut r = Redirect::to(&format!("{}/", base(&app))).into_response();
            clear_cookie(&mut r, SIGNIN_COOKIE);
            set_cookie(&mut r, PORTAL_COOKIE, &secret, "Strict", None);
            r
        }
        Err(e) => {
            let mut r = failure(&app, e, &rid);
            clear_cookie(&mut r, SIGNIN_COOKIE);
            r
        }
    }
}

async fn sign_out(State(app): State<AppState>, PortalForm { portal, .. }: PortalForm) -> Response {
    if let Err(e) = app.provider.portal_sign_out(&portal.secret).await {
        return failure(&app, e, "-");
    }
    let mut r = message(
        &app,
        None,
        StatusCode::OK,
        "Signed out",
        "You have signed out of supplier onboarding.",
    );
    clear_cookie(&mut r, PORTAL_COOKIE);
    r
}

#[derive(Deserialize)]
struct Done {
    #[serde(default)]
    done: Option<String>,
}

async fn home(State(app): State<AppState>, portal: Portal, Query(q): Query<Done>) -> Response {
    let suppliers = match app.provider.portal_overview(&portal.user.caller).await {
        Ok(s) => s,
        Err(e) => return refused(&app, &portal, e),
    };
    let registration_endpoint = app.provider.config.endpoint("/connect/register");
    let test_positions: Vec<minijinja::Value> = match app.provider.test_positions().await {
        Ok(ps) => ps
            .into_iter()
            .map(|p| context! { id => p.id, name => p.name, org_code => p.org_code })
            .collect(),
        Err(e) => return refused(&app, &portal, e),
    };
    page(
        &app,
        Some(&portal),
        StatusCode::OK,
        "onboarding/home.html",
        context! { test_positions, title => "Your clients", suppliers, registration_endpoint, done => q.done },
    )
}

async fn new_token(
    State(app): State<AppState>,
    Path(id): Path<String>,
    PortalForm { portal, .. }: PortalForm,
) -> Response {
    match app
        .provider
        .developer_initial_access_token(&portal.user.caller, &id)
        .await
    {
        Ok((token, _)) => page(
            &app,
            Some(&portal),
            StatusCode::OK,
            "onboarding/message.html",
            context! {
                title => "Initial access token", heading => "Initial access token",
                message => format!("It registers one client at {} (RFC 7591: send it as a Bearer token), within 7 days.", app.provider.config.endpoint("/connect/register")),
                secret => token, secret_label => "Initial access token",
            },
        ),
        Err(e) => refused(&app, &portal, e),
    }
}

async fn new_test_identity(
    State(app): State<AppState>,
    Path(id): Path<String>,
    PortalForm { portal, form }: PortalForm,
) -> Response {
    let made = app
        .provider
        .create_test_identity(
            &portal.user.caller,
            &id,
            form.get("given_name"),
            form.get("family_name"),
            &form.opt("position").into_iter().collect::<Vec<_>>(),
        )
        .await;
    match made {
        Ok(made) => {
            let card = made.card.map(|c| context! { pkcs12 => base64::engine::general_purpose::STANDARD.encode(&c.pkcs12), password => c.password });
            let expires = date_text(made.invitation_expires_at);
            page(
                &app,
                Some(&portal),
                StatusCode::OK,
                "onboarding/test_identity.html",
                context! {
                    title => "Test identity", uuid => made.user.uuid, name => made.user.display_name(),
                    card, passkey_url => made.passkey_invitation_url, invitation_expires => expires,
                },
            )
        }
        Err(e) => refused(&app, &portal, e),
    }
}

fn back_home(app: &AppState, done: &str) -> Response {
    let q = form_urlencoded::byte_serialize(done.as_bytes()).collect::<String>();
    Redirect::to(&format!("{}/?done={q}", base(app))).into_response()
}

async fn run_checks(
    State(app): State<AppState>,
    Path(id): Path<String>,
    PortalForm { portal, .. }: PortalForm,
) -> Response {
    let result = async {
        let (client, onboarding) = app
            .provider
            .developer_client(&portal.user.caller, &id)
            .await?;
        app.provider.check_client(&client, &onboarding).await
    }
    .await;
    match result {
        Ok(report) if report.passed => back_home(&app, "Every check passed."),
        Ok(_) => back_home(&app, "Some checks failed: the table says what to fix."),
        Err(e) => refused(&app, &portal, e),
    }
}

async fn ask_promotion(
    State(app): State<AppState>,
    Path(id): Path<String>,
    PortalForm { portal, .. }: PortalForm,
) -> Response {
    let result = async {
        let (client, onboarding) = app
            .provider
            .developer_client(&portal.user.caller, &id)
            .await?;
        app.provider.ask_promotion(&client, &onboarding).await
    }
    .await;
    match result {
        Ok(PromotionAsked::Queued(_)) => back_home(
            &app,
            "The checks passed; an onboarding manager will decide.",
        ),
        Ok(PromotionAsked::ChecksFailed(_)) => {
            back_home(&app, "Not asked: some checks failed (see the table).")
        }
        Err(e) => refused(&app, &portal, e),
    }
}

async fn promotions(
    State(app): State<AppState>,
    portal: Portal,
    Query(q): Query<Done>,
) -> Response {
    let queue = match app
        .provider
        .promotion_queue_details(&portal.user.caller)
        .await
    {
        Ok(q) => q,
        Err(e) => return refused(&app, &portal, e),
    };
    let requests: Vec<minijinja::Value> = queue
        .into_iter()
        .map(|r| {
            let requested_at = date_text(r.requested_at);
            context! { requested_at, ..minijinja::Value::from_serialize(&r) }
        })
        .collect();
    page(
        &app,
        Some(&portal),
        StatusCode::OK,
        "onboarding/promotions.html",
        context! { title => "Promotion requests", requests, done => q.done },
    )
}

async fn decide(
    State(app): State<AppState>,
    Path(id): Path<String>,
    PortalForm { portal, form }: PortalForm,
) -> Response {
    let approve = match form.get("decision") {
        "approve" => true,
        "refuse" => false,
        _ => {
            return message(
                &app,
                Some(&portal),
                StatusCode::BAD_REQUEST,
                "Not done",
                "Choose approve or refuse.",
            )
        }
    };
    match app
        .provider
        .decide_promotion(&portal.user.caller, &id, approve, form.get("reason"))
        .await
    {
        Ok(d) => {
            let q = form_urlencoded::byte_serialize(
                format!("The request was {}.", d.outcome.unwrap_or_default()).as_bytes(),
            )
            .collect::<String>();
            Redirect::to(&format!("{}/promotions?done={q}", base(&app))).into_response()
        }
        Err(e) => refused(&app, &portal, e),
    }
}

async fn new_secret(
    State(app): State<AppState>,
    Path(id): Path<String>,
    PortalForm { portal, .. }: PortalForm,
) -> Response {
    let rotated = async {
        let (client, _) = app
            .provider
            .developer_client(&portal.user.caller, &id)
            .await?;
        app.provider
            .rotate_secret_of(&client, Some(&portal.user.caller.uuid))
            .await
    }
    .await;
    match rotated {
        Ok((secret, until)) => {
            let until = date_text(until);
            page(
                &app,
                Some(&portal),
                StatusCode::OK,
                "onboarding/message.html",
                context! {
                    title => "New client secret", heading => "New client secret",
                    message => format!("Client {id} now authenticates with this secret. The old secret keeps working until {until}, so you can deploy the new one first."),
                    secret => secret, secret_label => "Client secret",
                },
            )
        }
        Err(e) => refused(&app, &portal, e),
    }
}

async fn upload_keys(
    State(app): State<AppState>,
    Path(id): Path<String>,
    PortalForm { portal, form }: PortalForm,
) -> Response {
    let jwks: serde_json::Value = match serde_json::from_str(form.get("jwks")) {
        Ok(v) => v,
        Err(e) => {
            return message(
                &app,
                Some(&portal),
                StatusCode::BAD_REQUEST,
                "Not done",
                &format!("The keys are not a JSON Web Key Set ({e}). Nothing was changed."),
            )
        }
    };
    match app
        .provider
        .upload_client_keys(&portal.user.caller, &id, jwks)
        .await
    {
        Ok(()) => back_home(&app, "The client's keys were replaced."),
        Err(e) => refused(&app, &portal, e),
    }
}

/// A unix time as people read it on these pages (RFC 2822), or nothing if it is out of range.
fn date_text(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default()
}

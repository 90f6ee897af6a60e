//! `/ra/`: the RA console, server-rendered pages for registration-authority staff.
//!
//! The console is careid's own admin client (`domain/console.rs`): staff sign in through
//! `/authorize` with a card or an AAL3 key and pick the role they work in; every page then asks
//! the same RA rules as the admin API (`domain/ra/`), with the console session's access token.
//! This module holds what every page shares: the [`Staff`] extractor (the signed-in RA caller, or
//! a redirect to sign in), [`StaffForm`] (a POSTed form whose CSRF token matched), the sign-in
//! and sign-out handlers, and how a domain refusal becomes a page. The task pages are in
//! `people.rs` (a person's record and what is done to it), `work.rs` (queues, reports,
//! audit) and `hr.rs` (what the HR feed sent that needs an RA); `forms.rs` builds their accessible forms.

mod forms;
mod hr;
mod people;
mod work;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::error::internal_page;
use super::pages::Page;
use super::params::{cookie, request_id};
use super::AppState;
use crate::domain::console::{ConsoleError, ConsoleUser};
use crate::domain::ra::{AdminError, Permission, RaRole};
use crate::domain::secrets::constant_time_eq;

/// The console session: host-only, Secure, HttpOnly, never sent on cross-site requests.
pub const CONSOLE_COOKIE: &str = "__Host-careid_ra";
/// A sign-in under way: its `state`, PKCE verifier and the page to return to (ten minutes).
const SIGNIN_COOKIE: &str = "__Host-careid_ra_signin";

/// The console's routes, relative to the issuer's path.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ra", get(|| async { Redirect::to("ra/") }))
        .route("/ra/", get(home))
        .route("/ra/signin", get(sign_in))
        .route("/ra/callback", get(callback))
        .route("/ra/signout", post(sign_out))
        .merge(people::routes())
        .merge(work::person_routes())
        .merge(work::routes())
        .merge(hr::routes())
}

/// Where the console lives (`/ra` under the issuer's path).
pub fn base(app: &AppState) -> String {
    format!("{}/ra", app.provider.config.issuer_path())
}

/// The signed-in RA staff member behind this request.
pub struct Staff {
    pub user: ConsoleUser,
    pub secret: String,
}

impl Staff {
    pub fn may(&self, p: Permission) -> bool {
        p.allowed(&self.user.caller.ra_roles)
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let secret = cookie(&parts.headers, CONSOLE_COOKIE).map(String::from);
        match app.provider.console_user(secret.as_deref()).await {
            Ok(user) => Ok(Staff {
                user,
                secret: secret.unwrap_or_default(),
            }),
            Err(ConsoleError::SignInNeeded) if parts.method == axum::http::Method::GET => {
                let here = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
                Err(to_sign_in(app, here, false))
            }
            Err(e) => Err(console_failure(app, e, &request_id(&parts.headers))),
        }
    }
}

/// A form posted by signed-in staff, with its CSRF token checked before anything is read from
/// it: a form replayed from elsewhere, or after the session changed, is refused.
pub struct StaffForm {
    pub staff: Staff,
    pub form: Form,
}

impl FromRequest<AppState> for StaffForm {
    type Rejection = Response;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let staff = Staff::from_request_parts(&mut parts, app).await?;
        let rid = request_id(&parts.headers);
        let headers = parts.headers.clone();
        let bytes = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|_| bad_request(app, "The form could not be read.", &rid))?;
        let pairs = super::params::from_form(&headers, &bytes)
            .map_err(|e| bad_request(app, &format!("The form could not be read: {e}."), &rid))?;
        let form = Form(pairs);
        if !constant_time_eq(form.get("csrf"), &staff.user.csrf) {
            return Err(csrf_refused(app, &rid));
        }
        Ok(StaffForm { staff, form })
    }
}

/// The answer to a form whose CSRF token is not this session's: nothing was changed.
pub fn csrf_refused(app: &AppState, rid: &str) -> Response {
    Page::render(
        StatusCode::FORBIDDEN,
        "ra/message.html",
        context! { title => "Form not accepted", heading => "This form was not accepted",
        message => "It did not come from this console session (it may be an old copy, or from another site). Nothing was changed. Go back, reload the page and try again.",
        ra => base(app), request_id => rid },
    )
}

/// A submitted form's fields.
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The field's value, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// The field's value, or None when absent or blank.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name))
            .filter(|v| !v.is_empty())
            .map(String::from)
    }

    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

/// What every console page shows about who is signed in, and the links their roles allow.
#[derive(Serialize)]
struct Me {
    name: String,
    uuid: String,
    org_code: String,
    roles: Vec<&'static str>,
    csrf: String,
    can_register: bool,
    can_requests: bool,
    can_reports: bool,
    can_positions: bool,
    can_hr: bool,
}

/// Renders a console page for signed-in staff.
pub fn page(app: &AppState, staff: &Staff, template: &str, ctx: minijinja::Value) -> Response {
    page_with_status(app, staff, StatusCode::OK, template, ctx)
}

pub fn page_with_status(
    app: &AppState,
    staff: &Staff,
    status: StatusCode,
    template: &str,
    ctx: minijinja::Value,
) -> Response {
    let c = &staff.user.caller;
    let me = Me {
        name: staff.user.display_name.clone(),
        uuid: c.uuid.clone(),
        org_code: c.org_code.clone(),
        roles: c.ra_roles.iter().map(|r| RaRole::name(*r)).collect(),
        csrf: staff.user.csrf.clone(),
        can_register: staff.may(Permission::CreateIdentity),
        can_requests: staff.may(Permission::RequestAccess),
        can_reports: staff.may(Permission::ReadAudit),
        can_positions: staff.may(Permission::CreatePositions),
        can_hr: staff.may(Permission::CreateIdentity) || staff.may(Permission::AssignPositions),
    };
    let shared = context! { me => me, ra => base(app) };
    Page::render(status, template, context! { ..ctx, ..shared })
}

/// A domain refusal as a page: what is wrong, in the domain's words, and nothing changed.
pub fn refused(app: &AppState, staff: &Staff, e: AdminError) -> Response {
    let (status, heading) = match &e {
        AdminError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
        AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        AdminError::Invalid(_) => (StatusCode::BAD_REQUEST, "Not done"),
        AdminError::Conflict(_) => (StatusCode::CONFLICT, "Not done"),
        AdminError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "Sign in again"),
        AdminError::Internal(e) => return internal_page(e, "-"),
    };
    page_with_status(
        app,
        staff,
        status,
        "ra/message.html",
        context! { title => heading, heading => heading, message => format!("{e}. Nothing was changed.") },
    )
}

/// Back to the person's record with a notice.
pub fn to_record(app: &AppState, uuid: &str, done: &str) -> Response {
    Redirect::to(&format!("{}/people/{uuid}?done={done}", base(app))).into_response()
}

pub fn forbidden(what: &str) -> crate::domain::ra::AdminError {
    crate::domain::ra::AdminError::Forbidden(format!(
        "your RA role may not {what} (docs/ra-permissions.md)"
    ))
}

/// Before a sensitive action: None when the sign-in is recent enough, else the page that asks
/// for the card again (and comes back to `back`).
pub fn needs_fresh_sign_in(app: &AppState, staff: &Staff, back: &str) -> Option<Response> {
    if app.provider.console_recently_authenticated(&staff.user) {
        return None;
    }
    let again = format!(
        "{}/signin?again=1&return={}",
        base(app),
        form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    );
    Some(page_with_status(
        app,
        staff,
        StatusCode::UNAUTHORIZED,
        "ra/message.html",
        context! { title => "Confirm it is you", heading => "Confirm it is you",
        message => "This action needs a recent sign-in. Sign in again with your smartcard or security key, then repeat the action. Nothing has been changed yet.",
        link => again, link_text => "Sign in again" },
    ))
}

fn bad_request(app: &AppState, message: &str, rid: &str) -> Response {
    Page::render(
        StatusCode::BAD_REQUEST,
        "ra/message.html",
        context! { title => "Not done", heading => "Not done", message => message, ra => base(app), request_id => rid },
    )
}

fn console_failure(app: &AppState, e: ConsoleError, rid: &str) -> Response {
    let ra = base(app);
    let sign_in = format!("{ra}/signin");
    let (status, heading, message) = match &e {
        ConsoleError::SignInNeeded => (
            StatusCode::UNAUTHORIZED,
            "Sign in to the RA console",
            "You are not signed in to the RA console.".to_string(),
        ),
        ConsoleError::Expired => (
            StatusCode::UNAUTHORIZED,
            "Your console session has ended",
            "You were signed out of the RA console (it was left idle, or your sign-in ended). Nothing was changed. Sign in again to continue.".to_string(),
        ),
        ConsoleError::Refused(why) => (
            StatusCode::FORBIDDEN,
            "The RA console is not available to you",
            format!("{why}. Sign in with a role that carries an RA role (RA Manager, RA Agent, sponsor or a granted RA role)."),
        ),
        ConsoleError::Internal(e) => return internal_page(e, rid),
    };
    let mut r = Page::render(
        status,
        "ra/message.html",
        context! { title => heading, heading => heading, message => message, ra => ra, link => sign_in, link_text => "Sign in", request_id => rid },
    );
    if matches!(e, ConsoleError::Expired) {
        clear_cookie(&mut r, CONSOLE_COOKIE);
    }
    r
}

pub(crate) fn set_cookie(
    r: &mut Response,
    name: &str,
    value: &str,
    same_site: &str,
    max_age: Option<i64>,
) {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    let c = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}{age}");
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(crate) fn clear_cookie(r: &mut Response, name: &str) {
    set_cookie(r, name, "", "Lax", Some(0));
}

/// A path inside the console to come back to after signing in; anything else is the home page.
fn console_path(app: &AppState, candidate: &str) -> String {
    let ra = base(app);
    let ok = candidate.starts_with(&format!("{ra}/"))
        && !candidate.contains("//")
        && !candidate.contains('\\')
        && candidate.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        candidate.to_string()
    } else {
        format!("{ra}/")
    }
}

fn to_sign_in(app: &AppState, back: &str, again: bool) -> Response {
    let started = app.provider.begin_console_sign_in(again);
    let back = console_path(app, back);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let value = format!(
        "{}.{}.{}",
        started.state,
        started.code_verifier,
        b64.encode(back)
    );
    let mut r = Redirect::to(&started.authorize_url).into_response();
    set_cookie(&mut r, SIGNIN_COOKIE, &value, "Lax", Some(600));
    r
}

#[derive(Deserialize)]
struct SignInQuery {
    #[serde(default)]
    r#return: String,
    #[serde(default)]
    again: Option<String>,
}

async fn sign_in(State(app): State<AppState>, Query(q): Query<SignInQuery>) -> Response {
    to_sign_in(&app, &q.r#return, q.again.is_some())
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let rid = request_id(&headers);
    let pending = cookie(&headers, SIGNIN_COOKIE).unwrap_or("");
    let mut parts = pending.splitn(3, '.');
    let (state, verifier, back) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let returned_state = q.state.as_deref().unwrap_or("");
    if state.is_empty() || !constant_time_eq(state, returned_state) {
        return bad_request(
            &app,
            "This sign-in was not started in this browser, or it took too long. Start again from the RA console.",
            &rid,
        );
    }
    let done = match (q.error.as_deref(), q.code.as_deref()) {
        (Some(error), _) => Err(ConsoleError::Refused(format!(
            "the sign-in did not complete ({error}: {})",
            q.error_description.as_deref().unwrap_or("no reason given")
        ))),
        (None, Some(code)) => app.provider.finish_console_sign_in(code, verifier).await,
        (None, None) => Err(ConsoleError::Refused("the sign-in returned no code".into())),
    };
    let secret = match done {
        Ok(secret) => secret,
        Err(e) => {
            let mut r = console_failure(&app, e, &rid);
            clear_cookie(&mut r, SIGNIN_COOKIE);
            return r;
        }
    };
    if let Some(old) = cookie(&headers, CONSOLE_COOKIE) {
        let _ = app.provider.console_forget(old).await;
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let back = b64
        .decode(back)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let mut r = Redirect::to(&console_path(&app, &back)).into_response();
    clear_cookie(&mut r, SIGNIN_COOKIE);
    set_cookie(&mut r, CONSOLE_COOKIE, &secret, "Strict", None);
    r
}

async fn sign_out(State(app): State<AppState>, StaffForm { staff, .. }: StaffForm) -> Response {
    if let Err(e) = app.provider.console_sign_out(&staff.secret).await {
        return console_failure(&app, e, "-");
    }
    let mut r = Page::render(
        StatusCode::OK,
        "ra/message.html",
        context! { title => "Signed out", heading => "You have signed out of the RA console",
        message => "Your careid sign-in for other applications is unchanged. Remove your smartcard if you are leaving the workstation.",
        ra => base(&app), link => format!("{}/signin", base(&app)), link_text => "Sign in again" },
    );
    clear_cookie(&mut r, CONSOLE_COOKIE);
    r
}

async fn home(State(app): State<AppState>, staff: Staff) -> Response {
    let warning = match app.provider.ra_manager_shortfall(&staff.user.caller).await {
        Ok(w) => w,
        Err(e) => return refused(&app, &staff, e),
    };
    page(
        &app,
        &staff,
        "ra/home.html",
        context! { title => "RA console",
        can_audit => staff.may(Permission::ReadAudit),
        can_assign_ra => staff.may(Permission::AssignRaRoles),
        warning => warning },
    )
}

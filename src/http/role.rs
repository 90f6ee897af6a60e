//! The steps between authentication and the code: the terms-and-conditions page (first sign-in
//! and each new terms version) and the role picker (CIS2 §8: shown when the client asked for
//! `selectedrole` or `changedrole` and the user holds several current roles). Plain HTML, keyboard
//! and screen-reader friendly (labelled controls, a fieldset of radio buttons), no JavaScript; with
//! more than five roles a search box filters the list on the server. Both forms carry a CSRF token
//! bound to the session and the sign-in request.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::error::{internal_page, no_store};
use super::pages::{allowing_form_target, Page};
use super::params::{self, cookie, request_id};
use super::{AppState, BROWSER_COOKIE, SESSION_COOKIE};
use crate::domain::login::Next;
use crate::domain::logout::csrf_token;
use crate::domain::rbac::RoleClaim;
use crate::domain::secrets;

/// The job role a person recognises: the last quoted part of `role_name`.
fn label(role: &RoleClaim) -> String {
    role.role_name
        .rsplit(':')
        .next()
        .unwrap_or(&role.role_name)
        .trim_matches('"')
        .to_string()
}

/// Renders what follows authentication: the redirect, the picker, or the no-role page.
/// After a successful authentication (card or WebAuthn): the next step, with the session cookie.
pub fn signed_in(app: &AppState, next: Next, session_secret: &str, rid: &str) -> Response {
    let mut r = render_next(app, next, session_secret, "", rid);
    let c = format!("{SESSION_COOKIE}={session_secret}; Path=/; Secure; HttpOnly; SameSite=Lax");
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub fn render_next(
    app: &AppState,
    next: Next,
    session_secret: &str,
    query: &str,
    rid: &str,
) -> Response {
    match next {
        Next::Redirect(location) => no_store(Redirect::to(&location).into_response()),
        Next::NoRole => Page::error(
            StatusCode::FORBIDDEN,
            "You have no current role",
            "This application needs you to sign in with a role, and your Care Identity has no role that is current today. Ask your Registration Authority or line manager to check your positions.",
            rid,
        ),
        Next::AcceptTerms { flow_id, return_to } => {
            let terms = crate::domain::terms::current(&app.provider.config.terms);
            let action = app.provider.config.endpoint("/terms");
            let csrf = csrf_token(session_secret, &format!("terms:{flow_id}"));
            let page = Page::render(StatusCode::OK, "terms.html", minijinja::context! { title => "Terms and conditions", version => terms.version, paragraphs => terms.paragraphs, flow => flow_id, csrf, action });
            allowing_form_target(page, &return_to)
        }
        Next::ChooseRole { flow_id, roles, orgs, hinted, return_to } => {
            let org_name = |code: &str| orgs.as_array().and_then(|a| a.iter().find(|o| o["org_code"] == code)).and_then(|o| o["org_name"].as_str()).unwrap_or(code).to_string();
            let q = query.trim().to_lowercase();
            let shown: Vec<Value> = roles
                .iter()
                .map(|r| serde_json::json!({ "person_roleid": r.person_roleid, "label": label(r), "org_code": r.org_code, "org_name": org_name(&r.org_code) }))
                .filter(|v| q.is_empty() || v.to_string().to_lowercase().contains(&q))
                .collect();
            let action = app.provider.config.endpoint("/role");
            let csrf = csrf_token(session_secret, &format!("role:{flow_id}"));
            let page = Page::render(
                StatusCode::OK,
                "role_select.html",
                minijinja::context! { title => "Choose your role", roles => shown, flow => flow_id, csrf, action, q => query, searchable => roles.len() > 5, hinted },
            );
            allowing_form_target(page, &return_to)
        }
    }
}

/// GET: the picker again (the search box filters it). POST: the choice.
pub async fn role(
    State(app): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let rid = request_id(&headers);
    let pairs = if method == axum::http::Method::POST {
        params::from_form(&headers, &body)
    } else {
        params::from_query(query.as_deref())
    };
    let Ok(pairs) = pairs else {
        return Page::error(
            StatusCode::BAD_REQUEST,
            "This request cannot be read",
            "Go back to the application and sign in again.",
            &rid,
        );
    };
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (Some(flow), Some(secret)) = (get("flow"), cookie(&headers, SESSION_COOKIE)) else {
        return Page::error(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Go back to the application and sign in again.",
            &rid,
        );
    };
    let chosen = if method == axum::http::Method::POST {
        let expected = csrf_token(secret, &format!("role:{flow}"));
        if !get("csrf_token").is_some_and(|c| secrets::constant_time_eq(c, &expected)) {
            return Page::error(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Go back to the application and sign in again.",
                &rid,
            );
        }
        get("person_roleid").unwrap_or_default()
    } else {
        ""
    };
    match app
        .provider
        .choose_role(flow, chosen, Some(secret), cookie(&headers, BROWSER_COOKIE))
        .await
    {
        Ok(None) => Page::error(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Go back to the application and sign in again.",
            &rid,
        ),
        Ok(Some(next)) => render_next(&app, next, secret, get("q").unwrap_or_default(), &rid),
        Err(e) => internal_page(e, &rid),
    }
}

/// POST: the answer to the terms page.
pub async fn terms(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let rid = request_id(&headers);
    let expired = || {
        Page::error(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Go back to the application and sign in again.",
            &rid,
        )
    };
    let Ok(pairs) = params::from_form(&headers, &body) else {
        return expired();
    };
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (Some(flow), Some(secret)) = (get("flow"), cookie(&headers, SESSION_COOKIE)) else {
        return expired();
    };
    let expected = csrf_token(secret, &format!("terms:{flow}"));
    if !get("csrf_token").is_some_and(|c| secrets::constant_time_eq(c, &expected)) {
        return Page::error(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back to the application and sign in again.",
            &rid,
        );
    }
    match app
        .provider
        .answer_terms(
            flow,
            get("decision") == Some("accept"),
            Some(secret),
            cookie(&headers, BROWSER_COOKIE),
        )
        .await
    {
        Ok(Some(next)) => render_next(&app, next, secret, "", &rid),
        Ok(None) => expired(),
        Err(e) => internal_page(e, &rid),
    }
}

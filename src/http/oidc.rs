//! OpenID Connect endpoints: discovery, JWKS, authorization, token, userinfo, logout. Each
//! handler reads raw parameters, makes one call to the provider and maps the outcome.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde_json::json;

use super::error::{internal_page, no_store, BearerRejection, OAuthError};
use super::pages::Page;
use super::params::{self, cookie, request_id, Pairs, ParamsError};
use super::{AppState, BROWSER_COOKIE, SESSION_COOKIE};
use crate::domain::client::{ASSERTION_ALGS, SCOPES};
use crate::domain::login::AuthorizeOutcome;
use crate::domain::logout::{LogoutError, LogoutOutcome};
use crate::domain::token::{BearerError, TokenError, TokenPresentation, TokenRequest};
use crate::model::assurance;

pub async fn discovery(State(app): State<AppState>) -> Response {
    let c = &app.provider.config;
    let doc = json!({
        "issuer": c.issuer,
        "authorization_endpoint": c.endpoint("/authorize"),
        "token_endpoint": c.endpoint("/access_token"),
        "userinfo_endpoint": c.endpoint("/userinfo"),
        "jwks_uri": c.endpoint("/connect/jwk_uri"),
        "end_session_endpoint": c.endpoint("/connect/endSession"),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "introspection_endpoint": c.endpoint("/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint": c.endpoint("/revoke"),
        "registration_endpoint": c.endpoint("/connect/register"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256"],
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": assurance::supported_acr_values(),
        "claims_supported": [
            "sub", "iss", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "acr", "amr",
            "subname", "id_assurance_level", "idassurancelevel", "authentication_assurance_level",
            "name", "given_name", "family_name", "uid", "email", "nhsid_useruid", "title", "initials", "middle_names",
            "display_name", "nhsid_user_orgs", "nhsid_nrbac_roles"
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "ui_locales_supported": ["en-GB"],
    });
    let mut r = Json(doc).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

pub async fn jwks(State(app): State<AppState>) -> Response {
    let mut r = Json(app.provider.keys.jwks()).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

fn bad_params_page(e: ParamsError, rid: &str) -> Response {
    let status = match e {
        ParamsError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ParamsError::NotForm => StatusCode::UNSUPPORTED_MEDIA_TYPE,
    };
    Page::error(
        status,
        "This sign-in request cannot be read",
        &e.to_string(),
        rid,
    )
}

pub async fn authorize(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let rid = request_id(&headers);
    let pairs = if method == Method::POST {
        params::from_form(&headers, &body)
    } else {
        params::from_query(query.as_deref())
    };
    let pairs = match pairs {
        Ok(p) => p,
        Err(e) => return bad_params_page(e, &rid),
    };
    let (browser, new_browser) =
        match cookie(&headers, BROWSER_COOKIE).filter(|b| (32..=128).contains(&b.len())) {
            Some(b) => (b.to_string(), false),
            None => (crate::domain::secrets::random_token(), true),
        };
    let response = match app.provider.authorize(&pairs, cookie(&headers, SESSION_COOKIE), &browser).await {
        Ok(AuthorizeOutcome::Redirect(location)) => no_store(Redirect::to(&location).into_response()),
        Ok(sign_in @ AuthorizeOutcome::SignIn { .. }) => sign_in_page(&app, sign_in),
                Ok(AuthorizeOutcome::Continue(next)) => super::role::render_next(&app, next, cookie(&headers, SESSION_COOKIE).unwrap_or_default(), "", &rid),
        Ok(AuthorizeOutcome::Refuse(reason)) => Page::error(
            StatusCode::BAD_REQUEST,
            "This sign-in request is not valid",
            &format!("{reason}. Go back to the application you came from and try again; if it keeps happening, contact its service desk."),
            &rid,
        ),
        Err(e) => internal_page(e, &rid),
    };
    if new_browser {
        return with_cookie(
            response,
            &format!("{BROWSER_COOKIE}={browser}; Path=/; Secure; HttpOnly; SameSite=Lax"),
        );
    }
    response
}

/// The sign-in page of a flow.
fn sign_in_page(app: &AppState, outcome: AuthorizeOutcome) -> Response {
    let AuthorizeOutcome::SignIn {
        flow_id,
        client_name,
        login_hint,
        minimum_aal,
        return_to,
    } = outcome
    else {
        return Page::error(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Go back to the application you came from and start signing in again.",
            "-",
        );
    };
    let c = &app.provider.config;
    let card_url = format!(
        "{}{}/card/login?flow={}",
        app.card_base(),
        c.issuer_path(),
        flow_id
    );
    let minutes = c.tokens.login_flow_ttl_secs / 60;
    let page = Page::render(
        StatusCode::OK,
        "login.html",
        minijinja::context! {
            title => "Sign in", client_name, card_url, login_hint, flow_minutes => minutes, flow => flow_id, minimum_aal,
            webauthn_options => c.endpoint("/webauthn/authenticate/options"),
            webauthn_finish => c.endpoint("/webauthn/authenticate"),
            agent_start => c.endpoint("/login/agent"),
        },
    );
    // The WebAuthn form's answer redirects to the client.
    super::pages::allowing_form_target(page, &return_to)
}

/// GET `/login?flow=`: the sign-in page of a pending flow again, for the browser that started
/// it (the "Try again" link of a refused sign-in).
pub async fn sign_in_again(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let rid = request_id(&headers);
    let pairs = params::from_query(query.as_deref()).unwrap_or_default();
    let flows: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "flow")
        .map(|(_, v)| v.as_str())
        .collect();
    let expired = || {
        Page::error(
            StatusCode::GONE,
            "This sign-in has expired",
            "Go back to the application you came from and start signing in again.",
            &rid,
        )
    };
    let [flow] = flows.as_slice() else {
        return expired();
    };
    match app
        .provider
        .resume_sign_in(flow, cookie(&headers, BROWSER_COOKIE))
        .await
    {
        Ok(Some(outcome)) => sign_in_page(&app, outcome),
        Ok(None) => expired(),
        Err(e) => internal_page(e, &rid),
    }
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// A client's form POST (token, introspection, revocation): the form pairs and the
/// Authorization header, the prologue the three endpoints share. Parameters in the query string
/// are refused (they end up in logs), as is a body that is not a form; either answers an OAuth
/// error before any handler runs.
pub struct ClientPost {
    pub authorization: Option<String>,
    pub pairs: Pairs,
}

impl axum::extract::FromRequest<AppState> for ClientPost {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        app: &AppState,
    ) -> Result<Self, Response> {
        let refuse = |m: String| OAuthError(TokenError::InvalidRequest(m)).into_response();
        if request.uri().query().is_some_and(|q| !q.is_empty()) {
            return Err(refuse("parameters must be sent in the request body".into()));
        }
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, app)
            .await
            .map_err(|e| refuse(format!("the body could not be read: {e}")))?;
        let pairs = params::from_form(&headers, &body).map_err(|e| refuse(e.to_string()))?;
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        Ok(ClientPost {
            authorization,
            pairs,
        })
    }
}

pub async fn token(State(app): State<AppState>, post: ClientPost) -> Response {
    let answered = match TokenRequest::parse(post.authorization.as_deref(), &post.pairs) {
        Ok(request) => app.provider.token(request).await,
        Err(e) => Err(e),
    };
    match answered {
        Ok(response) => no_store(Json(response).into_response()),
        Err(e) => OAuthError(e).into_response(),
    }
}

/// Token introspection (RFC 7662).
pub async fn introspect(State(app): State<AppState>, post: ClientPost) -> Response {
    let answered = match TokenPresentation::parse(post.authorization.as_deref(), &post.pairs) {
        Ok(request) => app.provider.introspect(request).await,
        Err(e) => Err(e),
    };
    match answered {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(e) => OAuthError(e).into_response(),
    }
}

/// Token revocation (RFC 7009): 200 with an empty body, whether or not the token was valid.
pub async fn revoke(State(app): State<AppState>, post: ClientPost) -> Response {
    let answered = match TokenPresentation::parse(post.authorization.as_deref(), &post.pairs) {
        Ok(request) => app.provider.revoke(request).await,
        Err(e) => Err(e),
    };
    match answered {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => OAuthError(e).into_response(),
    }
}

/// The access token from the header (or, on POST, the form body). Never from the query string.
fn bearer_token(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<String, BearerError> {
    let query_pairs =
        params::from_query(query).map_err(|e| BearerError::InvalidRequest(e.to_string()))?;
    if query_pairs.iter().any(|(k, _)| k == "access_token") {
        return Err(BearerError::InvalidRequest(
            "access tokens are not accepted in the query string".into(),
        ));
    }
    let from_header = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(h) if h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ") => {
            Some(h[7..].trim().to_string())
        }
        Some(_) => {
            return Err(BearerError::InvalidRequest(
                "use the Bearer authorization scheme".into(),
            ))
        }
        None => None,
    };
    let form: Pairs = if *method == Method::POST {
        params::from_form(headers, body).map_err(|e| BearerError::InvalidRequest(e.to_string()))?
    } else {
        Vec::new()
    };
    let from_body: Vec<&String> = form
        .iter()
        .filter(|(k, _)| k == "access_token")
        .map(|(_, v)| v)
        .collect();
    match (from_header, from_body.as_slice()) {
        (Some(t), []) => Ok(t),
        (None, [t]) => Ok((*t).clone()),
        (None, []) => Err(BearerError::InvalidToken("no access token".into())),
        _ => Err(BearerError::InvalidRequest(
            "send the access token once".into(),
        )),
    }
}

pub async fn userinfo(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let token = match bearer_token(&method, &headers, query.as_deref(), &body) {
        Ok(t) => t,
        Err(e) => return BearerRejection(e).into_response(),
    };
    match app.provider.userinfo(&token).await {
        Ok(claims) => no_store(Json(claims).into_response()),
        Err(e) => BearerRejection(e).into_response(),
    }
}

pub async fn logout(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let rid = request_id(&headers);
    let pairs = if method == Method::POST {
        params::from_form(&headers, &body)
    } else {
        params::from_query(query.as_deref())
    };
    let mut pairs = match pairs {
        Ok(p) => p,
        Err(e) => return bad_params_page(e, &rid),
    };
    let csrf = pairs
        .iter()
        .position(|(k, _)| k == "csrf_token")
        .map(|i| pairs.remove(i).1);
    let confirmed = if method == Method::POST {
        csrf.as_deref()
    } else {
        None
    };
    match app
        .provider
        .logout(
            &pairs,
            cookie(&headers, SESSION_COOKIE),
            confirmed,
            params::bearer(&headers),
        )
        .await
    {
        Ok(LogoutOutcome::Redirect(location)) => {
            with_cleared_cookie(Redirect::to(&location).into_response())
        }
        Ok(LogoutOutcome::SignedOut) => with_cleared_cookie(Page::message(
            "You are signed out",
            "You have signed out of careid. You can close this window.",
        )),
        Ok(LogoutOutcome::Confirm { csrf, return_to }) => {
            let action = app.provider.config.endpoint("/connect/endSession");
            let page = Page::render(
                StatusCode::OK,
                "logout_confirm.html",
                minijinja::context! { title => "Sign out", action, csrf, params => pairs },
            );
            match return_to {
                Some(origin) => super::pages::allowing_form_target(page, &origin),
                None => page,
            }
        }
        Err(LogoutError::BadRequest(m)) => Page::error(
            StatusCode::BAD_REQUEST,
            "This sign-out request is not valid",
            &m,
            &rid,
        ),
        Err(LogoutError::Internal(e)) => internal_page(e, &rid),
    }
}

fn with_cleared_cookie(mut r: Response) -> Response {
    let v = format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    no_store(r)
}

//! Smartcard sign-in: the card listener asks the browser for a client certificate; this handler
//! takes the chain from the TLS connection, or from a configured header when (and only when)
//! the request comes from a trusted TLS-terminating proxy, and completes the pending sign-in.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use rustls_pki_types::CertificateDer;

use super::client_cert;
use super::error::internal_page;
use super::pages::Page;
use super::params::{cookie, request_id};
use super::server::ConnInfo;
use super::{AppState, BROWSER_COOKIE, SESSION_COOKIE};
use crate::domain::login::CardLoginOutcome;

/// The certificate chain presented for this request, if any.
fn presented_chain(
    app: &AppState,
    conn: &ConnInfo,
    headers: &HeaderMap,
) -> Option<Vec<CertificateDer<'static>>> {
    if let Some(chain) = &conn.client_certs {
        return Some(chain.as_ref().clone());
    }
    let sc = &app.provider.config.smartcard;
    if !sc.trusted_proxies.contains(conn.peer.ip()) {
        let names = client_cert::header_names(sc.cert_header_format, &sc.cert_header);
        if names.iter().any(|n| headers.contains_key(n.as_str())) {
            tracing::warn!(peer = %conn.peer, "ignored a client-certificate header from an untrusted address");
        }
        return None;
    }
    client_cert::forwarded_chain(sc.cert_header_format, &sc.cert_header, headers)
}

pub async fn card_login(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let rid = request_id(&headers);
    let pairs = super::params::from_query(query.as_deref()).unwrap_or_default();
    let flows: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "flow")
        .map(|(_, v)| v.as_str())
        .collect();
    let [flow] = flows.as_slice() else {
        return Page::error(
            StatusCode::BAD_REQUEST,
            "This sign-in link is not valid",
            "Go back to the application you came from and start signing in again.",
            &rid,
        );
    };
    let chain = presented_chain(&app, &conn, &headers);
    match app.provider.card_login(flow, chain.as_deref(), cookie(&headers, SESSION_COOKIE), cookie(&headers, BROWSER_COOKIE)).await {
                Ok(CardLoginOutcome::SignedIn { next, session_secret }) => super::role::signed_in(&app, next, &session_secret, &rid),
        Ok(CardLoginOutcome::Rejected(reason)) => Page::error(
            StatusCode::FORBIDDEN,
            "Your smartcard could not sign you in",
            &format!("{}. Check that the right card is in the reader; if it keeps happening, contact your Registration Authority.", capitalise(&reason.to_string())),
            &rid,
        ),
        Ok(CardLoginOutcome::FlowExpired) => Page::error(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Sign-in requests are valid for a few minutes, can be used once, and only in the browser that started them. Go back to the application and start again.",
            &rid,
        ),
        Err(e) => internal_page(e, &rid),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

//! Supplier onboarding (issue 19): a supplier registers its relying party by dynamic client
//! registration, tests it with synthetic identities, has careid check it, and goes to
//! production when an onboarding manager from outside the supplier approves.

mod attacks;
mod browser;
mod journey;

use careid::domain::client::NewClient;
use careid::model::onboarding::Supplier;
use careid::pki::Issued;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::*;

/// A supplier, one of its developers (with a card) and a token for that developer from
/// careid's own tool (an admin client, scope careid:admin).
pub struct SupplierDesk {
    pub supplier: Supplier,
    pub developer_token: String,
}

/// A person's token from careid's own tool: signed in with `card`, scope `careid:admin`.
pub async fn person_token(env: &TestEnv, tool: &NewClient, card: &Issued) -> String {
    let tokens = env
        .tokens_in(&env.browser(Some(card)), tool, "openid careid:admin")
        .await;
    tokens["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

pub async fn supplier_desk(
    env: &TestEnv,
    tool: &NewClient,
    name: &str,
    developer_uuid: &str,
) -> SupplierDesk {
    let p = &env.server.provider;
    let supplier = p.create_supplier(name, "test").await.unwrap();
    let card = env.user_with_card(developer_uuid).await;
    p.add_onboarding_member(developer_uuid, Some(&supplier.id), "test")
        .await
        .unwrap();
    SupplierDesk {
        developer_token: person_token(env, tool, &card).await,
        supplier,
    }
}

/// An onboarding manager's token.
pub async fn manager_token(env: &TestEnv, tool: &NewClient, uuid: &str) -> String {
    let card = env.user_with_card(uuid).await;
    env.server
        .provider
        .add_onboarding_member(uuid, None, "test")
        .await
        .unwrap();
    person_token(env, tool, &card).await
}

/// POST to the onboarding API with a person's token: (status, body).
pub async fn onboarding_post(env: &TestEnv, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = env
        .http()
        .post(env.endpoint(&format!("/onboarding/api/v1{path}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

pub async fn initial_token(env: &TestEnv, desk: &SupplierDesk) -> String {
    let (status, body) = onboarding_post(
        env,
        &desk.developer_token,
        &format!("/suppliers/{}/initial-access-tokens", desk.supplier.id),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["initial_access_token"].as_str().unwrap().to_string()
}

/// RFC 7591 registration: (status, body).
pub async fn register(env: &TestEnv, token: Option<&str>, metadata: Value) -> (u16, Value) {
    let mut req = env
        .http()
        .post(env.endpoint("/connect/register"))
        .json(&metadata);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// A call with the registration access token to the client's registration URI (+ `suffix`).
pub async fn manage(
    env: &TestEnv,
    method: reqwest::Method,
    registered: &Value,
    suffix: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let uri = format!(
        "{}{suffix}",
        registered["registration_client_uri"].as_str().unwrap()
    );
    let mut req = env
        .http()
        .request(method, uri)
        .bearer_auth(registered["registration_access_token"].as_str().unwrap());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// A test identity made through the onboarding API, signing in with the card certificate it
/// came with (the PKCS#12 download, opened with its password).
pub async fn test_identity(env: &TestEnv, desk: &SupplierDesk) -> (String, Issued) {
    let (status, body) = onboarding_post(
        env,
        &desk.developer_token,
        &format!("/suppliers/{}/test-identities", desk.supplier.id),
        json!({ "given_name": "Tess", "family_name": "Ting" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let uuid = body["uuid"].as_str().unwrap().to_string();
    assert!(body["passkey_invitation_url"]
        .as_str()
        .unwrap()
        .contains("/webauthn/invitation?handover="));
    use base64::Engine;
    let p12 = base64::engine::general_purpose::STANDARD
        .decode(body["card"]["pkcs12"].as_str().expect("a test card"))
        .unwrap();
    let parsed = openssl::pkcs12::Pkcs12::from_der(&p12)
        .unwrap()
        .parse2(body["card"]["pkcs12_password"].as_str().unwrap())
        .expect("the password opens the PKCS#12 file");
    let cert = parsed.cert.unwrap();
    let card = Issued {
        cert_pem: String::from_utf8(cert.to_pem().unwrap()).unwrap(),
        key_pem: String::from_utf8(parsed.pkey.unwrap().private_key_to_pem_pkcs8().unwrap())
            .unwrap(),
        der: cert.to_der().unwrap(),
        serial: cert.serial_number().to_bn().unwrap().to_vec(),
    };
    assert_eq!(
        card.cert_pem,
        body["card"]["certificate_pem"].as_str().unwrap()
    );
    (uuid, card)
}

/// A relying party's back-channel logout endpoint that does its job: 200 for a logout token
/// signed by careid (JWKS), for this client, not expired, with the logout event; 400 otherwise.
/// With `broken`, it answers 500 to everything.
pub async fn backchannel_endpoint(
    env: &TestEnv,
    client_id: std::sync::Arc<std::sync::Mutex<String>>,
    broken: bool,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!(
        "http://127.0.0.1:{}/backchannel",
        listener.local_addr().unwrap().port()
    );
    let jwks_uri = env.endpoint("/jwks");
    let http = env.http();
    let issuer = env.issuer.clone();
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(
            move |axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
                let (http, jwks_uri, issuer, client_id) = (
                    http.clone(),
                    jwks_uri.clone(),
                    issuer.clone(),
                    client_id.clone(),
                );
                async move {
                    if broken {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let token = form.get("logout_token").cloned().unwrap_or_default();
                    let expected = client_id.lock().unwrap().clone();
                    let jwks: Value = http
                        .get(&jwks_uri)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    if verify_logout_token(&token, &jwks, &issuer, &expected) {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::BAD_REQUEST
                    }
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    uri
}

fn verify_logout_token(token: &str, jwks: &Value, issuer: &str, client_id: &str) -> bool {
    let kid = jwt_header(token)["kid"].as_str().unwrap_or("").to_string();
    let Some(jwk) = jwks["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["kid"] == kid.as_str()))
    else {
        return false;
    };
    let Ok(jwk) = josekit::jwk::Jwk::from_map(jwk.as_object().unwrap().clone()) else {
        return false;
    };
    let Ok(verifier) = josekit::jws::RS256.verifier_from_jwk(&jwk) else {
        return false;
    };
    let Ok((payload, _)) = josekit::jwt::decode_with_verifier(token, &verifier) else {
        return false;
    };
    let now = careid::clock::Clock::now(&careid::clock::SystemClock);
    let claims = payload.claims_set();
    claims.get("iss").and_then(Value::as_str) == Some(issuer)
        && claims.get("aud").and_then(Value::as_str) == Some(client_id)
        && claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_some_and(|e| e > now)
        && claims["events"]
            .get("http://schemas.openid.net/event/backchannel-logout")
            .is_some()
}

//! WebAuthn against the real server with software authenticators (webauthn-authenticator-rs):
//! registration by RA invitation and self-service, sign-in by UUID, the attestation policy's
//! AAL2/AAL3 outcome in `acr`/`amr`, cloned authenticators, revoked credentials, suspended
//! users, wrong origins and RP ids, single-use invitations and ceremonies, and step-up from an
//! AAL2 session to AAL3.
//!
//! The soft authenticators cannot make discoverable (resident) or platform credentials, so the
//! passkey and platform kinds are registered here with the residency and attachment requests
//! removed from the options (as a browser that ignores them would), and signed in by UUID;
//! usernameless sign-in is shown in real Chromium (passkeys_browser.rs).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use careid::domain::client::NewClient;
use careid::model::identity::UserStatus;
use careid::pki::Issued;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::{SoftToken, SoftTokenFile};
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs_core::proto::{CreationChallengeResponse, RequestChallengeResponse};

use crate::helpers::*;

mod assurance;
mod ceremonies;
mod management;

/// A server trusting `roots` (PEM) for AAL3 attestation, a user with a card, and a client.
pub(super) async fn setup(roots: Option<String>, uuid: &str) -> (TestEnv, NewClient) {
    let (env, client, _) = setup_with_card(roots, uuid).await;
    (env, client)
}

pub(super) async fn setup_with_card(
    roots: Option<String>,
    uuid: &str,
) -> (TestEnv, NewClient, Issued) {
    let env = TestEnv::start_with(Options {
        attestation_roots_pem: roots,
        ..Default::default()
    })
    .await;
    let card = env.user_with_card(uuid).await;
    let client = env.confidential_client().await;
    (env, client, card)
}

pub(super) fn origin(env: &TestEnv) -> Url {
    let u = Url::parse(&env.local).unwrap();
    Url::parse(&u.origin().ascii_serialization()).unwrap()
}

pub(super) async fn invite(env: &TestEnv, uuid: &str) -> String {
    invitation_code(env, uuid).await
}

pub(super) async fn post_json(browser: &Browser, url: &str, body: Value) -> (u16, Value) {
    let r = browser.client.post(url).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

pub(super) async fn post_credential(
    browser: &Browser,
    url: &str,
    credential: &str,
) -> reqwest::Response {
    browser
        .client
        .post(url)
        .form(&[("credential", credential)])
        .send()
        .await
        .unwrap()
}

/// Registers through the pages' endpoints; `tweak` edits the options the authenticator sees.
pub(super) async fn register<B: AuthenticatorBackend>(
    env: &TestEnv,
    browser: &Browser,
    authenticator: &mut WebauthnAuthenticator<B>,
    request: Value,
    tweak: impl FnOnce(&mut CreationChallengeResponse),
) -> (u16, String) {
    let (status, options) = post_json(
        browser,
        &env.endpoint("/webauthn/register/options"),
        request,
    )
    .await;
    assert_eq!(status, 200, "{options}");
    let mut options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    tweak(&mut options);
    let credential = authenticator
        .do_registration(origin(env), options)
        .expect("the authenticator registers");
    let r = post_credential(
        browser,
        &env.endpoint("/webauthn/register"),
        &serde_json::to_string(&credential).unwrap(),
    )
    .await;
    (r.status().as_u16(), r.text().await.unwrap())
}

/// What a browser that ignores residency and attachment requests would hand the authenticator.
pub(super) fn as_soft_authenticator_allows(o: &mut CreationChallengeResponse) {
    if let Some(sel) = o.public_key.authenticator_selection.as_mut() {
        sel.require_resident_key = false;
        sel.resident_key = None;
        sel.authenticator_attachment = None;
    }
}

/// Opens the authorization URL and returns the login flow id from the sign-in page.
pub(super) async fn login_flow(
    env: &TestEnv,
    browser: &Browser,
    client: &NewClient,
    extra: &[(&str, &str)],
) -> String {
    let url = env.authorize_url(&client.client.metadata.client_id, extra, true);
    let r = browser.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "the sign-in page");
    let html = r.text().await.unwrap();
    let start = html.find("data-flow=\"").expect("the page names its flow") + 11;
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// Asks for sign-in options for `flow` (by UUID) and answers them with `authenticator`.
pub(super) async fn assert_with<B: AuthenticatorBackend>(
    env: &TestEnv,
    browser: &Browser,
    authenticator: &mut WebauthnAuthenticator<B>,
    flow: &str,
    username: &str,
    tweak: impl FnOnce(&mut RequestChallengeResponse),
    answer_origin: Url,
) -> reqwest::Response {
    let options = options_for(env, browser, flow, username).await;
    let mut options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    tweak(&mut options);
    let credential = authenticator
        .do_authentication(answer_origin, options)
        .expect("the authenticator answers");
    post_credential(
        browser,
        &env.endpoint("/webauthn/authenticate"),
        &serde_json::to_string(&credential).unwrap(),
    )
    .await
}

pub(super) async fn sign_in<B: AuthenticatorBackend>(
    env: &TestEnv,
    browser: &Browser,
    client: &NewClient,
    authenticator: &mut WebauthnAuthenticator<B>,
    uuid: &str,
    acr_values: &str,
) -> reqwest::Response {
    let flow = login_flow(env, browser, client, &[("acr_values", acr_values)]).await;
    assert_with(
        env,
        browser,
        authenticator,
        &flow,
        uuid,
        |_| {},
        origin(env),
    )
    .await
}

pub(super) async fn id_token_claims(
    env: &TestEnv,
    client: &NewClient,
    r: reqwest::Response,
) -> Value {
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let code = query_param(&location(&r), "code").expect("a code");
    let tokens: Value = env.redeem(client, &code).await.json().await.unwrap();
    jwt_claims(tokens["id_token"].as_str().expect("an ID token"))
}

pub(super) fn soft_token() -> (WebauthnAuthenticator<SoftToken>, String) {
    let (token, ca) = SoftToken::new(true).unwrap();
    let pem = String::from_utf8(ca.to_pem().unwrap()).unwrap();
    (WebauthnAuthenticator::new(token), pem)
}

/// An RA invitation for `uuid`, answered by registering `key` as a security key.
pub(super) async fn enrol_security_key<B: AuthenticatorBackend>(
    env: &TestEnv,
    browser: &Browser,
    key: &mut WebauthnAuthenticator<B>,
    uuid: &str,
) {
    let code = invite(env, uuid).await;
    let (status, page) = register(
        env,
        browser,
        key,
        json!({ "invitation": code, "kind": "security_key" }),
        |_| {},
    )
    .await;
    assert_eq!(status, 200, "{page}");
}

/// Sign-in options for `flow` by UUID (which must be offered).
pub(super) async fn options_for(env: &TestEnv, browser: &Browser, flow: &str, uuid: &str) -> Value {
    let (status, options) = post_json(
        browser,
        &env.endpoint("/webauthn/authenticate/options"),
        json!({ "flow": flow, "username": uuid }),
    )
    .await;
    assert_eq!(status, 200, "{options}");
    options
}

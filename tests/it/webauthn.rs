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
use careid::domain::admin::{Caller, RaRole};
use careid::domain::client::NewClient;
use careid::domain::identity::UserStatus;
use careid::pki::Issued;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::{SoftToken, SoftTokenFile};
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs_core::proto::{CreationChallengeResponse, RequestChallengeResponse};

use crate::helpers::*;

fn ra() -> Caller {
    Caller {
        uuid: "999999999999".into(),
        person_roleid: "ra-test".into(),
        org_code: "RZ9".into(),
        ra_roles: vec![RaRole::Manager],
    }
}

/// A server trusting `roots` (PEM) for AAL3 attestation, a user with a card, and a client.
async fn setup(roots: Option<String>, uuid: &str) -> (TestEnv, NewClient) {
    let (env, client, _) = setup_with_card(roots, uuid).await;
    (env, client)
}

async fn setup_with_card(roots: Option<String>, uuid: &str) -> (TestEnv, NewClient, Issued) {
    let env = TestEnv::start_with(Options {
        attestation_roots_pem: roots,
        ..Default::default()
    })
    .await;
    let card = env.user_with_card(uuid).await;
    let client = env.confidential_client().await;
    (env, client, card)
}

fn origin(env: &TestEnv) -> Url {
    let u = Url::parse(&env.local).unwrap();
    Url::parse(&u.origin().ascii_serialization()).unwrap()
}

async fn invite(env: &TestEnv, uuid: &str) -> String {
    let v = env
        .server
        .provider
        .admin_invite_authenticator(&ra(), uuid)
        .await
        .unwrap();
    v["invitation"].as_str().unwrap().to_string()
}

async fn post_json(browser: &Browser, url: &str, body: Value) -> (u16, Value) {
    let r = browser.client.post(url).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post_credential(browser: &Browser, url: &str, credential: &str) -> reqwest::Response {
    browser
        .client
        .post(url)
        .form(&[("credential", credential)])
        .send()
        .await
        .unwrap()
}

/// Registers through the pages' endpoints; `tweak` edits the options the authenticator sees.
async fn register<B: AuthenticatorBackend>(
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
fn as_soft_authenticator_allows(o: &mut CreationChallengeResponse) {
    if let Some(sel) = o.public_key.authenticator_selection.as_mut() {
        sel.require_resident_key = false;
        sel.resident_key = None;
        sel.authenticator_attachment = None;
    }
}

/// Opens the authorization URL and returns the login flow id from the sign-in page.
async fn login_flow(
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
async fn assert_with<B: AuthenticatorBackend>(
    env: &TestEnv,
    browser: &Browser,
    authenticator: &mut WebauthnAuthenticator<B>,
    flow: &str,
    username: &str,
    tweak: impl FnOnce(&mut RequestChallengeResponse),
    answer_origin: Url,
) -> reqwest::Response {
    let (status, options) = post_json(
        browser,
        &env.endpoint("/webauthn/authenticate/options"),
        json!({ "flow": flow, "username": username }),
    )
    .await;
    assert_eq!(status, 200, "{options}");
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

async fn sign_in<B: AuthenticatorBackend>(
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

async fn id_token_claims(env: &TestEnv, client: &NewClient, r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let code = query_param(&location(&r), "code").expect("a code");
    let tokens: Value = env.redeem(client, &code).await.json().await.unwrap();
    jwt_claims(tokens["id_token"].as_str().expect("an ID token"))
}

fn soft_token() -> (WebauthnAuthenticator<SoftToken>, String) {
    let (token, ca) = SoftToken::new(true).unwrap();
    let pem = String::from_utf8(ca.to_pem().unwrap()).unwrap();
    (WebauthnAuthenticator::new(token), pem)
}

#[tokio::test]
async fn an_attested_security_key_registered_by_invitation_signs_in_at_aal3() {
    let (mut key, root) = soft_token();
    let (env, client) = setup(Some(root), "961000000001").await;
    let browser = env.browser(None);
    let code = invite(&env, "961000000001").await;
    let (status, page) = register(
        &env,
        &browser,
        &mut key,
        json!({ "invitation": code, "kind": "security_key", "name": "Blue key" }),
        |_| {},
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("assurance level 3"), "{page}");

    let r = sign_in(
        &env,
        &browser,
        &client,
        &mut key,
        "961000000001",
        "AAL3_ANY",
    )
    .await;
    let claims = id_token_claims(&env, &client, r).await;
    assert_eq!(claims["sub"], "961000000001");
    assert_eq!(claims["amr"], json!(["FIDO2"]));
    assert_eq!(claims["acr"], "AAL3_ANY");
    assert_eq!(claims["authentication_assurance_level"], "3");

    // What the RA sees: the key's model, attestation and use, never its key material.
    let listed = env
        .server
        .provider
        .admin_list_authenticators(&ra(), "961000000001")
        .await
        .unwrap();
    let key_entry = listed["authenticators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "security_key")
        .unwrap()
        .clone();
    assert_eq!(key_entry["aal"], 3);
    assert_eq!(key_entry["attestation_trusted"], true);
    assert_eq!(key_entry["attestation_format"], "packed");
    assert_eq!(key_entry["name"], "Blue key");
    assert!(key_entry["last_used_at"].is_i64());
    assert!(key_entry.get("credential").is_none());

    // The invitation was used up.
    let (status, body) = post_json(
        &browser,
        &env.endpoint("/webauthn/register/options"),
        json!({ "invitation": code, "kind": "security_key" }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("invitation_invalid"))
    );
}

#[tokio::test]
async fn untrusted_attestation_is_aal2_and_never_meets_an_aal3_request() {
    let (mut key, _root_not_configured) = soft_token();
    let (env, client) = setup(None, "961000000002").await;
    let browser = env.browser(None);
    let code = invite(&env, "961000000002").await;
    let (status, page) = register(
        &env,
        &browser,
        &mut key,
        json!({ "invitation": code, "kind": "security_key" }),
        |_| {},
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("assurance level 2"), "{page}");

    // An AAL3 request: refused with a page that says why, and no session or code.
    let flow = login_flow(&env, &browser, &client, &[("acr_values", "AAL3_ANY")]).await;
    let r = assert_with(
        &env,
        &browser,
        &mut key,
        &flow,
        "961000000002",
        |_| {},
        origin(&env),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("assurance level 3"));
    let again = browser
        .client
        .get(env.authorize_url(
            &client.client.metadata.client_id,
            &[("prompt", "none")],
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_param(&location(&again), "error").as_deref(),
        Some("login_required")
    );

    // The same flow can still be finished with a method that meets it: here, AAL2 is enough.
    let r = sign_in(
        &env,
        &browser,
        &client,
        &mut key,
        "961000000002",
        "AAL2_OR_AAL3_ANY",
    )
    .await;
    let claims = id_token_claims(&env, &client, r).await;
    assert_eq!(claims["amr"], json!(["FIDO2"]));
    assert_eq!(claims["acr"], "AAL2_OR_AAL3_ANY");
    assert_eq!(claims["authentication_assurance_level"], "2");
}

#[tokio::test]
async fn passkey_and_platform_kinds_without_trusted_attestation_are_aal2() {
    let (_, root) = soft_token();
    let (env, client) = setup(Some(root), "961000000003").await;
    let browser = env.browser(None);
    for (kind, name) in [("passkey", "Phone"), ("platform", "Laptop")] {
        let mut passkey = WebauthnAuthenticator::new(SoftPasskey::new(true));
        let code = invite(&env, "961000000003").await;
        let (status, page) = register(
            &env,
            &browser,
            &mut passkey,
            json!({ "invitation": code, "kind": kind, "name": name }),
            as_soft_authenticator_allows,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let r = sign_in(
            &env,
            &env.browser(None),
            &client,
            &mut passkey,
            "961000000003",
            "AAL2_OR_AAL3_ANY",
        )
        .await;
        let claims = id_token_claims(&env, &client, r).await;
        assert_eq!(claims["authentication_assurance_level"], "2", "{kind}");
        assert_eq!(claims["amr"], json!(["FIDO2"]));
    }
    let listed = env
        .server
        .provider
        .admin_list_authenticators(&ra(), "961000000003")
        .await
        .unwrap();
    let kinds: Vec<(String, i64, bool)> = listed["authenticators"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] != "smartcard")
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_string(),
                a["aal"].as_i64().unwrap(),
                a["attestation_trusted"].as_bool().unwrap(),
            )
        })
        .collect();
    let mut kinds = kinds;
    kinds.sort();
    assert_eq!(
        kinds,
        vec![("passkey".into(), 2, false), ("platform".into(), 2, false)]
    );
}

#[tokio::test]
async fn a_cloned_authenticator_is_blocked_when_its_counter_goes_back() {
    let (token, ca) = SoftToken::new(true).unwrap();
    let root = String::from_utf8(ca.to_pem().unwrap()).unwrap();
    let (env, client) = setup(Some(root), "961000000004").await;
    let browser = env.browser(None);
    // The token's state (private keys, counter) is saved to a file when its handle drops, so
    // two copies of the same key can be made after registration: the genuine one and a clone.
    let saved = tempfile::NamedTempFile::new().unwrap();
    {
        let mut key =
            WebauthnAuthenticator::new(SoftTokenFile::new(token, saved.reopen().unwrap()));
        let code = invite(&env, "961000000004").await;
        let (status, page) = register(
            &env,
            &browser,
            &mut key,
            json!({ "invitation": code, "kind": "security_key" }),
            |_| {},
        )
        .await;
        assert_eq!(status, 200, "{page}");
    }
    let state = std::fs::read(saved.path()).unwrap();
    let mut key = WebauthnAuthenticator::new(SoftToken::from_cbor(&state).unwrap());
    let mut clone = WebauthnAuthenticator::new(SoftToken::from_cbor(&state).unwrap());
    let r = sign_in(
        &env,
        &browser,
        &client,
        &mut key,
        "961000000004",
        "AAL3_ANY",
    )
    .await;
    assert_eq!(r.status(), 303);

    let other = env.browser(None);
    let r = sign_in(
        &env,
        &other,
        &client,
        &mut clone,
        "961000000004",
        "AAL3_ANY",
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("cloned"));
    // Blocked for good: the genuine key is not offered any more, and the sessions it opened ended.
    let fresh = env.browser(None);
    let flow = login_flow(&env, &fresh, &client, &[]).await;
    let (status, body) = post_json(
        &fresh,
        &env.endpoint("/webauthn/authenticate/options"),
        json!({ "flow": flow, "username": "961000000004" }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no_credentials"))
    );
    let _ = &mut key;
    let again = browser
        .client
        .get(env.authorize_url(
            &client.client.metadata.client_id,
            &[("prompt", "none")],
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_param(&location(&again), "error").as_deref(),
        Some("login_required")
    );
    let kinds: Vec<String> = env
        .db
        .recent_audit(50)
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e.kind, e.outcome))
        .collect();
    assert!(
        kinds.contains(&"webauthn.blocked counter_regression".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"login.webauthn counter_regression".to_string()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn revoked_credentials_and_suspended_users_cannot_sign_in() {
    let (mut key, root) = soft_token();
    let (env, client) = setup(Some(root), "961000000005").await;
    let browser = env.browser(None);
    let code = invite(&env, "961000000005").await;
    register(
        &env,
        &browser,
        &mut key,
        json!({ "invitation": code, "kind": "security_key" }),
        |_| {},
    )
    .await;

    env.server
        .provider
        .admin_set_status(&ra(), "961000000005", UserStatus::Suspended, "test")
        .await
        .unwrap();
    let r = sign_in(
        &env,
        &browser,
        &client,
        &mut key,
        "961000000005",
        "AAL3_ANY",
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("not active"));
    env.db
        .set_user_status("961000000005", UserStatus::Active)
        .await
        .unwrap();

    let id = env
        .db
        .webauthn_credentials_of("961000000005")
        .await
        .unwrap()[0]
        .authenticator
        .id
        .clone();
    env.server
        .provider
        .admin_revoke_authenticator(&ra(), "961000000005", &id)
        .await
        .unwrap();
    // A revoked credential is not offered, so sign-in by UUID finds none.
    let flow = login_flow(&env, &browser, &client, &[]).await;
    let (status, body) = post_json(
        &browser,
        &env.endpoint("/webauthn/authenticate/options"),
        json!({ "flow": flow, "username": "961000000005" }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no_credentials"))
    );
}

#[tokio::test]
async fn wrong_origin_and_wrong_rp_id_are_rejected() {
    let (mut key, root) = soft_token();
    let (env, client) = setup(Some(root), "961000000006").await;
    let browser = env.browser(None);
    let code = invite(&env, "961000000006").await;
    // Registration answered for another origin: refused, and the invitation is not used up.
    let (status, options) = post_json(
        &browser,
        &env.endpoint("/webauthn/register/options"),
        json!({ "invitation": code, "kind": "security_key" }),
    )
    .await;
    assert_eq!(status, 200);
    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    // Same host, another port: a different origin (the soft authenticator only checks the host).
    let mut evil = origin(&env);
    evil.set_port(Some(1)).unwrap();
    let credential = key.do_registration(evil.clone(), options).unwrap();
    let r = post_credential(
        &browser,
        &env.endpoint("/webauthn/register"),
        &serde_json::to_string(&credential).unwrap(),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("could not be verified"));
    let (status, page) = register(
        &env,
        &browser,
        &mut key,
        json!({ "invitation": code, "kind": "security_key" }),
        |_| {},
    )
    .await;
    assert_eq!(status, 200, "{page}");

    // Sign-in answered for another origin, then signed for another RP id: both refused.
    let flow = login_flow(&env, &browser, &client, &[]).await;
    let r = assert_with(
        &env,
        &browser,
        &mut key,
        &flow,
        "961000000006",
        |_| {},
        evil,
    )
    .await;
    assert_eq!(r.status(), 400);
    // An assertion made for another RP id (its authenticator data names evil.example's hash).
    let (_, options) = post_json(
        &browser,
        &env.endpoint("/webauthn/authenticate/options"),
        json!({ "flow": flow, "username": "961000000006" }),
    )
    .await;
    let answer = key
        .do_authentication(origin(&env), serde_json::from_value(options).unwrap())
        .unwrap();
    let mut answer = serde_json::to_value(&answer).unwrap();
    let data = answer["response"]["authenticatorData"].as_str().unwrap();
    let mut data = URL_SAFE_NO_PAD.decode(data).unwrap();
    data[..32].copy_from_slice(&Sha256::digest(b"evil.example"));
    answer["response"]["authenticatorData"] = json!(URL_SAFE_NO_PAD.encode(&data));
    let r = post_credential(
        &browser,
        &env.endpoint("/webauthn/authenticate"),
        &answer.to_string(),
    )
    .await;
    assert_eq!(r.status(), 400);
    // The flow is intact: the genuine answer still signs in.
    let r = assert_with(
        &env,
        &browser,
        &mut key,
        &flow,
        "961000000006",
        |_| {},
        origin(&env),
    )
    .await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn a_ceremony_is_single_use_and_bound_to_the_browser_that_started_it() {
    let (mut key, root) = soft_token();
    let (env, client) = setup(Some(root), "961000000007").await;
    let browser = env.browser(None);
    let code = invite(&env, "961000000007").await;
    register(
        &env,
        &browser,
        &mut key,
        json!({ "invitation": code, "kind": "security_key" }),
        |_| {},
    )
    .await;
    let flow = login_flow(&env, &browser, &client, &[]).await;
    let (_, options) = post_json(
        &browser,
        &env.endpoint("/webauthn/authenticate/options"),
        json!({ "flow": flow, "username": "961000000007" }),
    )
    .await;
    let answer = serde_json::to_string(
        &key.do_authentication(origin(&env), serde_json::from_value(options).unwrap())
            .unwrap(),
    )
    .unwrap();
    // Posted from another browser (no ceremony cookie): a login-CSRF attempt, refused.
    let r = post_credential(
        &env.browser(None),
        &env.endpoint("/webauthn/authenticate"),
        &answer,
    )
    .await;
    assert_eq!(r.status(), 410);
    let r = post_credential(&browser, &env.endpoint("/webauthn/authenticate"), &answer).await;
    assert_eq!(r.status(), 303);
    // Replayed: the ceremony is gone.
    let r = post_credential(&browser, &env.endpoint("/webauthn/authenticate"), &answer).await;
    assert_eq!(r.status(), 410);
}

#[tokio::test]
async fn invitations_expire() {
    let (mut key, root) = soft_token();
    let (env, _client) = setup(Some(root), "961000000008").await;
    let browser = env.browser(None);
    let code = invite(&env, "961000000008").await;
    env.clock.advance(3601);
    let (status, body) = post_json(
        &browser,
        &env.endpoint("/webauthn/register/options"),
        json!({ "invitation": code, "kind": "security_key" }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("invitation_invalid"))
    );
    let _ = &mut key;
}

#[tokio::test]
async fn step_up_from_an_aal2_session_to_aal3_needs_a_new_authentication() {
    let (mut key, _untrusted) = soft_token();
    let (env, client, card) = setup_with_card(None, "961000000009").await;
    let browser = env.browser(Some(&card));
    let code = invite(&env, "961000000009").await;
    register(
        &env,
        &browser,
        &mut key,
        json!({ "invitation": code, "kind": "security_key" }),
        |_| {},
    )
    .await;
    let r = sign_in(
        &env,
        &browser,
        &client,
        &mut key,
        "961000000009",
        "AAL2_OR_AAL3_ANY",
    )
    .await;
    assert_eq!(r.status(), 303);

    // The AAL2 session answers an AAL2 request silently...
    let silent = browser
        .client
        .get(env.authorize_url(
            &client.client.metadata.client_id,
            &[("prompt", "none"), ("acr_values", "AAL2_OR_AAL3_ANY")],
            true,
        ))
        .send()
        .await
        .unwrap();
    assert!(query_param(&location(&silent), "code").is_some());
    // ...but not an AAL3 one: prompt=none gets interaction_required, otherwise a new sign-in.
    let none = browser
        .client
        .get(env.authorize_url(
            &client.client.metadata.client_id,
            &[("prompt", "none"), ("acr_values", "AAL3_ANY")],
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_param(&location(&none), "error").as_deref(),
        Some("interaction_required")
    );
    let url = env.authorize_url(
        &client.client.metadata.client_id,
        &[("acr_values", "AAL3_ANY")],
        true,
    );
    let location = match browser.sign_in(&url).await {
        SignIn::Redirected(l) => l,
        SignIn::Page(s, b) => panic!("{s} {b}"),
    };
    let tokens: Value = env
        .redeem(&client, &query_param(&location, "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["N3_SMARTCARD"]));
    assert_eq!(claims["acr"], "AAL3_ANY");
    assert_eq!(claims["authentication_assurance_level"], "3");
}

#[tokio::test]
async fn self_service_registration_needs_a_recent_aal3_sign_in() {
    let (mut key, root) = soft_token();
    let (env, client, card) = setup_with_card(Some(root), "961000000010").await;
    let browser = env.browser(Some(&card));
    // Not signed in: refused.
    let (status, body) = post_json(
        &browser,
        &env.endpoint("/webauthn/register/options"),
        json!({ "kind": "security_key" }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not_allowed_to_register"))
    );
    // Signed in with the card (AAL3) just now: allowed.
    env.tokens_in(&browser, &client, "openid").await;
    let (status, page) = register(
        &env,
        &browser,
        &mut key,
        json!({ "kind": "security_key", "name": "Spare" }),
        |_| {},
    )
    .await;
    assert_eq!(status, 200, "{page}");
    // The account page lists it; renaming works; a stale sign-in may not register more.
    let account = browser
        .client
        .get(env.endpoint("/account/authenticators"))
        .send()
        .await
        .unwrap();
    let html = account.text().await.unwrap();
    assert!(html.contains("Spare"), "{html}");
    env.clock.advance(901);
    let (status, _) = post_json(
        &browser,
        &env.endpoint("/webauthn/register/options"),
        json!({ "kind": "passkey" }),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn users_rename_and_remove_their_own_authenticators_but_never_the_last() {
    let (mut key, root) = soft_token();
    let (env, client) = setup(Some(root), "961000000011").await;
    let browser = env.browser(None);
    let code = invite(&env, "961000000011").await;
    register(
        &env,
        &browser,
        &mut key,
        json!({ "invitation": code, "kind": "security_key", "name": "Old" }),
        |_| {},
    )
    .await;
    let r = sign_in(
        &env,
        &browser,
        &client,
        &mut key,
        "961000000011",
        "AAL3_ANY",
    )
    .await;
    assert_eq!(r.status(), 303);
    let html = browser
        .client
        .get(env.endpoint("/account/authenticators"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf_at = html.find("name=\"csrf_token\" value=\"").unwrap() + 25;
    let csrf = html[csrf_at..csrf_at + html[csrf_at..].find('"').unwrap()].to_string();
    let id = env
        .db
        .webauthn_credentials_of("961000000011")
        .await
        .unwrap()[0]
        .authenticator
        .id
        .clone();
    let post = |action: &str, form: Vec<(&'static str, String)>| {
        browser
            .client
            .post(env.endpoint(&format!("/account/authenticators/{id}/{action}")))
            .form(&form)
            .send()
    };
    // Without the form's CSRF token: refused.
    assert_eq!(
        post("rename", vec![("name", "New".into())])
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(
            "rename",
            vec![("name", "New".into()), ("csrf_token", csrf.clone())]
        )
        .await
        .unwrap()
        .status(),
        303
    );
    assert_eq!(
        env.db
            .webauthn_credentials_of("961000000011")
            .await
            .unwrap()[0]
            .name,
        "New"
    );
    // The card counts as another working authenticator, so the key may go; once the card is
    // revoked, the key would be the last one.
    let card_id = env
        .db
        .authenticators_of("961000000011")
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.kind == "smartcard")
        .unwrap()
        .id;
    env.db
        .set_authenticator_status(&card_id, "revoked")
        .await
        .unwrap();
    let r = post("remove", vec![("csrf_token", csrf.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("last working authenticator"));
    env.db
        .set_authenticator_status(&card_id, "active")
        .await
        .unwrap();
    assert_eq!(
        post("remove", vec![("csrf_token", csrf)])
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        env.db
            .webauthn_credentials_of("961000000011")
            .await
            .unwrap()[0]
            .authenticator
            .status,
        "removed"
    );
}

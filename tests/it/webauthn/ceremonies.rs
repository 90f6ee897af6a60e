//! The attacks a ceremony must survive: cloned authenticators, revoked credentials, suspended
//! users, other origins and RP ids, replayed or cross-browser answers, expired invitations.

use super::*;

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
    // Blocked for good, and its holder is told so: the key is still offered (so the browser can
    // use it and careid can say why it fails), every answer is refused as blocked, and the
    // sessions it opened ended.
    let fresh = env.browser(None);
    let r = sign_in(&env, &fresh, &client, &mut key, "961000000004", "AAL3_ANY").await;
    assert_eq!(r.status(), 403);
    let said = r.text().await.unwrap();
    assert!(said.contains("is blocked"), "{said}");
    assert!(!said.contains("not registered"), "{said}");
    // The refusal links back to the sign-in page, which is still open for this browser only.
    let flow = login_flow(&env, &fresh, &client, &[]).await;
    let options = options_for(&env, &fresh, &flow, "961000000004").await;
    let answer = key
        .do_authentication(origin(&env), serde_json::from_value(options).unwrap())
        .unwrap();
    let refused = fresh
        .client
        .post(env.endpoint("/webauthn/authenticate"))
        .form(&[
            (
                "credential",
                serde_json::to_string(&answer).unwrap().as_str(),
            ),
            ("flow", flow.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    // As a browser reads the attribute (minijinja escapes `/` as `&#x2f;`).
    let page = refused.text().await.unwrap().replace("&#x2f;", "/");
    let retry = format!("{}?flow={flow}", env.endpoint("/login"));
    assert!(page.contains(&format!("href=\"{retry}\"")), "{page}");
    let again = fresh.client.get(&retry).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert!(again
        .text()
        .await
        .unwrap()
        .contains(&format!("data-flow=\"{flow}\"")));
    let elsewhere = env.browser(None).client.get(&retry).send().await.unwrap();
    assert_eq!(elsewhere.status(), 410, "another browser cannot reopen it");
    assert_eq!(
        env.silent_error(&browser, &client.client.metadata.client_id, &[])
            .await
            .as_deref(),
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
    enrol_security_key(&env, &browser, &mut key, "961000000005").await;

    env.server
        .provider
        .admin_set_status(&ra_manager(), "961000000005", UserStatus::Suspended, "test")
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
        .admin_revoke_authenticator(&ra_manager(), "961000000005", &id)
        .await
        .unwrap();
    // A revoked credential is not offered. The answer is the one anyone gets who names a UUID
    // without keys, or none at all: the same shape, a stable stand-in id, never a 404.
    let revoked = env
        .db
        .webauthn_credentials_of("961000000005")
        .await
        .unwrap()[0]
        .credential_id
        .clone();
    let mut offered = Vec::new();
    for uuid in ["961000000005", "961000000005", "961999999999", "not-a-uuid"] {
        let flow = login_flow(&env, &browser, &client, &[]).await;
        let (status, body) = post_json(
            &browser,
            &env.endpoint("/webauthn/authenticate/options"),
            json!({ "flow": flow, "username": uuid }),
        )
        .await;
        assert_eq!(status, 200, "{uuid}: {body}");
        let allowed = body["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(allowed.len(), 1, "{uuid}");
        assert_eq!(
            allowed[0]["id"].as_str().unwrap().len(),
            86,
            "{uuid}: 64 bytes"
        );
        offered.push(allowed[0]["id"].as_str().unwrap().to_string());
    }
    assert_ne!(offered[0], revoked);
    assert_eq!(offered[0], offered[1], "the same at every ask");
    assert_ne!(offered[0], offered[2]);
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
    let options = options_for(&env, &browser, &flow, "961000000006").await;
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
    // A signature that does not verify is called that, not a library error.
    let options = options_for(&env, &browser, &flow, "961000000006").await;
    let answer = key
        .do_authentication(origin(&env), serde_json::from_value(options).unwrap())
        .unwrap();
    let mut answer = serde_json::to_value(&answer).unwrap();
    let signature = answer["response"]["signature"].as_str().unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let last = signature.len() - 1;
    signature[last] ^= 0x55;
    answer["response"]["signature"] = json!(URL_SAFE_NO_PAD.encode(&signature));
    let r = post_credential(
        &browser,
        &env.endpoint("/webauthn/authenticate"),
        &answer.to_string(),
    )
    .await;
    assert_eq!(
        r.status(),
        403,
        "an authentication that failed, like a blocked key"
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("signature does not match"), "{page}");
    assert!(!page.contains("OpenSSL"), "{page}");
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
    enrol_security_key(&env, &browser, &mut key, "961000000007").await;
    let flow = login_flow(&env, &browser, &client, &[]).await;
    let options = options_for(&env, &browser, &flow, "961000000007").await;
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

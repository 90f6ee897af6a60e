//! The attestation policy as relying parties see it: AAL3 only for trusted, device-bound
//! authenticators (configured roots or a FIDO metadata BLOB), AAL2 otherwise, in `acr`, `amr` and
//! `authentication_assurance_level`; step-up from an AAL2 session to AAL3.

use super::*;

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
        .admin_list_authenticators(&ra_manager(), "961000000001")
        .await
        .unwrap();
    let listed = serde_json::to_value(listed).unwrap();
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
    assert_eq!(
        env.silent_error(&browser, &client.client.metadata.client_id, &[])
            .await
            .as_deref(),
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
        .admin_list_authenticators(&ra_manager(), "961000000003")
        .await
        .unwrap();
    let listed = serde_json::to_value(listed).unwrap();
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
async fn step_up_from_an_aal2_session_to_aal3_needs_a_new_authentication() {
    let (mut key, _untrusted) = soft_token();
    let (env, client, card) = setup_with_card(None, "961000000009").await;
    let browser = env.browser(Some(&card));
    enrol_security_key(&env, &browser, &mut key, "961000000009").await;
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

/// A metadata BLOB, signed under a fresh root, listing the soft token's model with its
/// attestation root and these status reports.
fn metadata_blob(now: i64, attestation_root_pem: &str, statuses: &[&str]) -> (String, String) {
    let mds_root = careid::pki::Authority::root("FIDO Alliance", "MDS root", now).unwrap();
    let signer = mds_root.server_cert(&["mds.example"], now).unwrap();
    let root_der = openssl::x509::X509::from_pem(attestation_root_pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let reports: Vec<Value> = statuses.iter().map(|s| json!({ "status": s })).collect();
    let payload = json!({
        "no": 1, "nextUpdate": "2099-01-01",
        "entries": [{
            "aaguid": webauthn_authenticator_rs::softtoken::AAGUID.to_string(),
            "metadataStatement": {
                "description": "soft token",
                "attestationRootCertificates": [base64::engine::general_purpose::STANDARD.encode(root_der)]
            },
            "statusReports": reports
        }]
    });
    let mut header = josekit::jws::JwsHeader::new();
    header.set_x509_certificate_chain(&vec![signer.der.clone()]);
    let key = josekit::jws::ES256
        .signer_from_pem(&signer.key_pem)
        .unwrap();
    let blob =
        josekit::jws::serialize_compact(payload.to_string().as_bytes(), &header, &key).unwrap();
    (blob, mds_root.pem())
}

#[tokio::test]
async fn a_model_trusted_by_the_metadata_blob_is_aal3_unless_it_is_reported_compromised() {
    let now = careid::clock::Clock::now(&careid::clock::SystemClock);
    for (statuses, expected_aal) in [
        (vec!["FIDO_CERTIFIED_L1"], "3"),
        (vec!["FIDO_CERTIFIED_L1", "USER_VERIFICATION_BYPASS"], "2"),
    ] {
        let (mut key, root) = soft_token();
        let env = TestEnv::start_with(Options {
            metadata_blob: Some(metadata_blob(now, &root, &statuses)),
            ..Default::default()
        })
        .await;
        env.user_with_card("961000000012").await;
        let client = env.confidential_client().await;
        let browser = env.browser(None);
        let code = invite(&env, "961000000012").await;
        let (status, page) = register(
            &env,
            &browser,
            &mut key,
            json!({ "invitation": code, "kind": "security_key" }),
            |_| {},
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let r = sign_in(
            &env,
            &browser,
            &client,
            &mut key,
            "961000000012",
            "AAL2_OR_AAL3_ANY",
        )
        .await;
        let claims = id_token_claims(&env, &client, r).await;
        assert_eq!(
            claims["authentication_assurance_level"], expected_aal,
            "{statuses:?}"
        );
    }
}

//! What onboarding refuses: registration without a usable initial access token, production
//! scopes in integration, one client's registration token on another, a supplier approving its
//! own client, people who are neither developers nor managers; and RFC 7592 update, delete and
//! secret rotation with its overlap window.

use reqwest::Method;

use super::*;

fn minimal() -> Value {
    json!({ "client_name": "Ward List", "redirect_uris": [RP_REDIRECT] })
}

#[tokio::test]
async fn registration_needs_an_unused_unexpired_initial_access_token() {
    let env = TestEnv::start().await;
    let tool = env.admin_client().await;
    let desk = supplier_desk(&env, &tool, "Ward Apps Ltd", "750000000001").await;
    // None, or a made-up one.
    for token in [None, Some("made-up")] {
        let (status, body) = register(&env, token, minimal()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token")),
            "{body}"
        );
    }
    // A person's access token is not an initial access token.
    let (status, _) = register(&env, Some(&desk.developer_token), minimal()).await;
    assert_eq!(status, 401);
    // Used once, then no more.
    let iat = initial_token(&env, &desk).await;
    assert_eq!(register(&env, Some(&iat), minimal()).await.0, 201);
    assert_eq!(register(&env, Some(&iat), minimal()).await.0, 401);
    // Expired.
    let iat = initial_token(&env, &desk).await;
    env.clock.advance(
        env.server
            .provider
            .config
            .onboarding
            .initial_access_token_ttl_secs
            + 1,
    );
    assert_eq!(register(&env, Some(&iat), minimal()).await.0, 401);
}

#[tokio::test]
async fn bad_metadata_and_production_scopes_are_refused_in_integration() {
    let env = TestEnv::start().await;
    let (status, body) = {
        let tool = env.admin_client().await;
        let desk = supplier_desk(&env, &tool, "Ward Apps Ltd", "750000000011").await;
        let iat = initial_token(&env, &desk).await;
        let mut m = minimal();
        m["scope"] = "openid offline_access".into();
        let refused = register(&env, Some(&iat), m).await;
        // The token was not spent on a refused registration.
        let mut bad_uri = minimal();
        bad_uri["redirect_uris"] = json!(["https://rp.example.org/cb#fragment"]);
        let r = register(&env, Some(&iat), bad_uri).await;
        assert_eq!(
            (r.0, r.1["error"].as_str()),
            (400, Some("invalid_redirect_uri")),
            "{}",
            r.1
        );
        let admin_scope = register(&env, Some(&iat), json!({ "client_name": "x", "redirect_uris": [RP_REDIRECT], "scope": "openid careid:admin" })).await;
        assert_eq!(
            (admin_scope.0, admin_scope.1["error"].as_str()),
            (400, Some("invalid_client_metadata"))
        );
        let not_json = env
            .http()
            .post(env.endpoint("/connect/register"))
            .bearer_auth(&iat)
            .body("client_name=x")
            .send()
            .await
            .unwrap();
        assert_eq!(not_json.status(), 400);
        assert_eq!(register(&env, Some(&iat), minimal()).await.0, 201);
        refused
    };
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata")),
        "{body}"
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("offline_access is for production clients only"));
}

#[tokio::test]
async fn registration_tokens_manage_their_own_client_and_secrets_rotate_with_an_overlap() {
    let env = TestEnv::start().await;
    let tool = env.admin_client().await;
    let desk = supplier_desk(&env, &tool, "Ward Apps Ltd", "750000000021").await;
    let (_, a) = register(&env, Some(&initial_token(&env, &desk).await), minimal()).await;
    let (_, b) = register(&env, Some(&initial_token(&env, &desk).await), minimal()).await;
    // A's token on B's registration URI.
    let mut crossed = b.clone();
    crossed["registration_access_token"] = a["registration_access_token"].clone();
    for method in [Method::GET, Method::DELETE] {
        assert_eq!(manage(&env, method, &crossed, "", None).await.0, 401);
    }
    // Update: a new name; the id in the body must be the client's.
    let mut update = minimal();
    update["client_name"] = "Ward List 2".into();
    let (status, updated) = manage(&env, Method::PUT, &a, "", Some(update.clone())).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["client_name"], "Ward List 2");
    assert_eq!(updated["client_id"], a["client_id"]);
    update["client_id"] = b["client_id"].clone();
    assert_eq!(manage(&env, Method::PUT, &a, "", Some(update)).await.0, 400);
    let mut method_change = minimal();
    method_change["token_endpoint_auth_method"] = "none".into();
    assert_eq!(
        manage(&env, Method::PUT, &a, "", Some(method_change))
            .await
            .0,
        400
    );

    // Rotation: both secrets work during the overlap, then only the new one.
    let old = a["client_secret"].as_str().unwrap().to_string();
    let (status, rotated) = manage(&env, Method::POST, &a, "/secret", None).await;
    assert_eq!(status, 200);
    let new = rotated["client_secret"].as_str().unwrap().to_string();
    let client_id = a["client_id"].as_str().unwrap();
    let credentials = |secret: String| {
        let env = &env;
        let client_id = client_id.to_string();
        async move {
            env.http()
                .post(env.endpoint("/introspect"))
                .basic_auth(&client_id, Some(secret))
                .form(&[("token", "anything")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(credentials(old.clone()).await, 200);
    assert_eq!(credentials(new.clone()).await, 200);
    env.clock
        .advance(env.server.provider.config.onboarding.secret_overlap_secs + 1);
    env.server.provider.forget_client(client_id);
    assert_eq!(credentials(old).await, 401);
    assert_eq!(credentials(new).await, 200);

    // Delete: the client and its registration token stop working.
    assert_eq!(manage(&env, Method::DELETE, &a, "", None).await.0, 204);
    assert_eq!(manage(&env, Method::GET, &a, "", None).await.0, 401);
}

#[tokio::test]
async fn a_supplier_cannot_approve_its_own_client_and_strangers_cannot_act() {
    let env = TestEnv::start().await;
    let tool = env.admin_client().await;
    let desk = supplier_desk(&env, &tool, "Ward Apps Ltd", "750000000031").await;
    let p = &env.server.provider;
    // The developer is also an onboarding manager: still not for their own supplier's client.
    p.add_onboarding_member("750000000031", None, "test")
        .await
        .unwrap();
    let other = p.create_supplier("Other Ltd", "test").await.unwrap();
    let request = careid::model::onboarding::PromotionRequest {
        id: "req-1".into(),
        client_id: {
            let (_, c) = register(&env, Some(&initial_token(&env, &desk).await), minimal()).await;
            c["client_id"].as_str().unwrap().to_string()
        },
        report_id: "r".into(),
        requested_by: "supplier".into(),
        requested_at: env.now(),
        decided_by: None,
        decided_at: None,
        outcome: None,
        reason: None,
    };
    env.db.insert_promotion_request(&request).await.unwrap();
    let (status, body) = onboarding_post(
        &env,
        &desk.developer_token,
        "/promotions/req-1",
        json!({ "decision": "approve", "reason": "looks fine" }),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("supplier's own developer"));
    // Developers act only for their own supplier.
    let (status, _) = onboarding_post(
        &env,
        &desk.developer_token,
        &format!("/suppliers/{}/initial-access-tokens", other.id),
        json!({}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = onboarding_post(
        &env,
        &desk.developer_token,
        &format!("/suppliers/{}/test-identities", other.id),
        json!({ "given_name": "a", "family_name": "b" }),
    )
    .await;
    assert_eq!(status, 403);
    // Someone who is neither developer nor manager, and a relying party's token.
    let stranger = person_token(&env, &tool, &env.user_with_card("750000000032").await).await;
    assert_eq!(
        onboarding_post(
            &env,
            &stranger,
            "/promotions/req-1",
            json!({ "decision": "approve", "reason": "x" })
        )
        .await
        .0,
        403
    );
    let rp = env.confidential_client().await;
    let rp_tokens = env
        .tokens_in(
            &env.browser(Some(&env.user_with_card("750000000033").await)),
            &rp,
            "openid",
        )
        .await;
    let r = env
        .http()
        .get(env.endpoint("/onboarding/api/v1/promotions"))
        .bearer_auth(rp_tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "a relying party's token (not careid's tool) is refused"
    );
    let r = env
        .http()
        .get(env.endpoint("/onboarding/api/v1/promotions"))
        .bearer_auth(&desk.developer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the developer is also a manager: the queue is theirs to see"
    );
    assert_eq!(
        onboarding_post(&env, "made-up", "/promotions/req-1", json!({}))
            .await
            .0,
        401
    );
    // A manager from outside the supplier may decide; once.
    let manager = manager_token(&env, &tool, "750000000034").await;
    let (status, body) = onboarding_post(
        &env,
        &manager,
        "/promotions/req-1",
        json!({ "decision": "refuse", "reason": "agreement not signed" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "refused");
    assert_eq!(
        onboarding_post(
            &env,
            &manager,
            "/promotions/req-1",
            json!({ "decision": "approve", "reason": "changed my mind" })
        )
        .await
        .0,
        409
    );
}

#[tokio::test]
async fn test_identities_hold_positions_at_test_organisations_only() {
    let env = TestEnv::start_with(Options {
        configure: Some(|c| c.onboarding.test_organisations = vec!["RZ8".into()]),
        ..Default::default()
    })
    .await;
    careid::domain::rbac::import(
        &env.db,
        include_str!("../../../config/rbac-sample.json"),
        "test",
        env.now(),
    )
    .await
    .unwrap();
    let tool = env.admin_client().await;
    let desk = supplier_desk(&env, &tool, "Ward Apps Ltd", "750000000041").await;
    let at_test_org = env
        .db
        .position_by_name("RZ8", "Immunisation Nurse (inter-organisation)")
        .await
        .unwrap()
        .unwrap();
    let at_real_org = env
        .db
        .position_by_name("RZ9", "Staff Nurse - Example Ward 7")
        .await
        .unwrap()
        .unwrap();
    let path = format!("/suppliers/{}/test-identities", desk.supplier.id);
    // A real organisation's position: refused, and no identity is made.
    let (status, body) = onboarding_post(
        &env,
        &desk.developer_token,
        &path,
        json!({ "given_name": "Tess", "family_name": "Ting", "positions": [at_real_org] }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("not a position at a test organisation"));
    // A test organisation's position: the test identity holds it from now.
    let (status, body) = onboarding_post(
        &env,
        &desk.developer_token,
        &path,
        json!({ "given_name": "Tess", "family_name": "Ting", "positions": [at_test_org] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let uuid = body["uuid"].as_str().unwrap();
    let roles = careid::domain::rbac::current_roles(&env.db, uuid, env.now())
        .await
        .unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].org_code, "RZ8");
}

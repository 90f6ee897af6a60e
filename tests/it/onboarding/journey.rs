//! The supplier's journey end to end: register by DCR, sign a test identity in with an
//! `openidconnect` relying party, pass the checks, get approved, and then a real identity signs
//! in to the production client. And the same journey with a broken back-channel endpoint:
//! promotion refused, with the reason.

use std::sync::{Arc, Mutex};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use reqwest::Method;

use super::*;

/// An `openidconnect` relying party signs the card's holder in to `client_id` and calls
/// userinfo: the subject, or the OAuth error the redirect carried.
async fn rp_sign_in(
    env: &TestEnv,
    client_id: &str,
    secret: &str,
    card: &Issued,
) -> Result<String, String> {
    let http = env.http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(env.issuer.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.into()),
        Some(ClientSecret::new(secret.into())),
    )
    .set_redirect_uri(RedirectUrl::new(RP_REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let SignIn::Redirected(back) = env.browser(Some(card)).sign_in(url.as_str()).await else {
        panic!("careid redirects back to the RP")
    };
    let Some(code) = query_param(&back, "code") else {
        return Err(query_param(&back, "error").unwrap_or_default());
    };
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    let _: openidconnect::core::CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    Ok(claims.subject().to_string())
}

fn metadata(backchannel: &str) -> Value {
    json!({
        "client_name": "Ward List",
        "redirect_uris": [RP_REDIRECT],
        "backchannel_logout_uri": backchannel,
        "scope": "openid profile",
        "scope_justification": "Shows the signed-in clinician's name on the ward list",
        "careid_admin": true,
    })
}

#[tokio::test]
async fn a_supplier_registers_tests_passes_the_checks_and_goes_live_on_approval() {
    let env = TestEnv::start().await;
    let tool = env.admin_client().await;
    let desk = supplier_desk(&env, &tool, "Ward Apps Ltd", "740000000001").await;
    let manager = manager_token(&env, &tool, "740000000002").await;
    let real = env.user_with_card("740000000003").await;

    // 1. Register by DCR with an initial access token.
    let registered_id = Arc::new(Mutex::new(String::new()));
    let backchannel = backchannel_endpoint(&env, registered_id.clone(), false).await;
    let iat = initial_token(&env, &desk).await;
    let (status, registered) = register(&env, Some(&iat), metadata(&backchannel)).await;
    assert_eq!(status, 201, "{registered}");
    let client_id = registered["client_id"].as_str().unwrap().to_string();
    let secret = registered["client_secret"].as_str().unwrap().to_string();
    *registered_id.lock().unwrap() = client_id.clone();
    assert_eq!(registered["careid_stage"], "integration");
    assert!(
        registered.get("careid_admin").is_none(),
        "careid's own extensions cannot be registered"
    );
    assert!(registered["registration_access_token"].is_string());
    // RFC 7592 read.
    let (status, read) = manage(&env, Method::GET, &registered, "", None).await;
    assert_eq!(status, 200);
    assert_eq!(read["client_id"], client_id.as_str());
    assert!(
        read.get("client_secret").is_none(),
        "the secret is shown once"
    );

    // 2. Before any test sign-in, promotion is refused and says what to do.
    let (status, refused) = manage(&env, Method::POST, &registered, "/promotion", None).await;
    assert_eq!(status, 422);
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("test_sign_in: sign a test identity in"),
        "{refused}"
    );

    // 3. A real identity cannot sign in to an integration client; a test identity can.
    assert_eq!(
        rp_sign_in(&env, &client_id, &secret, &real).await,
        Err("access_denied".into())
    );
    let (tester, tester_card) = test_identity(&env, &desk).await;
    assert!(tester.starts_with("99"));
    assert_eq!(
        rp_sign_in(&env, &client_id, &secret, &tester_card).await,
        Ok(tester.clone())
    );

    // 4. The checks pass: promotion is queued for the managers.
    let (status, report) = manage(&env, Method::POST, &registered, "/conformance", None).await;
    assert_eq!(status, 200);
    assert_eq!(report["passed"], true, "{report}");
    let backchannel_check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "backchannel_logout")
        .unwrap();
    assert!(
        backchannel_check["detail"]
            .as_str()
            .unwrap()
            .contains("another key: 400"),
        "{backchannel_check}"
    );
    let (status, queued) = manage(&env, Method::POST, &registered, "/promotion", None).await;
    assert_eq!(status, 202, "{queued}");
    let request_id = queued["id"].as_str().unwrap().to_string();
    let r = env
        .http()
        .get(env.endpoint("/onboarding/api/v1/promotions"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    let queue: Value = r.json().await.unwrap();
    assert!(queue["requests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|q| q["id"] == request_id.as_str()));

    // 5. The manager approves; the client is live.
    let (status, decided) = onboarding_post(
        &env,
        &manager,
        &format!("/promotions/{request_id}"),
        json!({ "decision": "approve", "reason": "checks passed, agreement signed" }),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["outcome"], "approved");
    let (_, read) = manage(&env, Method::GET, &registered, "", None).await;
    assert_eq!(read["careid_stage"], "production");

    // 6. Now the real identity signs in, and the test identity cannot.
    assert_eq!(
        rp_sign_in(&env, &client_id, &secret, &real).await,
        Ok("740000000003".into())
    );
    assert_eq!(
        rp_sign_in(&env, &client_id, &secret, &tester_card).await,
        Err("access_denied".into())
    );
    assert!(audit_kinds(&env, 200)
        .await
        .iter()
        .any(|k| k == "onboarding.promotion_decided"));
}

#[tokio::test]
async fn a_back_channel_endpoint_that_answers_500_keeps_the_client_in_integration() {
    let env = TestEnv::start().await;
    let tool = env.admin_client().await;
    let desk = supplier_desk(&env, &tool, "Broken Ltd", "740000000011").await;
    let backchannel = backchannel_endpoint(&env, Arc::new(Mutex::new(String::new())), true).await;
    let iat = initial_token(&env, &desk).await;
    let (status, registered) = register(&env, Some(&iat), metadata(&backchannel)).await;
    assert_eq!(status, 201, "{registered}");
    let (tester, card) = test_identity(&env, &desk).await;
    let client_id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().unwrap();
    assert_eq!(rp_sign_in(&env, client_id, secret, &card).await, Ok(tester));
    let (status, refused) = manage(&env, Method::POST, &registered, "/promotion", None).await;
    assert_eq!(status, 422, "{refused}");
    let reason = refused["error_description"].as_str().unwrap();
    assert!(
        reason.contains("backchannel_logout") && reason.contains("answered 500"),
        "{reason}"
    );
    assert!(
        !reason.contains("test_sign_in"),
        "only the broken check is named: {reason}"
    );
    // Nothing waits for a manager, and the evidence is kept.
    assert!(env.db.open_promotion_requests().await.unwrap().is_empty());
    let (status, last) = manage(&env, Method::GET, &registered, "/conformance", None).await;
    assert_eq!(status, 200);
    assert_eq!(last["passed"], false);
}

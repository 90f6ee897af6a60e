//! A relying party signs a user in with a smartcard, end to end: discovery, authorization with a
//! client certificate, code, token exchange, ID token verified against the JWKS, userinfo. Then
//! what the session does on the next request: single sign-on, prompt, max_age, expiry, logout.

use careid::domain::client::ClientRequest;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn openidconnect_relying_party_signs_in_with_a_smartcard() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("012345678901").await;
    let registered = env.confidential_client().await;
    let http = env.http();

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(env.issuer.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.client.metadata.client_id.clone()),
        registered.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(RP_REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("nhsperson".into()))
        .set_pkce_challenge(challenge)
        .url();

    let SignIn::Redirected(back) = env.browser(Some(&card)).sign_in(url.as_str()).await else {
        panic!("no redirect")
    };
    assert!(back.starts_with(RP_REDIRECT));
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(env.issuer.as_str())
    );
    assert!(query_param(&back, "session_state").is_some());
    let code = query_param(&back, "code").unwrap();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("ID token verifies against the JWKS");
    assert_eq!(claims.subject().as_str(), "012345678901");
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));

    let raw = jwt_claims(&id_token.to_string());
    assert_eq!(raw["acr"], "AAL3_ANY", "no acr_values means AAL3_ANY");
    assert_eq!(raw["amr"], json!(["N3_SMARTCARD"]));
    assert_eq!(raw["authentication_assurance_level"], "3");
    assert_eq!(raw["id_assurance_level"], "3");
    assert_eq!(
        raw["aud"],
        registered.client.metadata.client_id.as_str(),
        "aud is a plain string"
    );
    assert!(raw["sid"].is_string() && raw["auth_time"].is_i64());
    assert_eq!(jwt_header(&id_token.to_string())["alg"], "RS256");

    let access = tokens.access_token().secret();
    assert_eq!(jwt_header(access)["typ"], "at+jwt");
    assert_eq!(tokens.expires_in().map(|d| d.as_secs()), Some(3599));

    let userinfo: openidconnect::core::CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(
        userinfo.email().map(|e| e.as_str()),
        Some("012345678901@example.nhs.uk")
    );

    let raw_info: serde_json::Value = http
        .get(env.endpoint("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw_info["sub"], "012345678901");
    assert_eq!(raw_info["uid"], "012345678901");
    assert_eq!(raw_info["nhsid_useruid"], "012345678901");
    assert_eq!(raw_info["idassurancelevel"], "3");
}

#[tokio::test]
async fn cis2_style_issuer_serves_forgerock_paths_without_pkce_or_nonce() {
    let env = TestEnv::start_with(Options {
        issuer_path: CIS2_PATH.into(),
        ..Default::default()
    })
    .await;
    let card = env.user_with_card("000123456789").await;
    let client = env
        .client(ClientRequest {
            client_name: "CIS2 RP".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            auth_method: Some("client_secret_post".into()),
            allow_missing_pkce: true,
            ..Default::default()
        })
        .await;
    let id = client.client.metadata.client_id.clone();
    let http = env.http();

    let discovery: serde_json::Value = http
        .get(env.endpoint("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["issuer"],
        env.issuer.as_str(),
        "issuer published byte for byte"
    );
    assert_eq!(discovery["token_endpoint"], env.endpoint("/access_token"));
    assert_eq!(discovery["jwks_uri"], env.endpoint("/connect/jwk_uri"));
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );

    let url = env.authorize_url(
        &id,
        &[
            ("scope", "openid profile nationalrbacaccess"),
            ("prompt", "login"),
            ("max_age", "300"),
        ],
        false,
    );
    let SignIn::Redirected(back) = env.browser(Some(&card)).sign_in(&url).await else {
        panic!("no redirect")
    };
    let code = query_param(&back, "code").expect("code");

    let token: serde_json::Value = http
        .post(env.endpoint("/access_token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP_REDIRECT),
            ("client_id", &id),
            ("client_secret", client.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = token["id_token"].as_str().unwrap();
    let claims = jwt_claims(id_token);
    assert_eq!(claims["iss"], env.issuer.as_str());
    assert!(
        claims.get("nonce").is_none(),
        "no nonce claim when none was sent"
    );
    assert_eq!(token["token_type"], "Bearer");

    let jwks: serde_json::Value = http
        .get(env.endpoint("/connect/jwk_uri"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwt_header(id_token)["kid"].clone();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid && k["use"] == "sig"),
        "signing key published under the ForgeRock path"
    );

    let info: serde_json::Value = http
        .get(env.endpoint("/userinfo"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(
        info["nhsid_nrbac_roles"],
        json!([]),
        "role list always present under nationalrbacaccess"
    );
}

#[tokio::test]
async fn session_gives_single_sign_on_until_prompt_login_max_age_or_idle_timeout() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("111111111111").await;
    let client = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let browser = env.browser(Some(&card));
    let SignIn::Redirected(first) = browser.sign_in(&env.authorize_url(&id, &[], true)).await
    else {
        panic!()
    };
    let first_sid = jwt_claims(
        env.redeem(&client, &query_param(&first, "code").unwrap())
            .await
            .json::<serde_json::Value>()
            .await
            .unwrap()["id_token"]
            .as_str()
            .unwrap(),
    )["sid"]
        .clone();

    // Same browser, no prompt: straight back with a code from the same session.
    let r = browser
        .client
        .get(env.authorize_url(&id, &[], true))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection(),
        "single sign-on redirects at once"
    );
    let code = query_param(&location(&r), "code").unwrap();
    let second: serde_json::Value = env.redeem(&client, &code).await.json().await.unwrap();
    assert_eq!(
        jwt_claims(second["id_token"].as_str().unwrap())["sid"],
        first_sid
    );

    // prompt=login and max_age=0 both demand the card again.
    for extra in [[("prompt", "login")], [("max_age", "0")]] {
        env.clock.advance(1);
        let r = browser
            .client
            .get(env.authorize_url(&id, &extra, true))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{extra:?} shows the sign-in page");
        assert!(card_link(&r.text().await.unwrap()).is_some());
    }

    // Past the idle timeout the session is gone: prompt=none says login_required.
    env.clock.advance(15 * 60);
    let r = browser
        .client
        .get(env.authorize_url(&id, &[("prompt", "none")], true))
        .send()
        .await
        .unwrap();
    let back = location(&r);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-1"));
}

#[tokio::test]
async fn prompt_none_without_a_session_returns_login_required_to_the_client() {
    let env = TestEnv::start().await;
    let client = env.confidential_client().await;
    let r = env
        .browser(None)
        .client
        .get(env.authorize_url(
            &client.client.metadata.client_id,
            &[("prompt", "none")],
            true,
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    let back = location(&r);
    assert!(back.starts_with(RP_REDIRECT));
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(env.issuer.as_str())
    );
}

#[tokio::test]
async fn id_tokens_are_signed_with_the_registered_algorithm() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("222222222222").await;
    let http = env.http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(env.issuer.clone()).unwrap(), &http)
            .await
            .unwrap();
    for (alg, core_alg) in [
        ("PS256", CoreJwsSigningAlgorithm::RsaSsaPssSha256),
        ("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
    ] {
        let registered = env
            .client(ClientRequest {
                client_name: alg.into(),
                redirect_uris: vec![RP_REDIRECT.into()],
                id_token_signing_alg: Some(alg.into()),
                ..Default::default()
            })
            .await;
        let code = env.code_for(&registered, &card).await;
        let token: serde_json::Value = env.redeem(&registered, &code).await.json().await.unwrap();
        let raw = token["id_token"].as_str().unwrap();
        assert_eq!(jwt_header(raw)["alg"], alg);
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(registered.client.metadata.client_id.clone()),
            None,
        );
        let id_token: openidconnect::core::CoreIdToken =
            serde_json::from_value(json!(raw)).unwrap();
        let verifier = client.id_token_verifier().set_allowed_algs(vec![core_alg]);
        id_token
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .expect("verifies with the published key");
    }
}

#[tokio::test]
async fn logout_ends_the_session_revokes_its_tokens_and_returns_only_to_registered_uris() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("333333333333").await;
    let client = env
        .client(ClientRequest {
            client_name: "RP".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            post_logout_redirect_uris: vec!["https://rp.example.org/signed-out".into()],
            ..Default::default()
        })
        .await;
    let browser = env.browser(Some(&card));
    let SignIn::Redirected(back) = browser
        .sign_in(&env.authorize_url(&client.client.metadata.client_id, &[], true))
        .await
    else {
        panic!()
    };
    let tokens: serde_json::Value = env
        .redeem(&client, &query_param(&back, "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();

    let bad = browser
        .client
        .get(env.endpoint("/logout"))
        .query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status(),
        400,
        "unregistered post_logout_redirect_uri is refused"
    );
    assert!(bad.headers().get("location").is_none());

    let r = browser
        .client
        .get(env.endpoint("/connect/endSession"))
        .query(&[
            ("id_token_hint", id_token),
            (
                "post_logout_redirect_uri",
                "https://rp.example.org/signed-out",
            ),
            ("state", "bye"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "https://rp.example.org/signed-out?state=bye");

    let info = env
        .http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        info.status(),
        401,
        "tokens of an ended session stop working"
    );
    assert!(info.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(
        env.silent_error(&browser, &client.client.metadata.client_id, &[])
            .await
            .as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn logout_without_id_token_hint_asks_the_person_to_confirm() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("444444444444").await;
    let client = env.confidential_client().await;
    let browser = env.browser(Some(&card));
    let SignIn::Redirected(_) = browser
        .sign_in(&env.authorize_url(&client.client.metadata.client_id, &[], true))
        .await
    else {
        panic!()
    };
    let page = browser
        .client
        .get(env.endpoint("/logout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Sign out of careid?"),
        "a link alone does not sign anyone out"
    );
    let forged = browser
        .client
        .post(env.endpoint("/logout"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert!(
        forged.text().await.unwrap().contains("Sign out of careid?"),
        "a wrong CSRF token does not sign out"
    );
    let token = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let done = browser
        .client
        .post(env.endpoint("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(done.text().await.unwrap().contains("You are signed out"));
    assert_eq!(
        env.silent_error(&browser, &client.client.metadata.client_id, &[])
            .await
            .as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn rotated_keys_sign_new_tokens_while_old_ones_stay_verifiable() {
    use careid::domain::client::{NewClient, SigningAlg};
    use careid::domain::keys::Activation;
    use careid::pki::Issued;

    async fn tokens(env: &TestEnv, client: &NewClient, card: &Issued) -> serde_json::Value {
        env.redeem(client, &env.code_for(client, card).await)
            .await
            .json()
            .await
            .unwrap()
    }
    fn kid(tokens: &serde_json::Value) -> serde_json::Value {
        jwt_header(tokens["id_token"].as_str().unwrap())["kid"].clone()
    }

    let env = TestEnv::start().await;
    let card = env.user_with_card("555555555555").await;
    let client = env.confidential_client().await;
    let before = tokens(&env, &client, &card).await;
    let old_kid = kid(&before);
    let rotated = env
        .server
        .provider
        .rotate_keys(Activation::AfterPublication)
        .await
        .unwrap();
    let new = rotated.iter().find(|k| k.alg == SigningAlg::RS256).unwrap();
    let new_kid = serde_json::Value::from(new.kid.clone());
    assert_ne!(old_kid, new_kid);

    // Published at once, but the old key signs until the new one activates.
    let jwks: serde_json::Value = env
        .http()
        .get(env.endpoint("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&serde_json::Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert!(
        kids.contains(&&old_kid) && kids.contains(&&new_kid),
        "both keys published: {kids:?}"
    );
    assert_eq!(kid(&tokens(&env, &client, &card).await), old_kid);
    env.clock.advance(new.activate_at - 60 - env.now());
    env.server.provider.reload_keys().await.unwrap();
    let last_by_old = tokens(&env, &client, &card).await;
    assert_eq!(kid(&last_by_old), old_kid);

    // From its activation the new key signs; tokens of the old one still verify.
    env.clock.advance(60);
    env.server.provider.reload_keys().await.unwrap();
    assert_eq!(kid(&tokens(&env, &client, &card).await), new_kid);
    let info = env
        .http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(last_by_old["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        info.status(),
        200,
        "a token signed by the replaced key still works"
    );
    assert_eq!(before.get("refresh_token"), None);
}

#[tokio::test]
async fn an_access_token_is_not_accepted_as_an_id_token_hint() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("666666666666").await;
    let client = env.confidential_client().await;
    let tokens: serde_json::Value = env
        .redeem(&client, &env.code_for(&client, &card).await)
        .await
        .json()
        .await
        .unwrap();
    let r = env
        .http()
        .get(env.endpoint("/connect/endSession"))
        .query(&[("id_token_hint", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "an access token is no ID token");
    let info = env
        .http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200, "and the session was not ended by it");
    let r = env
        .http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(tokens["id_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an ID token is no access token");
}

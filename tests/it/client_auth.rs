//! Client authentication and code redemption at the token endpoint: every method careid offers
//! works, and each attack fails with the standard error.

use careid::domain::client::ClientRequest;
use serde_json::json;

use crate::helpers::*;

/// Builds a token request form around a code.
type FormFor = Box<dyn Fn(String) -> Vec<(&'static str, String)>>;

async fn post_token(
    env: &TestEnv,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let r = env
        .http()
        .post(env.endpoint("/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(json!(null)), headers)
}

#[tokio::test]
async fn private_key_jwt_accepts_each_algorithm_and_refuses_replay() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341234").await;
    for alg in ["RS512", "RS256", "PS256", "ES256"] {
        let key = rp_key(alg, &format!("{alg}-key"));
        let client = env
            .client(ClientRequest {
                client_name: format!("pkjwt {alg}"),
                redirect_uris: vec![RP_REDIRECT.into()],
                auth_method: Some("private_key_jwt".into()),
                jwks: Some(
                    json!({ "keys": [serde_json::Value::Object(key.public.as_ref().clone())] }),
                ),
                ..Default::default()
            })
            .await;
        let id = client.client.metadata.client_id.clone();
        let jwt = assertion(
            &key,
            &format!("{alg}-key"),
            &id,
            &env.endpoint("/token"),
            env.now(),
            &format!("jti-{alg}"),
        );
        let code = env.code_for(&client, &card).await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", id.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt.as_str()),
        ];
        let (status, body, headers) = post_token(&env, &form).await;
        assert_eq!(status, 200, "{alg}: {body}");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(body["id_token"].is_string());

        let code = env.code_for(&client, &card).await;
        let replay = [
            ("code", code.as_str()),
            form[0],
            form[2],
            form[3],
            form[4],
            form[5],
            form[6],
        ];
        let (status, body, _) = post_token(&env, &replay).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{alg}: replayed assertion"
        );
    }
}

#[tokio::test]
async fn private_key_jwt_checks_audience_expiry_and_signature() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341235").await;
    let key = rp_key("RS512", "k1");
    let stranger = rp_key("RS512", "k1");
    let client = env
        .client(ClientRequest {
            client_name: "pkjwt".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            auth_method: Some("private_key_jwt".into()),
            jwks: Some(json!({ "keys": [serde_json::Value::Object(key.public.as_ref().clone())] })),
            ..Default::default()
        })
        .await;
    let id = client.client.metadata.client_id.clone();
    let now = env.now();
    let cases = [
        (
            "issuer as audience",
            assertion(&key, "k1", &id, &env.issuer, now, "a1"),
            200,
        ),
        (
            "ForgeRock token path as audience",
            assertion(&key, "k1", &id, &env.endpoint("/access_token"), now, "a2"),
            200,
        ),
        (
            "another audience",
            assertion(&key, "k1", &id, "https://other.example/token", now, "a3"),
            401,
        ),
        (
            "expired",
            assertion(&key, "k1", &id, &env.issuer, now - 400, "a4"),
            401,
        ),
        (
            "signed by another key",
            assertion(&stranger, "k1", &id, &env.issuer, now, "a5"),
            401,
        ),
        (
            "issuer is another client",
            assertion(
                &key,
                "k1",
                "999999999999.apps.national",
                &env.issuer,
                now,
                "a6",
            ),
            401,
        ),
    ];
    for (what, jwt, expected) in cases {
        let code = env.code_for(&client, &card).await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", VERIFIER),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt.as_str()),
        ];
        let (status, body, _) = post_token(&env, &form).await;
        assert_eq!(status, expected, "{what}: {body}");
        if expected == 401 {
            assert_eq!(body["error"], "invalid_client", "{what}");
            // CIS2's words, which relying parties match on; the reason is in the audit trail.
            assert_eq!(body["error_description"], "JWT is not valid", "{what}");
        }
    }
}

#[tokio::test]
async fn private_key_jwt_keys_can_come_from_a_jwks_uri() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341236").await;
    let key = rp_key("RS256", "remote");
    let jwks_uri = serve_jwks(key.jwks()).await;
    let client = env
        .client(ClientRequest {
            client_name: "remote keys".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            auth_method: Some("private_key_jwt".into()),
            jwks_uri: Some(jwks_uri),
            ..Default::default()
        })
        .await;
    let id = client.client.metadata.client_id.clone();
    let code = env.code_for(&client, &card).await;
    let jwt = assertion(
        &key,
        "remote",
        &id,
        &env.endpoint("/token"),
        env.now(),
        "r1",
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", RP_REDIRECT),
        ("code_verifier", VERIFIER),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", jwt.as_str()),
    ];
    let (status, body, _) = post_token(&env, &form).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn client_secret_methods_must_match_registration_and_secret() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341237").await;
    let basic = env.confidential_client().await;
    let id = basic.client.metadata.client_id.clone();

    let code = env.code_for(&basic, &card).await;
    let r = env
        .http()
        .post(env.endpoint("/token"))
        .basic_auth(&id, Some("wrong-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_client"
    );

    // The right secret in the body is still the wrong method for a client_secret_basic client.
    let (status, body, _) = post_token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &id),
            ("client_secret", basic.secret.as_deref().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // A failed authentication did not consume the code.
    assert_eq!(env.redeem(&basic, &code).await.status(), 200);
}

/// A code whose replay has been seen (and so marked) is never redeemed afterwards, even if the
/// mark got there before any redemption: no token can outlive the replay's revocation.
#[tokio::test]
async fn a_code_marked_replayed_is_never_redeemed() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341246").await;
    let client = env.confidential_client().await;
    let code = env.code_for(&client, &card).await;
    let hash = careid::domain::secrets::digest(&code);
    assert_eq!(
        env.db
            .revoke_tokens_of_code(&hash, env.now())
            .await
            .unwrap(),
        0,
        "nothing issued yet"
    );
    let r = env.redeem(&client, &code).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn codes_are_single_use_and_reuse_revokes_the_tokens() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341238").await;
    let client = env.confidential_client().await;
    let code = env.code_for(&client, &card).await;
    let first: serde_json::Value = env.redeem(&client, &code).await.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(
        env.http()
            .get(env.endpoint("/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let again = env.redeem(&client, &code).await;
    assert_eq!(again.status(), 400);
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let after = env
        .http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        401,
        "tokens issued from a reused code are revoked"
    );
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_uri_pkce_and_lifetime() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341239").await;
    let client = env.confidential_client().await;
    let other = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let secret = client.secret.clone().unwrap();
    let token = |form: Vec<(&'static str, String)>, id: String, secret: String| {
        let http = env.http();
        let url = env.endpoint("/token");
        async move {
            http.post(url)
                .basic_auth(id, Some(secret))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let cases: Vec<(&str, FormFor, bool)> = vec![
        (
            "missing verifier",
            Box::new(|c| {
                vec![
                    ("grant_type", "authorization_code".into()),
                    ("code", c),
                    ("redirect_uri", RP_REDIRECT.into()),
                ]
            }),
            false,
        ),
        (
            "wrong verifier",
            Box::new(|c| {
                vec![
                    ("grant_type", "authorization_code".into()),
                    ("code", c),
                    ("redirect_uri", RP_REDIRECT.into()),
                    ("code_verifier", "x".repeat(50)),
                ]
            }),
            false,
        ),
        (
            "altered redirect_uri",
            Box::new(|c| {
                vec![
                    ("grant_type", "authorization_code".into()),
                    ("code", c),
                    ("redirect_uri", format!("{RP_REDIRECT}/x")),
                    ("code_verifier", VERIFIER.into()),
                ]
            }),
            false,
        ),
        (
            "another client",
            Box::new(|c| {
                vec![
                    ("grant_type", "authorization_code".into()),
                    ("code", c),
                    ("redirect_uri", RP_REDIRECT.into()),
                    ("code_verifier", VERIFIER.into()),
                ]
            }),
            true,
        ),
    ];
    for (what, form, as_other) in cases {
        let code = env.code_for(&client, &card).await;
        let (cid, sec) = if as_other {
            (
                other.client.metadata.client_id.clone(),
                other.secret.clone().unwrap(),
            )
        } else {
            (id.clone(), secret.clone())
        };
        let r = token(form(code), cid, sec).await;
        assert_eq!(r.status(), 400, "{what}");
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["error"],
            "invalid_grant",
            "{what}"
        );
    }
    let code = env.code_for(&client, &card).await;
    env.clock.advance(61);
    let r = env.redeem(&client, &code).await;
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant",
        "expired code"
    );
}

#[tokio::test]
async fn public_clients_must_use_pkce() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341240").await;
    let client = env
        .client(ClientRequest {
            client_name: "native".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            auth_method: Some("none".into()),
            ..Default::default()
        })
        .await;
    let id = client.client.metadata.client_id.clone();
    let r = env
        .browser(None)
        .client
        .get(env.authorize_url(&id, &[], false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_param(&location(&r), "error").as_deref(),
        Some("invalid_request"),
        "no PKCE, no sign-in"
    );
    let code = env.code_for(&client, &card).await;
    let (status, body, _) = post_token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &id),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn malformed_token_requests_get_invalid_request_never_a_server_error() {
    let env = TestEnv::start().await;
    let client = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let secret = client.secret.clone().unwrap();
    let http = env.http();
    let url = env.endpoint("/token");
    let repeated = http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&code=a&code=b")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            repeated.status().as_u16(),
            repeated.json::<serde_json::Value>().await.unwrap()["error"].clone()
        ),
        (400, json!("invalid_request"))
    );
    let json_body = http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_body.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let unsupported = http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        unsupported.json::<serde_json::Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let huge = http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &"x".repeat(200_000)),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        huge.status().is_client_error(),
        "oversized body: {}",
        huge.status()
    );
    let garbage = http
        .post(&url)
        .header("authorization", "Basic %%%")
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    let token_in_query = http
        .get(format!("{}?access_token=abc", env.endpoint("/userinfo")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        token_in_query.status(),
        400,
        "access tokens in a query string are refused"
    );
    for path in ["/token", "/introspect", "/revoke"] {
        let r = http
            .post(format!("{}?token=leaked", env.endpoint(path)))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "authorization_code")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            400,
            "{path}: parameters in the query string are refused"
        );
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["error"],
            "invalid_request"
        );
    }
}

/// A code presented by many requests at once: one gets tokens, every other is refused with
/// `invalid_grant`, and (as with any replay) the tokens issued from it end revoked.
#[tokio::test]
async fn a_code_presented_many_times_at_once_issues_tokens_once_and_revokes_them() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341253").await;
    let client = env.confidential_client().await;
    let code = env.code_for(&client, &card).await;
    let attempts = (0..8).map(|_| env.redeem(&client, &code));
    let mut issued = Vec::new();
    for r in futures::future::join_all(attempts).await {
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        match status {
            200 => issued.push(body["access_token"].as_str().unwrap().to_string()),
            _ => assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant"))
            ),
        }
    }
    assert_eq!(issued.len(), 1, "one presentation gets tokens");
    let jti = jwt_claims(&issued[0])["jti"].as_str().unwrap().to_string();
    assert!(
        !env.db.access_token_active(&jti).await.unwrap(),
        "the replays revoked it"
    );
}

/// A code is good for one presentation: one refused for a wrong verifier is spent, so a
/// second try (now with the right verifier, as an attacker who learns it later would) fails.
#[tokio::test]
async fn a_refused_presentation_spends_the_code() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341261").await;
    let client = env.confidential_client().await;
    let code = env.code_for(&client, &card).await;
    let wrong = env
        .redeem_with_verifier(&client, &code, &"x".repeat(50))
        .await;
    assert_eq!(wrong.status(), 400);
    let again = env.redeem(&client, &code).await;
    assert_eq!(again.status(), 400);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("already been used"));
}

/// careid does not call into private networks for a relying party (SSRF) unless the operator
/// allows the network: a `jwks_uri` on loopback, by address or by a name resolving there, is
/// never fetched, and the assertion is refused as from an unknown key.
#[tokio::test]
async fn a_jwks_uri_on_a_private_address_is_not_fetched_unless_allowed() {
    fn no_private_networks(c: &mut careid::config::Config) {
        c.outbound.allowed_private_networks.clear();
    }
    let env = TestEnv::start_with(Options {
        configure: Some(no_private_networks),
        ..Default::default()
    })
    .await;
    let card = env.user_with_card("123412341290").await;
    let key = rp_key("RS256", "inside");
    let by_address = serve_jwks(key.jwks()).await;
    let by_name = by_address.replace("127.0.0.1", "localhost");
    for (i, jwks_uri) in [by_address, by_name].into_iter().enumerate() {
        let client = env
            .client(ClientRequest {
                client_name: "inside".into(),
                redirect_uris: vec![RP_REDIRECT.into()],
                auth_method: Some("private_key_jwt".into()),
                jwks_uri: Some(jwks_uri.clone()),
                ..Default::default()
            })
            .await;
        let id = client.client.metadata.client_id.clone();
        let code = env.code_for(&client, &card).await;
        let jti = format!("p{i}");
        let jwt = assertion(
            &key,
            "inside",
            &id,
            &env.endpoint("/token"),
            env.now(),
            &jti,
        );
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", VERIFIER),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt.as_str()),
        ];
        let (status, body, _) = post_token(&env, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{jwks_uri}: {body}"
        );
    }
}

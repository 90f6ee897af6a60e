//! The token and session lifecycle: refresh rotation and reuse detection, client credentials,
//! introspection and revocation, back-channel logout through the outbox, housekeeping.

use careid::domain::client::ClientRequest;
use careid::model::identity::UserStatus;
use serde_json::{json, Value};

use crate::helpers::*;

async fn refreshing_client(
    env: &TestEnv,
    scopes: &[&str],
    backchannel: Option<String>,
) -> careid::domain::client::NewClient {
    env.client(ClientRequest {
        client_name: "shift app".into(),
        redirect_uris: vec![RP_REDIRECT.into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        backchannel_logout_uri: backchannel,
        ..Default::default()
    })
    .await
}

async fn token_call(
    env: &TestEnv,
    client: &careid::domain::client::NewClient,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = env
        .http()
        .post(env.endpoint(path))
        .basic_auth(&client.client.metadata.client_id, client.secret.as_deref())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn sign_in(
    env: &TestEnv,
    client: &careid::domain::client::NewClient,
    card: &careid::pki::Issued,
    scope: &str,
) -> (Value, Browser) {
    let browser = env.browser(Some(card));
    let tokens = env.tokens_in(&browser, client, scope).await;
    (tokens, browser)
}

async fn userinfo_status(env: &TestEnv, access: &str) -> u16 {
    env.http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn refresh_tokens_rotate_keep_the_original_authentication_and_reuse_revokes_the_family() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000001").await;
    let client = refreshing_client(&env, &["openid", "profile"], None).await;
    let (first, _) = sign_in(&env, &client, &card, "openid profile").await;
    let original = jwt_claims(first["id_token"].as_str().unwrap());
    let r1 = first["refresh_token"]
        .as_str()
        .expect("a refresh token for a refresh_token client")
        .to_string();

    env.clock.advance(120);
    let (status, second) = token_call(
        &env,
        &client,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "rotated on use");
    let refreshed = jwt_claims(second["id_token"].as_str().unwrap());
    for claim in [
        "acr",
        "amr",
        "auth_time",
        "authentication_assurance_level",
        "sid",
        "sub",
    ] {
        assert_eq!(
            refreshed[claim], original[claim],
            "{claim} carried over unchanged"
        );
    }
    assert!(refreshed["iat"].as_i64() > original["iat"].as_i64());
    assert!(refreshed.get("nonce").is_none());

    // The rotated token presented again: refused, and the whole family dies.
    let (status, body) = token_call(
        &env,
        &client,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = token_call(
        &env,
        &client,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
    )
    .await;
    assert_eq!(status, 400, "the newest token of the family is revoked too");
    assert_eq!(
        userinfo_status(&env, second["access_token"].as_str().unwrap()).await,
        401,
        "and the access tokens issued with it"
    );
    assert!(
        env.db
            .recent_audit(50)
            .await
            .unwrap()
            .iter()
            .any(|e| e.kind == "token.refresh_reuse"),
        "reuse is audited"
    );
}

/// One refresh token presented by several requests at once (a client retrying, or a thief
/// racing it): one rotates it, the others are refused, and as with any reuse the whole family
/// is revoked, including the token the winner was given in the same instant.
#[tokio::test]
async fn a_refresh_token_presented_many_times_at_once_rotates_once_and_the_family_dies() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000019").await;
    let client = refreshing_client(&env, &["openid"], None).await;
    let (first, _) = sign_in(&env, &client, &card, "openid").await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", r1.as_str()),
    ];
    let attempts = (0..8).map(|_| token_call(&env, &client, "/token", &form));
    let mut rotated = Vec::new();
    for (status, body) in futures::future::join_all(attempts).await {
        match status {
            200 => rotated.push(body),
            _ => assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant"))
            ),
        }
    }
    assert_eq!(rotated.len(), 1, "one presentation rotates the token");
    let r2 = rotated[0]["refresh_token"].as_str().unwrap();
    let (status, _) = token_call(
        &env,
        &client,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", r2)],
    )
    .await;
    assert_eq!(status, 400, "the winner's new refresh token is revoked");
    assert_eq!(
        userinfo_status(&env, rotated[0]["access_token"].as_str().unwrap()).await,
        401,
        "and its access token"
    );
}

/// Ending a session marks it ended and then revokes its tokens, in separate steps. A refresh
/// grant that commits in between must not leave live tokens behind: it sees the ended session
/// after its commit, revokes the family (and what it just wrote), and is refused.
#[tokio::test]
async fn a_refresh_in_the_middle_of_a_logout_leaves_nothing_alive() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000027").await;
    let client = refreshing_client(&env, &["openid"], None).await;
    let (first, _) = sign_in(&env, &client, &card, "openid").await;
    let sid = jwt_claims(first["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    // A logout's first step: the session is marked ended, its tokens not yet revoked.
    assert!(env.db.end_session(&sid, "logout", env.now()).await.unwrap());
    let (status, body) = token_call(
        &env,
        &client,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
    assert_eq!(
        userinfo_status(&env, first["access_token"].as_str().unwrap()).await,
        401,
        "the family's access tokens are revoked too"
    );
}

/// A refresh token revoked by its client while it is being presented: the presentation may
/// win (and the revocation then finds the new family member too) or be refused, but it is
/// never taken for a reuse (no `token.refresh_reuse` in the audit trail), and nothing of the
/// family is alive afterwards.
#[tokio::test]
async fn a_refresh_racing_its_revocation_is_not_reported_as_reuse() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000035").await;
    let client = refreshing_client(&env, &["openid"], None).await;
    for _ in 0..8 {
        let (first, _) = sign_in(&env, &client, &card, "openid").await;
        let refresh = first["refresh_token"].as_str().unwrap();
        let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
        let revoke = [("token", refresh), ("token_type_hint", "refresh_token")];
        let ((status, body), (revoked, _)) = futures::join!(
            token_call(&env, &client, "/token", &grant),
            token_call(&env, &client, "/revoke", &revoke)
        );
        assert_eq!(revoked, 200);
        match status {
            200 => assert_eq!(
                userinfo_status(&env, body["access_token"].as_str().unwrap()).await,
                401,
                "the revocation ends the family, its newest member included"
            ),
            _ => assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant"))
            ),
        }
    }
    assert!(!env
        .db
        .recent_audit(500)
        .await
        .unwrap()
        .iter()
        .any(|e| e.kind == "token.refresh_reuse"));
}

#[tokio::test]
async fn refresh_tokens_die_with_their_session_unless_offline_access_was_granted() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000002").await;
    let client = refreshing_client(&env, &["openid", "offline_access"], None).await;
    let (online, browser) = sign_in(&env, &client, &card, "openid").await;
    let (offline, _) = sign_in(&env, &client, &card, "openid offline_access").await;
    let id_token = online["id_token"].as_str().unwrap();
    browser
        .client
        .get(env.endpoint("/connect/endSession"))
        .query(&[("id_token_hint", id_token)])
        .send()
        .await
        .unwrap();
    let (status, _) = token_call(
        &env,
        &client,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", online["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 400, "logout ends session-bound refresh tokens");
    let (status, body) = token_call(
        &env,
        &client,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", offline["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "offline_access outlives the session: {body}");

    // A narrower scope may be asked for, a wider one not.
    let r = body["refresh_token"].as_str().unwrap();
    let (status, body) = token_call(
        &env,
        &client,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r),
            ("scope", "openid profile"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );

    // Suspension ends everything, offline tokens included.
    let (again, _) = sign_in(&env, &client, &card, "openid offline_access").await;
    env.server
        .provider
        .revoke_user("910000000002", "suspended")
        .await
        .unwrap();
    let (status, _) = token_call(
        &env,
        &client,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", again["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn clients_without_the_refresh_grant_get_no_refresh_token() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000003").await;
    let client = env.confidential_client().await;
    let tokens: Value = env
        .redeem(&client, &env.code_for(&client, &card).await)
        .await
        .json()
        .await
        .unwrap();
    assert!(tokens.get("refresh_token").is_none());
    let (status, body) = token_call(
        &env,
        &client,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn client_credentials_give_the_client_its_own_scopes_and_no_user() {
    let env = TestEnv::start().await;
    let robot = env
        .client(ClientRequest {
            client_name: "rpa".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["careid.audit:read".into(), "pds:search".into()],
            ..Default::default()
        })
        .await;
    let (status, body) = token_call(
        &env,
        &robot,
        "/token",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], robot.client.metadata.client_id.as_str());
    assert_eq!(claims["scope"], "careid.audit:read pds:search");
    assert_eq!(
        userinfo_status(&env, body["access_token"].as_str().unwrap()).await,
        401,
        "no user claims for a robot"
    );
    let (_, narrow) = token_call(
        &env,
        &robot,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "pds:search"),
        ],
    )
    .await;
    assert_eq!(
        jwt_claims(narrow["access_token"].as_str().unwrap())["scope"],
        "pds:search"
    );
    let (status, body) = token_call(
        &env,
        &robot,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "openid profile"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let user_app = env.confidential_client().await;
    let (status, body) = token_call(
        &env,
        &user_app,
        "/token",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn introspection_and_revocation_follow_the_token_state() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000004").await;
    let client = refreshing_client(&env, &["openid"], None).await;
    let resource_server = env.confidential_client().await;
    let (tokens, _) = sign_in(&env, &client, &card, "openid").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let (status, info) =
        token_call(&env, &resource_server, "/introspect", &[("token", access)]).await;
    assert_eq!(status, 200);
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], "910000000004");
    assert_eq!(info["client_id"], client.client.metadata.client_id.as_str());
    assert_eq!(info["acr"], "AAL3_ANY");
    let (_, info) = token_call(&env, &resource_server, "/introspect", &[("token", refresh)]).await;
    assert_eq!(
        info,
        json!({ "active": false }),
        "a refresh token is introspected only by its own client"
    );
    let (_, info) = token_call(&env, &client, "/introspect", &[("token", refresh)]).await;
    assert_eq!(
        (info["active"].clone(), info["token_type"].clone()),
        (json!(true), json!("refresh_token"))
    );
    let (_, info) = token_call(&env, &client, "/introspect", &[("token", "garbage")]).await;
    assert_eq!(info, json!({ "active": false }));
    let r = env
        .http()
        .post(env.endpoint("/introspect"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "introspection needs client authentication");

    // Revoking the refresh token ends the access token issued with it.
    let (status, _) = token_call(
        &env,
        &client,
        "/revoke",
        &[("token", refresh), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, info) = token_call(&env, &resource_server, "/introspect", &[("token", access)]).await;
    assert_eq!(info["active"], false);
    assert_eq!(userinfo_status(&env, access).await, 401);
    let (status, _) = token_call(&env, &client, "/revoke", &[("token", "unknown-token")]).await;
    assert_eq!(status, 200, "unknown tokens revoke silently (RFC 7009)");

    // Suspending the user makes every token inactive at once.
    let (tokens, _) = sign_in(&env, &client, &card, "openid").await;
    env.db
        .set_user_status("910000000004", UserStatus::Suspended)
        .await
        .unwrap();
    let (_, info) = token_call(
        &env,
        &resource_server,
        "/introspect",
        &[("token", tokens["access_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(
        info["active"], false,
        "a suspended user's token is inactive"
    );

    // An access token can be revoked by its client only.
    env.db
        .set_user_status("910000000004", UserStatus::Active)
        .await
        .unwrap();
    let (tokens, _) = sign_in(&env, &client, &card, "openid").await;
    let access = tokens["access_token"].as_str().unwrap();
    token_call(&env, &resource_server, "/revoke", &[("token", access)]).await;
    assert_eq!(
        userinfo_status(&env, access).await,
        200,
        "another client cannot revoke it"
    );
    token_call(&env, &client, "/revoke", &[("token", access)]).await;
    assert_eq!(userinfo_status(&env, access).await, 401);
}

/// Verifies a logout token against careid's JWKS and returns its claims.
async fn verified_logout_claims(env: &TestEnv, token: &str) -> Value {
    let jwks: josekit::jwk::JwkSet = josekit::jwk::JwkSet::from_bytes(
        env.http()
            .get(env.endpoint("/jwks"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let header = jwt_header(token);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["alg"], "RS256");
    let jwk = jwks.get(header["kid"].as_str().unwrap())[0];
    let verifier = josekit::jws::RS256.verifier_from_jwk(jwk).unwrap();
    let (payload, _) =
        josekit::jwt::decode_with_verifier(token, &verifier).expect("signed by careid");
    Value::Object(payload.claims_set().clone())
}

#[tokio::test]
async fn logout_reaches_each_relying_party_over_the_back_channel_with_retry() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000005").await;
    let flaky = LogoutReceiver::start(vec![503]).await;
    let steady = LogoutReceiver::start(vec![]).await;
    let a = refreshing_client(&env, &["openid"], Some(flaky.uri.clone())).await;
    let b = refreshing_client(&env, &["openid"], Some(steady.uri.clone())).await;
    let no_endpoint = env.confidential_client().await;
    let (tokens_a, browser) = sign_in(&env, &a, &card, "openid").await;
    let sid = jwt_claims(tokens_a["id_token"].as_str().unwrap())["sid"].clone();
    for client in [&b, &no_endpoint] {
        let r = browser
            .client
            .get(env.authorize_url(&client.client.metadata.client_id, &[], true))
            .send()
            .await
            .unwrap();
        env.redeem(client, &query_param(&location(&r), "code").unwrap())
            .await;
    }

    let r = browser
        .client
        .get(env.endpoint("/connect/endSession"))
        .query(&[("id_token_hint", tokens_a["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "logout is not held up by delivery");

    let got = steady.wait_for(1).await;
    assert_eq!(got.len(), 1, "the steady RP gets its logout token at once");
    let claims = verified_logout_claims(&env, &got[0]).await;
    assert_eq!(claims["sid"], sid);
    assert_eq!(claims["aud"], b.client.metadata.client_id.as_str());
    assert_eq!(claims["sub"], "910000000005");
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());

    // The flaky RP answered 503 first: retried after the backoff with a fresh token.
    for _ in 0..300 {
        if env
            .db
            .logouts_of_session(sid.as_str().unwrap())
            .await
            .unwrap()
            .iter()
            .any(|d| d.last_error.is_some())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        flaky.wait_up_to(1, 10).await.is_empty(),
        "not before the backoff"
    );
    env.clock.advance(3);
    let got = flaky.wait_for(1).await;
    assert_eq!(got.len(), 1, "delivered on retry");
    let claims = verified_logout_claims(&env, &got[0]).await;
    assert_eq!(
        claims["iat"].as_i64(),
        Some(env.now()),
        "a freshly signed token for the retry"
    );
    // The outbox row is marked delivered once careid has read the RP's answer: wait for that.
    let mut deliveries = Vec::new();
    for _ in 0..100 {
        deliveries = env
            .db
            .logouts_of_session(sid.as_str().unwrap())
            .await
            .unwrap();
        if deliveries.len() == 2 && deliveries.iter().all(|d| d.delivered_at.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(deliveries.len(), 2, "one per RP with a back-channel URI");
    assert!(deliveries.iter().all(|d| d.delivered_at.is_some()));
    assert!(deliveries.iter().any(|d| d.attempts == 2));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        steady.received().len() + flaky.received().len(),
        2,
        "exactly one delivery each"
    );
}

#[tokio::test]
async fn a_final_refusal_is_not_retried_and_is_audited() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000006").await;
    let refusing = LogoutReceiver::start(vec![400, 400]).await;
    let client = refreshing_client(&env, &["openid"], Some(refusing.uri.clone())).await;
    let (tokens, _) = sign_in(&env, &client, &card, "openid").await;
    end_session_from_back_end(&env, &tokens).await;
    let sid = jwt_claims(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..300 {
        if env
            .db
            .logouts_of_session(&sid)
            .await
            .unwrap()
            .iter()
            .all(|d| d.failed_at.is_some())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let d = &env.db.logouts_of_session(&sid).await.unwrap()[0];
    assert!(d.failed_at.is_some() && d.attempts == 1, "{d:?}");
    // The audit record follows the outbox update; wait for it rather than race it.
    let mut audited = false;
    for _ in 0..100 {
        let events = env.db.recent_audit(20).await.unwrap();
        if events
            .iter()
            .any(|e| e.kind == "logout.backchannel" && e.outcome == "failed")
        {
            audited = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(audited, "a final refusal is audited");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        env.db.logouts_of_session(&sid).await.unwrap()[0].attempts,
        1,
        "and never retried"
    );
}

#[tokio::test]
async fn queued_logouts_survive_a_restart_and_two_processes_deliver_each_once() {
    let first = TestEnv::start().await;
    let card = first.user_with_card("910000000007").await;
    // The RP's address is reserved but nothing answers there yet.
    let reserved = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let uri = format!("http://127.0.0.1:{port}/backchannel");
    let client = refreshing_client(&first, &["openid"], Some(uri)).await;
    let (tokens, _) = sign_in(&first, &client, &card, "openid").await;
    let sid = jwt_claims(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    end_session_from_back_end(&first, &tokens).await;
    for _ in 0..300 {
        if first
            .db
            .logouts_of_session(&sid)
            .await
            .unwrap()
            .iter()
            .any(|d| d.attempts >= 1 && d.last_error.is_some())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let queued = first.db.logouts_of_session(&sid).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert!(queued[0].delivered_at.is_none(), "nothing answered yet");

    // careid restarts (two processes now share the outbox) and the RP comes up.
    let url = first.database_url.clone();
    let pki = first.pki.clone();
    // Stop the first process; keep its directory (the SQLite file lives there).
    let TestEnv {
        server,
        dir: _keep_dir,
        db,
        ..
    } = first;
    server.shutdown().await;
    db.close().await;
    let receiver = LogoutReceiver::on(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap(),
        vec![],
    );
    let a = TestEnv::start_with(Options {
        database_url: Some(url.clone()),
        pki: Some(pki.clone()),
        ..Default::default()
    })
    .await;
    let b = TestEnv::start_with(Options {
        database_url: Some(url),
        pki: Some(pki),
        ..Default::default()
    })
    .await;
    a.clock.advance(5);
    b.clock.advance(5);
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1, "delivered after the restart");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "exactly once, though two processes poll the outbox"
    );
    let mut delivered = false;
    for _ in 0..100 {
        if a.db.logouts_of_session(&sid).await.unwrap()[0]
            .delivered_at
            .is_some()
        {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(delivered, "the outbox records the delivery");
}

#[tokio::test]
async fn housekeeping_purges_what_has_expired_one_process_at_a_time() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000008").await;
    let client = env.confidential_client().await;
    let _ = env.code_for(&client, &card).await;
    let _ = env
        .browser(None)
        .client
        .get(env.authorize_url(&client.client.metadata.client_id, &[], true))
        .send()
        .await
        .unwrap();
    assert!(env.db.count_rows("auth_codes").await.unwrap() >= 1);
    assert!(env.db.count_rows("login_flows").await.unwrap() >= 1);
    let before_audit = env.db.count_rows("audit_events").await.unwrap();

    let p = &env.server.provider;
    assert!(p.housekeep("one").await.unwrap().is_some());
    assert!(
        p.housekeep("two").await.unwrap().is_none(),
        "another process waits for the lease"
    );
    env.clock.advance(13 * 3600 + 3601);
    let purged = p
        .housekeep("two")
        .await
        .unwrap()
        .expect("the lease has lapsed");
    assert!(
        purged.auth_codes >= 1 && purged.login_flows >= 1 && purged.sessions >= 1,
        "{purged:?}"
    );
    assert_eq!(env.db.count_rows("auth_codes").await.unwrap(), 0);
    assert_eq!(
        env.db.count_rows("audit_events").await.unwrap(),
        before_audit,
        "the audit trail is never purged"
    );
}

/// Whoever holds someone's ID token (it travels through browsers, URLs and logs) cannot end
/// their session with it: without the session's cookie, careid ends a session only for a caller
/// holding that session's own access token (the server-to-server pattern of cis2.md §10.2).
#[tokio::test]
async fn an_id_token_alone_does_not_end_someone_elses_session() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("910000000021").await;
    let client = refreshing_client(&env, &["openid"], None).await;
    let (tokens, victim) = sign_in(&env, &client, &card, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    // The attacker replays the ID token, alone and with an access token of another session.
    let other = env.user_with_card("910000000022").await;
    let (theirs, _) = sign_in(&env, &client, &other, "openid").await;
    for bearer in [None, theirs["access_token"].as_str()] {
        let mut r = env
            .http()
            .get(env.endpoint("/connect/endSession"))
            .query(&[("id_token_hint", id_token)]);
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        let r = r.send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        assert_eq!(
            userinfo_status(&env, access).await,
            200,
            "the session lives on"
        );
    }
    assert_eq!(
        env.silent_error(&victim, &client.client.metadata.client_id, &[])
            .await,
        None,
        "the victim is still signed in"
    );
    // In the victim's own browser the hint ends it without a question.
    let r = victim
        .client
        .get(env.endpoint("/connect/endSession"))
        .query(&[("id_token_hint", id_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert_eq!(userinfo_status(&env, access).await, 401);
}

/// A relying party whose back-channel endpoint takes `delay` to answer (200).
async fn slow_receiver(delay: std::time::Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!(
        "http://127.0.0.1:{}/backchannel",
        listener.local_addr().unwrap().port()
    );
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move || async move {
            tokio::time::sleep(delay).await;
            axum::http::StatusCode::OK
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    uri
}

/// One slow relying party does not hold up everyone else's logouts: deliveries run side by side.
#[tokio::test]
async fn a_slow_relying_party_delays_only_its_own_logouts() {
    let env = TestEnv::start().await;
    let slow_uri = slow_receiver(std::time::Duration::from_secs(4)).await;
    let fast = LogoutReceiver::start(vec![]).await;
    let slow_client = refreshing_client(&env, &["openid"], Some(slow_uri)).await;
    let fast_client = refreshing_client(&env, &["openid"], Some(fast.uri.clone())).await;
    let mut slow_sessions = Vec::new();
    for i in 0..3 {
        let card = env.user_with_card(&format!("91000000003{i}")).await;
        slow_sessions.push(sign_in(&env, &slow_client, &card, "openid").await.0);
    }
    let card = env.user_with_card("910000000039").await;
    let (fast_tokens, _) = sign_in(&env, &fast_client, &card, "openid").await;
    // The slow relying party's logouts are queued first and being delivered when the fast one's is.
    for tokens in &slow_sessions {
        end_session_from_back_end(&env, tokens).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    end_session_from_back_end(&env, &fast_tokens).await;
    assert_eq!(fast.wait_up_to(1, 20).await.len(), 1, "delivered");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the fast relying party waited {:?} behind the slow one",
        started.elapsed()
    );
}

/// A back-channel logout URI on a private address is not called unless its network is allowed:
/// the delivery fails at once, and the audit says why.
#[tokio::test]
async fn a_backchannel_uri_on_a_private_address_is_not_called_unless_allowed() {
    fn no_private_networks(c: &mut careid::config::Config) {
        c.outbound.allowed_private_networks.clear();
    }
    let env = TestEnv::start_with(Options {
        configure: Some(no_private_networks),
        ..Default::default()
    })
    .await;
    let receiver = LogoutReceiver::start(vec![]).await;
    let client = refreshing_client(&env, &["openid"], Some(receiver.uri.clone())).await;
    let card = env.user_with_card("910000000041").await;
    let (tokens, browser) = sign_in(&env, &client, &card, "openid").await;
    browser
        .client
        .get(env.endpoint("/connect/endSession"))
        .query(&[("id_token_hint", tokens["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let mut failed = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        failed = env
            .db
            .recent_audit(20)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.kind == "logout.backchannel" && e.outcome == "failed");
        if failed.is_some() {
            break;
        }
    }
    let failed = failed.expect("the delivery was given up");
    assert!(
        failed.detail["error"].as_str().unwrap().contains("private"),
        "{}",
        failed.detail
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
}

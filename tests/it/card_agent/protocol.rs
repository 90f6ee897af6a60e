//! The agent protocol against the real server: what a relying party gets, what the removal
//! ends, and the attacks (replayed and stale challenges, someone else's signature, another
//! browser, another person's token).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use careid::agent::piv;
use careid::model::card_agent::{to_be_signed, AgentLoginRequest};

use super::*;

#[tokio::test]
async fn a_card_signed_in_through_the_agent_gives_aal3_and_its_removal_logs_the_rp_out() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("710000000001").await;
    let (client, logouts) = rp_with_logout(&env).await;
    let (tokens, login, _) = signed_in(&env, &client, &card).await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "710000000001");
    assert_eq!(claims["acr"], "AAL3_ANY");
    assert_eq!(claims["amr"], serde_json::json!(["N3_SMARTCARD"]));
    assert_eq!(claims["authentication_assurance_level"], "3");
    let sid = claims["sid"].as_str().unwrap().to_string();
    assert!(env
        .server
        .provider
        .session_is_card_bound(&sid)
        .await
        .unwrap());
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&env, access).await, 200);

    // Heartbeats keep it going.
    let agent = agent(&env);
    assert!(agent.heartbeat(&login.agent_token).await.unwrap().active);
    // The card leaves the reader: the session ends, the RP is told, its tokens stop working.
    let removed = agent.removed(&login.agent_token).await.unwrap();
    assert!(!removed.active);
    let received = logouts.wait_up_to(1, 40).await;
    assert_eq!(received.len(), 1, "a back-channel logout within 2 s");
    assert_eq!(jwt_claims(&received[0])["sid"], sid.as_str());
    assert_eq!(userinfo_status(&env, access).await, 401);
    assert!(!agent.heartbeat(&login.agent_token).await.unwrap().active);
    // A second removal notice (a retry) changes nothing and sends nothing more.
    assert!(!agent.removed(&login.agent_token).await.unwrap().active);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(logouts.received().len(), 1);
}

async fn userinfo_status(env: &TestEnv, access_token: &str) -> u16 {
    env.http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_challenge_is_single_use_and_goes_stale() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("710000000002").await;
    let (client, _logouts) = rp_with_logout(&env).await;
    let sign_in = start(&env, &client).await;
    let agent = agent(&env);
    let mut vcard = virtual_card(&card);
    piv::select(&mut vcard).unwrap();
    piv::verify_pin(&mut vcard, PIN).unwrap();
    let sign = |vcard: &mut careid::agent::vcard::VirtualPiv, id: &str, nonce: &str| {
        let s = piv::sign(
            vcard,
            piv::alg::ECC_P256,
            &to_be_signed(&env.issuer, id, nonce),
        )
        .unwrap();
        URL_SAFE_NO_PAD.encode(s)
    };
    // Stale: the clock passes the challenge's minute before the card's answer arrives.
    let stale = agent.challenge(&sign_in.code).await.unwrap();
    let request = AgentLoginRequest {
        signature: sign(&mut vcard, &stale.challenge_id, &stale.nonce),
        challenge_id: stale.challenge_id.clone(),
        certificates: vec![STANDARD.encode(&card.der)],
    };
    env.clock.advance(61);
    assert_eq!(
        refusal_code(agent.login(&request).await.unwrap_err()),
        (400, "challenge_invalid".into())
    );
    // A fresh one works once; the same answer again is refused.
    let fresh = agent.challenge(&sign_in.code).await.unwrap();
    let request = AgentLoginRequest {
        signature: sign(&mut vcard, &fresh.challenge_id, &fresh.nonce),
        challenge_id: fresh.challenge_id.clone(),
        certificates: vec![STANDARD.encode(&card.der)],
    };
    agent.login(&request).await.unwrap();
    assert_eq!(
        refusal_code(agent.login(&request).await.unwrap_err()),
        (400, "challenge_invalid".into())
    );
    // The code has been used: no more challenges for it.
    assert_eq!(
        refusal_code(agent.challenge(&sign_in.code).await.unwrap_err()),
        (400, "unknown_code".into())
    );
    assert_eq!(
        refusal_code(agent.challenge("BCDF-GHJK").await.unwrap_err()),
        (400, "unknown_code".into())
    );
}

#[tokio::test]
async fn only_the_cards_own_key_over_this_challenge_signs_in() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("710000000003").await;
    let other = env.user_with_card("710000000004").await;
    let (client, _logouts) = rp_with_logout(&env).await;
    let sign_in = start(&env, &client).await;
    let agent = agent(&env);
    // Someone with another card (or a copy of the certificate) signs: refused.
    let mut thief = virtual_card(&other);
    piv::select(&mut thief).unwrap();
    piv::verify_pin(&mut thief, PIN).unwrap();
    let c = agent.challenge(&sign_in.code).await.unwrap();
    let signature = piv::sign(
        &mut thief,
        piv::alg::ECC_P256,
        &to_be_signed(&env.issuer, &c.challenge_id, &c.nonce),
    )
    .unwrap();
    let forged = AgentLoginRequest {
        challenge_id: c.challenge_id,
        certificates: vec![STANDARD.encode(&card.der)],
        signature: URL_SAFE_NO_PAD.encode(signature),
    };
    assert_eq!(
        refusal_code(agent.login(&forged).await.unwrap_err()),
        (403, "bad_signature".into())
    );
    // The right card signing something else (another issuer's challenge): refused.
    let mut vcard = virtual_card(&card);
    piv::select(&mut vcard).unwrap();
    piv::verify_pin(&mut vcard, PIN).unwrap();
    let c = agent.challenge(&sign_in.code).await.unwrap();
    let elsewhere = piv::sign(
        &mut vcard,
        piv::alg::ECC_P256,
        &to_be_signed("https://elsewhere.example", &c.challenge_id, &c.nonce),
    )
    .unwrap();
    let replayed = AgentLoginRequest {
        challenge_id: c.challenge_id,
        certificates: vec![STANDARD.encode(&card.der)],
        signature: URL_SAFE_NO_PAD.encode(elsewhere),
    };
    assert_eq!(
        refusal_code(agent.login(&replayed).await.unwrap_err()),
        (403, "bad_signature".into())
    );
    // Nothing signed in meanwhile: the browser still waits.
    let r = sign_in.finish(&env).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("has not signed in yet"));
    // Garbage is a problem, not a crash.
    let c = agent.challenge(&sign_in.code).await.unwrap();
    let garbage = AgentLoginRequest {
        challenge_id: c.challenge_id,
        certificates: vec!["not base64!".into()],
        signature: "x".into(),
    };
    assert_eq!(
        refusal_code(agent.login(&garbage).await.unwrap_err()),
        (400, "invalid_request".into())
    );
    let r = env
        .http()
        .post(env.endpoint("/agent/v1/login"))
        .header("content-type", "application/json")
        .body("{\"challenge_id\": 5}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // The right card then signs in.
    card_signs(&env, &sign_in.code, &mut virtual_card(&card))
        .await
        .unwrap();
    assert_eq!(sign_in.finish(&env).await.status(), 303);
}

#[tokio::test]
async fn revoked_unbound_and_suspended_cards_are_refused() {
    let pki = std::sync::Arc::new(Pki::new(careid::clock::Clock::now(
        &careid::clock::SystemClock,
    )));
    let revoked = pki
        .card_sub
        .card_cert(&careid::pki::CardSpec::valid(
            "710000000005",
            "Revoked",
            careid::clock::Clock::now(&careid::clock::SystemClock),
        ))
        .unwrap();
    let env = TestEnv::start_with(Options {
        pki: Some(pki),
        revoked: vec![revoked.clone()],
        ..Default::default()
    })
    .await;
    env.user("710000000005").await;
    careid::domain::registry::bind_smartcard(
        &env.db,
        "710000000005",
        &revoked.der,
        "test",
        env.now(),
    )
    .await
    .unwrap();
    let unbound = env.card("710000000006");
    env.user("710000000006").await;
    let (client, _logouts) = rp_with_logout(&env).await;
    for (card, code) in [(&revoked, "revoked"), (&unbound, "not_bound")] {
        let sign_in = start(&env, &client).await;
        let e = card_signs(&env, &sign_in.code, &mut virtual_card(card))
            .await
            .unwrap_err();
        assert_eq!(refusal_code(e), (403, code.to_string()));
    }
    // A card suspended after it signed, before the browser finished: no session.
    let card = env.user_with_card("710000000007").await;
    let sign_in = start(&env, &client).await;
    card_signs(&env, &sign_in.code, &mut virtual_card(&card))
        .await
        .unwrap();
    let authenticator = env
        .db
        .card_binding(
            &careid::domain::smartcard::binding_of(&card.der)
                .unwrap()
                .issuer,
            &careid::domain::smartcard::binding_of(&card.der)
                .unwrap()
                .serial,
        )
        .await
        .unwrap()
        .unwrap()
        .0;
    env.db
        .set_authenticator_status(
            &authenticator.id,
            careid::model::identity::AuthenticatorStatus::Suspended,
        )
        .await
        .unwrap();
    let r = sign_in.finish(&env).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("suspended"));
}

#[tokio::test]
async fn only_the_browser_that_started_the_sign_in_finishes_it() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("710000000008").await;
    let (client, _logouts) = rp_with_logout(&env).await;
    let sign_in = start(&env, &client).await;
    card_signs(&env, &sign_in.code, &mut virtual_card(&card))
        .await
        .unwrap();
    // Another browser with the flow id and the code (shoulder-surfed, or sent by an attacker).
    let stranger = env.browser(None);
    let r = stranger
        .client
        .post(env.endpoint("/login/agent/complete"))
        .form(&[
            ("flow", sign_in.flow.as_str()),
            ("code", sign_in.code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let status: serde_json::Value = stranger
        .client
        .get(env.endpoint(&format!("/login/agent/status?flow={}", sign_in.flow)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "expired");
    // Nor may another browser get a code for that flow.
    let r = stranger
        .client
        .post(env.endpoint("/login/agent"))
        .form(&[("flow", sign_in.flow.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The right browser sees it ready, and finishes.
    let status: serde_json::Value = sign_in
        .browser
        .client
        .get(env.endpoint(&format!("/login/agent/status?flow={}", sign_in.flow)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "ready");
    assert_eq!(sign_in.finish(&env).await.status(), 303);
    // Once: the flow is spent.
    assert_eq!(sign_in.finish(&env).await.status(), 400);
}

#[tokio::test]
async fn an_agent_token_ends_only_the_session_its_card_made() {
    let env = TestEnv::start().await;
    let alice = env.user_with_card("710000000009").await;
    let bob = env.user_with_card("710000000010").await;
    let (client, logouts) = rp_with_logout(&env).await;
    // Two people on one workstation, each signed in with their own card.
    let (alice_tokens, alice_login, _) = signed_in(&env, &client, &alice).await;
    let (bob_tokens, _bob_login, _) = signed_in(&env, &client, &bob).await;
    let agent = agent(&env);
    // Neither a relying party's access token nor a made-up token is an agent token.
    for token in [bob_tokens["access_token"].as_str().unwrap(), "made-up"] {
        let r = env
            .http()
            .post(env.endpoint("/agent/v1/removed"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
    let r = env
        .http()
        .post(env.endpoint("/agent/v1/heartbeat"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Alice takes her card out: her session ends, Bob's does not.
    agent.removed(&alice_login.agent_token).await.unwrap();
    let received = logouts.wait_up_to(1, 40).await;
    assert_eq!(received.len(), 1);
    let alice_sid = jwt_claims(alice_tokens["id_token"].as_str().unwrap())["sid"].clone();
    assert_eq!(jwt_claims(&received[0])["sid"], alice_sid);
    assert_eq!(
        userinfo_status(&env, alice_tokens["access_token"].as_str().unwrap()).await,
        401
    );
    assert_eq!(
        userinfo_status(&env, bob_tokens["access_token"].as_str().unwrap()).await,
        200
    );
}

#[tokio::test]
async fn a_silent_agent_or_a_card_pulled_before_the_browser_finishes_ends_the_sign_in() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("710000000011").await;
    let (client, logouts) = rp_with_logout(&env).await;
    let (tokens, login, _) = signed_in(&env, &client, &card).await;
    let timeout = env.server.provider.config.card_agent.heartbeat_timeout_secs;
    env.clock.advance(timeout - 1);
    assert_eq!(env.server.provider.end_silent_agents().await.unwrap(), 0);
    // A heartbeat keeps it; then silence past the timeout ends it.
    assert!(
        agent(&env)
            .heartbeat(&login.agent_token)
            .await
            .unwrap()
            .active
    );
    env.clock.advance(timeout + 1);
    assert_eq!(env.server.provider.end_silent_agents().await.unwrap(), 1);
    assert_eq!(logouts.wait_up_to(1, 40).await.len(), 1);
    assert_eq!(
        userinfo_status(&env, tokens["access_token"].as_str().unwrap()).await,
        401
    );
    assert!(
        !agent(&env)
            .heartbeat(&login.agent_token)
            .await
            .unwrap()
            .active
    );

    // The card leaves after signing but before the browser finishes: no session is made.
    let sign_in = start(&env, &client).await;
    let login = card_signs(&env, &sign_in.code, &mut virtual_card(&card))
        .await
        .unwrap();
    agent(&env).removed(&login.agent_token).await.unwrap();
    let r = sign_in.finish(&env).await;
    assert_eq!(r.status(), 403);

    // Housekeeping clears ended bindings and spent codes once they are past keeping.
    env.clock
        .advance(env.server.provider.config.housekeeping.keep_expired_secs + 3600);
    let purged = env
        .server
        .provider
        .housekeep("test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(purged.card_agent_bindings, 2);
    assert!(purged.card_agent_requests >= 2);
}

#[tokio::test]
async fn a_sign_out_elsewhere_tells_the_agent_to_stop() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("710000000012").await;
    let (client, _logouts) = rp_with_logout(&env).await;
    let (tokens, login, _) = signed_in(&env, &client, &card).await;
    end_session_from_back_end(&env, &tokens).await;
    assert!(
        !agent(&env)
            .heartbeat(&login.agent_token)
            .await
            .unwrap()
            .active
    );
}

#[tokio::test]
async fn a_removal_sent_to_another_instance_ends_the_session() {
    let a = TestEnv::start().await;
    let b = TestEnv::start_with(Options {
        database_url: Some(a.database_url.clone()),
        pki: Some(a.pki.clone()),
        issuer: Some(a.issuer.clone()),
        ..Default::default()
    })
    .await;
    let card = a.user_with_card("710000000013").await;
    let (client, logouts) = rp_with_logout(&a).await;
    let (tokens, login, _) = signed_in(&a, &client, &card).await;
    // The load balancer sends the agent's removal notice to B.
    let via_b = AgentClient::new(&b.local, Some(b.pki.server_ca.pem().as_bytes())).unwrap();
    assert!(via_b.heartbeat(&login.agent_token).await.unwrap().active);
    via_b.removed(&login.agent_token).await.unwrap();
    assert_eq!(logouts.wait_up_to(1, 40).await.len(), 1);
    assert_eq!(
        userinfo_status(&a, tokens["access_token"].as_str().unwrap()).await,
        401
    );
}

#[tokio::test]
async fn the_agent_keeps_trying_to_report_a_removal_until_careid_answers() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("710000000014").await;
    let (client, logouts) = rp_with_logout(&env).await;
    let (tokens, login, _) = signed_in(&env, &client, &card).await;
    // The workstation's way to careid is down: nothing listens on the port the agent uses.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let agent = AgentClient::new(
        &format!("https://localhost:{port}"),
        Some(env.pki.server_ca.pem().as_bytes()),
    )
    .unwrap();
    let token = login.agent_token.clone();
    let reporting = tokio::spawn(async move { agent.removed_until_delivered(&token).await });
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(!reporting.is_finished(), "still trying");
    assert!(logouts.received().is_empty());
    // The network comes back: a relay to careid appears on that port.
    let relay = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let upstream = env.server.main_addr;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = relay.accept().await {
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let status = tokio::time::timeout(std::time::Duration::from_secs(15), reporting)
        .await
        .expect("the retry reaches careid")
        .unwrap()
        .unwrap();
    assert!(!status.active);
    assert_eq!(logouts.wait_up_to(1, 40).await.len(), 1);
    assert_eq!(
        userinfo_status(&env, tokens["access_token"].as_str().unwrap()).await,
        401
    );
}

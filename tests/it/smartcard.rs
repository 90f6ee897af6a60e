//! Smartcard certificates that must not sign anyone in, each refused with a readable page (403)
//! and an audit record; and the proxy header, honoured only from a trusted proxy.

use careid::domain::identity::{Authenticator, UserStatus};
use careid::pki::CardSpec;

use crate::helpers::*;

/// Starts a sign-in and presents `card`; returns the status and page.
async fn present(env: &TestEnv, card: Option<&careid::pki::Issued>) -> (u16, String) {
    let client = env.confidential_client().await;
    match env
        .browser(card)
        .sign_in(&env.authorize_url(&client.client.metadata.client_id, &[], true))
        .await
    {
        SignIn::Page(status, body) => (status, body),
        SignIn::Redirected(to) => panic!("signed in unexpectedly: {to}"),
    }
}

async fn last_login_audit(env: &TestEnv) -> String {
    let events = env.db.recent_audit(20).await.unwrap();
    events
        .into_iter()
        .find(|e| e.kind == "login.smartcard")
        .map(|e| e.outcome)
        .unwrap_or_default()
}

#[tokio::test]
async fn expired_unknown_ca_and_wrong_key_usage_certificates_are_refused() {
    let env = TestEnv::start().await;
    let now = env.now();
    env.user("600000000001").await;
    let expired = env
        .pki
        .card_sub
        .card_cert(&CardSpec {
            not_before: now - 800 * 86400,
            not_after: now - 86400,
            ..CardSpec::valid("600000000001", "Old_Card", now)
        })
        .unwrap();
    let foreign = env
        .pki
        .other_root
        .card_cert(&CardSpec::valid("600000000001", "Foreign", now))
        .unwrap();
    let signing = env
        .pki
        .card_sub
        .card_cert(&CardSpec {
            signing_only: true,
            ..CardSpec::valid("600000000001", "Signing", now)
        })
        .unwrap();
    careid::domain::registry::bind_smartcard(&env.db, "600000000001", &expired.der, "test", now)
        .await
        .unwrap();
    let refused = careid::domain::registry::bind_smartcard(
        &env.db,
        "600000000001",
        &signing.der,
        "test",
        now,
    )
    .await;
    assert!(
        refused.is_err(),
        "a signing-only certificate cannot be bound for sign-in"
    );
    for (what, cert, text, audit) in [
        ("expired", &expired, "has expired", "expired"),
        (
            "unknown CA",
            &foreign,
            "not issued by a recognised smartcard authority",
            "unknown_issuer",
        ),
        (
            "signing-only key usage",
            &signing,
            "not meant for signing in",
            "key_usage",
        ),
    ] {
        let (status, page) = present(&env, Some(cert)).await;
        assert_eq!(status, 403, "{what}");
        assert!(page.contains(text), "{what}: {page}");
        assert_eq!(last_login_audit(&env).await, audit, "{what}");
    }
}

#[tokio::test]
async fn a_certificate_on_the_crl_is_refused() {
    let pki = std::sync::Arc::new(Pki::new(ManualNow::now()));
    let revoked = pki
        .card_sub
        .card_cert(&CardSpec::valid(
            "600000000002",
            "Lost_Card",
            ManualNow::now(),
        ))
        .unwrap();
    let env = TestEnv::start_with(Options {
        revoked: vec![revoked.clone()],
        pki: Some(pki),
        ..Default::default()
    })
    .await;
    env.user("600000000002").await;
    careid::domain::registry::bind_smartcard(
        &env.db,
        "600000000002",
        &revoked.der,
        "test",
        env.now(),
    )
    .await
    .unwrap();
    let (status, page) = present(&env, Some(&revoked)).await;
    assert_eq!(status, 403);
    assert!(page.contains("has been revoked"), "{page}");
    assert_eq!(last_login_audit(&env).await, "revoked");
    let good = env.user_with_card("600000000003").await;
    let client = env.confidential_client().await;
    assert!(
        !env.code_for(&client, &good).await.is_empty(),
        "other cards from the same CA still work"
    );
}

#[tokio::test]
async fn suspended_users_revoked_and_unbound_cards_are_refused() {
    let env = TestEnv::start().await;
    let suspended = env.user_with_card("600000000004").await;
    env.db
        .set_user_status("600000000004", UserStatus::Suspended)
        .await
        .unwrap();
    let (status, page) = present(&env, Some(&suspended)).await;
    assert_eq!(status, 403);
    assert!(page.contains("not active"), "{page}");
    assert_eq!(last_login_audit(&env).await, "user_not_active");

    let revoked = env.user_with_card("600000000005").await;
    let binding = env
        .db
        .authenticator_by_certificate(&x509_issuer(&revoked.der), &x509_serial(&revoked.der))
        .await
        .unwrap()
        .unwrap();
    env.db
        .set_authenticator_status(&binding.id, "revoked")
        .await
        .unwrap();
    let (status, _) = present(&env, Some(&revoked)).await;
    assert_eq!(status, 403);
    assert_eq!(last_login_audit(&env).await, "authenticator_revoked");

    env.user("600000000006").await;
    let unbound = env.card("600000000006");
    let (status, page) = present(&env, Some(&unbound)).await;
    assert_eq!(status, 403);
    assert!(page.contains("not registered"), "{page}");

    let (status, page) = present(&env, None).await;
    assert_eq!(status, 403);
    assert!(
        page.contains("smartcard certificate was presented"),
        "{page}"
    );
}

#[tokio::test]
async fn a_card_naming_another_identity_is_refused() {
    let env = TestEnv::start().await;
    env.user("600000000007").await;
    let card = env.card("600000000008");
    // Bound (wrongly) to a different identity than its subject names.
    env.db
        .insert_authenticator(&Authenticator {
            id: "mismatch".into(),
            user_uuid: "600000000007".into(),
            kind: "smartcard".into(),
            cert_issuer: Some(x509_issuer(&card.der)),
            cert_serial: Some(x509_serial(&card.der)),
            status: "active".into(),
            created_at: env.now(),
            last_used_at: None,
            expires_at: None,
        })
        .await
        .unwrap();
    let (status, _) = present(&env, Some(&card)).await;
    assert_eq!(status, 403);
    assert_eq!(last_login_audit(&env).await, "uuid_mismatch");
}

#[tokio::test]
async fn certificate_header_is_trusted_only_from_the_configured_proxy() {
    let proxy: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let env = TestEnv::start_with(Options {
        trusted_proxies: vec![proxy],
        ..Default::default()
    })
    .await;
    let card = env.user_with_card("600000000009").await;
    let client = env.confidential_client().await;
    // As nginx's $ssl_client_escaped_cert: every reserved byte percent-encoded.
    let header_value: String = card
        .cert_pem
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();

    for (from, expect_ok) in [("127.0.0.1", false), ("127.0.0.2", true)] {
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(env.pki.server_ca.pem().as_bytes()).unwrap(),
            )
            .redirect(reqwest::redirect::Policy::none())
            .local_address(Some(from.parse().unwrap()))
            .cookie_store(true)
            .build()
            .unwrap();
        let page = http
            .get(env.authorize_url(&client.client.metadata.client_id, &[], true))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let link = card_link(&page).unwrap();
        // The proxy terminates TLS and forwards to the main listener, certificate in the header.
        let main_link = link.replace(&env.card_base, &env.issuer);
        let r = http
            .get(&main_link)
            .header("x-ssl-client-cert", &header_value)
            .send()
            .await
            .unwrap();
        if expect_ok {
            assert!(r.status().is_redirection(), "trusted proxy: {}", r.status());
            assert!(query_param(&location(&r), "code").is_some());
        } else {
            assert_eq!(r.status(), 403, "forged header from {from} must be ignored");
            assert!(r
                .text()
                .await
                .unwrap()
                .contains("smartcard certificate was presented"));
        }
    }
}

#[tokio::test]
async fn an_expired_or_reused_sign_in_link_is_refused_with_a_page() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("600000000010").await;
    let client = env.confidential_client().await;
    let browser = env.browser(Some(&card));
    let page = browser
        .client
        .get(env.authorize_url(&client.client.metadata.client_id, &[], true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = card_link(&page).unwrap();
    let SignIn::Redirected(_) = browser.follow_card_link(&link).await else {
        panic!()
    };
    let SignIn::Page(status, body) = browser.follow_card_link(&link).await else {
        panic!("a used link must not sign in again")
    };
    assert_eq!(status, 400);
    assert!(body.contains("expired"));

    let page = browser
        .client
        .get(env.authorize_url(
            &client.client.metadata.client_id,
            &[("prompt", "login")],
            true,
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = card_link(&page).unwrap();
    env.clock.advance(601);
    let SignIn::Page(status, _) = browser.follow_card_link(&link).await else {
        panic!("an expired link must not sign in")
    };
    assert_eq!(status, 400);
}

fn x509_issuer(der: &[u8]) -> String {
    careid::domain::smartcard::binding_of(der).unwrap().issuer
}

fn x509_serial(der: &[u8]) -> String {
    careid::domain::smartcard::binding_of(der).unwrap().serial
}

struct ManualNow;
impl ManualNow {
    fn now() -> i64 {
        use careid::clock::Clock;
        careid::clock::SystemClock.now()
    }
}

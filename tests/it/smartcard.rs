//! Smartcard certificates that must not sign anyone in, each refused with a readable page (403)
//! and an audit record; and the proxy header, honoured only from a trusted proxy.

use careid::model::identity::{Authenticator, UserStatus};
use careid::pki::CardSpec;

use careid::model::identity::{AuthenticatorKind, AuthenticatorStatus};

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
        .set_authenticator_status(&binding.id, AuthenticatorStatus::Revoked)
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
            kind: AuthenticatorKind::Smartcard,
            cert_issuer: Some(x509_issuer(&card.der)),
            cert_serial: Some(x509_serial(&card.der)),
            status: AuthenticatorStatus::Active,
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

/// Writes the test CRL file anew: the sub-CA's listing `revoked` and the root's, from `now`.
fn rewrite_crls(env: &TestEnv, contents: &str) {
    std::fs::write(env.dir.path().join("cards.crl.pem"), contents).unwrap();
}

#[tokio::test]
async fn a_stale_crl_refuses_every_card_until_a_fresh_one_is_installed() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("600000000011").await;
    let client = env.confidential_client().await;
    assert!(!env.code_for(&client, &card).await.is_empty());
    // The CRLs' nextUpdate (a week) passes with no new CRL distributed.
    env.clock.advance(8 * 86400);
    let (status, page) = present(&env, Some(&card)).await;
    assert_eq!(status, 403);
    assert!(page.contains("revocation list is out of date"), "{page}");
    assert_eq!(last_login_audit(&env).await, "crl_stale");
    // A fresh CRL is installed and reloaded (as SIGHUP or the file poll would): cards work again.
    rewrite_crls(&env, &env.pki.crls(&[], env.now(), true));
    assert!(careid::http::reload::reload(&env.server.provider, "test"));
    assert!(!env.code_for(&client, &card).await.is_empty());
}

#[tokio::test]
async fn a_card_whose_sub_ca_has_no_crl_is_refused() {
    let env = TestEnv::start_with(Options {
        omit_root_crl: true,
        ..Default::default()
    })
    .await;
    let card = env.user_with_card("600000000012").await;
    let (status, page) = present(&env, Some(&card)).await;
    assert_eq!(status, 403);
    assert!(page.contains("no revocation list"), "{page}");
    assert_eq!(last_login_audit(&env).await, "revocation_unknown");
}

#[tokio::test]
async fn a_changed_crl_file_is_picked_up_and_a_bad_one_is_refused() {
    let env = TestEnv::start_with(Options {
        reload_poll_secs: Some(1),
        ..Default::default()
    })
    .await;
    let card = env.user_with_card("600000000013").await;
    let client = env.confidential_client().await;
    assert!(!env.code_for(&client, &card).await.is_empty());
    // A broken file is refused: the CRLs in use stay, so the card still works.
    rewrite_crls(
        &env,
        "-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n",
    );
    assert!(!careid::http::reload::reload(&env.server.provider, "test"));
    assert!(!env.code_for(&client, &card).await.is_empty());
    // The card is reported lost: a new CRL is written, and the poll picks it up by itself.
    rewrite_crls(&env, &env.pki.crls(&[&card], env.now(), true));
    let mut refused = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let url = env.authorize_url(&client.client.metadata.client_id, &[], true);
        if let SignIn::Page(403, page) = env.browser(Some(&card)).sign_in(&url).await {
            assert!(page.contains("has been revoked"), "{page}");
            refused = true;
            break;
        }
    }
    assert!(refused, "the changed CRL file was not reloaded within 4 s");
}

#[tokio::test]
async fn a_required_certificate_policy_is_enforced() {
    let oid = "2.16.840.1.113883.2.1.3.2.4.1";
    let env = TestEnv::start_with(Options {
        required_policy_oids: vec![oid.into()],
        ..Default::default()
    })
    .await;
    let plain = env.user_with_card("600000000014").await;
    let (status, page) = present(&env, Some(&plain)).await;
    assert_eq!(status, 403);
    assert!(page.contains("certificate policy"), "{page}");
    assert_eq!(last_login_audit(&env).await, "policy_missing");

    env.user("600000000015").await;
    let nhs_card = env
        .pki
        .card_sub
        .card_cert(&CardSpec {
            policy_oid: Some(vec![2, 16, 840, 1, 113883, 2, 1, 3, 2, 4, 1]),
            ..CardSpec::valid("600000000015", "Policy_Card", env.now())
        })
        .unwrap();
    careid::domain::registry::bind_smartcard(
        &env.db,
        "600000000015",
        &nhs_card.der,
        "test",
        env.now(),
    )
    .await
    .unwrap();
    let client = env.confidential_client().await;
    assert!(!env.code_for(&client, &nhs_card).await.is_empty());
}

/// Where browsers present client certificates, careid serves card sign-in and nothing else.
#[tokio::test]
async fn the_card_listener_serves_only_card_sign_in() {
    let env = TestEnv::start().await;
    for path in [
        "/.well-known/openid-configuration",
        "/token",
        "/admin/api/v1/identities?q=9500",
        "/metrics",
        "/role",
    ] {
        let r = env
            .http()
            .get(format!("{}{path}", env.card_base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} on the card listener");
    }
    let r = env
        .http()
        .get(format!("{}/card/login?flow=nothing", env.card_base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "card sign-in itself is there (an unknown flow is refused)"
    );
}

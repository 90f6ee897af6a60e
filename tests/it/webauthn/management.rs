//! Users managing their own authenticators: self-service registration after a recent AAL3
//! sign-in, the account page, rename and remove (never the last working authenticator).

use super::*;
use careid::model::identity::{AuthenticatorKind, AuthenticatorStatus};

#[tokio::test]
async fn self_service_registration_needs_a_recent_aal3_sign_in() {
    let (mut key, root) = soft_token();
    let (env, client, card) = setup_with_card(Some(root), "961000000010").await;
    let browser = env.browser(Some(&card));
    // Not signed in: refused.
    let (status, body) = post_json(
        &browser,
        &env.endpoint("/webauthn/register/options"),
        json!({ "kind": "security_key" }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not_allowed_to_register"))
    );
    // Signed in with the card (AAL3) just now: allowed.
    env.tokens_in(&browser, &client, "openid").await;
    let (status, page) = register(
        &env,
        &browser,
        &mut key,
        json!({ "kind": "security_key", "name": "Spare" }),
        |_| {},
    )
    .await;
    assert_eq!(status, 200, "{page}");
    // The account page lists it; renaming works; a stale sign-in may not register more.
    let account = browser
        .client
        .get(env.endpoint("/account/authenticators"))
        .send()
        .await
        .unwrap();
    let html = account.text().await.unwrap();
    assert!(html.contains("Spare"), "{html}");
    env.clock.advance(901);
    let (status, _) = post_json(
        &browser,
        &env.endpoint("/webauthn/register/options"),
        json!({ "kind": "passkey" }),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn users_rename_and_remove_their_own_authenticators_but_never_the_last() {
    let (mut key, root) = soft_token();
    let (env, client) = setup(Some(root), "961000000011").await;
    let browser = env.browser(None);
    let code = invite(&env, "961000000011").await;
    register(
        &env,
        &browser,
        &mut key,
        json!({ "invitation": code, "kind": "security_key", "name": "Old" }),
        |_| {},
    )
    .await;
    let r = sign_in(
        &env,
        &browser,
        &client,
        &mut key,
        "961000000011",
        "AAL3_ANY",
    )
    .await;
    assert_eq!(r.status(), 303);
    let html = browser
        .client
        .get(env.endpoint("/account/authenticators"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf_at = html.find("name=\"csrf_token\" value=\"").unwrap() + 25;
    let csrf = html[csrf_at..csrf_at + html[csrf_at..].find('"').unwrap()].to_string();
    let id = env
        .db
        .webauthn_credentials_of("961000000011")
        .await
        .unwrap()[0]
        .authenticator
        .id
        .clone();
    let post = |action: &str, form: Vec<(&'static str, String)>| {
        browser
            .client
            .post(env.endpoint(&format!("/account/authenticators/{id}/{action}")))
            .form(&form)
            .send()
    };
    // Without the form's CSRF token: refused.
    assert_eq!(
        post("rename", vec![("name", "New".into())])
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(
            "rename",
            vec![("name", "New".into()), ("csrf_token", csrf.clone())]
        )
        .await
        .unwrap()
        .status(),
        303
    );
    assert_eq!(
        env.db
            .webauthn_credentials_of("961000000011")
            .await
            .unwrap()[0]
            .name,
        "New"
    );
    // The card counts as another working authenticator, so the key may go; once the card is
    // revoked, the key would be the last one.
    let card_id = env
        .db
        .authenticators_of("961000000011")
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.kind == AuthenticatorKind::Smartcard)
        .unwrap()
        .id;
    env.db
        .set_authenticator_status(&card_id, AuthenticatorStatus::Revoked)
        .await
        .unwrap();
    let r = post("remove", vec![("csrf_token", csrf.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("last working authenticator"));
    env.db
        .set_authenticator_status(&card_id, AuthenticatorStatus::Active)
        .await
        .unwrap();
    assert_eq!(
        post("remove", vec![("csrf_token", csrf)])
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        env.db
            .webauthn_credentials_of("961000000011")
            .await
            .unwrap()[0]
            .authenticator
            .status,
        AuthenticatorStatus::Removed
    );
}

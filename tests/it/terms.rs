//! Terms and conditions: accepted once per version before any token is issued, recorded with
//! the version and time; declining gives the client `access_denied` and no tokens.

use serde_json::Value;

use crate::helpers::*;

fn field(page: &str, name: &str) -> String {
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_new_user_accepts_the_terms_once_before_any_token() {
    let env = TestEnv::start().await;
    let card = env.new_user_with_card("930000000001").await;
    let client = env.confidential_client().await;
    let browser = env.browser(Some(&card));
    let outcome = browser
        .sign_in(&env.authorize_url(&client.client.metadata.client_id, &[], true))
        .await;
    let SignIn::Page(200, page) = outcome else {
        panic!("the terms page: {outcome:?}")
    };
    assert!(
        page.contains("Terms and conditions") && page.contains("version 2026-11"),
        "{page}"
    );
    assert!(page.contains("I accept these terms") && page.contains("I do not accept"));
    assert_eq!(
        env.db
            .terms_accepted("930000000001", "2026-11")
            .await
            .unwrap(),
        None,
        "nothing recorded before the answer"
    );

    let forged = browser
        .client
        .post(env.endpoint("/terms"))
        .form(&[
            ("flow", field(&page, "flow").as_str()),
            ("csrf_token", "forged"),
            ("decision", "accept"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "CSRF token required");

    let accepted = browser
        .client
        .post(env.endpoint("/terms"))
        .form(&[
            ("flow", field(&page, "flow").as_str()),
            ("csrf_token", field(&page, "csrf_token").as_str()),
            ("decision", "accept"),
        ])
        .send()
        .await
        .unwrap();
    assert!(accepted.status().is_redirection(), "then on to the client");
    let code = query_param(&location(&accepted), "code").expect("a code after acceptance");
    let tokens: Value = env.redeem(&client, &code).await.json().await.unwrap();
    assert!(tokens["id_token"].is_string());
    assert_eq!(
        env.db
            .terms_accepted("930000000001", "2026-11")
            .await
            .unwrap(),
        Some(env.now()),
        "recorded with version and time"
    );
    assert!(env
        .db
        .recent_audit(20)
        .await
        .unwrap()
        .iter()
        .any(|e| e.kind == "terms.accepted" && e.detail["version"] == "2026-11"));

    // Accepted once: the next sign-in goes straight through.
    let again = browser
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
    let SignIn::Redirected(_) = browser.follow_card_link(&card_link(&again).unwrap()).await else {
        panic!("no terms page the second time")
    };
}

#[tokio::test]
async fn declining_the_terms_sends_access_denied_and_no_tokens() {
    let env = TestEnv::start().await;
    let card = env.new_user_with_card("930000000002").await;
    let client = env.confidential_client().await;
    let browser = env.browser(Some(&card));
    let outcome = browser
        .sign_in(&env.authorize_url(&client.client.metadata.client_id, &[], true))
        .await;
    let SignIn::Page(200, page) = outcome else {
        panic!("the terms page: {outcome:?}")
    };
    let declined = browser
        .client
        .post(env.endpoint("/terms"))
        .form(&[
            ("flow", field(&page, "flow").as_str()),
            ("csrf_token", field(&page, "csrf_token").as_str()),
            ("decision", "decline"),
        ])
        .send()
        .await
        .unwrap();
    let back = location(&declined);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&back, "code").is_none());
    assert_eq!(
        env.db
            .terms_accepted("930000000002", "2026-11")
            .await
            .unwrap(),
        None
    );

    // With a session but terms unaccepted, prompt=none cannot show the page.
    assert_eq!(
        env.silent_error(&browser, &client.client.metadata.client_id, &[])
            .await
            .as_deref(),
        Some("interaction_required")
    );
}

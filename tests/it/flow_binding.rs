//! A pending sign-in is finished only by the browser that started it, by the step it was made
//! for, and (after authentication) by the session it belongs to: each attack below is the
//! attacker's request sequence, refused, beside the honest path.

use careid::domain::rbac::{self, Position, Profile};
use careid::pki::Issued;

use crate::helpers::*;

/// Gives `uuid` two current roles (so `selectedrole` shows the picker).
async fn two_roles(env: &TestEnv, uuid: &str) {
    rbac::import(
        &env.db,
        include_str!("../../config/rbac-sample.json"),
        "test",
        env.now(),
    )
    .await
    .unwrap();
    for (id, job) in [("flow-nurse", "R8000"), ("flow-imms", "R8001")] {
        let position = Position {
            id: id.into(),
            org_code: "RZ9".into(),
            name: id.into(),
            esr_position: None,
            profiles: vec![Profile {
                org_code: "RZ9".into(),
                job_role: job.into(),
                activities: vec![],
                workgroups: vec![],
                areas_of_work: vec![],
            }],
        };
        let id = env.db.upsert_position(&position, env.now()).await.unwrap();
        rbac::assign_position(&env.db, uuid, &id, env.now() - 60, None, "test", env.now())
            .await
            .unwrap();
    }
}

/// The `flow` query parameter of a page's card link.
fn flow_of(page: &str) -> String {
    query_param(&card_link(page).expect("a card link"), "flow").unwrap()
}

async fn get_page(browser: &Browser, url: &str) -> (u16, String) {
    let r = browser.client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_card_link_is_useless_in_any_other_browser() {
    let env = TestEnv::start().await;
    let card: Issued = env.user_with_card("123412341301").await;
    let client = env.confidential_client().await;
    let url = env.authorize_url(&client.client.metadata.client_id, &[], true);
    let started_here = env.browser(Some(&card));
    let (status, page) = get_page(&started_here, &url).await;
    assert_eq!(status, 200);
    let link = card_link(&page).unwrap();

    // The link sent to (or phished into) another browser, even with the right card in it.
    let elsewhere = env.browser(Some(&card));
    match elsewhere.follow_card_link(&link).await {
        SignIn::Page(400, body) => assert!(
            body.contains("only in the browser that started them"),
            "{body}"
        ),
        other => panic!("another browser finished the sign-in: {other:?}"),
    }
    // The sign-in page can be shown again (a refused key's "Try again"), but only here.
    let flow = query_param(&link, "flow").unwrap();
    let again = format!("{}?flow={flow}", env.endpoint("/login"));
    assert_eq!(get_page(&elsewhere, &again).await.0, 410);
    assert_eq!(get_page(&started_here, &again).await.0, 200);
    // The browser that started it still can.
    match started_here.follow_card_link(&link).await {
        SignIn::Redirected(back) => assert!(query_param(&back, "code").is_some()),
        other => panic!("{other:?}"),
    }
    // Once finished, the flow's page is gone for everyone, its own browser too.
    let (status, page) = get_page(&started_here, &again).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("This sign-in has expired"));
}

#[tokio::test]
async fn prompt_login_cannot_be_skipped_through_the_role_picker() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341302").await;
    two_roles(&env, "123412341302").await;
    let client = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let browser = env.browser(Some(&card));
    // Signed in once, with a role chosen.
    let first = browser
        .sign_in(&env.authorize_url(&id, &[("scope", "openid selectedrole")], true))
        .await;
    assert!(matches!(first, SignIn::Page(200, ref p) if p.contains("Choose your role")));

    // The relying party demands a fresh sign-in. The attacker takes the sign-in flow to /role.
    let url = env.authorize_url(
        &id,
        &[
            ("scope", "openid selectedrole"),
            ("prompt", "login"),
            ("max_age", "0"),
        ],
        true,
    );
    let (status, page) = get_page(&browser, &url).await;
    assert_eq!(status, 200);
    assert!(page.contains("Sign in"), "a fresh sign-in is asked for");
    let flow = flow_of(&page);
    let (status, body) = get_page(&browser, &env.endpoint(&format!("/role?flow={flow}"))).await;
    assert_eq!(status, 400, "the sign-in step is not the role step");
    assert!(body.contains("This sign-in has expired") && !body.contains("csrf_token"));
    let posted = browser
        .client
        .post(env.endpoint("/role"))
        .form(&[
            ("flow", flow.as_str()),
            ("csrf_token", "x"),
            ("person_roleid", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        !posted.status().is_redirection(),
        "no code without signing in"
    );
}

#[tokio::test]
async fn the_terms_step_is_finished_only_on_the_terms_page() {
    let env = TestEnv::start().await;
    let card = env.new_user_with_card("123412341303").await;
    two_roles(&env, "123412341303").await;
    let client = env.confidential_client().await;
    let browser = env.browser(Some(&card));
    let url = env.authorize_url(
        &client.client.metadata.client_id,
        &[("scope", "openid selectedrole")],
        true,
    );
    let SignIn::Page(200, page) = browser.sign_in(&url).await else {
        panic!("the terms page")
    };
    assert!(page.contains("Terms and conditions"), "{page}");
    let flow = page
        .split("name=\"flow\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    // Taking the terms flow to the role picker, to get a code without accepting.
    let (status, body) = get_page(&browser, &env.endpoint(&format!("/role?flow={flow}"))).await;
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains("Choose your role"));
    assert!(env
        .db
        .terms_accepted(
            "123412341303",
            &careid::config::TermsConfig::default().version
        )
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_sign_in_by_someone_other_than_id_token_hint_names_gets_no_code() {
    let env = TestEnv::start().await;
    let alice = env.user_with_card("123412341304").await;
    let mallory = env.user_with_card("123412341305").await;
    let client = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let tokens = env
        .tokens_in(&env.browser(Some(&alice)), &client, "openid")
        .await;
    let hint = tokens["id_token"].as_str().unwrap();
    let url = env.authorize_url(&id, &[("id_token_hint", hint)], true);

    match env.browser(Some(&mallory)).sign_in(&url).await {
        SignIn::Redirected(back) => {
            assert_eq!(
                query_param(&back, "error").as_deref(),
                Some("login_required")
            );
            assert!(query_param(&back, "code").is_none());
        }
        other => panic!("{other:?}"),
    }
    match env.browser(Some(&alice)).sign_in(&url).await {
        SignIn::Redirected(back) => assert!(query_param(&back, "code").is_some(), "{back}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn flow_ids_are_stored_only_as_digests() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341306").await;
    let client = env.confidential_client().await;
    let url = env.authorize_url(&client.client.metadata.client_id, &[], true);
    let (_, page) = get_page(&env.browser(Some(&card)), &url).await;
    let flow = flow_of(&page);
    let key = careid::domain::login::flow_key(&flow);
    assert_ne!(key, flow);
    assert!(env.db.login_flow(&flow, env.now()).await.unwrap().is_none());
    let stored = env.db.login_flow(&key, env.now()).await.unwrap().unwrap();
    assert_eq!(stored.step, careid::domain::login::FlowStep::SignIn);
    assert!(stored.browser_hash.is_some() && stored.sid.is_none());
}

#[tokio::test]
async fn a_role_step_belongs_to_the_authentication_that_made_it() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341307").await;
    two_roles(&env, "123412341307").await;
    let client = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let browser = env.browser(Some(&card));
    let picker_flow = |page: &str| {
        page.split("name=\"flow\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let url = env.authorize_url(&id, &[("scope", "openid selectedrole")], true);
    let SignIn::Page(200, first) = browser.sign_in(&url).await else {
        panic!("the picker")
    };
    let old_flow = picker_flow(&first);
    // The person signs in again (a new authentication of the same session) and gets a new picker.
    env.clock.advance(5);
    let again = env.authorize_url(
        &id,
        &[("scope", "openid selectedrole"), ("prompt", "login")],
        true,
    );
    let SignIn::Page(200, second) = browser.sign_in(&again).await else {
        panic!("the picker again")
    };
    let new_flow = picker_flow(&second);
    let (status, _) = get_page(&browser, &env.endpoint(&format!("/role?flow={old_flow}"))).await;
    assert_eq!(status, 400, "the older authentication's step is over");
    let (status, page) = get_page(&browser, &env.endpoint(&format!("/role?flow={new_flow}"))).await;
    assert_eq!(status, 200);
    assert!(page.contains("Choose your role"));
}

//! The onboarding pages in headless Chromium: a developer signs in (card through the TLS
//! proxy's header), makes a test identity (card download and password shown once) and an
//! initial access token, registers a client with it, and asks for production (refused: the
//! checks fail, and the table says why); an onboarding manager from elsewhere approves a queued
//! request. Every page passes axe-core's WCAG 2.1 A/AA rules and careid's page checks.

use crate::cdp::{Chromium, Page};
use crate::console::browser::{axe_source, check_accessibility, signed_in_at};

use super::*;

async fn text(page: &Page<'_>) -> String {
    page.eval("document.body.innerText")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn set_field(page: &Page<'_>, selector: &str, value: &str) {
    let js = format!("(() => {{ const f = document.querySelector({selector:?}); f.value = {value:?}; return true; }})()");
    assert_eq!(page.eval(&js).await, json!(true), "{selector}");
}

async fn press(page: &Page<'_>, selector: &str) {
    page.tab_to(selector).await;
    page.press("Enter").await;
}

async fn heading_is(page: &Page<'_>, heading: &str) {
    page.wait_for(&format!(
        "document.querySelector('h1') && document.querySelector('h1').innerText === {heading:?}"
    ))
    .await;
}

#[tokio::test]
async fn developers_and_managers_work_in_the_onboarding_pages_in_chromium() {
    let env = TestEnv::start_with(Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Default::default()
    })
    .await;
    let p = &env.server.provider;
    let supplier = p.create_supplier("Ward Apps Ltd", "test").await.unwrap();
    let developer = env.user_with_card("760000000001").await;
    p.add_onboarding_member("760000000001", Some(&supplier.id), "test")
        .await
        .unwrap();
    let manager = env.user_with_card("760000000002").await;
    p.add_onboarding_member("760000000002", None, "test")
        .await
        .unwrap();
    let axe = axe_source();
    let shots = screenshot_dir();

    let chromium = Chromium::launch().await;
    let page = signed_in_at(&chromium, &env, &developer, "/onboarding/", "Your clients").await;
    check_accessibility(&page, &axe, "onboarding home (no clients)").await;

    // A test identity: its card (PKCS#12 download) and password, once.
    set_field(&page, "input[name=given_name]", "Tess").await;
    set_field(&page, "input[name=family_name]", "Ting").await;
    press(&page, "form[action$='/test-identities'] button").await;
    page.wait_for("document.querySelector('h1') && document.querySelector('h1').innerText.startsWith('Test identity 99')").await;
    let download = page
        .eval("document.querySelector('a[download]').getAttribute('href')")
        .await;
    assert!(download
        .as_str()
        .unwrap()
        .starts_with("data:application/x-pkcs12;base64,"));
    assert!(
        page.eval("document.getElementById('password').value.length")
            .await
            .as_u64()
            .unwrap()
            > 20
    );
    check_accessibility(&page, &axe, "test identity").await;
    page.screenshot(&shots.join("onboarding-test-identity.png"))
        .await;

    // An initial access token, then a registration with it (as the supplier's build would).
    page.navigate(&env.endpoint("/onboarding/")).await;
    heading_is(&page, "Your clients").await;
    press(&page, "form[action$='/token'] button").await;
    heading_is(&page, "Initial access token").await;
    check_accessibility(&page, &axe, "initial access token").await;
    let token = page.eval("document.getElementById('secret').value").await;
    let (status, registered) = register(
        &env,
        token.as_str(),
        json!({ "client_name": "Ward List", "redirect_uris": [RP_REDIRECT] }),
    )
    .await;
    assert_eq!(status, 201, "{registered}");

    // The client is listed; asking for production runs the checks, which fail and say why.
    page.navigate(&env.endpoint("/onboarding/")).await;
    heading_is(&page, "Your clients").await;
    assert!(text(&page).await.contains("Ward List"));
    press(&page, "form[action$='/promotion'] button").await;
    page.wait_for("document.querySelector('.notice') !== null")
        .await;
    let home = text(&page).await;
    assert!(home.contains("Not asked: some checks failed"), "{home}");
    assert!(
        home.contains("backchannel_logout: register a backchannel_logout_uri"),
        "{home}"
    );
    check_accessibility(&page, &axe, "onboarding home (a client, failed checks)").await;
    page.screenshot(&shots.join("onboarding-home.png")).await;
    // A new client secret, shown once; the old one keeps working through the overlap.
    press(&page, "form[action$='/secret'] button").await;
    heading_is(&page, "New client secret").await;
    check_accessibility(&page, &axe, "new client secret").await;
    let new_secret = page.eval("document.getElementById('secret').value").await;
    let client_id = registered["client_id"].as_str().unwrap();
    for secret in [
        registered["client_secret"].as_str().unwrap(),
        new_secret.as_str().unwrap(),
    ] {
        let r = env
            .http()
            .post(env.endpoint("/introspect"))
            .basic_auth(client_id, Some(secret))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    // A private_key_jwt client's keys are replaced by an upload.
    let (old_key, new_key) = (rp_key("RS256", "old-key"), rp_key("RS256", "new-key"));
    let (iat, _) = p
        .issue_initial_access_token(&supplier.id, "test")
        .await
        .unwrap();
    let (status, keyed) = register(&env, Some(&iat), json!({ "client_name": "Keyed App", "redirect_uris": [RP_REDIRECT], "token_endpoint_auth_method": "private_key_jwt", "jwks": old_key.jwks() })).await;
    assert_eq!(status, 201, "{keyed}");
    page.navigate(&env.endpoint("/onboarding/")).await;
    heading_is(&page, "Your clients").await;
    let keyed_id = keyed["client_id"].as_str().unwrap();
    set_field(
        &page,
        &format!("textarea[id='jwks-{keyed_id}']"),
        &new_key.jwks().to_string(),
    )
    .await;
    press(&page, "form[action$='/keys'] button").await;
    page.wait_for("document.querySelector('.notice') !== null")
        .await;
    assert!(text(&page)
        .await
        .contains("The client's keys were replaced."));
    let stored = env.db.client(keyed_id).await.unwrap().unwrap();
    assert_eq!(stored.metadata.jwks.unwrap()["keys"][0]["kid"], "new-key");

    // Developers have no queue to decide.
    page.navigate(&env.endpoint("/onboarding/promotions")).await;
    heading_is(&page, "Not done").await;

    // A request is waiting (its checks passed earlier): a manager from elsewhere approves it.
    let client_id = registered["client_id"].as_str().unwrap();
    env.db
        .insert_promotion_request(&careid::model::onboarding::PromotionRequest {
            id: "req-browser".into(),
            client_id: client_id.into(),
            report_id: "r".into(),
            requested_by: "supplier".into(),
            requested_at: env.now(),
            decided_by: None,
            decided_at: None,
            outcome: None,
            reason: None,
        })
        .await
        .unwrap();
    let other = Chromium::launch().await;
    let page = signed_in_at(&other, &env, &manager, "/onboarding/", "Your clients").await;
    press(&page, "nav a[href$='/promotions']").await;
    heading_is(&page, "Promotion requests").await;
    assert!(text(&page).await.contains("Ward List from Ward Apps Ltd"));
    check_accessibility(&page, &axe, "promotion queue").await;
    page.screenshot(&shots.join("onboarding-promotions.png"))
        .await;
    set_field(
        &page,
        "input[name=reason]",
        "checks passed; agreement signed",
    )
    .await;
    press(
        &page,
        "form[action$='/promotions/req-browser'] button[value=approve]",
    )
    .await;
    page.wait_for("document.querySelector('.notice') !== null")
        .await;
    assert!(text(&page).await.contains("The request was approved."));
    let client = env.db.client(client_id).await.unwrap().unwrap();
    assert_eq!(
        client.metadata.careid_stage,
        Some(careid::model::client::Stage::Production)
    );
}

//! The sign-in pages in a real headless Chromium, used the way a person without a mouse would:
//! the terms page and the role picker reached and answered with the keyboard alone, their
//! accessibility basics checked, and screenshots saved (see `helpers::screenshot_dir`).

use careid::domain::rbac;
use serde_json::{json, Value};

use crate::cdp::Chromium;
use crate::helpers::*;

const SAMPLE: &str = include_str!("../../config/rbac-sample.json");

#[tokio::test]
async fn terms_and_role_picker_work_by_keyboard_in_chromium() {
    // The browser reaches careid as through a TLS-terminating proxy on this host, which passes
    // the card certificate in a header (the card itself is tested in smartcard.rs).
    let env = TestEnv::start_with(Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Default::default()
    })
    .await;
    rbac::import(&env.db, SAMPLE, "test", env.now())
        .await
        .unwrap();
    let card = env.new_user_with_card("940000000001").await;
    let mut roles = Vec::new();
    for (org, name) in [
        ("RZ9", "Staff Nurse - Example Ward 7"),
        ("RZ8", "Immunisation Nurse (inter-organisation)"),
    ] {
        let id = env.db.position_by_name(org, name).await.unwrap().unwrap();
        roles.extend(
            rbac::assign_position(
                &env.db,
                "940000000001",
                &id,
                env.now() - 60,
                None,
                "test",
                env.now(),
            )
            .await
            .unwrap(),
        );
    }
    // The relying party's callback, on loopback, so the final page loads.
    let (client, callback) = relying_party(&env).await;
    let authorize = format!(
        "{}?{}",
        env.endpoint("/authorize"),
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", client.client.metadata.client_id.as_str()),
                ("redirect_uri", callback.as_str()),
                ("scope", "openid selectedrole nationalrbacaccess"),
                ("state", "s1"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256")
            ])
            .finish()
    );

    let chromium = Chromium::launch().await;
    let page = chromium.new_page().await;
    let escaped: String = card
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
    page.set_extra_headers(json!({ "x-ssl-client-cert": escaped }))
        .await;
    page.navigate(&authorize).await;
    page.wait_for(
        "document.querySelector('h1') && document.querySelector('h1').innerText === 'Sign in'",
    )
    .await;
    assert_eq!(
        page.eval("document.documentElement.lang").await,
        json!("en")
    );
    // The card listener is on another port; go there as the proxy would (main listener, same paths).
    let link = page
        .eval("document.querySelector('a.button').getAttribute('href')")
        .await;
    page.navigate(&link.as_str().unwrap().replace(&env.card_base, &env.local))
        .await;

    page.wait_for("document.querySelector('h1') && document.querySelector('h1').innerText === 'Terms and conditions'").await;
    let docs = screenshot_dir();
    page.screenshot(&docs.join("terms.png")).await;
    page.tab_to("button[value=accept]").await;
    page.press("Enter").await;

    page.wait_for("document.querySelector('h1') && document.querySelector('h1').innerText === 'Choose your role'").await;
    let a11y = page
        .eval(
            "(() => { const radios = [...document.querySelectorAll('input[type=radio]')];
                return { radios: radios.length,
                         labelled: radios.every(r => r.labels.length === 1 && r.labels[0].innerText.trim().length > 0),
                         legend: !!document.querySelector('fieldset > legend'),
                         scripts: document.scripts.length }; })()",
        )
        .await;
    assert_eq!(
        a11y,
        json!({ "radios": 2, "labelled": true, "legend": true, "scripts": 0 }),
        "labelled radios in a fieldset, no JavaScript"
    );
    page.screenshot(&docs.join("role-picker.png")).await;
    // Keyboard only: into the radio group, down to the second role, then to Continue.
    page.tab_to("input[type=radio]:checked").await;
    page.press("ArrowDown").await;
    let chosen = page
        .eval("document.querySelector('input[name=person_roleid]:checked').value")
        .await;
    assert!(roles.iter().any(|r| json!(r) == chosen), "{chosen}");
    page.tab_to("form[method=post] button[type=submit]").await;
    page.press("Enter").await;

    page.wait_for("location.href.startsWith('http://127.0.0.1')")
        .await;
    let href = page.eval("location.href").await;
    let code = query_param(href.as_str().unwrap(), "code").expect("the RP got a code");
    let token = env
        .http()
        .post(env.endpoint("/token"))
        .basic_auth(&client.client.metadata.client_id, client.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        jwt_claims(token["id_token"].as_str().unwrap())["selected_roleid"],
        chosen,
        "the role chosen by keyboard"
    );
    assert!(env
        .db
        .terms_accepted("940000000001", "2026-11")
        .await
        .unwrap()
        .is_some());
}

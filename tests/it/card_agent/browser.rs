//! The agent page in a real headless Chromium: the sign-in page's "Use the card agent" button
//! shows the code, and once the card has signed (here the agent is played in-process), the
//! page's own script finishes the sign-in and the browser lands at the relying party. The page
//! passes axe-core's WCAG 2.1 A/AA rules and careid's page checks.

use serde_json::json;

use super::*;
use crate::cdp::Chromium;
use crate::console::browser::{axe_source, check_accessibility};

#[tokio::test]
async fn the_agent_page_shows_the_code_and_finishes_by_itself_once_the_card_has_signed() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("730000000001").await;
    let (client, callback) = relying_party(&env).await;
    let authorize = format!(
        "{}?{}",
        env.endpoint("/authorize"),
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", client.client.metadata.client_id.as_str()),
                ("redirect_uri", callback.as_str()),
                ("scope", "openid"),
                ("state", "s1"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .finish()
    );
    let chromium = Chromium::launch().await;
    let page = chromium.new_page().await;
    page.navigate(&authorize).await;
    page.wait_for(
        "document.querySelector('h1') && document.querySelector('h1').innerText === 'Sign in'",
    )
    .await;
    page.tab_to("form[action$='/login/agent'] button").await;
    page.press("Enter").await;
    page.wait_for("document.querySelector('h1') && document.querySelector('h1').innerText === 'Sign in with your card agent'")
        .await;
    check_accessibility(&page, &axe_source(), "card agent page").await;
    page.screenshot(&screenshot_dir().join("card-agent.png"))
        .await;
    let code = page
        .eval("document.getElementById('agent-code').innerText")
        .await;
    let code = code
        .as_str()
        .expect("the page shows a code")
        .trim()
        .to_string();
    assert_eq!(code.len(), 9, "XXXX-XXXX: {code}");
    assert_eq!(
        page.eval("document.querySelector('a.button').getAttribute('href').startsWith('careid-agent:sign-in?issuer=')").await,
        json!(true)
    );

    // The card signs through the agent protocol; the page notices and carries on alone.
    card_signs(&env, &code, &mut virtual_card(&card))
        .await
        .unwrap();
    page.wait_for("location.href.startsWith('http://127.0.0.1')")
        .await;
    let href = page.eval("location.href").await;
    let code = query_param(href.as_str().unwrap(), "code").expect("the RP got a code");
    assert_eq!(
        query_param(href.as_str().unwrap(), "state").as_deref(),
        Some("s1")
    );
    let r = env
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
        .unwrap();
    let tokens: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["N3_SMARTCARD"])
    );
}

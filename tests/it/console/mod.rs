//! The RA console (`/ra/`) over HTTP, as a browser with a smartcard uses it: sign-in through
//! careid's own admin client, the main tasks end to end, and the refusals (another RA's task,
//! one's own record, another organisation, a form without its CSRF token, an idle session, a
//! sensitive action after an old sign-in). `browser.rs` walks the same pages in Chromium.

use careid::domain::rbac::{self, Position, Profile};
use careid::pki::Issued;
use reqwest::StatusCode;

use crate::helpers::*;

pub mod browser;
mod tasks;

const SAMPLE: &str = include_str!("../../../config/rbac-sample.json");

pub const MANAGER: &str = "958000000001";
pub const AGENT: &str = "958000000002";
pub const NURSE: &str = "958000000003";
pub const ELSEWHERE: &str = "958000000004";

/// A test server with the sample RBAC data; an RA Manager (also a sponsor) and an RA Agent at
/// RZ9, a nurse at RZ9 and a person who only works at RZ8, each with a card.
pub struct Console {
    pub env: TestEnv,
    pub manager: Issued,
    pub agent: Issued,
    pub nurse: Issued,
    pub nurse_position: String,
}

pub async fn console() -> Console {
    console_with(Options::default()).await
}

pub async fn console_with(options: Options) -> Console {
    let env = TestEnv::start_with(options).await;
    rbac::import(&env.db, SAMPLE, "test", env.now())
        .await
        .unwrap();
    let position = |org: &str, name: &str| {
        let (org, name) = (org.to_string(), name.to_string());
        let db = env.db.clone();
        async move { db.position_by_name(&org, &name).await.unwrap().unwrap() }
    };
    let ram = position("RZ9", "Registration Authority Manager").await;
    let nurse_position = position("RZ9", "Staff Nurse - Example Ward 7").await;
    let rz8 = position("RZ8", "Immunisation Nurse (inter-organisation)").await;
    let raa = env
        .db
        .upsert_position(
            &Position {
                id: "ra-agent".into(),
                org_code: "RZ9".into(),
                name: "Registration Authority Agent".into(),
                esr_position: None,
                profiles: vec![Profile {
                    org_code: "RZ9".into(),
                    job_role: "R5090".into(),
                    activities: vec![],
                    workgroups: vec![],
                    areas_of_work: vec![],
                }],
            },
            env.now(),
        )
        .await
        .unwrap();
    let mut cards = Vec::new();
    for (uuid, position) in [
        (MANAGER, &ram),
        (AGENT, &raa),
        (NURSE, &nurse_position),
        (ELSEWHERE, &rz8),
    ] {
        cards.push(holder(&env, uuid, position).await.0);
    }
    let mut cards = cards.into_iter();
    Console {
        manager: cards.next().unwrap(),
        agent: cards.next().unwrap(),
        nurse: cards.next().unwrap(),
        env,
        nurse_position,
    }
}

/// A browser signed in to the console with `card`: `/ra/` sends it to `/authorize` (careid's
/// console client), the card signs in, and the callback opens a console session.
pub async fn signed_in(env: &TestEnv, card: &Issued) -> Browser {
    let browser = env.browser(Some(card));
    let r = browser
        .client
        .get(env.endpoint("/ra/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the console asks for a sign-in"
    );
    let authorize = location(&r);
    assert!(
        authorize.contains("client_id=careid-ra-console"),
        "{authorize}"
    );
    let callback = match browser.sign_in(&authorize).await {
        SignIn::Redirected(to) => to,
        SignIn::Page(status, body) => panic!("console sign-in failed: {status} {body}"),
    };
    let r = browser.client.get(&callback).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    assert_eq!(location(&r), "/ra/");
    browser
}

/// A console page: its status and HTML (with the `/` and `&` entities the templates write in
/// attributes turned back into characters, so tests can look for links).
pub async fn get(env: &TestEnv, b: &Browser, path: &str) -> (StatusCode, String) {
    let r = b.client.get(env.endpoint(path)).send().await.unwrap();
    (r.status(), unescape(&r.text().await.unwrap()))
}

pub fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/").replace("&amp;", "&")
}

/// The CSRF token of the forms on a console page.
pub fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

/// Posts a console form (with the page's CSRF token unless `fields` carries its own).
pub async fn post(
    env: &TestEnv,
    b: &Browser,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, Option<String>) {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    let token;
    if !fields.iter().any(|(k, _)| *k == "csrf") {
        token = csrf(&get(env, b, "/ra/").await.1);
        form.push(("csrf", &token));
    }
    let r = b
        .client
        .post(env.endpoint(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let to = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, unescape(&r.text().await.unwrap()), to)
}

/// The UUID in a console redirect to a person's record.
pub fn record_uuid(location: &str) -> String {
    location
        .split("/people/")
        .nth(1)
        .unwrap()
        .split(['?', '/'])
        .next()
        .unwrap()
        .to_string()
}

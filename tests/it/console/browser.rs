//! The RA console in headless Chromium: an RA Manager signs in with a card (through a
//! TLS-terminating proxy on this host, which passes the certificate in a header), walks the main
//! tasks, and every page passes axe-core's WCAG 2.1 A/AA rules and careid's own checks (one
//! `h1`, a label for every field, an error summary whose links move focus to the field).
//! Screenshots go to `helpers::screenshot_dir()`.
//!
//! axe-core comes from the npm registry: `.ci/test` installs it into `target/axe/`.

use serde_json::{json, Value};

use super::*;
use crate::cdp::{Chromium, Page};

const AXE: &str = "target/axe/node_modules/axe-core/axe.min.js";

pub fn axe_source() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(AXE);
    std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run `npm install --prefix target/axe axe-core@4.14.1` (.ci/test does)",
            path.display()
        )
    })
}

/// Runs axe-core (WCAG 2.0/2.1 A and AA) and careid's own checks on the page; panics with the
/// violations.
pub async fn check_accessibility(page: &Page<'_>, axe: &str, name: &str) {
    if page.eval("typeof axe").await != json!("object") {
        page.eval(axe).await;
    }
    let violations = page
        .eval(
            "axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })\
             .then(r => r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', ')))",
        )
        .await;
    assert_eq!(violations, json!([]), "{name}: axe-core violations");
    let own = page
        .eval(
            "(() => { const problems = [];\
              if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');\
              if (document.documentElement.lang !== 'en') problems.push('no lang');\
              for (const f of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {\
                if (!f.id || !document.querySelector('label[for=\"' + f.id + '\"]')) problems.push('no label for ' + (f.name || f.id));\
              }\
              for (const a of document.querySelectorAll('.error-summary a')) {\
                const id = a.getAttribute('href').slice(1);\
                if (!document.getElementById(id)) problems.push('error link to missing ' + id);\
              }\
              if (!document.querySelector('a.skip[href=\"#main\"]')) problems.push('no skip link');\
              return problems; })()",
        )
        .await;
    assert_eq!(own, json!([]), "{name}: careid's page checks");
}

async fn open(page: &Page<'_>, url: &str, heading: &str) {
    page.navigate(url).await;
    page.wait_for(&format!(
        "document.querySelector('h1') && document.querySelector('h1').innerText === {heading:?}"
    ))
    .await;
}

/// Fills a console form's fields by name and submits it with the keyboard.
async fn fill_and_submit(page: &Page<'_>, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        let set = format!(
            "(() => {{ const f = document.querySelector('[name={name:?}]'); \
               if (f.type === 'checkbox') f.checked = {checked}; else f.value = {value:?}; return true; }})()",
            checked = !value.is_empty()
        );
        assert_eq!(page.eval(&set).await, json!(true), "{name}");
    }
    page.tab_to("main form[novalidate] button[type=submit]")
        .await;
    page.press("Enter").await;
}

async fn text(page: &Page<'_>) -> String {
    page.eval("document.body.innerText")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_ra_manager_works_in_the_console_in_chromium_and_every_page_is_accessible() {
    let c = console_with(Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Default::default()
    })
    .await;
    let env = &c.env;
    let axe = axe_source();
    let shots = screenshot_dir();
    let chromium = Chromium::launch().await;
    // Sign in: /ra/ sends the browser to careid's sign-in page; the card link (through the
    // proxy) signs in and comes back to the console.
    let page = signed_in_page(&chromium, env, &c.manager).await;
    let home = text(&page).await;
    assert!(home.contains("RA Manager, Sponsor at RZ9"), "{home}");
    assert!(
        home.contains("RZ9 has 1 RA Manager"),
        "the two-managers warning: {home}"
    );
    check_accessibility(&page, &axe, "home").await;
    page.screenshot(&shots.join("ra-console-home.png")).await;

    // Register: an empty form gives an error summary whose links move focus to the field.
    open(
        &page,
        &env.endpoint("/ra/people/new"),
        "Register a new identity",
    )
    .await;
    check_accessibility(&page, &axe, "register").await;
    page.tab_to("main form[novalidate] button[type=submit]")
        .await;
    page.press("Enter").await;
    page.wait_for("document.querySelector('.error-summary')")
        .await;
    check_accessibility(&page, &axe, "register with errors").await;
    page.screenshot(&shots.join("ra-console-register-errors.png"))
        .await;
    assert_eq!(
        page.eval("document.title").await,
        json!("Error: Register a new identity – careid RA console")
    );
    page.tab_to(".error-summary a[href='#field-given_name']")
        .await;
    page.press("Enter").await;
    page.wait_for("document.activeElement && document.activeElement.id === 'field-given_name'")
        .await;
    fill_and_submit(
        &page,
        &[
            ("given_name", "Priya"),
            ("family_name", "Newstarter"),
            ("date_of_birth", "1988-02-29"),
            ("ni_number", "AB123456C"),
        ],
    )
    .await;
    page.wait_for("document.querySelector('.notice')").await;
    let uuid = page
        .eval("location.pathname.split('/').pop()")
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(uuid.len(), 12, "{uuid}");
    check_accessibility(&page, &axe, "record").await;

    // The identity check, a position, a TAC and its return.
    open(
        &page,
        &env.endpoint(&format!("/ra/people/{uuid}/verify")),
        "Record an identity check",
    )
    .await;
    check_accessibility(&page, &axe, "verify").await;
    fill_and_submit(
        &page,
        &[
            ("level", "3"),
            ("doc1_kind", "passport"),
            ("doc2_kind", "utility bill"),
            ("doc3_kind", "P45 or P60"),
        ],
    )
    .await;
    page.wait_for("document.querySelector('.notice') && document.querySelector('.notice').innerText.includes('Identity check recorded')").await;
    open(
        &page,
        &env.endpoint(&format!("/ra/people/{uuid}/assign")),
        "Assign a position",
    )
    .await;
    check_accessibility(&page, &axe, "assign").await;
    fill_and_submit(&page, &[("position_id", &c.nurse_position)]).await;
    page.wait_for("document.querySelector('.notice') && document.querySelector('.notice').innerText.includes('Position assigned')").await;
    photo_on_record(env, &uuid).await;
    open(
        &page,
        &env.endpoint(&format!("/ra/people/{uuid}/tac")),
        "Issue a temporary access card",
    )
    .await;
    assert_eq!(
        page.eval("document.querySelector('img.photo').naturalWidth")
            .await,
        json!(1),
        "the photograph on record is shown for the likeness check"
    );
    check_accessibility(&page, &axe, "tac").await;
    page.screenshot(&shots.join("ra-console-tac.png")).await;
    let tac = env.card(&uuid);
    fill_and_submit(
        &page,
        &[
            ("likeness", "yes"),
            ("reason", "card not with them"),
            ("tac_name", "TAC 0099"),
            ("hours", "12"),
            ("certificate_pem", &tac.cert_pem),
        ],
    )
    .await;
    page.wait_for("document.querySelector('.notice') && document.querySelector('.notice').innerText.includes('Temporary access card issued')").await;
    check_accessibility(&page, &axe, "record with a TAC").await;
    page.screenshot(&shots.join("ra-console-record.png")).await;
    page.tab_to("form[action*='/return'] button").await;
    page.press("Enter").await;
    page.wait_for("document.querySelector('.notice') && document.querySelector('.notice').innerText.includes('TAC return recorded')").await;

    // Finding people, the request queue, reports and the audit trail.
    open(
        &page,
        &env.endpoint("/ra/people?q=Newstarter"),
        "Find a person",
    )
    .await;
    check_accessibility(&page, &axe, "search").await;
    assert!(text(&page).await.contains("Priya Newstarter"));
    open(&page, &env.endpoint("/ra/requests"), "Access requests").await;
    check_accessibility(&page, &axe, "requests").await;
    open(&page, &env.endpoint("/ra/reports"), "Reports").await;
    check_accessibility(&page, &axe, "reports").await;
    let csv: Value = page
        .eval("fetch(document.querySelector('a[href$=\"tacs-issued.csv\"]').href).then(r => r.text())")
        .await;
    assert!(csv.as_str().unwrap().contains("TAC 0099"), "{csv}");
    open(&page, &env.endpoint("/ra/positions"), "Positions").await;
    check_accessibility(&page, &axe, "positions").await;
    // What the HR feed sent: a change of name to approve, an event that cannot apply yet.
    crate::hr::map(env, "NURSE-B5", &c.nurse_position).await;
    let (_, token) = crate::hr::feed_client(env, &["RZ9"]).await;
    let at = |s| crate::hr::at(env, s);
    let events = json!({ "events": [
        { "event_id": "h1", "kind": "identity_link", "org_code": "RZ9", "person_id": "N1", "recorded_at": at(-100), "uuid": NURSE },
        { "event_id": "h2", "kind": "details_change", "org_code": "RZ9", "person_id": "N1", "recorded_at": at(-50), "family_name": "Okoro" },
        { "event_id": "h3", "kind": "starter", "org_code": "RZ9", "person_id": "N2", "recorded_at": at(-40),
          "assignment_id": "N2-1", "hr_position": "PORTER", "starts_on": at(-40) },
    ] });
    assert_eq!(crate::hr::send_with(env, Some(&token), events).await.0, 200);
    open(&page, &env.endpoint("/ra/hr"), "HR feed").await;
    check_accessibility(&page, &axe, "HR feed").await;
    assert!(text(&page).await.contains("Okoro"));
    open(
        &page,
        &env.endpoint(&format!("/ra/positions/{}/correct", c.nurse_position)),
        "Correct a position",
    )
    .await;
    check_accessibility(&page, &axe, "correct a position").await;
    open(
        &page,
        &env.endpoint(&format!("/ra/audit?person={uuid}&verify=yes")),
        "Audit trail",
    )
    .await;
    check_accessibility(&page, &axe, "audit").await;
    let trail = text(&page).await;
    assert!(
        trail.contains("The audit trail is intact") && trail.contains("admin.tac_returned"),
        "{trail}"
    );
    page.screenshot(&shots.join("ra-console-audit.png")).await;

    // A refusal reads as a page, not an error code: the manager's own record.
    open(
        &page,
        &env.endpoint(&format!("/ra/people/{MANAGER}")),
        "Test User958000000001",
    )
    .await;
    assert!(text(&page).await.contains("This is your own record"));
    check_accessibility(&page, &axe, "own record").await;

    // Signing out ends the console session.
    page.tab_to("form[action$='/signout'] button").await;
    page.press("Enter").await;
    page.wait_for("document.querySelector('h1') && document.querySelector('h1').innerText === 'You have signed out of the RA console'").await;
    check_accessibility(&page, &axe, "signed out").await;
}

/// A Chromium page signed in to the console with `card` (through the proxy header).
async fn signed_in_page<'a>(
    chromium: &'a Chromium,
    env: &TestEnv,
    card: &careid::pki::Issued,
) -> Page<'a> {
    signed_in_at(chromium, env, card, "/ra/", "RA console").await
}

/// A page signed in with `card` (through the TLS proxy's header) at one of careid's own tools:
/// opens `path`, follows the card link of careid's sign-in page, and waits for `heading`.
pub async fn signed_in_at<'a>(
    chromium: &'a Chromium,
    env: &TestEnv,
    card: &careid::pki::Issued,
    path: &str,
    heading: &str,
) -> Page<'a> {
    let page = chromium.new_page().await;
    page.call("Page.setBypassCSP", json!({ "enabled": true }))
        .await;
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
    page.navigate(&env.endpoint(path)).await;
    page.wait_for(
        "document.querySelector('h1') && document.querySelector('h1').innerText === 'Sign in'",
    )
    .await;
    let link = page
        .eval("document.querySelector('a.button').getAttribute('href')")
        .await;
    page.navigate(&link.as_str().unwrap().replace(&env.card_base, &env.local))
        .await;
    page.wait_for(&format!(
        "document.querySelector('h1') && document.querySelector('h1').innerText === {heading:?}"
    ))
    .await;
    page
}

/// Submits the form whose action ends with `action` by keyboard.
async fn press_button_of(page: &Page<'_>, action: &str) {
    page.tab_to(&format!("form[action$='{action}'] button"))
        .await;
    page.press("Enter").await;
}

#[tokio::test]
async fn an_ra_agent_and_a_sponsor_work_together_in_chromium_and_the_refusals_read_as_pages() {
    let c = console_with(Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Default::default()
    })
    .await;
    let env = &c.env;
    let axe = axe_source();
    let shots = screenshot_dir();
    // Two browsers: two people, two cookie jars.
    let agent_browser = Chromium::launch().await;
    let manager_browser = Chromium::launch().await;
    let agent = signed_in_page(&agent_browser, env, &c.agent).await;
    let manager = signed_in_page(&manager_browser, env, &c.manager).await;

    // The agent raises a request; the sponsor approves it; the agent carries it out.
    open(&agent, &env.endpoint("/ra/requests"), "Access requests").await;
    let clerk = env
        .db
        .position_by_name("RZ9", "Contract Health Records Clerk")
        .await
        .unwrap()
        .unwrap();
    for (name, value) in [
        ("uuid", NURSE),
        ("position_id", clerk.as_str()),
        ("reason", "covering the records office"),
    ] {
        agent
            .eval(&format!("document.querySelector('form[action$=\"/requests\"] [name={name:?}]').value = {value:?}"))
            .await;
    }
    agent.tab_to("form[action$='/requests'] button").await;
    agent.press("Enter").await;
    agent.wait_for("document.querySelector('caption') && document.querySelector('caption').innerText.includes('pending')").await;
    check_accessibility(&agent, &axe, "requests (agent)").await;
    open(
        &manager,
        &env.endpoint("/ra/requests?status=pending"),
        "Access requests",
    )
    .await;
    manager
        .screenshot(&shots.join("ra-console-requests.png"))
        .await;
    press_button_of(&manager, "/approve").await;
    manager
        .wait_for("document.body.innerText.includes('approved by')")
        .await;
    open(
        &agent,
        &env.endpoint("/ra/requests?status=approved"),
        "Access requests",
    )
    .await;
    press_button_of(&agent, "/fulfil").await;
    agent
        .wait_for("document.body.innerText.includes('fulfilled')")
        .await;
    assert_eq!(
        rbac::current_roles(&env.db, NURSE, env.now())
            .await
            .unwrap()
            .len(),
        2
    );

    // The agent revokes the nurse's card, after a confirmation page.
    let card = env.db.authenticators_of(NURSE).await.unwrap()[0].id.clone();
    open(
        &agent,
        &env.endpoint(&format!("/ra/people/{NURSE}")),
        "Test User958000000003",
    )
    .await;
    check_accessibility(&agent, &axe, "record (agent)").await;
    agent
        .tab_to(&format!("a[href$='/authenticators/{card}/revoke']"))
        .await;
    agent.press("Enter").await;
    agent.wait_for("document.querySelector('h1') && document.querySelector('h1').innerText === 'Revoke this authenticator'").await;
    check_accessibility(&agent, &axe, "revoke confirmation").await;
    agent
        .tab_to("main form[novalidate] button[type=submit]")
        .await;
    agent.press("Enter").await;
    agent.wait_for("document.querySelector('.notice') && document.querySelector('.notice').innerText.includes('revoked')").await;
    assert_eq!(
        env.db.authenticators_of(NURSE).await.unwrap()[0]
            .status
            .as_str(),
        "revoked"
    );
    // Other task pages an agent uses.
    for (path, heading) in [
        (
            format!("/ra/people/{NURSE}/status/suspend"),
            "Suspend this identity",
        ),
        (
            format!("/ra/people/{NURSE}/details"),
            "Change personal details",
        ),
        (
            format!("/ra/people/{NURSE}/photo/new"),
            "Record a photograph",
        ),
        (format!("/ra/people/{NURSE}/smartcard"), "Bind a smartcard"),
        (
            format!("/ra/people/{ELSEWHERE}"),
            "Associate with your organisation",
        ),
    ] {
        open(&agent, &env.endpoint(&path), heading).await;
        check_accessibility(&agent, &axe, heading).await;
    }

    // Refusals: a Manager's page, one's own record, a form replayed without its token.
    open(&agent, &env.endpoint("/ra/audit"), "Not allowed").await;
    check_accessibility(&agent, &axe, "not allowed").await;
    open(
        &agent,
        &env.endpoint(&format!("/ra/people/{AGENT}")),
        "Test User958000000002",
    )
    .await;
    assert!(text(&agent).await.contains("This is your own record"));
    open(
        &agent,
        &env.endpoint(&format!("/ra/people/{NURSE}/status/suspend")),
        "Suspend this identity",
    )
    .await;
    agent
        .eval("document.querySelector('main input[name=csrf]').value = 'replayed'")
        .await;
    agent
        .eval("document.querySelector('main textarea[name=reason]').value = 'testing'")
        .await;
    agent
        .tab_to("main form[novalidate] button[type=submit]")
        .await;
    agent.press("Enter").await;
    agent.wait_for("document.querySelector('h1') && document.querySelector('h1').innerText === 'This form was not accepted'").await;
    check_accessibility(&agent, &axe, "form not accepted").await;
    assert_eq!(
        env.db.user(NURSE).await.unwrap().unwrap().status.as_str(),
        "active"
    );

    // An idle console ends; the page says so.
    env.clock.advance(601);
    open(
        &agent,
        &env.endpoint("/ra/"),
        "Your console session has ended",
    )
    .await;
    check_accessibility(&agent, &axe, "session ended").await;
    agent
        .screenshot(&shots.join("ra-console-session-ended.png"))
        .await;
}

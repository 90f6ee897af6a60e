//! The admin API's audit trail for a SIEM or an investigator: every event reachable page by
//! page through a cursor, filters by kind and by the person acted on, and where a person acted
//! from (client address, browser) recorded on the events of their requests.

use super::{call, setup, Ra};
use serde_json::{json, Value};

fn events(page: &Value) -> Vec<Value> {
    page["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn pages_follow_the_cursor_through_every_event_without_gap_or_repeat() {
    let Ra { env, manager, .. } = setup().await;
    for name in ["Ada", "Bea", "Cal"] {
        let (status, _, _) = call(
            &env,
            Some(&manager),
            "POST",
            "/admin/api/v1/identities",
            Some(json!({ "given_name": name, "family_name": "Paged" })),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (_, whole, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/audit?limit=500",
        None,
    )
    .await;
    let whole = events(&whole);
    assert!(whole.len() > 6, "{}", whole.len());

    let mut paged = Vec::new();
    let mut path = "/admin/api/v1/audit?limit=4".to_string();
    loop {
        let (status, page, _) = call(&env, Some(&manager), "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        let got = events(&page);
        assert!(got.len() <= 4);
        paged.extend(got);
        match page["next"].as_i64() {
            Some(cursor) => path = format!("/admin/api/v1/audit?limit=4&before={cursor}"),
            None => break,
        }
    }
    // The reads themselves are not audited, so the trail did not move meanwhile.
    let seqs = |e: &[Value]| {
        e.iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seqs(&paged),
        seqs(&whole),
        "the same events, newest first, once each"
    );
    assert!(seqs(&paged).windows(2).all(|w| w[0] == w[1] + 1), "no gap");

    let (status, bad, ctype) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/audit?before=0",
        None,
    )
    .await;
    assert_eq!(
        (status, ctype.as_str()),
        (400, "application/problem+json"),
        "{bad}"
    );
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/audit?before=abc",
        None,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn kind_and_subject_filters_select_what_an_investigation_needs() {
    let Ra { env, manager, .. } = setup().await;
    let (_, created, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities",
        Some(json!({ "given_name": "Sol", "family_name": "Subject" })),
    )
    .await;
    let uuid = created["uuid"].as_str().unwrap().to_string();

    let (_, logins, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/audit?kind=login.*&limit=500",
        None,
    )
    .await;
    let logins = events(&logins);
    assert!(!logins.is_empty());
    assert!(logins
        .iter()
        .all(|e| e["kind"].as_str().unwrap().starts_with("login.")));

    let (_, exact, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/audit?kind=admin.identity_created",
        None,
    )
    .await;
    let exact = events(&exact);
    assert_eq!(exact.len(), 1, "{exact:?}");
    assert_eq!(exact[0]["actor"], "950000000001");

    // Done to Sol: the creation. Done by the manager, but to someone else, is not "subject".
    let (_, about, _) = call(
        &env,
        Some(&manager),
        "GET",
        &format!("/admin/api/v1/audit?subject={uuid}"),
        None,
    )
    .await;
    let about = events(&about);
    assert!(!about.is_empty());
    assert!(
        about.iter().all(|e| e["detail"]["uuid"] == uuid.as_str()),
        "{about:?}"
    );
    let (_, of_manager, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/audit?subject=950000000001",
        None,
    )
    .await;
    assert!(
        !events(&of_manager)
            .iter()
            .any(|e| e["kind"] == "admin.identity_created"),
        "the manager created Sol, which is not an event done to the manager"
    );

    for bad in [
        "kind=DROP%20TABLE",
        "kind=*",
        "kind=login.%25",
        "subject=12345",
    ] {
        let (status, body, ctype) = call(
            &env,
            Some(&manager),
            "GET",
            &format!("/admin/api/v1/audit?{bad}"),
            None,
        )
        .await;
        assert_eq!(
            (status, ctype.as_str()),
            (400, "application/problem+json"),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn events_record_the_address_and_browser_a_person_acted_from() {
    let Ra { env, manager, .. } = setup().await;
    let browser_ua = "Mozilla/5.0 (Windows NT 10.0) careid-test";
    let r = env
        .http()
        .post(env.endpoint("/admin/api/v1/identities"))
        .bearer_auth(&manager)
        .header("user-agent", browser_ua)
        .json(&json!({ "given_name": "Ula", "family_name": "Agent" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, found, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/audit?kind=admin.identity_created",
        None,
    )
    .await;
    let event = &events(&found)[0];
    assert_eq!(event["detail"]["client_ip"], "127.0.0.1", "{event}");
    assert_eq!(event["detail"]["user_agent"], browser_ua, "{event}");
    // The chain covers them: the trail still verifies.
    let (_, checked, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/audit?limit=1&verify_chain=true",
        None,
    )
    .await;
    assert_eq!(checked["chain"]["intact"], true, "{checked}");
}

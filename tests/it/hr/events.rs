//! Each event kind through the API, duplicates, out-of-order delivery, parked events replayed
//! once their cause is fixed, and a batch with bad rows.

use serde_json::json;

use super::*;

#[tokio::test]
async fn a_linked_starter_gets_the_mapped_position_and_signs_in_acting_in_it() {
    let hr = setup().await;
    let card = hr.env.user_with_card("810000000001").await;
    let report = hr
        .ok(vec![
            hr.link("e1", "P1", "810000000001", -100),
            hr.starter("e2", "P1", "NURSE-B5", -60, -90),
        ])
        .await;
    assert_eq!(report["recorded"], 2);
    assert_eq!(ids(&report, "applied"), vec!["e1", "e2"]);
    assert!(report["rejected"].as_array().unwrap().is_empty());
    assert_eq!(
        hr.current_positions("810000000001").await,
        vec![hr.nurse.clone()]
    );

    // The relying party sees the role HR gave.
    let client = hr.env.confidential_client().await;
    let tokens = hr
        .env
        .tokens_in(
            &hr.env.browser(Some(&card)),
            &client,
            "openid nationalrbacaccess selectedrole",
        )
        .await;
    let info = userinfo(&hr.env, tokens["access_token"].as_str().unwrap()).await;
    let role = &info["nhsid_nrbac_roles"][0];
    assert_eq!(role["org_code"], "RZ9");
    assert!(
        role["role_code"].as_str().unwrap().ends_with("R8001"),
        "{role}"
    );
    let events = audit_kinds(&hr.env, 30).await;
    assert!(events.contains(&"hr.applied".to_string()));
    assert!(events.contains(&"admin.hr_position_mapped".to_string()));
}

#[tokio::test]
async fn a_duplicate_is_acknowledged_not_applied_and_a_reused_id_is_refused() {
    let hr = setup().await;
    hr.env.user("810000000002").await;
    let batch = vec![
        hr.link("d1", "P2", "810000000002", -100),
        hr.starter("d2", "P2", "NURSE-B5", -60, -90),
    ];
    hr.ok(batch.clone()).await;
    let before = hr.all_assignments("810000000002").await;
    assert_eq!(before.len(), 1);

    let again = hr.ok(batch).await;
    assert_eq!(again["recorded"], 0);
    assert_eq!(ids(&again, "duplicates"), vec!["d1", "d2"]);
    assert_eq!(
        hr.all_assignments("810000000002").await,
        before,
        "nothing applied twice"
    );

    // The same id with other content is someone's mistake: refused, with the reason.
    let mut changed = hr.starter("d2", "P2", "SISTER-B7", -60, -90);
    changed["assignment_id"] = json!("P2-1");
    let refused = hr.ok(vec![changed]).await;
    let row = &refused["rejected"][0];
    assert_eq!(row["event_id"], "d2");
    assert_eq!(row["line"], 1);
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .contains("different content"),
        "{row}"
    );
    assert_eq!(hr.all_assignments("810000000002").await, before);
}

#[tokio::test]
async fn events_arriving_out_of_order_end_where_the_recorded_order_leads() {
    let hr = setup().await;
    for uuid in ["810000000003", "810000000004"] {
        hr.env.user(uuid).await;
    }
    // The same history for two people: linked, started as a nurse, moved to sister.
    let history = |p: &str, uuid: &str, prefix: &str| {
        vec![
            hr.link(&format!("{prefix}1"), p, uuid, -300),
            hr.starter(&format!("{prefix}2"), p, "NURSE-B5", -10 * DAY, -200),
            hr.mover(&format!("{prefix}3"), p, "SISTER-B7", -DAY, -100),
        ]
    };
    for e in history("PA", "810000000003", "a") {
        hr.ok(vec![e]).await;
    }
    let mut reversed = history("PB", "810000000004", "b");
    reversed.reverse();
    for e in reversed {
        hr.ok(vec![e]).await;
    }
    assert_eq!(
        hr.current_positions("810000000003").await,
        vec![hr.sister.clone()]
    );
    assert_eq!(
        hr.current_positions("810000000004").await,
        hr.current_positions("810000000003").await,
        "the mover's change arrived before the starter and still wins"
    );
    // Replaying the whole feed changes nothing.
    let before = hr.all_assignments("810000000004").await;
    let again = hr.ok(history("PB", "810000000004", "b")).await;
    assert_eq!(again["duplicates"].as_array().unwrap().len(), 3);
    assert_eq!(hr.all_assignments("810000000004").await, before);
}

#[tokio::test]
async fn unknown_people_and_unmapped_positions_wait_and_apply_once_fixed() {
    let hr = setup().await;
    hr.env.user("810000000005").await;
    // A starter for a person HR has not linked: kept, with what to do.
    let report = hr
        .ok(vec![hr.starter("u1", "P5", "NURSE-B5", -60, -90)])
        .await;
    assert_eq!(report["applied"].as_array().unwrap().len(), 0);
    assert!(report["attention"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not linked to a Care Identity"));
    let attention = hr
        .env
        .server
        .provider
        .admin_hr_attention(&ra_manager())
        .await
        .unwrap();
    assert_eq!(attention.events.len(), 1);
    // The link arrives: both apply.
    let linked = hr.ok(vec![hr.link("u2", "P5", "810000000005", -100)]).await;
    assert_eq!(ids(&linked, "applied"), vec!["u2"]);
    assert_eq!(
        hr.current_positions("810000000005").await,
        vec![hr.nurse.clone()]
    );
    assert_eq!(
        hr.env
            .db
            .hr_event("u1")
            .await
            .unwrap()
            .unwrap()
            .state
            .as_str(),
        "applied"
    );

    // A move to an HR position nobody has mapped: kept; mapping it applies it, once.
    let theatre = position_at_rz9(&hr.env, "hr-theatre", "Theatre Nurse (HR)", "R8001").await;
    let moved = hr
        .ok(vec![hr.mover("u3", "P5", "THEATRE-B6", -30, -50)])
        .await;
    assert!(moved["attention"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("THEATRE-B6 at RZ9 is not mapped"));
    let mapped = map(&hr.env, "THEATRE-B6", &theatre).await;
    assert_eq!(mapped["events_retried"], 1);
    assert_eq!(
        hr.current_positions("810000000005").await,
        vec![theatre.clone()]
    );
    map(&hr.env, "THEATRE-B6", &theatre).await;
    let theatre_rows = hr
        .all_assignments("810000000005")
        .await
        .into_iter()
        .filter(|(p, _, _)| *p == theatre)
        .count();
    assert_eq!(theatre_rows, 1, "replayed once, not once per retry");
    assert!(hr
        .env
        .server
        .provider
        .admin_hr_attention(&ra_manager())
        .await
        .unwrap()
        .events
        .is_empty());
}

#[tokio::test]
async fn a_batch_with_bad_rows_applies_the_good_ones_and_names_each_bad_one() {
    let hr = setup().await;
    hr.env.user("810000000006").await;
    let mut no_start = hr.starter("b3", "P6", "NURSE-B5", 0, -10);
    no_start.as_object_mut().unwrap().remove("starts_on");
    let mut bad_date = hr.leaver("b4", "P6", 0, -5);
    bad_date["leaving_on"] = json!("31/12/2026");
    let mut elsewhere = hr.link("b5", "P9", "810000000006", -5);
    elsewhere["org_code"] = json!("RZ8");
    let report = hr
        .ok(vec![
            hr.link("b1", "P6", "810000000006", -100),
            hr.starter("b2", "P6", "NURSE-B5", -60, -90),
            no_start,
            bad_date,
            elsewhere,
            json!({ "event_id": "b6", "kind": "promotion", "org_code": "RZ9", "person_id": "P6", "recorded_at": at(&hr.env, 0) }),
            json!({ "event_id": "b7", "kind": "leaver", "colour": "blue" }),
        ])
        .await;
    assert_eq!(ids(&report, "applied"), vec!["b1", "b2"]);
    let rejected: Vec<(u64, String)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rejected.len(), 5, "{rejected:?}");
    assert!(rejected[0] == (3, "starts_on is required for this kind of event".into()));
    assert!(rejected[1].0 == 4 && rejected[1].1.contains("leaving_on must be a date"));
    assert!(rejected[2].0 == 5 && rejected[2].1.contains("sends events for RZ9 only, not RZ8"));
    assert!(rejected[3].0 == 6 && rejected[3].1.contains("kind must be"));
    assert!(rejected[4].0 == 7 && rejected[4].1.contains("unknown field `colour`"));
    assert_eq!(
        hr.current_positions("810000000006").await,
        vec![hr.nurse.clone()]
    );
    assert!(
        hr.env.db.hr_event("b4").await.unwrap().is_none(),
        "a bad row is not recorded"
    );

    // Not a batch at all: problem details.
    let (status, problem) = send_with(&hr.env, Some(&hr.token), json!([1, 2])).await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("{\"events\""),
        "{problem}"
    );
}

#[tokio::test]
async fn a_batch_larger_than_allowed_is_refused_whole() {
    let hr = setup_with(Options {
        configure: Some(|c| c.hr.max_batch_events = 2),
        ..Default::default()
    })
    .await;
    let events = (0..3)
        .map(|i| hr.link(&format!("x{i}"), "PX", "810000000007", 0))
        .collect();
    let (status, problem) = hr.send(events).await;
    assert_eq!(status, 400);
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("at most 2 events"));
    assert!(hr.env.db.hr_event("x0").await.unwrap().is_none());
}

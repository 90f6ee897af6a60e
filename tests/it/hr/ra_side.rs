//! The RA's side of the feed: what may be mapped and by whom, detail changes that wait for an
//! RA (a change of name needs evidence and ends the old card), and the reconciliation report.

use careid::domain::ra::hr::DetailDecision;
use careid::domain::ra::AdminError;

use super::*;

#[tokio::test]
async fn positions_with_ra_power_and_other_organisations_cannot_be_mapped() {
    let hr = setup().await;
    let p = &hr.env.server.provider;
    let manager_position = hr
        .env
        .db
        .position_by_name("RZ9", "Registration Authority Manager")
        .await
        .unwrap()
        .unwrap();
    let refused = p
        .admin_map_hr_position(
            &ra_manager(),
            NewPositionMap {
                org_code: "RZ9".into(),
                hr_position: "RA-MANAGER".into(),
                position_id: manager_position,
                approved_by: "IG".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, AdminError::Invalid(m) if m.contains("never by the HR feed")),
        "{refused:?}"
    );
    let rz8 = position_at(&hr.env, "RZ8", "rz8-nurse", "Nurse", "R8001").await;
    for (org, position) in [("RZ8", hr.nurse.clone()), ("RZ9", rz8)] {
        let refused = p
            .admin_map_hr_position(
                &ra_manager(),
                NewPositionMap {
                    org_code: org.into(),
                    hr_position: "NURSE".into(),
                    position_id: position,
                    approved_by: "IG".into(),
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(refused, AdminError::Forbidden(_)),
            "{org}: {refused:?}"
        );
    }
    let mut agent = ra_manager();
    agent.ra_roles = vec![careid::domain::ra::RaRole::Agent];
    let refused = p.admin_list_hr_maps(&agent).await;
    assert!(refused.is_ok(), "an agent may read the mappings");
    let refused = p
        .admin_unmap_hr_position(&agent, "RZ9", "NURSE-B5")
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AdminError::Forbidden(_)),
        "only managers change them"
    );
    assert_eq!(
        p.admin_list_hr_maps(&ra_manager())
            .await
            .unwrap()
            .maps
            .len(),
        2
    );
}

#[tokio::test]
async fn detail_changes_wait_for_an_ra_and_a_new_name_needs_evidence() {
    let hr = setup().await;
    hr.env.user_with_card("840000000001").await;
    let p = &hr.env.server.provider;
    let mut details = json!({ "event_id": "n2", "kind": "details_change", "org_code": "RZ9", "person_id": "N1",
        "recorded_at": at(&hr.env, -50), "family_name": "Mensah", "work_phone": "0113 496 0000" });
    hr.ok(vec![
        hr.link("n1", "N1", "840000000001", -100),
        hr.starter("n0", "N1", "NURSE-B5", -DAY, -90),
        details.clone(),
    ])
    .await;
    let user = hr.env.db.user("840000000001").await.unwrap().unwrap();
    assert_eq!(
        user.family_name, "User840000000001",
        "nothing changes before an RA decides"
    );
    let changes = p
        .admin_list_detail_changes(&ra_manager())
        .await
        .unwrap()
        .changes;
    assert_eq!(changes.len(), 1);
    let change = &changes[0];
    assert!(change.core);
    let fields: Vec<&str> = change.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, vec!["family_name", "work_phone"]);

    let refused = p
        .admin_decide_detail_change(&ra_manager(), &change.id, true, DetailDecision::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, AdminError::Invalid(m) if m.contains("needs evidence")),
        "{refused:?}"
    );
    let approved = p
        .admin_decide_detail_change(
            &ra_manager(),
            &change.id,
            true,
            DetailDecision {
                evidence: Some("marriage certificate".into()),
                note: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(approved.state, "approved");
    let user = hr.env.db.user("840000000001").await.unwrap().unwrap();
    assert_eq!(user.family_name, "Mensah");
    let phones = hr
        .env
        .db
        .personal_details("840000000001")
        .await
        .unwrap()
        .work_phones;
    assert_eq!(phones, vec!["0113 496 0000".to_string()]);
    let cards = hr.env.db.authenticators_of("840000000001").await.unwrap();
    assert!(
        cards.iter().all(|c| !c.is_usable(hr.env.now())),
        "the card in the old name ends"
    );
    let again = p
        .admin_decide_detail_change(&ra_manager(), &change.id, false, DetailDecision::default())
        .await
        .unwrap_err();
    assert!(matches!(again, AdminError::Conflict(_)), "decided once");

    // A rejection needs a reason; the RA cannot decide on their own record.
    details["event_id"] = json!("n3");
    details["family_name"] = json!("Mensah-Owusu");
    hr.ok(vec![details]).await;
    let change = p
        .admin_list_detail_changes(&ra_manager())
        .await
        .unwrap()
        .changes[0]
        .clone();
    let no_reason = p
        .admin_decide_detail_change(&ra_manager(), &change.id, false, DetailDecision::default())
        .await
        .unwrap_err();
    assert!(matches!(no_reason, AdminError::Invalid(_)));
    let mut themselves = ra_manager();
    themselves.uuid = "840000000001".into();
    let own = p
        .admin_decide_detail_change(
            &themselves,
            &change.id,
            false,
            DetailDecision {
                evidence: None,
                note: Some("not me".into()),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(own, AdminError::Forbidden(_)), "{own:?}");
    let rejected = p
        .admin_decide_detail_change(
            &ra_manager(),
            &change.id,
            false,
            DetailDecision {
                evidence: None,
                note: Some("HR keyed the wrong record".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(rejected.state, "rejected");
    assert!(audit_kinds(&hr.env, 20)
        .await
        .contains(&"admin.hr_details_decided".to_string()));
}

#[tokio::test]
async fn the_reconciliation_report_lists_what_hr_and_identities_disagree_on() {
    let hr = setup().await;
    hr.env.user("840000000002").await;
    hr.env.user("840000000003").await;
    let clerk = hr
        .env
        .db
        .position_by_name("RZ9", "Contract Health Records Clerk")
        .await
        .unwrap()
        .unwrap();
    rbac::assign_position(
        &hr.env.db,
        "840000000003",
        &clerk,
        hr.env.now() - 60,
        None,
        "test",
        hr.env.now(),
    )
    .await
    .unwrap();
    hr.ok(vec![
        hr.starter("r1", "R-UNLINKED", "NURSE-B5", -DAY, -90),
        hr.link("r2", "R2", "840000000002", -100),
        json!({ "event_id": "r3", "kind": "details_change", "org_code": "RZ9", "person_id": "R2",
            "recorded_at": at(&hr.env, -50), "email": "someone.else@nhs.net" }),
    ])
    .await;
    let report = hr
        .env
        .server
        .provider
        .admin_report(&ra_manager(), "hr-reconciliation", None)
        .await
        .unwrap();
    let rows = report.rows.as_array().unwrap();
    let issue = |kind: &str| {
        rows.iter()
            .find(|r| r["issue"] == kind)
            .unwrap_or_else(|| panic!("{kind}: {rows:?}"))
    };
    assert_eq!(issue("unlinked")["person_id"], "R-UNLINKED");
    assert_eq!(issue("details_mismatch")["detail"], "differs in email");
    assert_eq!(
        issue("access_without_hr_assignment")["uuid"],
        "840000000003"
    );
    let csv = careid::domain::reports::to_csv(&report);
    assert!(
        csv.starts_with("detail,issue,org_code,person_id,person_roleid,uuid\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), rows.len() + 1);
}

#[tokio::test]
async fn a_detail_change_is_decided_only_by_an_ra_who_may_act_on_that_person_there() {
    let hr = setup().await;
    let p = &hr.env.server.provider;
    hr.env.user("840000000009").await;
    let ram = hr
        .env
        .db
        .position_by_name("RZ9", "Registration Authority Manager")
        .await
        .unwrap()
        .unwrap();
    rbac::assign_position(
        &hr.env.db,
        "840000000009",
        &ram,
        hr.env.now() - 60,
        None,
        "test",
        hr.env.now(),
    )
    .await
    .unwrap();
    hr.ok(vec![
        hr.link("m1", "M1", "840000000009", -100),
        json!({ "event_id": "m2", "kind": "details_change", "org_code": "RZ9", "person_id": "M1",
            "recorded_at": at(&hr.env, -50), "email": "ram@trust.nhs.uk" }),
    ])
    .await;
    let id = p
        .admin_list_detail_changes(&ra_manager())
        .await
        .unwrap()
        .changes[0]
        .id
        .clone();
    let approve = || DetailDecision::default();

    // Another organisation's RA does not even see it.
    let mut elsewhere = ra_manager();
    elsewhere.org_code = "RZ8".into();
    assert!(p
        .admin_list_detail_changes(&elsewhere)
        .await
        .unwrap()
        .changes
        .is_empty());
    let refused = p
        .admin_decide_detail_change(&elsewhere, &id, true, approve())
        .await
        .unwrap_err();
    assert!(matches!(refused, AdminError::NotFound(_)), "{refused:?}");
    // An RA Agent may not act on an RA Manager (someone above them).
    let mut agent = ra_manager();
    agent.uuid = "999999999998".into();
    agent.ra_roles = vec![careid::domain::ra::RaRole::Agent];
    let refused = p
        .admin_decide_detail_change(&agent, &id, true, approve())
        .await
        .unwrap_err();
    assert!(matches!(refused, AdminError::Forbidden(_)), "{refused:?}");
    // An RA Manager of the organisation may; a change of email needs no evidence.
    let done = p
        .admin_decide_detail_change(&ra_manager(), &id, true, approve())
        .await
        .unwrap();
    assert_eq!(done.state, "approved");
    let user = hr.env.db.user("840000000009").await.unwrap().unwrap();
    assert_eq!(user.email.as_deref(), Some("ram@trust.nhs.uk"));
}

//! Personal details an RA records (date of birth, National Insurance number, work phones):
//! checked, normalised, shown to RA staff, never written to the audit trail; and the reason and
//! time of each status change.

use super::*;

#[tokio::test]
async fn personal_details_are_checked_shown_to_ra_staff_and_kept_out_of_the_audit_trail() {
    let Ra { env, manager, .. } = setup().await;
    let person = |extra: Value| {
        let mut v = json!({ "given_name": "Dana", "family_name": "Details" });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    for bad in [
        json!({ "ni_number": "QQ123456C" }),
        json!({ "date_of_birth": "2099-01-01" }),
        json!({ "date_of_birth": "29/02/1980" }),
        json!({ "work_phones": ["call me"] }),
    ] {
        let (status, problem, ctype) = call(
            &env,
            Some(&manager),
            "POST",
            "/admin/api/v1/identities",
            Some(person(bad.clone())),
        )
        .await;
        assert_eq!(
            (status, ctype.as_str()),
            (400, "application/problem+json"),
            "{bad} {problem}"
        );
    }
    let (status, created, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities",
        Some(person(json!({ "date_of_birth": "1980-02-29", "ni_number": "ab 12 34 56 c", "work_phones": ["0113 123 4567"] }))),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let uuid = created["uuid"].as_str().unwrap().to_string();
    let path = format!("/admin/api/v1/identities/{uuid}");
    let (_, shown, _) = call(&env, Some(&manager), "GET", &path, None).await;
    assert_eq!(
        shown["personal_details"],
        json!({ "date_of_birth": "1980-02-29", "ni_number": "AB123456C", "work_phones": ["0113 123 4567"] })
    );
    // Removing the NI number, replacing the phones.
    let (status, updated, _) = call(
        &env,
        Some(&manager),
        "PATCH",
        &path,
        Some(json!({ "ni_number": "", "work_phones": ["+44 113 765 4321"] })),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["personal_details"]["ni_number"], Value::Null);
    assert_eq!(
        updated["personal_details"]["work_phones"],
        json!(["+44 113 765 4321"])
    );
    let trail = serde_json::to_string(
        &env.db
            .recent_audit(100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.detail.clone())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(
        !trail.contains("AB123456C") && !trail.contains("1980-02-29"),
        "details stay out of the audit trail"
    );
}

#[tokio::test]
async fn a_status_change_records_its_reason_and_time() {
    let Ra { env, agent, .. } = setup().await;
    env.user("950000000030").await;
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        "/admin/api/v1/identities/950000000030/suspend",
        Some(json!({ "reason": "under investigation" })),
    )
    .await;
    assert_eq!(status, 200);
    let (_, shown, _) = call(
        &env,
        Some(&agent),
        "GET",
        "/admin/api/v1/identities/950000000030",
        None,
    )
    .await;
    assert_eq!(shown["status"], "suspended");
    assert_eq!(shown["status_reason"], "under investigation");
    assert_eq!(shown["status_changed_at"], env.now());
}

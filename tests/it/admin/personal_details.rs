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

#[tokio::test]
async fn a_name_change_needs_evidence_and_ends_the_card_that_shows_the_old_name() {
    let Ra { env, manager, .. } = setup().await;
    let nurse = "950000000003";
    let card_id = env.db.authenticators_of(nurse).await.unwrap()[0].id.clone();
    let path = format!("/admin/api/v1/identities/{nurse}");
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "PATCH",
        &path,
        Some(json!({ "given_name": "Renamed" })),
    )
    .await;
    assert_eq!(status, 400);
    let card = env.db.authenticators_of(nurse).await.unwrap();
    assert_eq!(
        card[0].status.as_str(),
        "active",
        "nothing changed without evidence"
    );
    let (status, changed, _) = call(
        &env,
        Some(&manager),
        "PATCH",
        &path,
        Some(json!({ "given_name": "Renamed", "name_change_evidence": "deed poll" })),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    let card = env.db.authenticators_of(nurse).await.unwrap();
    assert_eq!(
        (card[0].id.as_str(), card[0].status.as_str()),
        (card_id.as_str(), "revoked")
    );
    let event = env
        .db
        .recent_audit(5)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "admin.identity_updated")
        .unwrap();
    assert_eq!(event.detail["smartcards_revoked"], json!([card_id]));
    assert_eq!(event.detail["name_change_evidence"], "deed poll");
    // Other details change without evidence, and leave the cards alone.
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "PATCH",
        &path,
        Some(json!({ "email": "n@example.nhs.uk" })),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_person_has_one_working_smartcard() {
    let Ra { env, manager, .. } = setup().await;
    let nurse = "950000000003";
    let second = env.card(nurse);
    let bind = format!("/admin/api/v1/identities/{nurse}/smartcards");
    let (status, problem, _) = call(
        &env,
        Some(&manager),
        "POST",
        &bind,
        Some(json!({ "certificate_pem": second.cert_pem })),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("revoke it first"),
        "{problem}"
    );
    let first = env.db.authenticators_of(nurse).await.unwrap()[0].id.clone();
    let revoke = format!("/admin/api/v1/identities/{nurse}/authenticators/{first}/revoke");
    let (status, _, _) = call(&env, Some(&manager), "POST", &revoke, None).await;
    assert_eq!(status, 200);
    let (status, bound, _) = call(
        &env,
        Some(&manager),
        "POST",
        &bind,
        Some(json!({ "certificate_pem": second.cert_pem })),
    )
    .await;
    assert_eq!(
        status, 201,
        "the replacement binds once the old card is revoked: {bound}"
    );
}

#[tokio::test]
async fn recorded_registrations_and_memberships_reach_relying_parties_under_their_scopes() {
    let Ra {
        env,
        manager,
        nurse_position,
        ..
    } = setup().await;
    let doctor = "950000000077";
    let (card, _) = holder(&env, doctor, &nurse_position).await;
    let path = format!("/admin/api/v1/identities/{doctor}");
    let (status, problem, _) = call(
        &env,
        Some(&manager),
        "PATCH",
        &path,
        Some(json!({ "professional_registrations": { "hcpc": "PA12345" } })),
    )
    .await;
    assert_eq!(status, 400, "unknown bodies are refused: {problem}");
    let (status, problem, _) = call(
        &env,
        Some(&manager),
        "PATCH",
        &path,
        Some(json!({ "professional_registrations": { "gmc": "12 34" } })),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "PATCH",
        &path,
        Some(json!({ "professional_registrations": { "gmc": "7654321", "nmc": "12a3456b" } })),
    )
    .await;
    assert_eq!(status, 200);
    let (_, shown, _) = call(&env, Some(&manager), "GET", &path, None).await;
    assert_eq!(
        shown["professional_registrations"],
        json!({ "gmc": "7654321", "nmc": "12A3456B" })
    );

    let client = env.confidential_client().await;
    let tokens = env
        .tokens_in(
            &env.browser(Some(&card)),
            &client,
            "openid professionalmemberships organisationalmemberships",
        )
        .await;
    let info = userinfo(&env, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (info["gmc_id"].as_str(), info["nmc_id"].as_str()),
        (Some("7654321"), Some("12A3456B")),
        "{info}"
    );
    let memberships = info["nhsid_org_memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 1, "{info}");
    assert_eq!(memberships[0]["org_code"], "RZ9EX");
    assert_eq!(
        memberships[0]["person_orgid"].as_str().unwrap().len(),
        12,
        "{info}"
    );
}

#[tokio::test]
async fn a_photograph_is_recorded_checked_and_shown_to_ra_staff() {
    let Ra { env, manager, .. } = setup().await;
    let path = "/admin/api/v1/identities/950000000003/photo";
    let (status, _, _) = call(&env, Some(&manager), "GET", path, None).await;
    assert_eq!(status, 404, "none yet");
    for bad in [
        json!({ "content_type": "image/png", "image_base64": "not base64!" }),
        json!({ "content_type": "image/svg+xml", "image_base64": "PHN2Zz4=" }),
        json!({ "content_type": "image/jpeg", "image_base64": PHOTO_PNG_BASE64 }),
    ] {
        let (status, problem, _) =
            call(&env, Some(&manager), "POST", path, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    let photo = json!({ "content_type": "image/png", "image_base64": PHOTO_PNG_BASE64 });
    let (status, recorded, _) = call(&env, Some(&manager), "POST", path, Some(photo)).await;
    assert_eq!(status, 201, "{recorded}");
    let (status, shown, _) = call(&env, Some(&manager), "GET", path, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            shown["content_type"].as_str(),
            shown["image_base64"].as_str()
        ),
        (Some("image/png"), Some(PHOTO_PNG_BASE64))
    );
    assert_eq!(shown["recorded_by"], "950000000001");
}

#[tokio::test]
async fn a_suspended_card_stops_signing_in_until_it_is_unlocked_and_a_revoked_one_never_returns() {
    let Ra {
        env,
        manager,
        nurse_position,
        ..
    } = setup().await;
    let person = "950000000088";
    let (card, _) = holder(&env, person, &nurse_position).await;
    let client = env.confidential_client().await;
    let tokens = env
        .tokens_in(&env.browser(Some(&card)), &client, "openid")
        .await;
    let id = env.db.authenticators_of(person).await.unwrap()[0]
        .id
        .clone();
    let at =
        |action: &str| format!("/admin/api/v1/identities/{person}/authenticators/{id}/{action}");
    let (status, _, _) = call(&env, Some(&manager), "POST", &at("unlock"), None).await;
    assert_eq!(status, 409, "only a suspended card is unlocked");
    let (status, suspended, _) = call(&env, Some(&manager), "POST", &at("suspend"), None).await;
    assert_eq!(
        (status, suspended["status"].as_str()),
        (200, Some("suspended"))
    );
    // Its session and tokens ended; it does not sign in, and says why.
    let r = env
        .http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the suspended card's session ended");
    let url = env.authorize_url(&client.client.metadata.client_id, &[], true);
    match env.browser(Some(&card)).sign_in(&url).await {
        SignIn::Page(_, body) => assert!(body.contains("suspended"), "{body}"),
        other => panic!("a suspended card signed in: {other:?}"),
    }
    let (status, _, _) = call(&env, Some(&manager), "POST", &at("unlock"), None).await;
    assert_eq!(status, 200);
    assert!(
        matches!(
            env.browser(Some(&card)).sign_in(&url).await,
            SignIn::Redirected(_)
        ),
        "unlocked, it signs in again"
    );
    // Revoked is for good.
    let (status, _, _) = call(&env, Some(&manager), "POST", &at("revoke"), None).await;
    assert_eq!(status, 200);
    let (status, problem, _) = call(&env, Some(&manager), "POST", &at("unlock"), None).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("never reactivated"),
        "{problem}"
    );
}

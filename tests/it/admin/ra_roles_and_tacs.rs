//! RA roles granted by RA Managers (Advanced RA Agent, ID Checker, Local Smartcard
//! Administrator) and what they allow; RA job roles assigned only by RA Managers; temporary
//! access cards: issued for at most 72 hours to a verified identity, signing in until expiry,
//! locked on return, logged and reported.

use careid::domain::ra::{AdminError, Caller, RaRole};

use super::*;

#[tokio::test]
async fn only_ra_managers_grant_ra_roles_and_grants_change_what_the_holder_may_do() {
    let Ra {
        env,
        manager,
        agent,
        ..
    } = setup().await;
    // A ward clerk at RZ9 itself (grants count where the holder's selected role is).
    let id = position_at_rz9(&env, "rz9-clerk", "Ward clerk", "R8001").await;
    let nurse = staff_token(&env, "950000000004", &id).await;
    let grant = "/admin/api/v1/identities/950000000004/ra-roles";
    let body = json!({ "role": "id_checker", "evidence": "Board minutes 2026-11-01 item 4" });
    // An RA Agent may not put people into RA roles; nobody grants themselves one.
    let (status, problem, _) = call(&env, Some(&agent), "POST", grant, Some(body.clone())).await;
    assert_eq!(status, 403, "{problem}");
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities/950000000001/ra-roles",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        grant,
        Some(json!({ "role": "root" })),
    )
    .await;
    assert_eq!(status, 400);

    // Before the grant the nurse may not create identities; after it, as an ID Checker, they may,
    // but still may not bind smartcards.
    let create = json!({ "given_name": "Ida", "family_name": "Checked" });
    let (status, _, _) = call(
        &env,
        Some(&nurse),
        "POST",
        "/admin/api/v1/identities",
        Some(create.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let (status, granted, _) = call(&env, Some(&manager), "POST", grant, Some(body)).await;
    assert_eq!(status, 201, "{granted}");
    assert_eq!(granted["org_code"], "RZ9");
    let (status, created, _) = call(
        &env,
        Some(&nurse),
        "POST",
        "/admin/api/v1/identities",
        Some(create.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let card = env.card(created["uuid"].as_str().unwrap());
    let (status, _, _) = call(
        &env,
        Some(&nurse),
        "POST",
        &format!(
            "/admin/api/v1/identities/{}/smartcards",
            created["uuid"].as_str().unwrap()
        ),
        Some(json!({ "certificate_pem": card.cert_pem })),
    )
    .await;
    assert_eq!(status, 403);

    // Ended: the role is gone at once.
    let end = format!(
        "/admin/api/v1/ra-roles/{}/end",
        granted["id"].as_str().unwrap()
    );
    let (status, _, _) = call(&env, Some(&agent), "POST", &end, None).await;
    assert_eq!(status, 403);
    let (status, _, _) = call(&env, Some(&manager), "POST", &end, None).await;
    assert_eq!(status, 200);
    let (status, _, _) = call(
        &env,
        Some(&nurse),
        "POST",
        "/admin/api/v1/identities",
        Some(create),
    )
    .await;
    assert_eq!(status, 403);
    let events: Vec<String> = audit_kinds(&env, 50).await;
    assert!(events.contains(&"admin.ra_role_granted".to_string()));
    assert!(events.contains(&"admin.ra_role_ended".to_string()));
}

#[tokio::test]
async fn positions_with_an_ra_job_role_are_assigned_by_ra_managers_only() {
    let Ra {
        env,
        manager,
        agent,
        ..
    } = setup().await;
    env.user("950000000009").await;
    let ram = env
        .db
        .position_by_name("RZ9", "Registration Authority Manager")
        .await
        .unwrap()
        .unwrap();
    let assign = "/admin/api/v1/identities/950000000009/assignments";
    let (status, problem, _) = call(
        &env,
        Some(&agent),
        "POST",
        assign,
        Some(json!({ "position_id": ram })),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    let (status, problem, _) = call(
        &env,
        Some(&manager),
        "POST",
        assign,
        Some(json!({ "position_id": ram })),
    )
    .await;
    assert_eq!(
        status, 400,
        "an RA Manager's appointment is evidenced: {problem}"
    );
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("appointment_evidence"));
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        assign,
        Some(json!({ "position_id": ram, "appointment_evidence": "Board minutes, 3 March 2026, item 7" })),
    )
    .await;
    assert_eq!(status, 201);
    let event = env
        .db
        .recent_audit(5)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "admin.assignment_created")
        .unwrap();
    assert_eq!(
        event.detail["appointment_evidence"],
        "Board minutes, 3 March 2026, item 7"
    );
}

#[tokio::test]
async fn a_temporary_access_card_works_until_it_expires_or_is_returned_and_is_logged() {
    let Ra {
        env,
        manager,
        agent,
        nurse,
        ..
    } = setup().await;
    // The nurse (950000000003) left their card at home. Their identity was verified at level 3.
    env.db
        .set_id_assurance_level("950000000003", 3)
        .await
        .unwrap();
    let tac = env
        .pki
        .card_sub
        .card_cert(&careid::pki::CardSpec::valid(
            "700000000042",
            "TAC_0042",
            env.now(),
        ))
        .unwrap();
    photo_on_record(&env, "950000000003").await;
    let issue = "/admin/api/v1/identities/950000000003/tacs";
    let request = |hours: i64| json!({ "certificate_pem": tac.cert_pem, "tac_name": "TAC 0042", "reason": "card left at home", "hours": hours });
    let (status, _, _) = call(&env, Some(&nurse), "POST", issue, Some(request(8))).await;
    assert_eq!(status, 403, "a nurse is not RA staff");
    let (status, problem, _) = call(&env, Some(&agent), "POST", issue, Some(request(73))).await;
    assert_eq!(status, 400, "{problem}");
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        "/admin/api/v1/identities/950000000002/tacs",
        Some(request(8)),
    )
    .await;
    assert_eq!(status, 403, "not to oneself");
    // Not while the card works: it is reported lost (revoked) first.
    let (status, problem, _) = call(&env, Some(&agent), "POST", issue, Some(request(8))).await;
    assert_eq!(status, 409, "{problem}");
    let card = env.db.authenticators_of("950000000003").await.unwrap()[0]
        .id
        .clone();
    let revoke = format!("/admin/api/v1/identities/950000000003/authenticators/{card}/revoke");
    assert_eq!(call(&env, Some(&agent), "POST", &revoke, None).await.0, 200);
    let (status, issued, _) = call(&env, Some(&agent), "POST", issue, Some(request(8))).await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["expires_at"], env.now() + 8 * 3600);

    // The TAC signs the nurse in (their own roles), until it expires.
    let client = env.confidential_client().await;
    let claims = env
        .tokens_in(&env.browser(Some(&tac)), &client, "openid")
        .await;
    assert_eq!(
        jwt_claims(claims["id_token"].as_str().unwrap())["sub"],
        "950000000003"
    );
    env.clock.advance(8 * 3600);
    let url = env.authorize_url(&client.client.metadata.client_id, &[], true);
    match env.browser(Some(&tac)).sign_in(&url).await {
        SignIn::Page(403, body) => {
            assert!(body.contains("temporary access card has expired"), "{body}")
        }
        other => panic!("{other:?}"),
    }

    // The report shows it overdue; returning it locks it and logs who took it back. (The RA
    // staff's access tokens have expired by now, so this goes to the domain with their roles.)
    let ra = |uuid: &str, role: RaRole| Caller {
        uuid: uuid.into(),
        person_roleid: "p".into(),
        org_code: "RZ9".into(),
        ra_roles: vec![role],
        job_role: "R5090".into(),
        client_id: "ra-tool".into(),
        jti: "j".into(),
        auth_time: 0,
    };
    let p = &env.server.provider;
    let report = p
        .admin_report(&ra("950000000001", RaRole::Manager), "tacs-issued", None)
        .await
        .unwrap();
    let report = serde_json::to_value(report).unwrap();
    assert_eq!(report["rows"]["overdue"], 1, "{report}");
    assert_eq!(report["rows"]["issues"][0]["reason"], "card left at home");
    assert_eq!(report["rows"]["issues_per_ra_member"]["950000000002"], 1);
    let id = issued["id"].as_str().unwrap();
    let agent_now = ra("950000000002", RaRole::Agent);
    p.admin_return_tac(&agent_now, id).await.unwrap();
    assert!(matches!(
        p.admin_return_tac(&agent_now, id).await,
        Err(AdminError::Conflict(_))
    ));
    let report = p
        .admin_report(&ra("950000000001", RaRole::Manager), "tacs-issued", None)
        .await
        .unwrap();
    let report = serde_json::to_value(report).unwrap();
    assert_eq!(report["rows"]["issues"][0]["state"], "returned");
    assert_eq!(report["rows"]["issues"][0]["returned_to"], "950000000002");
    let events: Vec<String> = env
        .db
        .recent_audit(50)
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e.kind, e.actor.clone().unwrap_or_default()))
        .collect();
    for expected in [
        "admin.tac_issued 950000000002",
        "admin.tac_returned 950000000002",
        "login.smartcard 950000000003",
    ] {
        assert!(
            events.contains(&expected.to_string()),
            "{expected}: {events:?}"
        );
    }
    let _ = manager;
}

#[tokio::test]
async fn a_tac_is_only_for_a_verified_identity_and_a_returned_tac_ends_its_sessions() {
    let Ra { env, agent, .. } = setup().await;
    env.user("950000000010").await;
    env.db
        .set_id_assurance_level("950000000010", 0)
        .await
        .unwrap();
    let tac = env
        .pki
        .card_sub
        .card_cert(&careid::pki::CardSpec::valid(
            "700000000043",
            "TAC_0043",
            env.now(),
        ))
        .unwrap();
    let body = json!({ "certificate_pem": tac.cert_pem, "tac_name": "TAC 0043", "reason": "new starter, card not printed", "hours": 72 });
    let issue = "/admin/api/v1/identities/950000000010/tacs";
    let (status, problem, _) = call(&env, Some(&agent), "POST", issue, Some(body.clone())).await;
    assert_eq!(status, 409, "{problem}");
    env.db
        .set_id_assurance_level("950000000010", 3)
        .await
        .unwrap();
    let (status, problem, _) = call(&env, Some(&agent), "POST", issue, Some(body.clone())).await;
    assert_eq!(
        status, 409,
        "no photograph for the likeness check: {problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("photograph"),
        "{problem}"
    );
    photo_on_record(&env, "950000000010").await;
    let (status, issued, _) = call(&env, Some(&agent), "POST", issue, Some(body)).await;
    assert_eq!(status, 201);
    env.db
        .record_terms_acceptance("950000000010", "2026-11", env.now())
        .await
        .unwrap();
    let browser = env.browser(Some(&tac));
    let client = env.confidential_client().await;
    env.tokens_in(&browser, &client, "openid").await;
    let back = format!(
        "/admin/api/v1/tacs/{}/return",
        issued["id"].as_str().unwrap()
    );
    assert_eq!(call(&env, Some(&agent), "POST", &back, None).await.0, 200);
    // The session the TAC opened has ended: no silent sign-in, and the card is refused.
    assert_eq!(
        env.silent_error(&browser, &client.client.metadata.client_id, &[])
            .await
            .as_deref(),
        Some("login_required")
    );
    let url = env.authorize_url(&client.client.metadata.client_id, &[], true);
    assert!(matches!(browser.sign_in(&url).await, SignIn::Page(403, _)));
}

#[tokio::test]
async fn a_tac_carries_only_the_position_an_ra_chose_and_its_session_ends_with_it() {
    let Ra {
        env,
        agent,
        nurse_position,
        ..
    } = setup().await;
    let person = "950000000011";
    env.user(person).await;
    let clerk = env
        .db
        .position_by_name("RZ9", "Contract Health Records Clerk")
        .await
        .unwrap()
        .unwrap();
    for position in [&nurse_position, &clerk] {
        rbac::assign_position(
            &env.db,
            person,
            position,
            env.now() - 60,
            None,
            "test",
            env.now(),
        )
        .await
        .unwrap();
    }
    photo_on_record(&env, person).await;
    let roles = rbac::current_roles(&env.db, person, env.now())
        .await
        .unwrap();
    assert_eq!(roles.len(), 2);
    let tac = |n: &str| {
        env.pki
            .card_sub
            .card_cert(&CardSpec::valid(
                &format!("70000000{n}"),
                &format!("TAC_{n}"),
                env.now(),
            ))
            .unwrap()
    };
    let issue = format!("/admin/api/v1/identities/{person}/tacs");
    let client = env.confidential_client().await;
    let with_role = env.authorize_url(
        &client.client.metadata.client_id,
        &[("scope", "openid selectedrole nationalrbacaccess")],
        true,
    );

    // Someone else's position cannot be given to the TAC.
    let first = tac("0051");
    let body = |card: &careid::pki::Issued, ids: Value| json!({ "certificate_pem": card.cert_pem, "tac_name": "TAC", "reason": "card at home", "hours": 1, "person_roleids": ids });
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        &issue,
        Some(body(&first, json!(["not-theirs"]))),
    )
    .await;
    assert_eq!(status, 400);
    // No position chosen: the TAC signs in, but a relying party that needs a role gets none.
    let (status, issued, _) = call(
        &env,
        Some(&agent),
        "POST",
        &issue,
        Some(body(&first, json!([]))),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    match env.browser(Some(&first)).sign_in(&with_role).await {
        SignIn::Page(status, body) => {
            assert_eq!(status, 403);
            assert!(body.contains("no current role"), "{body}");
        }
        other => panic!("a TAC without positions gave {other:?}"),
    }
    let back = format!(
        "/admin/api/v1/tacs/{}/return",
        issued["id"].as_str().unwrap()
    );
    assert_eq!(call(&env, Some(&agent), "POST", &back, None).await.0, 200);

    // One position chosen: that one only, and the session ends when the TAC does.
    let second = tac("0052");
    let chosen = roles[1].person_roleid.clone();
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        &issue,
        Some(body(&second, json!([chosen]))),
    )
    .await;
    assert_eq!(status, 201);
    let location = match env.browser(Some(&second)).sign_in(&with_role).await {
        SignIn::Redirected(to) => to,
        other => panic!("{other:?}"),
    };
    let tokens: Value = env
        .redeem(&client, &query_param(&location, "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        id_token["selected_roleid"],
        json!(chosen),
        "the only role, chosen without asking"
    );
    let info = userinfo(&env, tokens["access_token"].as_str().unwrap()).await;
    let listed: Vec<&str> = info["nhsid_nrbac_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["person_roleid"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![chosen.as_str()], "{info}");
    let session = env
        .db
        .session_by_sid(id_token["sid"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        session.absolute_expiry,
        env.now() + 3600,
        "the session ends when the TAC does"
    );
}

use reqwest::StatusCode;

use super::*;

fn seen(html: &str, text: &str) -> bool {
    html.contains(text)
}

#[tokio::test]
async fn an_agent_registers_checks_assigns_and_issues_a_tac_through_the_console() {
    let c = console().await;
    let env = &c.env;
    let agent = signed_in(env, &c.agent).await;
    let (status, home) = get(env, &agent, "/ra/").await;
    assert_eq!(status, 200);
    assert!(seen(&home, "RA Agent at RZ9"), "{home}");
    assert!(
        !seen(&home, "/ra/audit"),
        "an agent is not offered the audit trail"
    );

    // Register, with the evidence's details; the same person again is caught as a duplicate.
    let person = [
        ("given_name", "Nia"),
        ("family_name", "Starter"),
        ("date_of_birth", "1990-04-01"),
        ("ni_number", "AB 12 34 56 C"),
    ];
    let (status, _, to) = post(env, &agent, "/ra/people/new", &person).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = to.unwrap();
    assert!(to.ends_with("?done=registered"), "{to}");
    let uuid = record_uuid(&to);
    let (status, page, _) = post(env, &agent, "/ra/people/new", &person).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        seen(&page, "Possible existing identities") && seen(&page, &uuid),
        "{page}"
    );
    let (_, found) = get(env, &agent, "/ra/people?q=Starter").await;
    assert_eq!(
        found.matches("Nia Starter</a>").count(),
        1,
        "still one Nia Starter: {found}"
    );
    let mut twin = person.to_vec();
    twin[3] = ("ni_number", "AB 65 43 21 D");
    twin.push((
        "not_a_duplicate_because",
        "twin sister: different NI number on her P60",
    ));
    let (status, _, to) = post(env, &agent, "/ra/people/new", &twin).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a different person, with the reason recorded"
    );
    assert_ne!(record_uuid(&to.unwrap()), uuid);
    let (_, found) = get(env, &agent, "/ra/people?q=1990-04-01").await;
    assert_eq!(
        found.matches("Nia Starter</a>").count(),
        2,
        "both, found by date of birth: {found}"
    );

    // Required fields are named in an error summary that links to them.
    let (status, page, _) = post(env, &agent, "/ra/people/new", &[("given_name", "Solo")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(seen(&page, "href=\"#field-family_name\""), "{page}");

    // The identity check: level 3 needs three documents, one photographic.
    let verify = format!("/ra/people/{uuid}/verify");
    let (status, page, _) = post(
        env,
        &agent,
        &verify,
        &[("level", "3"), ("doc1_kind", "utility bill")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(seen(&page, "There is a problem"), "{page}");
    let docs = [
        ("level", "3"),
        ("doc1_kind", "passport"),
        ("doc1_last4", "4321"),
        ("doc2_kind", "utility bill"),
        ("doc3_kind", "P45 or P60"),
    ];
    let (status, _, to) = post(env, &agent, &verify, &docs).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.unwrap().ends_with("done=verified"));
    assert_eq!(
        env.db
            .user(&uuid)
            .await
            .unwrap()
            .unwrap()
            .id_assurance_level,
        3
    );

    // A contractor's position ends after three months unless an end date is given.
    let assign = format!("/ra/people/{uuid}/assign");
    let fields = [
        ("position_id", c.nurse_position.as_str()),
        ("term", "contractor"),
    ];
    let (status, _, _) = post(env, &agent, &assign, &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let roles = rbac::current_roles(&env.db, &uuid, env.now())
        .await
        .unwrap();
    assert_eq!(roles.len(), 1);
    let event = env
        .db
        .recent_audit(5)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "admin.assignment_created")
        .unwrap();
    assert_eq!(
        event.detail["ends_at"].as_i64().unwrap() - event.detail["starts_at"].as_i64().unwrap(),
        91 * 86400
    );
    assert_eq!(
        event.client_id.as_deref(),
        Some("careid-ra-console"),
        "the console acts as its own admin client"
    );
    assert_eq!(event.actor.as_deref(), Some(super::AGENT));

    // The photograph, uploaded as a file; without this session's CSRF token it is refused.
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(PHOTO_PNG_BASE64)
        .unwrap();
    let upload = |token: String, bytes: Vec<u8>, mime: &str| {
        reqwest::multipart::Form::new().text("csrf", token).part(
            "photo",
            reqwest::multipart::Part::bytes(bytes)
                .file_name("photo.png")
                .mime_str(mime)
                .unwrap(),
        )
    };
    let photo_url = env.endpoint(&format!("/ra/people/{uuid}/photo"));
    let token = csrf(&get(env, &agent, "/ra/").await.1);
    let r = agent
        .client
        .post(&photo_url)
        .multipart(upload("forged".into(), png.clone(), "image/png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = agent
        .client
        .post(&photo_url)
        .multipart(upload(
            token.clone(),
            b"<svg onload=alert(1)>".to_vec(),
            "image/png",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "only real JPEG or PNG bytes"
    );
    let r = agent
        .client
        .post(&photo_url)
        .multipart(upload(token, png.clone(), "image/png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = agent.client.get(&photo_url).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    let (_, record) = get(env, &agent, &format!("/ra/people/{uuid}")).await;
    assert!(
        seen(&record, "alt=\"Photograph of Nia Starter on record\""),
        "{record}"
    );

    // A TAC, with the likeness check against the photograph, then its return.
    let tac_card = env.card(&uuid);
    let tac = [
        ("likeness", "yes"),
        ("reason", "card not with them"),
        ("detail", "first day, card not printed yet"),
        ("tac_name", "TAC 0042"),
        ("hours", "8"),
        ("certificate_pem", tac_card.cert_pem.as_str()),
    ];
    let path = format!("/ra/people/{uuid}/tac");
    let (status, page, _) = post(env, &agent, &path, &tac[1..]).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the likeness check is required"
    );
    assert!(seen(&page, "#field-likeness"), "{page}");
    let (status, page, _) = post(env, &agent, &path, &tac).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (_, record) = get(env, &agent, &format!("/ra/people/{uuid}")).await;
    assert!(
        seen(&record, "TAC 0042") && seen(&record, "Record return"),
        "{record}"
    );
    let id = env.db.tac_issues_of(&uuid).await.unwrap()[0].id.clone();
    let (status, _, to) = post(
        env,
        &agent,
        &format!("/ra/people/{uuid}/tacs/{id}/return"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.unwrap().ends_with("done=tac-returned"));
    assert!(env.db.tac_issues_of(&uuid).await.unwrap()[0]
        .returned_at
        .is_some());

    // A smartcard, then its revocation; an invitation for a security key.
    let card = env.card(&uuid);
    let (status, page, _) = post(
        env,
        &agent,
        &format!("/ra/people/{uuid}/smartcard"),
        &[("certificate_pem", card.cert_pem.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let bound = env
        .db
        .authenticators_of(&uuid)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.kind == careid::model::identity::AuthenticatorKind::Smartcard)
        .unwrap();
    let revoke = format!("/ra/people/{uuid}/authenticators/{}/revoke", bound.id);
    let (status, page) = get(env, &agent, &revoke).await;
    assert_eq!(status, 200);
    assert!(
        seen(&page, "class=\"danger\""),
        "a destructive action is confirmed first: {page}"
    );
    let (status, _, to) = post(env, &agent, &revoke, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.unwrap().ends_with("done=revoked"));
    // A change of name needs its evidence; registrations are recorded for relying parties.
    let details = format!("/ra/people/{uuid}/details");
    let (status, page) = get(env, &agent, &details).await;
    assert_eq!(status, 200);
    assert!(
        seen(&page, "value=\"Starter\""),
        "the form starts from the record: {page}"
    );
    let mut change = vec![
        ("given_name", "Nia"),
        ("family_name", "Starter-Jones"),
        ("reg_nmc", "12a3456b"),
    ];
    let (status, page, _) = post(env, &agent, &details, &change).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        seen(&page, "href=\"#field-name_change_evidence\""),
        "{page}"
    );
    change.push(("name_change_evidence", "marriage certificate seen"));
    let (status, page, _) = post(env, &agent, &details, &change).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (_, record) = get(env, &agent, &format!("/ra/people/{uuid}")).await;
    assert!(
        seen(&record, "Nia Starter-Jones") && seen(&record, "12A3456B"),
        "{record}"
    );
    let (status, page, _) = post(env, &agent, &format!("/ra/people/{uuid}/invite"), &[]).await;
    assert_eq!(status, 200, "{page}");
    assert!(seen(&page, "/webauthn/invitation?handover="), "{page}");
}

#[tokio::test]
async fn the_console_refuses_what_the_permission_table_refuses() {
    let c = console().await;
    let env = &c.env;
    let agent = signed_in(env, &c.agent).await;
    // A Manager's pages.
    for path in ["/ra/audit", "/ra/reports", "/ra/reports/tacs-issued.csv"] {
        let (status, page) = get(env, &agent, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {page}");
        assert!(seen(&page, "Not allowed"), "{page}");
    }
    let (status, _, _) = post(
        env,
        &agent,
        &format!("/ra/people/{NURSE}/ra-role"),
        &[("role", "id_checker"), ("evidence", "minutes")],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only an RA Manager grants RA roles"
    );
    assert!(env.db.current_ra_grants(NURSE).await.unwrap().is_empty());

    // Their own record: shown, but not changed.
    let (status, page) = get(env, &agent, &format!("/ra/people/{AGENT}")).await;
    assert_eq!(status, 200);
    assert!(seen(&page, "This is your own record"), "{page}");
    assert!(
        !seen(&page, "/status/suspend"),
        "no actions offered on oneself"
    );
    let suspend = |who: &str| format!("/ra/people/{who}/status/suspend");
    let reason = [("reason", "testing")];
    let (status, _, _) = post(env, &agent, &suspend(AGENT), &reason).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nobody acts on themselves");
    // Someone above them, and someone of another organisation.
    let (status, _, _) = post(env, &agent, &suspend(MANAGER), &reason).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an agent does not act on an RA Manager"
    );
    // Someone of another organisation: no record, but the way to associate them here.
    let (status, page) = get(env, &agent, &format!("/ra/people/{ELSEWHERE}")).await;
    assert_eq!(status, 200);
    assert!(
        seen(&page, "Associate with your organisation") && !seen(&page, "Date of birth"),
        "{page}"
    );
    assert!(
        seen(&page, &format!("/ra/people/{ELSEWHERE}/assign")),
        "{page}"
    );
    let (status, page, _) = post(env, &agent, &suspend(ELSEWHERE), &reason).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status} {page}"
    );
    for who in [AGENT, MANAGER, ELSEWHERE] {
        assert_eq!(
            env.db.user(who).await.unwrap().unwrap().status.as_str(),
            "active",
            "{who}"
        );
    }

    // A form without this session's CSRF token changes nothing.
    let manager = signed_in(env, &c.manager).await;
    let (_, manager_home) = get(env, &manager, "/ra/").await;
    for token in ["", "forged", csrf(&manager_home).as_str()] {
        let (status, page, _) = post(
            env,
            &agent,
            &suspend(NURSE),
            &[("reason", "x"), ("csrf", token)],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "csrf {token:?}");
        assert!(seen(&page, "This form was not accepted"), "{page}");
    }
    assert_eq!(
        env.db.user(NURSE).await.unwrap().unwrap().status.as_str(),
        "active"
    );
    let (status, _, _) = post(env, &agent, &suspend(NURSE), &reason).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "with its token the same form works"
    );

    // Giving the person from RZ8 a position here associates them; then their record opens.
    let assign = [("position_id", c.nurse_position.as_str())];
    let (status, _, _) = post(
        env,
        &agent,
        &format!("/ra/people/{ELSEWHERE}/assign"),
        &assign,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page) = get(env, &agent, &format!("/ra/people/{ELSEWHERE}")).await;
    assert_eq!(status, 200);
    assert!(seen(&page, "Record an identity check"), "{page}");
}

#[tokio::test]
async fn console_sessions_end_when_idle_and_sensitive_actions_need_a_recent_sign_in() {
    let c = console().await;
    let env = &c.env;
    let agent = signed_in(env, &c.agent).await;
    // After five idle minutes the session still works, but a TAC needs the card again.
    env.clock.advance(301);
    let (status, page) = get(env, &agent, &format!("/ra/people/{NURSE}")).await;
    assert_eq!(status, 200, "{page}");
    let card = env.card(NURSE);
    let tac = [
        ("likeness", "yes"),
        ("reason", "card not with them"),
        ("tac_name", "TAC 7"),
        ("hours", "4"),
        ("certificate_pem", card.cert_pem.as_str()),
    ];
    let (status, page, _) = post(env, &agent, &format!("/ra/people/{NURSE}/tac"), &tac).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    assert!(
        seen(&page, "Confirm it is you") && seen(&page, "again=1"),
        "{page}"
    );
    assert!(
        env.db.tac_issues_of(NURSE).await.unwrap().is_empty(),
        "nothing issued"
    );

    // Ten minutes without a request end the session; the next page says so.
    env.clock.advance(601);
    let (status, page) = get(env, &agent, "/ra/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    assert!(seen(&page, "Your console session has ended"), "{page}");
    let (status, _, _) = post(
        env,
        &agent,
        &format!("/ra/people/{NURSE}/status/suspend"),
        &[("reason", "x"), ("csrf", "any")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Signing in again works.
    let again = signed_in(env, &c.agent).await;
    assert_eq!(get(env, &again, "/ra/").await.0, 200);
}

#[tokio::test]
async fn only_a_sign_in_started_in_this_browser_opens_a_console_session() {
    let c = console().await;
    let env = &c.env;
    // A callback with no sign-in under way (a code or state planted from elsewhere).
    let b = env.browser(Some(&c.agent));
    let r = b
        .client
        .get(env.endpoint("/ra/callback?code=planted&state=planted"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A sign-in started in another browser cannot be finished in this one.
    let other = env.browser(Some(&c.agent));
    let r = other.client.get(env.endpoint("/ra/")).send().await.unwrap();
    let callback = match other.sign_in(&location(&r)).await {
        SignIn::Redirected(to) => to,
        SignIn::Page(s, body) => panic!("{s} {body}"),
    };
    let r = b.client.get(&callback).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "not this browser's sign-in"
    );
    assert_eq!(
        get(env, &b, "/ra/").await.0,
        StatusCode::SEE_OTHER,
        "and no session was opened"
    );
    // Someone with no RA role is told so, and gets no session.
    let nurse = env.browser(Some(&c.nurse));
    let r = nurse.client.get(env.endpoint("/ra/")).send().await.unwrap();
    let callback = match nurse.sign_in(&location(&r)).await {
        SignIn::Redirected(to) => to,
        SignIn::Page(s, body) => panic!("{s} {body}"),
    };
    let r = nurse.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("not available to you"));
}

#[tokio::test]
async fn sponsors_approve_other_staff_carry_out_and_managers_read_reports_and_the_audit_trail() {
    let c = console().await;
    let env = &c.env;
    let agent = signed_in(env, &c.agent).await;
    let manager = signed_in(env, &c.manager).await;
    let clerk = env
        .db
        .position_by_name("RZ9", "Contract Health Records Clerk")
        .await
        .unwrap()
        .unwrap();
    let raise = [
        ("uuid", NURSE),
        ("position_id", clerk.as_str()),
        ("reason", "covering records"),
    ];
    let (status, page, _) = post(env, &agent, "/ra/requests", &raise).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (_, queue) = get(env, &manager, "/ra/requests?status=pending").await;
    let at = queue
        .find("/approve\"")
        .expect("an approve button for the sponsor");
    let id = queue[..at]
        .rsplit("/ra/requests/")
        .next()
        .unwrap()
        .to_string();
    let (_, agents_view) = get(env, &agent, "/ra/requests?status=pending").await;
    assert!(
        !agents_view.contains("/approve\""),
        "an agent is not a sponsor"
    );
    let (status, _, _) = post(env, &agent, &format!("/ra/requests/{id}/approve"), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post(env, &manager, &format!("/ra/requests/{id}/approve"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page, _) = post(env, &manager, &format!("/ra/requests/{id}/fulfil"), &[]).await;
    assert!(
        status.is_client_error(),
        "the approver does not carry it out: {status} {page}"
    );
    let (status, _, _) = post(env, &agent, &format!("/ra/requests/{id}/fulfil"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let roles = rbac::current_roles(&env.db, NURSE, env.now())
        .await
        .unwrap();
    assert_eq!(
        roles.len(),
        2,
        "the nurse now holds the clerk's position too"
    );

    // Reports download as CSV.
    let r = manager
        .client
        .get(env.endpoint("/ra/reports/active-users-by-org.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("active_users,org_code,org_name\n"), "{csv}");
    assert!(csv.contains(",RZ9,"), "{csv}");
    let (status, csv) = get(env, &manager, "/ra/reports/leavers-with-access.csv").await;
    assert_eq!(status, 200, "{csv}");
    let (status, csv) = get(env, &manager, "/ra/reports/ra-activity.csv").await;
    assert_eq!(status, 200, "{csv}");
    assert!(
        csv.starts_with("count,event\n") && csv.contains(",admin.access_fulfilled\n"),
        "the current quarter's RA work: {csv}"
    );
    let (_, csv) = get(env, &manager, "/ra/reports/ra-activity.csv?period=1999").await;
    assert_eq!(csv, "", "nothing happened in 1999");
    let (status, page) = get(
        env,
        &manager,
        "/ra/reports/ra-activity.csv?period=last-week",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("a quarter (2026-Q3)"), "{page}");
    let (status, _) = get(env, &manager, "/ra/reports/nonsense.csv").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The audit trail, filtered by person, with the chain checked.
    let (status, page) = get(
        env,
        &manager,
        &format!("/ra/audit?person={NURSE}&verify=yes"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("admin.access_fulfilled") && page.contains("admin.access_approved"),
        "{page}"
    );
    assert!(page.contains("The audit trail is intact"), "{page}");
    let (_, page) = get(env, &manager, &format!("/ra/audit?actor={MANAGER}")).await;
    assert!(
        page.contains("admin.access_approved") && !page.contains("admin.access_fulfilled"),
        "{page}"
    );
    let (_, page) = get(env, &manager, "/ra/audit?person=robert'); DROP TABLE").await;
    assert!(page.contains("person must be a 12-digit"), "{page}");
    let (_, page) = get(env, &manager, "/ra/audit?since=yesterday").await;
    assert!(page.contains("must be dates"), "{page}");
}

#[tokio::test]
async fn positions_are_corrected_with_their_approval_and_retired_when_nobody_holds_them() {
    let c = console().await;
    let env = &c.env;
    let manager = signed_in(env, &c.manager).await;
    let agent = signed_in(env, &c.agent).await;
    assert_eq!(
        get(env, &agent, "/ra/positions").await.0,
        StatusCode::FORBIDDEN,
        "agents do not keep positions"
    );
    let (status, page) = get(env, &manager, "/ra/positions").await;
    assert_eq!(status, 200);
    assert!(seen(&page, "Staff Nurse - Example Ward 7"), "{page}");

    // A correction needs its approval, and is recorded with it.
    let correct = format!("/ra/positions/{}/correct", c.nurse_position);
    let (status, page, _) = post(
        env,
        &manager,
        &correct,
        &[("name", "Staff Nurse - Ward 7 (Nights)")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(seen(&page, "#field-approved_by"), "{page}");
    let (_, form) = get(env, &manager, &correct).await;
    assert!(
        seen(
            &form,
            "RZ9EX R8001 activities=B0820,B0825,B0380 workgroups=501234567892"
        ),
        "the profiles as text: {form}"
    );
    let (status, page, _) = post(
        env,
        &manager,
        &correct,
        &[("name", "x"), ("approved_by", "IG"), ("profiles", "RZ9")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        seen(&page, "line 1 needs an organisation and a job role"),
        "{page}"
    );
    let fields = [
        ("name", "Staff Nurse - Ward 7 (Nights)"),
        ("approved_by", "IG Steering Group, 12 November 2026"),
        (
            "profiles",
            "RZ9EX R8001 activities=B0820,B0825,B0380,B0360 workgroups=501234567892",
        ),
    ];
    let (status, _, _) = post(env, &manager, &correct, &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = get(env, &manager, "/ra/positions").await;
    assert!(
        seen(&page, "Staff Nurse - Ward 7 (Nights)")
            && seen(&page, "IG Steering Group, 12 November 2026"),
        "{page}"
    );
    let roles = rbac::current_roles(&env.db, NURSE, env.now())
        .await
        .unwrap();
    assert!(
        roles[0].activity_codes.iter().any(|a| a == "B0360"),
        "the holder's access follows the corrected profile: {roles:?}"
    );

    // Another organisation's position is not this manager's to correct or retire.
    let rz8 = env
        .db
        .position_by_name("RZ8", "Immunisation Nurse (inter-organisation)")
        .await
        .unwrap()
        .unwrap();
    let (status, _, _) = post(
        env,
        &manager,
        &format!("/ra/positions/{rz8}/correct"),
        &fields,
    )
    .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    let (status, _, _) = post(
        env,
        &manager,
        &format!("/ra/positions/{rz8}/retire"),
        &[("approved_by", "IG"), ("reason", "x")],
    )
    .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    assert!(
        env.db.position_standing(&rz8).await.unwrap().1.is_none(),
        "not retired"
    );

    // Held positions are not retired; an unheld one is, and then takes no one.
    let retire = format!("/ra/positions/{}/retire", c.nurse_position);
    let why = [
        ("approved_by", "IG Steering Group"),
        ("reason", "ward closed"),
    ];
    let (status, page, _) = post(env, &manager, &retire, &why).await;
    assert_eq!(status, StatusCode::CONFLICT, "the nurse holds it: {page}");
    let clerk = env
        .db
        .position_by_name("RZ9", "Contract Health Records Clerk")
        .await
        .unwrap()
        .unwrap();
    let (status, _, _) = post(
        env,
        &manager,
        &format!("/ra/positions/{clerk}/retire"),
        &why,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page, _) = post(
        env,
        &agent,
        &format!("/ra/people/{NURSE}/assign"),
        &[("position_id", clerk.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(seen(&page, "retired"), "{page}");
    let kinds = audit_kinds(env, 10).await;
    assert!(
        kinds.contains(&"admin.position_updated".to_string())
            && kinds.contains(&"admin.position_retired".to_string()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn where_the_trust_asks_for_it_a_second_ra_checks_the_identity() {
    let c = console_with(Options {
        configure: Some(|config| config.registration.second_ra_verifies = true),
        ..Default::default()
    })
    .await;
    let env = &c.env;
    let agent = signed_in(env, &c.agent).await;
    let manager = signed_in(env, &c.manager).await;
    let (_, _, to) = post(
        env,
        &agent,
        "/ra/people/new",
        &[("given_name", "Four"), ("family_name", "Eyes")],
    )
    .await;
    let uuid = record_uuid(&to.unwrap());
    let docs = [
        ("level", "3"),
        ("doc1_kind", "passport"),
        ("doc2_kind", "utility bill"),
        ("doc3_kind", "P45 or P60"),
    ];
    let verify = format!("/ra/people/{uuid}/verify");
    let (status, page, _) = post(env, &agent, &verify, &docs).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(seen(&page, "a second RA"), "{page}");
    assert_eq!(
        env.db
            .user(&uuid)
            .await
            .unwrap()
            .unwrap()
            .id_assurance_level,
        0
    );
    let (status, _, _) = post(env, &manager, &verify, &docs).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        env.db
            .user(&uuid)
            .await
            .unwrap()
            .unwrap()
            .id_assurance_level,
        3
    );
}

#[tokio::test]
async fn ras_see_what_hr_sent_and_approve_a_new_name_only_with_evidence() {
    let c = console().await;
    let env = &c.env;
    crate::hr::map(env, "NURSE-B5", &c.nurse_position).await;
    let (_, token) = crate::hr::feed_client(env, &["RZ9"]).await;
    let at = |s| crate::hr::at(env, s);
    let events = serde_json::json!({ "events": [
        { "event_id": "h1", "kind": "identity_link", "org_code": "RZ9", "person_id": "N1", "recorded_at": at(-100), "uuid": NURSE },
        { "event_id": "h2", "kind": "details_change", "org_code": "RZ9", "person_id": "N1", "recorded_at": at(-50), "family_name": "Okoro" },
        { "event_id": "h3", "kind": "starter", "org_code": "RZ9", "person_id": "N2", "recorded_at": at(-40),
          "assignment_id": "N2-1", "hr_position": "NURSE-B5", "starts_on": at(-40) },
    ] });
    let (status, report) = crate::hr::send_with(env, Some(&token), events).await;
    assert_eq!(status, 200, "{report}");

    let manager = signed_in(env, &c.manager).await;
    let (status, page) = get(env, &manager, "/ra/hr").await;
    assert_eq!(status, 200);
    assert!(seen(&page, "Okoro") && seen(&page, "family_name"), "{page}");
    assert!(seen(&page, "HR person N2 at RZ9 is not linked"), "{page}");
    assert!(
        seen(&page, "NURSE-B5") && seen(&page, "Staff Nurse - Example Ward 7"),
        "{page}"
    );
    let id = page
        .split("/ra/hr/changes/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();
    let approve = format!("/ra/hr/changes/{id}/approve");
    let (status, refusal, _) = post(env, &manager, &approve, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        seen(&refusal, "needs evidence") && seen(&refusal, "Nothing was changed"),
        "{refusal}"
    );
    let (status, _, to) = post(
        env,
        &manager,
        &approve,
        &[("evidence", "marriage certificate")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.unwrap().ends_with("/ra/hr"));
    let user = env.db.user(NURSE).await.unwrap().unwrap();
    assert_eq!(user.family_name, "Okoro");
    let (_, page) = get(env, &manager, "/ra/hr").await;
    assert!(seen(&page, "No changes are waiting."), "{page}");
}

//! The RA side under attack (issue 14), each test written as the attacker's requests: the
//! refusal with its standard error (403/409 problem details), and the honest path beside it.

use careid::domain::rbac::{self, Position, Profile};
use careid::pki::{CardSpec, Issued};
use serde_json::{json, Value};

use careid::domain::client::NewClient;

use super::{call, setup, Ra, ADMIN_SCOPES};
use crate::helpers::*;

/// A position at `org` with one profile there.
async fn position_at(env: &TestEnv, org: &str, id: &str, job: &str, acts: &[&str]) -> String {
    let position = Position {
        id: id.into(),
        org_code: org.into(),
        name: format!("{id} at {org}"),
        esr_position: None,
        profiles: vec![Profile {
            org_code: org.into(),
            job_role: job.into(),
            activities: acts.iter().map(|a| a.to_string()).collect(),
            workgroups: vec![],
            areas_of_work: vec![],
        }],
    };
    env.db.upsert_position(&position, env.now()).await.unwrap()
}

/// Signs `card` in to `client` with `scope`: the access token.
async fn token_at(env: &TestEnv, card: &Issued, client: &NewClient, scope: &str) -> String {
    let tokens = env.tokens_in(&env.browser(Some(card)), client, scope).await;
    tokens["access_token"].as_str().unwrap().to_string()
}

fn assert_problem(got: (u16, Value, String), status: u16, what: &str) -> Value {
    assert_eq!(
        (got.0, got.2.as_str()),
        (status, "application/problem+json"),
        "{what}: {}",
        got.1
    );
    assert_eq!(got.1["status"], status, "{what}");
    got.1
}

#[tokio::test]
async fn a_relying_party_cannot_replay_an_ra_managers_token_at_the_admin_api() {
    let Ra { env, .. } = setup().await;
    let ram = env
        .db
        .position_by_name("RZ9", "Registration Authority Manager")
        .await
        .unwrap()
        .unwrap();
    let (card, _) = holder(&env, "950000000021", &ram).await;

    // The manager signs in to an ordinary clinical app, which asks for the admin scope too.
    let clinical = env.confidential_client().await;
    let stolen = token_at(&env, &card, &clinical, ADMIN_SCOPES).await;
    assert!(
        !jwt_claims(&stolen)["scope"]
            .as_str()
            .unwrap()
            .contains("careid:admin"),
        "an ordinary client is never granted the admin scope"
    );
    for (method, path, body) in [
        ("GET", "/admin/api/v1/identities?q=Nurse", None),
        (
            "POST",
            "/admin/api/v1/identities",
            Some(json!({ "given_name": "Eve", "family_name": "Planted" })),
        ),
        ("GET", "/admin/api/v1/audit", None),
    ] {
        let p = assert_problem(
            call(&env, Some(&stolen), method, path, body).await,
            403,
            path,
        );
        assert!(
            p["detail"].as_str().unwrap().contains("admin client"),
            "{p}"
        );
    }

    // The same person through the RA tool: accepted, and the audit names the tool and token.
    let tool = env.admin_client().await;
    let token = token_at(&env, &card, &tool, ADMIN_SCOPES).await;
    let (status, created, _) = call(
        &env,
        Some(&token),
        "POST",
        "/admin/api/v1/identities",
        Some(json!({ "given_name": "Nia", "family_name": "Starter" })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (_, audit, _) = call(&env, Some(&token), "GET", "/admin/api/v1/audit", None).await;
    let event = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "admin.identity_created")
        .expect("the creation is audited")
        .clone();
    assert_eq!(event["client_id"], tool.client.metadata.client_id.as_str());
    assert_eq!(event["detail"]["jti"], jwt_claims(&token)["jti"]);
    assert_eq!(event["detail"]["org_code_acting"], "RZ9");
}

#[tokio::test]
async fn an_ra_agent_cannot_climb_to_or_act_on_an_ra_manager() {
    let Ra {
        env,
        agent,
        manager,
        ..
    } = setup().await;
    let manager_uuid = "950000000001";
    let ram_roles = rbac::current_roles(&env.db, manager_uuid, env.now())
        .await
        .unwrap();
    let ram_role = ram_roles[0].person_roleid.clone();
    let tac = env
        .pki
        .card_sub
        .card_cert(&CardSpec::valid("959000000001", "TAC_0001", env.now()))
        .unwrap();
    let tac_request = json!({ "certificate_pem": tac.cert_pem, "tac_name": "TAC 0001", "reason": "forgot card", "hours": 8 });
    let on_manager = |suffix: &str| format!("/admin/api/v1/identities/{manager_uuid}/{suffix}");
    let attempts = [
        ("POST", on_manager("tacs"), Some(tac_request.clone())),
        (
            "POST",
            on_manager("suspend"),
            Some(json!({ "reason": "taking over" })),
        ),
        ("POST", on_manager("authenticator-invitations"), None),
        (
            "POST",
            format!("/admin/api/v1/assignments/{ram_role}/end"),
            None,
        ),
    ];
    for (method, path, body) in attempts {
        let p = assert_problem(
            call(&env, Some(&agent), method, &path, body).await,
            403,
            &path,
        );
        assert!(p["detail"].as_str().unwrap().contains("RA"), "{p}");
    }
    // Nor can the agent give himself (or anyone) RA or sponsor power.
    let ram = env
        .db
        .position_by_name("RZ9", "Registration Authority Manager")
        .await
        .unwrap()
        .unwrap();
    let sponsor = position_at(&env, "RZ9", "ward-sponsor", "R8000", &["B1300"]).await;
    for (uuid, position) in [
        ("950000000002", ram.as_str()),
        ("950000000003", ram.as_str()),
        ("950000000003", sponsor.as_str()),
    ] {
        assert_problem(
            call(
                &env,
                Some(&agent),
                "POST",
                &format!("/admin/api/v1/identities/{uuid}/assignments"),
                Some(json!({ "position_id": position })),
            )
            .await,
            403,
            &format!("{uuid} gets {position}"),
        );
    }
    // The manager still holds the role and can act on the agent.
    assert!(rbac::current_roles(&env.db, manager_uuid, env.now())
        .await
        .unwrap()
        .iter()
        .any(|r| r.person_roleid == ram_role));
    let (status, body, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities/950000000002/suspend",
        Some(json!({ "reason": "left the RA team" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_tac_needs_the_card_to_be_gone_and_is_one_at_a_time() {
    let Ra { env, agent, .. } = setup().await;
    let nurse = "950000000003";
    let tac = |n: &str| {
        let c = env
            .pki
            .card_sub
            .card_cert(&CardSpec::valid(
                "959000000002",
                &format!("TAC_{n}"),
                env.now(),
            ))
            .unwrap();
        json!({ "certificate_pem": c.cert_pem, "tac_name": format!("TAC {n}"), "reason": "card at home", "hours": 8 })
    };
    photo_on_record(&env, nurse).await;
    let issue = format!("/admin/api/v1/identities/{nurse}/tacs");
    let p = assert_problem(
        call(&env, Some(&agent), "POST", &issue, Some(tac("0002"))).await,
        409,
        "while the card works",
    );
    assert!(p["detail"].as_str().unwrap().contains("smartcard"), "{p}");

    let (_, listed, _) = call(
        &env,
        Some(&agent),
        "GET",
        &format!("/admin/api/v1/identities/{nurse}/authenticators"),
        None,
    )
    .await;
    let card_id = listed["authenticators"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        &format!("/admin/api/v1/identities/{nurse}/authenticators/{card_id}/revoke"),
        None,
    )
    .await;
    assert_eq!(status, 200, "the card is reported lost");
    let (status, issued, _) = call(&env, Some(&agent), "POST", &issue, Some(tac("0003"))).await;
    assert_eq!(status, 201, "{issued}");
    let p = assert_problem(
        call(&env, Some(&agent), "POST", &issue, Some(tac("0004"))).await,
        409,
        "a second TAC",
    );
    assert!(p["detail"].as_str().unwrap().contains("TAC"), "{p}");
}

#[tokio::test]
async fn ra_work_stays_inside_the_callers_organisation() {
    let Ra {
        env,
        manager,
        nurse_position,
        ..
    } = setup().await;
    let rz8_nurse = position_at(&env, "RZ8", "rz8-nurse", "R8000", &[]).await;
    let (_, rz8_roles) = holder(&env, "950000000031", &rz8_nurse).await;

    // An RZ9 manager gives an RZ8 position, creates one, and acts on RZ8 staff: all refused.
    let assign_rz8 = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities/950000000003/assignments",
        Some(json!({ "position_id": rz8_nurse })),
    )
    .await;
    assert_problem(assign_rz8, 403, "an RZ8 position");
    let create_rz8 = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/positions",
        Some(json!({ "org_code": "RZ8", "name": "Planted", "approved_by": "nobody",
                     "profiles": [{ "org_code": "RZ8", "job_role": "R8000", "activities": [], "workgroups": [] }] })),
    )
    .await;
    assert_problem(create_rz8, 403, "a position at RZ8");
    for (method, path, body) in [
        (
            "POST",
            "/admin/api/v1/identities/950000000031/suspend".to_string(),
            Some(json!({ "reason": "not yours" })),
        ),
        (
            "POST",
            format!("/admin/api/v1/assignments/{}/end", rz8_roles[0]),
            None,
        ),
        (
            "GET",
            "/admin/api/v1/identities/950000000031".to_string(),
            None,
        ),
    ] {
        assert_problem(
            call(&env, Some(&manager), method, &path, body).await,
            403,
            &path,
        );
    }
    // An access request for another organisation's position is refused, and the queue shows
    // only the caller's organisation.
    assert_problem(
        call(
            &env,
            Some(&manager),
            "POST",
            "/admin/api/v1/access-requests",
            Some(json!({ "uuid": "950000000003", "position_id": rz8_nurse, "reason": "cover" })),
        )
        .await,
        403,
        "a request for an RZ8 position",
    );
    let rz8_manager_position = position_at(&env, "RZ8", "rz8-ram", "R5080", &[]).await;
    let (rz8_card, _) = holder(&env, "950000000032", &rz8_manager_position).await;
    let tool = env.admin_client().await;
    let rz8_manager = token_at(&env, &rz8_card, &tool, ADMIN_SCOPES).await;
    let (status, _, _) = call(
        &env,
        Some(&rz8_manager),
        "POST",
        "/admin/api/v1/access-requests",
        Some(json!({ "uuid": "950000000031", "position_id": rz8_nurse, "reason": "extra shift" })),
    )
    .await;
    assert_eq!(status, 201);
    let (_, queue, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/access-requests",
        None,
    )
    .await;
    assert_eq!(queue["requests"], json!([]), "RZ8's queue is not RZ9's");
    let (_, queue, _) = call(
        &env,
        Some(&rz8_manager),
        "GET",
        "/admin/api/v1/access-requests",
        None,
    )
    .await;
    assert_eq!(queue["requests"].as_array().unwrap().len(), 1);

    // Within RZ9 the same manager's work goes on.
    let (status, body, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities/950000000003/assignments",
        Some(json!({ "position_id": nurse_position })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn wildcards_do_not_count_towards_the_search_minimum_and_details_need_the_right_role() {
    let Ra {
        env,
        agent,
        manager,
        ..
    } = setup().await;
    for q in ["__", "%%", "_%", "a_", "**"] {
        let url = format!("/admin/api/v1/identities?q={}", urlencode(q));
        assert_problem(call(&env, Some(&agent), "GET", &url, None).await, 400, q);
    }
    let (status, found, _) = call(
        &env,
        Some(&agent),
        "GET",
        "/admin/api/v1/identities?q=9500",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(!found["identities"].as_array().unwrap().is_empty());

    // A Local Smartcard Administrator sees the record, not the date of birth or NI number.
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "PATCH",
        "/admin/api/v1/identities/950000000003",
        Some(json!({ "date_of_birth": "1980-02-29", "ni_number": "AB123456C" })),
    )
    .await;
    assert_eq!(status, 200);
    let lsa_position = position_at(&env, "RZ9", "ward-clerk", "R8000", &[]).await;
    let (lsa_card, _) = holder(&env, "950000000041", &lsa_position).await;
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities/950000000041/ra-roles",
        Some(json!({ "role": "local_smartcard_administrator", "evidence": "minutes 12/26" })),
    )
    .await;
    assert_eq!(status, 201);
    let tool = env.admin_client().await;
    let lsa = token_at(&env, &lsa_card, &tool, ADMIN_SCOPES).await;
    let (status, seen, _) = call(
        &env,
        Some(&lsa),
        "GET",
        "/admin/api/v1/identities/950000000003",
        None,
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert!(seen.get("personal_details").is_none(), "{seen}");
    let (_, seen, _) = call(
        &env,
        Some(&agent),
        "GET",
        "/admin/api/v1/identities/950000000003",
        None,
    )
    .await;
    assert_eq!(seen["personal_details"]["ni_number"], "AB123456C");
    // Searching by date of birth: for those who may see it, not for the LSA.
    let by_birth = "/admin/api/v1/identities?q=1980-02-29";
    let (status, found, _) = call(&env, Some(&agent), "GET", by_birth, None).await;
    assert_eq!(status, 200);
    assert_eq!(found["identities"][0]["uuid"], "950000000003", "{found}");
    assert_problem(
        call(&env, Some(&lsa), "GET", by_birth, None).await,
        403,
        "an LSA does not search by date of birth",
    );
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn an_invitation_reaches_the_person_once_and_never_the_ra() {
    let Ra { env, agent, .. } = setup().await;
    let (status, created, _) = call(
        &env,
        Some(&agent),
        "POST",
        "/admin/api/v1/identities/950000000003/authenticator-invitations",
        None,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(
        created.get("invitation").is_none() && created.get("url").is_none(),
        "the RA never sees the code: {created}"
    );
    let handover = created["handover_url"].as_str().unwrap().to_string();
    // Opening the link (or a link preview fetching it) shows a button, not the code.
    let page = env
        .http()
        .get(&handover)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Show my invitation") && !page.contains("invitation="),
        "{page}"
    );
    let h = query_param(&handover, "handover").unwrap();
    let shown = env
        .http()
        .post(env.endpoint("/webauthn/invitation"))
        .form(&[("handover", h.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 200);
    let page = shown.text().await.unwrap();
    let code = page
        .split("<code>")
        .nth(1)
        .and_then(|c| c.split("</code>").next())
        .unwrap()
        .to_string();
    assert!(page.contains(&format!("invitation={code}")), "{page}");
    // The registration page opens with it; the handover does not open twice.
    let register = env
        .http()
        .get(env.endpoint(&format!("/webauthn/register?invitation={code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 200);
    let again = env
        .http()
        .post(env.endpoint("/webauthn/invitation"))
        .form(&[("handover", h.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);
    assert!(!again.text().await.unwrap().contains(&code));
    let kinds: Vec<String> = audit_kinds(&env, 20).await;
    assert!(kinds.contains(&"authenticator.invitation_handed_over".to_string()));
}

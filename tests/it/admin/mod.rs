//! The registration-authority API: who may do what (RA Manager, RA Agent, others refused with
//! 403 problem details), separation of duties, and the effects of each operation.

use careid::domain::rbac;
use careid::pki::CardSpec;
use serde_json::{json, Value};

use crate::helpers::*;

mod access_requests;
mod attacks;
mod audit_trail;
mod personal_details;
mod ra_roles_and_tacs;

const SAMPLE: &str = include_str!("../../../config/rbac-sample.json");

/// The scopes an RA tool asks for.
const ADMIN_SCOPES: &str = "openid selectedrole careid:admin";

/// A user with a card holding one position; returns an access token from a sign-in to an admin
/// client with `selectedrole` and `careid:admin` (one role: selected without a page).
async fn staff_token(env: &TestEnv, uuid: &str, position_id: &str) -> String {
    let card = env.user_with_card(uuid).await;
    rbac::assign_position(
        &env.db,
        uuid,
        position_id,
        env.now() - 60,
        None,
        "test",
        env.now(),
    )
    .await
    .unwrap();
    let client = env.admin_client().await;
    let tokens = env
        .tokens_in(&env.browser(Some(&card)), &client, ADMIN_SCOPES)
        .await;
    tokens["access_token"].as_str().unwrap().to_string()
}

pub(super) struct Ra {
    env: TestEnv,
    manager: String,
    agent: String,
    nurse: String,
    nurse_position: String,
}

pub(super) async fn setup() -> Ra {
    let env = TestEnv::start().await;
    rbac::import(&env.db, SAMPLE, "test", env.now())
        .await
        .unwrap();
    let ram = env
        .db
        .position_by_name("RZ9", "Registration Authority Manager")
        .await
        .unwrap()
        .unwrap();
    let raa = position_at_rz9(&env, "ra-agent", "RA Agent", "R5090").await;
    let nurse_position = env
        .db
        .position_by_name("RZ9", "Staff Nurse - Example Ward 7")
        .await
        .unwrap()
        .unwrap();
    let manager = staff_token(&env, "950000000001", &ram).await;
    let agent = staff_token(&env, "950000000002", &raa).await;
    let nurse = staff_token(&env, "950000000003", &nurse_position).await;
    Ra {
        env,
        manager,
        agent,
        nurse,
        nurse_position,
    }
}

pub(super) async fn call(
    env: &TestEnv,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let url = format!("https://localhost:{}{path}", env.server.main_addr.port());
    let mut r = match method {
        "GET" => env.http().get(url),
        "PATCH" => env.http().patch(url),
        _ => env.http().post(url),
    };
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, resp.json().await.unwrap_or(Value::Null), ctype)
}

#[tokio::test]
async fn an_ra_manager_registers_a_new_starter_end_to_end() {
    let Ra {
        env,
        manager,
        nurse_position,
        ..
    } = setup().await;
    let (status, created, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities",
        Some(
            json!({ "given_name": "Nia", "family_name": "Starter", "email": "nia@example.nhs.uk" }),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let uuid = created["uuid"].as_str().unwrap().to_string();
    assert!(uuid.len() == 12 && uuid.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(created["id_assurance_level"], 0, "not verified yet");

    let card = env
        .pki
        .card_sub
        .card_cert(&CardSpec::valid(&uuid, "Starter_Nia", env.now()))
        .unwrap();
    let (status, bound, _) = call(
        &env,
        Some(&manager),
        "POST",
        &format!("/admin/api/v1/identities/{uuid}/smartcards"),
        Some(json!({ "certificate_pem": card.cert_pem })),
    )
    .await;
    assert_eq!(status, 201, "{bound}");
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        &format!("/admin/api/v1/identities/{uuid}/smartcards"),
        Some(json!({ "certificate_pem": card.cert_pem })),
    )
    .await;
    assert_eq!(status, 409, "a card binds once");
    let (status, assigned, _) = call(
        &env,
        Some(&manager),
        "POST",
        &format!("/admin/api/v1/identities/{uuid}/assignments"),
        Some(json!({ "position_id": nurse_position })),
    )
    .await;
    assert_eq!(status, 201, "{assigned}");

    // The new starter signs in with the card and gets the role.
    env.db
        .record_terms_acceptance(&uuid, "2026-11", env.now())
        .await
        .unwrap();
    let client = env.confidential_client().await;
    let tokens = env
        .tokens_in(
            &env.browser(Some(&card)),
            &client,
            "openid nationalrbacaccess",
        )
        .await;
    let info = userinfo(&env, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        info["nhsid_nrbac_roles"][0]["person_roleid"],
        assigned["person_roleids"][0]
    );

    let (_, shown, _) = call(
        &env,
        Some(&manager),
        "GET",
        &format!("/admin/api/v1/identities/{uuid}"),
        None,
    )
    .await;
    assert_eq!(shown["roles"].as_array().unwrap().len(), 1);
    let (_, found, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/identities?q=starter",
        None,
    )
    .await;
    assert!(found["identities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["uuid"] == uuid.as_str()));
    let (status, audit, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/audit?limit=50",
        None,
    )
    .await;
    assert_eq!(status, 200);
    for kind in [
        "admin.identity_created",
        "admin.smartcard_bound",
        "admin.assignment_created",
    ] {
        assert!(
            audit["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == kind && e["actor"] == "950000000001"),
            "{kind} audited with the manager as actor"
        );
    }
}

#[tokio::test]
async fn each_operation_refuses_callers_without_the_ra_role_it_needs() {
    let Ra {
        env,
        manager,
        agent,
        nurse,
        nurse_position,
    } = setup().await;
    let target = "950000000003";
    let ops: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/admin/api/v1/identities?q=user".into(), None),
        (
            "POST",
            "/admin/api/v1/identities".into(),
            Some(json!({ "given_name": "A", "family_name": "B" })),
        ),
        ("GET", format!("/admin/api/v1/identities/{target}"), None),
        (
            "POST",
            format!("/admin/api/v1/identities/{target}/assignments"),
            Some(json!({ "position_id": nurse_position })),
        ),
        (
            "POST",
            format!("/admin/api/v1/identities/{target}/suspend"),
            Some(json!({ "reason": "test" })),
        ),
    ];
    for (method, path, body) in &ops {
        let (status, problem, ctype) = call(&env, Some(&nurse), method, path, body.clone()).await;
        assert_eq!(status, 403, "a nurse may not {method} {path}");
        assert_eq!(ctype, "application/problem+json");
        assert_eq!(
            (problem["status"].clone(), problem["title"].clone()),
            (json!(403), json!("Not allowed"))
        );
        let (status, _, _) = call(&env, None, method, path, body.clone()).await;
        assert_eq!(status, 401, "no token: {method} {path}");
    }
    for (method, path, body) in &ops[..4] {
        let (status, v, _) = call(&env, Some(&agent), method, path, body.clone()).await;
        assert!(
            status == 200 || status == 201,
            "an RA Agent may {method} {path}: {v}"
        );
    }
    let (status, _, _) = call(&env, Some(&agent), "GET", "/admin/api/v1/audit", None).await;
    assert_eq!(status, 403, "the audit trail is for RA Managers");
    let (status, _, _) = call(&env, Some(&manager), "GET", "/admin/api/v1/audit", None).await;
    assert_eq!(status, 200);
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/identities/000000000000",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, problem, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities",
        Some(json!({ "given_name": "A", "surname": "B" })),
    )
    .await;
    assert_eq!(
        (status, problem["title"].as_str()),
        (400, Some("Invalid request")),
        "unknown fields are refused"
    );
    let (status, _, _) = call(
        &env,
        Some("not-a-token"),
        "GET",
        "/admin/api/v1/identities?q=ab",
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn nobody_acts_on_their_own_identity() {
    let Ra {
        env,
        manager,
        nurse_position,
        ..
    } = setup().await;
    let me = "950000000001";
    let (status, problem, _) = call(
        &env,
        Some(&manager),
        "POST",
        &format!("/admin/api/v1/identities/{me}/assignments"),
        Some(json!({ "position_id": nurse_position })),
    )
    .await;
    assert_eq!(status, 403, "no self-assignment: {problem}");
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        &format!("/admin/api/v1/identities/{me}/suspend"),
        Some(json!({ "reason": "test" })),
    )
    .await;
    assert_eq!(status, 403);
    let card = env
        .pki
        .card_sub
        .card_cert(&CardSpec::valid(me, "Spare", env.now()))
        .unwrap();
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        &format!("/admin/api/v1/identities/{me}/smartcards"),
        Some(json!({ "certificate_pem": card.cert_pem })),
    )
    .await;
    assert_eq!(status, 403, "no issuing cards to oneself");
}

#[tokio::test]
async fn suspension_ends_the_users_sessions_and_tokens_at_once() {
    let Ra {
        env,
        manager,
        nurse,
        ..
    } = setup().await;
    assert_eq!(
        env.http()
            .get(env.endpoint("/userinfo"))
            .bearer_auth(&nurse)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities/950000000003/suspend",
        Some(json!({ "reason": "left the trust" })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        env.http()
            .get(env.endpoint("/userinfo"))
            .bearer_auth(&nurse)
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "the token dies with the suspension"
    );
    let sessions = env.db.open_sessions_of_user("950000000003").await.unwrap();
    assert!(sessions.is_empty(), "every session ended");
    let (_, shown, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/identities/950000000003",
        None,
    )
    .await;
    assert_eq!(shown["status"], "suspended");
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities/950000000003/reinstate",
        Some(json!({ "reason": "returned" })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/identities/950000000003/suspend",
        Some(json!({ "reason": "" })),
    )
    .await;
    assert_eq!(status, 400, "a reason is required");
}

#[tokio::test]
async fn the_openapi_document_describes_every_served_operation() {
    let env = TestEnv::start().await;
    let base = format!("https://localhost:{}", env.server.main_addr.port());
    let response = env
        .http()
        .get(format!("{base}/admin/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths", paths.len());
    // A relying party's token for a person (not an admin client's) replayed at any operation.
    let card = env.user_with_card("950000000099").await;
    let rp = env.confidential_client().await;
    let replayed = env
        .tokens_in(&env.browser(Some(&card)), &rp, "openid")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Every documented operation is served by that method at that path: without a token it is
    // refused as the document says (401 problem details), not 404 or 405; with a relying
    // party's token, 403.
    let mut checked = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{uuid}", "950000000001")
            .replace("{name}", "tacs-issued")
            .replace(['{', '}'], "");
        for method in ["get", "post", "patch"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
            let response = env
                .http()
                .request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{base}{concrete}"),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{method} {path} is served");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{method} {path}"
            );
            let response = env
                .http()
                .request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{base}{concrete}"),
                )
                .bearer_auth(&replayed)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                403,
                "{method} {path}: a relying party's token"
            );
            checked += 1;
        }
    }
    assert!(checked >= 25, "{checked} operations");
    // And what is not documented is not served.
    let response = env
        .http()
        .post(format!("{base}/admin/api/v1/access-requests/x/escalate"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn bootstrap_makes_the_first_ra_manager_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    let pki = std::sync::Arc::new(Pki::new(careid::clock::Clock::now(
        &careid::clock::SystemClock,
    )));
    let card = pki
        .card_sub
        .card_cert(&CardSpec::valid(
            "960000000001",
            "First_Manager",
            careid::clock::Clock::now(&careid::clock::SystemClock),
        ))
        .unwrap();
    std::fs::write(dir.path().join("card.pem"), &card.cert_pem).unwrap();
    // A new installation: migrate, then bootstrap.
    let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(dir.path())
        .env("CAREID_DATABASE__URL", &url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrated.status.success());
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_careid"))
            .current_dir(dir.path())
            .env("CAREID_DATABASE__URL", &url)
            .args([
                "admin",
                "bootstrap",
                "--given-name",
                "Fay",
                "--family-name",
                "First",
                "--email",
                "fay@example.nhs.uk",
                "--org-code",
                "RZ9",
                "--org-name",
                "EXAMPLE ACUTE HOSPITALS NHS TRUST",
                "--certificate",
                "card.pem",
            ])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("960000000001"),
        "the UUID comes from the card's subject"
    );
    let again = run();
    assert!(!again.status.success(), "bootstrap runs once");
    assert!(String::from_utf8_lossy(&again.stderr).contains("once"));

    // The bootstrapped manager signs in with the card and uses the admin API.
    let env = TestEnv::start_with(Options {
        database_url: Some(url),
        pki: Some(pki),
        ..Default::default()
    })
    .await;
    env.db
        .record_terms_acceptance("960000000001", "2026-11", env.now())
        .await
        .unwrap();
    let client = env.admin_client().await;
    let tokens = env
        .tokens_in(&env.browser(Some(&card)), &client, ADMIN_SCOPES)
        .await;
    let (status, audit, _) = call(
        &env,
        tokens["access_token"].as_str(),
        "GET",
        "/admin/api/v1/audit",
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    assert!(audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "admin.bootstrap"));
}

#[tokio::test]
async fn identity_checks_details_and_positions_follow_the_rules() {
    let Ra {
        env,
        manager,
        agent,
        ..
    } = setup().await;
    let (_, created, _) = call(
        &env,
        Some(&agent),
        "POST",
        "/admin/api/v1/identities",
        Some(json!({ "given_name": "Oli", "family_name": "Locum" })),
    )
    .await;
    let uuid = created["uuid"].as_str().unwrap().to_string();
    let docs = json!([
        { "kind": "passport", "photographic": true, "reference_last4": "1234" },
        { "kind": "utility bill" },
        { "kind": "birth certificate" }
    ]);
    let path = format!("/admin/api/v1/identities/{uuid}/verify");
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        &path,
        Some(json!({ "level": 3, "documents": [{ "kind": "passport", "photographic": true }] })),
    )
    .await;
    assert_eq!(status, 400, "level 3 needs three documents");
    let (status, _, _) = call(&env, Some(&agent), "POST", &path, Some(json!({ "level": 3, "documents": [{ "kind": "passport", "reference_last4": "123456789" }, { "kind": "a" }, { "kind": "b" }] }))).await;
    assert_eq!(
        status, 400,
        "no full document numbers, and one must be photographic"
    );
    let (status, v, _) = call(
        &env,
        Some(&agent),
        "POST",
        &path,
        Some(json!({ "level": 3, "documents": docs })),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        "/admin/api/v1/identities/950000000002/verify",
        Some(json!({ "level": 3, "documents": docs })),
    )
    .await;
    assert_eq!(status, 403, "nobody checks their own identity");

    let (status, refused, _) = call(
        &env,
        Some(&agent),
        "PATCH",
        &format!("/admin/api/v1/identities/{uuid}"),
        Some(json!({ "family_name": "Locum-Smith", "email": "oli@example.nhs.uk" })),
    )
    .await;
    assert_eq!(status, 400, "a name change needs its evidence: {refused}");
    assert!(refused["detail"]
        .as_str()
        .unwrap()
        .contains("name_change_evidence"));
    let (status, changed, _) = call(
        &env,
        Some(&agent),
        "PATCH",
        &format!("/admin/api/v1/identities/{uuid}"),
        Some(json!({ "family_name": "Locum-Smith", "email": "oli@example.nhs.uk", "name_change_evidence": "marriage certificate" })),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    let (_, shown, _) = call(
        &env,
        Some(&manager),
        "GET",
        &format!("/admin/api/v1/identities/{uuid}"),
        None,
    )
    .await;
    assert_eq!(
        (
            shown["family_name"].clone(),
            shown["id_assurance_level"].clone()
        ),
        (json!("Locum-Smith"), json!(3))
    );
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "PATCH",
        &format!("/admin/api/v1/identities/{uuid}"),
        Some(json!({ "given_name": " " })),
    )
    .await;
    assert_eq!(status, 400);

    let position = json!({ "org_code": "RZ9", "name": "Ward 9 Locum Nurse", "approved_by": "IG Steering Group 2026-11-20",
                           "profiles": [{ "org_code": "RZ9", "job_role": "R8001", "activities": ["B0820"], "workgroups": [] }] });
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        "/admin/api/v1/positions",
        Some(position.clone()),
    )
    .await;
    assert_eq!(status, 403, "RA Agents do not create positions");
    let (status, created_position, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/positions",
        Some(position.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created_position}");
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/positions",
        Some(position),
    )
    .await;
    assert_eq!(status, 409, "one position of a name per organisation");
    let (status, _, _) = call(&env, Some(&manager), "POST", "/admin/api/v1/positions", Some(json!({ "org_code": "RZ9", "name": "Bad", "approved_by": "IG", "profiles": [{ "org_code": "RZ9", "job_role": "R0000" }] }))).await;
    assert_eq!(status, 400, "unknown job roles are refused");
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        &format!("/admin/api/v1/identities/{uuid}/assignments"),
        Some(json!({ "position_id": created_position["id"] })),
    )
    .await;
    assert_eq!(status, 201, "the new position can be assigned");
    let (_, audit, _) = call(&env, Some(&manager), "GET", "/admin/api/v1/audit", None).await;
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "admin.identity_verified",
        "admin.identity_updated",
        "admin.position_created",
    ] {
        assert!(kinds.contains(&kind), "{kind} audited");
    }
}

#[tokio::test]
async fn reports_count_current_users_positions_and_authenticators() {
    let Ra {
        env,
        manager,
        agent,
        ..
    } = setup().await;
    let (status, report, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/reports/active-users-by-org",
        None,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    let rows = report["rows"].as_array().unwrap();
    let at = |org: &str| {
        rows.iter()
            .find(|r| r["org_code"] == org)
            .map(|r| r["active_users"].as_i64().unwrap())
    };
    assert_eq!(
        at("RZ9"),
        Some(2),
        "the RA Manager and the RA Agent at RZ9: {report}"
    );
    assert_eq!(
        at("RZ9EX"),
        Some(1),
        "the nurse's profile is at the RZ9EX site"
    );
    let (_, positions, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/reports/positions-in-use",
        None,
    )
    .await;
    assert_eq!(positions["rows"].as_array().unwrap().len(), 3);
    let (_, cards, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/reports/authenticators-by-type",
        None,
    )
    .await;
    assert_eq!(
        cards["rows"],
        json!([{ "kind": "smartcard", "status": "active", "count": 3 }])
    );
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "GET",
        "/admin/api/v1/reports/positions-in-use",
        None,
    )
    .await;
    assert_eq!(status, 403, "reports are for RA Managers");
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "GET",
        "/admin/api/v1/reports/nonsense",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The same report from the command line, on the same database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(env.dir.path())
        .env("CAREID_DATABASE__URL", &env.database_url)
        .args(["report", "authenticators-by-type"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["rows"], cards["rows"]);
}

#[tokio::test]
async fn ra_staff_invite_list_and_revoke_authenticators_for_others_only() {
    let Ra {
        env, agent, nurse, ..
    } = setup().await;
    let invite = "/admin/api/v1/identities/950000000003/authenticator-invitations";
    // A nurse is not RA staff; an agent may not invite themselves.
    let (status, problem, ctype) = call(&env, Some(&nurse), "POST", invite, None).await;
    assert_eq!(
        (status, ctype.as_str()),
        (403, "application/problem+json"),
        "{problem}"
    );
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        "/admin/api/v1/identities/950000000002/authenticator-invitations",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        "/admin/api/v1/identities/959999999999/authenticator-invitations",
        None,
    )
    .await;
    assert_eq!(status, 404);

    let (status, created, _) = call(&env, Some(&agent), "POST", invite, None).await;
    assert_eq!(status, 201, "{created}");
    let handover = created["handover_url"].as_str().unwrap();
    assert!(
        handover.starts_with(&env.endpoint("/webauthn/invitation?handover=")),
        "{handover}"
    );
    assert_eq!(created["expires_at"], env.now() + 3600);
    // Handed over, the link opens the registration page with the code filled in.
    let handover = query_param(handover, "handover").unwrap();
    let (code, _) = env
        .server
        .provider
        .hand_over_invitation(&handover)
        .await
        .unwrap()
        .unwrap();
    let page = env
        .http()
        .get(env.endpoint(&format!("/webauthn/register?invitation={code}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&code));

    let list = "/admin/api/v1/identities/950000000003/authenticators";
    let (status, listed, _) = call(&env, Some(&agent), "GET", list, None).await;
    assert_eq!(status, 200);
    let card = listed["authenticators"][0].clone();
    assert_eq!(
        (card["kind"].as_str(), card["status"].as_str()),
        (Some("smartcard"), Some("active"))
    );
    let (status, _, _) = call(&env, Some(&nurse), "GET", list, None).await;
    assert_eq!(status, 403);

    let revoke = format!("{list}/{}/revoke", card["id"].as_str().unwrap());
    let (status, revoked, _) = call(&env, Some(&agent), "POST", &revoke, None).await;
    assert_eq!((status, revoked["status"].as_str()), (200, Some("revoked")));
    let (status, _, _) = call(
        &env,
        Some(&agent),
        "POST",
        &format!("{list}/no-such-id/revoke"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let events: Vec<String> = audit_kinds(&env, 20).await;
    assert!(
        events.contains(&"admin.authenticator_invited".to_string()),
        "{events:?}"
    );
    assert!(
        events.contains(&"admin.smartcard_revoked".to_string()),
        "{events:?}"
    );
}

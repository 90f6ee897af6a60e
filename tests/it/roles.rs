//! National RBAC in tokens: positions assigned with dates become CIS2-shaped role claims, the
//! role picker sets `selected_roleid`, and users with many roles still get small tokens.

use careid::domain::rbac::{self, Position, Profile};
use serde_json::{json, Value};

use crate::helpers::*;

const SAMPLE: &str = include_str!("../../config/rbac-sample.json");

async fn import(env: &TestEnv) {
    rbac::import(&env.db, SAMPLE, "test", env.now())
        .await
        .unwrap();
}

async fn assign(
    env: &TestEnv,
    uuid: &str,
    org: &str,
    position: &str,
    starts: i64,
    ends: Option<i64>,
) -> Vec<String> {
    let id = env
        .db
        .position_by_name(org, position)
        .await
        .unwrap()
        .expect("sample position");
    rbac::assign_position(&env.db, uuid, &id, starts, ends, "test", env.now())
        .await
        .unwrap()
}

const NURSE: (&str, &str) = ("RZ9", "Staff Nurse - Example Ward 7");
const IMMS: (&str, &str) = ("RZ8", "Immunisation Nurse (inter-organisation)");

async fn tokens_for(env: &TestEnv, card: &careid::pki::Issued, scope: &str) -> Value {
    env.tokens_in(
        &env.browser(Some(card)),
        &env.confidential_client().await,
        scope,
    )
    .await
}

async fn userinfo(env: &TestEnv, access: &str) -> Value {
    env.http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn role_claims_have_cis2_shapes_for_roles_at_two_organisations() {
    let env = TestEnv::start().await;
    import(&env).await;
    let card = env.user_with_card("920000000001").await;
    let now = env.now();
    let nurse = assign(&env, "920000000001", NURSE.0, NURSE.1, now - 60, None).await;
    let imms = assign(
        &env,
        "920000000001",
        IMMS.0,
        IMMS.1,
        now - 60,
        Some(now + 86400),
    )
    .await;
    let tokens = tokens_for(
        &env,
        &card,
        "openid profile nationalrbacaccess associatedorgs",
    )
    .await;
    let id_claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert!(
        id_claims.get("nhsid_nrbac_roles").is_none(),
        "role lists stay out of the ID token"
    );
    assert!(
        id_claims.get("selected_roleid").is_none(),
        "no selectedrole scope, no selected_roleid"
    );

    let info = userinfo(&env, tokens["access_token"].as_str().unwrap()).await;
    let roles = info["nhsid_nrbac_roles"].as_array().unwrap();
    assert_eq!(roles.len(), 2);
    let by_id = |id: &str| {
        roles
            .iter()
            .find(|r| r["person_roleid"] == id)
            .unwrap()
            .clone()
    };
    let n = by_id(&nurse[0]);
    assert_eq!(n["org_code"], "RZ9EX");
    assert_eq!(n["role_code"], "S8000:G8000:R8001");
    assert_eq!(
        n["role_name"],
        "\"Clinical\":\"Clinical Provision\":\"Nurse Access Role\""
    );
    assert_eq!(n["activity_codes"], json!(["B0820", "B0825", "B0380"]));
    assert_eq!(
        n["activities"],
        json!([
            "View Patient Demographics",
            "Amend Patient Demographics",
            "Perform Detailed Health Record"
        ])
    );
    assert_eq!(n["workgroups_codes"], json!(["501234567892"]));
    assert_eq!(n["workgroups"], json!(["Example Ward 7 Team"]));
    assert_eq!(
        (n["aow"].clone(), n["aow_codes"].clone()),
        (json!([]), json!([]))
    );
    let i = by_id(&imms[0]);
    assert_eq!(
        (i["org_code"].clone(), i["workgroups"].clone()),
        (json!("RZ8"), json!(["schoolagedimmunisations"]))
    );
    for r in roles {
        for id in ["person_orgid", "person_roleid"] {
            let v = r[id].as_str().unwrap();
            assert!(
                v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()),
                "{id} is 12 digits: {v}"
            );
        }
    }
    assert_ne!(
        n["person_orgid"], i["person_orgid"],
        "one membership per organisation"
    );
    let mut orgs = info["nhsid_user_orgs"].as_array().unwrap().clone();
    orgs.sort_by_key(|o| o["org_code"].as_str().unwrap().to_string());
    assert_eq!(
        orgs,
        vec![
            json!({ "org_code": "RZ8", "org_name": "EXAMPLE HEALTH AND CARE NHS TRUST" }),
            json!({ "org_code": "RZ9EX", "org_name": "EXAMPLE GENERAL HOSPITAL" })
        ]
    );
}

#[tokio::test]
async fn assignments_give_access_only_within_their_dates() {
    let env = TestEnv::start().await;
    import(&env).await;
    let card = env.user_with_card("920000000002").await;
    let now = env.now();
    assign(&env, "920000000002", NURSE.0, NURSE.1, now + 3600, None).await;
    let ended = assign(
        &env,
        "920000000002",
        IMMS.0,
        IMMS.1,
        now - 7200,
        Some(now - 1),
    )
    .await;
    let current = assign(
        &env,
        "920000000002",
        IMMS.0,
        IMMS.1,
        now - 10,
        Some(now + 600),
    )
    .await;
    let tokens = tokens_for(&env, &card, "openid nationalrbacaccess").await;
    let info = userinfo(&env, tokens["access_token"].as_str().unwrap()).await;
    let ids: Vec<&str> = info["nhsid_nrbac_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["person_roleid"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![current[0].as_str()],
        "not the future one, not the ended one ({ended:?})"
    );
    env.clock.advance(601);
    let later = tokens_for(&env, &card, "openid nationalrbacaccess").await;
    let info = userinfo(&env, later["access_token"].as_str().unwrap()).await;
    assert_eq!(
        info["nhsid_nrbac_roles"],
        json!([]),
        "after its end date the role is gone, and the list is still present"
    );
}

#[tokio::test]
async fn the_role_picker_sets_selected_roleid_and_is_reused_until_changedrole() {
    let env = TestEnv::start().await;
    import(&env).await;
    let card = env.user_with_card("920000000003").await;
    let now = env.now();
    assign(&env, "920000000003", NURSE.0, NURSE.1, now - 60, None).await;
    let imms = assign(&env, "920000000003", IMMS.0, IMMS.1, now - 60, None).await;
    let client = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let browser = env.browser(Some(&card));
    let SignIn::Page(200, page) = browser
        .sign_in(&env.authorize_url(
            &id,
            &[("scope", "openid selectedrole nationalrbacaccess")],
            true,
        ))
        .await
    else {
        panic!("the picker")
    };
    assert!(
        page.contains("Choose your role")
            && page.contains("<fieldset>")
            && page.contains("<legend>"),
        "{page}"
    );
    assert!(
        page.contains("Nurse Access Role") && page.contains("EXAMPLE HEALTH AND CARE NHS TRUST")
    );
    let field = |name: &str| {
        page.split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let (flow, csrf) = (field("flow"), field("csrf_token"));

    let forged = browser
        .client
        .post(env.endpoint("/role"))
        .form(&[
            ("flow", flow.as_str()),
            ("csrf_token", "forged"),
            ("person_roleid", imms[0].as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "CSRF token required");
    let not_mine = browser
        .client
        .post(env.endpoint("/role"))
        .form(&[
            ("flow", flow.as_str()),
            ("csrf_token", csrf.as_str()),
            ("person_roleid", "000000000000"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        not_mine.status(),
        200,
        "a role the user does not hold shows the picker again"
    );

    let chosen = browser
        .client
        .post(env.endpoint("/role"))
        .form(&[
            ("flow", flow.as_str()),
            ("csrf_token", csrf.as_str()),
            ("person_roleid", imms[0].as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(chosen.status().is_redirection());
    let tokens: Value = env
        .redeem(&client, &query_param(&location(&chosen), "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["selected_roleid"],
        imms[0].as_str()
    );
    let info = userinfo(&env, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info["selected_roleid"], imms[0].as_str());
    assert!(
        info["nhsid_nrbac_roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["person_roleid"] == info["selected_roleid"]),
        "RPs join selected_roleid to a role"
    );

    // Same session, selectedrole again: the choice is reused without a page.
    let again = browser
        .client
        .get(env.authorize_url(&id, &[("scope", "openid selectedrole")], true))
        .send()
        .await
        .unwrap();
    assert!(again.status().is_redirection(), "role reused");
    let tokens: Value = env
        .redeem(&client, &query_param(&location(&again), "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["selected_roleid"],
        imms[0].as_str()
    );
    // changedrole asks again.
    let change = browser
        .client
        .get(env.authorize_url(&id, &[("scope", "openid changedrole")], true))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), 200);
    assert!(change.text().await.unwrap().contains("Choose your role"));
}

#[tokio::test]
async fn one_role_is_chosen_without_asking_and_no_role_gets_a_clear_page() {
    let env = TestEnv::start().await;
    import(&env).await;
    let card = env.user_with_card("920000000004").await;
    let only = assign(&env, "920000000004", NURSE.0, NURSE.1, env.now() - 60, None).await;
    let tokens = tokens_for(&env, &card, "openid selectedrole").await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["selected_roleid"], only[0].as_str());
    assert_eq!(
        env.db
            .selected_role(claims["sid"].as_str().unwrap())
            .await
            .unwrap()
            .as_deref(),
        Some(only[0].as_str()),
        "the role chosen without asking is kept with the new session, for later sign-ins in it"
    );

    let none = env.user_with_card("920000000005").await;
    let client = env.confidential_client().await;
    let url = env.authorize_url(
        &client.client.metadata.client_id,
        &[("scope", "openid selectedrole")],
        true,
    );
    let SignIn::Page(status, page) = env.browser(Some(&none)).sign_in(&url).await else {
        panic!("no tokens without a role")
    };
    assert_eq!(status, 403);
    assert!(page.contains("You have no current role"));
    let plain = tokens_for(&env, &none, "openid nationalrbacaccess").await;
    assert_eq!(
        userinfo(&env, plain["access_token"].as_str().unwrap()).await["nhsid_nrbac_roles"],
        json!([])
    );
}

#[tokio::test]
async fn sixty_roles_still_fit_in_small_tokens() {
    let env = TestEnv::start().await;
    import(&env).await;
    let card = env.user_with_card("920000000006").await;
    let now = env.now();
    for i in 0..60 {
        let position = Position {
            id: format!("bulk-{i}"),
            org_code: "RZ9".into(),
            name: format!("Bulk position {i}"),
            esr_position: None,
            profiles: vec![Profile {
                org_code: "RZ9".into(),
                job_role: "R8001".into(),
                activities: vec!["B0820".into(), "B0825".into()],
                workgroups: vec!["501234567892".into()],
                areas_of_work: vec![],
            }],
        };
        let id = env.db.upsert_position(&position, now).await.unwrap();
        rbac::assign_position(&env.db, "920000000006", &id, now - 60, None, "test", now)
            .await
            .unwrap();
    }
    let client = env.confidential_client().await;
    let url = env.authorize_url(
        &client.client.metadata.client_id,
        &[(
            "scope",
            "openid profile selectedrole nationalrbacaccess associatedorgs",
        )],
        true,
    );
    let browser = env.browser(Some(&card));
    let SignIn::Page(200, page) = browser.sign_in(&url).await else {
        panic!("picker")
    };
    assert!(
        page.contains("Search your roles"),
        "more than five roles: a search box"
    );
    let field = |p: &str, name: &str| {
        p.split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let flow = field(&page, "flow");
    let filtered = browser
        .client
        .get(env.endpoint("/role"))
        .query(&[("flow", flow.as_str()), ("q", "no such role")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(filtered.contains("No role matches"));
    let chosen = browser
        .client
        .post(env.endpoint("/role"))
        .form(&[
            ("flow", flow.as_str()),
            ("csrf_token", field(&page, "csrf_token").as_str()),
            ("person_roleid", field(&page, "person_roleid").as_str()),
        ])
        .send()
        .await
        .unwrap();
    let tokens: Value = env
        .redeem(&client, &query_param(&location(&chosen), "code").unwrap())
        .await
        .json()
        .await
        .unwrap();
    let (id_token, access) = (
        tokens["id_token"].as_str().unwrap(),
        tokens["access_token"].as_str().unwrap(),
    );
    assert!(
        id_token.len() < 8192 && access.len() < 8192,
        "ID token {} bytes, access token {} bytes",
        id_token.len(),
        access.len()
    );
    assert_eq!(
        userinfo(&env, access).await["nhsid_nrbac_roles"]
            .as_array()
            .unwrap()
            .len(),
        60,
        "the bulky list is in userinfo"
    );
}

#[tokio::test]
async fn a_role_hint_preselects_the_named_role_but_the_person_still_chooses() {
    let env = TestEnv::start().await;
    import(&env).await;
    let card = env.user_with_card("920000000031").await;
    let now = env.now();
    let nurse = assign(&env, "920000000031", NURSE.0, NURSE.1, now - 60, None).await;
    let imms = assign(&env, "920000000031", IMMS.0, IMMS.1, now - 60, None).await;
    let ram = assign(
        &env,
        "920000000031",
        "RZ9",
        "Registration Authority Manager",
        now - 60,
        None,
    )
    .await;
    let client = env.confidential_client().await;
    let picker = |hint: &str| {
        let url = env.authorize_url(
            &client.client.metadata.client_id,
            &[("scope", "openid selectedrole"), ("role_hint", hint)],
            true,
        );
        let browser = env.browser(Some(&card));
        async move {
            match browser.sign_in(&url).await {
                SignIn::Page(200, html) => html,
                other => panic!("expected the role picker, got {other:?}"),
            }
        }
    };
    let checked = |html: &str| -> String {
        let at = html.find(" checked>").expect("one role is checked");
        let value_at = html[..at].rfind("value=\"").unwrap() + 7;
        html[value_at..at - 1].to_string()
    };
    // By person_roleid, or by job role code; one radio checked; an unknown hint changes nothing.
    let page = picker(&imms[0]).await;
    assert_eq!(checked(&page), imms[0]);
    assert_eq!(page.matches(" checked>").count(), 1);
    assert_eq!(checked(&picker("R5080").await), ram[0]);
    let unhinted = checked(&picker("no-such-role").await);
    assert!([&nurse[0], &imms[0], &ram[0]].contains(&&unhinted));
    assert_eq!(unhinted, checked(&picker("").await));
}

#[tokio::test]
async fn areas_of_work_appear_as_aow_and_aow_codes() {
    let env = TestEnv::start().await;
    import(&env).await;
    let card = env.user_with_card("920000000041").await;
    let phlebotomist = Position {
        id: "phleb".into(),
        org_code: "RZ9".into(),
        name: "Phlebotomist".into(),
        esr_position: None,
        profiles: vec![Profile {
            org_code: "RZ9".into(),
            job_role: "R8001".into(),
            activities: vec![],
            workgroups: vec![],
            areas_of_work: vec!["P0020:Q0300:T0640".into(), "P0020:Q0300:T0630".into()],
        }],
    };
    let id = env
        .db
        .upsert_position(&phlebotomist, env.now())
        .await
        .unwrap();
    rbac::assign_position(
        &env.db,
        "920000000041",
        &id,
        env.now() - 60,
        None,
        "test",
        env.now(),
    )
    .await
    .unwrap();
    let tokens = tokens_for(&env, &card, "openid nationalrbacaccess").await;
    let info = userinfo(&env, tokens["access_token"].as_str().unwrap()).await;
    let role = &info["nhsid_nrbac_roles"][0];
    assert_eq!(
        role["aow_codes"],
        json!(["P0020:Q0300:T0640", "P0020:Q0300:T0630"])
    );
    assert_eq!(
        role["aow"],
        json!([
            "\"Pathology\":\"Pathology\":\"Phlebotomy\"",
            "\"Pathology\":\"Pathology\":\"Pathology\""
        ])
    );
}

//! What HR changes do to sessions and tokens: a leaver loses access at once (back-channel
//! logout, refresh token dead, identity suspended), future-dated changes take effect when the
//! scheduler runs, contractors' access ends on its own, and two processes apply a person once.

use careid::domain::hr::apply::MapCache;
use careid::model::identity::UserStatus;

use super::*;

/// A relying party with refresh tokens and a back-channel logout endpoint.
async fn refreshing_rp(env: &TestEnv, backchannel: &LogoutReceiver) -> NewClient {
    env.client(ClientRequest {
        client_name: "ward app".into(),
        redirect_uris: vec![RP_REDIRECT.into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        backchannel_logout_uri: Some(backchannel.uri.clone()),
        ..Default::default()
    })
    .await
}

async fn refresh(env: &TestEnv, client: &NewClient, token: &str) -> u16 {
    env.http()
        .post(env.endpoint("/token"))
        .basic_auth(&client.client.metadata.client_id, client.secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_leaver_loses_access_at_once_everywhere() {
    let hr = setup().await;
    let card = hr.env.user_with_card("820000000001").await;
    hr.ok(vec![
        hr.link("l1", "L1", "820000000001", -100),
        hr.starter("l2", "L1", "NURSE-B5", -30 * DAY, -90),
    ])
    .await;
    let backchannel = LogoutReceiver::start(vec![]).await;
    let rp = refreshing_rp(&hr.env, &backchannel).await;
    let tokens = hr
        .env
        .tokens_in(&hr.env.browser(Some(&card)), &rp, "openid selectedrole")
        .await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(refresh(&hr.env, &rp, &refresh_token).await, 200);
    let tokens = hr
        .env
        .tokens_in(&hr.env.browser(Some(&card)), &rp, "openid selectedrole")
        .await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    let report = hr.ok(vec![hr.leaver("l3", "L1", 0, -10)]).await;
    assert_eq!(ids(&report, "applied"), vec!["l3"]);
    let logouts = backchannel.wait_for(1).await;
    assert!(!logouts.is_empty(), "the relying party is told at once");
    assert_eq!(jwt_claims(&logouts[0])["sub"], "820000000001");
    assert_eq!(
        refresh(&hr.env, &rp, &refresh_token).await,
        400,
        "the refresh token is dead"
    );
    assert!(hr.current_positions("820000000001").await.is_empty());
    let user = hr.env.db.user("820000000001").await.unwrap().unwrap();
    assert_eq!(
        user.status,
        UserStatus::Suspended,
        "no access left anywhere"
    );
    // A new sign-in fails too.
    let url = hr
        .env
        .authorize_url(&rp.client.metadata.client_id, &[], true);
    assert!(matches!(
        hr.env.browser(Some(&card)).sign_in(&url).await,
        SignIn::Page(403, _)
    ));
    assert!(audit_kinds(&hr.env, 40)
        .await
        .contains(&"hr.leaver_enforced".to_string()));

    // Re-hired later: the feed gives the identity back, with the new position only.
    hr.ok(vec![hr.starter("l4", "L1", "SISTER-B7", -5, -1)])
        .await;
    let user = hr.env.db.user("820000000001").await.unwrap().unwrap();
    assert_eq!(user.status, UserStatus::Active);
    assert_eq!(
        hr.current_positions("820000000001").await,
        vec![hr.sister.clone()]
    );
}

#[tokio::test]
async fn a_leaver_keeps_access_elsewhere_and_is_not_suspended() {
    let hr = setup().await;
    hr.env.user_with_card("820000000002").await;
    let elsewhere = hr
        .env
        .db
        .position_by_name("RZ9", "Contract Health Records Clerk")
        .await
        .unwrap()
        .unwrap();
    let rz8 = position_at(&hr.env, "RZ8", "rz8-clerk", "Clerk", "R8010").await;
    for p in [&elsewhere, &rz8] {
        rbac::assign_position(
            &hr.env.db,
            "820000000002",
            p,
            hr.env.now() - 60,
            None,
            "test",
            hr.env.now(),
        )
        .await
        .unwrap();
    }
    hr.ok(vec![
        hr.link("k1", "K1", "820000000002", -100),
        hr.starter("k2", "K1", "NURSE-B5", -DAY, -90),
        hr.leaver("k3", "K1", -1, -10),
    ])
    .await;
    assert_eq!(
        hr.current_positions("820000000002").await,
        vec![rz8],
        "every role at RZ9 ended (the RA's too); RZ8's stays"
    );
    let user = hr.env.db.user("820000000002").await.unwrap().unwrap();
    assert_eq!(user.status, UserStatus::Active);
}

#[tokio::test]
async fn future_dated_changes_take_effect_when_the_scheduler_runs() {
    let hr = setup().await;
    let card = hr.env.user_with_card("820000000003").await;
    hr.ok(vec![
        hr.link("f1", "F1", "820000000003", -100),
        hr.starter("f2", "F1", "NURSE-B5", -DAY, -90),
        hr.mover("f3", "F1", "SISTER-B7", 2 * DAY, -50),
        hr.leaver("f4", "F1", 5 * DAY, -10),
    ])
    .await;
    assert_eq!(
        hr.current_positions("820000000003").await,
        vec![hr.nurse.clone()]
    );
    let backchannel = LogoutReceiver::start(vec![]).await;
    let rp = refreshing_rp(&hr.env, &backchannel).await;
    hr.env
        .tokens_in(&hr.env.browser(Some(&card)), &rp, "openid selectedrole")
        .await;
    let provider = &hr.env.server.provider;

    hr.env.clock.advance(2 * DAY + 60);
    let done = provider.run_hr_schedule().await.unwrap();
    assert_eq!(
        hr.current_positions("820000000003").await,
        vec![hr.sister.clone()]
    );
    assert_eq!(done.assignments_ended, 1);
    assert_eq!(
        done.sessions_ended, 1,
        "the session acting as a nurse ended"
    );
    assert_eq!(backchannel.wait_for(1).await.len(), 1);
    let again = provider.run_hr_schedule().await.unwrap();
    assert_eq!(
        (again.assignments_ended, again.sessions_ended),
        (0, 0),
        "handled once"
    );

    // The leaving date comes: the scheduler takes away the rest.
    hr.env
        .tokens_in(&hr.env.browser(Some(&card)), &rp, "openid selectedrole")
        .await;
    hr.env.clock.advance(3 * DAY);
    let done = provider.run_hr_schedule().await.unwrap();
    assert_eq!(done.leavers, 1);
    assert!(hr.current_positions("820000000003").await.is_empty());
    assert_eq!(backchannel.wait_for(2).await.len(), 2);
    assert_eq!(
        hr.env
            .db
            .user("820000000003")
            .await
            .unwrap()
            .unwrap()
            .status,
        UserStatus::Suspended
    );
}

#[tokio::test]
async fn contractors_and_partner_staff_lose_access_at_the_end_of_their_term() {
    let hr = setup().await;
    hr.env.user("820000000004").await;
    hr.env.user("820000000005").await;
    let mut contractor = hr.starter("c2", "C1", "NURSE-B5", -60, -90);
    contractor["staff_kind"] = json!("contractor");
    let mut partner = hr.starter("c4", "C2", "NURSE-B5", -60, -90);
    partner["staff_kind"] = json!("inter_org");
    partner["ends_on"] = json!(at(&hr.env, 800 * DAY));
    hr.ok(vec![
        hr.link("c1", "C1", "820000000004", -100),
        contractor,
        hr.link("c3", "C2", "820000000005", -100),
        partner,
    ])
    .await;
    let ends = |v: Vec<(String, i64, Option<i64>)>| v[0].2.unwrap() - v[0].1;
    assert_eq!(ends(hr.all_assignments("820000000004").await), 91 * DAY);
    assert_eq!(
        ends(hr.all_assignments("820000000005").await),
        365 * DAY,
        "12 months at most"
    );
    hr.env.clock.advance(92 * DAY);
    assert!(hr.current_positions("820000000004").await.is_empty());
    let done = hr.env.server.provider.run_hr_schedule().await.unwrap();
    assert_eq!(done.assignments_ended, 1);
    assert!(audit_kinds(&hr.env, 10)
        .await
        .contains(&"assignment.expired".to_string()));
    assert_eq!(
        hr.current_positions("820000000005").await,
        vec![hr.nurse.clone()]
    );
}

#[tokio::test]
async fn two_processes_applying_one_person_write_it_once() {
    let hr = setup().await;
    let other = TestEnv::start_with(Options {
        database_url: Some(hr.env.database_url.clone()),
        pki: Some(hr.env.pki.clone()),
        issuer: Some(hr.env.issuer.clone()),
        ..Default::default()
    })
    .await;
    hr.env.user("820000000006").await;
    hr.ok(vec![hr.link("t1", "T1", "820000000006", -100)]).await;
    // Events recorded but not yet applied (as an import leaves them), then both processes apply.
    let raw = |e: Value| {
        let raw: careid::model::hr::RawEvent = serde_json::from_value(e).unwrap();
        careid::store::NewInboxEvent {
            recorded_at: careid::domain::hr::events::check(&raw).unwrap().recorded_at,
            digest: careid::domain::hr::events::digest(&raw),
            raw,
            source: "test".into(),
        }
    };
    let events = vec![raw(hr.starter("t2", "T1", "NURSE-B5", -60, -90))];
    hr.env
        .db
        .insert_hr_events(&events, hr.env.now())
        .await
        .unwrap();
    let (a, b) = (&hr.env.server.provider, &other.server.provider);
    let (maps_a, maps_b) = (MapCache::default(), MapCache::default());
    let runs = futures::future::join_all((0..6).map(|i| {
        let (p, m) = if i % 2 == 0 {
            (a, &maps_a)
        } else {
            (b, &maps_b)
        };
        p.apply_hr_person("RZ9", "T1", m)
    }))
    .await;
    for r in runs {
        r.unwrap();
    }
    assert_eq!(
        hr.all_assignments("820000000006").await.len(),
        1,
        "one assignment, not six"
    );
    // The same through the page-at-a-time path an import and the scheduler use.
    hr.env.user("820000000007").await;
    hr.ok(vec![hr.link("t3", "T2", "820000000007", -100)]).await;
    let events = vec![raw(hr.starter("t4", "T2", "NURSE-B5", -60, -90))];
    hr.env
        .db
        .insert_hr_events(&events, hr.env.now())
        .await
        .unwrap();
    let page = vec![("RZ9".to_string(), "T2".to_string())];
    let runs = futures::future::join_all((0..6).map(|i| {
        let (p, m) = if i % 2 == 0 {
            (a, &maps_a)
        } else {
            (b, &maps_b)
        };
        p.apply_hr_people(&page, m)
    }))
    .await;
    for r in runs {
        r.unwrap();
    }
    assert_eq!(hr.all_assignments("820000000007").await.len(), 1);
    let applied = audit_kinds(&hr.env, 50)
        .await
        .into_iter()
        .filter(|k| k == "hr.applied")
        .count();
    assert_eq!(applied, 4, "each link, then each starter once");
}

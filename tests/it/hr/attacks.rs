//! Who may use the HR API: only an HR feed's own token, only for its organisations. A person's
//! token (even an RA's), another client's token and no token are refused; an HR token opens
//! nothing else.

use super::*;

#[tokio::test]
async fn only_an_hr_feeds_own_token_is_accepted() {
    let hr = setup().await;
    let card = hr.env.user_with_card("850000000001").await;
    let event = || json!({ "events": [hr.link("a1", "A1", "850000000001", 0)] });

    let (status, problem) = send_with(&hr.env, None, event()).await;
    assert_eq!(status, 401, "{problem}");
    let (status, _) = send_with(&hr.env, Some("not-a-token"), event()).await;
    assert_eq!(status, 401);

    // A relying party replaying a user's access token.
    let rp = hr.env.confidential_client().await;
    let tokens = hr
        .env
        .tokens_in(&hr.env.browser(Some(&card)), &rp, "openid")
        .await;
    let (status, problem) = send_with(&hr.env, tokens["access_token"].as_str(), event()).await;
    assert_eq!(status, 403);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("never a person's"),
        "{problem}"
    );

    // Another machine client's own token.
    let robot = hr
        .env
        .client(ClientRequest {
            client_name: "robot".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["pds:search".into()],
            ..Default::default()
        })
        .await;
    let robot_token = client_token(&hr.env, &robot).await;
    let (status, problem) = send_with(&hr.env, Some(&robot_token), event()).await;
    assert_eq!(status, 403);
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("not registered as an HR feed"));

    // A revoked feed token stops working.
    let (feed, token) = feed_client(&hr.env, &["RZ9"]).await;
    let revoked = hr
        .env
        .http()
        .post(hr.env.endpoint("/revoke"))
        .basic_auth(&feed.client.metadata.client_id, feed.secret.as_deref())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(send_with(&hr.env, Some(&token), event()).await.0, 401);

    // The feed's token opens neither the admin API nor userinfo.
    for path in [
        "/admin/api/v1/identities?q=user",
        "/admin/api/v1/hr/position-maps",
    ] {
        let r = hr
            .env
            .http()
            .get(format!(
                "https://localhost:{}{path}",
                hr.env.server.main_addr.port()
            ))
            .bearer_auth(&hr.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    assert_eq!(
        hr.env
            .http()
            .get(hr.env.endpoint("/userinfo"))
            .bearer_auth(&hr.token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // And nothing was recorded by any of the refused calls.
    assert!(hr.env.db.hr_event("a1").await.unwrap().is_none());
}

#[tokio::test]
async fn a_feed_sends_for_its_organisations_and_reads_only_their_events() {
    let hr = setup().await;
    let (_, rz8_token) = feed_client(&hr.env, &["RZ8"]).await;
    hr.env.user("850000000002").await;
    let (status, report) = send_with(
        &hr.env,
        Some(&rz8_token),
        json!({ "events": [hr.leaver("z1", "Z1", 0, 0)] }),
    )
    .await;
    assert_eq!(status, 200);
    assert!(report["rejected"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("for RZ8 only, not RZ9"));
    assert!(
        hr.env.db.hr_event("z1").await.unwrap().is_none(),
        "another trust's leaver is not recorded"
    );

    hr.ok(vec![hr.link("z2", "Z2", "850000000002", 0)]).await;
    let status_of = |token: String| {
        let env = &hr.env;
        async move {
            env.http()
                .get(format!(
                    "https://localhost:{}/hr/api/v1/events/z2",
                    env.server.main_addr.port()
                ))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let own = status_of(hr.token.clone()).await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.json::<Value>().await.unwrap()["state"], "applied");
    assert_eq!(
        status_of(rz8_token).await.status(),
        404,
        "another feed's event is not shown"
    );
}

#[test]
fn an_hr_feed_registration_is_a_machine_and_nothing_else() {
    use careid::domain::client::register;
    let feed = |f: fn(&mut ClientRequest)| {
        let mut r = ClientRequest {
            client_name: "ESR".into(),
            hr_feed_orgs: vec!["RZ9".into()],
            ..Default::default()
        };
        f(&mut r);
        register(r, 0)
    };
    let ok = feed(|_| {}).unwrap();
    assert_eq!(ok.client.metadata.grant_types, vec!["client_credentials"]);
    assert_eq!(ok.client.metadata.scope, "careid:hr-feed");
    assert!(ok.secret.is_some());
    for (bad, why) in [
        (
            feed(|r| r.auth_method = Some("none".into())),
            "must authenticate",
        ),
        (
            feed(|r| r.grant_types = vec!["authorization_code".into()]),
            "client_credentials only",
        ),
        (
            feed(|r| r.redirect_uris = vec![RP_REDIRECT.into()]),
            "no redirect URIs",
        ),
        (feed(|r| r.admin = true), "cannot also be an admin"),
        (
            feed(|r| r.hr_feed_orgs = vec!["RZ 9".into()]),
            "not an ODS code",
        ),
    ] {
        let err = bad.unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    }
    let sneaky = register(
        ClientRequest {
            client_name: "app".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            scopes: vec!["openid".into(), "careid:hr-feed".into()],
            ..Default::default()
        },
        0,
    );
    assert!(sneaky
        .unwrap_err()
        .to_string()
        .contains("only to HR feed clients"));
}

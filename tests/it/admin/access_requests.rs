//! Sponsor approval before access: a request is raised, a sponsor of the position's organisation
//! approves it (never their own request, nor one for themselves), and RA staff other than the
//! approver carry it out.

use careid::domain::rbac;

use super::*;

#[tokio::test]
async fn a_sponsor_approves_and_someone_else_assigns() {
    let Ra {
        env,
        manager,
        agent,
        nurse,
        nurse_position,
    } = setup().await;
    env.user("950000000020").await;
    let raise = |uuid: &str| json!({ "uuid": uuid, "position_id": nurse_position, "reason": "new starter on ward 7" });
    let (status, _, _) = call(
        &env,
        Some(&nurse),
        "POST",
        "/admin/api/v1/access-requests",
        Some(raise("950000000020")),
    )
    .await;
    assert_eq!(status, 403, "neither RA staff nor a sponsor");
    let (status, request, _) = call(
        &env,
        Some(&agent),
        "POST",
        "/admin/api/v1/access-requests",
        Some(raise("950000000020")),
    )
    .await;
    assert_eq!(
        (status, request["status"].as_str()),
        (201, Some("pending")),
        "{request}"
    );
    let path = |action: &str| {
        format!(
            "/admin/api/v1/access-requests/{}/{action}",
            request["id"].as_str().unwrap()
        )
    };

    // Only a sponsor decides; nothing is carried out before approval.
    let (status, _, _) = call(&env, Some(&agent), "POST", &path("approve"), None).await;
    assert_eq!(status, 403);
    let (status, _, _) = call(&env, Some(&agent), "POST", &path("fulfil"), None).await;
    assert_eq!(status, 409);
    let (status, decided, _) = call(
        &env,
        Some(&manager),
        "POST",
        &path("approve"),
        Some(json!({ "note": "agreed with ward manager" })),
    )
    .await;
    assert_eq!(
        (status, decided["status"].as_str()),
        (200, Some("approved"))
    );
    let (status, _, _) = call(&env, Some(&manager), "POST", &path("reject"), None).await;
    assert_eq!(status, 409, "decided once");

    // The approver may not carry it out; another RA member does, and the role is current.
    let (status, problem, _) = call(&env, Some(&manager), "POST", &path("fulfil"), None).await;
    assert_eq!(status, 403, "{problem}");
    let (status, done, _) = call(&env, Some(&agent), "POST", &path("fulfil"), None).await;
    assert_eq!(status, 200, "{done}");
    let ids: Vec<String> = serde_json::from_value(done["person_roleids"].clone()).unwrap();
    let roles = rbac::current_roles(&env.db, "950000000020", env.now())
        .await
        .unwrap();
    assert!(
        ids.iter()
            .all(|id| roles.iter().any(|r| &r.person_roleid == id))
            && !ids.is_empty()
    );
    let (status, _, _) = call(&env, Some(&agent), "POST", &path("fulfil"), None).await;
    assert_eq!(status, 409, "carried out once");

    let events: Vec<String> = audit_kinds(&env, 50).await;
    for kind in [
        "admin.access_requested",
        "admin.access_approved",
        "admin.access_fulfilled",
        "admin.assignment_created",
    ] {
        assert!(events.contains(&kind.to_string()), "{kind}: {events:?}");
    }
}

#[tokio::test]
async fn nobody_approves_their_own_request_or_one_for_themselves() {
    let Ra {
        env,
        manager,
        agent,
        nurse_position,
        ..
    } = setup().await;
    env.user("950000000021").await;
    // The sponsor raised it: they may not approve it.
    let (_, own, _) = call(
        &env,
        Some(&manager),
        "POST",
        "/admin/api/v1/access-requests",
        Some(json!({ "uuid": "950000000021", "position_id": nurse_position, "reason": "cover" })),
    )
    .await;
    let (status, problem, _) = call(
        &env,
        Some(&manager),
        "POST",
        &format!(
            "/admin/api/v1/access-requests/{}/approve",
            own["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("own request"));
    // A request for the sponsor themselves.
    let (_, mine, _) = call(
        &env,
        Some(&agent),
        "POST",
        "/admin/api/v1/access-requests",
        Some(json!({ "uuid": "950000000001", "position_id": nurse_position, "reason": "extra role" })),
    )
    .await;
    let (status, _, _) = call(
        &env,
        Some(&manager),
        "POST",
        &format!(
            "/admin/api/v1/access-requests/{}/approve",
            mine["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, 403);
    // Both wait for another sponsor.
    let (status, pending, _) = call(
        &env,
        Some(&agent),
        "GET",
        "/admin/api/v1/access-requests?status=pending",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(pending["requests"].as_array().unwrap().len(), 2);
}

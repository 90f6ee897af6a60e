//! Several careid processes share one database: a sign-in started on one completes on another,
//! and tokens issued by one are honoured by the other (keys and sessions live in the store).

use crate::helpers::*;

#[tokio::test]
async fn a_login_started_on_one_instance_completes_on_another() {
    let a = TestEnv::start().await;
    let b = TestEnv::start_with(Options {
        database_url: Some(a.database_url.clone()),
        pki: Some(a.pki.clone()),
        issuer: Some(a.issuer.clone()),
        ..Default::default()
    })
    .await;
    let card = a.user_with_card("700000000001").await;
    let client = a.confidential_client().await;

    // The browser starts on instance A ...
    let browser = a.browser(Some(&card));
    let page = browser
        .client
        .get(a.authorize_url(&client.client.metadata.client_id, &[], true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = card_link(&page).unwrap();
    // ... the load balancer sends the card step to instance B ...
    let SignIn::Redirected(back) = browser
        .follow_card_link(&link.replace(&a.card_base, &b.card_base))
        .await
    else {
        panic!("B completes A's sign-in")
    };
    let code = query_param(&back, "code").unwrap();
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(a.issuer.as_str())
    );
    // ... and the relying party redeems the code on B.
    let tokens: serde_json::Value = b.redeem(&client, &code).await.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().expect("tokens from B");
    assert_eq!(jwt_claims(id_token)["iss"], a.issuer.as_str());
    // A publishes the key B signed with, and honours B's access token.
    let jwks: serde_json::Value = a
        .http()
        .get(a.endpoint("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == jwt_header(id_token)["kid"]));
    let info = a
        .http()
        .get(a.endpoint("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    // The code is single-use across instances too.
    assert_eq!(a.redeem(&client, &code).await.status(), 400);
    // The session made on B gives single sign-on on A.
    let r = browser
        .client
        .get(a.authorize_url(&client.client.metadata.client_id, &[], true))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection() && query_param(&location(&r), "code").is_some());
}

//! Who may read `/metrics`: not everyone who reaches the issuer.

use careid::config::Config;

use crate::helpers::*;

const TOKEN: &str = "metrics-token-0123456789abcdef0123456789";

async fn status_of(env: &TestEnv, bearer: Option<&str>) -> u16 {
    let mut r = env.http().get(env.endpoint("/metrics"));
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn metrics_are_not_served_on_the_main_listener_by_default() {
    let env = TestEnv::start().await;
    assert_eq!(status_of(&env, None).await, 404);
    assert_eq!(status_of(&env, Some(TOKEN)).await, 404);
}

#[tokio::test]
async fn metrics_on_the_main_listener_need_the_configured_token() {
    fn with_token(c: &mut Config) {
        c.metrics.token = Some(TOKEN.into());
    }
    let env = TestEnv::start_with(Options {
        configure: Some(with_token),
        ..Default::default()
    })
    .await;
    assert_eq!(status_of(&env, None).await, 404);
    assert_eq!(
        status_of(&env, Some("metrics-token-0123456789abcdef-wrong-one")).await,
        404
    );
    let r = env
        .http()
        .get(env.endpoint("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("careid_"));
}

#[tokio::test]
async fn a_metrics_listener_serves_them_apart_from_the_issuer() {
    fn with_listener(c: &mut Config) {
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    }
    let env = TestEnv::start_with(Options {
        configure: Some(with_listener),
        ..Default::default()
    })
    .await;
    let addr = env.server.metrics_addr.expect("a metrics listener");
    let plain = reqwest::Client::new();
    let r = plain
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = plain
        .get(format!("http://{addr}/authorize"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "only the operations endpoints are there");
    assert_eq!(status_of(&env, None).await, 404);
}

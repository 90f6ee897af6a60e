//! The server certificate is replaced without a restart: a renewed certificate written over
//! the configured files is served to new connections once the poll sees it, and a broken or
//! mismatched one is refused while the old one keeps serving.

use std::time::Duration;

use crate::helpers::*;

/// The leaf certificate a new connection to the main listener is served.
async fn served_certificate(env: &TestEnv) -> Vec<u8> {
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(env.pki.server_ca.pem().as_bytes()).unwrap(),
        )
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = http.get(env.endpoint("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("a TLS peer certificate")
        .to_vec()
}

fn write_pair(env: &TestEnv, cert_pem: &str, key_pem: &str) {
    let tls = env.server.provider.config.tls.clone().unwrap();
    std::fs::write(&tls.key_file, key_pem).unwrap();
    std::fs::write(&tls.cert_file, cert_pem).unwrap();
}

/// Waits up to `secs` for the served certificate to become `want`.
async fn served_within(env: &TestEnv, want: &[u8], secs: u64) -> bool {
    for _ in 0..secs * 10 {
        if served_certificate(env).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_bad_one_is_refused() {
    let env = TestEnv::start_with(Options {
        reload_poll_secs: Some(1),
        ..Default::default()
    })
    .await;
    let original = served_certificate(&env).await;
    let names = ["localhost", "127.0.0.1"];

    // A file that is not a certificate: refused, the original keeps serving.
    let renewed = env.pki.server_ca.server_cert(&names, env.now()).unwrap();
    write_pair(
        &env,
        "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n",
        &renewed.key_pem,
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        served_certificate(&env).await,
        original,
        "broken file refused"
    );

    // A certificate with somebody else's key: refused too.
    let stranger = env.pki.server_ca.server_cert(&names, env.now()).unwrap();
    write_pair(&env, &renewed.cert_pem, &stranger.key_pem);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        served_certificate(&env).await,
        original,
        "mismatched key refused"
    );

    // The renewed pair: served to new connections within a poll or two.
    write_pair(&env, &renewed.cert_pem, &renewed.key_pem);
    assert!(
        served_within(&env, &renewed.der, 5).await,
        "the renewed certificate is served"
    );
    // Sign-in still works end to end on the new certificate.
    let card = env.user_with_card("600000000081").await;
    let client = env.confidential_client().await;
    assert!(!env.code_for(&client, &card).await.is_empty());
}

//! The server holds under slow and abusive clients (issue #14 item 6): header-read and idle
//! timeouts and the connection cap on the listeners, rate limits per address and per client,
//! the client-JWKS cache (unknown `kid`, failing and oversized `jwks_uri`), and the cap on audit
//! rows from unauthenticated failures.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use careid::config::Config;
use careid::domain::client::ClientRequest;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

use crate::helpers::*;

/// A TLS connection to `addr` as `localhost`, trusting the test server CA, offering HTTP/1.1.
async fn tls_connect(
    env: &TestEnv,
    addr: std::net::SocketAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut env.pki.server_ca.pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
}

/// Reads until the peer closes (EOF or error) or `limit` passes. Returns what was read and
/// when the connection ended (None: still open at `limit`).
async fn read_until_closed<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    limit: Duration,
) -> (Vec<u8>, Option<Duration>) {
    let start = Instant::now();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, reader.read(&mut buf)).await {
            Err(_) => return (data, None),
            Ok(Ok(0)) | Ok(Err(_)) => return (data, Some(start.elapsed())),
            Ok(Ok(n)) => data.extend_from_slice(&buf[..n]),
        }
    }
}

fn short_timeouts(c: &mut Config) {
    c.server.header_read_timeout_secs = 1;
    c.server.idle_timeout_secs = 30;
}

#[tokio::test]
async fn headers_trickled_past_the_header_timeout_are_cut_off() {
    let env = TestEnv::start_with(Options {
        configure: Some(short_timeouts),
        ..Default::default()
    })
    .await;
    for addr in [env.server.main_addr, env.server.card_addr.unwrap()] {
        let stream = tls_connect(&env, addr).await.unwrap();
        let (mut reader, mut writer) = tokio::io::split(stream);
        let reading =
            tokio::spawn(
                async move { read_until_closed(&mut reader, Duration::from_secs(6)).await },
            );
        let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        // One byte every 100 ms: the headers would take over 8 s to arrive.
        let start = Instant::now();
        for byte in request {
            if reading.is_finished() || writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            let _ = writer.flush().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (data, closed_after) = reading.await.unwrap();
        let text = String::from_utf8_lossy(&data);
        assert!(
            !text.contains(" 200 "),
            "{addr}: the trickled request was served: {text}"
        );
        let closed_after = closed_after.expect("the slow connection was never closed");
        assert!(
            closed_after < Duration::from_secs(3) && start.elapsed() < Duration::from_secs(5),
            "{addr}: closed after {closed_after:?}, with a 1 s header timeout"
        );
    }
    // Normal service meanwhile.
    let r = env
        .http()
        .get(format!("{}/healthz", env.local))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let env = TestEnv::start_with(Options {
        configure: Some(|c| {
            c.server.header_read_timeout_secs = 20;
            c.server.idle_timeout_secs = 1;
        }),
        ..Default::default()
    })
    .await;
    // A connection that served one request, then stays silent.
    let mut used = tls_connect(&env, env.server.main_addr).await.unwrap();
    used.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let (data, closed_after) = read_until_closed(&mut used, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&data);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let closed_after = closed_after.expect("the idle connection stayed open past 5 s");
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(3),
        "closed after {closed_after:?} (idle timeout 1 s, header timeout 20 s)"
    );
    assert!(start.elapsed() < Duration::from_secs(4));
    // A connection that never sends a request, on the card listener.
    let mut silent = tls_connect(&env, env.server.card_addr.unwrap())
        .await
        .unwrap();
    let (_, closed_after) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    let closed_after = closed_after.expect("the silent connection stayed open past 5 s");
    assert!(closed_after < Duration::from_secs(3), "{closed_after:?}");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_until_one_closes() {
    let env = TestEnv::start_with(Options {
        configure: Some(|c| {
            c.server.max_connections = 2;
            c.server.connection_wait_ms = 100;
        }),
        ..Default::default()
    })
    .await;
    let addr = env.server.main_addr;
    let first = tls_connect(&env, addr).await.unwrap();
    let _second = tls_connect(&env, addr).await.unwrap();
    let third = tls_connect(&env, addr).await;
    let refused = match third {
        Err(_) => true,
        // TLS 1.3: the client may finish before the server's close arrives.
        Ok(mut s) => {
            let _ = s
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await;
            let (data, closed) = read_until_closed(&mut s, Duration::from_secs(2)).await;
            closed.is_some() && data.is_empty()
        }
    };
    assert!(
        refused,
        "a third connection was served with max_connections = 2"
    );
    // The card listener has its own slots.
    assert!(tls_connect(&env, env.server.card_addr.unwrap())
        .await
        .is_ok());
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = tls_connect(&env, addr).await.unwrap();
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (data, _) = read_until_closed(&mut again, Duration::from_secs(3)).await;
    assert!(String::from_utf8_lossy(&data).starts_with("HTTP/1.1 200"));
}

fn basic(client: &careid::domain::client::NewClient) -> String {
    use base64::Engine;
    let pair = format!(
        "{}:{}",
        client.client.metadata.client_id,
        client.secret.as_deref().unwrap()
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[tokio::test]
async fn rate_limits_answer_429_per_client_and_per_address_and_spare_the_rest() {
    let env = TestEnv::start_with(Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        configure: Some(|c| {
            c.limits.token.per_client_per_minute = 3;
            c.limits.token.per_client_burst = 3;
            c.limits.authorize.per_address_per_minute = 2;
            c.limits.authorize.per_address_burst = 2;
            c.limits.admin.per_address_per_minute = 2;
            c.limits.admin.per_address_burst = 2;
        }),
        ..Default::default()
    })
    .await;
    let http = env.http();
    let a = env.confidential_client().await;
    let b = env.confidential_client().await;
    let token = |client: &careid::domain::client::NewClient| {
        http.post(env.endpoint("/token"))
            .header("authorization", basic(client))
            .form(&[("grant_type", "authorization_code"), ("code", "nope")])
    };
    // Client A: three requests are handled (a bad code: 400), the fourth is refused.
    for _ in 0..3 {
        let r = token(&a).send().await.unwrap();
        assert_eq!(r.status(), 400);
    }
    let r = token(&a).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    assert!(body["error_description"].is_string());
    // The CIS2 alias and client_secret_post (client_id in the body) count for the same client.
    let r = http
        .post(env.endpoint("/access_token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "nope"),
            ("client_id", a.client.metadata.client_id.as_str()),
            ("client_secret", a.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // Client B is served as usual.
    let r = token(&b).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");

    // /authorize per address: a browser page, with Retry-After.
    let url = env.authorize_url(&b.client.metadata.client_id, &[], true);
    let from = |ip: &str| http.get(&url).header("x-forwarded-for", ip.to_string());
    for _ in 0..2 {
        assert_eq!(from("192.0.2.1").send().await.unwrap().status(), 200);
    }
    let r = from("192.0.2.1").send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Too many sign-in attempts"));
    // Another address behind the same proxy still signs in.
    assert_eq!(from("192.0.2.2").send().await.unwrap().status(), 200);

    // Admin API per address: problem details.
    let admin = || http.get(format!("{}/admin/api/v1/identities?q=smith", env.local));
    for _ in 0..2 {
        assert_eq!(admin().send().await.unwrap().status(), 401);
    }
    let r = admin().send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], 429);

    // Endpoints outside the limited classes are untouched.
    let r = http
        .get(format!("{}/.well-known/openid-configuration", env.local))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A `jwks_uri` that counts its fetches and answers with `status` and `body`.
async fn counting_jwks(status: u16, body: String) -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!(
        "http://127.0.0.1:{}/jwks.json",
        listener.local_addr().unwrap().port()
    );
    let counter = fetches.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let counter = counter.clone();
            let body = body.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                // Slow enough for concurrent requests to overlap.
                tokio::time::sleep(Duration::from_millis(200)).await;
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body,
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (uri, fetches)
}

async fn pkjwt_client(env: &TestEnv, jwks_uri: String) -> String {
    env.client(ClientRequest {
        client_name: "pkjwt via jwks_uri".into(),
        redirect_uris: vec![RP_REDIRECT.into()],
        auth_method: Some("private_key_jwt".into()),
        jwks_uri: Some(jwks_uri),
        ..Default::default()
    })
    .await
    .client
    .metadata
    .client_id
}

/// A token request authenticated by an assertion signed by `key` and naming `kid`. Returns
/// the status: 401 when client authentication failed, 400 (the made-up code) when it passed.
async fn token_with_assertion(
    env: &TestEnv,
    client_id: &str,
    key: &RpKey,
    kid: &str,
    jti: &str,
) -> u16 {
    let jwt = assertion(key, kid, client_id, &env.endpoint("/token"), env.now(), jti);
    env.http()
        .post(env.endpoint("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "made-up"),
            ("redirect_uri", RP_REDIRECT),
            ("client_id", client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn unknown_kids_and_failing_jwks_uris_do_not_refetch_per_request() {
    let env = TestEnv::start().await;
    let key = rp_key("RS256", "known");
    let stranger = rp_key("RS256", "made-up");

    // Concurrent assertions naming an unknown kid: one fetch between them.
    let (uri, fetches) = counting_jwks(200, key.jwks().to_string()).await;
    let client_id = pkjwt_client(&env, uri).await;
    let attempts =
        (0..6).map(|i| {
            let (env, client_id, stranger) = (&env, &client_id, &stranger);
            async move {
                token_with_assertion(env, client_id, stranger, "made-up", &format!("u-{i}")).await
            }
        });
    let statuses = futures::future::join_all(attempts).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    for i in 0..4 {
        let s =
            token_with_assertion(&env, &client_id, &stranger, "made-up", &format!("v-{i}")).await;
        assert_eq!(s, 401);
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "one fetch for ten unknown-kid assertions"
    );
    // The registered key still authenticates, from the cached set.
    assert_eq!(
        token_with_assertion(&env, &client_id, &key, "known", "k-1").await,
        400
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // A jwks_uri that fails is not asked again on every request.
    let (uri, failing) = counting_jwks(500, "oops".into()).await;
    let failing_client = pkjwt_client(&env, uri).await;
    for i in 0..5 {
        let s = token_with_assertion(&env, &failing_client, &key, "known", &format!("f-{i}")).await;
        assert_eq!(s, 401);
    }
    assert_eq!(
        failing.load(Ordering::SeqCst),
        1,
        "a failed fetch backs off"
    );

    // An oversized JWKS (here 100 KiB, holding the right key) is refused.
    let mut big = key.jwks();
    big["padding"] = json!("x".repeat(100 * 1024));
    let (uri, _) = counting_jwks(200, big.to_string()).await;
    let big_client = pkjwt_client(&env, uri).await;
    assert_eq!(
        token_with_assertion(&env, &big_client, &key, "known", "b-1").await,
        401
    );
}

#[tokio::test]
async fn unauthenticated_failures_are_audited_up_to_a_cap_then_summed_up() {
    let env = TestEnv::start_with(Options {
        configure: Some(|c| c.limits.failure_audit_per_minute = 3),
        ..Default::default()
    })
    .await;
    let client = env.confidential_client().await;
    let id = client.client.metadata.client_id.clone();
    let wrong = |n: usize| {
        env.http()
            .post(env.endpoint("/token"))
            .basic_auth(&id, Some(format!("wrong-{n}")))
            .form(&[("grant_type", "authorization_code"), ("code", "x")])
    };
    for n in 0..8 {
        assert_eq!(wrong(n).send().await.unwrap().status(), 401);
    }
    let count = |kind: &'static str| {
        let db = env.db.clone();
        async move {
            db.recent_audit(1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.kind == kind)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(count("client.authentication").await.len(), 3);
    assert!(count("audit.failures_suppressed").await.is_empty());
    // Once the minute is over, one event sums up the five held back.
    env.clock.advance(61);
    assert_eq!(
        env.server
            .provider
            .flush_suppressed_audit(false)
            .await
            .unwrap(),
        1
    );
    let summary = count("audit.failures_suppressed").await;
    assert_eq!(summary.len(), 1);
    let d = &summary[0].detail;
    assert_eq!(d["kind"], "client.authentication");
    assert_eq!(d["count"], 5);
    assert_eq!(
        d["source"].as_str().unwrap().parse::<IpAddr>().unwrap(),
        "127.0.0.1".parse::<IpAddr>().unwrap()
    );
    // A new minute: failures are written again; the chain is intact.
    assert_eq!(wrong(99).send().await.unwrap().status(), 401);
    assert_eq!(count("client.authentication").await.len(), 4);
    assert!(matches!(
        env.db.verify_audit_chain().await.unwrap(),
        careid::store::AuditVerification::Intact { .. }
    ));
}

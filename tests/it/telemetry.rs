//! OpenTelemetry traces: `careid serve` with `telemetry.otlp_endpoint` sends its request spans,
//! with the request id as an attribute, to a collector over OTLP/HTTP, and flushes them when it
//! stops; without the setting nothing is sent, whatever the OTEL_* environment says.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use tokio::process::Command;

use crate::helpers::*;

/// What a collector received: (path, content type, body).
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let keep = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move {
                let ctype = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                keep.lock()
                    .unwrap()
                    .push(("/v1/traces".into(), ctype, body.to_vec()));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// Runs `careid serve` (plain HTTP on loopback), makes one request with `request_id`, and
/// stops it with SIGTERM.
async fn serve_one_request(otlp: Option<&str>, otel_env: Option<&str>, request_id: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://localhost:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_careid"));
    cmd.current_dir(dir.path())
        .env("CAREID_ISSUER", &base)
        .env("CAREID_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "CAREID_DATABASE__URL",
            format!("sqlite://{}/careid.db", dir.path().display()),
        )
        .env("CAREID_KEYS__ENCRYPTION_KEY", test_encryption_key())
        .arg("serve")
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(endpoint) = otlp {
        cmd.env("CAREID_TELEMETRY__OTLP_ENDPOINT", endpoint);
    }
    if let Some(endpoint) = otel_env {
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    }
    let mut child = cmd.spawn().unwrap();
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "careid did not start");
    let r = http
        .get(format!("{base}/.well-known/openid-configuration"))
        .header("x-request-id", request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stopped")
        .unwrap();
    assert!(status.success(), "{status}");
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn request_spans_reach_an_otlp_collector_with_their_request_id() {
    let (endpoint, received) = collector().await;
    serve_one_request(Some(&endpoint), None, "otel-request-4711").await;
    let got = received.lock().unwrap().clone();
    assert!(!got.is_empty(), "the collector received spans");
    assert!(
        got.iter()
            .all(|(_, ctype, _)| ctype == "application/x-protobuf"),
        "{got:?}"
    );
    let all: Vec<u8> = got.into_iter().flat_map(|(_, _, body)| body).collect();
    for expected in [
        "otel-request-4711",
        "request_id",
        "service.name",
        "careid",
        "/.well-known/openid-configuration",
    ] {
        assert!(contains(&all, expected), "{expected} in the exported spans");
    }
}

/// Off by default: the standard OTEL_* environment alone does not turn traces on (careid's
/// configuration is the one place that says where data goes).
#[tokio::test]
async fn without_the_setting_nothing_is_sent_even_with_otel_environment() {
    let (endpoint, received) = collector().await;
    serve_one_request(None, Some(&endpoint), "otel-request-4712").await;
    assert!(received.lock().unwrap().is_empty());
}

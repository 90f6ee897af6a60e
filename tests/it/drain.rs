//! Stopping careid the way a container runtime or systemd does: SIGTERM. `/readyz` turns
//! unready at once, new connections are refused once `server.shutdown_delay_secs` has passed, a
//! request in flight still gets its answer, and the process exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// `GET path` on a new connection: the status code, or None if the connection is refused.
fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_careid"))
        .arg("serve")
        .current_dir(dir.path())
        .env("CAREID_LISTEN", format!("127.0.0.1:{port}"))
        .env("CAREID_ISSUER", format!("http://127.0.0.1:{port}"))
        .env(
            "CAREID_DATABASE__URL",
            format!("sqlite://{}/careid.db", dir.path().display()),
        )
        .env("CAREID_KEYS__ENCRYPTION_KEY", test_encryption_key())
        .env("CAREID_SERVER__SHUTDOWN_DELAY_SECS", "2")
        .env("CAREID_SERVER__SHUTDOWN_GRACE_SECS", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while get_status(port, "/readyz") != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "careid did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A token request whose body is still arriving when the signal comes.
    let body = "grant_type=client_credentials";
    let mut in_flight = TcpStream::connect(("127.0.0.1", port)).unwrap();
    in_flight
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        in_flight,
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // Unready at once, while still accepting during the delay.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get_status(port, "/readyz"),
        Some(503),
        "unready as the drain starts"
    );
    // After the delay, no new connections.
    let refused_by = Instant::now() + Duration::from_secs(8);
    while get_status(port, "/healthz").is_some() {
        assert!(
            Instant::now() < refused_by,
            "still accepting after the delay"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "still draining: a request is in flight"
    );

    // The request in flight finishes and gets its answer (no client credentials: 401).
    in_flight.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    in_flight.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("invalid_client"), "{answer}");

    let waited = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(15),
            "careid did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGTERM") && log.contains("drained"), "{log}");
}

//! The real stack: `pcscd` with Debian's `vsmartcard-vpcd` driver, the virtual PIV card
//! (`careid-vcard`) in its reader, the `careid-agent` binary, careid and a relying party. The
//! card signs in (AAL3, `N3_SMARTCARD`); pulling it logs the relying party out within 2 s; a
//! wrong PIN counts down on the card; a revoked card fails. `.ci/test` starts `pcscd`. The
//! virtual reader is one per machine, so these tests take turns.

use std::process::Stdio;
use std::time::{Duration, Instant};

use careid::agent::reader;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::*;

const READER: &str = "Virtual PCD 00 00";

/// The one virtual reader: one test at a time.
static READER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn card_present() -> bool {
    let ctx = reader::context().expect("pcscd must be running (.ci/test starts it)");
    let readers = reader::readers(&ctx).unwrap();
    assert!(
        readers.iter().any(|(name, _)| name == READER),
        "pcscd has no {READER}: install vsmartcard-vpcd (.ci/run does) and restart pcscd; it has {readers:?}"
    );
    readers
        .iter()
        .any(|(name, present)| name == READER && *present)
}

async fn until_card(present: bool) {
    for _ in 0..100 {
        if tokio::task::spawn_blocking(card_present).await.unwrap() == present {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the virtual card did not become present={present}");
}

/// `careid-vcard` holding `card`, inserted into the virtual reader.
struct VirtualCard {
    child: Child,
    _files: tempfile::TempDir,
}

impl VirtualCard {
    async fn insert(card: &Issued) -> VirtualCard {
        until_card(false).await;
        let files = tempfile::tempdir().unwrap();
        std::fs::write(files.path().join("card.pem"), &card.cert_pem).unwrap();
        std::fs::write(files.path().join("card.key"), &card.key_pem).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_careid-vcard"))
            .arg("--cert")
            .arg(files.path().join("card.pem"))
            .arg("--key")
            .arg(files.path().join("card.key"))
            .args(["--pin", PIN])
            .stdin(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        until_card(true).await;
        VirtualCard {
            child,
            _files: files,
        }
    }

    /// Takes the card out of the reader; returns when it was told.
    async fn remove(&mut self) -> Instant {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"remove\n").await.unwrap();
        stdin.flush().await.unwrap();
        Instant::now()
    }
}

/// `careid-agent login` for `code`, the PIN given on a file descriptor (its standard input).
async fn agent_process(
    env: &TestEnv,
    code: &str,
    pin: &str,
) -> (
    Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let ca = env.dir.path().join("server-ca.pem");
    std::fs::write(&ca, env.pki.server_ca.pem()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_careid-agent"))
        .args([
            "login",
            "--issuer",
            &env.issuer,
            "--code",
            code,
            "--reader",
            READER,
            "--pin-fd",
            "0",
        ])
        .arg("--ca-file")
        .arg(&ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{pin}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

async fn next_event(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> serde_json::Value {
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the agent said something within 30 s")
        .unwrap()
        .expect("the agent printed an event");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn the_agent_signs_in_with_the_card_and_pulling_it_logs_the_relying_party_out() {
    let _turn = READER_LOCK.lock().await;
    let env = TestEnv::start().await;
    let card = env.user_with_card("720000000001").await;
    let (client, logouts) = rp_with_logout(&env).await;
    let mut vcard = VirtualCard::insert(&card).await;

    // A wrong PIN is refused by the card, which counts down; nothing signs in.
    let sign_in = start(&env, &client).await;
    for left in [2, 1] {
        let (mut agent, mut events) = agent_process(&env, &sign_in.code, "999999").await;
        let failed = next_event(&mut events).await;
        assert_eq!(failed["event"], "failed");
        assert_eq!(
            failed["error"],
            format!("wrong PIN: {left} tries left before the card locks")
        );
        assert!(!agent.wait().await.unwrap().success());
    }
    assert!(sign_in
        .finish(&env)
        .await
        .text()
        .await
        .unwrap()
        .contains("has not signed in yet"));

    // The right PIN: the card signs, the browser finishes, the RP gets AAL3 smartcard tokens.
    let (mut agent, mut events) = agent_process(&env, &sign_in.code, PIN).await;
    let signed = next_event(&mut events).await;
    assert_eq!(signed["event"], "signed_in", "{signed}");
    assert_eq!(signed["client_name"], "Ward round");
    let tokens = sign_in.tokens(&env, &client).await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "720000000001");
    assert_eq!(claims["acr"], "AAL3_ANY");
    assert_eq!(claims["amr"], serde_json::json!(["N3_SMARTCARD"]));
    assert_eq!(claims["authentication_assurance_level"], "3");
    assert!(env
        .server
        .provider
        .session_is_card_bound(claims["sid"].as_str().unwrap())
        .await
        .unwrap());

    // The card leaves the reader: the RP receives a back-channel logout within 2 seconds.
    let pulled = vcard.remove().await;
    let received = logouts.wait_up_to(1, 40).await;
    let took = pulled.elapsed();
    assert_eq!(
        received.len(),
        1,
        "a back-channel logout within 2 s of the removal"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(jwt_claims(&received[0])["sid"], claims["sid"]);
    assert_eq!(next_event(&mut events).await["event"], "card_removed");
    assert_eq!(next_event(&mut events).await["event"], "signed_out");
    assert!(agent.wait().await.unwrap().success());
}

#[tokio::test]
async fn the_agent_cannot_sign_in_with_a_revoked_card() {
    let _turn = READER_LOCK.lock().await;
    let now = careid::clock::Clock::now(&careid::clock::SystemClock);
    let pki = std::sync::Arc::new(Pki::new(now));
    let revoked = pki
        .card_sub
        .card_cert(&careid::pki::CardSpec::valid(
            "720000000002",
            "Revoked",
            now,
        ))
        .unwrap();
    let env = TestEnv::start_with(Options {
        pki: Some(pki),
        revoked: vec![revoked.clone()],
        ..Default::default()
    })
    .await;
    env.user("720000000002").await;
    careid::domain::registry::bind_smartcard(
        &env.db,
        "720000000002",
        &revoked.der,
        "test",
        env.now(),
    )
    .await
    .unwrap();
    let (client, _logouts) = rp_with_logout(&env).await;
    let _vcard = VirtualCard::insert(&revoked).await;
    let sign_in = start(&env, &client).await;
    let (mut agent, mut events) = agent_process(&env, &sign_in.code, PIN).await;
    let failed = next_event(&mut events).await;
    assert_eq!(failed["event"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("revoked"),
        "{failed}"
    );
    assert!(!agent.wait().await.unwrap().success());
    assert_eq!(
        sign_in.finish(&env).await.status(),
        200,
        "still waiting: nothing signed in"
    );
}

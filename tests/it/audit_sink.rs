//! The live audit sink: a SIEM receives every event, in chain order with its hashes, as JSON
//! lines in a file or as syslog messages, and a restart carries on from the cursor without a gap.

use std::time::Duration;

use careid::config::Config;

use crate::audit::receiver_checks;
use crate::helpers::*;

fn sink_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until the sink file holds at least `n` events.
async fn wait_for_lines(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        let lines = sink_lines(path);
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sink wrote {} events, not {n}", sink_lines(path).len());
}

/// The sink file beside the server's other files (its temporary directory).
fn with_file_sink(c: &mut Config) {
    let dir = c
        .tls
        .as_ref()
        .unwrap()
        .cert_file
        .parent()
        .unwrap()
        .to_path_buf();
    c.audit.sink_file = Some(dir.join("audit.jsonl"));
    c.audit.sink_poll_ms = 50;
}

#[tokio::test]
async fn the_file_sink_carries_every_event_and_resumes_after_a_restart() {
    let env = TestEnv::start_with(Options {
        configure: Some(with_file_sink),
        ..Default::default()
    })
    .await;
    let file = env.dir.path().join("audit.jsonl");
    let card = env.user_with_card("600000000071").await;
    let client = env.confidential_client().await;
    env.code_for(&client, &card).await;
    let head = intact_head(&env).await;
    let first = wait_for_lines(&file, head as usize).await;
    assert_eq!(first[0]["seq"], 1);
    let (last_seq, last_hash) = receiver_checks(&first, None);
    assert_eq!(last_seq, head, "everything committed so far");
    let cursor = std::fs::read_to_string(env.dir.path().join("audit.jsonl.cursor")).unwrap();
    assert_eq!(cursor.trim(), last_seq.to_string());

    // The server stops; events happen meanwhile; the log is rotated away. The next process
    // continues from the cursor: no gap, no repeat, and the chain links to what came before.
    let (database_url, pki) = (env.database_url.clone(), env.pki.clone());
    let rotated = env.dir.path().join("audit.jsonl.1");
    assert!(env.server.shutdown().await);
    std::fs::rename(&file, &rotated).unwrap();
    let without_sink = TestEnv::start_with(Options {
        database_url: Some(database_url.clone()),
        pki: Some(pki.clone()),
        ..Default::default()
    })
    .await;
    without_sink.confidential_client().await;
    without_sink.admin_client().await;
    let sink = file.clone();
    let again = TestEnv::start_with(Options {
        database_url: Some(database_url),
        pki: Some(pki),
        adjust: Some(Box::new(move |c| {
            c.audit.sink_file = Some(sink);
            c.audit.sink_poll_ms = 50;
        })),
        ..Default::default()
    })
    .await;
    let head = intact_head(&again).await;
    let rest = wait_for_lines(&file, (head - last_seq) as usize).await;
    assert_eq!(rest[0]["seq"], last_seq + 1, "from the cursor on");
    let (now_seq, _) = receiver_checks(&rest, Some((last_seq, last_hash)));
    assert_eq!(now_seq, head);
}

#[tokio::test]
async fn the_syslog_sink_sends_rfc5424_messages_a_receiver_can_chain() {
    let receiver_dir = tempfile::tempdir().unwrap();
    let socket_path = receiver_dir.path().join("log.sock");
    let receiver = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let (socket, cursor) = (socket_path.clone(), receiver_dir.path().join("cursor"));
    let env = TestEnv::start_with(Options {
        adjust: Some(Box::new(move |c| {
            c.audit.sink_syslog = Some(socket);
            c.audit.sink_cursor_file = Some(cursor);
            c.audit.sink_poll_ms = 50;
        })),
        ..Default::default()
    })
    .await;
    env.confidential_client().await;
    let head = intact_head(&env).await;
    let mut events = Vec::new();
    let mut buf = vec![0u8; 65536];
    while (events.len() as i64) < head {
        let n = tokio::time::timeout(Duration::from_secs(5), receiver.recv(&mut buf))
            .await
            .expect("a syslog message within 5 s")
            .unwrap();
        let message = std::str::from_utf8(&buf[..n]).unwrap();
        // <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
        let parts: Vec<&str> = message.splitn(8, ' ').collect();
        assert_eq!(parts[0], "<86>1", "authpriv.info, RFC 5424: {message}");
        assert!(
            parts[1].ends_with('Z') && parts[1].contains('T'),
            "{message}"
        );
        assert_eq!(&parts[3..7], ["careid", "-", "audit", "-"], "{message}");
        events.push(serde_json::from_str::<serde_json::Value>(parts[7]).unwrap());
    }
    assert_eq!(events[0]["seq"], 1);
    receiver_checks(&events, None);
}

#[tokio::test]
async fn a_syslog_sink_without_a_cursor_file_is_refused_at_start() {
    let mut c = Config::default();
    c.audit.sink_syslog = Some("/dev/log".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("sink_cursor_file"), "{e}");
    c.audit.sink_cursor_file = Some("/var/lib/careid/audit.cursor".into());
    if let Err(e) = c.validate() {
        assert!(!e.to_string().contains("audit"), "{e}");
    }
}

async fn intact_head(env: &TestEnv) -> i64 {
    match env.db.verify_audit_chain().await.unwrap() {
        careid::store::AuditVerification::Intact { rows, .. } => rows,
        broken => panic!("{broken:?}"),
    }
}

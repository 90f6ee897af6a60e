//! The hash-chained audit trail: `careid audit verify` finds a real sign-in's trail intact, and
//! names the first row that was altered, deleted or slipped in with SQL behind careid's back.
//! Appends from two servers sharing one database keep one unbroken chain.

use std::process::{Command, Output};

use careid::store::{AccessTokenRecord, AuditEvent, Db, WriteSet};
use sqlx::{AnyConnection, Connection, Row};

use crate::helpers::*;

fn audit_verify(env: &TestEnv) -> Output {
    audit_verify_at(env.dir.path(), &env.database_url)
}

fn audit_verify_at(dir: &std::path::Path, database_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(dir)
        .env("CAREID_DATABASE__URL", database_url)
        .env(
            "CAREID_KEYS__ENCRYPTION_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .args(["audit", "verify"])
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Expects `audit verify` to succeed and returns the number of rows it reports.
fn intact_rows(env: &TestEnv) -> i64 {
    let out = audit_verify(env);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let n = text
        .strip_prefix("audit chain intact: ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected report: {text}"));
    assert!(text.contains("chain head: seq "), "{text}");
    n.parse().unwrap()
}

/// Expects `audit verify` to fail (exit 1) and returns its message.
fn broken(env: &TestEnv) -> String {
    let out = audit_verify(env);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

/// The actors of the audit events of `kind`, in the order written.
async fn actors_of(env: &TestEnv, kind: &str) -> Vec<String> {
    sqlx::query("SELECT actor FROM audit_events WHERE kind = $1 ORDER BY id")
        .bind(kind)
        .fetch_all(&mut raw(env).await)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("actor"))
        .collect()
}

/// The record of a client-credentials access token `jti` of `client`, issued at `now`.
fn client_token(
    client: &careid::domain::client::NewClient,
    jti: &str,
    now: i64,
) -> AccessTokenRecord {
    AccessTokenRecord {
        jti: jti.into(),
        client_id: client.client.metadata.client_id.clone(),
        user_uuid: None,
        sid: None,
        code_hash: None,
        scope: "api".into(),
        issued_at: now,
        expires_at: now + 600,
        family_id: None,
    }
}

/// A connection of its own, as someone with database access would use behind careid's back.
async fn raw(env: &TestEnv) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&env.database_url).await.unwrap()
}

async fn ids(conn: &mut AnyConnection, kind: &str) -> Vec<i64> {
    sqlx::query("SELECT id FROM audit_events WHERE kind = $1 ORDER BY id")
        .bind(kind)
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<i64, _>("id"))
        .collect()
}

async fn all_ids(conn: &mut AnyConnection) -> Vec<i64> {
    sqlx::query("SELECT id FROM audit_events ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<i64, _>("id"))
        .collect()
}

/// A user signs in with a card and the client redeems the code: registry, login and token
/// events.
async fn sign_in(env: &TestEnv) {
    let card = env.user_with_card("900000000001").await;
    let client = env.confidential_client().await;
    let code = env.code_for(&client, &card).await;
    assert_eq!(env.redeem(&client, &code).await.status(), 200);
}

#[tokio::test]
async fn a_real_sign_in_is_chained_and_an_altered_row_is_named() {
    let env = TestEnv::start().await;
    sign_in(&env).await;
    let total = env.db.count_rows("audit_events").await.unwrap();
    assert!(total >= 4, "user, card, client, login, token: {total}");
    assert_eq!(intact_rows(&env), total);

    let mut conn = raw(&env).await;
    let login = ids(&mut conn, "login.smartcard").await[0];
    assert!(!ids(&mut conn, "token.issued").await.is_empty());
    sqlx::query("UPDATE audit_events SET outcome = 'card_revoked' WHERE id = $1")
        .bind(login)
        .execute(&mut conn)
        .await
        .unwrap();
    let message = broken(&env);
    assert!(
        message.contains(&format!("audit chain broken at row {login}: row altered")),
        "{message}"
    );

    // Put it back and alter the detail instead.
    sqlx::query("UPDATE audit_events SET outcome = 'success' WHERE id = $1")
        .bind(login)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(intact_rows(&env), total);
    let token = ids(&mut conn, "token.issued").await[0];
    sqlx::query("UPDATE audit_events SET detail = '{}' WHERE id = $1")
        .bind(token)
        .execute(&mut conn)
        .await
        .unwrap();
    let message = broken(&env);
    assert!(
        message.contains(&format!("audit chain broken at row {token}: row altered")),
        "{message}"
    );
}

#[tokio::test]
async fn deleted_and_slipped_in_rows_are_named() {
    let env = TestEnv::start().await;
    sign_in(&env).await;
    let total = env.db.count_rows("audit_events").await.unwrap();
    assert_eq!(intact_rows(&env), total);
    let mut conn = raw(&env).await;

    // A row inserted with SQL has no place in the chain.
    sqlx::query("INSERT INTO audit_events (at, kind, outcome, actor, detail) VALUES ($1, 'login.smartcard', 'success', '900000000001', '{}')")
        .bind(env.now())
        .execute(&mut conn)
        .await
        .unwrap();
    let stray = *all_ids(&mut conn).await.last().unwrap();
    let message = broken(&env);
    assert!(
        message.contains(&format!(
            "audit chain broken at row {stray}: row inserted out of chain"
        )),
        "{message}"
    );
    sqlx::query("DELETE FROM audit_events WHERE id = $1")
        .bind(stray)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(intact_rows(&env), total);

    // Deleting the newest row leaves the head pointing past the end.
    let rows = all_ids(&mut conn).await;
    let (last, before_last) = (rows[rows.len() - 1], rows[rows.len() - 2]);
    sqlx::query("DELETE FROM audit_events WHERE id = $1")
        .bind(last)
        .execute(&mut conn)
        .await
        .unwrap();
    let message = broken(&env);
    assert!(
        message.contains(&format!(
            "audit chain broken at row {before_last}: row deleted"
        )),
        "{message}"
    );

    // Deleting a row in the middle is found at the row after the gap (the first break).
    let (middle, after_middle) = (rows[1], rows[2]);
    sqlx::query("DELETE FROM audit_events WHERE id = $1")
        .bind(middle)
        .execute(&mut conn)
        .await
        .unwrap();
    let message = broken(&env);
    assert!(
        message.contains(&format!(
            "audit chain broken at row {after_middle}: row deleted"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn two_servers_appending_at_once_keep_one_chain() {
    let a = TestEnv::start().await;
    let b = TestEnv::start_with(Options {
        database_url: Some(a.database_url.clone()),
        pki: Some(a.pki.clone()),
        issuer: Some(a.issuer.clone()),
        ..Default::default()
    })
    .await;
    let client = a.confidential_client().await;
    let mut cards = Vec::new();
    for i in 0..6 {
        cards.push(a.user_with_card(&format!("91000000000{i}")).await);
    }
    let (a, b, client) = (
        std::sync::Arc::new(a),
        std::sync::Arc::new(b),
        std::sync::Arc::new(client),
    );

    let mut tasks = tokio::task::JoinSet::new();
    // Full sign-ins on both servers at once ...
    for (i, card) in cards.into_iter().enumerate() {
        let env = if i % 2 == 0 { a.clone() } else { b.clone() };
        let client = client.clone();
        tasks.spawn(async move {
            let code = env.code_for(&client, &card).await;
            assert_eq!(env.redeem(&client, &code).await.status(), 200);
        });
    }
    // ... while both servers' stores append directly, through their own connection pools.
    for i in 0..40 {
        let env = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            env.db
                .append_audit(&AuditEvent {
                    at: env.now(),
                    kind: "test.concurrent".into(),
                    outcome: "success".into(),
                    actor: Some(format!("writer-{i}")),
                    client_id: None,
                    detail: serde_json::json!({ "i": i }),
                })
                .await
                .unwrap();
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    let total = a.db.count_rows("audit_events").await.unwrap();
    let mut conn = raw(&a).await;
    assert_eq!(ids(&mut conn, "test.concurrent").await.len(), 40);
    assert_eq!(ids(&mut conn, "token.issued").await.len(), 6);
    assert_eq!(intact_rows(&a), total, "every row chained, none twice");
    let seqs: Vec<i64> = sqlx::query("SELECT seq FROM audit_events ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<i64, _>("seq"))
        .collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
}

#[tokio::test]
async fn rows_from_before_the_chain_are_counted_and_new_rows_are_chained() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    // A database as careid left it before 0004_audit_chain, with audit rows in it.
    Db::connect(&url, 1).await.unwrap().close().await;
    let dialect = if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    let mut before = sqlx::migrate::Migrator::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect),
    )
    .await
    .unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 4)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    before.run(&mut conn).await.unwrap();
    for kind in ["client.registered", "login.smartcard"] {
        sqlx::query(
            "INSERT INTO audit_events (at, kind, outcome, detail) VALUES (1, $1, 'success', '{}')",
        )
        .bind(kind)
        .execute(&mut conn)
        .await
        .unwrap();
    }

    // `careid migrate` applies 0004 and later; `audit verify` reports the old rows apart.
    let migrated = Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(dir.path())
        .env("CAREID_DATABASE__URL", &url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let out = audit_verify_at(dir.path(), &url);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with("audit chain intact: 0 rows\n2 older rows"),
        "{}",
        stdout(&out)
    );

    let db = Db::connect(&url, 2).await.unwrap();
    for i in 0..3 {
        db.append_audit(&AuditEvent {
            at: 2,
            kind: "token.issued".into(),
            outcome: "success".into(),
            actor: None,
            client_id: Some("c".into()),
            detail: serde_json::json!({ "i": i }),
        })
        .await
        .unwrap();
    }
    db.close().await;
    let out = audit_verify_at(dir.path(), &url);
    assert!(
        stdout(&out).starts_with("audit chain intact: 3 rows\n2 older rows"),
        "{}",
        stdout(&out)
    );

    // A row slipped in without a hash is not taken for an old one.
    sqlx::query("INSERT INTO audit_events (at, kind, outcome, detail) VALUES (1, 'login.smartcard', 'success', '{}')")
        .execute(&mut conn)
        .await
        .unwrap();
    let out = audit_verify_at(dir.path(), &url);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("row inserted out of chain"),
        "{}",
        stderr(&out)
    );
}

/// Writes from concurrent requests share transactions (group commit). A set that breaks a
/// constraint fails alone and leaves nothing behind (not even its audit event), while the sets
/// batched with it commit, each with its audit event, in one unbroken chain.
#[tokio::test]
async fn a_failing_write_set_fails_alone_and_leaves_nothing_behind() {
    let env = TestEnv::start().await;
    let client = env.confidential_client().await;
    let now = env.now();
    let record = |jti: &str| client_token(&client, jti, now);
    env.db.insert_access_token(&record("taken")).await.unwrap();
    let chained_before = intact_rows(&env);

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let db = env.db.clone();
        let jti = if i == 17 {
            "taken".to_string()
        } else {
            format!("jti-{i}")
        };
        let mut set = WriteSet::new();
        set.insert_access_token(&record(&jti));
        set.audit(AuditEvent {
            at: now,
            kind: "test.group_commit".into(),
            outcome: "success".into(),
            actor: Some(jti.clone()),
            client_id: None,
            detail: serde_json::json!({ "i": i }),
        });
        tasks.spawn(async move { (jti, db.commit(set).await) });
    }
    let mut failed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (jti, outcome) = done.unwrap();
        match outcome {
            Ok(written) => assert_eq!(written.len(), 1, "one result per statement"),
            Err(e) => {
                assert!(
                    matches!(e, careid::store::StoreError::Database(_)),
                    "{jti}: {e}"
                );
                failed.push(jti);
            }
        }
    }
    assert_eq!(
        failed,
        vec!["taken".to_string()],
        "only the duplicate fails"
    );
    for i in (0..40).filter(|i| *i != 17) {
        assert!(env
            .db
            .access_token_active(&format!("jti-{i}"))
            .await
            .unwrap());
    }
    let actors = actors_of(&env, "test.group_commit").await;
    assert_eq!(actors.len(), 39);
    assert!(
        !actors.iter().any(|a| a == "taken"),
        "the failed set's audit event was not written"
    );
    assert_eq!(intact_rows(&env), chained_before + 39);
}

/// A batch too large for one query (SQLite sends a batch as one multi-statement query while it
/// binds at most 30,000 values) is split, still in one transaction: every row of a set of 4,000
/// audit events and a token arrives, chained in order, and each statement's result reaches its
/// set.
#[tokio::test]
async fn a_write_set_larger_than_one_query_commits_whole() {
    let env = TestEnv::start().await;
    let client = env.confidential_client().await;
    let now = env.now();
    let chained_before = intact_rows(&env);
    let mut set = WriteSet::new();
    for i in 0..4_000 {
        set.audit(AuditEvent {
            at: now,
            kind: "test.large_batch".into(),
            outcome: "success".into(),
            actor: Some(format!("actor-{i}")),
            client_id: None,
            detail: serde_json::json!({ "i": i }),
        });
    }
    set.insert_access_token(&client_token(&client, "after-the-events", now));
    let written = env.db.commit(set).await.unwrap();
    assert_eq!(written.len(), 1, "one result for the set's one statement");
    assert!(env
        .db
        .access_token_active("after-the-events")
        .await
        .unwrap());
    let mut conn = raw(&env).await;
    let count: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE kind = 'test.large_batch'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get("n");
    assert_eq!(count, 4_000);
    assert_eq!(intact_rows(&env), chained_before + 4_000);
}

/// Guarded sets in one batch: of twelve sets claiming the same code, one is written and eleven
/// write nothing (not their token, not their audit event) and are told so; a set in the same
/// batch that breaks a constraint fails alone; the chain stays intact.
#[tokio::test]
async fn of_sets_claiming_one_code_one_is_written_and_the_rest_leave_nothing() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("123412341295").await;
    let client = env.confidential_client().await;
    let code = env.code_for(&client, &card).await;
    let hash = careid::domain::secrets::digest(&code);
    let now = env.now();
    let record = |jti: &str| client_token(&client, jti, now);
    env.db.insert_access_token(&record("taken")).await.unwrap();
    let chained_before = intact_rows(&env);
    let event = |actor: &str| AuditEvent {
        at: now,
        kind: "test.guarded".into(),
        outcome: "success".into(),
        actor: Some(actor.into()),
        client_id: None,
        detail: serde_json::json!({}),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let db = env.db.clone();
        let mut set = WriteSet::redeeming_code(&hash, now);
        let jti = format!("claim-{i}");
        set.insert_access_token(&record(&jti));
        set.audit(event(&jti));
        tasks.spawn(async move { (jti, db.commit_guarded(set).await) });
    }
    let db = env.db.clone();
    let mut breaking = WriteSet::new();
    breaking.insert_access_token(&record("taken"));
    breaking.audit(event("taken"));
    tasks.spawn(async move { ("taken".to_string(), db.commit_guarded(breaking).await) });

    let (mut written, mut claimed_first, mut failed) = (Vec::new(), 0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            (jti, Ok(Some(_))) => written.push(jti),
            (_, Ok(None)) => claimed_first += 1,
            (jti, Err(e)) => {
                assert!(matches!(e, careid::store::StoreError::Database(_)), "{e}");
                failed.push(jti);
            }
        }
    }
    assert_eq!(written.len(), 1, "one claim wins");
    assert_eq!(claimed_first, 11, "the others are told they lost");
    assert_eq!(failed, vec!["taken".to_string()]);
    for i in 0..12 {
        let jti = format!("claim-{i}");
        assert_eq!(
            env.db.access_token_active(&jti).await.unwrap(),
            written.contains(&jti),
            "{jti}: written only by the winner"
        );
    }
    let actors = actors_of(&env, "test.guarded").await;
    assert_eq!(actors, written, "only the winner's audit event");
    assert_eq!(intact_rows(&env), chained_before + 1);
}

fn export(env: &TestEnv, since: i64) -> (Vec<serde_json::Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(env.dir.path())
        .env("CAREID_DATABASE__URL", &env.database_url)
        .env("CAREID_KEYS__ENCRYPTION_KEY", test_encryption_key())
        .args(["audit", "export", "--since", &since.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, stderr(&out))
}

/// What a SIEM does with an export: each event's hash recomputed from the documented form
/// (SHA-256 of the JSON array ["careid.audit.v1", seq, at, kind, outcome, actor, client_id,
/// detail, prev_hash]) and chained to the one before.
pub fn receiver_checks(
    events: &[serde_json::Value],
    mut prev: Option<(i64, String)>,
) -> (i64, String) {
    use sha2::Digest;
    for e in events {
        let canonical = serde_json::json!([
            "careid.audit.v1",
            e["seq"],
            e["at"],
            e["kind"],
            e["outcome"],
            e["actor"],
            e["client_id"],
            e["detail"],
            e["prev_hash"]
        ]);
        let hash = hex::encode(sha2::Sha256::digest(canonical.to_string().as_bytes()));
        assert_eq!(e["row_hash"], hash.as_str(), "row {} verifies", e["seq"]);
        let seq = e["seq"].as_i64().unwrap();
        if let Some((last_seq, last_hash)) = &prev {
            assert_eq!(seq, last_seq + 1, "no gap, no duplicate");
            assert_eq!(
                e["prev_hash"],
                last_hash.as_str(),
                "chained to the one before"
            );
        }
        prev = Some((seq, hash));
    }
    prev.expect("events")
}

#[tokio::test]
async fn the_audit_trail_exports_as_json_lines_a_siem_can_resume_and_verify() {
    let env = TestEnv::start().await;
    sign_in(&env).await;
    let (first, note) = export(&env, 0);
    assert!(first.len() >= 3, "{first:?}");
    assert_eq!(first[0]["seq"], 1);
    let (last_seq, last_hash) = receiver_checks(&first, None);
    assert!(note.contains(&format!("--since {last_seq}")), "{note}");

    // More happens; the next export starts right after the last event received.
    env.confidential_client().await;
    env.admin_client().await;
    let (next, _) = export(&env, last_seq);
    assert_eq!(next[0]["seq"], last_seq + 1);
    receiver_checks(&next, Some((last_seq, last_hash)));
    let (nothing, note) = export(&env, next.last().unwrap()["seq"].as_i64().unwrap());
    assert!(
        nothing.is_empty() && note.contains("exported 0 events"),
        "{note}"
    );
}

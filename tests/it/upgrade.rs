//! A rolling upgrade on PostgreSQL with two real binaries: the previous release (built by
//! `.ci/test` from its commit, `PREVIOUS_CAREID_BIN`) serves while this release migrates the
//! shared database and starts beside it; sign-ins through either keep working throughout, the
//! previous release starts again on the new schema (going back), and a migration marked as
//! breaking in `schema_breaks` stops an older careid from starting.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use careid::clock::{Clock, SystemClock};
use careid::domain::client::{ClientRequest, NewClient};
use careid::domain::registry;
use careid::model::identity::{User, UserStatus};
use careid::pki::Issued;
use careid::store::Db;
use tokio::process::{Child, Command};

use crate::helpers::*;

/// The previous release's `careid`, when `.ci/test` built it.
fn previous_binary() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("PREVIOUS_CAREID_BIN")?);
    assert!(
        path.exists(),
        "PREVIOUS_CAREID_BIN names no file: {}",
        path.display()
    );
    Some(path)
}

/// The files a careid process needs: server certificate, smartcard CAs and CRLs.
struct Files {
    cert: PathBuf,
    key: PathBuf,
    cas: PathBuf,
    crls: PathBuf,
}

impl Files {
    fn write(dir: &Path, pki: &Pki, now: i64) -> Files {
        let server = pki
            .server_ca
            .server_cert(&["localhost", "127.0.0.1"], now)
            .unwrap();
        let put = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        Files {
            cert: put("server.pem", &server.cert_pem),
            key: put("server.key", &server.key_pem),
            cas: put(
                "cards.pem",
                &format!("{}{}", pki.card_root.pem(), pki.card_sub.pem()),
            ),
            crls: put("cards.crl.pem", &pki.crls(&[], now, true)),
        }
    }
}

/// A careid process of the given binary, serving on its own ports.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    fn command(bin: &Path, database_url: &str, dir: &Path) -> Command {
        let mut c = Command::new(bin);
        c.current_dir(dir)
            .env("CAREID_DATABASE__URL", database_url)
            .env("CAREID_KEYS__ENCRYPTION_KEY", test_encryption_key())
            .env("CAREID_LOG__FILTER", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Runs `careid migrate` of `bin` on the database.
    async fn migrate(bin: &Path, database_url: &str, dir: &Path) {
        let out = Self::command(bin, database_url, dir)
            .arg("migrate")
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn start(bin: &Path, database_url: &str, dir: &Path, files: &Files) -> Node {
        let (main, card) = (free_port(), free_port());
        let base = format!("https://localhost:{main}");
        let child = Self::command(bin, database_url, dir)
            .env("CAREID_ISSUER", &base)
            .env("CAREID_LISTEN", format!("127.0.0.1:{main}"))
            .env("CAREID_TLS__CERT_FILE", &files.cert)
            .env("CAREID_TLS__KEY_FILE", &files.key)
            .env("CAREID_SMARTCARD__LISTEN", format!("127.0.0.1:{card}"))
            .env(
                "CAREID_SMARTCARD__BASE_URL",
                format!("https://localhost:{card}"),
            )
            .env("CAREID_SMARTCARD__CA_FILES", format!("[{:?}]", files.cas))
            .env("CAREID_SMARTCARD__CRL_FILES", format!("[{:?}]", files.crls))
            .env("CAREID_DATABASE__MIGRATE_ON_START", "false")
            .arg("serve")
            .spawn()
            .unwrap();
        let mut node = Node { child, base };
        node.wait_ready().await;
        node
    }

    async fn wait_ready(&mut self) {
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_string(&mut err).await;
                }
                panic!("careid at {} exited ({status}): {err}", self.base);
            }
            let ready = insecure_client()
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("careid at {} did not become ready", self.base);
    }

    async fn stop(mut self) {
        let pid = self.child.id().unwrap() as i32;
        // SIGTERM: the drain, as an orchestrator stops a node.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("stopped within 20 s")
            .unwrap();
        assert!(status.success(), "drained and exited 0: {status}");
    }
}

fn insecure_client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

/// A browser holding `card`, trusting the test server CA.
fn browser(pki: &Pki, card: &Issued) -> Browser {
    let pem = format!("{}{}{}", card.cert_pem, pki.card_sub.pem(), card.key_pem);
    Browser {
        client: reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(pki.server_ca.pem().as_bytes()).unwrap(),
            )
            .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap(),
    }
}

/// A whole sign-in through the node at `base`: authorize, card, code, tokens, userinfo.
async fn sign_in_at(
    base: &str,
    pki: &Pki,
    card: &Issued,
    client: &NewClient,
) -> Result<(), String> {
    let id = &client.client.metadata.client_id;
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", id)
        .append_pair("redirect_uri", RP_REDIRECT)
        .append_pair("scope", "openid profile")
        .append_pair("state", "st")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let url = format!("{base}/authorize?{}", q.finish());
    let code = match browser(pki, card).sign_in(&url).await {
        SignIn::Redirected(to) => query_param(&to, "code").ok_or(format!("no code: {to}"))?,
        SignIn::Page(status, body) => return Err(format!("{base}: {status} {body}")),
    };
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(pki.server_ca.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let tokens: serde_json::Value = http
        .post(format!("{base}/token"))
        .basic_auth(id, client.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let access = tokens["access_token"]
        .as_str()
        .ok_or(format!("{base}: {tokens}"))?;
    let info = http
        .get(format!("{base}/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if info.status() != 200 {
        return Err(format!("{base}: userinfo {}", info.status()));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_on_postgresql_keeps_sign_ins_working_with_both_releases() {
    let Some(previous) = previous_binary() else {
        eprintln!("upgrade test skipped: PREVIOUS_CAREID_BIN is not set (.ci/test sets it)");
        return;
    };
    if !std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        return; // several processes on one database: PostgreSQL's case
    }
    let current = PathBuf::from(env!("CARGO_BIN_EXE_careid"));
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    let now = SystemClock.now();
    let pki = Arc::new(Pki::new(now));
    let files = Files::write(dir.path(), &pki, now);

    // The previous release makes its schema and serves.
    Node::migrate(&previous, &url, dir.path()).await;
    let old = Node::start(&previous, &url, dir.path(), &files).await;

    // A person with a card and a relying party, written as any release writes them.
    let db = Db::connect(&url, 2).await.unwrap();
    let uuid = "700000000001";
    let user = User {
        uuid: uuid.into(),
        title: None,
        given_name: "Roll".into(),
        middle_names: None,
        family_name: "Ing".into(),
        email: None,
        id_assurance_level: 3,
        status: UserStatus::Active,
    };
    registry::create_user(&db, &user, "test", now)
        .await
        .unwrap();
    db.record_terms_acceptance(uuid, &careid::config::TermsConfig::default().version, now)
        .await
        .unwrap();
    let card = pki
        .card_sub
        .card_cert(&careid::pki::CardSpec::valid(uuid, "Roll_Ing", now))
        .unwrap();
    registry::bind_smartcard(&db, uuid, &card.der, "test", now)
        .await
        .unwrap();
    let client = registry::register_client(
        &db,
        ClientRequest {
            client_name: "Ward app".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            ..Default::default()
        },
        "test",
        now,
    )
    .await
    .unwrap();
    sign_in_at(&old.base, &pki, &card, &client).await.unwrap();

    // Sign-ins through the previous release go on while this release migrates (the expand
    // step: `careid migrate` as its own step) and starts a node beside it.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let traffic = async {
        let mut done = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            sign_in_at(&old.base, &pki, &card, &client).await?;
            done += 1;
        }
        Ok::<_, String>(done)
    };
    let upgrade = async {
        Node::migrate(&current, &url, dir.path()).await;
        let new = Node::start(&current, &url, dir.path(), &files).await;
        sign_in_at(&new.base, &pki, &card, &client).await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        new
    };
    let (during, new) = tokio::join!(traffic, upgrade);
    let during = during.expect("every sign-in through the old node succeeded");
    sign_in_at(&old.base, &pki, &card, &client).await.unwrap();
    assert!(during >= 1, "sign-ins ran during the migration");

    // The old node is drained and stopped; the new one carries on. Going back: the previous
    // release starts again on the new schema (an unmarked, additive migration) and serves.
    old.stop().await;
    sign_in_at(&new.base, &pki, &card, &client).await.unwrap();
    let back = Node::start(&previous, &url, dir.path(), &files).await;
    sign_in_at(&back.base, &pki, &card, &client).await.unwrap();
    back.stop().await;

    // A later release's migration that breaks this one marks itself: this release then refuses
    // to start (and to migrate), naming it, while the running node is left alone.
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99990001, 'a later release', TRUE, '\\x00'::bytea, 0)")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("INSERT INTO schema_breaks (version, reason) VALUES (99990001, 'drops a column this release reads')")
        .execute(&raw)
        .await
        .unwrap();
    for args in [vec!["migrate"], vec!["audit", "verify"]] {
        let out = Node::command(&current, &url, dir.path())
            .args(&args)
            .output()
            .await
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} refused");
        assert!(
            said.contains("migration 99990001: drops a column this release reads"),
            "{said}"
        );
    }
    new.stop().await;
}

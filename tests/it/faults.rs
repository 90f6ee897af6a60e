//! Database faults are survived and reported: while the database cannot take writes, requests
//! get 503 with `Retry-After` within a few seconds (not a 500, not a hang), `/readyz` says so
//! within its own timeout, and once the database is back sign-ins work again without a restart,
//! with nothing half written (the audit chain still verifies).
//!
//! SQLite: a real full disk (a small tmpfs mounted for the test; needs root, as CI runs).
//! PostgreSQL: a private server of the machine's PostgreSQL, stopped and started again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use careid::domain::client::NewClient;
use sqlx::Connection;
use tokio::process::Command;

use crate::helpers::*;

fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"))
}

async fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().await.unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tmpfs of a few MiB, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    async fn mount(mib: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let size = format!("size={mib}m");
        let path = dir.path().to_str().unwrap().to_string();
        run("mount", &["-t", "tmpfs", "-o", &size, "tmpfs", &path]).await;
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        // Big pieces first, then ever smaller ones, until not one byte more fits.
        for size in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
            let chunk = vec![0u8; size];
            while f.write_all(&chunk).and_then(|_| f.flush()).is_ok() {}
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l", self.dir.path().to_str().unwrap()])
            .status();
    }
}

async fn readyz(env: &TestEnv) -> (u16, Duration) {
    let started = Instant::now();
    let r = env
        .http()
        .get(env.endpoint("/readyz"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), started.elapsed())
}

/// An authorization request's answer while the database is down: 503 with Retry-After, as a
/// page, in good time.
async fn refused_for_now(env: &TestEnv, client: &NewClient) {
    let url = env.authorize_url(&client.client.metadata.client_id, &[], true);
    let started = Instant::now();
    let r = env.http().get(&url).send().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    assert_eq!(r.headers()["retry-after"], "5");
    let page = r.text().await.unwrap();
    assert!(page.contains("unavailable for a moment"), "{page}");
}

/// Signs in, retrying for up to `secs` seconds while the database comes back.
async fn signs_in_again_within(
    env: &TestEnv,
    client: &NewClient,
    card: &careid::pki::Issued,
    secs: u64,
) {
    let url = env.authorize_url(&client.client.metadata.client_id, &[], true);
    let mut last = String::new();
    for _ in 0..secs * 5 {
        match env.browser(Some(card)).sign_in(&url).await {
            SignIn::Redirected(to) if query_param(&to, "code").is_some() => return,
            SignIn::Redirected(to) => last = to,
            SignIn::Page(status, _body) => {
                assert!(
                    status == 503,
                    "only 503 while recovering, got {status}: {_body}"
                );
                last = status.to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no sign-in within {secs} s after the database came back: {last}");
}

async fn chain_intact(env: &TestEnv) {
    let v = env.db.verify_audit_chain().await.unwrap();
    assert!(
        matches!(v, careid::store::AuditVerification::Intact { .. }),
        "{v:?}"
    );
}

#[tokio::test]
async fn sqlite_on_a_full_disk_answers_503_and_recovers_when_space_returns() {
    if on_postgres() {
        return; // the PostgreSQL run has its own outage test below
    }
    let disk = SmallDisk::mount(24).await;
    let env = TestEnv::start_with(Options {
        database_url: Some(format!("sqlite://{}/careid.db", disk.path().display())),
        ..Default::default()
    })
    .await;
    let card = env.user_with_card("600000000091").await;
    let client = env.confidential_client().await;
    assert!(!env.code_for(&client, &card).await.is_empty());

    // The write-ahead log is emptied (so the next write must grow it), then the disk fills up.
    let mut raw =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}/careid.db", disk.path().display()))
            .await
            .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut raw)
        .await
        .unwrap();
    drop(raw);
    let filler = disk.fill();

    refused_for_now(&env, &client).await;
    // Many people at once, so the writer's shared transactions fail too, not only single ones.
    // A write that fits in space SQLite already holds may still succeed; none may fail with
    // anything but 503.
    let url = env.authorize_url(&client.client.metadata.client_id, &[], true);
    let attempts = (0..24).map(|_| {
        let (http, url) = (env.http(), url.clone());
        async move { http.get(&url).send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert!(
        statuses.iter().all(|s| *s == 503 || *s == 200),
        "{statuses:?}"
    );
    let (status, took) = readyz(&env).await;
    assert!(status == 503 || status == 200, "{status}");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Space comes back: the same process signs people in again, no restart.
    std::fs::remove_file(filler).unwrap();
    signs_in_again_within(&env, &client, &card, 10).await;
    assert_eq!(readyz(&env).await.0, 200);
    chain_intact(&env).await;
}

/// A PostgreSQL server of its own in a temporary directory, on a free port.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn bin_dir() -> PathBuf {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("the machine's PostgreSQL server (/usr/lib/postgresql)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("pg_ctl").exists())
            .collect();
        found.sort();
        found.pop().expect("pg_ctl")
    }

    /// As the `postgres` user when running as root (PostgreSQL refuses to run as root).
    async fn as_owner(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let program = program.to_str().unwrap();
        if is_root() {
            let mut all = vec!["-u", "postgres", "--", program];
            all.extend_from_slice(args);
            run("runuser", &all).await;
        } else {
            run(program, args).await;
        }
    }

    async fn start_new() -> PrivatePostgres {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let pg = PrivatePostgres {
            dir,
            bin: Self::bin_dir(),
            port,
        };
        if is_root() {
            run("chown", &["postgres", pg.dir.path().to_str().unwrap()]).await;
        }
        let data = pg.data();
        pg.as_owner(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        )
        .await;
        pg.start().await;
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_str().unwrap().to_string()
    }

    async fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").to_str().unwrap().to_string();
        self.as_owner(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        )
        .await;
    }

    async fn stop(&self) {
        self.as_owner("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
            .await;
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data();
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            c
        } else {
            std::process::Command::new(&pg_ctl)
        };
        let _ = cmd.args(["-D", &data, "-m", "immediate", "stop"]).output();
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[tokio::test]
async fn postgresql_stopped_answers_503_fast_and_sign_ins_resume_when_it_is_back() {
    if !on_postgres() {
        return; // the SQLite run has its own outage test above
    }
    let pg = PrivatePostgres::start_new().await;
    let env = TestEnv::start_with(Options {
        database_url: Some(pg.url()),
        configure: Some(|c| {
            c.database.acquire_timeout_ms = 1000;
            c.database.readiness_timeout_ms = 1500;
        }),
        ..Default::default()
    })
    .await;
    let card = env.user_with_card("600000000092").await;
    let client = env.confidential_client().await;
    assert!(!env.code_for(&client, &card).await.is_empty());

    pg.stop().await;
    refused_for_now(&env, &client).await;
    let (status, took) = readyz(&env).await;
    assert_eq!(status, 503);
    assert!(took < Duration::from_secs(3), "{took:?}");

    pg.start().await;
    signs_in_again_within(&env, &client, &card, 15).await;
    assert_eq!(readyz(&env).await.0, 200);
    chain_intact(&env).await;
}

/// `/readyz` asks for a write, not only a read: a database that answers queries but refuses
/// writes (here SQLite refuses them through a trigger; in service, a read-only or full volume)
/// is not ready, and is ready again once writes work.
#[tokio::test]
async fn readyz_reports_a_database_that_reads_but_does_not_write() {
    if on_postgres() {
        return; // the PostgreSQL outage test above covers readiness there
    }
    let env = TestEnv::start().await;
    assert_eq!(readyz(&env).await.0, 200);
    let mut raw = sqlx::SqliteConnection::connect(&env.database_url)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_writes BEFORE UPDATE ON readiness_probe \
         BEGIN SELECT RAISE(FAIL, 'the volume is read-only'); END",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let discovery = env
        .http()
        .get(env.endpoint("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.status(), 200, "reads still work");
    let (status, took) = readyz(&env).await;
    assert_eq!(
        status, 503,
        "but a database that takes no write is not ready"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    sqlx::query("DROP TRIGGER refuse_writes")
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(readyz(&env).await.0, 200);
}

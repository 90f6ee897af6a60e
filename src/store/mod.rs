//! Storage: one [`Db`] handle over SQLite (embedded default) or PostgreSQL (scale-out), chosen by
//! the database URL. Queries are written once in the SQL both dialects share (`$n` parameters,
//! `RETURNING`, `ON CONFLICT`) and run through sqlx's `Any` driver; dialect differences live only
//! in `migrations/sqlite` and `migrations/postgres`. Each aggregate has its own module of
//! `impl Db` methods that take and return domain types, so no SQL type leaves this layer.
//!
//! Times are stored as unix seconds (`BIGINT`), structured values as JSON text, and secrets only
//! as SHA-256 digests.

mod access_requests;
mod audit;
mod availability;
mod card_agent;
mod clients;
mod codes;
mod console;
mod group_commit;
mod hr;
mod jobs;
mod keys;
mod onboarding;
mod outbox;
mod ra;
mod rbac;
mod refresh;
mod reports;
mod sessions;
mod terms;
mod tokens;
mod users;
mod webauthn;
mod write_set;

use std::path::Path;
use std::str::FromStr;
use std::sync::Once;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};

pub use audit::{AuditRecord, AuditVerification, ChainBreak, StoredAuditRow};
pub use card_agent::AgentRequest;
pub use codes::CodeState;
pub use hr::NewInboxEvent;
pub use jobs::Purged;
pub use outbox::LogoutDelivery;
pub use refresh::RefreshRecord;
pub use tokens::AccessTokenRecord;
pub use users::SessionEnd;
pub use write_set::{AuditEvent, WriteSet, Written};

/// This binary's migrations. Applied migrations it does not know (a newer careid ran them,
/// during a rolling upgrade or before a rollback) are passed over, not refused: whether they
/// break this version is what `schema_breaks` says ([`Db::migration_state`]).
fn migrator(backend: Backend) -> Migrator {
    let mut m = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("migrations/postgres"),
    };
    m.set_ignore_missing(true);
    m
}

/// Where the schema stands against this binary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationState {
    /// Migrations this binary has that the database has not applied.
    pub pending: Vec<i64>,
    /// Applied migrations this binary does not know (a newer version ran them).
    pub unknown: Vec<i64>,
    /// Those of `unknown` listed in `schema_breaks`, with the reason: this version cannot run
    /// on the schema they left.
    pub breaking: Vec<(i64, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database cannot be used right now (see `availability.rs`): worth a 503 and a retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("cannot prepare database location: {0}")]
    Io(#[from] std::io::Error),
    #[error("group commit failed: {0}")]
    GroupCommit(String),
    /// The set's guard changed no row: what it was to claim had been claimed (a code redeemed,
    /// a sign-in completed) by another request first. Nothing of the set was written.
    #[error("claimed by another request first")]
    GuardFailed,
    #[error("{0}")]
    Unsupported(&'static str),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if availability::is_unavailable(&e) {
            availability::noticed();
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Database(e)
        }
    }
}

impl StoreError {
    /// Whether the error is an outage rather than a mistake (a retry later may work).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => {
                availability::is_unavailable(e)
            }
            _ => false,
        }
    }
}

/// How long database work may wait (`[database]`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Waiting for a pooled connection (and for a new one to open).
    pub acquire: std::time::Duration,
    /// PostgreSQL's `statement_timeout` for every statement.
    pub statement: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            acquire: std::time::Duration::from_secs(3),
            statement: std::time::Duration::from_secs(30),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// Write connections on SQLite: one for the writer thread's batches (`group_commit`), one for
/// the writes made outside them (registration, WebAuthn ceremonies, housekeeping, revocations),
/// which then wait for the batch in SQLite's busy handler rather than behind each other.
const SQLITE_WRITERS: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database handle every service shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// Where writes go. SQLite allows one writer at a time; with every pooled connection
    /// writing, the losers sleep in SQLite's busy handler (1–100 ms steps), which is what made
    /// tail latency. So on SQLite writes share [`SQLITE_WRITERS`] connections and queue for them
    /// in the process instead; reads keep the pool (WAL readers never wait for the writer). On
    /// PostgreSQL this is the pool itself.
    writer: AnyPool,
    backend: Backend,
    /// Write sets of this process waiting to share a transaction (`group_commit.rs`), so they
    /// queue in memory instead of contending for the database's write lock (and, on SQLite,
    /// sleeping in its busy handler).
    group: std::sync::Arc<group_commit::GroupCommit>,
}

impl Db {
    /// Connects (creating an SQLite file and its directory if missing) without migrating.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, StoreError> {
        Db::connect_with(url, max_connections, Timeouts::default()).await
    }

    /// [`Db::connect`] with the given timeouts.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        timeouts: Timeouts,
    ) -> Result<Db, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool_options = move |max: u32| {
            let options = AnyPoolOptions::new();
            // A connection handed back while sqlx still counts a transaction on it (its commit or
            // rollback failed, as on a full disk) is closed rather than reused: reused, it kept
            // SQLite's write lock and turned later commits into savepoints inside the dead
            // transaction (see `group_commit.rs`, `write_sets`).
            let options = if backend == Backend::Sqlite {
                options.after_release(|conn, _| {
                    Box::pin(async move {
                        use sqlx::TransactionManager;
                        Ok(sqlx::any::AnyTransactionManager::get_transaction_depth(conn) == 0)
                    })
                })
            } else {
                options
            };
            options
                .max_connections(max)
                .acquire_timeout(timeouts.acquire)
                // A pooled SQLite connection lives in this process and cannot go away, so the
                // ping before each use would only cost a round trip to its thread (measured: 4 %
                // of a login's CPU). A PostgreSQL connection can break, so it is still tested.
                .test_before_acquire(backend == Backend::Postgres)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            // No mmap_size: with the file mapped, a connection drops its mapping
                            // at the start of every read after another connection's write, and
                            // each munmap interrupts every core to flush its TLB. Measured on 2
                            // vCPUs: 14 % fewer logins/s with it (docs/performance.md, session 5).
                            conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;").await?;
                        } else {
                            let ms = timeouts.statement.as_millis();
                            conn.execute(format!("SET statement_timeout = {ms}").as_str()).await?;
                        }
                        Ok(())
                    })
                })
        };
        let pool = pool_options(max_connections)
            .connect_with(options.clone())
            .await?;
        let writer = match backend {
            Backend::Sqlite => pool_options(SQLITE_WRITERS).connect_with(options).await?,
            Backend::Postgres => pool.clone(),
        };
        let group = group_commit::GroupCommit::new(group_commit::BatchWriter {
            pool: writer.clone(),
            backend,
        })?;
        Ok(Db {
            pool,
            writer,
            backend,
            group: std::sync::Arc::new(group),
        })
    }

    /// Migrations this binary has that the database has not applied, migrations the database
    /// has applied that this binary does not know (a newer version wrote them), and which of
    /// those a newer version marked as breaking older ones (`schema_breaks`).
    pub async fn migration_state(&self) -> Result<MigrationState, StoreError> {
        let applied: Vec<i64> =
            match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) => rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>("version"))
                    .collect::<Result<_, _>>()?,
                // No migrations table: nothing applied yet.
                Err(_) => Vec::new(),
            };
        let known: Vec<i64> = migrator(self.backend).iter().map(|m| m.version).collect();
        let pending = known
            .iter()
            .filter(|v| !applied.contains(v))
            .copied()
            .collect();
        let unknown: Vec<i64> = applied
            .iter()
            .filter(|v| !known.contains(v))
            .copied()
            .collect();
        let mut breaking = Vec::new();
        if !unknown.is_empty() {
            // Absent before migration 0018: then nothing is marked.
            let marked = sqlx::query("SELECT version, reason FROM schema_breaks ORDER BY version")
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
            for r in marked {
                let version: i64 = r.try_get("version")?;
                if unknown.contains(&version) {
                    breaking.push((version, r.try_get("reason")?));
                }
            }
        }
        Ok(MigrationState {
            pending,
            unknown,
            breaking,
        })
    }

    /// Applies this binary's pending migrations (the caller has checked `breaking`).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    /// For `/readyz`: the database answers a query, and (SQLite) the writer thread takes writes.
    /// Whether this process's connection to the database is encrypted (PostgreSQL over TLS:
    /// `sslmode` in the URL, e.g. `?sslmode=verify-full&sslrootcert=/path/ca.pem`). SQLite is a
    /// local file: never.
    pub async fn connection_encrypted(&self) -> Result<bool, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(false);
        }
        let row = sqlx::query(
            "SELECT CASE WHEN ssl THEN 1 ELSE 0 END AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i32, _>("ssl")? == 1)
    }

    /// Whether the database was unavailable (an outage error) within `window`.
    pub fn unavailable_recently(&self, window: std::time::Duration) -> bool {
        availability::recently(window)
    }

    /// Proves the database takes writes: updates the one `readiness_probe` row through the
    /// write path (on SQLite, a write connection, as the writer thread uses).
    pub async fn probe_write(&self, now: crate::clock::UnixTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE readiness_probe SET checked_at = $1 WHERE id = 1")
            .bind(now)
            .execute(&self.writer)
            .await?;
        if self.group.thread_stopped() {
            return Err(StoreError::GroupCommit("the writer thread stopped".into()));
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        if self.group.thread_stopped() {
            return Err(StoreError::GroupCommit("the writer thread stopped".into()));
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn group_handle(&self) -> std::sync::Arc<group_commit::GroupCommit> {
        self.group.clone()
    }

    pub(crate) fn batch_writer(&self) -> group_commit::BatchWriter {
        group_commit::BatchWriter {
            pool: self.writer.clone(),
            backend: self.backend,
        }
    }

    pub(crate) fn group(&self) -> &group_commit::GroupCommit {
        &self.group
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// For INSERT, UPDATE, DELETE and write transactions (see [`Db::writer`]'s field).
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// A consistent copy of an SQLite database in a new file, taken while it is in use
    /// (`VACUUM INTO`: one read transaction, so writes carry on meanwhile). PostgreSQL has
    /// pg_dump for this.
    pub async fn backup_to(&self, path: &Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Unsupported(
                "careid backup copies SQLite databases; back up PostgreSQL with pg_dump",
            ));
        }
        let target = path
            .to_str()
            .ok_or(StoreError::Unsupported("the backup path must be UTF-8"))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// `sqlite://data/careid.db` → a URL that creates the file, after creating its directory.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(dir) = Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let query = if query.contains("mode=") {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".into()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Reads a JSON text column into a value.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(text)?)
}

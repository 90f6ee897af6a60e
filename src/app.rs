//! Startup wiring: from a configuration to a running careid. The one module that knows every
//! layer: it opens the store (migrating it), loads what the domain's rules need (smartcard trust,
//! the WebAuthn attestation policy, the signing keys), builds the `Provider`, and hands it to the
//! HTTP layer's listeners and background tasks (`http::server::serve`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::provider::Provider;
use crate::domain::smartcard::load_trust;
use crate::domain::webauthn::policy::AttestationPolicy;
use crate::http::server::{self, Listeners, RunningServer};
use crate::store::{Backend, Db, Timeouts};

/// Refuses a schema that a newer careid changed in a way this version cannot use (a migration
/// listed in `schema_breaks`), and says when it is newer but compatible (as in a rolling
/// upgrade or after a rollback).
pub async fn schema_is_usable(db: &Db) -> anyhow::Result<()> {
    let state = db
        .migration_state()
        .await
        .context("reading the schema version")?;
    if let Some((version, reason)) = state.breaking.first() {
        anyhow::bail!(
            "the database schema was changed by a newer careid in a way this version cannot use (migration {version}: {reason}); run the newer version"
        );
    }
    if !state.unknown.is_empty() {
        tracing::warn!(unknown = ?state.unknown, "the database has migrations this careid does not know: a newer version applied them, and none is marked as breaking this one, so it keeps working");
    }
    Ok(())
}

/// [`schema_is_usable`], and refuses a schema older than this binary (migrations pending: run
/// `careid migrate`).
pub async fn schema_is_current(db: &Db) -> anyhow::Result<()> {
    schema_is_usable(db).await?;
    let pending = db
        .migration_state()
        .await
        .context("reading the schema version")?
        .pending;
    if !pending.is_empty() {
        anyhow::bail!(
            "the database schema is older than this careid: migrations {pending:?} are not applied; run `careid migrate` (or set database.migrate_on_start)"
        );
    }
    Ok(())
}

/// Starts careid on bound listeners.
pub async fn start(
    config: Config,
    clock: Arc<dyn Clock>,
    listeners: Listeners,
) -> anyhow::Result<RunningServer> {
    crate::http::ops::metrics_handle();
    let db = open_database(&config).await?;
    let trust = load_trust(&config.smartcard).context("smartcard trust")?;
    crate::http::reload::announce(&trust, clock.now());
    let attestation = AttestationPolicy::load(&config.webauthn, clock.now())
        .context("webauthn attestation policy")?;
    tracing::info!(
        anchors = attestation.anchor_count(),
        "WebAuthn: AAL3 needs a trusted attestation; {} trust anchors loaded",
        attestation.anchor_count()
    );
    let provider = Arc::new(Provider::new(db, clock, config, trust, attestation));
    provider.load_keys().await.context("signing keys")?;
    provider
        .ensure_console_client()
        .await
        .context("the RA console's client")?;
    provider
        .ensure_portal_client()
        .await
        .context("the onboarding pages' client")?;
    server::serve(provider, listeners).await
}

/// Connects to the configured database with its pool size and timeouts, without migrating.
pub async fn connect(config: &Config) -> anyhow::Result<Db> {
    let c = &config.database;
    let timeouts = Timeouts {
        acquire: Duration::from_millis(c.acquire_timeout_ms),
        statement: Duration::from_millis(c.statement_timeout_ms),
    };
    Db::connect_with(&c.url, c.max_connections, timeouts)
        .await
        .context("database")
}

/// Connects, and migrates when `database.migrate_on_start` says so (otherwise refuses a schema
/// older than this binary); says whether a PostgreSQL connection is encrypted.
async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let db = connect(config).await?;
    if config.database.migrate_on_start {
        schema_is_usable(&db).await?;
        db.migrate().await.context("database migration")?;
    }
    schema_is_current(&db).await?;
    if db.backend() == Backend::Postgres {
        match db.connection_encrypted().await {
            Ok(true) => tracing::info!("database connection encrypted (TLS)"),
            Ok(false) => tracing::warn!(
                "database connection NOT encrypted: add sslmode=verify-full (and sslrootcert) to database.url unless PostgreSQL is on this host"
            ),
            Err(e) => tracing::warn!(error = %e, "could not tell whether the database connection is encrypted"),
        }
    }
    Ok(db)
}

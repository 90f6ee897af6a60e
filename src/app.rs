//! Startup wiring: from a configuration to a running careid. The one module that knows every
//! layer: it opens the store (migrating it), loads what the domain's rules need (smartcard trust,
//! the WebAuthn attestation policy, the signing keys), builds the `Provider`, and hands it to the
//! HTTP layer's listeners and background tasks (`http::server::serve`).

use std::sync::Arc;

use anyhow::Context;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::provider::Provider;
use crate::domain::smartcard::load_trust;
use crate::domain::webauthn::policy::AttestationPolicy;
use crate::http::server::{self, Listeners, RunningServer};
use crate::store::{Backend, Db};

/// Refuses a schema older than this binary (migrations pending: run `careid migrate`), and
/// says when it is newer (another version migrated it, as in a rolling upgrade).
pub async fn schema_is_current(db: &Db) -> anyhow::Result<()> {
    let (pending, unknown) = db
        .migration_state()
        .await
        .context("reading the schema version")?;
    if !pending.is_empty() {
        anyhow::bail!(
            "the database schema is older than this careid: migrations {pending:?} are not applied; run `careid migrate` (or set database.migrate_on_start)"
        );
    }
    if !unknown.is_empty() {
        tracing::warn!(?unknown, "the database has migrations this careid does not know: a newer version applied them (during a rolling upgrade, this older version keeps working)");
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

/// Connects, and migrates when `database.migrate_on_start` says so (otherwise refuses a schema
/// older than this binary); says whether a PostgreSQL connection is encrypted.
async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database.url, config.database.max_connections)
        .await
        .context("database")?;
    if config.database.migrate_on_start {
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

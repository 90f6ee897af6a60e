//! The `careid` command: serve, migrate, keys, clients, audit, version. Every subcommand reads the
//! same configuration as `serve`, so it acts on the same database as a running server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use careid::clock::{Clock, SystemClock};
use careid::config::{Config, LogFormat};
use careid::demo;
use careid::domain::client::ClientRequest;
use careid::domain::keys::{Activation, KeyError};
use careid::domain::provider::Provider;
use careid::domain::registry;
use careid::domain::smartcard::CardTrust;
use careid::http::server::Listeners;
use careid::store::{AuditVerification, Db};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "careid",
    version,
    about = "OpenID Connect provider for health and care staff"
)]
struct Cli {
    /// Configuration file (default: config/careid.toml when it exists).
    #[arg(long, global = true, env = "CAREID_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start
enum Command {
    /// Run the server.
    Serve {
        /// Create (if missing) and use demo certificates, a demo user with a smartcard and a demo client.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations.
    Migrate,
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage relying parties (clients).
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Check the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Import national RBAC data (the format of config/rbac-sample.json).
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Registration-authority set-up.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print a report as JSON (or CSV): active-users-by-org, positions-in-use,
    /// authenticators-by-type, tacs-issued, tacs-overdue, leavers-with-access, ra-activity or
    /// hr-reconciliation.
    Report {
        name: String,
        /// For ra-activity: a quarter (2026-Q3) or a year (2026); the current quarter if absent.
        #[arg(long)]
        period: Option<String>,
        /// Print CSV instead of JSON.
        #[arg(long)]
        csv: bool,
    },
    /// The HR feed: import an extract, or apply what is due now.
    Hr {
        #[command(subcommand)]
        command: HrCommand,
    },
    /// Supplier onboarding: suppliers, their developers, onboarding managers, initial access
    /// tokens (docs/onboarding.md).
    Suppliers {
        #[command(subcommand)]
        command: SuppliersCommand,
    },
    /// Copy the SQLite database, consistent and online, to a new file (VACUUM INTO); for
    /// PostgreSQL use pg_dump (docs/operations.md).
    Backup {
        /// The copy to write (must not exist yet).
        #[arg(long)]
        to: PathBuf,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum SuppliersCommand {
    /// Add a supplier organisation; prints its id.
    Add { name: String },
    /// Make a Care Identity a developer of a supplier.
    Developer { supplier_id: String, uuid: String },
    /// Make a Care Identity an onboarding manager (approves promotions to production).
    Manager { uuid: String },
    /// Issue an initial access token for one dynamic client registration by the supplier.
    Token { supplier_id: String },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the first RA Manager with a smartcard certificate, once, on an empty database.
    Bootstrap {
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        #[arg(long)]
        email: String,
        /// ODS code of the organisation the RA Manager works for.
        #[arg(long)]
        org_code: String,
        #[arg(long)]
        org_name: String,
        /// PEM file with the RA Manager's smartcard authentication certificate.
        #[arg(long)]
        certificate: PathBuf,
    },
}

#[derive(Subcommand)]
enum HrCommand {
    /// Import HR events from a CSV or JSON Lines extract (docs/hr-feed.md): records every good
    /// row, applies them, and reports each bad row by line. Exits 1 if any row was rejected.
    Import {
        file: PathBuf,
        /// csv or jsonl (default: from the file name's extension).
        #[arg(long)]
        format: Option<String>,
    },
    /// Apply what is due now: pending events, leavers whose date has come, ended assignments
    /// (the server does this every hr.scheduler_interval_secs).
    RunDue,
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Job roles, activities, workgroups, organisations and positions (idempotent).
    Rbac { file: PathBuf },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new signing key per algorithm. It is published at once and signs after
    /// keys.publish_before_use_secs (+60 s); the keys it replaces stay published until every
    /// token they signed has expired.
    Rotate {
        /// Emergency (key compromise): the new keys sign at once and the old ones leave the JWKS
        /// at once, so every token they signed stops verifying.
        #[arg(long)]
        now: bool,
    },
    /// Seal every stored private key under keys.encryption_key: the last step of re-keying, once
    /// every server runs with the new key and the old one as keys.previous_encryption_key
    /// (docs/operations.md).
    Reseal,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the audit trail's hash chain: prints "audit chain intact: N rows" and the chain head,
    /// or names the first broken row and exits with status 1.
    Verify,
    /// Print the audit trail as JSON lines for a SIEM, oldest first: each event with its seq,
    /// prev_hash and row_hash, so the receiver can check continuity. Resumable: pass the last
    /// seq received as --since (stderr says which to use next).
    Export {
        /// Only events after this seq (0: from the first).
        #[arg(long, default_value_t = 0)]
        since: i64,
    },
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Register a client and print it (with its secret, shown once) as RFC 7591 JSON.
    Add(Box<AddClient>),
    /// List clients (no secrets).
    List,
    /// Show one client.
    Show { client_id: String },
    /// Disable a client: it can no longer sign users in or get tokens.
    Disable { client_id: String },
}

#[derive(clap::Args)]
struct AddClient {
    #[arg(long)]
    name: String,
    /// Required unless the client only uses client_credentials (an HR feed, say).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// client_secret_basic (default), client_secret_post, private_key_jwt or none (public, PKCE).
    #[arg(long)]
    auth_method: Option<String>,
    #[arg(long, conflicts_with = "jwks")]
    jwks_uri: Option<String>,
    /// File holding the client's public JWK set (private_key_jwt).
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// authorization_code (default), refresh_token, client_credentials (repeat for several).
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// RS256 (default), PS256 or ES256.
    #[arg(long)]
    id_token_signing_alg: Option<String>,
    /// Require this algorithm for client assertions (RS256, RS512, PS256, ES256).
    #[arg(long)]
    token_endpoint_auth_signing_alg: Option<String>,
    /// For confidential clients built for CIS2 that send no PKCE. Weaker: see docs/decisions.md.
    #[arg(long)]
    allow_missing_pkce: bool,
    /// Refresh tokens unused this long expire (default: tokens.refresh_idle_ttl_secs).
    #[arg(long)]
    refresh_idle_secs: Option<i64>,
    /// Refresh-token families end this long after sign-in at the latest.
    #[arg(long)]
    refresh_absolute_secs: Option<i64>,
    /// An admin client (RA tooling): its users' tokens carry the careid:admin scope, the only
    /// tokens the admin API accepts. Register one only for RA tools you run.
    #[arg(long)]
    admin: bool,
    /// An HR feed (the ESR interface) for this organisation (repeat for several): client
    /// credentials only, scope careid:hr-feed, events for these organisations only.
    #[arg(long = "hr-feed", value_name = "ORG")]
    hr_feed_orgs: Vec<String>,
}

/// Logs to stderr (text or JSON) and, for `serve` with `telemetry.otlp_endpoint`, traces to an
/// OpenTelemetry collector.
fn init_tracing(config: &Config, serving: bool) -> Option<careid::telemetry::Traces> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let traces = match careid::telemetry::Traces::start(&config.telemetry) {
        Ok(traces) => traces.filter(|_| serving),
        Err(e) => {
            eprintln!("careid: OpenTelemetry traces are off: {e:#}");
            None
        }
    };
    let otel = traces
        .as_ref()
        .map(|t| tracing_opentelemetry::layer().with_tracer(t.tracer()));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    match config.log.format {
        LogFormat::Json => registry.with(fmt.json().with_current_span(true)).init(),
        LogFormat::Text => registry.with(fmt).init(),
    }
    traces
}

/// The services for a command: the database (refused if its schema is older than this
/// binary), the system clock, and no smartcard trust or attestation policy (no command signs
/// anyone in).
async fn cli_provider(config: Config) -> anyhow::Result<Provider> {
    let db = database(&config).await?;
    Ok(Provider::new(
        db,
        Arc::new(SystemClock),
        config,
        CardTrust::default(),
        Default::default(),
    ))
}

/// `careid keys reseal`.
async fn reseal_keys(config: Config) -> anyhow::Result<()> {
    let provider = cli_provider(config).await?;
    let (resealed, current) = provider.reseal_keys().await?;
    println!("resealed {resealed} signing keys under keys.encryption_key ({current} already were)");
    provider.load_keys().await?;
    eprintln!("careid: every key opens with keys.encryption_key alone; remove keys.previous_encryption_key from every server");
    Ok(())
}

/// `careid backup --to FILE`.
async fn backup(config: &Config, to: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !to.exists(),
        "{} exists already; choose a new file",
        to.display()
    );
    let db = database(config).await?;
    db.backup_to(to).await?;
    let size = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    println!("backed up to {} ({size} bytes)", to.display());
    Ok(())
}

/// The file of an `sqlite:` database URL.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// The database with every migration applied (`careid migrate`, and the demo's set-up).
async fn migrated_database(config: &Config) -> anyhow::Result<Db> {
    let db = careid::app::connect(config).await?;
    careid::app::schema_is_usable(&db).await?;
    db.migrate().await.context("database migration")?;
    Ok(db)
}

/// The database for a command other than `serve` and `migrate`: never migrated here, and
/// refused if its schema is older than this binary.
async fn database(config: &Config) -> anyhow::Result<Db> {
    if let Some(path) = sqlite_file(&config.database.url) {
        anyhow::ensure!(
            path.exists(),
            "no database at {} (database.url): check the path, or run `careid migrate` to create one",
            path.display()
        );
    }
    let db = careid::app::connect(config).await?;
    careid::app::schema_is_current(&db).await?;
    Ok(db)
}

async fn serve(mut config: Config, demo_mode: bool) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut banner = None;
    if demo_mode {
        let dir = PathBuf::from(demo::DEMO_DIR);
        let password = demo::ensure_pki(&dir, clock.now())?;
        demo::configure(&mut config, &dir);
        if config.keys.encryption_key.is_none() {
            config.keys.encryption_key = Some(demo::ensure_key_encryption_key(&dir)?);
        }
        let db = migrated_database(&config).await?;
        let (client_id, _) = demo::ensure_data(&db, &dir, clock.now()).await?;
        let invitation =
            demo::passkey_invitation(&db, clock.now(), config.webauthn.invitation_ttl_secs).await?;
        db.close().await;
        banner = Some(demo::instructions(
            &config,
            &dir,
            &client_id,
            &password,
            &invitation,
        ));
    } else if config.keys.encryption_key.is_none() {
        return Err(KeyError::NoEncryptionKey.into());
    }
    let listeners = Listeners::bind(&config).await?;
    let running = careid::app::start(config.clone(), clock, listeners).await?;
    tracing::info!(issuer = %config.issuer, main = %running.main_addr, card = ?running.card_addr, "careid started");
    if let Some(b) = banner {
        println!("{b}");
    }
    let signal = stop_signal().await?;
    let grace = config.server.shutdown_grace_secs;
    tracing::info!(
        signal,
        grace_secs = grace,
        "draining: /readyz now answers 503, no new connections"
    );
    let db = running.provider.db.clone();
    if running.shutdown().await {
        tracing::info!("drained; stopped");
    } else {
        tracing::warn!(
            grace_secs = grace,
            "connections still open after server.shutdown_grace_secs; stopping anyway"
        );
    }
    // Closing the pools lets SQLite fold its write-ahead log into the database file, so the
    // file alone is a whole copy once careid has stopped.
    db.close().await;
    Ok(())
}

/// Waits for SIGTERM (a container runtime or systemd stopping careid) or SIGINT (Ctrl-C).
async fn stop_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

async fn clients(config: &Config, command: ClientsCommand) -> anyhow::Result<()> {
    let db = database(config).await?;
    let now = SystemClock.now();
    match command {
        ClientsCommand::Add(a) => {
            let a = *a;
            let jwks = match &a.jwks {
                Some(path) => Some(
                    serde_json::from_str(
                        &std::fs::read_to_string(path)
                            .with_context(|| format!("--jwks {}", path.display()))?,
                    )
                    .context("--jwks is not JSON")?,
                ),
                None => None,
            };
            let request = ClientRequest {
                client_name: a.name,
                redirect_uris: a.redirect_uris,
                post_logout_redirect_uris: a.post_logout_redirect_uris,
                backchannel_logout_uri: a.backchannel_logout_uri,
                auth_method: a.auth_method,
                jwks_uri: a.jwks_uri,
                jwks,
                grant_types: a.grant_types,
                scopes: a
                    .scopes
                    .iter()
                    .flat_map(|s| s.split([' ', ',']))
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                id_token_signing_alg: a.id_token_signing_alg,
                token_endpoint_auth_signing_alg: a.token_endpoint_auth_signing_alg,
                allow_missing_pkce: a.allow_missing_pkce,
                refresh_token_idle_ttl: a.refresh_idle_secs,
                refresh_token_absolute_ttl: a.refresh_absolute_secs,
                admin: a.admin,
                hr_feed_orgs: a.hr_feed_orgs,
            };
            let new = registry::register_client(&db, request, "cli", now).await?;
            println!("{}", serde_json::to_string_pretty(&new.to_json())?);
        }
        ClientsCommand::List => {
            let list: Vec<_> = db
                .clients()
                .await?
                .into_iter()
                .map(|c| client_json(&c))
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        ClientsCommand::Show { client_id } => {
            let client = db
                .client(&client_id)
                .await?
                .with_context(|| format!("no such client: {client_id}"))?;
            println!("{}", serde_json::to_string_pretty(&client_json(&client))?);
        }
        ClientsCommand::Disable { client_id } => {
            registry::disable_client(&db, &client_id, "cli", now).await?;
            println!("disabled {client_id}");
        }
    }
    Ok(())
}

async fn suppliers(config: Config, command: SuppliersCommand) -> anyhow::Result<()> {
    let provider = cli_provider(config).await?;
    match command {
        SuppliersCommand::Add { name } => {
            let supplier = provider.create_supplier(&name, "cli").await?;
            println!("{}", supplier.id);
        }
        SuppliersCommand::Developer { supplier_id, uuid } => {
            provider
                .add_onboarding_member(&uuid, Some(&supplier_id), "cli")
                .await?;
            println!("{uuid} develops for {supplier_id}");
        }
        SuppliersCommand::Manager { uuid } => {
            provider.add_onboarding_member(&uuid, None, "cli").await?;
            println!("{uuid} is an onboarding manager");
        }
        SuppliersCommand::Token { supplier_id } => {
            let (token, expires_at) = provider
                .issue_initial_access_token(&supplier_id, "cli")
                .await?;
            println!("{token}");
            eprintln!(
                "one registration at {}, until {expires_at} (unix time)",
                provider.config.endpoint("/connect/register")
            );
        }
    }
    Ok(())
}

async fn hr(config: Config, command: HrCommand) -> anyhow::Result<()> {
    use careid::domain::hr::feed::ImportFormat;
    let provider = cli_provider(config).await?;
    match command {
        HrCommand::Import { file, format } => {
            let format = match format.as_deref() {
                Some("csv") => ImportFormat::Csv,
                Some("jsonl" | "json" | "ndjson") => ImportFormat::JsonLines,
                Some(other) => anyhow::bail!("--format must be csv or jsonl, not {other}"),
                None => ImportFormat::of(&file).with_context(|| {
                    format!(
                        "{}: name the format with --format csv or --format jsonl",
                        file.display()
                    )
                })?,
            };
            let reader = std::io::BufReader::new(
                std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?,
            );
            let source = format!("file:{}", file.display());
            let started = std::time::Instant::now();
            let report = provider.record_hr_file(reader, format, &source).await?;
            let recorded_in = started.elapsed().as_secs_f64();
            let people = provider.finish_hr_import(&source, &report).await?;
            let secs = started.elapsed().as_secs_f64();
            for r in &report.rejected {
                let id = r
                    .event_id
                    .as_deref()
                    .map(|i| format!("{i}: "))
                    .unwrap_or_default();
                eprintln!("line {}: {id}{}", r.line, r.reason);
            }
            println!(
                "{} rows: {} recorded, {} duplicates, {} rejected; {people} people applied; in {secs:.1} s ({recorded_in:.1} s reading and recording, {:.1} s applying; {:.0} rows/s)",
                report.received,
                report.recorded,
                report.duplicates.len(),
                report.rejected.len(),
                secs - recorded_in,
                report.received as f64 / secs.max(0.001)
            );
            let attention = provider
                .db
                .hr_inbox_counts()
                .await?
                .get("attention")
                .copied()
                .unwrap_or(0);
            if attention > 0 {
                println!("{attention} events need attention: GET /admin/api/v1/hr/attention");
            }
            if !report.rejected.is_empty() {
                anyhow::bail!("{} rows were rejected", report.rejected.len());
            }
        }
        HrCommand::RunDue => {
            let done = provider.run_hr_schedule().await?;
            println!(
                "{} people applied, {} leavers, {} ended assignments ({} sessions ended)",
                done.people_applied, done.leavers, done.assignments_ended, done.sessions_ended
            );
        }
    }
    Ok(())
}

async fn verify_audit(config: &Config) -> anyhow::Result<()> {
    let db = database(config).await?;
    let verification = db.verify_audit_chain().await;
    db.close().await;
    match verification? {
        AuditVerification::Intact {
            rows,
            legacy_rows,
            head,
        } => {
            println!("audit chain intact: {rows} rows");
            if legacy_rows > 0 {
                println!("{legacy_rows} older rows were written before the chain existed and are not protected by it");
            }
            if let Some((seq, hash)) = head {
                println!("chain head: seq {seq}, row_hash {hash}");
            }
            Ok(())
        }
        AuditVerification::Broken {
            row_id: Some(id),
            reason,
        } => anyhow::bail!("audit chain broken at row {id}: {reason}"),
        AuditVerification::Broken {
            row_id: None,
            reason,
        } => anyhow::bail!("audit chain broken before its first row: {reason}"),
    }
}

/// `careid audit export`: JSON lines on stdout, in pages of 1000, until the newest event.
async fn export_audit(config: &Config, since: i64) -> anyhow::Result<()> {
    use std::io::Write;
    let db = database(config).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut last, mut count) = (since, 0u64);
    loop {
        let rows = db.audit_export_after(last, 1000).await?;
        for r in &rows {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
            last = r.seq;
            count += 1;
        }
        if rows.len() < 1000 {
            break;
        }
    }
    out.flush()?;
    eprintln!("exported {count} events; next time: careid audit export --since {last}");
    Ok(())
}

fn client_json(c: &careid::domain::client::Client) -> serde_json::Value {
    let mut v = serde_json::to_value(&c.metadata).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "status".into(),
            (if c.active { "active" } else { "disabled" }).into(),
        );
    }
    v
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Version = cli.command {
        println!("careid {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let config = match cli.command {
        Command::Serve { demo: true } => Config::load_with(cli.config.as_deref(), |c| {
            demo::configure(c, std::path::Path::new(demo::DEMO_DIR))
        })?,
        _ => Config::load(cli.config.as_deref())?,
    };
    let serving = matches!(cli.command, Command::Serve { .. });
    let traces = init_tracing(&config, serving);
    let result = match cli.command {
        Command::Serve { demo } => serve(config, demo).await,
        Command::Migrate => {
            migrated_database(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate { now },
        } => {
            let provider = cli_provider(config).await?;
            provider.load_keys().await?;
            let activation = if now {
                Activation::Immediately
            } else {
                Activation::AfterPublication
            };
            for key in provider.rotate_keys(activation).await? {
                let when = time::OffsetDateTime::from_unix_timestamp(key.activate_at)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| key.activate_at.to_string());
                if now {
                    println!(
                        "new signing key {} ({}): signs now; the keys it replaces are retired",
                        key.kid,
                        key.alg.as_str()
                    );
                } else {
                    println!(
                        "new signing key {} ({}): published now, signs from {when}",
                        key.kid,
                        key.alg.as_str()
                    );
                }
            }
            if now {
                eprintln!("careid: tokens signed by the retired keys no longer verify; running servers switch within {} s", careid::domain::keys::RELOAD_INTERVAL_SECS);
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Reseal,
        } => reseal_keys(config).await,
        Command::Backup { to } => backup(&config, &to).await,
        Command::Clients { command } => clients(&config, command).await,
        Command::Admin {
            command:
                AdminCommand::Bootstrap {
                    given_name,
                    family_name,
                    email,
                    org_code,
                    org_name,
                    certificate,
                },
        } => {
            let db = database(&config).await?;
            let pem = std::fs::read_to_string(&certificate)
                .with_context(|| format!("reading {}", certificate.display()))?;
            let der = rustls_pemfile::certs(&mut pem.as_bytes())
                .next()
                .context("--certificate holds no PEM certificate")??;
            let b = careid::domain::ra::Bootstrap {
                given_name,
                family_name,
                email,
                org_code,
                org_name,
                certificate_der: der.to_vec(),
            };
            let uuid = careid::domain::ra::bootstrap(&db, &b, SystemClock.now()).await?;
            println!("created RA Manager {uuid}; they accept the terms at their first sign-in");
            Ok(())
        }
        Command::Hr { command } => hr(config, command).await,
        Command::Suppliers { command } => suppliers(config, command).await,
        Command::Report { name, period, csv } => {
            let db = database(&config).await?;
            let report =
                careid::domain::reports::run(&db, &name, SystemClock.now(), period.as_deref())
                    .await?
                    .with_context(|| {
                        format!(
                            "no report {name}; reports: {}",
                            careid::domain::reports::REPORTS.join(", ")
                        )
                    })?;
            if csv {
                print!("{}", careid::domain::reports::to_csv(&report));
            } else {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
        Command::Import {
            command: ImportCommand::Rbac { file },
        } => {
            let db = database(&config).await?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let s = careid::domain::rbac::import(&db, &text, "cli", SystemClock.now()).await?;
            println!("imported {} organisations, {} job roles, {} activities, {} workgroups, {} positions", s.organisations, s.roles, s.activities, s.workgroups, s.positions);
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => verify_audit(&config).await,
        Command::Audit {
            command: AuditCommand::Export { since },
        } => export_audit(&config, since).await,
        Command::Version => Ok(()),
    };
    if let Some(traces) = traces {
        // Sends what is still buffered; the exporter's blocking client must not stop on the runtime.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    result
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("careid: {e:#}");
            ExitCode::FAILURE
        }
    }
}

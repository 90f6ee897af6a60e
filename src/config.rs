//! Configuration: one typed struct, read from a TOML file and then from `CAREID_*`
//! environment variables (`__` separates nested keys, e.g. `CAREID_DATABASE__URL`).
//! Unknown keys and bad values are refused at start, naming the key and where it came from.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Environment variables with the `CAREID_` prefix that are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &["CONFIG"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The issuer identifier, used byte for byte in discovery, `iss` and client-assertion `aud`.
    /// May carry an explicit port and a path; every endpoint lives under the path.
    pub issuer: String,
    /// Main listener: OIDC endpoints, pages, operations endpoints.
    pub listen: SocketAddr,
    pub database: DatabaseConfig,
    /// TLS for both listeners. Absent: plain HTTP (only behind a TLS-terminating proxy).
    pub tls: Option<TlsConfig>,
    pub smartcard: SmartcardConfig,
    pub session: SessionConfig,
    pub tokens: TokenConfig,
    pub backchannel: BackchannelConfig,
    pub housekeeping: HousekeepingConfig,
    pub keys: KeysConfig,
    pub terms: TermsConfig,
    pub webauthn: WebauthnConfig,
    /// Connection handling on both listeners: timeouts, connection cap, HTTP/2 limits.
    pub server: ServerConfig,
    /// Per-address and per-client rate limits, and the bound on audit rows from failures.
    pub limits: LimitsConfig,
    /// Who may read `/metrics`.
    pub metrics: MetricsConfig,
    /// Where careid's own calls to relying parties may go.
    pub outbound: OutboundConfig,
    /// The RA console under `/ra/`.
    pub console: ConsoleConfig,
    /// Identity registration rules a trust may choose.
    pub registration: RegistrationConfig,
    /// The HR feed (`/hr/api/v1`, `careid hr import`) and its scheduler.
    pub hr: HrConfig,
    /// The smartcard agent's sign-in and card-removal protocol (`/agent/v1`).
    pub card_agent: CardAgentConfig,
    /// Supplier onboarding: dynamic client registration, stages, conformance checks.
    pub onboarding: OnboardingConfig,
    /// The live copy of the audit trail for a SIEM (`docs/operations.md`).
    pub audit: AuditConfig,
    /// OpenTelemetry traces (off unless `otlp_endpoint` is set).
    pub telemetry: TelemetryConfig,
    pub log: LogConfig,
}

/// OpenTelemetry traces of `careid serve` (`src/telemetry.rs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP collector, e.g. `http://otel-collector:4318` (spans go to
    /// `<otlp_endpoint>/v1/traces`). Unset: no traces.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the spans.
    pub service_name: String,
    /// How long one export may take before it is dropped.
    pub export_timeout_secs: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: "careid".into(),
            export_timeout_secs: 10,
        }
    }
}

/// The live audit sink: every event, in chain order with its hashes, as JSON lines appended to
/// a file or sent to syslog (RFC 5424 over a Unix datagram socket). At least once: a cursor file
/// says how far the sink got, so a restart carries on where it stopped (receivers drop repeats
/// by `seq`). Off unless `sink_file` or `sink_syslog` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Append each event as a JSON line to this file (opened anew for every batch, so log
    /// rotation by renaming works).
    pub sink_file: Option<PathBuf>,
    /// Send each event to this syslog socket (usually `/dev/log`), facility authpriv.
    pub sink_syslog: Option<PathBuf>,
    /// Where the sink records the last `seq` delivered. Default: the sink file's path with
    /// `.cursor` added; required with `sink_syslog` alone.
    pub sink_cursor_file: Option<PathBuf>,
    /// How often the sink looks for new events.
    pub sink_poll_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            sink_file: None,
            sink_syslog: None,
            sink_cursor_file: None,
            sink_poll_ms: 1000,
        }
    }
}

impl AuditConfig {
    /// The cursor file in use, when a sink is configured.
    pub fn cursor_file(&self) -> Option<PathBuf> {
        self.sink_cursor_file.clone().or_else(|| {
            self.sink_file.as_ref().map(|f| {
                let mut name = f.clone().into_os_string();
                name.push(".cursor");
                PathBuf::from(name)
            })
        })
    }
}

/// The HR feed: how big a batch the API takes and how often the scheduler runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HrConfig {
    /// Most events in one `POST /hr/api/v1/events` (a larger batch is refused whole: 413).
    pub max_batch_events: usize,
    /// How often the scheduler applies what is due: future-dated starts and ends, leavers whose
    /// date has come, events left pending. Several processes may run it; each item is claimed
    /// once.
    pub scheduler_interval_secs: u64,
}

impl Default for HrConfig {
    fn default() -> Self {
        HrConfig {
            max_batch_events: 1000,
            scheduler_interval_secs: 15,
        }
    }
}

/// The card agent (`careid-agent`): how long its challenges live and how often it must show
/// it is still watching the reader.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CardAgentConfig {
    /// How long a challenge may wait for the card's signature (single use either way).
    pub challenge_ttl_secs: i64,
    /// How often the agent is told to send a heartbeat.
    pub heartbeat_interval_secs: i64,
    /// A card-bound session whose agent has been silent this long is ended (the agent may have
    /// been killed, or the workstation unplugged, with the card gone).
    pub heartbeat_timeout_secs: i64,
    /// How often each process looks for silent agents.
    pub sweep_interval_secs: u64,
}

impl Default for CardAgentConfig {
    fn default() -> Self {
        CardAgentConfig {
            challenge_ttl_secs: 60,
            heartbeat_interval_secs: 15,
            heartbeat_timeout_secs: 60,
            sweep_interval_secs: 5,
        }
    }
}

/// Supplier onboarding (`docs/onboarding.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnboardingConfig {
    /// How long an initial access token (one registration) stays usable.
    pub initial_access_token_ttl_secs: i64,
    /// After a secret rotation, the old secret keeps working this long.
    pub secret_overlap_secs: i64,
    /// Scopes a client may hold only in production (refused at registration in integration).
    pub production_only_scopes: Vec<String>,
    /// The conformance check wants a complete test sign-in no older than this.
    pub test_sign_in_max_age_secs: i64,
    /// A CA (PEM certificate and key) that issues test identities' card certificates, offered
    /// as PKCS#12 downloads. It must be one of `smartcard.ca_files` (with a CRL when CRLs are
    /// configured). Absent: test identities get a passkey invitation only.
    pub test_card_ca_cert_file: Option<PathBuf>,
    pub test_card_ca_key_file: Option<PathBuf>,
    /// Test organisations (ODS codes): test identities may hold their positions (never ones
    /// carrying RA or sponsor power), like CIS2's integration test organisations.
    pub test_organisations: Vec<String>,
}

impl Default for OnboardingConfig {
    fn default() -> Self {
        OnboardingConfig {
            initial_access_token_ttl_secs: 7 * 86400,
            secret_overlap_secs: 86400,
            production_only_scopes: vec!["offline_access".into()],
            test_sign_in_max_age_secs: 7 * 86400,
            test_card_ca_cert_file: None,
            test_card_ca_key_file: None,
            test_organisations: Vec::new(),
        }
    }
}

/// Identity registration rules a trust may choose where the national policy leaves them open.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// The RA who registers an identity may not also record its identity check: a second RA
    /// does (four eyes). Off by default: the policy in `shared/reference` does not demand it.
    pub second_ra_verifies: bool,
}

/// The RA console (`/ra/`): careid's own admin client, signed in with a card or an AAL3 key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console. Off: `/ra/` answers 404 and the console client is disabled.
    pub enabled: bool,
    /// A console session with no request for this long has ended (the person signs in again).
    pub idle_timeout_secs: i64,
    /// Sensitive actions (TACs, RA roles, binding or revoking authenticators, closing an
    /// identity) need an authentication at most this old; otherwise the console asks for the
    /// card again.
    pub reauth_max_age_secs: i64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            idle_timeout_secs: 600,
            reauth_max_age_secs: 300,
        }
    }
}

/// careid calls relying parties (back-channel logout, `jwks_uri`) on public addresses only,
/// unless a private network is named here (`domain/outbound.rs`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Private, loopback or link-local networks relying parties may be reached on, as CIDRs
    /// (e.g. `["10.20.0.0/16"]` for relying parties inside the trust's network).
    pub allowed_private_networks: Vec<ipnet::IpNet>,
}

/// `/metrics` is not for everyone who reaches the issuer: it is served on a separate
/// plain-HTTP listener for a private network, or on the main listener to a bearer token, or not
/// at all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A separate listener (plain HTTP) serving `/metrics`, `/healthz` and `/readyz` only, e.g.
    /// `127.0.0.1:9464`. Keep it on a private network.
    pub listen: Option<SocketAddr>,
    /// When set (at least 32 characters), the main listener serves `/metrics` to requests with
    /// `Authorization: Bearer <token>`. Unset: `/metrics` is not served on the main listener.
    pub token: Option<String>,
}

/// How both listeners treat connections (slow, idle or too many clients).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// A TLS handshake must finish within this many seconds.
    pub tls_handshake_timeout_secs: u64,
    /// HTTP/1.1: a request's headers must arrive within this many seconds of the connection
    /// being ready for them (this also closes a kept-alive connection that sends nothing).
    pub header_read_timeout_secs: u64,
    /// A connection with no request in progress for this long is closed (HTTP/1.1 and HTTP/2).
    pub idle_timeout_secs: u64,
    /// A request (reading its body, handling it) must finish within this long: 408 otherwise.
    pub request_timeout_secs: u64,
    /// Open connections per listener. Beyond it a new connection waits `connection_wait_ms`
    /// for a free slot, then is closed.
    pub max_connections: usize,
    pub connection_wait_ms: u64,
    /// HTTP/2: streams (requests) open at once on one connection.
    pub http2_max_concurrent_streams: u32,
    /// Request headers: at most this many bytes (HTTP/1.1 read buffer, HTTP/2 header list).
    pub max_header_bytes: u32,
    /// On SIGTERM or SIGINT: `/readyz` turns unready, new connections are refused, and requests
    /// in flight get this long to finish before the process exits.
    pub shutdown_grace_secs: u64,
    /// On SIGTERM, keep accepting this long with `/readyz` already unready, so that a load
    /// balancer (a Kubernetes Service) stops sending new requests before the listeners close.
    /// 0 closes them at once.
    pub shutdown_delay_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tls_handshake_timeout_secs: 10,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            request_timeout_secs: 30,
            max_connections: 1024,
            connection_wait_ms: 100,
            http2_max_concurrent_streams: 100,
            max_header_bytes: 32 * 1024,
            shutdown_grace_secs: 10,
            shutdown_delay_secs: 0,
        }
    }
}

/// One class of rate-limited endpoints: a rate per minute and a burst, per source address and
/// per client_id. A rate of 0 turns that limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateClass {
    pub per_address_per_minute: u32,
    pub per_address_burst: u32,
    pub per_client_per_minute: u32,
    pub per_client_burst: u32,
}

impl Default for RateClass {
    fn default() -> Self {
        RateClass::new(300, 100, 1200, 300)
    }
}

impl RateClass {
    pub const fn new(address: u32, address_burst: u32, client: u32, client_burst: u32) -> Self {
        RateClass {
            per_address_per_minute: address,
            per_address_burst: address_burst,
            per_client_per_minute: client,
            per_client_burst: client_burst,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// false turns every rate limit off (load tests); connection limits stay.
    pub enabled: bool,
    /// `/authorize` (GET and POST) and `/card/login`.
    pub authorize: RateClass,
    /// `/token`, `/access_token`, `/introspect`, `/revoke`, `/token/revoke`.
    pub token: RateClass,
    /// The WebAuthn option endpoints and `/webauthn/authenticate` (no client_id: per address).
    pub webauthn: RateClass,
    /// `/admin/api/v1/*` (client: the bearer token's `client_id`).
    pub admin: RateClass,
    /// Audit events for unauthenticated failures (card, WebAuthn and client-authentication
    /// refusals): at most this many per kind and source address per minute; the rest are
    /// counted and summed up in one `audit.failures_suppressed` event per minute.
    pub failure_audit_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            enabled: true,
            authorize: RateClass::new(600, 200, 3000, 600),
            token: RateClass::new(3000, 600, 3000, 600),
            webauthn: RateClass::new(600, 200, 0, 0),
            admin: RateClass::new(300, 100, 600, 200),
            failure_audit_per_minute: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TermsConfig {
    /// The current version of the terms and conditions. Users accept each version once, before
    /// any tokens are issued for them; changing it asks everyone again at their next sign-in.
    pub version: String,
    /// Plain-text file with the terms (paragraphs separated by blank lines). Absent: careid's
    /// built-in summary of the NHS Care Identity terms.
    pub file: Option<std::path::PathBuf>,
}

impl Default for TermsConfig {
    fn default() -> Self {
        TermsConfig {
            version: "2026-11".into(),
            file: None,
        }
    }
}

/// WebAuthn (security keys, passkeys, platform authenticators) and its assurance policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// The relying-party id credentials are scoped to. Absent: the issuer's host name. Once
    /// credentials are registered it must not change, or none of them can sign in.
    pub rp_id: Option<String>,
    /// The name authenticators show the user while registering.
    pub rp_name: String,
    /// Origins allowed to run the WebAuthn ceremonies. Absent: the issuer's origin only.
    pub origins: Vec<String>,
    /// PEM files of attestation root certificates trusted for AAL3 (each file may hold several).
    /// An authenticator whose attestation chains to one of them, that is not backup-eligible
    /// (not a synced passkey), reaches AAL3; every other authenticator is at most AAL2.
    pub aal3_attestation_roots: Vec<PathBuf>,
    /// If not empty, only these AAGUIDs (authenticator models) reach AAL3, even under a trusted root.
    pub aal3_aaguids: Vec<String>,
    /// A FIDO Metadata Service (MDS3) BLOB on disk: its authenticators' attestation roots are
    /// trusted for AAL3 (per AAGUID), except models with a compromise or revocation report.
    pub metadata_blob: Option<PathBuf>,
    /// The root certificate (PEM) that signs the metadata BLOB; required with `metadata_blob`.
    pub metadata_blob_root: Option<PathBuf>,
    /// How long a started registration or sign-in ceremony stays valid.
    pub ceremony_ttl_secs: i64,
    /// How long an RA's binding invitation stays valid.
    pub invitation_ttl_secs: i64,
    /// How recent a session's authentication must be to register another authenticator.
    pub self_service_max_age_secs: i64,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        WebauthnConfig {
            rp_id: None,
            rp_name: "careid".into(),
            origins: Vec::new(),
            aal3_attestation_roots: Vec::new(),
            aal3_aaguids: Vec::new(),
            metadata_blob: None,
            metadata_blob_root: None,
            ceremony_ttl_secs: 300,
            invitation_ttl_secs: 3600,
            self_service_max_age_secs: 900,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackchannelConfig {
    /// How often each process looks for logout tokens to deliver.
    pub poll_interval_ms: u64,
    /// Timeout of one delivery attempt.
    pub request_timeout_secs: u64,
    /// Retries stop after this long: relying parties refuse logout tokens older than 5 minutes.
    pub give_up_after_secs: i64,
    /// Deliveries in flight at once in each process.
    pub max_in_flight: usize,
    /// Deliveries in flight at once to one relying party (a slow one delays only itself).
    pub per_client_in_flight: usize,
}

impl Default for BackchannelConfig {
    fn default() -> Self {
        BackchannelConfig {
            poll_interval_ms: 1000,
            request_timeout_secs: 10,
            give_up_after_secs: 300,
            max_in_flight: 32,
            per_client_in_flight: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HousekeepingConfig {
    /// How often expired rows are purged (one process at a time does it).
    pub interval_secs: u64,
    /// How long expired rows are kept before they are purged.
    pub keep_expired_secs: i64,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        HousekeepingConfig {
            interval_secs: 300,
            keep_expired_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created if missing, WAL) or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
    /// How long a client registration read from the database is reused. A client disabled by
    /// another process (`careid clients disable`, another instance) stops being served within
    /// this many seconds. 0 reads it on every request.
    pub client_cache_secs: i64,
    /// `serve` applies pending migrations at start. Set it to false where several processes
    /// share a PostgreSQL database, and run `careid migrate` as its own step before starting
    /// the new version; a server then refuses to start against a schema older than itself.
    pub migrate_on_start: bool,
    /// How long a request waits for a database connection (or for a new one to open) before
    /// it is answered 503 with `Retry-After`.
    pub acquire_timeout_ms: u64,
    /// PostgreSQL: every statement is cancelled after this long (`statement_timeout`).
    pub statement_timeout_ms: u64,
    /// `/readyz` answers 503 when its write to the database takes longer than this.
    pub readiness_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM server certificate chain (leaf first).
    pub cert_file: PathBuf,
    /// PEM private key of the server certificate.
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmartcardConfig {
    /// The dedicated card-login listener, which asks browsers for a client certificate.
    /// Absent: no TLS card login (certificates can still arrive from a trusted proxy).
    pub listen: Option<SocketAddr>,
    /// Public base URL of the card listener, e.g. `https://localhost:8444`.
    pub base_url: Option<String>,
    /// PEM files holding the smartcard CAs: self-signed roots are trust anchors, the rest
    /// intermediates.
    pub ca_files: Vec<PathBuf>,
    /// DER or PEM certificate revocation lists issued by those CAs.
    pub crl_files: Vec<PathBuf>,
    /// TLS-terminating proxies allowed to pass a client certificate in `cert_header` (and a
    /// client address in `X-Forwarded-For`): addresses (`10.0.0.5`) or networks
    /// (`10.42.0.0/16`, an ingress controller's pods). From anywhere else the headers are ignored.
    pub trusted_proxies: TrustedProxies,
    /// Header carrying the URL-encoded PEM client certificate (nginx `$ssl_client_escaped_cert`)
    /// when `cert_header_format` is `nginx`.
    pub cert_header: String,
    /// The header a trusted proxy puts the client's address in: `x-forwarded-for` (a list; the
    /// right-most address that is not a trusted proxy counts) or, say, `x-real-ip`.
    pub client_address_header: String,
    /// How the trusted proxy forwards the client certificate: `nginx` (URL-encoded PEM in
    /// `cert_header`), `rfc9440` (`Client-Cert` and `Client-Cert-Chain`) or `xfcc` (Envoy's
    /// `X-Forwarded-Client-Cert`).
    pub cert_header_format: CertHeaderFormat,
    /// Certificate-policy OIDs (dotted, e.g. `2.16.840.1.113883.2.1.3.2.4.1`) of which a card
    /// certificate must carry one. Empty: no policy is required.
    pub required_policy_oids: Vec<String>,
    /// How often the CA and CRL files are checked for changes (and reloaded); 0: only on SIGHUP.
    pub reload_poll_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Sign-in session ends after this long without use.
    pub idle_timeout_secs: i64,
    /// Sign-in session ends this long after authentication, however busy.
    pub absolute_timeout_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub access_token_ttl_secs: i64,
    pub id_token_ttl_secs: i64,
    /// Authorization codes: single use, at most 60 s.
    pub code_ttl_secs: i64,
    /// How long a started sign-in (authorization request awaiting the user) stays valid.
    pub login_flow_ttl_secs: i64,
    /// A refresh token unused for this long expires (each use rotates it and restarts the clock).
    pub refresh_idle_ttl_secs: i64,
    /// Absolute lifetime of an offline_access refresh-token family. Other families end with
    /// their sign-in session's absolute lifetime.
    pub refresh_offline_ttl_secs: i64,
    /// Access tokens from the client_credentials grant.
    pub client_credentials_ttl_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `careid=debug,tower_http=info`.
    pub filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            issuer: "https://localhost:8443".into(),
            listen: "127.0.0.1:8443".parse().expect("static address"),
            database: DatabaseConfig::default(),
            tls: None,
            smartcard: SmartcardConfig::default(),
            session: SessionConfig::default(),
            tokens: TokenConfig::default(),
            backchannel: BackchannelConfig::default(),
            housekeeping: HousekeepingConfig::default(),
            terms: TermsConfig::default(),
            webauthn: WebauthnConfig::default(),
            keys: KeysConfig::default(),
            server: ServerConfig::default(),
            limits: LimitsConfig::default(),
            metrics: MetricsConfig::default(),
            outbound: OutboundConfig::default(),
            console: ConsoleConfig::default(),
            registration: RegistrationConfig::default(),
            hr: HrConfig::default(),
            card_agent: CardAgentConfig::default(),
            onboarding: OnboardingConfig::default(),
            audit: AuditConfig::default(),
            telemetry: TelemetryConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/careid.db".into(),
            max_connections: 16,
            client_cache_secs: 5,
            migrate_on_start: true,
            acquire_timeout_ms: 3000,
            statement_timeout_ms: 30_000,
            readiness_timeout_ms: 2000,
        }
    }
}

/// `smartcard.cert_header_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertHeaderFormat {
    #[default]
    Nginx,
    Rfc9440,
    Xfcc,
}

/// `smartcard.trusted_proxies`: addresses and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrustedProxies(
    #[serde(deserialize_with = "addresses_or_networks")] pub Vec<ipnet::IpNet>,
);

impl TrustedProxies {
    /// Whether `ip` is one of them (an IPv4 address seen as IPv6-mapped counts as itself).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|n| n.contains(&ip))
    }
}

impl From<Vec<IpAddr>> for TrustedProxies {
    fn from(addresses: Vec<IpAddr>) -> Self {
        TrustedProxies(addresses.into_iter().map(Into::into).collect())
    }
}

/// `10.0.0.5` (one address) or `10.0.0.0/8` (a network), as written in the configuration.
fn addresses_or_networks<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let items: Vec<String> = Deserialize::deserialize(d)?;
    items
        .iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{s:?} is neither an IP address nor a network (10.0.0.0/8)"
                    ))
                })
        })
        .collect()
}

impl Default for SmartcardConfig {
    fn default() -> Self {
        SmartcardConfig {
            listen: None,
            base_url: None,
            ca_files: Vec::new(),
            crl_files: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            cert_header: "x-ssl-client-cert".into(),
            cert_header_format: CertHeaderFormat::Nginx,
            client_address_header: "x-forwarded-for".into(),
            required_policy_oids: Vec::new(),
            reload_poll_secs: 30,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout_secs: 15 * 60,
            absolute_timeout_secs: 12 * 3600,
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            access_token_ttl_secs: 3599,
            id_token_ttl_secs: 600,
            code_ttl_secs: 60,
            login_flow_ttl_secs: 600,
            refresh_idle_ttl_secs: 8 * 3600,
            refresh_offline_ttl_secs: 30 * 86400,
            client_credentials_ttl_secs: 600,
        }
    }
}

/// careid's own signing keys: encryption at rest and rotation.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Base64 of 32 random bytes: the AES-256-GCM key that encrypts the private signing keys in
    /// the database. Required (`serve --demo` makes one). Never shown in logs or `Debug`.
    pub encryption_key: Option<String>,
    /// While re-keying (`docs/operations.md`): the key-encryption key being replaced. Keys sealed
    /// under it still open; everything new is sealed under `encryption_key`, and
    /// `careid keys reseal` moves the rest over. Never shown.
    pub previous_encryption_key: Option<String>,
    /// A new key is in every server's JWKS at least this long before it signs anything.
    pub publish_before_use_secs: i64,
    /// Scheduled rotation: a new key per algorithm when the newest is this many days old.
    /// 0 = never.
    pub rotate_every_days: u32,
}

impl std::fmt::Debug for KeysConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysConfig")
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "previous_encryption_key",
                &self.previous_encryption_key.as_ref().map(|_| "<redacted>"),
            )
            .field("publish_before_use_secs", &self.publish_before_use_secs)
            .field("rotate_every_days", &self.rotate_every_days)
            .finish()
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            encryption_key: None,
            previous_encryption_key: None,
            publish_before_use_secs: 3600,
            rotate_every_days: 90,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Parse(Box<figment::Error>),
    #[error("configuration: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Config {
    /// Defaults, then the file (if it exists, or if it was named explicitly), then `CAREID_*`.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with(file, |_| {})
    }

    /// As [`Config::load`], with `fill` applied before validation (`serve --demo` fills in its
    /// TLS and card trust, so the rest may be overridden as usual, ports included).
    pub fn load_with(
        file: Option<&Path>,
        fill: impl FnOnce(&mut Config),
    ) -> Result<Config, ConfigError> {
        let default_file = Path::new("config/careid.toml");
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Invalid {
                        key: "--config",
                        reason: format!("file {} does not exist", path.display()),
                    });
                }
                figment = figment.merge(Toml::file(path));
            }
            None if default_file.exists() => figment = figment.merge(Toml::file(default_file)),
            None => {}
        }
        figment = figment.merge(Env::prefixed("CAREID_").split("__").filter(|k| {
            !NON_CONFIG_ENV
                .iter()
                .any(|n| k.as_str().eq_ignore_ascii_case(n))
        }));
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        fill(&mut config);
        config.validate()?;
        Ok(config)
    }

    /// Rules serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.onboarding.test_card_ca_cert_file.is_some()
            != self.onboarding.test_card_ca_key_file.is_some()
        {
            return Err(ConfigError::Invalid {
                key: "onboarding.test_card_ca_cert_file",
                reason: "give the test card CA's certificate and key together".into(),
            });
        }
        let a = &self.card_agent;
        if !(5..=600).contains(&a.challenge_ttl_secs)
            || !(1..=3600).contains(&a.heartbeat_interval_secs)
            || a.heartbeat_timeout_secs < 2 * a.heartbeat_interval_secs
            || !(1..=3600).contains(&a.sweep_interval_secs)
        {
            return Err(ConfigError::Invalid {
                key: "card_agent",
                reason: "challenge_ttl_secs 5..=600, heartbeat and sweep intervals 1..=3600, and heartbeat_timeout_secs at least twice heartbeat_interval_secs".into(),
            });
        }
        if (self.audit.sink_file.is_some() || self.audit.sink_syslog.is_some())
            && (self.audit.cursor_file().is_none()
                || !(10..=60_000).contains(&self.audit.sink_poll_ms))
        {
            return Err(ConfigError::Invalid {
                key: "audit",
                reason: "a syslog sink without a file needs sink_cursor_file; sink_poll_ms must be 10..=60000".into(),
            });
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            let ok = url::Url::parse(endpoint)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok || !(1..=300).contains(&self.telemetry.export_timeout_secs) {
                return Err(ConfigError::Invalid {
                    key: "telemetry",
                    reason: "otlp_endpoint must be an http(s) URL (e.g. http://otel-collector:4318) and export_timeout_secs 1..=300".into(),
                });
            }
        }
        if !(1..=10_000).contains(&self.hr.max_batch_events) {
            return Err(ConfigError::Invalid {
                key: "hr.max_batch_events",
                reason: "must be between 1 and 10000".into(),
            });
        }
        let issuer = url::Url::parse(&self.issuer).map_err(|e| ConfigError::Invalid {
            key: "issuer",
            reason: e.to_string(),
        })?;
        let loopback = matches!(issuer.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if issuer.scheme() != "https" && !(issuer.scheme() == "http" && loopback) {
            return Err(ConfigError::Invalid {
                key: "issuer",
                reason: "must be an https URL".into(),
            });
        }
        if issuer.query().is_some() || issuer.fragment().is_some() || self.issuer.ends_with('/') {
            return Err(ConfigError::Invalid {
                key: "issuer",
                reason: "must have no query, fragment or trailing slash".into(),
            });
        }
        if !self.database.url.starts_with("sqlite:")
            && !self.database.url.starts_with("postgres://")
            && !self.database.url.starts_with("postgresql://")
        {
            return Err(ConfigError::Invalid {
                key: "database.url",
                reason: "must start with sqlite: or postgres://".into(),
            });
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "database.max_connections",
                reason: "must be at least 1".into(),
            });
        }
        if !(0..=300).contains(&self.database.client_cache_secs) {
            return Err(ConfigError::Invalid {
                key: "database.client_cache_secs",
                reason: "must be between 0 and 300".into(),
            });
        }
        if !(1..=60).contains(&self.tokens.code_ttl_secs) {
            return Err(ConfigError::Invalid {
                key: "tokens.code_ttl_secs",
                reason: "must be between 1 and 60".into(),
            });
        }
        for (key, v) in [
            (
                "tokens.access_token_ttl_secs",
                self.tokens.access_token_ttl_secs,
            ),
            ("tokens.id_token_ttl_secs", self.tokens.id_token_ttl_secs),
            (
                "tokens.login_flow_ttl_secs",
                self.tokens.login_flow_ttl_secs,
            ),
            (
                "tokens.refresh_idle_ttl_secs",
                self.tokens.refresh_idle_ttl_secs,
            ),
            (
                "tokens.refresh_offline_ttl_secs",
                self.tokens.refresh_offline_ttl_secs,
            ),
            (
                "tokens.client_credentials_ttl_secs",
                self.tokens.client_credentials_ttl_secs,
            ),
            (
                "backchannel.give_up_after_secs",
                self.backchannel.give_up_after_secs,
            ),
            (
                "housekeeping.keep_expired_secs",
                self.housekeeping.keep_expired_secs,
            ),
            ("session.idle_timeout_secs", self.session.idle_timeout_secs),
            (
                "webauthn.ceremony_ttl_secs",
                self.webauthn.ceremony_ttl_secs,
            ),
            (
                "webauthn.invitation_ttl_secs",
                self.webauthn.invitation_ttl_secs,
            ),
            (
                "webauthn.self_service_max_age_secs",
                self.webauthn.self_service_max_age_secs,
            ),
            (
                "session.absolute_timeout_secs",
                self.session.absolute_timeout_secs,
            ),
            ("console.idle_timeout_secs", self.console.idle_timeout_secs),
            (
                "console.reauth_max_age_secs",
                self.console.reauth_max_age_secs,
            ),
            (
                "hr.scheduler_interval_secs",
                self.hr.scheduler_interval_secs as i64,
            ),
        ] {
            if v <= 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be a positive number of seconds".into(),
                });
            }
        }
        if self.backchannel.poll_interval_ms == 0
            || self.backchannel.request_timeout_secs == 0
            || self.housekeeping.interval_secs == 0
        {
            return Err(ConfigError::Invalid {
                key: "backchannel/housekeeping",
                reason: "intervals and timeouts must be positive".into(),
            });
        }
        if self.terms.version.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "terms.version",
                reason: "must not be empty".into(),
            });
        }
        if let Some(file) = &self.terms.file {
            if !file.exists() {
                return Err(ConfigError::Invalid {
                    key: "terms.file",
                    reason: format!("{} does not exist", file.display()),
                });
            }
        }
        if self.smartcard.listen.is_some() && self.tls.is_none() {
            return Err(ConfigError::Invalid {
                key: "smartcard.listen",
                reason: "the card listener needs [tls]: it asks browsers for a client certificate"
                    .into(),
            });
        }
        if self.smartcard.listen.is_some() && self.smartcard.base_url.is_none() {
            return Err(ConfigError::Invalid {
                key: "smartcard.base_url",
                reason: "required when smartcard.listen is set".into(),
            });
        }
        if http::HeaderName::from_bytes(self.smartcard.client_address_header.as_bytes()).is_err() {
            return Err(ConfigError::Invalid {
                key: "smartcard.client_address_header",
                reason: "not a valid header name".into(),
            });
        }
        if http::HeaderName::from_bytes(self.smartcard.cert_header.as_bytes()).is_err() {
            return Err(ConfigError::Invalid {
                key: "smartcard.cert_header",
                reason: "not a valid header name".into(),
            });
        }
        if self.backchannel.max_in_flight == 0 || self.backchannel.per_client_in_flight == 0 {
            return Err(ConfigError::Invalid {
                key: "backchannel.max_in_flight",
                reason: "max_in_flight and per_client_in_flight must be at least 1".into(),
            });
        }
        if self.metrics.token.as_ref().is_some_and(|t| t.len() < 32) {
            return Err(ConfigError::Invalid {
                key: "metrics.token",
                reason: "use at least 32 characters (e.g. openssl rand -hex 32)".into(),
            });
        }
        self.validate_keys()?;
        self.validate_server()?;
        Ok(())
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        for (key, v) in [
            (
                "server.tls_handshake_timeout_secs",
                s.tls_handshake_timeout_secs,
            ),
            (
                "server.header_read_timeout_secs",
                s.header_read_timeout_secs,
            ),
            ("server.idle_timeout_secs", s.idle_timeout_secs),
            ("server.request_timeout_secs", s.request_timeout_secs),
        ] {
            if !(1..=3600).contains(&v) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be between 1 and 3600 seconds".into(),
                });
            }
        }
        if !(1..=1_000_000).contains(&s.max_connections) {
            return Err(ConfigError::Invalid {
                key: "server.max_connections",
                reason: "must be between 1 and 1000000".into(),
            });
        }
        if s.connection_wait_ms > 60_000 {
            return Err(ConfigError::Invalid {
                key: "server.connection_wait_ms",
                reason: "must be at most 60000".into(),
            });
        }
        if s.http2_max_concurrent_streams == 0 {
            return Err(ConfigError::Invalid {
                key: "server.http2_max_concurrent_streams",
                reason: "must be at least 1".into(),
            });
        }
        if !(8192..=1024 * 1024).contains(&s.max_header_bytes) {
            return Err(ConfigError::Invalid {
                key: "server.max_header_bytes",
                reason: "must be between 8192 and 1048576".into(),
            });
        }
        for (key, class) in [
            ("limits.authorize", &self.limits.authorize),
            ("limits.token", &self.limits.token),
            ("limits.webauthn", &self.limits.webauthn),
            ("limits.admin", &self.limits.admin),
        ] {
            for (rate, burst) in [
                (class.per_address_per_minute, class.per_address_burst),
                (class.per_client_per_minute, class.per_client_burst),
            ] {
                if rate > 0 && burst == 0 {
                    return Err(ConfigError::Invalid {
                        key,
                        reason: "a burst of at least 1 is needed with a rate (rate 0 turns the limit off)".into(),
                    });
                }
            }
        }
        Ok(())
    }

    fn validate_keys(&self) -> Result<(), ConfigError> {
        use base64::Engine;
        for (key, value) in [
            ("keys.encryption_key", &self.keys.encryption_key),
            (
                "keys.previous_encryption_key",
                &self.keys.previous_encryption_key,
            ),
        ] {
            let Some(value) = value else { continue };
            let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(value.trim().trim_end_matches('='));
            if !decoded.is_ok_and(|b| b.len() == 32) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be the base64 of 32 random bytes, e.g. from `openssl rand -base64 32` (the value is not shown)".into(),
                });
            }
        }
        if self.keys.previous_encryption_key.is_some() && self.keys.encryption_key.is_none() {
            return Err(ConfigError::Invalid {
                key: "keys.previous_encryption_key",
                reason: "only while re-keying, beside a new keys.encryption_key".into(),
            });
        }
        if !(0..=30 * 86400).contains(&self.keys.publish_before_use_secs) {
            return Err(ConfigError::Invalid {
                key: "keys.publish_before_use_secs",
                reason: "must be between 0 and 2592000 (30 days)".into(),
            });
        }
        if self.keys.rotate_every_days > 0
            && i64::from(self.keys.rotate_every_days) * 86400 <= self.keys.publish_before_use_secs
        {
            return Err(ConfigError::Invalid {
                key: "keys.rotate_every_days",
                reason: "must be longer than keys.publish_before_use_secs, or 0 (never)".into(),
            });
        }
        Ok(())
    }

    /// The path part of the issuer ("" for a path-less issuer): every endpoint lives under it.
    pub fn issuer_path(&self) -> String {
        url::Url::parse(&self.issuer)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    /// The URL of an endpoint: the issuer string, byte for byte, plus a suffix.
    pub fn endpoint(&self, suffix: &str) -> String {
        format!("{}{}", self.issuer, suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let c: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let c = from_toml(
            "[smartcard]\ntrusted_proxies = [\"10.0.0.5\", \"10.42.0.0/16\", \"fd00::/8\"]",
        )
        .unwrap();
        let p = &c.smartcard.trusted_proxies;
        for (ip, trusted) in [
            ("10.0.0.5", true),
            ("10.0.0.6", false),
            ("10.42.7.9", true),
            ("::ffff:10.42.7.9", true),
            ("10.43.0.1", false),
            ("fd12::1", true),
            ("2001:db8::1", false),
        ] {
            assert_eq!(p.contains(ip.parse().unwrap()), trusted, "{ip}");
        }
        let err = from_toml("[smartcard]\ntrusted_proxies = [\"10.0.0.0/40\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trusted_proxies") && err.contains("neither"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_refused_and_named() {
        let err = from_toml("isuer = \"https://x\"").unwrap_err().to_string();
        assert!(err.contains("isuer"), "{err}");
        let err = from_toml("[session]\nidle_timout_secs = 5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("idle_timout_secs"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_key() {
        let err = from_toml("issuer = \"http://example.org\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("issuer"), "{err}");
        let err = from_toml("[tokens]\ncode_ttl_secs = 600")
            .unwrap_err()
            .to_string();
        assert!(err.contains("code_ttl_secs"), "{err}");
        let err = from_toml("[session]\nidle_timeout_secs = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("idle_timeout_secs"), "{err}");
    }

    #[test]
    fn card_listener_needs_tls_and_a_public_url() {
        let err = from_toml(
            "[smartcard]\nlisten = \"127.0.0.1:8444\"\nbase_url = \"https://localhost:8444\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("smartcard.listen") && err.contains("tls"),
            "{err}"
        );
        let err = from_toml(
            "[tls]\ncert_file = \"a\"\nkey_file = \"b\"\n[smartcard]\nlisten = \"127.0.0.1:8444\"",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("smartcard.base_url"), "{err}");
    }

    #[test]
    fn issuer_path_and_endpoints_keep_the_port() {
        let c = from_toml("issuer = \"https://am.example.org:443/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare\"").unwrap();
        assert_eq!(
            c.issuer_path(),
            "/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare"
        );
        assert_eq!(
            c.endpoint("/access_token"),
            "https://am.example.org:443/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare/access_token"
        );
    }

    #[test]
    fn keys_section_is_checked_and_the_encryption_key_never_shown() {
        let c = from_toml("").unwrap();
        assert_eq!(c.keys.encryption_key, None);
        assert_eq!(c.keys.publish_before_use_secs, 3600);
        assert_eq!(c.keys.rotate_every_days, 90);
        let good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let c = from_toml(&format!("[keys]\nencryption_key = \"{good}\"")).unwrap();
        assert!(!format!("{c:?}").contains(good), "Debug hides the key");
        for (text, key) in [
            (
                "[keys]\nencryption_key = \"c2hvcnQ=\"",
                "keys.encryption_key",
            ),
            (
                "[keys]\nencryption_key = \"not base64 at all!\"",
                "keys.encryption_key",
            ),
            (
                "[keys]\npublish_before_use_secs = -1",
                "keys.publish_before_use_secs",
            ),
            (
                "[keys]\nrotate_every_days = 1\npublish_before_use_secs = 86400",
                "keys.rotate_every_days",
            ),
            ("[keys]\nrotate_every_days = -1", "rotate_every_days"),
            ("[keys]\nencrypton_key = \"x\"", "encrypton_key"),
        ] {
            let err = from_toml(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
            assert!(!err.contains("c2hvcnQ"), "the value is not echoed: {err}");
        }
        let never = from_toml("[keys]\nrotate_every_days = 0").unwrap();
        assert_eq!(never.keys.rotate_every_days, 0);
    }

    #[test]
    fn server_and_limits_sections_are_checked() {
        let c = from_toml("").unwrap();
        assert_eq!(c.server.header_read_timeout_secs, 10);
        assert_eq!(c.server.max_connections, 1024);
        assert!(c.limits.enabled);
        let c =
            from_toml("[limits.token]\nper_client_per_minute = 5\nper_client_burst = 2").unwrap();
        assert_eq!(c.limits.token.per_client_per_minute, 5);
        assert_eq!(
            c.limits.token.per_address_per_minute, 3000,
            "other keys keep their defaults"
        );
        for (text, key) in [
            (
                "[server]\nheader_read_timeout_secs = 0",
                "server.header_read_timeout_secs",
            ),
            ("[server]\nmax_connections = 0", "server.max_connections"),
            ("[server]\nmax_header_bytes = 10", "server.max_header_bytes"),
            ("[server]\nidle_timeot_secs = 5", "idle_timeot_secs"),
            ("[limits.admin]\nper_address_burst = 0", "limits.admin"),
            ("[limits.authorise]\nper_address_burst = 1", "authorise"),
        ] {
            let err = from_toml(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn shipped_config_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/careid.toml");
        let c: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .extract()
            .unwrap();
        c.validate().unwrap();
    }
}

//! Shared fixtures: a test PKI, a started server with a fresh database, users with bound cards,
//! registered clients, and a "browser" (reqwest with a cookie jar and optional card certificate)
//! that walks the sign-in pages.

#![allow(dead_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use careid::clock::{Clock, ManualClock};
use careid::config::{Config, TlsConfig};
use careid::domain::client::{ClientRequest, NewClient};
use careid::domain::registry;
use careid::http::server::{Listeners, RunningServer};
use careid::model::identity::{User, UserStatus};
use careid::pki::{Authority, CardSpec, Issued};
use careid::store::Db;
use sqlx::Connection;
use tokio::net::TcpListener;

pub const RP_REDIRECT: &str = "https://rp.example.org/callback";
pub const CIS2_PATH: &str = "/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare";
pub const VERIFIER: &str = "careid-demo-verifier-0123456789abcdefghijklmnopqrstuvwxyz";
pub const CHALLENGE: &str = "EZxLzDDAIsO7xAOurWBSZa4qsw3DAUsVchkRQHjO5jw";

/// The test PKI: a server CA, a smartcard root with an authentication sub-CA, and a stranger CA.
pub struct Pki {
    pub server_ca: Authority,
    pub card_root: Authority,
    pub card_sub: Authority,
    pub other_root: Authority,
}

impl Pki {
    /// The smartcard CRLs as one PEM file: the sub-CA's (listing `revoked`, valid from `now`
    /// for a week) and, with `root`, the root's (vouching for the sub-CA).
    pub fn crls(&self, revoked: &[&Issued], now: i64, root: bool) -> String {
        let mut pem = self.card_sub.crl(revoked, now).unwrap();
        if root {
            pem.push_str(&self.card_root.crl(&[], now).unwrap());
        }
        pem
    }

    pub fn new(now: i64) -> Pki {
        let server_ca = Authority::root("careid tests", "Test Server CA", now).unwrap();
        let card_root = Authority::root("careid tests", "Test Smartcard Root", now).unwrap();
        let card_sub = card_root
            .intermediate("careid tests", "Test Authentication", now)
            .unwrap();
        let other_root = Authority::root("elsewhere", "Unknown Root", now).unwrap();
        Pki {
            server_ca,
            card_root,
            card_sub,
            other_root,
        }
    }
}

/// A change to a test server's configuration that carries values of the test.
pub type Adjust = Box<dyn FnOnce(&mut Config) + Send>;

#[derive(Default)]
pub struct Options {
    /// Appended to `https://localhost:<port>` to make the issuer (e.g. ":443"-free CIS2 path).
    pub issuer_path: String,
    /// Certificates the smartcard CRL lists.
    pub revoked: Vec<Issued>,
    /// Leave out the root's CRL (which vouches for the sub-CA): revocation status unknown.
    pub omit_root_crl: bool,
    /// `smartcard.required_policy_oids`.
    pub required_policy_oids: Vec<String>,
    /// `smartcard.reload_poll_secs` (default: the configuration's).
    pub reload_poll_secs: Option<u64>,
    pub trusted_proxies: Vec<IpAddr>,
    /// Use this database URL instead of a fresh one (for several servers sharing one store).
    pub database_url: Option<String>,
    /// Share an existing PKI (several servers, one trust).
    pub pki: Option<Arc<Pki>>,
    /// Use this issuer instead of the server's own URL (several instances behind one name).
    pub issuer: Option<String>,
    /// PEM roots trusted for AAL3 WebAuthn attestation (`webauthn.aal3_attestation_roots`).
    pub attestation_roots_pem: Option<String>,
    /// A FIDO metadata BLOB and the PEM root that signs it (`webauthn.metadata_blob[_root]`).
    pub metadata_blob: Option<(String, String)>,
    /// Changes the configuration last, before it is validated (timeouts, limits).
    pub configure: Option<fn(&mut Config)>,
    /// Like `configure`, for changes that need values of the test (paths of another server).
    pub adjust: Option<Adjust>,
}

pub struct TestEnv {
    pub server: RunningServer,
    pub issuer: String,
    /// This instance's own URL (equal to the issuer unless several instances share one).
    pub local: String,
    pub card_base: String,
    pub pki: Arc<Pki>,
    pub clock: ManualClock,
    pub db: Db,
    pub database_url: String,
    pub dir: tempfile::TempDir,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `keys.encryption_key` for every server of this test run: random, and shared, so servers
/// sharing a database can read each other's keys.
pub fn test_encryption_key() -> String {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        careid::domain::keys::KeyEncryptionKey::generate()
            .unwrap()
            .to_base64()
    })
    .clone()
}
static CLEANED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Drops databases left by earlier runs (names carry the process id of the run that made them).
async fn drop_stale_databases(conn: &mut sqlx::PgConnection) {
    let ours = format!("careid_it_{}_", std::process::id());
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'careid_it_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    for (name,) in names.into_iter().filter(|(n,)| !n.starts_with(&ours)) {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut *conn)
            .await;
    }
}

/// A fresh database: a temporary SQLite file, or a new PostgreSQL database when
/// TEST_DATABASE_URL names a server.
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if base.starts_with("postgres") => {
            let name = format!(
                "careid_it_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            );
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .expect("TEST_DATABASE_URL reachable");
            if !CLEANED.swap(true, Ordering::SeqCst) {
                drop_stale_databases(&mut conn).await;
            }
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let (prefix, _) = base
                .rsplit_once('/')
                .expect("database URL has a database name");
            format!("{prefix}/{name}")
        }
        _ => format!("sqlite://{}/careid.db", dir.display()),
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> TestEnv {
        let clock = ManualClock::starting_now();
        let now = clock.now();
        let dir = tempfile::tempdir().unwrap();
        let pki = opts.pki.clone().unwrap_or_else(|| Arc::new(Pki::new(now)));
        let server_cert = pki
            .server_ca
            .server_cert(&["localhost", "127.0.0.1"], now)
            .unwrap();
        let cert_file = write(dir.path(), "server.pem", &server_cert.cert_pem);
        let key_file = write(dir.path(), "server.key", &server_cert.key_pem);
        let cas = write(
            dir.path(),
            "cards.pem",
            &format!("{}{}", pki.card_root.pem(), pki.card_sub.pem()),
        );
        let revoked: Vec<&Issued> = opts.revoked.iter().collect();
        let crl = write(
            dir.path(),
            "cards.crl.pem",
            &pki.crls(&revoked, now, !opts.omit_root_crl),
        );
        let main = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let card = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = format!(
            "https://localhost:{}{}",
            main.local_addr().unwrap().port(),
            opts.issuer_path
        );
        let issuer = opts.issuer.clone().unwrap_or_else(|| local.clone());
        let card_base = format!("https://localhost:{}", card.local_addr().unwrap().port());
        let database_url = match opts.database_url {
            Some(u) => u,
            None => fresh_database(dir.path()).await,
        };
        let mut config = Config {
            issuer: issuer.clone(),
            ..Config::default()
        };
        config.database.url = database_url.clone();
        config.database.max_connections = 8;
        config.tls = Some(TlsConfig {
            cert_file,
            key_file,
        });
        config.smartcard.listen = Some(card.local_addr().unwrap());
        config.smartcard.base_url = Some(card_base.clone());
        config.smartcard.ca_files = vec![cas];
        // Test identities' cards (onboarding) come from the authentication sub-CA.
        config.onboarding.test_card_ca_cert_file =
            Some(write(dir.path(), "test-card-ca.pem", &pki.card_sub.pem()));
        config.onboarding.test_card_ca_key_file = Some(write(
            dir.path(),
            "test-card-ca.key",
            &pki.card_sub.key.serialize_pem(),
        ));
        config.smartcard.crl_files = vec![crl];
        config.smartcard.trusted_proxies = opts.trusted_proxies.into();
        config.smartcard.required_policy_oids = opts.required_policy_oids;
        // The relying parties of these tests listen on loopback, which careid refuses to call
        // unless allowed (tests/it/lifecycle.rs shows the refusal).
        config.outbound.allowed_private_networks =
            vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        if let Some(secs) = opts.reload_poll_secs {
            config.smartcard.reload_poll_secs = secs;
        }
        config.backchannel.poll_interval_ms = 50;
        config.backchannel.request_timeout_secs = 10;
        config.keys.encryption_key = Some(test_encryption_key());
        if let Some(pem) = &opts.attestation_roots_pem {
            config.webauthn.aal3_attestation_roots = vec![write(dir.path(), "fido-roots.pem", pem)];
        }
        if let Some((blob, root)) = &opts.metadata_blob {
            config.webauthn.metadata_blob = Some(write(dir.path(), "fido-mds.jwt", blob));
            config.webauthn.metadata_blob_root = Some(write(dir.path(), "fido-mds-root.pem", root));
        }
        if let Some(configure) = opts.configure {
            configure(&mut config);
        }
        if let Some(adjust) = opts.adjust {
            adjust(&mut config);
        }
        config.validate().unwrap();
        let server = careid::app::start(
            config,
            Arc::new(clock.clone()),
            Listeners {
                main,
                card: Some(card),
            },
        )
        .await
        .unwrap();
        let db = server.provider.db.clone();
        TestEnv {
            server,
            issuer,
            local,
            card_base,
            pki,
            clock,
            db,
            database_url,
            dir,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn endpoint(&self, suffix: &str) -> String {
        format!("{}{}", self.local, suffix)
    }

    pub async fn user(&self, uuid: &str) -> User {
        let user = User {
            uuid: uuid.into(),
            title: Some("Dr".into()),
            given_name: "Test".into(),
            middle_names: None,
            family_name: format!("User{uuid}"),
            email: Some(format!("{uuid}@example.nhs.uk")),
            id_assurance_level: 3,
            status: UserStatus::Active,
        };
        registry::create_user(&self.db, &user, "test", self.now())
            .await
            .unwrap();
        // Most tests are about something else: their users accepted the current terms earlier.
        self.db
            .record_terms_acceptance(
                uuid,
                &careid::config::TermsConfig::default().version,
                self.now(),
            )
            .await
            .unwrap();
        user
    }

    /// A user with a bound card who has not accepted the terms yet.
    pub async fn new_user_with_card(&self, uuid: &str) -> Issued {
        let card = self.user_with_card(uuid).await;
        self.server
            .provider
            .db
            .forget_terms_acceptances(uuid)
            .await
            .unwrap();
        card
    }

    pub fn card(&self, uuid: &str) -> Issued {
        self.pki
            .card_sub
            .card_cert(&CardSpec::valid(uuid, "Test_User", self.now()))
            .unwrap()
    }

    /// An active user with a bound, valid smartcard.
    pub async fn user_with_card(&self, uuid: &str) -> Issued {
        self.user(uuid).await;
        let card = self.card(uuid);
        registry::bind_smartcard(&self.db, uuid, &card.der, "test", self.now())
            .await
            .unwrap();
        card
    }

    /// `user` exactly as given (for tests that read particular profile fields), terms accepted as
    /// for [`TestEnv::user`], with a bound, valid smartcard.
    pub async fn person_with_card(&self, user: &User) -> Issued {
        registry::create_user(&self.db, user, "test", self.now())
            .await
            .unwrap();
        self.db
            .record_terms_acceptance(
                &user.uuid,
                &careid::config::TermsConfig::default().version,
                self.now(),
            )
            .await
            .unwrap();
        let card = self.card(&user.uuid);
        registry::bind_smartcard(&self.db, &user.uuid, &card.der, "test", self.now())
            .await
            .unwrap();
        card
    }

    pub async fn client(&self, req: ClientRequest) -> NewClient {
        registry::register_client(&self.db, req, "test", self.now())
            .await
            .unwrap()
    }

    /// A confidential client (client_secret_basic, PKCE required) redirecting to [`RP_REDIRECT`].
    pub async fn confidential_client(&self) -> NewClient {
        self.client(ClientRequest {
            client_name: "Test EPR".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            ..Default::default()
        })
        .await
    }

    /// An admin client (RA tooling): its users' tokens may carry `careid:admin`.
    pub async fn admin_client(&self) -> NewClient {
        self.client(ClientRequest {
            client_name: "RA tool".into(),
            redirect_uris: vec![RP_REDIRECT.into()],
            admin: true,
            ..Default::default()
        })
        .await
    }

    /// A plain HTTPS client trusting the test server CA (a relying party's back end).
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.pki.server_ca.pem().as_bytes()).unwrap(),
            )
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A browser with a cookie jar, presenting `card` (with its sub-CA) when asked.
    pub fn browser(&self, card: Option<&Issued>) -> Browser {
        let mut b = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.pki.server_ca.pem().as_bytes()).unwrap(),
            )
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true);
        if let Some(card) = card {
            let pem = format!(
                "{}{}{}",
                card.cert_pem,
                self.pki.card_sub.pem(),
                card.key_pem
            );
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        Browser {
            client: b.build().unwrap(),
        }
    }

    /// An authorization URL with the usual parameters, overridden or extended by `extra` (PKCE
    /// included unless `pkce` is false).
    pub fn authorize_url(&self, client_id: &str, extra: &[(&str, &str)], pkce: bool) -> String {
        let defaults = [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", RP_REDIRECT),
            ("scope", "openid profile"),
            ("state", "st-1"),
        ];
        let mut pairs: Vec<(&str, &str)> = defaults
            .into_iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .collect();
        if pkce {
            pairs.extend([
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]);
        }
        pairs.extend_from_slice(extra);
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        format!("{}/authorize?{}", self.local, s.finish())
    }

    /// Redeems a code with client_secret_basic and the standard verifier.
    pub async fn redeem(&self, client: &NewClient, code: &str) -> reqwest::Response {
        self.redeem_with_verifier(client, code, VERIFIER).await
    }

    /// Redeems a code with client_secret_basic and `verifier`.
    pub async fn redeem_with_verifier(
        &self,
        client: &NewClient,
        code: &str,
        verifier: &str,
    ) -> reqwest::Response {
        self.http()
            .post(self.endpoint("/token"))
            .basic_auth(&client.client.metadata.client_id, client.secret.as_deref())
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", RP_REDIRECT),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Signs in to `client` with `scope` in `browser` (whose card is presented) and redeems the
    /// code with the standard verifier: the token response.
    pub async fn tokens_in(
        &self,
        browser: &Browser,
        client: &NewClient,
        scope: &str,
    ) -> serde_json::Value {
        let url = self.authorize_url(&client.client.metadata.client_id, &[("scope", scope)], true);
        let location = match browser.sign_in(&url).await {
            SignIn::Redirected(location) => location,
            SignIn::Page(status, body) => panic!("sign-in failed: {status} {body}"),
        };
        self.redeem(client, &query_param(&location, "code").expect("a code"))
            .await
            .json()
            .await
            .unwrap()
    }

    /// A silent (`prompt=none`) authorization in `browser`: the `error` it came back with, if any.
    pub async fn silent_error(
        &self,
        browser: &Browser,
        client_id: &str,
        extra: &[(&str, &str)],
    ) -> Option<String> {
        let mut params = vec![("prompt", "none")];
        params.extend_from_slice(extra);
        let r = browser
            .client
            .get(self.authorize_url(client_id, &params, true))
            .send()
            .await
            .unwrap();
        query_param(&location(&r), "error")
    }

    /// The whole front channel for a user with `card`: returns the code.
    pub async fn code_for(&self, client: &NewClient, card: &Issued) -> String {
        let url = self.authorize_url(&client.client.metadata.client_id, &[], true);
        match self.browser(Some(card)).sign_in(&url).await {
            SignIn::Redirected(location) => query_param(&location, "code").expect("a code"),
            SignIn::Page(status, body) => panic!("sign-in failed: {status} {body}"),
        }
    }
}

/// The outcome of walking the sign-in pages.
#[derive(Debug)]
pub enum SignIn {
    /// careid redirected back to the relying party.
    Redirected(String),
    /// careid showed a page (an error, or a page needing more input).
    Page(u16, String),
}

pub struct Browser {
    pub client: reqwest::Client,
}

impl Browser {
    /// Opens an authorization URL; if careid shows the sign-in page, follows its smartcard link.
    pub async fn sign_in(&self, authorize_url: &str) -> SignIn {
        let r = self.client.get(authorize_url).send().await.unwrap();
        if r.status().is_redirection() {
            return SignIn::Redirected(location(&r));
        }
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        let Some(card_url) = card_link(&body) else {
            return SignIn::Page(status, body);
        };
        self.follow_card_link(&card_url).await
    }

    pub async fn follow_card_link(&self, card_url: &str) -> SignIn {
        let r = self.client.get(card_url).send().await.unwrap();
        if r.status().is_redirection() {
            return SignIn::Redirected(location(&r));
        }
        SignIn::Page(r.status().as_u16(), r.text().await.unwrap())
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_string()
}

/// The smartcard link on the sign-in page, HTML entities decoded.
pub fn card_link(html: &str) -> Option<String> {
    let start = html.find("href=\"https:")? + 6;
    let end = start + html[start..].find('"')?;
    let raw = &html[start..end];
    raw.contains("card").then(|| {
        raw.replace("&#x2f;", "/")
            .replace("&amp;", "&")
            .replace("&#x3d;", "=")
    })
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Decodes a JWT's payload without verifying it (assertions about content only).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

pub fn jwt_header(token: &str) -> serde_json::Value {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap()
}

/// A relying party's back-channel logout endpoint on loopback: answers with the given statuses
/// in turn (then 200) and keeps every logout token it was sent.
pub struct LogoutReceiver {
    pub uri: String,
    pub tokens: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LogoutReceiver {
    pub async fn start(statuses: Vec<u16>) -> LogoutReceiver {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), statuses)
    }

    pub fn on(listener: TcpListener, statuses: Vec<u16>) -> LogoutReceiver {
        let uri = format!(
            "http://127.0.0.1:{}/backchannel",
            listener.local_addr().unwrap().port()
        );
        let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
        let queue = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
            statuses,
        )));
        let seen = tokens.clone();
        let app = axum::Router::new().route(
            "/backchannel",
            axum::routing::post(
                move |axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
                    let (seen, queue) = (seen.clone(), queue.clone());
                    async move {
                        let status = queue.lock().unwrap().pop_front().unwrap_or(200);
                        if status == 200 {
                            seen.lock()
                                .unwrap()
                                .push(form.get("logout_token").cloned().unwrap_or_default());
                        }
                        axum::http::StatusCode::from_u16(status).unwrap()
                    }
                },
            ),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LogoutReceiver { uri, tokens, task }
    }

    pub fn received(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }

    /// Waits (up to 15 s, for slow CI machines) until `n` logout tokens have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        self.wait_up_to(n, 300).await
    }

    /// Waits up to `ticks` × 50 ms until `n` logout tokens have arrived.
    pub async fn wait_up_to(&self, n: usize, ticks: usize) -> Vec<String> {
        for _ in 0..ticks {
            if self.received().len() >= n {
                return self.received();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.received()
    }
}

impl Drop for LogoutReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A relying party's signing key for `private_key_jwt` (its public half goes in the RP's JWKS).
pub struct RpKey {
    pub public: josekit::jwk::Jwk,
    pub signer: Box<dyn josekit::jws::JwsSigner>,
}

/// A fresh RP key for `alg` (RS256, RS512, PS256 or ES256), published with `kid`, `use: "sig"`
/// and `alg`.
pub fn rp_key(alg: &str, kid: &str) -> RpKey {
    use josekit::jws::{JwsSigner, ES256, PS256, RS256, RS512};
    let (mut public, signer): (josekit::jwk::Jwk, Box<dyn JwsSigner>) = match alg {
        "RS256" | "RS512" => {
            let kp = RS256.generate_key_pair(2048).unwrap();
            let pem = kp.to_pem_private_key();
            let signer: Box<dyn JwsSigner> = if alg == "RS256" {
                Box::new(RS256.signer_from_pem(&pem).unwrap())
            } else {
                Box::new(RS512.signer_from_pem(&pem).unwrap())
            };
            (kp.to_jwk_public_key(), signer)
        }
        "PS256" => {
            let kp = PS256.generate_key_pair(2048).unwrap();
            (
                kp.to_jwk_public_key(),
                Box::new(PS256.signer_from_pem(kp.to_pem_private_key()).unwrap()),
            )
        }
        _ => {
            let kp = ES256.generate_key_pair().unwrap();
            (
                kp.to_jwk_public_key(),
                Box::new(ES256.signer_from_pem(kp.to_pem_private_key()).unwrap()),
            )
        }
    };
    public.set_key_id(kid);
    public.set_key_use("sig");
    public.set_algorithm(alg);
    RpKey { public, signer }
}

impl RpKey {
    /// The RFC 7638 SHA-256 thumbprint of an RSA public key: the `kid` the Django and Rails CIS2
    /// RPs use (cis2.md §3.1).
    pub fn thumbprint(&self) -> String {
        use base64::Engine;
        use sha2::Digest;
        assert_eq!(
            self.public.key_type(),
            "RSA",
            "thumbprints here are for RSA keys"
        );
        let part = |name: &str| {
            self.public
                .parameter(name)
                .and_then(serde_json::Value::as_str)
                .unwrap()
                .to_string()
        };
        let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, part("e"), part("n"));
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(canonical.as_bytes()))
    }

    /// The same key, published under its thumbprint as `kid`.
    pub fn with_thumbprint_kid(mut self) -> RpKey {
        let kid = self.thumbprint();
        self.public.set_key_id(kid);
        self
    }

    pub fn kid(&self) -> String {
        self.public.key_id().unwrap_or_default().to_string()
    }

    /// The JWK set the RP publishes.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [serde_json::Value::Object(self.public.as_ref().clone())] })
    }
}

/// The parts of a `private_key_jwt` client assertion that CIS2 RPs vary (cis2.md §3.1).
pub struct AssertionSpec<'a> {
    pub kid: Option<&'a str>,
    pub typ: Option<&'a str>,
    pub client_id: &'a str,
    pub aud: &'a str,
    pub iat: i64,
    /// `exp` - `iat`: 300 s for most RPs, 180 s for the Rails one.
    pub lifetime: i64,
    pub jti: &'a str,
}

/// Signs a client assertion: `iss` = `sub` = client_id, `aud`, `iat`, `exp`, `jti`.
pub fn signed_assertion(key: &RpKey, spec: &AssertionSpec) -> String {
    let mut header = josekit::jws::JwsHeader::new();
    if let Some(kid) = spec.kid {
        header.set_key_id(kid);
    }
    if let Some(typ) = spec.typ {
        header.set_token_type(typ);
    }
    let mut payload = josekit::jwt::JwtPayload::new();
    for (k, v) in [
        ("iss", serde_json::json!(spec.client_id)),
        ("sub", serde_json::json!(spec.client_id)),
        ("aud", serde_json::json!(spec.aud)),
        ("iat", serde_json::json!(spec.iat)),
        ("exp", serde_json::json!(spec.iat + spec.lifetime)),
        ("jti", serde_json::json!(spec.jti)),
    ] {
        payload.set_claim(k, Some(v)).unwrap();
    }
    josekit::jwt::encode_with_signer(&payload, &header, key.signer.as_ref()).unwrap()
}

/// A client assertion with `kid`, `typ: JWT` and a 300 s lifetime.
pub fn assertion(
    key: &RpKey,
    kid: &str,
    client_id: &str,
    aud: &str,
    now: i64,
    jti: &str,
) -> String {
    signed_assertion(
        key,
        &AssertionSpec {
            kid: Some(kid),
            typ: Some("JWT"),
            client_id,
            aud,
            iat: now,
            lifetime: 300,
            jti,
        },
    )
}

/// Serves `jwks` at a loopback `jwks_uri` (an RP publishing its keys) and returns the URI.
pub async fn serve_jwks(jwks: serde_json::Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!(
        "http://127.0.0.1:{}/jwks.json",
        listener.local_addr().unwrap().port()
    );
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || async move { axum::Json(jwks) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    uri
}

/// Ends a session as a relying party's back end does (cis2.md §10.2): `endSession` with the
/// `id_token_hint`, the session's own access token as bearer, and no browser cookie.
pub async fn end_session_from_back_end(
    env: &TestEnv,
    tokens: &serde_json::Value,
) -> reqwest::Response {
    env.http()
        .get(env.endpoint("/connect/endSession"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .query(&[("id_token_hint", tokens["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
}

/// The kinds of the newest `n` audit events, newest first.
pub async fn audit_kinds(env: &TestEnv, n: i64) -> Vec<String> {
    env.db
        .recent_audit(n)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind.clone())
        .collect()
}

/// A person with a bound card holding `position`; their card and the new person_roleids.
pub async fn holder(env: &TestEnv, uuid: &str, position: &str) -> (Issued, Vec<String>) {
    let card = env.user_with_card(uuid).await;
    let ids = careid::domain::rbac::assign_position(
        &env.db,
        uuid,
        position,
        env.now() - 60,
        None,
        "test",
        env.now(),
    )
    .await
    .unwrap();
    (card, ids)
}

/// The relying party's view: the userinfo answer for an access token.
pub async fn userinfo(env: &TestEnv, access_token: &str) -> serde_json::Value {
    env.http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A 1×1 PNG: a photograph as far as careid can tell (its bytes start as a PNG's do).
pub const PHOTO_PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/// A photograph on record for `uuid` (a TAC is issued only against one).
pub async fn photo_on_record(env: &TestEnv, uuid: &str) {
    use base64::Engine;
    let photo = careid::model::identity::Photo {
        content_type: "image/png".into(),
        bytes: base64::engine::general_purpose::STANDARD
            .decode(PHOTO_PNG_BASE64)
            .unwrap(),
        recorded_by: "test".into(),
        recorded_at: env.now(),
    };
    env.db.set_photo(uuid, &photo).await.unwrap();
}

/// An RA invitation for `uuid`, handed over as the person at the desk would: the code.
pub async fn invitation_code(env: &TestEnv, uuid: &str) -> String {
    let p = &env.server.provider;
    let v = p
        .admin_invite_authenticator(&ra_manager(), uuid)
        .await
        .unwrap();
    let handover = query_param(&v.handover_url, "handover").unwrap();
    p.hand_over_invitation(&handover).await.unwrap().unwrap().0
}

/// An RA Manager calling the domain directly (tests that need an invitation, not the RA API).
pub fn ra_manager() -> careid::domain::ra::Caller {
    careid::domain::ra::Caller {
        uuid: "999999999999".into(),
        person_roleid: "ra-test".into(),
        org_code: "RZ9".into(),
        ra_roles: vec![careid::domain::ra::RaRole::Manager],
        job_role: "R5080".into(),
        client_id: "test-admin-client".into(),
        jti: "test-jti".into(),
        auth_time: 0,
    }
}

/// A relying party for browser tests: a callback on loopback that shows a page, and a client
/// registered for it ("Ward app"). Returns the client and the callback URL.
pub async fn relying_party(env: &TestEnv) -> (NewClient, String) {
    let rp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!(
        "http://127.0.0.1:{}/callback",
        rp.local_addr().unwrap().port()
    );
    tokio::spawn(async move {
        axum::serve(
            rp,
            axum::Router::new().route(
                "/callback",
                axum::routing::get(|| async {
                    axum::response::Html("<h1>Signed in to the RP</h1>")
                }),
            ),
        )
        .await
    });
    let client = env
        .client(ClientRequest {
            client_name: "Ward app".into(),
            redirect_uris: vec![callback.clone()],
            ..Default::default()
        })
        .await;
    (client, callback)
}

/// Where browser tests save screenshots: `target/screenshots/` (git-ignored), or
/// `docs/screenshots/` when `CAREID_UPDATE_SCREENSHOTS=1` asks to refresh the committed ones.
pub fn screenshot_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = if std::env::var("CAREID_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A position at RZ9 with one profile, at RZ9, of this job role; its id.
pub async fn position_at_rz9(env: &TestEnv, id: &str, name: &str, job_role: &str) -> String {
    position_at(env, "RZ9", id, name, job_role).await
}

/// A position at `org` with one profile, at `org`, of this job role; its id.
pub async fn position_at(env: &TestEnv, org: &str, id: &str, name: &str, job_role: &str) -> String {
    let position = careid::model::rbac::Position {
        id: id.into(),
        org_code: org.into(),
        name: name.into(),
        esr_position: None,
        profiles: vec![careid::model::rbac::Profile {
            org_code: org.into(),
            job_role: job_role.into(),
            activities: vec![],
            workgroups: vec![],
            areas_of_work: vec![],
        }],
    };
    env.db.upsert_position(&position, env.now()).await.unwrap()
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

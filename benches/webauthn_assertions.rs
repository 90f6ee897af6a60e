//! WebAuthn assertion throughput, two ways:
//!
//! - `verify`: careid's relying party (`RelyingParty::finish_authentication`, webauthn-rs-core)
//!   verifying pre-made assertions from a software security key (P-256 / ES256): parsing,
//!   origin, RP id hash, challenge, user verification, signature, counter. No I/O.
//! - `sign-in`: whole WebAuthn sign-ins against an in-process careid server (HTTPS, SQLite in a
//!   temporary directory): GET /authorize → POST /webauthn/authenticate/options → the soft key
//!   signs → POST /webauthn/authenticate → 303 with a code. Each virtual user has its own key and
//!   one keep-alive connection, and sends no session cookie, so every iteration is a full
//!   authentication (the code is not redeemed: token issuance is measured by `login_load`).
//!
//! Run: `cargo bench --bench webauthn_assertions -- [--mode verify|sign-in] [--threads 2]
//! [--concurrency 8] [--seconds 10]`. Results go in docs/performance.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use careid::clock::{Clock, SystemClock};
use careid::config::{Config, TlsConfig};
use careid::domain::client::ClientRequest;
use careid::domain::webauthn::policy::AttestationPolicy;
use careid::domain::webauthn::relying_party::RelyingParty;
use careid::domain::webauthn::{Invitation, Kind};
use careid::domain::{registry, secrets};
use careid::http::server::Listeners;
use careid::model::identity::{User, UserStatus};
use careid::pki::Authority;
use url::Url;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs_core::proto::{
    AuthenticationState, Credential, PublicKeyCredential, RequestChallengeResponse,
};

const VERIFIER: &str = "careid-demo-verifier-0123456789abcdefghijklmnopqrstuvwxyz";
const CHALLENGE: &str = "EZxLzDDAIsO7xAOurWBSZa4qsw3DAUsVchkRQHjO5jw";
const REDIRECT: &str = "https://rp.example.org/callback";

struct Args {
    mode: String,
    threads: usize,
    concurrency: usize,
    seconds: u64,
}

fn args() -> Args {
    let mut a = Args {
        mode: "verify".into(),
        threads: 1,
        concurrency: 8,
        seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--mode" => a.mode = value(),
            "--threads" => a.threads = value().parse().unwrap_or(1),
            "--concurrency" => a.concurrency = value().parse().unwrap_or(8),
            "--seconds" => a.seconds = value().parse().unwrap_or(10),
            _ => {}
        }
    }
    a
}

fn config(issuer: &str) -> Config {
    Config {
        issuer: issuer.into(),
        ..Config::default()
    }
}

/// A soft security key registered with `rp`, and its stored credential.
fn registered_key(
    rp: &RelyingParty,
    origin: &Url,
) -> (WebauthnAuthenticator<SoftToken>, Credential) {
    let (token, _ca) = SoftToken::new(true).expect("soft token");
    let mut key = WebauthnAuthenticator::new(token);
    let (options, state) = rp
        .registration_options("555000000001", "Bench User", Kind::SecurityKey, vec![])
        .expect("options");
    let answer = key
        .do_registration(origin.clone(), options)
        .expect("registration");
    let credential = rp.finish_registration(&answer, &state).expect("verified");
    (key, credential)
}

fn verify_mode(a: &Args) {
    let issuer = "https://localhost:8443";
    let rp = Arc::new(RelyingParty::new(
        &config(issuer),
        AttestationPolicy::default(),
    ));
    let origin = Url::parse(issuer).unwrap();
    let per_thread = 4000;
    let mut work = Vec::new();
    for _ in 0..a.threads {
        let (mut key, credential) = registered_key(&rp, &origin);
        let assertions: Vec<(PublicKeyCredential, AuthenticationState)> = (0..per_thread)
            .map(|_| {
                let (options, state) = rp
                    .authentication_options(vec![credential.clone()], false)
                    .expect("options");
                (
                    key.do_authentication(origin.clone(), options)
                        .expect("signed"),
                    state,
                )
            })
            .collect();
        work.push((credential, assertions));
    }
    let started = Instant::now();
    let handles: Vec<_> = work
        .into_iter()
        .map(|(credential, assertions)| {
            let rp = rp.clone();
            std::thread::spawn(move || {
                for (answer, state) in assertions {
                    rp.finish_authentication(&answer, state, credential.clone())
                        .expect("verifies");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let total = per_thread * a.threads;
    println!(
        "verify: {total} assertions on {} thread(s) in {secs:.2} s = {:.0} assertions/s ({:.1} µs each per thread)",
        a.threads,
        total as f64 / secs,
        secs * 1e6 * a.threads as f64 / total as f64
    );
}

struct Server {
    issuer: String,
    client_id: String,
    client_secret: String,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

async fn start_server(users: usize) -> (Server, Vec<String>) {
    let now = SystemClock.now();
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::root("careid bench", "Bench CA", now).unwrap();
    let cert = ca.server_cert(&["localhost"], now).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("https://localhost:{}", main.local_addr().unwrap().port());
    let mut config = config(&issuer);
    config.database.url = format!("sqlite://{}/bench.db", dir.path().display());
    config.database.max_connections = 8;
    config.tls = Some(TlsConfig {
        cert_file: write("server.pem", &cert.cert_pem),
        key_file: write("server.key", &cert.key_pem),
    });
    config.keys.encryption_key = Some("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into());
    config.log.filter = "warn".into();
    // Every assertion comes from 127.0.0.1: the per-address rate limits would throttle it.
    config.limits.enabled = false;
    let running = careid::app::start(
        config,
        Arc::new(SystemClock),
        Listeners { main, card: None },
    )
    .await
    .expect("server");
    let db = running.provider.db.clone();
    let mut codes = Vec::new();
    for i in 0..users {
        let uuid = format!("5550000{:05}", i);
        let user = User {
            uuid: uuid.clone(),
            title: None,
            given_name: "Bench".into(),
            middle_names: None,
            family_name: format!("User{i}"),
            email: None,
            id_assurance_level: 3,
            status: UserStatus::Active,
        };
        registry::create_user(&db, &user, "bench", now)
            .await
            .unwrap();
        db.record_terms_acceptance(&uuid, &running.provider.config.terms.version, now)
            .await
            .unwrap();
        let code = secrets::random_token();
        db.insert_invitation(
            &secrets::digest(&code),
            &secrets::digest(&secrets::random_token()),
            &Invitation {
                user_uuid: uuid.clone(),
                created_by: "bench".into(),
                created_at: now,
                expires_at: now + 3600,
            },
        )
        .await
        .unwrap();
        codes.push(code);
    }
    let client = registry::register_client(
        &db,
        ClientRequest {
            client_name: "bench".into(),
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        },
        "bench",
        now,
    )
    .await
    .unwrap();
    std::mem::forget(running);
    (
        Server {
            issuer,
            client_id: client.client.metadata.client_id.clone(),
            client_secret: client.secret.clone().unwrap_or_default(),
            ca_pem: ca.pem(),
            _dir: dir,
        },
        codes,
    )
}

fn http(server: &Server, cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(server.ca_pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
        .build()
        .unwrap()
}

/// `name=value` of the cookie called `name` that the response set.
fn set_cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("a {name} cookie"))
        .to_string()
}

/// One virtual user: registers its key once, then signs in until `until`; sign-in latencies.
async fn virtual_user(
    server: Arc<Server>,
    uuid: String,
    invitation: String,
    until: Instant,
) -> Vec<Duration> {
    let origin = Url::parse(&server.issuer).unwrap();
    let (token, _) = SoftToken::new(true).unwrap();
    let mut key = WebauthnAuthenticator::new(token);
    let browser = http(&server, true);
    let options: webauthn_rs_core::proto::CreationChallengeResponse = browser
        .post(format!("{}/webauthn/register/options", server.issuer))
        .json(&serde_json::json!({ "invitation": invitation, "kind": "security_key" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answer = key.do_registration(origin.clone(), options).unwrap();
    let r = browser
        .post(format!("{}/webauthn/register", server.issuer))
        .form(&[("credential", serde_json::to_string(&answer).unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "registration");
    let authorize = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&acr_values=AAL2_OR_AAL3_ANY&code_challenge={CHALLENGE}&code_challenge_method=S256",
        server.issuer,
        server.client_id,
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    // One keep-alive connection per virtual user, as a browser's; no cookie jar, so no session
    // carries over and every iteration is a full authentication.
    let browser = http(&server, false);
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        let r = browser.get(&authorize).send().await.unwrap();
        // The flow is bound to the browser that started it.
        let binding = set_cookie(&r, "__Host-careid_browser");
        let page = r.text().await.unwrap();
        let at = page.find("data-flow=\"").expect("sign-in page") + 11;
        let flow = &page[at..at + page[at..].find('"').unwrap()];
        let r = browser
            .post(format!("{}/webauthn/authenticate/options", server.issuer))
            .header("cookie", &binding)
            .json(&serde_json::json!({ "flow": flow, "username": uuid }))
            .send()
            .await
            .unwrap();
        let cookie = format!("{}; {binding}", set_cookie(&r, "__Host-careid_webauthn"));
        let options: RequestChallengeResponse = r.json().await.unwrap();
        let answer = key.do_authentication(origin.clone(), options).unwrap();
        let r = browser
            .post(format!("{}/webauthn/authenticate", server.issuer))
            .header("cookie", cookie)
            .form(&[("credential", serde_json::to_string(&answer).unwrap())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "sign-in");
        latencies.push(started.elapsed());
    }
    let _ = (&server.client_secret, VERIFIER);
    latencies
}

fn sign_in_mode(a: &Args) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (server, codes) = start_server(a.concurrency).await;
        let server = Arc::new(server);
        let until = Instant::now() + Duration::from_secs(a.seconds);
        let tasks: Vec<_> = codes
            .into_iter()
            .enumerate()
            .map(|(i, code)| {
                let uuid = format!("5550000{:05}", i);
                tokio::spawn(virtual_user(server.clone(), uuid, code, until))
            })
            .collect();
        let started = Instant::now();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        all.sort();
        let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
        println!(
            "sign-in: {} WebAuthn sign-ins with {} virtual users in {secs:.1} s = {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms",
            all.len(),
            a.concurrency,
            all.len() as f64 / secs,
            pct(0.5),
            pct(0.99)
        );
    });
}

fn main() {
    let a = args();
    match a.mode.as_str() {
        "sign-in" => sign_in_mode(&a),
        _ => verify_mode(&a),
    }
}

//! Load harness for the card agent against a real `careid serve` process (`docs/agent.md`).
//!
//! Phase 1, sign-ins: each virtual user repeats a whole agent sign-in with its own card: GET
//! /authorize → POST /login/agent (the code) → POST /agent/v1/challenge → the card signs (the
//! virtual PIV card in-process: PIN, GENERAL AUTHENTICATE) → POST /agent/v1/login → POST
//! /login/agent/complete (session and code) → POST /token. Prints sign-ins/s and step latencies.
//!
//! Phase 2, removals: `--removals N` times, one user signs in, the relying party redeems its
//! code, then the card is removed and the time until the relying party's back-channel logout
//! arrives is measured (p50/p99). By default the removal is the agent's POST /agent/v1/removed;
//! with `--pcsc` (build with `--features card-agent`; pcscd and vsmartcard-vpcd running) the card
//! is a real `careid-vcard` in vpcd's reader, signed in by the real `careid-agent`, and the clock
//! starts when the card is told to leave the reader.
//!
//! Run: `cargo bench --bench card_agent -- [--concurrency 8] [--seconds 10] [--removals 120]
//! [--postgres URL]`, or `cargo bench --features card-agent --bench card_agent -- --pcsc`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use careid::agent::client::AgentClient;
use careid::agent::piv;
use careid::agent::vcard::VirtualPiv;
use careid::clock::{Clock, SystemClock};
use careid::domain::client::ClientRequest;
use careid::domain::registry;
use careid::model::card_agent::{to_be_signed, AgentLoginRequest};
use careid::model::identity::{User, UserStatus};
use careid::pki::{Authority, CardSpec, Issued};
use careid::store::Db;

const VERIFIER: &str = "careid-demo-verifier-0123456789abcdefghijklmnopqrstuvwxyz";
const CHALLENGE: &str = "EZxLzDDAIsO7xAOurWBSZa4qsw3DAUsVchkRQHjO5jw";
const PIN: &str = "123456";

struct Args {
    concurrency: usize,
    seconds: u64,
    removals: usize,
    postgres: Option<String>,
    pcsc: bool,
}

fn args() -> Args {
    let mut a = Args {
        concurrency: 8,
        seconds: 10,
        removals: 120,
        postgres: None,
        pcsc: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |d| it.next().and_then(|v| v.parse().ok()).unwrap_or(d);
        match arg.as_str() {
            "--concurrency" => a.concurrency = num(8) as usize,
            "--seconds" => a.seconds = num(10),
            "--removals" => a.removals = num(120) as usize,
            "--postgres" => a.postgres = it.next(),
            "--pcsc" => a.pcsc = true,
            _ => {}
        }
    }
    a
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Setup {
    issuer: String,
    ca_pem: String,
    client_id: String,
    client_secret: String,
    redirect: String,
    cards: Vec<Issued>,
    /// Arrival times of back-channel logouts, by `sid`.
    logouts: Arc<Mutex<Vec<(String, Instant)>>>,
}

/// The relying party: a callback and a back-channel logout endpoint on loopback.
async fn relying_party() -> (String, Arc<Mutex<Vec<(String, Instant)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(
            move |axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
                let log = log.clone();
                async move {
                    let at = Instant::now();
                    let token = form.get("logout_token").cloned().unwrap_or_default();
                    let payload = token.split('.').nth(1).unwrap_or_default();
                    let claims: serde_json::Value = URL_SAFE_NO_PAD
                        .decode(payload)
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok())
                        .unwrap_or_default();
                    log.lock()
                        .unwrap()
                        .push((claims["sid"].as_str().unwrap_or("").to_string(), at));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

async fn prepare(dir: &Path, args: &Args) -> (Setup, Server) {
    let now = SystemClock.now();
    let server_ca = Authority::root("bench", "Bench Server CA", now).unwrap();
    let tls = server_ca
        .server_cert(&["localhost", "127.0.0.1"], now)
        .unwrap();
    let root = Authority::root("bench", "Bench Card Root", now).unwrap();
    let sub = root
        .intermediate("bench", "Bench Authentication", now)
        .unwrap();
    std::fs::write(dir.join("server.pem"), &tls.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &tls.key_pem).unwrap();
    std::fs::write(
        dir.join("cards.pem"),
        format!("{}{}", root.pem(), sub.pem()),
    )
    .unwrap();
    let port = free_port();
    let database_url = match &args.postgres {
        Some(base) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
            for sql in [
                "DROP DATABASE IF EXISTS careid_agent_bench WITH (FORCE)",
                "CREATE DATABASE careid_agent_bench",
            ] {
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            format!("{}/careid_agent_bench", base.rsplit_once('/').unwrap().0)
        }
        None => format!("sqlite://{}/bench.db", dir.display()),
    };
    let config = format!(
        "issuer = \"https://localhost:{port}\"\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{database_url}\"\nmax_connections = 16\n\
         [tls]\ncert_file = \"{d}/server.pem\"\nkey_file = \"{d}/server.key\"\n\
         [smartcard]\nca_files = [\"{d}/cards.pem\"]\n[keys]\nencryption_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n[log]\nfilter = \"warn\"\n[limits]\nenabled = false\n\
         [outbound]\nallowed_private_networks = [\"127.0.0.0/8\"]\n[backchannel]\npoll_interval_ms = 1000\n",
        d = dir.display()
    );
    std::fs::write(dir.join("bench.toml"), config).unwrap();
    let db = Db::connect(&database_url, 4).await.unwrap();
    db.migrate().await.unwrap();
    let mut cards = Vec::new();
    for i in 0..args.concurrency.max(1) {
        let uuid = format!("8{i:011}");
        let user = User {
            uuid: uuid.clone(),
            title: None,
            given_name: "Agent".into(),
            middle_names: None,
            family_name: format!("User{i}"),
            email: None,
            id_assurance_level: 3,
            status: UserStatus::Active,
        };
        registry::create_user(&db, &user, "bench", now)
            .await
            .unwrap();
        db.record_terms_acceptance(&uuid, &careid::config::TermsConfig::default().version, now)
            .await
            .unwrap();
        let card = sub
            .card_cert(&CardSpec::valid(&uuid, "Agent_User", now))
            .unwrap();
        registry::bind_smartcard(&db, &uuid, &card.der, "bench", now)
            .await
            .unwrap();
        cards.push(card);
    }
    let (rp, logouts) = relying_party().await;
    let redirect = format!("{rp}/callback");
    let client = registry::register_client(
        &db,
        ClientRequest {
            client_name: "bench".into(),
            redirect_uris: vec![redirect.clone()],
            backchannel_logout_uri: Some(format!("{rp}/backchannel")),
            ..Default::default()
        },
        "bench",
        now,
    )
    .await
    .unwrap();
    db.close().await;
    let child = Command::new(env!("CARGO_BIN_EXE_careid"))
        .args(["serve", "--config"])
        .arg(dir.join("bench.toml"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let setup = Setup {
        issuer: format!("https://localhost:{port}"),
        ca_pem: server_ca.pem(),
        client_id: client.client.metadata.client_id.clone(),
        client_secret: client.secret.clone().unwrap(),
        redirect,
        cards,
        logouts,
    };
    (setup, Server(child))
}

fn browser(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .http1_only()
        .build()
        .unwrap()
}

fn between<'a>(html: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let start = html.find(before)? + before.len();
    Some(&html[start..start + html[start..].find(after)?])
}

/// A browser's sign-in up to the agent code: (browser, flow, code).
async fn open_sign_in(setup: &Setup) -> Option<(reqwest::Client, String, String)> {
    let b = browser(&setup.ca_pem);
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        setup.issuer,
        setup.client_id,
        url::form_urlencoded::byte_serialize(setup.redirect.as_bytes()).collect::<String>()
    );
    let page = b.get(&url).send().await.ok()?.text().await.ok()?;
    let flow = between(&page, "name=\"flow\" value=\"", "\"")?.to_string();
    let r = b
        .post(format!("{}/login/agent", setup.issuer))
        .form(&[("flow", flow.as_str())])
        .send()
        .await
        .ok()?;
    let page = r.text().await.ok()?;
    let code = between(&page, "aria-label=\"Sign-in code ", "\"")?.to_string();
    Some((b, flow, code))
}

/// The browser finishes and the relying party redeems: the session id.
async fn finish(
    setup: &Setup,
    b: &reqwest::Client,
    flow: &str,
    rp: &reqwest::Client,
) -> Option<String> {
    let r = b
        .post(format!("{}/login/agent/complete", setup.issuer))
        .form(&[("flow", flow)])
        .send()
        .await
        .ok()?;
    let location = r.headers().get("location")?.to_str().ok()?.to_string();
    let code = between(&location, "code=", "&")?.to_string();
    let tokens: serde_json::Value = rp
        .post(format!("{}/token", setup.issuer))
        .basic_auth(&setup.client_id, Some(&setup.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", setup.redirect.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let payload = tokens["id_token"].as_str()?.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some(claims["sid"].as_str()?.to_string())
}

/// The agent's part with an in-process virtual card: the agent token.
async fn card_signs(
    agent: &AgentClient,
    issuer: &str,
    code: &str,
    card: &mut VirtualPiv,
) -> Option<String> {
    let c = agent.challenge(code).await.ok()?;
    piv::select(card).ok()?;
    let cert = piv::read_auth_certificate(card).ok()?;
    piv::verify_pin(card, PIN).ok()?;
    let sig = piv::sign(
        card,
        piv::alg::ECC_P256,
        &to_be_signed(issuer, &c.challenge_id, &c.nonce),
    )
    .ok()?;
    let login = agent
        .login(&AgentLoginRequest {
            challenge_id: c.challenge_id,
            certificates: vec![STANDARD.encode(cert)],
            signature: URL_SAFE_NO_PAD.encode(sig),
        })
        .await
        .ok()?;
    Some(login.agent_token)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn sign_ins(setup: Arc<Setup>, index: usize, until: Instant) -> (Vec<Duration>, usize) {
    let agent = AgentClient::new(&setup.issuer, Some(setup.ca_pem.as_bytes())).unwrap();
    let rp = browser(&setup.ca_pem);
    let card = &setup.cards[index];
    let mut vcard = VirtualPiv::new(card.der.clone(), card.key_pem.as_bytes(), PIN).unwrap();
    let (mut done, mut errors) = (Vec::new(), 0);
    while Instant::now() < until {
        let started = Instant::now();
        let ok = async {
            let (b, flow, code) = open_sign_in(&setup).await?;
            card_signs(&agent, &setup.issuer, &code, &mut vcard).await?;
            finish(&setup, &b, &flow, &rp).await
        }
        .await;
        match ok {
            Some(_) => done.push(started.elapsed()),
            None => errors += 1,
        }
    }
    (done, errors)
}

async fn wait_logout(setup: &Setup, sid: &str) -> Option<Instant> {
    for _ in 0..1000 {
        if let Some((_, at)) = setup.logouts.lock().unwrap().iter().find(|(s, _)| s == sid) {
            return Some(*at);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

/// One removal through the protocol: the agent's notice to the RP's logout.
async fn protocol_removal(setup: &Setup) -> Option<Duration> {
    let agent = AgentClient::new(&setup.issuer, Some(setup.ca_pem.as_bytes())).unwrap();
    let rp = browser(&setup.ca_pem);
    let card = &setup.cards[0];
    let mut vcard = VirtualPiv::new(card.der.clone(), card.key_pem.as_bytes(), PIN).unwrap();
    let (b, flow, code) = open_sign_in(setup).await?;
    let token = card_signs(&agent, &setup.issuer, &code, &mut vcard).await?;
    let sid = finish(setup, &b, &flow, &rp).await?;
    let pulled = Instant::now();
    agent.removed(&token).await.ok()?;
    Some(wait_logout(setup, &sid).await?.duration_since(pulled))
}

#[cfg(feature = "card-agent")]
mod real {
    //! The removal through pcscd: careid-vcard in vpcd's reader, the real careid-agent.
    use super::*;
    use std::io::{BufRead, Write};

    pub async fn removal(setup: &Setup, dir: &Path) -> Option<Duration> {
        let card = &setup.cards[0];
        std::fs::write(dir.join("card.pem"), &card.cert_pem).ok()?;
        std::fs::write(dir.join("card.key"), &card.key_pem).ok()?;
        std::fs::write(dir.join("ca.pem"), &setup.ca_pem).ok()?;
        let mut vcard = Command::new(env!("CARGO_BIN_EXE_careid-vcard"))
            .arg("--cert")
            .arg(dir.join("card.pem"))
            .arg("--key")
            .arg(dir.join("card.key"))
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let rp = browser(&setup.ca_pem);
        let (b, flow, code) = open_sign_in(setup).await?;
        let mut agent = Command::new(env!("CARGO_BIN_EXE_careid-agent"))
            .args([
                "login",
                "--issuer",
                &setup.issuer,
                "--code",
                &code,
                "--reader",
                "Virtual PCD 00 00",
                "--pin-fd",
                "0",
            ])
            .arg("--ca-file")
            .arg(dir.join("ca.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        agent
            .stdin
            .take()?
            .write_all(format!("{PIN}\n").as_bytes())
            .ok()?;
        let mut lines = std::io::BufReader::new(agent.stdout.take()?).lines();
        let first = tokio::task::block_in_place(|| lines.next())?.ok()?;
        if !first.contains("signed_in") {
            eprintln!("agent: {first}");
            return None;
        }
        let sid = finish(setup, &b, &flow, &rp).await?;
        let pulled = Instant::now();
        vcard.stdin.as_mut()?.write_all(b"remove\n").ok()?;
        let at = wait_logout(setup, &sid).await?;
        let _ = tokio::task::block_in_place(|| agent.wait());
        let _ = vcard.kill();
        let _ = vcard.wait();
        Some(at.duration_since(pulled))
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let (setup, _server) = prepare(dir.path(), &args).await;
    let setup = Arc::new(setup);
    let probe = browser(&setup.ca_pem);
    for _ in 0..100 {
        if probe
            .get(format!("{}/readyz", setup.issuer))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let db = if args.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    if args.seconds > 0 {
        let until = Instant::now() + Duration::from_secs(args.seconds);
        let started = Instant::now();
        let workers: Vec<_> = (0..args.concurrency)
            .map(|i| tokio::spawn(sign_ins(setup.clone(), i, until)))
            .collect();
        let (mut all, mut errors) = (Vec::new(), 0);
        for w in workers {
            let (d, e) = w.await.unwrap();
            all.extend(d);
            errors += e;
        }
        let secs = started.elapsed().as_secs_f64();
        all.sort();
        println!(
            "agent sign-ins ({db}, {} users): {} in {secs:.1} s = {:.0}/s, {errors} errors; whole sign-in p50 {:.1} ms, p99 {:.1} ms",
            args.concurrency, all.len(), all.len() as f64 / secs, percentile(&all, 0.5), percentile(&all, 0.99)
        );
    }
    if args.removals > 0 {
        let mut times = Vec::new();
        for _ in 0..args.removals {
            #[cfg(feature = "card-agent")]
            let t = if args.pcsc {
                real::removal(&setup, dir.path()).await
            } else {
                protocol_removal(&setup).await
            };
            #[cfg(not(feature = "card-agent"))]
            let t = protocol_removal(&setup).await;
            match t {
                Some(t) => times.push(t),
                None => eprintln!("a removal round failed"),
            }
        }
        times.sort();
        let via = if args.pcsc {
            "card pulled from vpcd's reader (pcscd, careid-agent)"
        } else {
            "agent's removal notice"
        };
        println!(
            "removal → RP back-channel logout ({db}, from the {via}): n={} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            times.len(), percentile(&times, 0.5), percentile(&times, 0.99), percentile(&times, 1.0)
        );
    }
}

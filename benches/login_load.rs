//! Load harness: full smartcard logins against a real `careid serve` process.
//!
//! Each virtual user repeats: GET /authorize (main listener) → GET the card link on the card
//! listener, presenting its card certificate over mutual TLS → 303 with a code → POST /token
//! (client_secret_basic, PKCE). Connections are kept alive as a browser's would be; each login
//! starts without a session cookie, so every iteration is a full authentication.
//!
//! Run: `cargo bench --bench login_load -- [--mode login|client-credentials|introspect|refresh]
//! [--concurrency 16] [--seconds 10] [--pool 16] [--postgres URL] [--with-clients N]`.
//! `--with-clients N` adds N back-end callers asking for client-credentials tokens while the
//! logins run, and reports their tokens/s and latency too. The other modes drive one
//! token-endpoint operation from back-end callers (each introspect/refresh caller signs in once first).
//! Prints logins/s, tokens/s, latency percentiles per step and the server's RSS (idle and peak),
//! and the ceiling that RS256 signing alone puts on this machine (measured in-process before the
//! server starts: two signatures per login, one per client-credentials token).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use careid::clock::{Clock, SystemClock};
use careid::domain::client::ClientRequest;
use careid::domain::registry;
use careid::model::identity::{User, UserStatus};
use careid::pki::{Authority, CardSpec, Issued};
use careid::store::Db;

const REDIRECT: &str = "https://rp.example.org/callback";
const VERIFIER: &str = "careid-demo-verifier-0123456789abcdefghijklmnopqrstuvwxyz";
const CHALLENGE: &str = "EZxLzDDAIsO7xAOurWBSZa4qsw3DAUsVchkRQHjO5jw";

struct Args {
    concurrency: usize,
    seconds: u64,
    postgres: Option<String>,
    /// Server database pool size.
    pool: u32,
    /// login (default), client-credentials, introspect or refresh.
    mode: String,
    /// Login mode: back-end callers asking for client-credentials tokens during the logins.
    with_clients: usize,
}

fn args() -> Args {
    let mut a = Args {
        concurrency: 16,
        seconds: 10,
        postgres: None,
        pool: 16,
        mode: "login".into(),
        with_clients: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--concurrency" => a.concurrency = it.next().and_then(|v| v.parse().ok()).unwrap_or(16),
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(10),
            "--postgres" => a.postgres = it.next(),
            "--pool" => a.pool = it.next().and_then(|v| v.parse().ok()).unwrap_or(16),
            "--mode" => a.mode = it.next().unwrap_or_else(|| "login".into()),
            "--with-clients" => {
                a.with_clients = it.next().and_then(|v| v.parse().ok()).unwrap_or(0)
            }
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

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds a process has used so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    issuer: String,
    ca_pem: String,
    client_id: String,
    client_secret: String,
    cards: Vec<(Issued, String)>,
    /// A client with the refresh_token grant, and a back-end client with client_credentials.
    refresh_client: (String, String),
    robot: (String, String),
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
    let (main_port, card_port) = (free_port(), free_port());
    let database_url = match &args.postgres {
        Some(base) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
            sqlx::query("DROP DATABASE IF EXISTS careid_bench WITH (FORCE)")
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("CREATE DATABASE careid_bench")
                .execute(&mut conn)
                .await
                .unwrap();
            format!("{}/careid_bench", base.rsplit_once('/').unwrap().0)
        }
        None => format!("sqlite://{}/bench.db", dir.display()),
    };
    let config = format!(
        "issuer = \"https://localhost:{main_port}\"\nlisten = \"127.0.0.1:{main_port}\"\n[database]\nurl = \"{database_url}\"\nmax_connections = {pool}\n\
         [tls]\ncert_file = \"{d}/server.pem\"\nkey_file = \"{d}/server.key\"\n\
         [smartcard]\nlisten = \"127.0.0.1:{card_port}\"\nbase_url = \"https://localhost:{card_port}\"\nca_files = [\"{d}/cards.pem\"]\n[keys]\nencryption_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n[log]\nfilter = \"warn\"\n[limits]\nenabled = false\n",
        d = dir.display(),
        pool = args.pool
    );
    std::fs::write(dir.join("bench.toml"), config).unwrap();

    let db = Db::connect(&database_url, 4).await.unwrap();
    db.migrate().await.unwrap();
    let mut cards = Vec::new();
    for i in 0..args.concurrency {
        let uuid = format!("9{:011}", i);
        let user = User {
            uuid: uuid.clone(),
            title: None,
            given_name: "Load".into(),
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
            .card_cert(&CardSpec::valid(&uuid, "Load_User", now))
            .unwrap();
        registry::bind_smartcard(&db, &uuid, &card.der, "bench", now)
            .await
            .unwrap();
        cards.push((card, sub.pem()));
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
    let refreshing = ClientRequest {
        client_name: "bench refresh".into(),
        redirect_uris: vec![REDIRECT.into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        ..Default::default()
    };
    let refreshing = registry::register_client(&db, refreshing, "bench", now)
        .await
        .unwrap();
    let robot = ClientRequest {
        client_name: "bench robot".into(),
        redirect_uris: vec![REDIRECT.into()],
        grant_types: vec!["client_credentials".into()],
        scopes: vec!["api:read".into()],
        ..Default::default()
    };
    let robot = registry::register_client(&db, robot, "bench", now)
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
        issuer: format!("https://localhost:{main_port}"),
        ca_pem: server_ca.pem(),
        client_id: client.client.metadata.client_id.clone(),
        client_secret: client.secret.clone().unwrap(),
        cards,
        refresh_client: (
            refreshing.client.metadata.client_id.clone(),
            refreshing.secret.clone().unwrap(),
        ),
        robot: (
            robot.client.metadata.client_id.clone(),
            robot.secret.clone().unwrap(),
        ),
    };
    (setup, Server { child })
}

fn http(ca_pem: &str, identity: Option<&(Issued, String)>) -> reqwest::Client {
    http_with(ca_pem, identity, false)
}

fn http_with(ca_pem: &str, identity: Option<&(Issued, String)>, cookies: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(4)
        .cookie_store(cookies)
        .http1_only();
    if let Some((card, chain)) = identity {
        b = b.identity(
            reqwest::Identity::from_pem(
                format!("{}{}{}", card.cert_pem, chain, card.key_pem).as_bytes(),
            )
            .unwrap(),
        );
    }
    b.build().unwrap()
}

#[derive(Default)]
struct Samples {
    authorize: Vec<Duration>,
    card: Vec<Duration>,
    token: Vec<Duration>,
    login: Vec<Duration>,
    errors: usize,
}

async fn virtual_user(setup: Arc<Setup>, index: usize, until: Instant) -> Samples {
    let browser = http(&setup.ca_pem, Some(&setup.cards[index]));
    let rp = http(&setup.ca_pem, None);
    let authorize = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20profile&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        setup.issuer,
        setup.client_id,
        "https%3A%2F%2Frp.example.org%2Fcallback"
    );
    let mut s = Samples::default();
    while Instant::now() < until {
        let started = Instant::now();
        // The flow is bound to this browser's binding cookie (no session cookie is kept, so
        // every iteration is a full authentication).
        let (page, binding) = match browser.get(&authorize).send().await {
            Ok(r) if r.status() == 200 => {
                let binding = r
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find(|v| v.starts_with("__Host-careid_browser="))
                    .and_then(|v| v.split(';').next())
                    .unwrap_or_default()
                    .to_string();
                (r.text().await.unwrap_or_default(), binding)
            }
            _ => {
                s.errors += 1;
                continue;
            }
        };
        let t_auth = started.elapsed();
        let Some(link) = page
            .split("href=\"https:")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(|l| format!("https:{l}"))
            .map(|l| l.replace("&#x2f;", "/").replace("&amp;", "&"))
        else {
            s.errors += 1;
            continue;
        };
        let t0 = Instant::now();
        let code = match browser.get(&link).header("cookie", &binding).send().await {
            Ok(r) if r.status().is_redirection() => {
                let loc = r.headers()["location"]
                    .to_str()
                    .unwrap_or_default()
                    .to_string();
                loc.split("code=")
                    .nth(1)
                    .and_then(|c| c.split('&').next())
                    .unwrap_or_default()
                    .to_string()
            }
            _ => {
                s.errors += 1;
                continue;
            }
        };
        let t_card = t0.elapsed();
        let t1 = Instant::now();
        let ok = rp
            .post(format!("{}/token", setup.issuer))
            .basic_auth(&setup.client_id, Some(&setup.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false);
        if !ok {
            s.errors += 1;
            continue;
        }
        s.authorize.push(t_auth);
        s.card.push(t_card);
        s.token.push(t1.elapsed());
        s.login.push(started.elapsed());
    }
    s
}

/// One full login with `client`, returning the token response.
async fn login_tokens(
    setup: &Setup,
    index: usize,
    client: &(String, String),
) -> Option<serde_json::Value> {
    // A fresh browser per login, keeping its cookies (the flow is bound to the browser).
    let browser = http_with(&setup.ca_pem, Some(&setup.cards[index]), true);
    let authorize = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri=https%3A%2F%2Frp.example.org%2Fcallback&scope=openid&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        setup.issuer, client.0
    );
    let page = browser
        .get(&authorize)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let link = page
        .split("href=\"https:")
        .nth(1)?
        .split('"')
        .next()?
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let r = browser.get(format!("https:{link}")).send().await.ok()?;
    let code = r
        .headers()
        .get("location")?
        .to_str()
        .ok()?
        .split("code=")
        .nth(1)?
        .split('&')
        .next()?
        .to_string();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    http(&setup.ca_pem, None)
        .post(format!("{}/token", setup.issuer))
        .basic_auth(&client.0, Some(&client.1))
        .form(&form)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// A back-end caller repeating one token-endpoint operation: client-credentials grants,
/// introspection of a user's access token, or refresh grants (rotating as it goes).
async fn api_user(setup: Arc<Setup>, index: usize, until: Instant, mode: String) -> Samples {
    let rp = http(&setup.ca_pem, None);
    let mut s = Samples::default();
    let tokens = match mode.as_str() {
        "introspect" | "refresh" => {
            match login_tokens(&setup, index, &setup.refresh_client).await {
                Some(t) => t,
                None => {
                    s.errors += 1;
                    return s;
                }
            }
        }
        _ => serde_json::Value::Null,
    };
    let access = tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut refresh = tokens["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    while Instant::now() < until {
        let started = Instant::now();
        let request = match mode.as_str() {
            "introspect" => rp
                .post(format!("{}/introspect", setup.issuer))
                .basic_auth(&setup.robot.0, Some(&setup.robot.1))
                .form(&[("token", access.as_str())]),
            "refresh" => rp
                .post(format!("{}/token", setup.issuer))
                .basic_auth(&setup.refresh_client.0, Some(&setup.refresh_client.1))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                ]),
            _ => rp
                .post(format!("{}/token", setup.issuer))
                .basic_auth(&setup.robot.0, Some(&setup.robot.1))
                .form(&[("grant_type", "client_credentials")]),
        };
        let answer: Option<serde_json::Value> = match request.send().await {
            Ok(r) if r.status() == 200 => r.json().await.ok(),
            _ => None,
        };
        match answer {
            Some(body) if mode != "introspect" || body["active"] == true => {
                if let Some(next) = body["refresh_token"].as_str() {
                    refresh = next.to_string();
                }
                s.token.push(started.elapsed());
            }
            _ => s.errors += 1,
        }
    }
    s
}

/// Milliseconds one RS256 signature (RSA-2048, the access and ID tokens' default) takes on one
/// core of this machine, measured with the library the server signs with. Every login needs two
/// and every client-credentials token one, so this bounds what two cores can do at all.
fn rs256_sign_ms() -> f64 {
    use josekit::jws::{JwsHeader, RS256};
    let key = RS256.generate_key_pair(2048).unwrap();
    let signer = RS256.signer_from_der(key.to_der_private_key()).unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("at+jwt");
    let payload = josekit::jwt::JwtPayload::new();
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_millis(1500) {
        josekit::jwt::encode_with_signer(&payload, &header, &signer).unwrap();
        n += 1;
    }
    started.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
}

fn print_rsa_ceiling(sign_ms: f64, signatures_per_operation: f64, what: &str) {
    println!(
        "  RS256 signature {sign_ms:.3} ms on one core: two cores doing nothing else could make at most {:.0} {what}/s",
        2000.0 / sign_ms / signatures_per_operation
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn line(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "  {name:<10} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        percentile(&v, 1.0)
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    // Measured before the server starts, on a quiet machine.
    let sign_ms = rs256_sign_ms();
    let dir = tempfile::tempdir().unwrap();
    let (setup, server) = prepare(dir.path(), &args).await;
    let setup = Arc::new(setup);
    let probe = http(&setup.ca_pem, None);
    let ready = Instant::now();
    while probe
        .get(format!("{}/readyz", setup.issuer))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid, "VmRSS:");

    if args.mode != "login" {
        let (server_cpu0, started) = (cpu_seconds(&pid.to_string()), Instant::now());
        let until = started + Duration::from_secs(args.seconds);
        let users: Vec<_> = (0..args.concurrency)
            .map(|i| tokio::spawn(api_user(setup.clone(), i, until, args.mode.clone())))
            .collect();
        let mut all = Samples::default();
        for u in users {
            let s = u.await.unwrap();
            all.token.extend(s.token);
            all.errors += s.errors;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let server_cpu = (cpu_seconds(&pid.to_string()) - server_cpu0) / elapsed;
        let db = if args.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        println!(
            "careid {} load: {} callers, {:.1} s, database {db}",
            args.mode, args.concurrency, elapsed
        );
        println!(
            "  requests/s {:.0}   (errors {})   server CPU {server_cpu:.2} cores",
            all.token.len() as f64 / elapsed,
            all.errors
        );
        line(&args.mode, all.token);
        println!(
            "  server RSS peak {:.1} MiB",
            rss_kib(pid, "VmHWM:") as f64 / 1024.0
        );
        match args.mode.as_str() {
            "client-credentials" => print_rsa_ceiling(sign_ms, 1.0, "tokens"),
            "refresh" => print_rsa_ceiling(sign_ms, 2.0, "refresh grants"),
            _ => {}
        }
        return;
    }

    // Warm-up: one login per user (TLS sessions, statement caches), not counted.
    let warm: Vec<_> = (0..args.concurrency)
        .map(|i| {
            tokio::spawn(virtual_user(
                setup.clone(),
                i,
                Instant::now() + Duration::from_millis(300),
            ))
        })
        .collect();
    for w in warm {
        w.await.unwrap();
    }

    let (server_cpu0, self_cpu0) = (cpu_seconds(&pid.to_string()), cpu_seconds("self"));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let users: Vec<_> = (0..args.concurrency)
        .map(|i| tokio::spawn(virtual_user(setup.clone(), i, until)))
        .collect();
    let callers: Vec<_> = (0..args.with_clients)
        .map(|i| {
            tokio::spawn(api_user(
                setup.clone(),
                args.concurrency + i,
                until,
                "client-credentials".into(),
            ))
        })
        .collect();
    let mut all = Samples::default();
    for u in users {
        let s = u.await.unwrap();
        all.authorize.extend(s.authorize);
        all.card.extend(s.card);
        all.token.extend(s.token);
        all.login.extend(s.login);
        all.errors += s.errors;
    }
    let mut client_tokens = Samples::default();
    for c in callers {
        let s = c.await.unwrap();
        client_tokens.token.extend(s.token);
        client_tokens.errors += s.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak = rss_kib(pid, "VmHWM:");
    let server_cpu = (cpu_seconds(&pid.to_string()) - server_cpu0) / elapsed;
    let generator_cpu = (cpu_seconds("self") - self_cpu0) / elapsed;
    let logins = all.login.len();
    println!(
        "careid login load: {} virtual users, {:.1} s, database {}",
        args.concurrency,
        elapsed,
        if args.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "  logins/s   {:.0}   (tokens/s {:.0}, errors {})",
        logins as f64 / elapsed,
        all.token.len() as f64 / elapsed,
        all.errors
    );
    line("login", all.login);
    line("authorize", all.authorize);
    line("card", all.card);
    line("token", all.token);
    if args.with_clients > 0 {
        println!(
            "  and {} client-credentials callers at the same time: {:.0} tokens/s (errors {})",
            args.with_clients,
            client_tokens.token.len() as f64 / elapsed,
            client_tokens.errors
        );
        line("client", client_tokens.token);
    }
    println!(
        "  server RSS idle {:.1} MiB, peak {:.1} MiB",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!("  CPU: server {server_cpu:.2} cores, load generator {generator_cpu:.2} cores ({:.2} ms server CPU per login)", server_cpu * 1000.0 / (logins as f64 / elapsed));
    print_rsa_ceiling(sign_ms, 2.0, "logins");
    drop(server);
}

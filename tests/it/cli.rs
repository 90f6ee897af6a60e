//! The `careid` command: it reads the same configuration as `serve` (file, then CAREID_*), so a
//! client registered from the command line works at once on a running server.

use std::process::Command;

use crate::helpers::*;

fn careid(dir: &std::path::Path, database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(dir)
        .env("CAREID_DATABASE__URL", database_url)
        .env(
            "CAREID_KEYS__ENCRYPTION_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn clients_registered_from_the_cli_sign_in_on_the_running_server() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("800000000001").await;
    let out = careid(
        env.dir.path(),
        &env.database_url,
        &[
            "clients",
            "add",
            "--name",
            "Ward app",
            "--redirect-uri",
            RP_REDIRECT,
            "--auth-method",
            "client_secret_post",
            "--scope",
            "openid profile",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = json["client_id"].as_str().unwrap().to_string();
    let secret = json["client_secret"].as_str().unwrap().to_string();
    assert!(id.ends_with(".apps.national"));
    assert_eq!(json["redirect_uris"], serde_json::json!([RP_REDIRECT]));
    assert_eq!(json["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(
        json["grant_types"],
        serde_json::json!(["authorization_code"])
    );
    assert!(secret.len() >= 43, "256-bit secret");

    let url = env.authorize_url(&id, &[], true);
    let SignIn::Redirected(back) = env.browser(Some(&card)).sign_in(&url).await else {
        panic!()
    };
    let code = query_param(&back, "code").unwrap();
    let r = env
        .http()
        .post(env.endpoint("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let list = careid(env.dir.path(), &env.database_url, &["clients", "list"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains(&id) && !listed.contains(&secret),
        "list shows clients, never secrets"
    );

    assert!(careid(
        env.dir.path(),
        &env.database_url,
        &["clients", "disable", &id]
    )
    .status
    .success());
    let shown: serde_json::Value = serde_json::from_slice(
        &careid(env.dir.path(), &env.database_url, &["clients", "show", &id]).stdout,
    )
    .unwrap();
    assert_eq!(shown["status"], "disabled");
    let r = env
        .http()
        .post(env.endpoint("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "any"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "within database.client_cache_secs the running server still knows the client"
    );
    env.clock
        .advance(careid::config::DatabaseConfig::default().client_cache_secs);
    let r = env
        .browser(None)
        .client
        .get(env.authorize_url(&id, &[], true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a disabled client cannot start a sign-in");
    let r = env
        .http()
        .post(env.endpoint("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "any"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "nor get tokens");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn the_cli_refuses_bad_registrations_and_unknown_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    assert!(careid(dir.path(), &url, &["migrate"]).status.success());
    let bad = careid(
        dir.path(),
        &url,
        &[
            "clients",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            "http://app.example/cb",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("https"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let unknown = Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(dir.path())
        .env("CAREID_DATABASE__URL", &url)
        .env("CAREID_SESION__IDLE_TIMEOUT_SECS", "5")
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("sesion"),
        "names the unknown key: {}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    std::fs::write(
        dir.path().join("bad.toml"),
        "[tokens]\ncode_ttl_secs = 3600\n",
    )
    .unwrap();
    let invalid = careid(dir.path(), &url, &["--config", "bad.toml", "migrate"]);
    assert!(!invalid.status.success());
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("code_ttl_secs"));

    let rotated = careid(dir.path(), &url, &["keys", "rotate"]);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&rotated.stdout)
            .matches("new signing key")
            .count(),
        3
    );
}

/// `serve --demo` on ports of one's choosing (a second demo beside the first), with its secrets
/// readable only by their owner and a development CA that is trusted for nothing but localhost.
#[tokio::test]
async fn a_demo_runs_on_other_ports_and_keeps_its_files_private() {
    let dir = tempfile::tempdir().unwrap();
    let (main, card) = (free_port(), free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(dir.path())
        .env("CAREID_LISTEN", format!("127.0.0.1:{main}"))
        .env("CAREID_ISSUER", format!("https://localhost:{main}"))
        .env("CAREID_SMARTCARD__LISTEN", format!("127.0.0.1:{card}"))
        .env(
            "CAREID_SMARTCARD__BASE_URL",
            format!("https://localhost:{card}"),
        )
        .args(["serve", "--demo"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let demo = dir.path().join("data/demo");
    let mut discovery = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let Ok(ca) = std::fs::read(demo.join("ca.pem")) else {
            continue;
        };
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        if let Ok(r) = http
            .get(format!(
                "https://localhost:{main}/.well-known/openid-configuration"
            ))
            .send()
            .await
        {
            discovery = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
    }
    child.kill().await.unwrap();
    let discovery = discovery.expect("the demo answered on the chosen port");
    assert_eq!(discovery["issuer"], format!("https://localhost:{main}"));

    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&demo), 0o700);
    for f in [
        "ca.key",
        "server.key",
        "card-demo.key",
        "client.json",
        "key-encryption.key",
    ] {
        assert_eq!(mode(&demo.join(f)), 0o600, "{f}");
    }
    let pem = std::fs::read(demo.join("ca.pem")).unwrap();
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&der).unwrap();
    let life = ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp();
    assert!(life <= 92 * 86400, "a short-lived development CA: {life} s");
    let constraints = ca.name_constraints().unwrap().expect("name constraints");
    let permitted = format!("{:?}", constraints.value.permitted_subtrees);
    assert!(permitted.contains("localhost"), "{permitted}");
    assert!(constraints.value.excluded_subtrees.is_none());
}

/// The subcommands `--help` lists, as `careid <command>` or `careid <command> <subcommand>`.
fn subcommands(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_careid"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    help.split("Commands:")
        .nth(1)
        .map(|rest| rest.split("\n\n").next().unwrap_or_default())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

#[test]
fn every_subcommand_is_in_the_readmes_command_line_section() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Command line")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Command line section");
    let top = subcommands(&[]);
    assert!(top.len() >= 10, "{top:?}");
    for command in top {
        let nested = subcommands(&[&command]);
        if nested.is_empty() {
            assert!(
                section.contains(&format!("`careid {command}")),
                "careid {command}"
            );
        }
        for sub in nested {
            assert!(
                section.contains(&format!("careid {command} {sub}")),
                "careid {command} {sub} is not in the README's Command line section"
            );
        }
    }
}

#[tokio::test]
async fn only_migrate_and_serve_change_the_schema_and_an_old_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    // A command other than migrate leaves a fresh database alone and says what to do.
    let out = careid(dir.path(), &url, &["clients", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run `careid migrate`"), "{err}");
    // With database.migrate_on_start = false, serve refuses it too (several processes share
    // the database; migrations are their own step).
    let out = Command::new(env!("CARGO_BIN_EXE_careid"))
        .current_dir(dir.path())
        .env("CAREID_DATABASE__URL", &url)
        .env("CAREID_DATABASE__MIGRATE_ON_START", "false")
        .env("CAREID_KEYS__ENCRYPTION_KEY", test_encryption_key())
        .env("CAREID_LISTEN", "127.0.0.1:0")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("older than this careid"));
    let out = careid(dir.path(), &url, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = careid(dir.path(), &url, &["clients", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

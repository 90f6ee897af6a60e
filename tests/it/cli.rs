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

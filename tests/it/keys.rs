//! Signing-key lifecycle against a running server: a rotated key is published before it signs,
//! the key it replaces keeps verifying until its tokens have expired and then leaves the JWKS,
//! emergency rotation, private keys encrypted at rest, and scheduled rotation by several servers
//! sharing one database.

use std::process::Command;
use std::sync::Arc;

use careid::config::Config;
use careid::domain::client::{NewClient, SigningAlg};
use careid::domain::keys::{self, Activation, KeyEncryptionKey, StoredKey};
use careid::http::server::Listeners;
use careid::pki::Issued;
use tokio::net::TcpListener;

use crate::helpers::*;

async fn published(env: &TestEnv) -> Vec<String> {
    let jwks: serde_json::Value = env
        .http()
        .get(env.endpoint("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn tokens(env: &TestEnv, client: &NewClient, card: &Issued) -> serde_json::Value {
    let r = env.redeem(client, &env.code_for(client, card).await).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn kid(tokens: &serde_json::Value) -> String {
    jwt_header(tokens["id_token"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

fn stored<'a>(keys: &'a [StoredKey], kid: &str) -> &'a StoredKey {
    keys.iter().find(|k| k.kid == kid).unwrap()
}

async fn userinfo_status(env: &TestEnv, tokens: &serde_json::Value) -> u16 {
    env.http()
        .get(env.endpoint("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_rotated_key_is_published_first_then_signs_and_the_old_one_retires_after_its_tokens() {
    let env = TestEnv::start().await;
    let provider = &env.server.provider;
    let card = env.user_with_card("910000000001").await;
    let client = env.confidential_client().await;
    let old = kid(&tokens(&env, &client, &card).await);
    assert_eq!(published(&env).await.len(), 3, "one key per algorithm");

    let rotated = provider
        .rotate_keys(Activation::AfterPublication)
        .await
        .unwrap();
    assert_eq!(rotated.len(), 3);
    let publish = provider.config.keys.publish_before_use_secs;
    assert_eq!(publish, 3600, "the default");
    let activate_at = env.now() + publish + keys::RELOAD_INTERVAL_SECS;
    assert!(rotated.iter().all(|k| k.activate_at == activate_at));
    let new = rotated
        .iter()
        .find(|k| k.alg == SigningAlg::RS256)
        .unwrap()
        .kid
        .clone();

    // Published at once, signing nothing yet.
    let kids = published(&env).await;
    assert!(kids.contains(&old) && rotated.iter().all(|k| kids.contains(&k.kid)));
    assert_eq!(kid(&tokens(&env, &client, &card).await), old);
    env.clock.advance(activate_at - 1 - env.now());
    provider.reload_keys().await.unwrap();
    let last_by_old = tokens(&env, &client, &card).await;
    assert_eq!(
        kid(&last_by_old),
        old,
        "the old key signs until the new one activates"
    );
    let in_db = env.db.signing_keys().await.unwrap();
    assert!(
        in_db.iter().all(|k| k.retire_at.is_none()),
        "no retire_at yet"
    );

    // From activation the new key signs; the old one is still published and verifies.
    env.clock.advance(1);
    provider.reload_keys().await.unwrap();
    assert_eq!(kid(&tokens(&env, &client, &card).await), new);
    assert!(published(&env).await.contains(&old));
    assert_eq!(userinfo_status(&env, &last_by_old).await, 200);
    let t = &provider.config.tokens;
    let longest = t
        .access_token_ttl_secs
        .max(t.id_token_ttl_secs)
        .max(t.client_credentials_ttl_secs);
    let retire_at = stored(&env.db.signing_keys().await.unwrap(), &old)
        .retire_at
        .expect("a replaced key gets its retire_at once its successor signs");
    assert_eq!(retire_at, activate_at + longest + keys::RETIRE_MARGIN_SECS);
    let last_exp = jwt_claims(last_by_old["access_token"].as_str().unwrap())["exp"]
        .as_i64()
        .unwrap();
    assert!(
        retire_at > last_exp,
        "every token it signed has expired first"
    );

    // Until retire_at it stays; then it leaves the JWKS and verifies nothing.
    env.clock.advance(retire_at - 1 - env.now());
    provider.reload_keys().await.unwrap();
    assert!(published(&env).await.contains(&old));
    let old_id_token = last_by_old["id_token"].as_str().unwrap();
    assert!(provider.verify_own_token(old_id_token, "JWT").await.is_ok());
    env.clock.advance(1);
    provider.reload_keys().await.unwrap();
    let kids = published(&env).await;
    assert!(!kids.contains(&old));
    assert_eq!(kids.len(), 3, "only the new keys remain: {kids:?}");
    assert!(provider
        .verify_own_token(old_id_token, "JWT")
        .await
        .is_err());
}

#[tokio::test]
async fn emergency_rotation_signs_at_once_and_drops_the_old_keys() {
    let env = TestEnv::start().await;
    let provider = &env.server.provider;
    let card = env.user_with_card("910000000002").await;
    let client = env.confidential_client().await;
    let before = tokens(&env, &client, &card).await;
    let old = kid(&before);
    let old_kids = published(&env).await;

    let rotated = provider.rotate_keys(Activation::Immediately).await.unwrap();
    assert!(rotated.iter().all(|k| k.activate_at == env.now()));
    let mut kids = published(&env).await;
    let mut new: Vec<String> = rotated.iter().map(|k| k.kid.clone()).collect();
    kids.sort();
    new.sort();
    assert_eq!(kids, new, "only the new keys are published");
    let after = tokens(&env, &client, &card).await;
    assert!(new.contains(&kid(&after)));
    assert_eq!(
        userinfo_status(&env, &before).await,
        401,
        "tokens of a compromised key stop verifying"
    );
    let in_db = env.db.signing_keys().await.unwrap();
    for k in &old_kids {
        assert_eq!(stored(&in_db, k).retire_at, Some(env.now()));
    }
    assert!(old_kids.contains(&old));
}

#[tokio::test]
async fn private_keys_are_encrypted_at_rest_and_plain_text_ones_are_sealed_at_start() {
    let env = TestEnv::start().await;
    let kek = KeyEncryptionKey::from_base64(&test_encryption_key()).unwrap();
    let other = KeyEncryptionKey::generate().unwrap();
    let in_db = env.db.signing_keys().await.unwrap();
    assert_eq!(in_db.len(), 3);
    for k in &in_db {
        let column = &k.sealed_private_key;
        assert!(
            column.starts_with("a256gcm:") && !column.contains("PRIVATE KEY"),
            "stored sealed, not as PEM: {}",
            &column[..20]
        );
        assert!(k.public_jwk.get("d").is_none());
        let pem = String::from_utf8(kek.open(&k.kid, column).unwrap()).unwrap();
        assert!(pem.contains("PRIVATE KEY"), "it is the real key");
        assert!(
            other.open(&k.kid, column).is_err(),
            "another key cannot open it"
        );
    }

    // A key written in plain text by an earlier careid is sealed when careid next starts.
    let template = &in_db[0];
    let pem = String::from_utf8(
        kek.open(&template.kid, &template.sealed_private_key)
            .unwrap(),
    )
    .unwrap();
    let mut jwk = template.public_jwk.clone();
    jwk["kid"] = "legacy-plaintext".into();
    let legacy = StoredKey {
        kid: "legacy-plaintext".into(),
        generation: 100,
        sealed_private_key: pem.clone(),
        public_jwk: jwk,
        created_at: env.now() - 10,
        activate_at: env.now() - 10,
        retire_at: Some(env.now() + 600),
        ..template.clone()
    };
    assert!(env.db.insert_signing_key(&legacy).await.unwrap());
    env.server.provider.load_keys().await.unwrap();
    let sealed = stored(&env.db.signing_keys().await.unwrap(), "legacy-plaintext")
        .sealed_private_key
        .clone();
    assert!(sealed.starts_with("a256gcm:") && !sealed.contains("PRIVATE KEY"));
    assert_eq!(
        kek.open("legacy-plaintext", &sealed).unwrap(),
        pem.as_bytes()
    );
    assert!(published(&env)
        .await
        .contains(&"legacy-plaintext".to_string()));
}

#[tokio::test]
async fn a_server_needs_the_encryption_key_its_keys_were_sealed_with() {
    let env = TestEnv::start().await;
    let mut config = Config::default();
    config.database.url = env.database_url.clone();
    config.database.max_connections = 2;
    let start = |config: Config| {
        let clock = Arc::new(env.clock.clone());
        async move {
            let main = TcpListener::bind("127.0.0.1:0").await.unwrap();
            match careid::app::start(config, clock, Listeners { main, card: None }).await {
                Ok(_) => panic!("started"),
                Err(e) => format!("{e:#}"),
            }
        }
    };
    let err = start(config.clone()).await;
    assert!(err.contains("keys.encryption_key is not set"), "{err}");

    let wrong = KeyEncryptionKey::generate().unwrap().to_base64();
    config.keys.encryption_key = Some(wrong.clone());
    let err = start(config).await;
    assert!(
        err.contains("cannot be decrypted") && err.contains("keys.encryption_key"),
        "{err}"
    );
    assert!(!err.contains(&wrong), "the key is never shown");
}

#[tokio::test]
async fn the_cli_rotates_with_the_encryption_key_from_the_environment() {
    let env = TestEnv::start().await;
    let careid = |with_key: bool, args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_careid"));
        c.current_dir(env.dir.path())
            .env("CAREID_DATABASE__URL", &env.database_url)
            .env_remove("CAREID_KEYS__ENCRYPTION_KEY")
            .args(args);
        if with_key {
            c.env("CAREID_KEYS__ENCRYPTION_KEY", test_encryption_key());
        }
        c.output().unwrap()
    };
    let refused = careid(false, &["keys", "rotate"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("keys.encryption_key"), "{stderr}");

    let signer = env.server.provider.keys.signing_kid(SigningAlg::RS256);
    let rotated = careid(true, &["keys", "rotate"]);
    let stdout = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert_eq!(
        stdout.matches("published now, signs from").count(),
        3,
        "{stdout}"
    );
    env.server.provider.reload_keys().await.unwrap();
    assert_eq!(published(&env).await.len(), 6);
    assert_eq!(
        env.server.provider.keys.signing_kid(SigningAlg::RS256),
        signer,
        "the running server keeps its signer"
    );

    let emergency = careid(true, &["keys", "rotate", "--now"]);
    assert!(emergency.status.success());
    // The CLI retired them at its wall-clock time, a little ahead of the server's manual clock.
    env.clock.advance(10);
    env.server.provider.reload_keys().await.unwrap();
    assert_eq!(published(&env).await.len(), 3);
    assert_ne!(
        env.server.provider.keys.signing_kid(SigningAlg::RS256),
        signer
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotation_on_two_servers_adds_one_key_per_algorithm() {
    let a = TestEnv::start().await;
    let b = TestEnv::start_with(Options {
        database_url: Some(a.database_url.clone()),
        pki: Some(a.pki.clone()),
        issuer: Some(a.issuer.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        a.db.signing_keys().await.unwrap().len(),
        3,
        "B reused A's keys"
    );
    // The guard: the store takes one key per (algorithm, generation).
    let kek = KeyEncryptionKey::from_base64(&test_encryption_key()).unwrap();
    let taken = keys::generate(SigningAlg::ES256, 1, &kek, a.now(), a.now()).unwrap();
    assert!(!a.db.insert_signing_key(&taken).await.unwrap());
    let every = i64::from(a.server.provider.config.keys.rotate_every_days) * 86400;
    assert_eq!(every, 90 * 86400, "the default");

    let both = || {
        let (pa, pb) = (a.server.provider.clone(), b.server.provider.clone());
        async move {
            let (ra, rb) = tokio::join!(
                tokio::spawn(async move { pa.rotate_keys_if_due().await.unwrap() }),
                tokio::spawn(async move { pb.rotate_keys_if_due().await.unwrap() }),
            );
            ra.unwrap().len() + rb.unwrap().len()
        }
    };
    for round in 1..=2 {
        // Both clocks to 10 s before the newest key is `rotate_every_days` old.
        let newest_created =
            a.db.signing_keys()
                .await
                .unwrap()
                .iter()
                .map(|k| k.created_at)
                .max()
                .unwrap();
        a.clock.advance(newest_created + every - 10 - a.now());
        b.clock.advance(newest_created + every - 10 - b.now());
        assert_eq!(both().await, 0, "round {round}: not due yet");
        a.clock.advance(10);
        b.clock.advance(10);
        assert_eq!(both().await, 3, "round {round}: one new key per algorithm");
        assert_eq!(both().await, 0, "round {round}: and only one");
        let in_db = a.db.signing_keys().await.unwrap();
        for alg in SigningAlg::ALL {
            let mut generations: Vec<i64> = in_db
                .iter()
                .filter(|k| k.alg == alg)
                .map(|k| k.generation)
                .collect();
            generations.sort();
            assert_eq!(
                generations,
                (1..=round + 1).collect::<Vec<i64>>(),
                "{alg:?}"
            );
        }
        // Both servers publish the new keys; neither signs with them yet.
        a.server.provider.reload_keys().await.unwrap();
        b.server.provider.reload_keys().await.unwrap();
        let newest: Vec<&StoredKey> = in_db.iter().filter(|k| k.generation == round + 1).collect();
        for env in [&a, &b] {
            let kids = published(env).await;
            assert!(newest.iter().all(|k| kids.contains(&k.kid)), "{kids:?}");
            for k in &newest {
                assert_ne!(
                    env.server.provider.keys.signing_kid(k.alg).as_ref(),
                    Some(&k.kid)
                );
                assert!(k.activate_at > env.now());
            }
        }
        // Let the new keys activate before the next round.
        a.clock.advance(4000);
        b.clock.advance(4000);
        a.server.provider.reload_keys().await.unwrap();
        for k in &newest {
            assert_eq!(
                a.server.provider.keys.signing_kid(k.alg).as_ref(),
                Some(&k.kid)
            );
        }
    }
}

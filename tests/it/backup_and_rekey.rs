//! What docs/operations.md tells a platform team to do with the data: back up SQLite online with
//! `careid backup` and restore by starting on the copy; re-key the key-encryption key with
//! `keys.previous_encryption_key` and `careid keys reseal`, with sign-ins working at each step.

use std::process::{Command, Output};

use careid::domain::keys::KeyEncryptionKey;

use crate::helpers::*;

/// Runs the careid command on `database_url` with the given key-encryption keys.
fn careid(env: &TestEnv, database_url: &str, keys: (&str, Option<&str>), args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_careid"));
    c.current_dir(env.dir.path())
        .env("CAREID_DATABASE__URL", database_url)
        .env("CAREID_KEYS__ENCRYPTION_KEY", keys.0)
        .env_remove("CAREID_KEYS__PREVIOUS_ENCRYPTION_KEY")
        .args(args);
    if let Some(previous) = keys.1 {
        c.env("CAREID_KEYS__PREVIOUS_ENCRYPTION_KEY", previous);
    }
    c.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A whole sign-in and code exchange on `env`.
async fn signs_in(
    env: &TestEnv,
    client: &careid::domain::client::NewClient,
    card: &careid::pki::Issued,
) {
    let code = env.code_for(client, card).await;
    let r = env.redeem(client, &code).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn the_key_encryption_key_is_replaced_without_stopping_sign_ins() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("600000000101").await;
    let client = env.confidential_client().await;
    let old = test_encryption_key();
    let new = KeyEncryptionKey::generate().unwrap().to_base64();
    let url = env.database_url.clone();

    // Resealing with only the new key cannot open the keys: refused, nothing changed.
    let refused = careid(&env, &url, (&new, None), &["keys", "reseal"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("keys.encryption_key"),
        "{}",
        text(&refused)
    );

    // Step 1: servers run with the new key and the old one as previous (a rolling restart).
    let (new_for_server, old_for_server) = (new.clone(), old.clone());
    let both = TestEnv::start_with(Options {
        database_url: Some(url.clone()),
        pki: Some(env.pki.clone()),
        adjust: Some(Box::new(move |c| {
            c.keys.encryption_key = Some(new_for_server);
            c.keys.previous_encryption_key = Some(old_for_server);
        })),
        ..Default::default()
    })
    .await;
    signs_in(&both, &client, &card).await;

    // Step 2: reseal once; running it again finds nothing to do.
    let resealed = careid(&env, &url, (&new, Some(&old)), &["keys", "reseal"]);
    assert!(resealed.status.success(), "{}", text(&resealed));
    assert!(
        text(&resealed).contains("resealed 3 signing keys"),
        "{}",
        text(&resealed)
    );
    let again = careid(&env, &url, (&new, Some(&old)), &["keys", "reseal"]);
    assert!(
        text(&again).contains("resealed 0 signing keys under keys.encryption_key (3 already were)"),
        "{}",
        text(&again)
    );

    // Step 3: the old key is dropped. The new key alone opens everything; the old alone nothing.
    let new_for_server = new.clone();
    let only_new = TestEnv::start_with(Options {
        database_url: Some(url.clone()),
        pki: Some(env.pki.clone()),
        adjust: Some(Box::new(move |c| {
            c.keys.encryption_key = Some(new_for_server)
        })),
        ..Default::default()
    })
    .await;
    signs_in(&only_new, &client, &card).await;
    let with_old = careid(&env, &url, (&old, None), &["keys", "rotate"]);
    assert!(
        !with_old.status.success(),
        "the old key no longer opens the stored keys"
    );
    assert!(
        text(&with_old).contains("keys.encryption_key"),
        "{}",
        text(&with_old)
    );
}

#[tokio::test]
async fn an_online_backup_restores_to_a_working_server() {
    let env = TestEnv::start().await;
    let card = env.user_with_card("600000000102").await;
    let client = env.confidential_client().await;
    signs_in(&env, &client, &card).await;
    let copy = env.dir.path().join("backup").join("careid-copy.db");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let copy_arg = copy.to_str().unwrap();
    let key = test_encryption_key();

    let out = careid(
        &env,
        &env.database_url,
        (&key, None),
        &["backup", "--to", copy_arg],
    );
    if env.database_url.starts_with("postgres") {
        assert!(!out.status.success());
        assert!(text(&out).contains("pg_dump"), "{}", text(&out));
        return;
    }
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("backed up to"), "{}", text(&out));
    let twice = careid(
        &env,
        &env.database_url,
        (&key, None),
        &["backup", "--to", copy_arg],
    );
    assert!(!twice.status.success() && text(&twice).contains("exists already"));

    // The copy is whole: its audit chain verifies, up to where the original stood.
    let copy_url = format!("sqlite://{}", copy.display());
    let verified = careid(&env, &copy_url, (&key, None), &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("audit chain intact"),
        "{}",
        text(&verified)
    );

    // Restore: a server started on the copy signs the same person in to the same client.
    let restored = TestEnv::start_with(Options {
        database_url: Some(copy_url),
        pki: Some(env.pki.clone()),
        ..Default::default()
    })
    .await;
    signs_in(&restored, &client, &card).await;

    // A typo in the path is refused, not answered with a new empty database.
    let missing = careid(
        &env,
        "sqlite://no/such/careid.db",
        (&key, None),
        &["audit", "verify"],
    );
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("no database at"),
        "{}",
        text(&missing)
    );
    assert!(!env.dir.path().join("no").exists());
}

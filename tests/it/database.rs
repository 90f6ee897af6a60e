//! The store's connection to PostgreSQL: TLS as the URL's `sslmode` asks (managed PostgreSQL
//! servers require it). Runs in the PostgreSQL pass of `.ci/test` (TEST_DATABASE_URL), whose local
//! server has TLS on with Debian's self-signed certificate.

use careid::store::Db;

fn url_at_localhost(u: &str) -> String {
    u.replace("@127.0.0.1", "@localhost")
}

/// The PostgreSQL URL of this run, if it is the PostgreSQL pass.
fn postgres() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

#[tokio::test]
async fn postgres_connections_honour_sslmode() {
    let Some(base) = postgres() else {
        return; // SQLite pass: a local file has no transport to encrypt.
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = |query: &str| format!("{base}{sep}{query}");
    for (query, encrypted) in [("sslmode=disable", false), ("sslmode=require", true)] {
        let db = Db::connect(&url(query), 2).await.unwrap();
        assert_eq!(
            db.connection_encrypted().await.unwrap(),
            encrypted,
            "{query}"
        );
    }
    // The server's certificate is checked when asked: with the right root and the name it was
    // issued to (Debian's certificate names localhost) it verifies; a root that did not sign it,
    // or another name, refuses the connection.
    let snakeoil = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    assert!(
        std::path::Path::new(snakeoil).exists(),
        "the local server's certificate"
    );
    let by_name = url(&format!("sslmode=verify-full&sslrootcert={snakeoil}"))
        .replace("@127.0.0.1", "@localhost");
    let db = Db::connect(&by_name, 2).await.unwrap();
    assert!(db.connection_encrypted().await.unwrap());
    let by_address = by_name.replace("@localhost", "@127.0.0.1");
    assert!(
        Db::connect(&by_address, 2).await.is_err(),
        "the certificate does not name 127.0.0.1"
    );
    let stranger = tempfile::NamedTempFile::new().unwrap();
    let other_root = careid::pki::Authority::root("x", "Not the database's CA", 0).unwrap();
    std::fs::write(stranger.path(), other_root.pem()).unwrap();
    let refused = Db::connect(
        &url_at_localhost(&url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            stranger.path().display()
        ))),
        2,
    )
    .await;
    assert!(
        refused.is_err(),
        "a server certificate from another CA is refused"
    );
}

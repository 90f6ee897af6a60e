//! `careid serve --demo`: everything needed to try a smartcard sign-in on a fresh checkout,
//! created under `data/demo/` when missing and reused afterwards. A development CA and a server
//! certificate for `localhost`, a smartcard root and authentication sub-CA, a card certificate for
//! a demo user (PEM and a password-protected PKCS#12 for importing into a browser), and a
//! registered confidential client, and the key that encrypts the signing keys (when
//! `keys.encryption_key` is not configured). Demo data is never created without `--demo`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use crate::clock::UnixTime;
use crate::config::{Config, TlsConfig};
use crate::domain::client::ClientRequest;
use crate::domain::keys::KeyEncryptionKey;
use crate::domain::{rbac, registry, secrets};
use crate::model::identity::{User, UserStatus};

use crate::domain::pki::{self, Authority, CardSpec};
use crate::store::Db;

pub const DEMO_DIR: &str = "data/demo";
pub const DEMO_USER: &str = "555123456789";
pub const DEMO_REDIRECT: &str = "http://127.0.0.1:8080/callback";

/// The demo's RA staff at RZ9, for the RA console: (UUID, given name, family name, card file
/// stem, position name, job role).
pub const DEMO_RA_STAFF: [(&str, &str, &str, &str, &str, &str); 2] = [
    (
        "555100000001",
        "Rita",
        "Manager",
        "card-ra-manager",
        "Registration Authority Manager",
        "R5080",
    ),
    (
        "555100000002",
        "Alex",
        "Agent",
        "card-ra-agent",
        "Registration Authority Agent",
        "R5090",
    ),
];

pub struct Demo {
    pub dir: PathBuf,
    pub client_id: String,
    pub client_secret: String,
    pub p12_password: String,
}

/// How long the development CA (and its server certificate) lives; renewed at start when fewer
/// than [`DEV_CA_RENEW_DAYS`] remain.
pub const DEV_CA_DAYS: i64 = 90;
const DEV_CA_RENEW_DAYS: i64 = 7;

/// Writes a demo file readable only by its owner (keys, secrets and passwords live here).
fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    let path = dir.join(name);
    let _ = fs::remove_file(&path);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(
        &mut options
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?,
        contents.as_ref(),
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// The demo folder, made (or tightened) to owner-only, and the files in it to 0600: earlier
/// versions wrote them 0644.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_file() {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

/// Whether the development CA in `dir` is missing or ends within the renewal window.
fn dev_ca_due(dir: &Path, now: UnixTime) -> bool {
    let Ok(pem) = fs::read(dir.join("ca.pem")) else {
        return true;
    };
    let not_after = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .and_then(Result::ok)
        .and_then(|der| {
            x509_parser::parse_x509_certificate(&der)
                .ok()
                .map(|(_, c)| c.validity().not_after.timestamp())
        });
    not_after.is_none_or(|t| t - now < DEV_CA_RENEW_DAYS * 86400)
}

fn read(dir: &Path, name: &str) -> anyhow::Result<String> {
    fs::read_to_string(dir.join(name))
        .with_context(|| format!("reading {}", dir.join(name).display()))
}

/// Points the configuration at the demo PKI: TLS on the main listener and a card listener.
pub fn configure(config: &mut Config, dir: &Path) {
    config.tls = Some(TlsConfig {
        cert_file: dir.join("server.pem"),
        key_file: dir.join("server.key"),
    });
    if config.smartcard.listen.is_none() {
        config.smartcard.listen = Some("127.0.0.1:8444".parse().expect("static address"));
        config.smartcard.base_url = Some("https://localhost:8444".into());
    }
    let ca = dir.join("smartcard-ca.pem");
    if !config.smartcard.ca_files.contains(&ca) {
        config.smartcard.ca_files.push(ca);
    }
}

/// Creates the demo PKI files if they are missing.
pub fn ensure_pki(dir: &Path, now: UnixTime) -> anyhow::Result<String> {
    private_dir(dir)?;
    if dev_ca_due(dir, now) {
        let ca = Authority::local_development_root(
            "careid demo",
            "careid Demo Development CA (localhost only)",
            now,
            DEV_CA_DAYS,
        )?;
        let server =
            ca.server_cert_until(&["localhost", "127.0.0.1"], now, now + DEV_CA_DAYS * 86400)?;
        write(dir, "ca.pem", ca.pem())?;
        write(dir, "ca.key", ca.key.serialize_pem())?;
        write(
            dir,
            "server.pem",
            format!("{}{}", server.cert_pem, ca.pem()),
        )?;
        write(dir, "server.key", &server.key_pem)?;
    }
    let stems = std::iter::once("card-demo").chain(DEMO_RA_STAFF.iter().map(|s| s.3));
    if stems
        .clone()
        .any(|stem| !dir.join(format!("{stem}.p12")).exists())
    {
        let root = Authority::root("careid demo", "careid Demo Smartcard Root", now)?;
        let sub = root.intermediate("careid demo", "careid Demo Authentication", now)?;
        write(
            dir,
            "smartcard-ca.pem",
            format!("{}{}", root.pem(), sub.pem()),
        )?;
        let password = secrets::random_token()[..16].to_string();
        let people = std::iter::once((DEMO_USER, "Demo_Jane".to_string())).chain(
            DEMO_RA_STAFF
                .iter()
                .map(|s| (s.0, format!("{}_{}", s.2, s.1))),
        );
        for ((uuid, name), stem) in people.zip(stems) {
            let card = sub.card_cert(&CardSpec::valid(uuid, &name, now))?;
            write(dir, &format!("{stem}.pem"), &card.cert_pem)?;
            write(dir, &format!("{stem}.key"), &card.key_pem)?;
            write(
                dir,
                &format!("{stem}.p12"),
                pki::pkcs12(&card.cert_pem, &card.key_pem, &sub.pem(), &password)?,
            )?;
        }
        write(dir, "card-demo.p12.password", &password)?;
    }
    read(dir, "card-demo.p12.password")
}

/// The demo's key-encryption key (`keys.encryption_key` when none is configured), made on first
/// use in `key-encryption.key` (base64, readable only by its owner) and reused afterwards, so the
/// demo database's signing keys stay readable across restarts.
pub fn ensure_key_encryption_key(dir: &Path) -> anyhow::Result<String> {
    if !dir.join("key-encryption.key").exists() {
        private_dir(dir)?;
        write(
            dir,
            "key-encryption.key",
            KeyEncryptionKey::generate()?.to_base64(),
        )?;
    }
    Ok(read(dir, "key-encryption.key")?.trim().to_string())
}

/// Creates the demo user, binds the demo card and registers the demo client, when missing.
pub async fn ensure_data(db: &Db, dir: &Path, now: UnixTime) -> anyhow::Result<(String, String)> {
    if db.user(DEMO_USER).await?.is_none() {
        let user = User {
            uuid: DEMO_USER.into(),
            title: Some("Dr".into()),
            given_name: "Jane".into(),
            middle_names: None,
            family_name: "Demo".into(),
            email: Some("jane.demo@example.nhs.uk".into()),
            id_assurance_level: 3,
            status: UserStatus::Active,
        };
        registry::create_user(db, &user, "demo", now).await?;
        // The demo user accepted the terms earlier, so the curl walk-through goes straight
        // through; remove the row (or change terms.version) to see the terms page.
        db.record_terms_acceptance(
            DEMO_USER,
            &crate::config::TermsConfig::default().version,
            now,
        )
        .await?;
        rbac::import(
            db,
            include_str!("../../config/rbac-sample.json"),
            "demo",
            now,
        )
        .await?;
        for (org, position) in [
            ("RZ9", "Staff Nurse - Example Ward 7"),
            ("RZ8", "Immunisation Nurse (inter-organisation)"),
        ] {
            let id = db
                .position_by_name(org, position)
                .await?
                .context("sample position missing")?;
            rbac::assign_position(db, DEMO_USER, &id, now - 86400, None, "demo", now).await?;
        }
    }
    ensure_ra_staff(db, now).await?;
    bind_card(db, dir, DEMO_USER, "card-demo", now).await?;
    for staff in DEMO_RA_STAFF {
        bind_card(db, dir, staff.0, staff.3, now).await?;
    }
    if let Ok(text) = read(dir, "client.json") {
        let saved: serde_json::Value = serde_json::from_str(&text)?;
        let id = saved["client_id"].as_str().unwrap_or_default().to_string();
        if db.client(&id).await?.is_some() {
            return Ok((
                id,
                saved["client_secret"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
    }
    let request = ClientRequest {
        client_name: "careid demo app".into(),
        redirect_uris: vec![
            DEMO_REDIRECT.into(),
            "https://localhost:8080/callback".into(),
        ],
        ..Default::default()
    };
    let new = registry::register_client(db, request, "demo", now).await?;
    let secret = new.secret.clone().unwrap_or_default();
    let m = &new.client.metadata;
    let saved = json!({ "client_id": m.client_id, "client_secret": secret, "redirect_uris": m.redirect_uris, "token_endpoint_auth_method": m.token_endpoint_auth_method });
    write(dir, "client.json", serde_json::to_string_pretty(&saved)?)?;
    Ok((m.client_id.clone(), secret))
}

/// The RA Manager and RA Agent of the demo (for the RA console), each in an RA position at RZ9.
async fn ensure_ra_staff(db: &Db, now: UnixTime) -> anyhow::Result<()> {
    for (uuid, given, family, _, position, job_role) in DEMO_RA_STAFF {
        if db.user(uuid).await?.is_some() {
            continue;
        }
        let user = User {
            uuid: uuid.into(),
            title: None,
            given_name: given.into(),
            middle_names: None,
            family_name: family.into(),
            email: Some(format!("{given}.{family}@example.nhs.uk").to_lowercase()),
            id_assurance_level: 3,
            status: UserStatus::Active,
        };
        registry::create_user(db, &user, "demo", now).await?;
        db.record_terms_acceptance(uuid, &crate::config::TermsConfig::default().version, now)
            .await?;
        let id = match db.position_by_name("RZ9", position).await? {
            Some(id) => id,
            None => {
                let p = crate::model::rbac::Position {
                    id: format!("demo-{job_role}"),
                    org_code: "RZ9".into(),
                    name: position.into(),
                    esr_position: None,
                    profiles: vec![crate::model::rbac::Profile {
                        org_code: "RZ9".into(),
                        job_role: job_role.into(),
                        activities: Vec::new(),
                        workgroups: Vec::new(),
                        areas_of_work: Vec::new(),
                    }],
                };
                db.upsert_position(&p, now).await?
            }
        };
        rbac::assign_position(db, uuid, &id, now - 86400, None, "demo", now).await?;
    }
    Ok(())
}

/// Binds a demo card (`{stem}.pem`) to its person, once.
async fn bind_card(
    db: &Db,
    dir: &Path,
    uuid: &str,
    stem: &str,
    now: UnixTime,
) -> anyhow::Result<()> {
    let pem = read(dir, &format!("{stem}.pem"))?;
    let der = rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .with_context(|| format!("{stem}.pem holds no certificate"))??;
    let card = crate::domain::smartcard::binding_of(&der)
        .map_err(|e| anyhow::anyhow!("demo card {stem}: {e}"))?;
    if db
        .authenticator_by_certificate(&card.issuer, &card.serial)
        .await?
        .is_none()
    {
        registry::bind_smartcard(db, uuid, &der, "demo", now).await?;
    }
    Ok(())
}

/// A fresh invitation (each start) for the demo user to register a security key or passkey.
pub async fn passkey_invitation(db: &Db, now: UnixTime, ttl: i64) -> anyhow::Result<String> {
    let code = secrets::random_token();
    let invitation = crate::domain::webauthn::Invitation {
        user_uuid: DEMO_USER.into(),
        created_by: "demo".into(),
        created_at: now,
        expires_at: now + ttl,
    };
    // The demo operator is the person: the code is handed over at once (no handover link).
    let no_handover = secrets::digest(&secrets::random_token());
    db.insert_invitation(&secrets::digest(&code), &no_handover, &invitation)
        .await?;
    Ok(code)
}

/// What to try, printed at start.
pub fn instructions(
    config: &Config,
    dir: &Path,
    client_id: &str,
    p12_password: &str,
    invitation: &str,
) -> String {
    let d = dir.display();
    format!(
        "\ncareid demo is running.\n\
         \n  issuer        {issuer}\n  discovery     curl --cacert {d}/ca.pem {issuer}/.well-known/openid-configuration\n\
         \n  Files in {d}:\n    ca.pem              development CA (trust it in your browser, or pass --cacert to curl)\n\
         \x20   card-demo.p12       demo smartcard certificate for a browser (password: {p12_password})\n\
         \x20   card-demo.pem/.key  the same for curl (--cert/--key)\n    client.json         demo client ({client_id}) and its secret\n\
         \x20   card-ra-manager.p12 Rita Manager, RA Manager at RZ9 (same password)\n\
         \x20   card-ra-agent.p12   Alex Agent, RA Agent at RZ9 (same password)\n\
         \n  RA console (import an RA card into a browser trusting ca.pem):\n    {issuer}/ra/\n\
         \n  Sign in as the demo user with curl (see README, \"Demo walk-through\"):\n\
         \x20   curl --cacert {d}/ca.pem -i '{issuer}/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback&scope=openid%20profile&state=xyz&code_challenge=EZxLzDDAIsO7xAOurWBSZa4qsw3DAUsVchkRQHjO5jw&code_challenge_method=S256'\n\
         \n  Register a passkey or security key for the demo user (browser trusting ca.pem; link valid {minutes} min):\n\
         \x20   {issuer}/webauthn/register?invitation={invitation}\n",
        issuer = config.issuer,
        minutes = config.webauthn.invitation_ttl_secs / 60
    )
}

//! A FIDO Metadata Service (MDS3) BLOB read from disk, with no network: a JWT whose `x5c`
//! chain must end at the configured root, signed by that chain's leaf. Its entries give each
//! authenticator model's (AAGUID's) attestation roots and status reports.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509StoreContext, X509};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("webauthn.aal3_attestation_roots: {path}: {reason}")]
    Root { path: String, reason: String },
    #[error("webauthn.aal3_aaguids: {0} is not a UUID")]
    Aaguid(String),
    #[error("webauthn.metadata_blob: {0}")]
    Metadata(String),
}

/// Status reports that withdraw trust from a model (FIDO MDS3 §3.1.4 AuthenticatorStatus).
const DISTRUSTING_STATUSES: &[&str] = &[
    "REVOKED",
    "ATTESTATION_KEY_COMPROMISE",
    "USER_VERIFICATION_BYPASS",
    "USER_KEY_REMOTE_COMPROMISE",
    "USER_KEY_PHYSICAL_COMPROMISE",
];

/// One FIDO2 model from the BLOB.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataEntry {
    pub aaguid: Uuid,
    pub description: String,
    /// DER certificates.
    pub attestation_roots: Vec<Vec<u8>>,
    /// A compromise or revocation was reported: never AAL3.
    pub distrusted: bool,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    x5c: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    next_update: Option<String>,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    aaguid: Option<String>,
    #[serde(default)]
    metadata_statement: Option<Statement>,
    #[serde(default)]
    status_reports: Vec<StatusReport>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(default)]
    description: String,
    #[serde(default)]
    attestation_root_certificates: Vec<String>,
}

#[derive(Deserialize)]
struct StatusReport {
    status: String,
}

fn err(reason: impl std::fmt::Display) -> PolicyError {
    PolicyError::Metadata(reason.to_string())
}

/// Reads and verifies the BLOB; its FIDO2 entries (those with an AAGUID).
pub fn read_blob(blob: &Path, root: &Path, now: i64) -> Result<Vec<MetadataEntry>, PolicyError> {
    let text =
        std::fs::read_to_string(blob).map_err(|e| err(format!("{}: {e}", blob.display())))?;
    let root_pem = std::fs::read(root)
        .map_err(|e| err(format!("metadata_blob_root {}: {e}", root.display())))?;
    let root =
        X509::stack_from_pem(&root_pem).map_err(|e| err(format!("metadata_blob_root: {e}")))?;
    let payload = verify(text.trim(), &root)?;
    if let Some(next) = &payload.next_update {
        if next.as_str() < today(now).as_str() {
            tracing::warn!(next_update = %next, "the FIDO metadata BLOB is past its nextUpdate; replace it");
        }
    }
    Ok(payload.entries.into_iter().filter_map(entry).collect())
}

fn entry(e: Entry) -> Option<MetadataEntry> {
    let aaguid = Uuid::parse_str(e.aaguid.as_deref()?).ok()?;
    let statement = e.metadata_statement;
    Some(MetadataEntry {
        aaguid,
        description: statement
            .as_ref()
            .map(|s| s.description.clone())
            .unwrap_or_default(),
        attestation_roots: statement
            .map(|s| {
                s.attestation_root_certificates
                    .iter()
                    .filter_map(|c| STANDARD.decode(c).ok())
                    .collect()
            })
            .unwrap_or_default(),
        distrusted: e
            .status_reports
            .iter()
            .any(|r| DISTRUSTING_STATUSES.contains(&r.status.as_str())),
    })
}

/// Checks the `x5c` chain against the root, then the JWS signature with the leaf's key.
fn verify(jwt: &str, roots: &[X509]) -> Result<Payload, PolicyError> {
    let header_b64 = jwt.split('.').next().unwrap_or_default();
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(|| err("not a JWT"))?;
    let chain: Vec<X509> = header
        .x5c
        .iter()
        .map(|c| {
            STANDARD
                .decode(c)
                .ok()
                .and_then(|der| X509::from_der(&der).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(|| err("x5c holds a certificate that cannot be read"))?;
    let (leaf, intermediates) = chain.split_first().ok_or_else(|| err("no x5c chain"))?;
    if !chain_verifies(leaf, intermediates, roots)? {
        return Err(err(
            "its signing certificate does not chain to metadata_blob_root",
        ));
    }
    let key_pem = leaf
        .public_key()
        .and_then(|k| k.public_key_to_pem())
        .map_err(err)?;
    let verifier: Box<dyn josekit::jws::JwsVerifier> = match header.alg.as_str() {
        "RS256" => Box::new(
            josekit::jws::RS256
                .verifier_from_pem(&key_pem)
                .map_err(err)?,
        ),
        "ES256" => Box::new(
            josekit::jws::ES256
                .verifier_from_pem(&key_pem)
                .map_err(err)?,
        ),
        other => return Err(err(format!("unsupported alg {other}"))),
    };
    let (payload, _) = josekit::jws::deserialize_compact(jwt, verifier.as_ref())
        .map_err(|e| err(format!("signature does not verify: {e}")))?;
    serde_json::from_slice(&payload).map_err(|e| err(format!("payload: {e}")))
}

fn chain_verifies(
    leaf: &X509,
    intermediates: &[X509],
    roots: &[X509],
) -> Result<bool, PolicyError> {
    let mut store = X509StoreBuilder::new().map_err(err)?;
    for r in roots {
        store.add_cert(r.clone()).map_err(err)?;
    }
    let store = store.build();
    let mut stack = Stack::new().map_err(err)?;
    for c in intermediates {
        stack.push(c.clone()).map_err(err)?;
    }
    let mut ctx = X509StoreContext::new().map_err(err)?;
    ctx.init(&store, leaf, &stack, |c| c.verify_cert())
        .map_err(err)
}

/// `YYYY-MM-DD` of a unix time, to compare with `nextUpdate`.
fn today(now: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(now)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::Authority;

    const NOW: i64 = 1_790_000_000;
    const KEY_MODEL: &str = "ee882879-721c-4913-9775-3dfcce97072a";
    const REVOKED_MODEL: &str = "149a2021-8ef6-4133-96b8-81f8d5b7f1f5";

    /// A BLOB signed by `signer` (a certificate issued by the metadata root) with `payload`.
    fn blob(signer_cert_der: &[u8], signer_key_pem: &str, payload: &serde_json::Value) -> String {
        let mut header = josekit::jws::JwsHeader::new();
        header.set_x509_certificate_chain(&vec![signer_cert_der.to_vec()]);
        let signer = josekit::jws::ES256.signer_from_pem(signer_key_pem).unwrap();
        josekit::jws::serialize_compact(payload.to_string().as_bytes(), &header, &signer).unwrap()
    }

    fn payload(attestation_root_der: &[u8]) -> serde_json::Value {
        serde_json::json!({
            "no": 7, "nextUpdate": "2026-12-01",
            "entries": [
                { "aaguid": KEY_MODEL,
                  "metadataStatement": { "description": "Example FIDO2 key",
                      "attestationRootCertificates": [STANDARD.encode(attestation_root_der)] },
                  "statusReports": [{ "status": "FIDO_CERTIFIED_L2" }] },
                { "aaguid": REVOKED_MODEL,
                  "metadataStatement": { "description": "Broken key", "attestationRootCertificates": [] },
                  "statusReports": [{ "status": "FIDO_CERTIFIED_L1" }, { "status": "ATTESTATION_KEY_COMPROMISE" }] },
                { "aaid": "4e4e#4005", "statusReports": [] }
            ]
        })
    }

    fn files(dir: &Path, blob: &str, root_pem: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let b = dir.join("blob.jwt");
        let r = dir.join("root.pem");
        std::fs::write(&b, blob).unwrap();
        std::fs::write(&r, root_pem).unwrap();
        (b, r)
    }

    #[test]
    fn a_blob_signed_under_the_root_gives_models_and_their_status() {
        let mds_root = Authority::root("FIDO", "Metadata root", NOW).unwrap();
        let signer = mds_root.server_cert(&["mds.example"], NOW).unwrap();
        let vendor_root = Authority::root("Vendor", "Attestation root", NOW).unwrap();
        let text = blob(
            &signer.der,
            &signer.key_pem,
            &payload(vendor_root.cert.der()),
        );
        let dir = tempfile::tempdir().unwrap();
        let (b, r) = files(dir.path(), &text, &mds_root.pem());
        let entries = read_blob(&b, &r, NOW).unwrap();
        assert_eq!(
            entries.len(),
            2,
            "the U2F (aaid) entry is not a FIDO2 model"
        );
        assert_eq!(entries[0].aaguid.to_string(), KEY_MODEL);
        assert_eq!(
            entries[0].attestation_roots,
            vec![vendor_root.cert.der().to_vec()]
        );
        assert!(!entries[0].distrusted);
        assert_eq!(entries[1].aaguid.to_string(), REVOKED_MODEL);
        assert!(entries[1].distrusted);
    }

    #[test]
    fn a_blob_from_another_signer_or_altered_is_refused() {
        let mds_root = Authority::root("FIDO", "Metadata root", NOW).unwrap();
        let impostor_root = Authority::root("Evil", "Metadata root", NOW).unwrap();
        let impostor = impostor_root.server_cert(&["mds.example"], NOW).unwrap();
        let vendor_root = Authority::root("Vendor", "Attestation root", NOW).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = blob(
            &impostor.der,
            &impostor.key_pem,
            &payload(vendor_root.cert.der()),
        );
        let (b, r) = files(dir.path(), &text, &mds_root.pem());
        let e = read_blob(&b, &r, NOW).unwrap_err().to_string();
        assert!(e.contains("does not chain"), "{e}");

        let signer = mds_root.server_cert(&["mds.example"], NOW).unwrap();
        let text = blob(
            &signer.der,
            &signer.key_pem,
            &payload(vendor_root.cert.der()),
        );
        let mut parts: Vec<String> = text.split('.').map(String::from).collect();
        let mut altered = payload(impostor_root.cert.der());
        altered["no"] = serde_json::json!(8);
        parts[1] = URL_SAFE_NO_PAD.encode(altered.to_string());
        let (b, r) = files(dir.path(), &parts.join("."), &mds_root.pem());
        let e = read_blob(&b, &r, NOW).unwrap_err().to_string();
        assert!(e.contains("signature does not verify"), "{e}");
    }
}

//! Smartcard certificates: whether a client certificate may sign a user in. It must chain to a
//! configured smartcard CA, be within its validity, allow digital signatures (and TLS client
//! authentication, when it lists extended key usages), not be on a configured CRL, and then be
//! bound to an active smartcard authenticator of an active user (checked by the login service).
//!
//! Chain and revocation checks use rustls-webpki; the names and numbers the binding needs are
//! read with x509-parser. TLS itself only proves possession of the key (the handshake signature):
//! validation happens here so a rejection becomes a readable page and an audit record instead of a
//! failed handshake.
//!
//! Revocation fails closed once CRLs are configured: every certificate of the path below the
//! anchor must be covered by a CRL from its issuer (unknown status is refused), and a CRL past
//! its `nextUpdate` refuses every card it would vouch for (a stale list cannot say a card is
//! fine). Without CRLs careid warns at start and checks no revocation. When
//! `smartcard.required_policy_oids` is set, the card certificate must carry one of them (NHS
//! card certificates carry a certificate-policy OID).
//!
//! A browser presents the same chain at every sign-in, so a chain that verified is remembered
//! (by the SHA-256 of its certificates) for up to five minutes and never past the expiry of any
//! certificate that could be in its path, nor past any CRL's `nextUpdate`. Nothing else the
//! verdict depends on can change meanwhile: the anchors, intermediates and CRLs of a `CardTrust`
//! are fixed when it is built, and a reload (`http/reload.rs`) builds a new one, with an empty
//! memory. Rejections are never remembered. The binding to an active authenticator of an active user is
//! checked at every sign-in regardless (`domain/login.rs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use rustls_pki_types::{CertificateDer, TrustAnchor};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

use crate::clock::UnixTime;

#[derive(Debug, thiserror::Error)]
pub enum TrustConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} holds no certificate")]
    Empty(PathBuf),
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
}

/// Why a certificate cannot sign anyone in. Each has its own page text and audit outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardRejection {
    #[error("no smartcard certificate was presented")]
    NoCertificate,
    #[error("the certificate could not be read")]
    Malformed,
    #[error("the certificate was not issued by a recognised smartcard authority")]
    UnknownIssuer,
    #[error("the certificate has expired")]
    Expired,
    #[error("the certificate is not valid yet")]
    NotYetValid,
    #[error("the certificate has been revoked")]
    Revoked,
    #[error("careid cannot check smartcard revocation right now (its revocation list is out of date); try again later or contact the service desk")]
    RevocationListStale,
    #[error("careid has no revocation list from the authority that issued this certificate")]
    RevocationUnknown,
    #[error("the certificate does not carry the certificate policy careid requires")]
    PolicyMissing,
    #[error("the certificate is not meant for signing in")]
    UnsuitableKeyUsage,
    #[error("the certificate is not valid: {0}")]
    Invalid(String),
    #[error("this card is not registered to an active Care Identity")]
    NotBound,
    #[error("this card has been revoked")]
    AuthenticatorRevoked,
    #[error("this card is suspended; ask your Registration Authority to unlock it")]
    AuthenticatorSuspended,
    #[error("this temporary access card has expired; return it to your Registration Authority")]
    TacExpired,
    #[error("the Care Identity for this card is not active")]
    UserNotActive,
    #[error("the certificate names a different Care Identity than the card is registered to")]
    UuidMismatch,
}

impl CardRejection {
    /// Short stable code for audit records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            CardRejection::NoCertificate => "no_certificate",
            CardRejection::Malformed => "malformed",
            CardRejection::UnknownIssuer => "unknown_issuer",
            CardRejection::Expired => "expired",
            CardRejection::NotYetValid => "not_yet_valid",
            CardRejection::Revoked => "revoked",
            CardRejection::RevocationListStale => "crl_stale",
            CardRejection::RevocationUnknown => "revocation_unknown",
            CardRejection::PolicyMissing => "policy_missing",
            CardRejection::UnsuitableKeyUsage => "key_usage",
            CardRejection::Invalid(_) => "invalid",
            CardRejection::NotBound => "not_bound",
            CardRejection::TacExpired => "tac_expired",
            CardRejection::AuthenticatorRevoked => "authenticator_revoked",
            CardRejection::AuthenticatorSuspended => "authenticator_suspended",
            CardRejection::UserNotActive => "user_not_active",
            CardRejection::UuidMismatch => "uuid_mismatch",
        }
    }
}

/// Whether `signature` over `message` was made with the key of certificate `leaf`: ECDSA P-256
/// (ASN.1) or RSA PKCS#1 v1.5, with SHA-256 (what PIV cards do). Checked by ring through
/// rustls-webpki.
pub fn signed_by(leaf: &CertificateDer<'_>, message: &[u8], signature: &[u8]) -> bool {
    let Ok(cert) = EndEntityCert::try_from(leaf) else {
        return false;
    };
    [
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    ]
    .into_iter()
    .any(|alg| cert.verify_signature(alg, message, signature).is_ok())
}

/// What a valid card certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardCertificate {
    /// Issuer DN as text (`C=GB, O=nhs, OU=CA, CN=...`): half of the binding key.
    pub issuer: String,
    /// Serial number, lowercase hex without leading zeros: the other half.
    pub serial: String,
    /// The UUID from the subject CN (`<UUID>_<name>`), when it has one.
    pub subject_uuid: Option<String>,
}

/// The configured smartcard CAs and CRLs.
#[derive(Debug, Default)]
pub struct CardTrust {
    anchors: Vec<TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    /// The earliest `notAfter` of the configured intermediates.
    intermediates_expire: Option<UnixTime>,
    crls: Vec<CertRevocationList<'static>>,
    /// The earliest `nextUpdate` of the CRLs: after it, some card cannot be checked.
    crls_next_update: Option<UnixTime>,
    /// Certificate-policy OIDs (dotted) of which a card certificate must carry one; empty: any.
    required_policies: Vec<String>,
    /// DER subjects of every CA, sent as certificate-request hints so browsers offer only cards.
    pub subjects: Vec<Vec<u8>>,
    /// Chains that verified recently, by [`chain_digest`].
    verified: Mutex<HashMap<[u8; 32], VerifiedChain>>,
}

#[derive(Debug, Clone)]
struct VerifiedChain {
    card: CardCertificate,
    verified_at: UnixTime,
    /// Re-verify from this instant on.
    fresh_until: UnixTime,
}

/// How long a verified chain is remembered at most.
const VERIFIED_FOR_SECS: i64 = 300;
/// Beyond this many remembered chains the memory starts again empty.
const VERIFIED_LIMIT: usize = 10_000;

fn chain_digest(chain: &[CertificateDer<'_>]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for der in chain {
        hash.update((der.len() as u64).to_be_bytes());
        hash.update(der.as_ref());
    }
    hash.finalize().into()
}

/// The smartcard trust in force. A reload replaces it whole; a sign-in keeps the one it started
/// with, and the new one starts with no remembered verdicts.
#[derive(Debug, Default)]
pub struct TrustCell(std::sync::RwLock<std::sync::Arc<CardTrust>>);

impl TrustCell {
    pub fn new(trust: CardTrust) -> TrustCell {
        TrustCell(std::sync::RwLock::new(std::sync::Arc::new(trust)))
    }
    pub fn current(&self) -> std::sync::Arc<CardTrust> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn replace(&self, trust: CardTrust) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(trust);
    }
}

/// Builds the trust the configuration names: CAs, CRLs and required policies.
pub fn load_trust(c: &crate::config::SmartcardConfig) -> Result<CardTrust, TrustConfigError> {
    Ok(CardTrust::from_files(&c.ca_files, &c.crl_files)?
        .requiring_policies(&c.required_policy_oids))
}

/// The earliest `notAfter` among `certs`; None if one cannot be read.
fn earliest_expiry<'a>(
    certs: impl IntoIterator<Item = &'a CertificateDer<'a>>,
) -> Option<Option<UnixTime>> {
    let mut earliest: Option<UnixTime> = None;
    for der in certs {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let not_after = cert.validity().not_after.timestamp();
        earliest = Some(earliest.map_or(not_after, |e| e.min(not_after)));
    }
    Some(earliest)
}

impl CardTrust {
    pub fn from_files(
        ca_files: &[PathBuf],
        crl_files: &[PathBuf],
    ) -> Result<CardTrust, TrustConfigError> {
        let mut trust = CardTrust::default();
        for path in ca_files {
            let bytes = std::fs::read(path).map_err(|e| TrustConfigError::Read(path.clone(), e))?;
            let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut bytes.as_slice())
                .filter_map(Result::ok)
                .collect();
            if certs.is_empty() {
                return Err(TrustConfigError::Empty(path.clone()));
            }
            for der in certs {
                let (_, parsed) = x509_parser::parse_x509_certificate(&der)
                    .map_err(|e| TrustConfigError::Invalid(path.clone(), e.to_string()))?;
                trust.subjects.push(parsed.subject().as_raw().to_vec());
                if parsed.subject().as_raw() == parsed.issuer().as_raw() {
                    let anchor = webpki::anchor_from_trusted_cert(&der)
                        .map_err(|e| TrustConfigError::Invalid(path.clone(), e.to_string()))?
                        .to_owned();
                    trust.anchors.push(anchor);
                } else {
                    let not_after = parsed.validity().not_after.timestamp();
                    trust.intermediates_expire = Some(
                        trust
                            .intermediates_expire
                            .map_or(not_after, |e| e.min(not_after)),
                    );
                    trust.intermediates.push(der);
                }
            }
        }
        for path in crl_files {
            let bytes = std::fs::read(path).map_err(|e| TrustConfigError::Read(path.clone(), e))?;
            let ders: Vec<Vec<u8>> = if bytes.starts_with(b"-----") {
                rustls_pemfile::crls(&mut bytes.as_slice())
                    .filter_map(Result::ok)
                    .map(|c| c.to_vec())
                    .collect()
            } else {
                vec![bytes]
            };
            for der in ders {
                let crl = OwnedCertRevocationList::from_der(&der)
                    .map_err(|e| TrustConfigError::Invalid(path.clone(), format!("{e:?}")))?;
                let next_update = x509_parser::parse_x509_crl(&der)
                    .ok()
                    .and_then(|(_, c)| c.next_update())
                    .map(|t| t.timestamp())
                    .ok_or_else(|| {
                        TrustConfigError::Invalid(path.clone(), "a CRL without nextUpdate".into())
                    })?;
                trust.crls_next_update = Some(
                    trust
                        .crls_next_update
                        .map_or(next_update, |n| n.min(next_update)),
                );
                trust.crls.push(CertRevocationList::from(crl));
            }
        }
        Ok(trust)
    }

    /// Requires card certificates to carry one of these certificate-policy OIDs (dotted).
    pub fn requiring_policies(mut self, oids: &[String]) -> CardTrust {
        self.required_policies = oids.to_vec();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Whether revocation is checked at all (some CRL is configured).
    pub fn checks_revocation(&self) -> bool {
        !self.crls.is_empty()
    }

    /// The earliest `nextUpdate` among the CRLs, if any.
    pub fn crls_next_update(&self) -> Option<UnixTime> {
        self.crls_next_update
    }

    /// Validates a presented chain (leaf first) at `now`, or finds it verified recently (see
    /// the module documentation).
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<CardCertificate, CardRejection> {
        let key = chain_digest(chain);
        if let Some(card) = self.recently_verified(&key, now) {
            return Ok(card);
        }
        let card = self.verify_now(chain, now)?;
        if let Some(chain_expires) = earliest_expiry(chain) {
            let fresh_until = [
                chain_expires,
                self.intermediates_expire,
                self.crls_next_update,
            ]
            .into_iter()
            .flatten()
            .fold(now + VERIFIED_FOR_SECS, i64::min);
            self.remember(key, &card, now, fresh_until);
        }
        Ok(card)
    }

    fn recently_verified(&self, key: &[u8; 32], now: UnixTime) -> Option<CardCertificate> {
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let entry = verified.get(key)?;
        (entry.verified_at <= now && now < entry.fresh_until).then(|| entry.card.clone())
    }

    fn remember(&self, key: [u8; 32], card: &CardCertificate, now: UnixTime, fresh_until: i64) {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_LIMIT {
            verified.clear();
        }
        verified.insert(
            key,
            VerifiedChain {
                card: card.clone(),
                verified_at: now,
                fresh_until,
            },
        );
    }

    fn verify_now(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<CardCertificate, CardRejection> {
        let leaf = chain.first().ok_or(CardRejection::NoCertificate)?;
        let end_entity = EndEntityCert::try_from(leaf).map_err(|_| CardRejection::Malformed)?;
        let mut intermediates: Vec<CertificateDer<'_>> = chain[1..].to_vec();
        intermediates.extend(self.intermediates.iter().cloned());
        let crl_refs: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        // With CRLs configured: the whole path, unknown status refused, stale lists refused.
        let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
            b.with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Deny)
                .with_expiration_policy(ExpirationPolicy::Enforce)
                .build()
        });
        let time =
            rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64));
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &intermediates,
                time,
                KeyUsage::client_auth(),
                revocation,
                None,
            )
            .map_err(rejection)?;
        if !self.required_policies.is_empty() && !carries_policy(leaf, &self.required_policies) {
            return Err(CardRejection::PolicyMissing);
        }
        read_binding(leaf)
    }
}

/// Whether the certificate's certificatePolicies extension names one of `oids`.
fn carries_policy(der: &CertificateDer<'_>, oids: &[String]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    cert.extensions()
        .iter()
        .any(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::CertificatePolicies(policies) => policies
                .iter()
                .any(|p| oids.iter().any(|o| p.policy_id.to_id_string() == *o)),
            _ => false,
        })
}

#[allow(deprecated)] // older webpki paths still return RequiredEkuNotFound
fn rejection(e: webpki::Error) -> CardRejection {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } => CardRejection::Expired,
        E::CertNotValidYet { .. } => CardRejection::NotYetValid,
        E::CertRevoked => CardRejection::Revoked,
        E::CrlExpired { .. } => CardRejection::RevocationListStale,
        E::UnknownRevocationStatus => CardRejection::RevocationUnknown,
        E::UnknownIssuer | E::CaUsedAsEndEntity => CardRejection::UnknownIssuer,
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
            CardRejection::UnsuitableKeyUsage
        }
        E::BadDer | E::BadDerTime => CardRejection::Malformed,
        other => CardRejection::Invalid(format!("{other:?}")),
    }
}

/// Reads issuer, serial and subject UUID, and checks the key usage allows signatures.
fn read_binding(der: &CertificateDer<'_>) -> Result<CardCertificate, CardRejection> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| CardRejection::Malformed)?;
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.digital_signature() => {
            return Err(CardRejection::UnsuitableKeyUsage)
        }
        Err(_) => return Err(CardRejection::Malformed),
        _ => {}
    }
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("");
    let prefix = cn.split('_').next().unwrap_or("");
    let subject_uuid = crate::model::identity::is_valid_uuid(prefix).then(|| prefix.to_string());
    Ok(CardCertificate {
        issuer: cert.issuer().to_string(),
        serial: cert.serial.to_str_radix(16),
        subject_uuid,
    })
}

/// Reads the binding fields of a certificate without validating it (used when an RA binds a card).
pub fn binding_of(der: &[u8]) -> Result<CardCertificate, CardRejection> {
    read_binding(&CertificateDer::from(der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{Authority, CardSpec};

    const NOW: UnixTime = 1_800_000_000;

    fn trust(
        root: &Authority,
        sub: &Authority,
        revoked: &[&crate::pki::Issued],
    ) -> (CardTrust, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cas = dir.path().join("ca.pem");
        std::fs::write(&cas, format!("{}{}", root.pem(), sub.pem())).unwrap();
        let crl = dir.path().join("crl.pem");
        let crls = format!(
            "{}{}",
            sub.crl(revoked, NOW).unwrap(),
            root.crl(&[], NOW).unwrap()
        );
        std::fs::write(&crl, crls).unwrap();
        (CardTrust::from_files(&[cas], &[crl]).unwrap(), dir)
    }

    /// The same CAs with no CRL at all (revocation not checked).
    fn trust_without_crls(root: &Authority, sub: &Authority) -> (CardTrust, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cas = dir.path().join("ca.pem");
        std::fs::write(&cas, format!("{}{}", root.pem(), sub.pem())).unwrap();
        (CardTrust::from_files(&[cas], &[]).unwrap(), dir)
    }

    #[test]
    fn revocation_fails_closed_once_crls_are_configured() {
        let root = Authority::root("t", "Root", NOW).unwrap();
        let sub = root.intermediate("t", "Auth", NOW).unwrap();
        let good = sub
            .card_cert(&CardSpec::valid("012345678901", "Jane", NOW))
            .unwrap();
        let (trust, _dir) = trust(&root, &sub, &[]);
        assert!(trust.checks_revocation());
        assert_eq!(
            trust.verify(&chain(&good), NOW + 8 * 86400),
            Err(CardRejection::RevocationListStale),
            "a CRL past its nextUpdate vouches for nobody"
        );
        // Only the sub-CA's CRL: nothing says whether the sub-CA itself is revoked.
        let dir = tempfile::tempdir().unwrap();
        let cas = dir.path().join("ca.pem");
        std::fs::write(&cas, format!("{}{}", root.pem(), sub.pem())).unwrap();
        let crl = dir.path().join("crl.pem");
        std::fs::write(&crl, sub.crl(&[], NOW).unwrap()).unwrap();
        let partial = CardTrust::from_files(&[cas], &[crl]).unwrap();
        assert_eq!(
            partial.verify(&chain(&good), NOW),
            Err(CardRejection::RevocationUnknown)
        );
        let (unchecked, _dir) = trust_without_crls(&root, &sub);
        assert!(!unchecked.checks_revocation());
        assert!(unchecked.verify(&chain(&good), NOW + 8 * 86400).is_ok());
    }

    fn chain(c: &crate::pki::Issued) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from(c.der.clone())]
    }

    #[test]
    fn verifies_cards_and_names_each_rejection() {
        let root = Authority::root("t", "Root", NOW).unwrap();
        let sub = root.intermediate("t", "Auth", NOW).unwrap();
        let good = sub
            .card_cert(&CardSpec::valid("012345678901", "Jane", NOW))
            .unwrap();
        let lost = sub
            .card_cert(&CardSpec::valid("012345678902", "Lost", NOW))
            .unwrap();
        let (trust, _dir) = trust(&root, &sub, &[&lost]);
        let card = trust.verify(&chain(&good), NOW).unwrap();
        assert_eq!(card.subject_uuid.as_deref(), Some("012345678901"));
        assert!(card.issuer.contains("CN=Auth"), "{}", card.issuer);
        assert_eq!(
            trust.verify(&chain(&good), NOW + 3 * 365 * 86400),
            Err(CardRejection::Expired)
        );
        assert_eq!(
            trust.verify(&chain(&good), NOW - 86400),
            Err(CardRejection::NotYetValid)
        );
        assert_eq!(
            trust.verify(&chain(&lost), NOW),
            Err(CardRejection::Revoked)
        );
        let stranger = Authority::root("x", "Other", NOW)
            .unwrap()
            .card_cert(&CardSpec::valid("012345678901", "Jane", NOW))
            .unwrap();
        assert_eq!(
            trust.verify(&chain(&stranger), NOW),
            Err(CardRejection::UnknownIssuer)
        );
        let signing = sub
            .card_cert(&CardSpec {
                signing_only: true,
                ..CardSpec::valid("012345678901", "Jane", NOW)
            })
            .unwrap();
        assert_eq!(
            trust.verify(&chain(&signing), NOW),
            Err(CardRejection::UnsuitableKeyUsage)
        );
        assert_eq!(trust.verify(&[], NOW), Err(CardRejection::NoCertificate));
    }

    #[test]
    fn a_remembered_verdict_ends_with_the_certificate() {
        let root = Authority::root("t", "Root", NOW).unwrap();
        let sub = root.intermediate("t", "Auth", NOW).unwrap();
        let spec = CardSpec::valid("012345678901", "Jane", NOW);
        let not_after = spec.not_after;
        let good = sub.card_cert(&spec).unwrap();
        // No CRLs: a week-long CRL would be stale long before the card expires.
        let (trust, _dir) = trust_without_crls(&root, &sub);
        let first = trust.verify(&chain(&good), not_after - 60).unwrap();
        assert_eq!(
            trust.verify(&chain(&good), not_after - 30),
            Ok(first),
            "remembered while fresh"
        );
        assert_eq!(
            trust.verify(&chain(&good), not_after + 1),
            Err(CardRejection::Expired),
            "not past the certificate's notAfter"
        );
        assert_eq!(
            trust.verify(&chain(&good), NOW + 10),
            Ok(trust.verify(&chain(&good), NOW).unwrap())
        );
        assert_eq!(
            trust.verify(&chain(&good), NOW - 86400),
            Err(CardRejection::NotYetValid),
            "not before the time it was verified at"
        );
    }
}

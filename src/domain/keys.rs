//! careid's own signing keys: generation, encryption at rest, the lifecycle rules, the in-memory
//! key ring that signs and verifies, and the published JWKS. Keys live in the database so every
//! process signs with the same keys; each process reloads them every [`RELOAD_INTERVAL_SECS`].
//!
//! A key's life, per algorithm (the times are columns of `signing_keys`):
//!
//! 1. **Published.** A rotated key gets `activate_at` = creation plus
//!    `keys.publish_before_use_secs` plus [`RELOAD_INTERVAL_SECS`]. Every process publishes it in
//!    the JWKS from its next reload, so it is in every JWKS for at least
//!    `publish_before_use_secs` before it signs anything.
//! 2. **Signing.** The signer is the newest key (by `activate_at`, then `generation`) whose
//!    `activate_at` has come and which has no `retire_at`. The key it replaces keeps signing
//!    until then.
//! 3. **Retiring.** Once a successor signs, the replaced key gets `retire_at` = the successor's
//!    `activate_at` + the longest token lifetime + [`RETIRE_MARGIN_SECS`]
//!    ([`due_retirements`]). It no longer signs but stays published and keeps verifying.
//! 4. **Retired.** From `retire_at` it leaves the JWKS and verifies nothing.
//!
//! A key gets `retire_at` only when another key already signs in its place, so every algorithm
//! always has a signer. The first keys on an empty database, and `keys rotate --now` (key
//! compromise), activate at once; `--now` also retires the replaced keys at once.
//!
//! Private keys are stored only sealed with AES-256-GCM under the key-encryption key
//! (`keys.encryption_key`, see [`KeyEncryptionKey`]); only signing keys are ever unsealed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{JwsHeader, JwsSigner, JwsVerifier, ES256, PS256, RS256};
use josekit::jwt::{self, JwtPayload};
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use serde_json::{Map, Value};

use super::client::SigningAlg;
use super::secrets;
use crate::clock::UnixTime;
pub use crate::model::keys::StoredKey;

/// How often every server rereads the keys. A new key's activation waits this long on top of
/// `keys.publish_before_use_secs`, because servers publish it only from their next reload.
pub const RELOAD_INTERVAL_SECS: i64 = 60;

/// Added to the longest token lifetime before a replaced key retires. It covers servers that sign
/// with the replaced key until their next reload ([`RELOAD_INTERVAL_SECS`]), clock differences
/// between hosts, and relying parties' `exp` leeway.
pub const RETIRE_MARGIN_SECS: i64 = 300;

/// Marks a stored private key as sealed (AES-256-GCM); anything else is a plain-text PEM left by
/// an earlier careid.
const SEALED_PREFIX: &str = "a256gcm:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no active signing key for {0}")]
    NoKey(&'static str),
    #[error("JOSE: {0}")]
    Jose(#[from] josekit::JoseError),
    #[error("token header names no known key")]
    UnknownKey,
    #[error("keys.encryption_key is not set: careid keeps its private signing keys encrypted with it. Set it, in the configuration file or as CAREID_KEYS__ENCRYPTION_KEY, to the base64 of 32 random bytes (for example from `openssl rand -base64 32`)")]
    NoEncryptionKey,
    #[error("keys.encryption_key {0}")]
    BadEncryptionKey(&'static str),
    #[error("signing key {0} cannot be decrypted: keys.encryption_key is not the key it was encrypted with, or the stored key is damaged")]
    Unsealable(String),
    #[error("encryption: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("other processes kept adding {0} keys at the same moment; try again")]
    Contended(&'static str),
}

/// When a key made by rotation starts signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// After every server has published it for `keys.publish_before_use_secs` (normal rotation,
    /// scheduled or `careid keys rotate`).
    AfterPublication,
    /// At once, and the keys it replaces retire at once (`careid keys rotate --now`, for a key
    /// compromise). Tokens they signed stop verifying.
    Immediately,
}

/// A key rotation added.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub activate_at: UnixTime,
}

/// The key-encryption key (`keys.encryption_key`): 32 bytes for AES-256-GCM. Its `Debug` does not
/// show it, and careid never logs it.
pub struct KeyEncryptionKey {
    key: [u8; 32],
    /// While re-keying: the key being replaced, tried when `key` does not open a value.
    previous: Option<[u8; 32]>,
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

impl KeyEncryptionKey {
    /// Parses the configured value: standard base64 (padding optional, surrounding whitespace
    /// ignored) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let text = text.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text)
            .map_err(|_| KeyError::BadEncryptionKey("is not base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::BadEncryptionKey("must decode to exactly 32 bytes"))?;
        Ok(KeyEncryptionKey {
            key,
            previous: None,
        })
    }

    /// A new random key (`serve --demo`, tests).
    pub fn generate() -> Result<Self, KeyError> {
        let mut key = [0u8; 32];
        openssl::rand::rand_bytes(&mut key)?;
        Ok(KeyEncryptionKey {
            key,
            previous: None,
        })
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key)
    }

    /// Encrypts `plaintext` with AES-256-GCM under a fresh random nonce. The `kid` is
    /// authenticated too, so a sealed key copied onto another row does not open.
    /// Result: `a256gcm:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        openssl::rand::rand_bytes(&mut nonce)?;
        let mut tag = [0u8; TAG_LEN];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            &aad(kid),
            plaintext,
            &mut tag,
        )?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out.extend_from_slice(&tag);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(out)))
    }

    /// This key, also opening what `previous` sealed (`keys.previous_encryption_key`, while
    /// re-keying).
    pub fn with_previous(mut self, previous: KeyEncryptionKey) -> Self {
        self.previous = Some(previous.key);
        self
    }

    /// Decrypts what [`seal`](Self::seal) made for `kid`, under this key or the previous one. A
    /// wrong key, another row's value or any altered byte fails the GCM tag check.
    pub fn open(&self, kid: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        match open_with(&self.key, kid, sealed) {
            Err(e) => match &self.previous {
                Some(previous) => open_with(previous, kid, sealed),
                None => Err(e),
            },
            opened => opened,
        }
    }

    /// Whether `sealed` is sealed under this key (not only under the previous one).
    pub fn is_current(&self, kid: &str, sealed: &str) -> bool {
        open_with(&self.key, kid, sealed).is_ok()
    }
}

/// Opens `sealed` with one key.
fn open_with(key: &[u8; 32], kid: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
    let unsealable = || KeyError::Unsealable(kid.to_string());
    let raw = sealed
        .strip_prefix(SEALED_PREFIX)
        .and_then(|b| STANDARD.decode(b).ok())
        .filter(|r| r.len() >= NONCE_LEN + TAG_LEN)
        .ok_or_else(unsealable)?;
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    decrypt_aead(
        Cipher::aes_256_gcm(),
        key,
        Some(nonce),
        &aad(kid),
        ciphertext,
        tag,
    )
    .map_err(|_| unsealable())
}

fn aad(kid: &str) -> Vec<u8> {
    format!("careid signing key {kid}").into_bytes()
}

/// Whether a stored private key is sealed (rather than a plain-text PEM from an earlier careid).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// Generates a new key pair for `alg` (RSA 2048 for RS256 and PS256, P-256 for ES256), its
/// private half sealed under `kek`.
pub fn generate(
    alg: SigningAlg,
    generation: i64,
    kek: &KeyEncryptionKey,
    created_at: UnixTime,
    activate_at: UnixTime,
) -> Result<StoredKey, KeyError> {
    let kid = format!(
        "{}-{}",
        alg.as_str().to_lowercase(),
        &secrets::random_token()[..16]
    );
    let (pem, mut jwk) = match alg {
        SigningAlg::RS256 => {
            let kp = RS256.generate_key_pair(2048)?;
            (kp.to_pem_private_key(), kp.to_jwk_public_key())
        }
        SigningAlg::PS256 => {
            let kp = PS256.generate_key_pair(2048)?;
            (kp.to_pem_private_key(), kp.to_jwk_public_key())
        }
        SigningAlg::ES256 => {
            let kp = ES256.generate_key_pair()?;
            (kp.to_pem_private_key(), kp.to_jwk_public_key())
        }
    };
    jwk.set_key_id(&kid);
    jwk.set_key_use("sig");
    jwk.set_algorithm(alg.as_str());
    Ok(StoredKey {
        sealed_private_key: kek.seal(&kid, &pem)?,
        kid,
        alg,
        generation,
        public_jwk: Value::Object(jwk.as_ref().clone()),
        created_at,
        activate_at,
        retire_at: None,
    })
}

/// The key that signs for `alg` at `now`: the newest whose `activate_at` has come and that is not
/// retiring.
pub fn signer_of(keys: &[StoredKey], alg: SigningAlg, now: UnixTime) -> Option<&StoredKey> {
    keys.iter()
        .filter(|k| k.alg == alg && k.activate_at <= now && k.retire_at.is_none())
        .max_by(|a, b| a.rank().cmp(&b.rank()))
}

/// Keys to give a `retire_at` now: each key that has signed (or could have) and has been replaced
/// by the current signer of its algorithm. It retires `keep_after_successor` seconds (the longest
/// token lifetime plus [`RETIRE_MARGIN_SECS`]) after that signer's activation. Keys still waiting
/// to activate are left alone.
pub fn due_retirements(
    keys: &[StoredKey],
    now: UnixTime,
    keep_after_successor: i64,
) -> Vec<(String, UnixTime)> {
    let mut due = Vec::new();
    for alg in SigningAlg::ALL {
        let Some(signer) = signer_of(keys, alg, now) else {
            continue;
        };
        for key in keys.iter().filter(|k| {
            k.alg == alg && k.retire_at.is_none() && k.kid != signer.kid && k.rank() < signer.rank()
        }) {
            due.push((key.kid.clone(), signer.activate_at + keep_after_successor));
        }
    }
    due
}

/// The generation a new key of `alg` takes: one after the newest.
pub fn next_generation(keys: &[StoredKey], alg: SigningAlg) -> i64 {
    keys.iter()
        .filter(|k| k.alg == alg)
        .map(|k| k.generation)
        .max()
        .unwrap_or(0)
        + 1
}

/// Scheduled rotation: whether the newest key of `alg` was created `every_secs` or more ago.
/// (An algorithm with no key at all is not "due": start-up creates its first key.)
pub fn rotation_due(keys: &[StoredKey], alg: SigningAlg, now: UnixTime, every_secs: i64) -> bool {
    keys.iter()
        .filter(|k| k.alg == alg)
        .max_by_key(|k| k.generation)
        .is_some_and(|newest| newest.created_at <= now - every_secs)
}

fn signer(key: &StoredKey, kek: &KeyEncryptionKey) -> Result<Arc<dyn JwsSigner>, KeyError> {
    let pem = kek.open(&key.kid, &key.sealed_private_key)?;
    Ok(match key.alg {
        SigningAlg::RS256 => Arc::new(RS256.signer_from_pem(&pem)?),
        SigningAlg::PS256 => Arc::new(PS256.signer_from_pem(&pem)?),
        SigningAlg::ES256 => Arc::new(ES256.signer_from_pem(&pem)?),
    })
}

fn verifier(key: &StoredKey) -> Result<Arc<dyn JwsVerifier>, KeyError> {
    let jwk = Jwk::from_map(key.public_jwk.as_object().cloned().unwrap_or_default())?;
    Ok(match key.alg {
        SigningAlg::RS256 => Arc::new(RS256.verifier_from_jwk(&jwk)?),
        SigningAlg::PS256 => Arc::new(PS256.verifier_from_jwk(&jwk)?),
        SigningAlg::ES256 => Arc::new(ES256.verifier_from_jwk(&jwk)?),
    })
}

#[derive(Default)]
struct Loaded {
    signers: HashMap<SigningAlg, (String, Arc<dyn JwsSigner>)>,
    verifiers: HashMap<String, Arc<dyn JwsVerifier>>,
    jwks: Value,
}

/// The keys this process signs and verifies with.
#[derive(Default)]
pub struct KeyRing {
    loaded: RwLock<Loaded>,
}

impl KeyRing {
    /// Replaces the ring's contents with `keys` as they stand at `now`: published (and verifying)
    /// are those not yet retired, including keys still waiting to activate; the signer per
    /// algorithm is [`signer_of`]. Only the signers' private keys are unsealed.
    pub fn load(
        &self,
        keys: &[StoredKey],
        kek: &KeyEncryptionKey,
        now: UnixTime,
    ) -> Result<(), KeyError> {
        let mut loaded = Loaded::default();
        let mut published = Vec::new();
        for key in keys.iter().filter(|k| k.is_published(now)) {
            loaded.verifiers.insert(key.kid.clone(), verifier(key)?);
            published.push(key.public_jwk.clone());
        }
        for alg in SigningAlg::ALL {
            if let Some(key) = signer_of(keys, alg, now) {
                loaded
                    .signers
                    .insert(alg, (key.kid.clone(), signer(key, kek)?));
            }
        }
        loaded.jwks = serde_json::json!({ "keys": published });
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    /// Signs `claims` as a JWT with header `typ` and the current key for `alg`.
    pub fn sign(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: Map<String, Value>,
    ) -> Result<String, KeyError> {
        let (kid, signer) = {
            let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
            loaded
                .signers
                .get(&alg)
                .cloned()
                .ok_or(KeyError::NoKey(alg.as_str()))?
        };
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(kid);
        let payload = JwtPayload::from_map(claims)?;
        Ok(jwt::encode_with_signer(&payload, &header, signer.as_ref())?)
    }

    /// Verifies the signature of a token careid issued (any published key) and returns its claims
    /// and `typ`. Expiry and audience are the caller's rules.
    pub fn verify(&self, token: &str) -> Result<(Map<String, Value>, Option<String>), KeyError> {
        let header = jwt::decode_header(token)?;
        let kid = header
            .claim("kid")
            .and_then(Value::as_str)
            .ok_or(KeyError::UnknownKey)?
            .to_string();
        let verifier = {
            let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
            loaded
                .verifiers
                .get(&kid)
                .cloned()
                .ok_or(KeyError::UnknownKey)?
        };
        let (payload, header) = jwt::decode_with_verifier(token, verifier.as_ref())?;
        Ok((
            payload.claims_set().clone(),
            header.token_type().map(String::from),
        ))
    }

    pub fn jwks(&self) -> Value {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .jwks
            .clone()
    }

    pub fn has_signer(&self, alg: SigningAlg) -> bool {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .signers
            .contains_key(&alg)
    }

    /// The `kid` that signs for `alg` now, if any.
    pub fn signing_kid(&self, alg: SigningAlg) -> Option<String> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .signers
            .get(&alg)
            .map(|(kid, _)| kid.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: i64 = 3599 + RETIRE_MARGIN_SECS;

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
    }

    fn key(alg: SigningAlg, generation: i64, created_at: i64, activate_at: i64) -> StoredKey {
        generate(alg, generation, &kek(), created_at, activate_at).unwrap()
    }

    fn kid_of(token: &str) -> String {
        jwt::decode_header(token)
            .unwrap()
            .claim("kid")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    fn published(ring: &KeyRing) -> Vec<String> {
        ring.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    }

    /// What a server does at each reload: record due retirements, then load.
    fn reload(keys: &mut [StoredKey], ring: &KeyRing, now: i64) {
        for (kid, at) in due_retirements(keys, now, KEEP) {
            let k = keys.iter_mut().find(|k| k.kid == kid).unwrap();
            k.retire_at.get_or_insert(at);
        }
        ring.load(keys, &kek(), now).unwrap();
    }

    #[test]
    fn signs_and_verifies_each_algorithm_and_publishes_kid() {
        let keys: Vec<StoredKey> = SigningAlg::ALL
            .iter()
            .map(|a| key(*a, 1, 100, 100))
            .collect();
        let ring = KeyRing::default();
        ring.load(&keys, &kek(), 100).unwrap();
        for alg in SigningAlg::ALL {
            let mut claims = Map::new();
            claims.insert("sub".into(), "000000000001".into());
            let token = ring.sign(alg, "JWT", claims).unwrap();
            let (claims, typ) = ring.verify(&token).unwrap();
            assert_eq!(claims["sub"], "000000000001");
            assert_eq!(typ.as_deref(), Some("JWT"));
        }
        let jwks = ring.jwks();
        for k in jwks["keys"].as_array().unwrap() {
            assert!(
                k["kid"].is_string()
                    && k["use"] == "sig"
                    && k["alg"].is_string()
                    && k.get("d").is_none(),
                "{k}"
            );
        }
    }

    #[test]
    fn a_new_key_is_published_before_it_signs_and_the_old_one_signs_until_then() {
        let old = key(SigningAlg::RS256, 1, 0, 0);
        let new = key(SigningAlg::RS256, 2, 1000, 4660);
        let mut keys = vec![old.clone(), new.clone()];
        let ring = KeyRing::default();

        reload(&mut keys, &ring, 1000);
        assert_eq!(published(&ring), [old.kid.clone(), new.kid.clone()]);
        assert_eq!(ring.signing_kid(SigningAlg::RS256), Some(old.kid.clone()));
        assert!(
            keys.iter().all(|k| k.retire_at.is_none()),
            "nothing retires before the new key signs"
        );

        reload(&mut keys, &ring, 4659);
        assert_eq!(ring.signing_kid(SigningAlg::RS256), Some(old.kid.clone()));
        let by_old = ring.sign(SigningAlg::RS256, "JWT", Map::new()).unwrap();

        reload(&mut keys, &ring, 4660);
        assert_eq!(ring.signing_kid(SigningAlg::RS256), Some(new.kid.clone()));
        assert_eq!(
            keys[0].retire_at,
            Some(4660 + KEEP),
            "retire_at counts from the successor's activation"
        );
        assert_eq!(keys[1].retire_at, None);
        assert!(ring.verify(&by_old).is_ok(), "the old key still verifies");
        assert_eq!(
            kid_of(&ring.sign(SigningAlg::RS256, "JWT", Map::new()).unwrap()),
            new.kid
        );

        reload(&mut keys, &ring, 4660 + KEEP - 1);
        assert!(published(&ring).contains(&old.kid));
        reload(&mut keys, &ring, 4660 + KEEP);
        assert_eq!(published(&ring), std::slice::from_ref(&new.kid));
        assert!(matches!(ring.verify(&by_old), Err(KeyError::UnknownKey)));
    }

    #[test]
    fn there_is_a_signer_at_every_moment_of_two_overlapping_rotations() {
        // Rotations at 1000 and 2000 (the second before the first activates).
        let mut keys = vec![
            key(SigningAlg::ES256, 1, 0, 0),
            key(SigningAlg::ES256, 2, 1000, 4660),
            key(SigningAlg::ES256, 3, 2000, 5660),
        ];
        let ring = KeyRing::default();
        let mut signers = Vec::new();
        for now in (0..20_000).step_by(10) {
            reload(&mut keys, &ring, now);
            let kid = ring
                .signing_kid(SigningAlg::ES256)
                .expect("always a signer");
            if signers.last() != Some(&kid) {
                signers.push(kid);
            }
        }
        let kids: Vec<String> = keys.iter().map(|k| k.kid.clone()).collect();
        assert_eq!(signers, kids, "each key signs in turn, from its activation");
        assert_eq!(keys[0].retire_at, Some(4660 + KEEP));
        assert_eq!(keys[1].retire_at, Some(5660 + KEEP));
        assert_eq!(keys[2].retire_at, None);
        assert_eq!(published(&ring), [keys[2].kid.clone()]);
    }

    #[test]
    fn an_immediate_replacement_signs_at_once_and_the_retired_key_leaves_the_jwks() {
        let mut old = key(SigningAlg::PS256, 1, 0, 0);
        let new = key(SigningAlg::PS256, 2, 500, 500);
        old.retire_at = Some(500);
        let ring = KeyRing::default();
        ring.load(&[old.clone(), new.clone()], &kek(), 500).unwrap();
        assert_eq!(ring.signing_kid(SigningAlg::PS256), Some(new.kid.clone()));
        assert_eq!(published(&ring), [new.kid]);
    }

    #[test]
    fn a_retiring_key_never_signs_even_when_it_is_newest() {
        let mut only = key(SigningAlg::RS256, 1, 0, 0);
        only.retire_at = Some(10_000);
        let ring = KeyRing::default();
        ring.load(std::slice::from_ref(&only), &kek(), 100).unwrap();
        assert!(!ring.has_signer(SigningAlg::RS256));
        assert!(published(&ring).contains(&only.kid));
    }

    #[test]
    fn generations_and_scheduled_rotation() {
        let keys = vec![
            key(SigningAlg::RS256, 1, 0, 0),
            key(SigningAlg::RS256, 2, 1000, 4660),
        ];
        assert_eq!(next_generation(&keys, SigningAlg::RS256), 3);
        assert_eq!(next_generation(&keys, SigningAlg::ES256), 1);
        let every = 90 * 86400;
        assert!(!rotation_due(
            &keys,
            SigningAlg::RS256,
            1000 + every - 1,
            every
        ));
        assert!(rotation_due(&keys, SigningAlg::RS256, 1000 + every, every));
        assert!(!rotation_due(&keys, SigningAlg::ES256, 1000 + every, every));
    }

    #[test]
    fn private_keys_are_sealed_and_open_only_with_the_same_key_and_kid() {
        let k = key(SigningAlg::ES256, 1, 0, 0);
        assert!(is_sealed(&k.sealed_private_key));
        assert!(!k.sealed_private_key.contains("PRIVATE KEY"));
        let pem = kek().open(&k.kid, &k.sealed_private_key).unwrap();
        assert!(String::from_utf8(pem).unwrap().contains("PRIVATE KEY"));

        let other = KeyEncryptionKey::generate().unwrap();
        assert!(matches!(
            other.open(&k.kid, &k.sealed_private_key),
            Err(KeyError::Unsealable(_))
        ));
        assert!(
            kek().open("es256-otherrow", &k.sealed_private_key).is_err(),
            "bound to the kid"
        );
        let mut tampered = k.sealed_private_key.clone().into_bytes();
        let i = tampered.len() - 5;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert!(kek()
            .open(&k.kid, &String::from_utf8(tampered).unwrap())
            .is_err());
        assert!(kek().open(&k.kid, "-----BEGIN PRIVATE KEY-----").is_err());

        let ring = KeyRing::default();
        let err = ring.load(std::slice::from_ref(&k), &other, 0).unwrap_err();
        assert!(err.to_string().contains("keys.encryption_key"), "{err}");
    }

    #[test]
    fn while_re_keying_both_keys_open_and_only_the_new_one_seals() {
        let (old, new) = (
            KeyEncryptionKey::generate().unwrap(),
            KeyEncryptionKey::generate().unwrap(),
        );
        let under_old = old.seal("kid", b"secret").unwrap();
        let both = KeyEncryptionKey::from_base64(&new.to_base64())
            .unwrap()
            .with_previous(KeyEncryptionKey::from_base64(&old.to_base64()).unwrap());
        assert_eq!(both.open("kid", &under_old).unwrap(), b"secret");
        assert!(
            !both.is_current("kid", &under_old),
            "still under the old key"
        );
        let resealed = both.seal("kid", b"secret").unwrap();
        assert!(both.is_current("kid", &resealed));
        assert_eq!(new.open("kid", &resealed).unwrap(), b"secret");
        assert!(
            old.open("kid", &resealed).is_err(),
            "the old key alone no longer opens it"
        );
        assert!(new.open("kid", &under_old).is_err());
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let a = kek().seal("kid", b"secret").unwrap();
        let b = kek().seal("kid", b"secret").unwrap();
        assert_ne!(a, b, "fresh nonce each time");
        assert_eq!(kek().open("kid", &a).unwrap(), b"secret");
    }

    #[test]
    fn the_encryption_key_must_be_32_bytes_of_base64_and_is_never_shown() {
        let k = kek();
        assert_eq!(
            KeyEncryptionKey::from_base64(&format!(" {}\n", k.to_base64()))
                .unwrap()
                .key,
            k.key
        );
        assert!(
            KeyEncryptionKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").is_ok()
        );
        for bad in [
            "",
            "not base64!",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
        ] {
            let err = KeyEncryptionKey::from_base64(bad).unwrap_err().to_string();
            assert!(err.contains("keys.encryption_key"), "{err}");
        }
        assert_eq!(format!("{k:?}"), "KeyEncryptionKey(..)");
    }
}

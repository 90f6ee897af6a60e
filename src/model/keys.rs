//! Signing keys as stored (private key sealed under the key-encryption key).

use serde_json::Value;

use crate::clock::UnixTime;
use crate::model::client::SigningAlg;

/// A key as stored.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    /// 1, 2, 3 … per algorithm. The store keeps one key per (alg, generation), so of several
    /// processes adding the key that follows the same generation, only one succeeds.
    pub generation: i64,
    /// The PKCS#8 PEM private key, sealed by [`KeyEncryptionKey::seal`].
    pub sealed_private_key: String,
    pub public_jwk: Value,
    pub created_at: UnixTime,
    /// Published from creation; signs from here on.
    pub activate_at: UnixTime,
    pub retire_at: Option<UnixTime>,
}

impl StoredKey {
    /// In the JWKS and able to verify at `now`.
    pub fn is_published(&self, now: UnixTime) -> bool {
        self.retire_at.is_none_or(|r| r > now)
    }

    /// Ordering among keys of one algorithm: which is the newer signer.
    pub(crate) fn rank(&self) -> (UnixTime, i64, &str) {
        (self.activate_at, self.generation, &self.kid)
    }
}

//! careid's own signing keys: generation, the in-memory key ring that signs and verifies, and
//! the published JWKS. Keys live in the database so every process signs with the same keys; each
//! process reloads them periodically. Signing uses the newest active key of the wanted algorithm;
//! a rotated key stays published (and verifiable) until `retire_at`, after every token it signed
//! has expired.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{JwsHeader, JwsSigner, JwsVerifier, ES256, PS256, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value};

use super::client::SigningAlg;
use super::secrets;
use crate::clock::UnixTime;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no active signing key for {0}")]
    NoKey(&'static str),
    #[error("JOSE: {0}")]
    Jose(#[from] josekit::JoseError),
    #[error("token header names no known key")]
    UnknownKey,
}

/// A key as stored.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub private_pem: String,
    pub public_jwk: Value,
    pub created_at: UnixTime,
    pub retire_at: Option<UnixTime>,
}

/// Generates a new key pair for `alg` (RSA 2048 for RS256 and PS256, P-256 for ES256).
pub fn generate(alg: SigningAlg, now: UnixTime) -> Result<StoredKey, KeyError> {
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
        kid,
        alg,
        private_pem: String::from_utf8_lossy(&pem).into_owned(),
        public_jwk: Value::Object(jwk.as_ref().clone()),
        created_at: now,
        retire_at: None,
    })
}

fn signer(key: &StoredKey) -> Result<Arc<dyn JwsSigner>, KeyError> {
    Ok(match key.alg {
        SigningAlg::RS256 => Arc::new(RS256.signer_from_pem(&key.private_pem)?),
        SigningAlg::PS256 => Arc::new(PS256.signer_from_pem(&key.private_pem)?),
        SigningAlg::ES256 => Arc::new(ES256.signer_from_pem(&key.private_pem)?),
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
    /// Replaces the ring's contents with `keys`: published are those not yet retired at `now`;
    /// the signer per algorithm is the newest one not scheduled to retire.
    pub fn load(&self, keys: &[StoredKey], now: UnixTime) -> Result<(), KeyError> {
        let mut loaded = Loaded::default();
        let mut published = Vec::new();
        let mut newest: HashMap<SigningAlg, &StoredKey> = HashMap::new();
        for key in keys.iter().filter(|k| k.retire_at.is_none_or(|r| r > now)) {
            loaded.verifiers.insert(key.kid.clone(), verifier(key)?);
            published.push(key.public_jwk.clone());
            if key.retire_at.is_none()
                && newest
                    .get(&key.alg)
                    .is_none_or(|n| n.created_at <= key.created_at)
            {
                newest.insert(key.alg, key);
            }
        }
        for (alg, key) in newest {
            loaded.signers.insert(alg, (key.kid.clone(), signer(key)?));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_each_algorithm_and_publishes_kid() {
        let keys: Vec<StoredKey> = SigningAlg::ALL
            .iter()
            .map(|a| generate(*a, 100).unwrap())
            .collect();
        let ring = KeyRing::default();
        ring.load(&keys, 100).unwrap();
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
    fn retired_keys_stop_signing_then_stop_verifying() {
        let mut old = generate(SigningAlg::RS256, 100).unwrap();
        let new = generate(SigningAlg::RS256, 200).unwrap();
        let ring = KeyRing::default();
        ring.load(std::slice::from_ref(&old), 150).unwrap();
        let token = ring.sign(SigningAlg::RS256, "JWT", Map::new()).unwrap();
        old.retire_at = Some(1000);
        ring.load(&[old.clone(), new.clone()], 500).unwrap();
        assert!(
            ring.verify(&token).is_ok(),
            "old key still published before retire_at"
        );
        let fresh = ring.sign(SigningAlg::RS256, "JWT", Map::new()).unwrap();
        assert!(
            fresh.contains('.')
                && jwt::decode_header(&fresh).unwrap().claim("kid").unwrap() == new.kid.as_str()
        );
        ring.load(&[old, new], 1000).unwrap();
        assert!(matches!(ring.verify(&token), Err(KeyError::UnknownKey)));
    }
}

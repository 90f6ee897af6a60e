//! The provider: the services behind every endpoint, holding what they share (store, clock, keys,
//! configuration, smartcard trust, relying parties' keys). Handlers call one method here and map
//! its result; the rules themselves live in the sibling modules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use josekit::jwk::JwkSet;
use serde_json::{Map, Value};

use super::client::{Client, SigningAlg};
use super::keys::{self, KeyError, KeyRing};
use super::smartcard::CardTrust;
use crate::clock::{Clock, UnixTime};
use crate::config::Config;
use crate::store::{AuditEvent, Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

pub struct Provider {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyRing,
    pub config: Config,
    pub card_trust: CardTrust,
    client_keys: ClientKeyCache,
}

impl Provider {
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: Config, card_trust: CardTrust) -> Provider {
        Provider {
            db,
            clock,
            keys: KeyRing::default(),
            config,
            card_trust,
            client_keys: ClientKeyCache::default(),
        }
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Loads the signing keys, creating one per algorithm on first start.
    pub async fn load_keys(&self) -> Result<(), ServiceError> {
        let now = self.now();
        let mut stored = self.db.signing_keys().await?;
        for alg in SigningAlg::ALL {
            if !stored.iter().any(|k| k.alg == alg && k.retire_at.is_none()) {
                let key = keys::generate(alg, now)?;
                self.db.insert_signing_key(&key).await?;
                tracing::info!(kid = %key.kid, alg = alg.as_str(), "created signing key");
                stored.push(key);
            }
        }
        self.keys.load(&stored, now)?;
        Ok(())
    }

    /// Rereads keys another process may have rotated.
    pub async fn reload_keys(&self) -> Result<(), ServiceError> {
        let stored = self.db.signing_keys().await?;
        self.keys.load(&stored, self.now())?;
        Ok(())
    }

    /// Adds a new key per algorithm; the old ones keep verifying until every token they signed
    /// has expired, then leave the JWKS.
    pub async fn rotate_keys(&self) -> Result<Vec<String>, ServiceError> {
        let now = self.now();
        let longest = self
            .config
            .tokens
            .access_token_ttl_secs
            .max(self.config.tokens.id_token_ttl_secs);
        let mut kids = Vec::new();
        for alg in SigningAlg::ALL {
            let key = keys::generate(alg, now)?;
            self.db.insert_signing_key(&key).await?;
            self.db
                .schedule_key_retirement(alg, &key.kid, now + longest + 60)
                .await?;
            kids.push(key.kid);
        }
        self.reload_keys().await?;
        self.audit(
            "keys.rotated",
            "success",
            None,
            None,
            serde_json::json!({ "new_kids": kids }),
        )
        .await?;
        Ok(kids)
    }

    /// Verifies a token careid issued: signature by a published key (rereading the keys once
    /// when the `kid` is unknown, in case another process rotated them), the expected `typ`
    /// (`JWT` for ID tokens, `at+jwt` for access tokens) and this issuer. Expiry is the caller's
    /// rule (an `id_token_hint` may have expired).
    pub async fn verify_own_token(
        &self,
        token: &str,
        typ: &str,
    ) -> Result<Map<String, Value>, KeyError> {
        let verified = match self.keys.verify(token) {
            Err(KeyError::UnknownKey) => {
                if let Err(e) = self.reload_keys().await {
                    tracing::warn!(error = %e, "reloading signing keys failed");
                }
                self.keys.verify(token)
            }
            other => other,
        };
        let (claims, token_typ) = verified?;
        if token_typ.as_deref() != Some(typ)
            || claims.get("iss").and_then(Value::as_str) != Some(self.config.issuer.as_str())
        {
            return Err(KeyError::UnknownKey);
        }
        Ok(claims)
    }

    pub async fn audit(
        &self,
        kind: &str,
        outcome: &str,
        actor: Option<&str>,
        client_id: Option<&str>,
        detail: Value,
    ) -> Result<(), ServiceError> {
        let event = AuditEvent {
            at: self.now(),
            kind: kind.into(),
            outcome: outcome.into(),
            actor: actor.map(String::from),
            client_id: client_id.map(String::from),
            detail,
        };
        self.db.append_audit(&event).await?;
        Ok(())
    }

    /// An active client, or None.
    pub async fn active_client(&self, client_id: &str) -> Result<Option<Client>, ServiceError> {
        Ok(self.db.client(client_id).await?.filter(|c| c.active))
    }

    /// The keys a `private_key_jwt` client signs with: registered inline, or fetched from its
    /// `jwks_uri` and cached for five minutes, refetched sooner (at most once a minute) when an
    /// assertion names a `kid` the cache lacks.
    pub async fn client_jwks(&self, client: &Client, kid: Option<&str>) -> Option<JwkSet> {
        if let Some(jwks) = &client.metadata.jwks {
            return JwkSet::from_map(jwks.as_object()?.clone()).ok();
        }
        let uri = client.metadata.jwks_uri.as_deref()?;
        self.client_keys.get(uri, kid, self.now()).await
    }
}

/// Relying parties' JWKS fetched from their `jwks_uri`.
#[derive(Default)]
struct ClientKeyCache {
    entries: Mutex<HashMap<String, (JwkSet, UnixTime)>>,
}

impl ClientKeyCache {
    async fn get(&self, uri: &str, kid: Option<&str>, now: UnixTime) -> Option<JwkSet> {
        let cached = self.entries.lock().ok()?.get(uri).cloned();
        if let Some((set, fetched_at)) = &cached {
            // Fresh for five minutes; a missing kid refetches, at most once a minute.
            let has_kid = kid.is_none_or(|k| !set.get(k).is_empty());
            let age = now - fetched_at;
            if (has_kid && age < 300) || age < 60 {
                return Some(set.clone());
            }
        }
        match fetch_jwks(uri).await {
            Ok(set) => {
                if let Ok(mut entries) = self.entries.lock() {
                    entries.insert(uri.to_string(), (set.clone(), now));
                }
                Some(set)
            }
            Err(e) => {
                tracing::warn!(jwks_uri = uri, error = %e, "could not fetch client JWKS");
                cached.map(|(set, _)| set)
            }
        }
    }
}

async fn fetch_jwks(uri: &str) -> Result<JwkSet, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let response = client.get(uri).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    if bytes.len() > 256 * 1024 {
        return Err("JWKS larger than 256 KiB".into());
    }
    JwkSet::from_bytes(&bytes).map_err(|e| e.to_string())
}

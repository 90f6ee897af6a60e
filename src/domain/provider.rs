//! The provider: the services behind every endpoint, holding what they share (store, clock, keys,
//! configuration, smartcard trust, relying parties' keys). Handlers call one method here and map
//! its result; the rules themselves live in the sibling modules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use josekit::jwk::JwkSet;
use serde_json::{Map, Value};

use super::audit_limit::{FailureAudit, SUPPRESSED_KIND};
use super::client::{Client, SigningAlg};
use super::client_auth::JwksCache;
use super::keys::{self, KeyError, KeyRing};
use super::outbound::OutboundPolicy;
use super::smartcard::{CardTrust, TrustCell};
use super::webauthn::policy::AttestationPolicy;
use super::webauthn::relying_party::RelyingParty;
use crate::clock::{Clock, UnixTime};
use crate::config::Config;
use crate::model::audit::AuditKind;
use crate::store::{AuditEvent, Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// An unknown `kid` rereads the signing keys at most this often.
pub const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

pub struct Provider {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyRing,
    pub config: Config,
    /// Smartcard CAs, CRLs and policies; reloaded on SIGHUP or a file change (`http/reload.rs`).
    pub card_trust: TrustCell,
    /// WebAuthn relying party and attestation policy.
    pub relying_party: RelyingParty,
    client_keys: JwksCache,
    /// The cap on audit rows from unauthenticated failures (`limits.failure_audit_per_minute`).
    failure_audit: FailureAudit,
    /// When an unknown `kid` last made this process reread its signing keys.
    unknown_kid_reload: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// Registered clients read recently (`database.client_cache_secs`).
    clients: ClientCache,
    /// Outgoing calls to relying parties (back-channel logout).
    pub(crate) outbound: reqwest::Client,
    /// Where `outbound` may go (`domain/outbound.rs`).
    pub(crate) outbound_policy: OutboundPolicy,
    /// Woken when a logout is queued, so delivery does not wait for the next poll.
    pub logout_wakeup: tokio::sync::Notify,
}

impl Provider {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        config: Config,
        card_trust: CardTrust,
        attestation: AttestationPolicy,
    ) -> Provider {
        let config_timeout = config.backchannel.request_timeout_secs;
        let outbound_policy = OutboundPolicy::new(config.outbound.allowed_private_networks.clone());
        let relying_party = RelyingParty::new(&config, attestation);
        let failure_audit = FailureAudit::new(config.limits.failure_audit_per_minute);
        Provider {
            db,
            clock,
            keys: KeyRing::default(),
            config,
            card_trust: TrustCell::new(card_trust),
            relying_party,
            client_keys: JwksCache::default(),
            failure_audit,
            unknown_kid_reload: tokio::sync::Mutex::new(None),
            clients: ClientCache::default(),
            outbound: outbound_policy
                .clone()
                .client(Duration::from_secs(config_timeout)),
            outbound_policy,
            logout_wakeup: tokio::sync::Notify::new(),
        }
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The key-encryption key from `keys.encryption_key` (and, while re-keying, the one it
    /// replaces from `keys.previous_encryption_key`).
    fn key_encryption_key(&self) -> Result<keys::KeyEncryptionKey, KeyError> {
        let c = &self.config.keys;
        let text = c
            .encryption_key
            .as_deref()
            .ok_or(KeyError::NoEncryptionKey)?;
        let kek = keys::KeyEncryptionKey::from_base64(text)?;
        Ok(match c.previous_encryption_key.as_deref() {
            Some(previous) => kek.with_previous(keys::KeyEncryptionKey::from_base64(previous)?),
            None => kek,
        })
    }

    /// Seals every stored private key under `keys.encryption_key` (`careid keys reseal`, the
    /// last step of re-keying): keys still sealed under `keys.previous_encryption_key` (or left
    /// in plain text by an earlier careid) are opened and sealed again. Returns how many were
    /// resealed and how many already were under the current key. Each row is replaced only if
    /// it still holds what was read, so running it twice, or beside a rotation, is harmless.
    pub async fn reseal_keys(&self) -> Result<(usize, usize), ServiceError> {
        let kek = self.key_encryption_key()?;
        let (mut resealed, mut current) = (0, 0);
        for key in self.db.signing_keys().await? {
            let stored = &key.sealed_private_key;
            if keys::is_sealed(stored) && kek.is_current(&key.kid, stored) {
                current += 1;
                continue;
            }
            let plain = if keys::is_sealed(stored) {
                kek.open(&key.kid, stored)?
            } else {
                stored.as_bytes().to_vec()
            };
            let sealed = kek.seal(&key.kid, &plain)?;
            if self
                .db
                .replace_sealed_private_key(&key.kid, stored, &sealed)
                .await?
            {
                resealed += 1;
            }
        }
        Ok((resealed, current))
    }

    /// How long a replaced key stays published after its successor starts signing: the longest
    /// lifetime of a token careid signs, plus [`keys::RETIRE_MARGIN_SECS`].
    fn keep_after_successor(&self) -> i64 {
        let t = &self.config.tokens;
        t.access_token_ttl_secs
            .max(t.id_token_ttl_secs)
            .max(t.client_credentials_ttl_secs)
            + keys::RETIRE_MARGIN_SECS
    }

    /// When a key added now by normal rotation starts signing: after every server has published
    /// it (from its next reload) for `keys.publish_before_use_secs`.
    fn activation_after_publication(&self, now: UnixTime) -> UnixTime {
        now + self.config.keys.publish_before_use_secs + keys::RELOAD_INTERVAL_SECS
    }

    /// Prepares the signing keys at start (server and CLI) and loads them. Fails without a
    /// usable `keys.encryption_key`. Plain-text private keys left by an earlier careid are sealed
    /// in place. An algorithm with no key that is not retiring (an empty database) gets one that
    /// signs at once: nothing could sign otherwise.
    pub async fn load_keys(&self) -> Result<(), ServiceError> {
        let kek = self.key_encryption_key()?;
        let now = self.now();
        let stored = self.db.signing_keys().await?;
        for key in stored
            .iter()
            .filter(|k| !keys::is_sealed(&k.sealed_private_key))
        {
            let sealed = kek.seal(&key.kid, key.sealed_private_key.as_bytes())?;
            if self
                .db
                .replace_sealed_private_key(&key.kid, &key.sealed_private_key, &sealed)
                .await?
            {
                tracing::info!(kid = %key.kid, "encrypted a plain-text signing key at rest");
            }
        }
        for alg in SigningAlg::ALL {
            if !stored.iter().any(|k| k.alg == alg && k.retire_at.is_none()) {
                let generation = keys::next_generation(&stored, alg);
                let key = keys::generate(alg, generation, &kek, now, now)?;
                if self.db.insert_signing_key(&key).await? {
                    tracing::info!(kid = %key.kid, alg = alg.as_str(), "created signing key");
                }
            }
        }
        self.reload_keys().await
    }

    /// Rereads the keys (another process may have added some), gives a `retire_at` to keys
    /// whose successor now signs (`keys::due_retirements`), and loads the ring. Every server
    /// does this every [`keys::RELOAD_INTERVAL_SECS`].
    pub async fn reload_keys(&self) -> Result<(), ServiceError> {
        let kek = self.key_encryption_key()?;
        let now = self.now();
        let mut stored = self.db.signing_keys().await?;
        let due = keys::due_retirements(&stored, now, self.keep_after_successor());
        if !due.is_empty() {
            for (kid, retire_at) in &due {
                if self.db.schedule_key_retirement(kid, *retire_at).await? {
                    tracing::info!(kid = %kid, retire_at, "signing key replaced; published until retire_at");
                }
            }
            stored = self.db.signing_keys().await?;
        }
        self.keys.load(&stored, &kek, now)?;
        Ok(())
    }

    /// Adds a new key per algorithm (`careid keys rotate`). With
    /// [`keys::Activation::AfterPublication`] it is published at once and signs from
    /// [`activation_after_publication`](Self::activation_after_publication); the key it replaces
    /// signs until then and retires once every token it signed has expired. With
    /// [`keys::Activation::Immediately`] (key compromise) it signs at once and every other key of
    /// its algorithm retires at once, so tokens they signed stop verifying.
    pub async fn rotate_keys(
        &self,
        activation: keys::Activation,
    ) -> Result<Vec<keys::NewKey>, ServiceError> {
        let kek = self.key_encryption_key()?;
        let now = self.now();
        let activate_at = match activation {
            keys::Activation::AfterPublication => self.activation_after_publication(now),
            keys::Activation::Immediately => now,
        };
        let mut added = Vec::new();
        for alg in SigningAlg::ALL {
            let mut key = keys::generate(alg, 0, &kek, now, activate_at)?;
            // Another process may take the next generation first: then follow it.
            let mut inserted = false;
            for _ in 0..3 {
                key.generation = keys::next_generation(&self.db.signing_keys().await?, alg);
                if self.db.insert_signing_key(&key).await? {
                    inserted = true;
                    break;
                }
            }
            if !inserted {
                return Err(KeyError::Contended(alg.as_str()).into());
            }
            if activation == keys::Activation::Immediately {
                let retired = self
                    .db
                    .retire_other_signing_keys(alg, &key.kid, now)
                    .await?;
                tracing::warn!(kid = %key.kid, alg = alg.as_str(), retired, "signing key replaced at once; tokens signed by the retired keys no longer verify");
            }
            added.push(keys::NewKey {
                kid: key.kid,
                alg,
                activate_at,
            });
        }
        self.reload_keys().await?;
        self.audit_rotation(&added, activation, "manual").await?;
        Ok(added)
    }

    /// Scheduled rotation (`keys.rotate_every_days`, checked by every server at each reload):
    /// adds a key, published before use like `keys rotate`, for each algorithm whose newest key
    /// was created that long ago. When several processes check at once, each tries the
    /// generation after the newest; the store accepts one key per generation, so exactly one
    /// process adds it.
    pub async fn rotate_keys_if_due(&self) -> Result<Vec<keys::NewKey>, ServiceError> {
        let days = self.config.keys.rotate_every_days;
        if days == 0 {
            return Ok(Vec::new());
        }
        let now = self.now();
        let stored = self.db.signing_keys().await?;
        let due: Vec<SigningAlg> = SigningAlg::ALL
            .into_iter()
            .filter(|alg| keys::rotation_due(&stored, *alg, now, i64::from(days) * 86400))
            .collect();
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let kek = self.key_encryption_key()?;
        let activate_at = self.activation_after_publication(now);
        let mut added = Vec::new();
        for alg in due {
            let generation = keys::next_generation(&stored, alg);
            let key = keys::generate(alg, generation, &kek, now, activate_at)?;
            if self.db.insert_signing_key(&key).await? {
                tracing::info!(kid = %key.kid, alg = alg.as_str(), activate_at, "scheduled rotation: new signing key published");
                added.push(keys::NewKey {
                    kid: key.kid,
                    alg,
                    activate_at,
                });
            }
        }
        if !added.is_empty() {
            self.reload_keys().await?;
            self.audit_rotation(&added, keys::Activation::AfterPublication, "scheduled")
                .await?;
        }
        Ok(added)
    }

    async fn audit_rotation(
        &self,
        added: &[keys::NewKey],
        activation: keys::Activation,
        trigger: &str,
    ) -> Result<(), ServiceError> {
        let kids: Vec<&str> = added.iter().map(|k| k.kid.as_str()).collect();
        self.audit(
            AuditKind::KeysRotated,
            "success",
            None,
            None,
            serde_json::json!({
                "new_kids": kids,
                "activate_at": added.first().map(|k| k.activate_at),
                "immediate": activation == keys::Activation::Immediately,
                "trigger": trigger,
            }),
        )
        .await
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
                self.reload_keys_for_unknown_kid().await;
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

    /// Rereads the keys because a token named an unknown `kid`: at most once per
    /// [`UNKNOWN_KID_RELOAD_INTERVAL`], one reload at a time (concurrent callers wait for it), so
    /// tokens with made-up `kid`s cannot make every request read and decrypt every key.
    async fn reload_keys_for_unknown_kid(&self) {
        let mut last = self.unknown_kid_reload.lock().await;
        if last.is_some_and(|t| t.elapsed() < UNKNOWN_KID_RELOAD_INTERVAL) {
            metrics::counter!("careid_unknown_kid_reloads_skipped_total").increment(1);
            return;
        }
        *last = Some(tokio::time::Instant::now());
        if let Err(e) = self.reload_keys().await {
            tracing::warn!(error = %e, "reloading signing keys failed");
        }
    }

    /// Writes one `audit.failures_suppressed` event per source and kind whose failures went
    /// over `limits.failure_audit_per_minute` in a minute that has ended (every one with `all`).
    /// Returns how many were written.
    pub async fn flush_suppressed_audit(&self, all: bool) -> Result<usize, ServiceError> {
        let finished = self.failure_audit.take_finished(self.now(), all);
        for s in &finished {
            let event = self.audit_event(
                SUPPRESSED_KIND,
                "suppressed",
                None,
                None,
                serde_json::json!({
                    "kind": s.kind,
                    "outcome": s.outcome,
                    "source": s.source,
                    "count": s.count,
                    "from": s.from,
                    "to": s.to,
                }),
            );
            self.db.append_audit(&event).await?;
        }
        Ok(finished.len())
    }

    /// Appends an audit event now. Unauthenticated failures beyond
    /// `limits.failure_audit_per_minute` per source are counted instead (see
    /// [`super::audit_limit`]).
    pub async fn audit(
        &self,
        kind: AuditKind,
        outcome: &str,
        actor: Option<&str>,
        client_id: Option<&str>,
        detail: Value,
    ) -> Result<(), ServiceError> {
        if !self.failure_audit.admit(kind.as_str(), outcome, self.now()) {
            return Ok(());
        }
        let event = self.audit_event(kind, outcome, actor, client_id, detail);
        self.db.append_audit(&event).await?;
        Ok(())
    }

    /// An audit event happening now, to commit with other writes in a [`crate::store::WriteSet`].
    /// Inside a request, the detail records the client address and browser
    /// ([`super::request_origin`]).
    pub fn audit_event(
        &self,
        kind: AuditKind,
        outcome: &str,
        actor: Option<&str>,
        client_id: Option<&str>,
        detail: Value,
    ) -> AuditEvent {
        let mut detail = detail;
        super::request_origin::annotate(&mut detail);
        AuditEvent {
            at: self.now(),
            kind: kind.as_str().into(),
            outcome: outcome.into(),
            actor: actor.map(String::from),
            client_id: client_id.map(String::from),
            detail,
        }
    }

    /// An active client, or None. A registration read in the last `database.client_cache_secs`
    /// is reused: every login and token request needs its client, and the registration changes
    /// rarely (a client disabled by another process stops being served within that window).
    /// Unknown client ids are not remembered, so a client registered a moment ago works at once.
    pub async fn active_client(&self, client_id: &str) -> Result<Option<Client>, ServiceError> {
        let now = self.now();
        let ttl = self.config.database.client_cache_secs;
        if let Some(client) = self.clients.fresh(client_id, now, ttl) {
            return Ok(Some(client).filter(|c| c.active));
        }
        let client = self.db.client(client_id).await?;
        if let Some(c) = &client {
            self.clients.remember(c, now, ttl);
        }
        Ok(client.filter(|c| c.active))
    }

    /// Drops this process's cached copy of a client (after an update, promotion, rotation or
    /// deletion here; other processes see the change within `database.client_cache_secs`).
    pub fn forget_client(&self, client_id: &str) {
        self.clients
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(client_id);
    }

    /// The keys a `private_key_jwt` client signs with: registered inline, or fetched from its
    /// `jwks_uri` and cached ([`JwksCache`]: five minutes, a missing `kid` refetches at most once
    /// a minute, failures back off, one fetch per URI at a time, bodies capped at 64 KiB).
    pub async fn client_jwks(&self, client: &Client, kid: Option<&str>) -> Option<JwkSet> {
        if let Some(jwks) = &client.metadata.jwks {
            return JwkSet::from_map(jwks.as_object()?.clone()).ok();
        }
        let uri = client.metadata.jwks_uri.as_deref()?;
        if let Err(refused) = self.outbound_policy.check_uri(uri) {
            tracing::warn!(client_id = %client.metadata.client_id, %refused, "jwks_uri not fetched");
            return None;
        }
        self.client_keys
            .get(&self.outbound, uri, kid, self.now())
            .await
    }
}

/// Client registrations by id, with the time each was read.
#[derive(Default)]
struct ClientCache {
    entries: Mutex<HashMap<String, (Client, UnixTime)>>,
}

/// Beyond this many cached clients the cache starts again empty (a bound on memory, far above
/// any real number of relying parties).
const CLIENT_CACHE_LIMIT: usize = 10_000;

impl ClientCache {
    fn fresh(&self, client_id: &str, now: UnixTime, ttl: i64) -> Option<Client> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (client, read_at) = entries.get(client_id)?;
        (now >= *read_at && now - read_at < ttl).then(|| client.clone())
    }

    fn remember(&self, client: &Client, now: UnixTime, ttl: i64) {
        if ttl <= 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CLIENT_CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(client.metadata.client_id.clone(), (client.clone(), now));
    }
}

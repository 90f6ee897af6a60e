//! OpenID Connect Back-Channel Logout 1.0: when a session ends, every client that was issued
//! tokens in it and registered a `backchannel_logout_uri` is sent a signed logout token.
//! Deliveries go through the database outbox, so a restart or a slow relying party loses none,
//! and any process may deliver while only one holds a given delivery. Each attempt carries a
//! freshly signed token (relying parties refuse old ones); which answers are final follows
//! `../shared/reference/cis2.md` §10.1: 2xx delivered, 400/501 and other 4xx final, timeouts and
//! 5xx retried with backoff until `give_up_after_secs`.

use serde_json::{json, Map, Value};

use super::client::SigningAlg;
use super::provider::{Provider, ServiceError};
use crate::clock::UnixTime;
use crate::model::audit::AuditKind;
use crate::store::{LogoutDelivery, Purged};

pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid after it is signed.
const LOGOUT_TOKEN_TTL: i64 = 300;

/// What one delivery attempt ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// The relying party refused the token for good (400, 501, other 4xx).
    Final(String),
    /// Worth another try (timeout, connection error, 5xx).
    Retry(String),
}

/// Classifies an HTTP status (None: no answer at all).
pub fn classify(status: Option<u16>, error: &str) -> Attempt {
    match status {
        Some(s) if (200..300).contains(&s) => Attempt::Delivered,
        Some(s) if (500..600).contains(&s) && s != 501 => Attempt::Retry(format!("status {s}")),
        Some(s) => Attempt::Final(format!("status {s}")),
        None => Attempt::Retry(error.to_string()),
    }
}

/// An error with its causes (the resolver's refusal sits under reqwest's "error sending
/// request"), without the URL.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text.replace(&e.url().map(|u| u.to_string()).unwrap_or_default(), "")
}

/// Seconds to wait before attempt `attempts + 1`: 2, 4, 8, 16, 32, then every 60.
pub fn backoff(attempts: i64) -> i64 {
    (1i64 << attempts.clamp(1, 6)).min(60)
}

/// The logout token's claims (`typ` `logout+jwt`): no `nonce`, `aud` a plain string.
pub fn logout_claims(issuer: &str, d: &LogoutDelivery, now: UnixTime) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("iss".into(), issuer.into());
    c.insert("aud".into(), d.client_id.clone().into());
    c.insert("sub".into(), d.user_uuid.clone().into());
    c.insert("sid".into(), d.sid.clone().into());
    c.insert("iat".into(), now.into());
    c.insert("exp".into(), (now + LOGOUT_TOKEN_TTL).into());
    c.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
    c.insert("events".into(), json!({ LOGOUT_EVENT: {} }));
    c
}

impl Provider {
    /// Queues a logout for every client holding tokens in the session that has a back-channel URI.
    pub(crate) async fn queue_backchannel_logouts(
        &self,
        sid: &str,
        user_uuid: &str,
    ) -> Result<usize, ServiceError> {
        let now = self.now();
        let mut queued = 0;
        for client_id in self.db.clients_of_session(sid).await? {
            let Some(client) = self.db.client(&client_id).await? else {
                continue;
            };
            let Some(uri) = client.metadata.backchannel_logout_uri.clone() else {
                continue;
            };
            let delivery = LogoutDelivery {
                id: uuid::Uuid::new_v4().to_string(),
                client_id,
                sid: sid.to_string(),
                user_uuid: user_uuid.to_string(),
                uri,
                created_at: now,
                attempts: 0,
                delivered_at: None,
                failed_at: None,
                last_error: None,
            };
            self.db.enqueue_logout(&delivery, now).await?;
            queued += 1;
        }
        if queued > 0 {
            self.logout_wakeup.notify_waiters();
        }
        Ok(queued)
    }

    /// Delivers every due logout this process can claim, as `owner`, concurrently: at most
    /// `backchannel.max_in_flight` at once and `backchannel.per_client_in_flight` to any one
    /// relying party, so one slow relying party delays only its own logouts. Returns how many it
    /// tried. A failure to record one delivery is logged; its lease runs out and it is retried.
    /// Hands back the deliveries `owner` claimed and did not finish (the process is stopping).
    pub async fn release_logout_claims(&self, owner: &str) -> Result<u64, ServiceError> {
        Ok(self.db.release_logout_claims(owner).await?)
    }

    pub async fn deliver_due_logouts(&self, owner: &str) -> Result<usize, ServiceError> {
        use futures::stream::{FuturesUnordered, StreamExt};
        let c = &self.config.backchannel;
        let lease = c.request_timeout_secs as i64 + 20;
        let mut in_flight = FuturesUnordered::new();
        let mut per_client: std::collections::HashMap<String, usize> = Default::default();
        let (mut tried, mut drained) = (0, false);
        loop {
            while !drained && in_flight.len() < c.max_in_flight {
                let busy: Vec<String> = per_client
                    .iter()
                    .filter(|(_, n)| **n >= c.per_client_in_flight)
                    .map(|(client, _)| client.clone())
                    .collect();
                match self
                    .db
                    .claim_logout(owner, self.now(), lease, &busy)
                    .await?
                {
                    Some(d) => {
                        *per_client.entry(d.client_id.clone()).or_default() += 1;
                        tried += 1;
                        in_flight.push(async move {
                            let outcome = self.deliver_logout(&d, owner).await;
                            (d.client_id, outcome)
                        });
                    }
                    None => drained = true,
                }
            }
            if in_flight.is_empty() {
                return Ok(tried);
            }
            // Wait for a delivery to end, or for new logouts (queued here or by another process).
            let poll = std::time::Duration::from_millis(c.poll_interval_ms);
            tokio::select! {
                Some((client, outcome)) = in_flight.next() => {
                    if let Err(e) = outcome {
                        tracing::warn!(error = %e, client_id = %client, "recording a back-channel logout failed");
                    }
                    if let Some(n) = per_client.get_mut(&client) {
                        *n -= 1;
                    }
                }
                _ = self.logout_wakeup.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            // A slot is free, or there is new work: claim again.
            drained = false;
        }
    }

    async fn deliver_logout(&self, d: &LogoutDelivery, owner: &str) -> Result<(), ServiceError> {
        let now = self.now();
        // Always RS256, whatever the client's ID-token algorithm: CIS2 relying parties accept
        // only RS256 logout tokens (cis2.md §4, §10.1).
        let token = self.keys.sign(
            SigningAlg::RS256,
            "logout+jwt",
            logout_claims(&self.config.issuer, d, now),
        )?;
        let attempt = match self.outbound_policy.check_uri(&d.uri) {
            Err(refused) => Attempt::Final(refused),
            Ok(()) => match self
                .outbound
                .post(&d.uri)
                .form(&[("logout_token", token.as_str())])
                .send()
                .await
            {
                Ok(response) => classify(Some(response.status().as_u16()), ""),
                Err(e) => classify(None, &format!("no answer: {}", error_chain(&e))),
            },
        };
        let detail = json!({ "sid": d.sid, "attempt": d.attempts, "uri": d.uri });
        match attempt {
            Attempt::Delivered => {
                self.db.logout_delivered(&d.id, owner, now).await?;
                metrics::counter!("careid_backchannel_logouts_total", "outcome" => "delivered")
                    .increment(1);
                self.audit(
                    AuditKind::LogoutBackchannel,
                    "delivered",
                    Some(&d.user_uuid),
                    Some(&d.client_id),
                    detail,
                )
                .await?;
            }
            Attempt::Retry(e)
                if now - d.created_at < self.config.backchannel.give_up_after_secs =>
            {
                tracing::info!(client_id = %d.client_id, attempt = d.attempts, error = %e, "back-channel logout will be retried");
                self.db
                    .logout_retry_at(&d.id, owner, now + backoff(d.attempts), &e)
                    .await?;
            }
            Attempt::Retry(e) | Attempt::Final(e) => {
                tracing::warn!(client_id = %d.client_id, attempt = d.attempts, error = %e, "back-channel logout failed");
                self.db.logout_failed(&d.id, owner, now, &e).await?;
                metrics::counter!("careid_backchannel_logouts_total", "outcome" => "failed")
                    .increment(1);
                self.audit(
                    AuditKind::LogoutBackchannel,
                    "failed",
                    Some(&d.user_uuid),
                    Some(&d.client_id),
                    json!({ "sid": d.sid, "attempt": d.attempts, "error": e }),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Purges expired rows if this process holds the housekeeping lease for this round.
    pub async fn housekeep(&self, owner: &str) -> Result<Option<Purged>, ServiceError> {
        let now = self.now();
        let interval = self.config.housekeeping.interval_secs as i64;
        if !self
            .db
            .take_lease("housekeeping", owner, now, now + interval.max(1) - 1)
            .await?
        {
            return Ok(None);
        }
        let purged = self
            .db
            .purge_expired(now, self.config.housekeeping.keep_expired_secs)
            .await?;
        tracing::debug!(?purged, "housekeeping");
        Ok(Some(purged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_cis2_relying_parties_expect() {
        assert_eq!(classify(Some(200), ""), Attempt::Delivered);
        assert_eq!(classify(Some(204), ""), Attempt::Delivered);
        assert!(matches!(classify(Some(400), ""), Attempt::Final(_)));
        assert!(matches!(classify(Some(501), ""), Attempt::Final(_)));
        assert!(matches!(classify(Some(404), ""), Attempt::Final(_)));
        assert!(matches!(classify(Some(503), ""), Attempt::Retry(_)));
        assert!(matches!(classify(None, "timeout"), Attempt::Retry(_)));
    }

    #[test]
    fn backoff_grows_to_a_minute() {
        assert_eq!(
            (1..=8).map(backoff).collect::<Vec<_>>(),
            vec![2, 4, 8, 16, 32, 60, 60, 60]
        );
    }

    #[test]
    fn logout_token_has_the_claims_relying_parties_require() {
        let d = LogoutDelivery {
            id: "1".into(),
            client_id: "123456789012.apps.national".into(),
            sid: "s-1".into(),
            user_uuid: "012345678901".into(),
            uri: "https://rp/bcl".into(),
            created_at: 0,
            attempts: 1,
            delivered_at: None,
            failed_at: None,
            last_error: None,
        };
        let c = logout_claims("https://idp:443/realm", &d, 1000);
        assert_eq!(c["aud"], "123456789012.apps.national");
        assert_eq!(
            (c["iat"].as_i64(), c["exp"].as_i64()),
            (Some(1000), Some(1300))
        );
        assert!(c["events"][LOGOUT_EVENT].is_object());
        assert!(!c.contains_key("nonce"));
        assert!(c["jti"].is_string() && c["sid"] == "s-1" && c["sub"] == "012345678901");
    }
}

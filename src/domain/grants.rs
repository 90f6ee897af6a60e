//! The refresh-token and client-credentials grants.
//!
//! Refresh tokens are opaque, stored hashed, and rotated on every use; presenting a rotated
//! token again revokes its whole family and the access tokens issued with it. A refreshed ID
//! token repeats the original authentication's `acr`, `amr`, `auth_time` and assurance level:
//! refresh never raises or drops them. A family ends with its sign-in session's absolute
//! lifetime unless `offline_access` was granted.

use serde_json::json;

use super::claims::CodeGrant;
use super::client::{is_user_scope, Client, SigningAlg};
use super::provider::{Provider, ServiceError};
use super::secrets;
use super::token::Family;
use super::token::{Claim, TokenError, TokenResponse};
use crate::clock::UnixTime;
use crate::model::audit::AuditKind;
use crate::model::identity::UserStatus;
use crate::store::{AccessTokenRecord, RefreshRecord, WriteSet};

impl Provider {
    /// A new family for a code grant: offline when `offline_access` was granted, otherwise
    /// bound to the session's absolute expiry. A client's own limits shorten either.
    pub(crate) fn new_refresh_family(
        &self,
        client: &Client,
        grant: &CodeGrant,
        session_expiry: UnixTime,
    ) -> Family {
        let now = self.now();
        let offline = grant.has_scope("offline_access");
        let mut expires_at = if offline {
            now + self.config.tokens.refresh_offline_ttl_secs
        } else {
            session_expiry
        };
        if let Some(limit) = client.metadata.refresh_token_absolute_ttl {
            expires_at = expires_at.min(now + limit);
        }
        Family {
            id: uuid::Uuid::new_v4().to_string(),
            offline,
            expires_at,
        }
    }

    /// Stores the next refresh token of a family and returns it (shown once).
    pub(crate) fn store_refresh_token(
        &self,
        client: &Client,
        grant: &CodeGrant,
        family: &Family,
        writes: &mut WriteSet,
    ) -> Result<String, ServiceError> {
        let now = self.now();
        let idle = client
            .metadata
            .refresh_token_idle_ttl
            .unwrap_or(self.config.tokens.refresh_idle_ttl_secs);
        let token = secrets::random_token();
        let record = RefreshRecord {
            family_id: family.id.clone(),
            client_id: grant.client_id.clone(),
            user_uuid: grant.user_uuid.clone(),
            sid: Some(grant.sid.clone()),
            grant: CodeGrant {
                nonce: None,
                code_challenge: None,
                ..grant.clone()
            },
            offline: family.offline,
            issued_at: now,
            expires_at: (now + idle).min(family.expires_at),
            family_expires_at: family.expires_at,
            used_at: None,
            revoked_at: None,
        };
        writes.insert_refresh_token(&secrets::digest(&token), &record)?;
        Ok(token)
    }

    /// Revokes a refresh-token family and every access token issued with it.
    pub(crate) async fn revoke_family(&self, family_id: &str) -> Result<(), ServiceError> {
        let now = self.now();
        self.db.revoke_refresh_family(family_id, now).await?;
        self.db
            .revoke_access_tokens_of_family(family_id, now)
            .await?;
        Ok(())
    }

    pub(crate) async fn refresh_grant(
        &self,
        client: &Client,
        token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let now = self.now();
        let hash = secrets::digest(token);
        let invalid = |m: &str| TokenError::InvalidGrant(m.into());
        let record = self
            .db
            .refresh_token(&hash)
            .await?
            .ok_or_else(|| invalid("unknown refresh token"))?;
        if record.client_id != client.metadata.client_id {
            return Err(invalid("the refresh token was issued to another client"));
        }
        if record.revoked_at.is_some() {
            return Err(invalid("the refresh token has been revoked"));
        }
        if record.used_at.is_some() {
            return self
                .refuse_refresh_reuse(client, &record.family_id, &record.user_uuid)
                .await;
        }
        if now >= record.expires_at || now >= record.family_expires_at {
            return Err(invalid("the refresh token has expired"));
        }
        let user = self
            .db
            .user(&record.user_uuid)
            .await?
            .filter(|u| u.status == UserStatus::Active)
            .ok_or_else(|| invalid("the user is not active"))?;
        let mut grant = record.grant.clone();
        if let Some(requested) = scope {
            let asked: Vec<String> = requested
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if let Some(extra) = asked.iter().find(|s| !grant.has_scope(s)) {
                return Err(TokenError::InvalidScope(format!(
                    "{extra} was not granted originally"
                )));
            }
            grant.scopes = asked;
        }
        let family = Family {
            id: record.family_id.clone(),
            offline: record.offline,
            expires_at: record.family_expires_at,
        };
        self.issue_user_tokens(
            client,
            &grant,
            &user,
            Some(Claim::RefreshToken(hash)),
            Some(family),
            "refresh_token",
        )
        .await
    }

    /// A refresh token presented after it was rotated: its whole family is revoked, refresh and
    /// access tokens (RFC 9700 §4.14.2), and the presentation refused.
    pub(crate) async fn refuse_refresh_reuse(
        &self,
        client: &Client,
        family_id: &str,
        user_uuid: &str,
    ) -> Result<TokenResponse, TokenError> {
        self.revoke_family(family_id).await?;
        self.audit(
            AuditKind::TokenRefreshReuse,
            "refused",
            Some(user_uuid),
            Some(&client.metadata.client_id),
            json!({ "family": family_id }),
        )
        .await?;
        Err(TokenError::InvalidGrant(
            "the refresh token was already used; its family has been revoked".into(),
        ))
    }

    /// Tokens for a back-end client acting for itself: its own scopes, no user, no ID token.
    pub(crate) async fn client_credentials(
        &self,
        client: &Client,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let m = &client.metadata;
        if !m.allows_grant("client_credentials") || m.is_public() {
            return Err(TokenError::UnauthorizedClient(
                "the client may not use client_credentials".into(),
            ));
        }
        let own: Vec<&str> = m
            .scope
            .split(' ')
            .filter(|s| !s.is_empty() && !is_user_scope(s))
            .collect();
        let scopes: Vec<&str> = match scope {
            None => own.clone(),
            Some(requested) => {
                let asked: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
                if let Some(bad) = asked.iter().find(|s| !own.contains(s)) {
                    return Err(TokenError::InvalidScope(format!(
                        "{bad} is not a scope of this client"
                    )));
                }
                asked
            }
        };
        let now = self.now();
        let ttl = self.config.tokens.client_credentials_ttl_secs;
        let jti = uuid::Uuid::new_v4().to_string();
        let mut c = serde_json::Map::new();
        for (k, v) in [
            ("iss", json!(self.config.issuer)),
            ("sub", json!(m.client_id)),
            ("aud", json!(m.client_id)),
            ("client_id", json!(m.client_id)),
            ("iat", json!(now)),
            ("exp", json!(now + ttl)),
            ("jti", json!(jti)),
            ("scope", json!(scopes.join(" "))),
        ] {
            c.insert(k.into(), v);
        }
        let access_token = self
            .keys
            .sign(SigningAlg::RS256, "at+jwt", c)
            .map_err(ServiceError::from)?;
        let mut writes = WriteSet::new();
        writes.insert_access_token(&AccessTokenRecord {
            jti: jti.clone(),
            client_id: m.client_id.clone(),
            user_uuid: None,
            sid: None,
            code_hash: None,
            scope: scopes.join(" "),
            issued_at: now,
            expires_at: now + ttl,
            family_id: None,
        });
        writes.audit(self.audit_event(
            AuditKind::TokenIssued,
            "success",
            None,
            Some(&m.client_id),
            json!({ "grant_type": "client_credentials", "jti": jti }),
        ));
        self.db.commit(writes).await?;
        metrics::counter!("careid_tokens_issued_total", "grant_type" => "client_credentials")
            .increment(1);
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            scope: scopes.join(" "),
            id_token: None,
            refresh_token: None,
        })
    }
}

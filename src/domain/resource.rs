//! What a presented token is worth: userinfo for access tokens (RFC 6750 bearer use),
//! introspection (RFC 7662) and revocation (RFC 7009), both authenticated with the client's own
//! method. Revoking a refresh token ends its family and the access tokens issued with it.

use serde_json::{json, Map, Value};

use super::claims;
use super::provider::{Provider, ServiceError};
use super::rbac;
use super::secrets;
use super::token::{BearerError, TokenError, TokenPresentation};
use crate::model::audit::AuditKind;
use crate::model::identity::UserStatus;

impl Provider {
    /// Userinfo: the claims of the token's scopes, for a valid, unrevoked access token.
    pub async fn userinfo(&self, access_token: &str) -> Result<Map<String, Value>, BearerError> {
        let invalid =
            || BearerError::InvalidToken("the token is not an active careid access token".into());
        let claims = self
            .active_access_claims(access_token)
            .await?
            .ok_or_else(invalid)?;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?;
        let user = self
            .db
            .user(sub)
            .await
            .map_err(ServiceError::from)?
            .filter(|u| u.status == UserStatus::Active)
            .ok_or_else(invalid)?;
        self.note_test_sign_in(&claims, sub).await?;
        let scopes: Vec<String> = claims
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split(' ')
            .map(String::from)
            .collect();
        let mut roles = claims::RoleInfo {
            selected_roleid: claims
                .get("selected_roleid")
                .and_then(Value::as_str)
                .map(String::from),
            ..Default::default()
        };
        if scopes.iter().any(|s| {
            s == "nationalrbacaccess" || s == "associatedorgs" || s == "organisationalmemberships"
        }) {
            let sid = claims
                .get("sid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            roles.roles = self
                .token_session_roles(&user.uuid, sid)
                .await
                .map_err(BearerError::from)?;
            roles.orgs = rbac::user_orgs(&self.db, &roles.roles)
                .await
                .map_err(ServiceError::from)?;
        }
        if scopes.iter().any(|s| s == "professionalmemberships") {
            roles.registrations = self
                .db
                .professional_registrations(&user.uuid)
                .await
                .map_err(ServiceError::from)?;
        }
        Ok(claims::userinfo(&user, &scopes, &roles))
    }

    /// The roles a token may carry: its sign-in session's (a TAC session only the positions
    /// chosen for the TAC), or the person's current roles when the token has no session.
    pub(crate) async fn token_session_roles(
        &self,
        user_uuid: &str,
        sid: &str,
    ) -> Result<Vec<rbac::RoleClaim>, ServiceError> {
        match self.db.session_by_sid(sid).await? {
            Some(s) => self.session_roles(user_uuid, &s.authenticator_id).await,
            None => Ok(rbac::current_roles(&self.db, user_uuid, self.now()).await?),
        }
    }

    /// The claims of an active access token careid issued: valid signature, unexpired, on
    /// record and unrevoked, and its user (if any) still active.
    pub(crate) async fn active_access_claims(
        &self,
        token: &str,
    ) -> Result<Option<Map<String, Value>>, ServiceError> {
        let Ok(claims) = self.verify_own_token(token, "at+jwt").await else {
            return Ok(None);
        };
        if claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_none_or(|exp| exp <= self.now())
        {
            return Ok(None);
        }
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Ok(None);
        };
        let Some(record) = self.db.active_access_token(jti).await? else {
            return Ok(None);
        };
        if let Some(uuid) = &record.user_uuid {
            if self
                .db
                .user(uuid)
                .await?
                .is_none_or(|u| u.status != UserStatus::Active)
            {
                return Ok(None);
            }
        }
        Ok(Some(claims))
    }

    /// RFC 7662. Any authenticated client may introspect access tokens (resource servers are
    /// clients too); a refresh token only by the client it was issued to.
    pub async fn introspect(&self, request: TokenPresentation) -> Result<Value, TokenError> {
        let client = self.authenticate_client(request.credentials).await?;
        let token = request.token?;
        let token = token.as_str();
        if let Some(c) = self.active_access_claims(token).await? {
            let mut out = Map::new();
            out.insert("active".into(), true.into());
            out.insert("token_type".into(), "Bearer".into());
            for k in [
                "scope",
                "client_id",
                "sub",
                "exp",
                "iat",
                "iss",
                "aud",
                "jti",
                "sid",
                "acr",
                "amr",
                "auth_time",
                "authentication_assurance_level",
            ] {
                if let Some(v) = c.get(k) {
                    out.insert(k.into(), v.clone());
                }
            }
            return Ok(Value::Object(out));
        }
        if let Some(r) = self.db.refresh_token(&secrets::digest(token)).await? {
            let now = self.now();
            let live = r.client_id == client.metadata.client_id
                && r.revoked_at.is_none()
                && r.used_at.is_none()
                && now < r.expires_at
                && now < r.family_expires_at;
            let user_active = self
                .db
                .user(&r.user_uuid)
                .await?
                .is_some_and(|u| u.status == UserStatus::Active);
            if live && user_active {
                return Ok(json!({
                    "active": true, "token_type": "refresh_token", "client_id": r.client_id, "sub": r.user_uuid,
                    "scope": r.grant.scopes.join(" "), "exp": r.expires_at.min(r.family_expires_at), "iat": r.issued_at,
                    "iss": self.config.issuer, "sid": r.sid,
                }));
            }
        }
        Ok(json!({ "active": false }))
    }

    /// RFC 7009: always succeeds for an authenticated client, whether or not the token was valid.
    pub async fn revoke(&self, request: TokenPresentation) -> Result<(), TokenError> {
        let client = self.authenticate_client(request.credentials).await?;
        let token = request.token?;
        let token = token.as_str();
        let client_id = client.metadata.client_id.as_str();
        if let Some(r) = self.db.refresh_token(&secrets::digest(token)).await? {
            if r.client_id == client_id {
                self.revoke_family(&r.family_id).await?;
                self.audit(
                    AuditKind::TokenRevoked,
                    "success",
                    Some(&r.user_uuid),
                    Some(client_id),
                    json!({ "token_type": "refresh_token", "family": r.family_id }),
                )
                .await?;
            }
            return Ok(());
        }
        if let Ok(claims) = self.verify_own_token(token, "at+jwt").await {
            let jti = claims
                .get("jti")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Some(record) = self.db.active_access_token(jti).await? {
                if record.client_id == client_id {
                    self.db.revoke_access_token(jti, self.now()).await?;
                    self.audit(
                        AuditKind::TokenRevoked,
                        "success",
                        record.user_uuid.as_deref(),
                        Some(client_id),
                        json!({ "token_type": "access_token", "jti": jti }),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}

impl Provider {
    /// A test identity called userinfo with a token of an integration client: a complete test
    /// sign-in (code exchanged, userinfo called), the evidence onboarding's `test_sign_in` check
    /// looks for. Only integration clients pay the lookup.
    async fn note_test_sign_in(
        &self,
        claims: &Map<String, Value>,
        sub: &str,
    ) -> Result<(), ServiceError> {
        let Some(client_id) = claims.get("client_id").and_then(Value::as_str) else {
            return Ok(());
        };
        if self
            .active_client(client_id)
            .await?
            .is_some_and(|c| c.in_integration())
            && self.db.is_test_identity(sub).await?
        {
            self.db.record_test_sign_in(client_id, self.now()).await?;
        }
        Ok(())
    }
}

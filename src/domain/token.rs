//! The token endpoint: client authentication, the grant dispatch, the authorization code's single
//! use and bindings (client, redirect URI, PKCE), and issuing user tokens (shared with the
//! refresh grant in `grants`).

use serde_json::{json, Value};

use super::authorize::Params;
use super::claims::{self, CodeGrant, TokenTimes};
use super::client::{Client, SigningAlg};
use super::client_auth::{self, ClientAuthError, Presented};
use super::provider::{Provider, ServiceError};
use super::secrets;
use crate::clock::UnixTime;
use crate::model::audit::AuditKind;
use crate::model::identity::{User, UserStatus};
use crate::store::{AccessTokenRecord, CodeState, WriteSet};

/// The `error_description` CIS2 gives a refused client assertion (`cis2.md`, token endpoint).
pub const CIS2_BAD_ASSERTION: &str = "JWT is not valid";
/// The client credentials a request presented (`client_auth::presented`), read at the edge;
/// a malformed presentation is refused when the client is authenticated, as RFC 6749 orders it.
#[derive(Debug, Clone)]
pub struct Credentials {
    presented: Result<Presented, ClientAuthError>,
    /// An `Authorization` header was sent (a 401 then names the Basic scheme).
    header_sent: bool,
}

impl Credentials {
    pub fn parse(authorization: Option<&str>, params: &Params<'_>) -> Credentials {
        Credentials {
            presented: client_auth::presented(authorization, params),
            header_sent: authorization.is_some(),
        }
    }
}

/// The grant a token request asks for, with its parameters. Required ones are checked by the
/// grant (after the client may use it), so their absence is reported as before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    AuthorizationCode {
        code: Option<String>,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: Option<String>,
        scope: Option<String>,
    },
    ClientCredentials {
        scope: Option<String>,
    },
}

/// A token request, parsed by the HTTP layer: who is calling and what for. Repeated parameters
/// are refused at once; a missing or unknown grant type only after the client is authenticated.
#[derive(Debug)]
pub struct TokenRequest {
    pub credentials: Credentials,
    pub grant: Result<Grant, TokenError>,
}

impl TokenRequest {
    pub fn parse(
        authorization: Option<&str>,
        pairs: &[(String, String)],
    ) -> Result<TokenRequest, TokenError> {
        let params = Params::new(pairs);
        if let Some(name) = params.first_repeated() {
            return Err(TokenError::InvalidRequest(format!(
                "the parameter {name} appears more than once"
            )));
        }
        Ok(TokenRequest {
            credentials: Credentials::parse(authorization, &params),
            grant: Self::grant(&params),
        })
    }

    fn grant(params: &Params<'_>) -> Result<Grant, TokenError> {
        let get = |n: &str| {
            params
                .get(n)
                .map(|v| v.map(String::from))
                .map_err(|e| TokenError::InvalidRequest(e.to_string()))
        };
        match get("grant_type")?.as_deref() {
            None => Err(TokenError::InvalidRequest("grant_type is required".into())),
            Some("authorization_code") => Ok(Grant::AuthorizationCode {
                code: get("code")?,
                redirect_uri: get("redirect_uri")?,
                code_verifier: get("code_verifier")?,
            }),
            Some("refresh_token") => Ok(Grant::RefreshToken {
                refresh_token: get("refresh_token")?,
                scope: get("scope")?,
            }),
            Some("client_credentials") => Ok(Grant::ClientCredentials {
                scope: get("scope")?,
            }),
            Some(other) => Err(TokenError::UnsupportedGrantType(format!(
                "{other} is not supported"
            ))),
        }
    }
}

/// An introspection (RFC 7662) or revocation (RFC 7009) request, parsed by the HTTP layer: the
/// calling client's credentials and the token it presents. A missing token is reported only
/// after the client is authenticated.
#[derive(Debug)]
pub struct TokenPresentation {
    pub credentials: Credentials,
    pub token: Result<String, TokenError>,
}

impl TokenPresentation {
    pub fn parse(
        authorization: Option<&str>,
        pairs: &[(String, String)],
    ) -> Result<TokenPresentation, TokenError> {
        let params = Params::new(pairs);
        if let Some(name) = params.first_repeated() {
            return Err(TokenError::InvalidRequest(format!(
                "the parameter {name} appears more than once"
            )));
        }
        let token = match params.get("token") {
            Ok(Some(t)) => Ok(t.to_string()),
            Ok(None) => Err(TokenError::InvalidRequest("token is required".into())),
            Err(e) => Err(TokenError::InvalidRequest(e.to_string())),
        };
        Ok(TokenPresentation {
            credentials: Credentials::parse(authorization, &params),
            token,
        })
    }
}

/// A refresh-token family: where the next token in it belongs.
#[derive(Debug, Clone)]
pub struct Family {
    pub id: String,
    pub offline: bool,
    pub expires_at: UnixTime,
}

/// What a grant's tokens use up. It is marked in the commit that records the tokens (a guard:
/// [`WriteSet::redeeming_code`], [`WriteSet::rotating_refresh_token`]), so of concurrent
/// presentations one issues, and a replay that revokes finds what the first one wrote.
pub(crate) enum Claim {
    Code(String),
    RefreshToken(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client: {reason}")]
    InvalidClient { reason: String, used_basic: bool },
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient { .. } => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::UnauthorizedClient(_) => "unauthorized_client",
            TokenError::UnsupportedGrantType(_) => "unsupported_grant_type",
            TokenError::InvalidScope(_) => "invalid_scope",
            TokenError::Internal(_) => "server_error",
        }
    }
}

impl From<crate::store::StoreError> for TokenError {
    fn from(e: crate::store::StoreError) -> Self {
        TokenError::Internal(e.into())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Why a bearer token was refused (RFC 6750).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl Provider {
    /// The URLs accepted as `aud` of a client assertion: the issuer and every token endpoint URL.
    pub fn assertion_audiences(&self) -> Vec<String> {
        vec![
            self.config.issuer.clone(),
            self.config.endpoint("/token"),
            self.config.endpoint("/access_token"),
        ]
    }

    pub(crate) async fn authenticate_client(
        &self,
        credentials: Credentials,
    ) -> Result<Client, TokenError> {
        let header_sent = credentials.header_sent;
        let presented = credentials.presented.map_err(|e| match e {
            ClientAuthError::InvalidRequest(m) => TokenError::InvalidRequest(m),
            ClientAuthError::InvalidClient(reason) => TokenError::InvalidClient {
                reason,
                used_basic: header_sent,
            },
        })?;
        let used_basic = matches!(presented, Presented::Basic { .. });
        let invalid = |reason: String| TokenError::InvalidClient { reason, used_basic };
        let client = self
            .active_client(presented.client_id())
            .await?
            .ok_or_else(|| {
                invalid(if matches!(presented, Presented::Assertion { .. }) {
                    CIS2_BAD_ASSERTION.into()
                } else {
                    "unknown or disabled client".into()
                })
            })?;
        let outcome = match &presented {
            Presented::Assertion { assertion, .. } => {
                self.check_assertion(&client, assertion).await?
            }
            other => client_auth::check_secret(&client, other, self.now()),
        };
        if let Err(e) = outcome {
            self.audit(
                AuditKind::ClientAuthentication,
                "failure",
                None,
                Some(&client.metadata.client_id),
                json!({ "method": presented.method().as_str(), "reason": e.to_string() }),
            )
            .await?;
            // CIS2 refuses a bad assertion with this text, and relying parties match on it; the
            // reason stays in careid's audit trail and log.
            if matches!(presented, Presented::Assertion { .. }) {
                tracing::info!(client_id = %client.metadata.client_id, reason = %e, "client assertion refused");
                return Err(invalid(CIS2_BAD_ASSERTION.into()));
            }
            return Err(invalid(e.to_string()));
        }
        Ok(client)
    }

    async fn check_assertion(
        &self,
        client: &Client,
        assertion: &str,
    ) -> Result<Result<(), ClientAuthError>, ServiceError> {
        if client.metadata.token_endpoint_auth_method != super::client::AuthMethod::PrivateKeyJwt {
            return Ok(Err(ClientAuthError::InvalidClient(format!(
                "this client authenticates with {}",
                client.metadata.token_endpoint_auth_method.as_str()
            ))));
        }
        let kid = josekit::jwt::decode_header(assertion)
            .ok()
            .and_then(|h| h.claim("kid").and_then(Value::as_str).map(String::from));
        let Some(keys) = self.client_jwks(client, kid.as_deref()).await else {
            return Ok(Err(ClientAuthError::InvalidClient(
                "the client's keys are not available".into(),
            )));
        };
        let verified = match client_auth::verify_assertion(
            client,
            assertion,
            &keys,
            &self.assertion_audiences(),
            self.now(),
        ) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        if !self
            .db
            .record_assertion_jti(&client.metadata.client_id, &verified.jti, verified.exp)
            .await?
        {
            return Ok(Err(ClientAuthError::InvalidClient(
                "client assertion rejected: jti already used".into(),
            )));
        }
        Ok(Ok(()))
    }

    /// The token endpoint.
    pub async fn token(&self, request: TokenRequest) -> Result<TokenResponse, TokenError> {
        let client = self.authenticate_client(request.credentials).await?;
        let required = |v: Option<String>, name: &str| {
            v.ok_or_else(|| TokenError::InvalidRequest(format!("{name} is required")))
        };
        let may = |grant: &str| {
            if client.metadata.allows_grant(grant) {
                Ok(())
            } else {
                Err(TokenError::UnauthorizedClient(format!(
                    "the client may not use {grant}"
                )))
            }
        };
        match request.grant? {
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                may("authorization_code")?;
                let code = required(code, "code")?;
                self.redeem_code(
                    &client,
                    &code,
                    redirect_uri.as_deref(),
                    code_verifier.as_deref(),
                )
                .await
            }
            Grant::RefreshToken {
                refresh_token,
                scope,
            } => {
                may("refresh_token")?;
                let token = required(refresh_token, "refresh_token")?;
                self.refresh_grant(&client, &token, scope.as_deref()).await
            }
            Grant::ClientCredentials { scope } => {
                self.client_credentials(&client, scope.as_deref()).await
            }
        }
    }

    /// The authorization-code grant. The code is read, checked, and marked used in the commit
    /// that records the tokens; a refused presentation spends it too, so a code is good for one
    /// presentation whatever its outcome.
    async fn redeem_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let now = self.now();
        let code_hash = secrets::digest(code);
        let grant = match self.db.code(&code_hash).await? {
            CodeState::Unused(grant) => *grant,
            CodeState::Used => return self.refuse_replay(client, &code_hash).await,
            CodeState::Unknown => return Err(TokenError::InvalidGrant("unknown code".into())),
        };
        let (user, family) = match self
            .check_code_grant(client, &grant, redirect_uri, verifier)
            .await
        {
            Ok(checked) => checked,
            Err(refused) => {
                if !self.db.spend_code(&code_hash, now).await? {
                    // Another presentation used it meanwhile: this one is a replay after all.
                    return self.refuse_replay(client, &code_hash).await;
                }
                return Err(refused);
            }
        };
        self.issue_user_tokens(
            client,
            &grant,
            &user,
            Some(Claim::Code(code_hash)),
            family,
            "authorization_code",
        )
        .await
    }

    /// Whether the session ended after the grant was checked. Ending a session marks it ended
    /// first and then revokes its tokens in separate statements, so tokens committed between
    /// the two would be missed; read after the tokens' commit, an ended session is seen here
    /// whenever its revocation may have run before the commit, and the caller revokes them
    /// itself.
    async fn session_ended_meanwhile(&self, sid: &str) -> Result<bool, TokenError> {
        Ok(self
            .db
            .session_by_sid(sid)
            .await?
            .is_none_or(|s| s.ended_at.is_some()))
    }

    /// A code presented again: every token issued from it is revoked (RFC 6749 §4.1.2) and the
    /// presentation refused.
    async fn refuse_replay(
        &self,
        client: &Client,
        code_hash: &str,
    ) -> Result<TokenResponse, TokenError> {
        let revoked = self.db.revoke_tokens_of_code(code_hash, self.now()).await?;
        self.audit(
            AuditKind::TokenCodeReuse,
            "refused",
            None,
            Some(&client.metadata.client_id),
            json!({ "revoked_tokens": revoked }),
        )
        .await?;
        Err(TokenError::InvalidGrant(
            "the code has already been used".into(),
        ))
    }

    /// The code's bindings and the state of its sign-in: expiry, client, redirect URI, PKCE, an
    /// open session and an active user. Returns the user and, when the client may refresh, a new
    /// refresh-token family.
    async fn check_code_grant(
        &self,
        client: &Client,
        grant: &CodeGrant,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<(User, Option<Family>), TokenError> {
        let now = self.now();
        if now > grant.issued_at + self.config.tokens.code_ttl_secs {
            return Err(TokenError::InvalidGrant("the code has expired".into()));
        }
        if grant.client_id != client.metadata.client_id {
            self.audit(
                AuditKind::TokenCodeOtherClient,
                "refused",
                Some(&grant.user_uuid),
                Some(&client.metadata.client_id),
                json!({ "issued_to": grant.client_id }),
            )
            .await?;
            return Err(TokenError::InvalidGrant(
                "the code was issued to another client".into(),
            ));
        }
        if redirect_uri != Some(grant.redirect_uri.as_str()) {
            return Err(TokenError::InvalidGrant(
                "redirect_uri differs from the authorization request".into(),
            ));
        }
        check_pkce(grant, verifier)?;
        let (user, session) = match self
            .db
            .user_and_session(&grant.user_uuid, &grant.sid)
            .await?
        {
            Some((user, session)) => (Some(user), session),
            None => (None, None),
        };
        if session.as_ref().is_none_or(|s| s.ended_at.is_some()) {
            return Err(TokenError::InvalidGrant(
                "the sign-in session has ended".into(),
            ));
        }
        let user = user
            .filter(|u| u.status == UserStatus::Active)
            .ok_or_else(|| TokenError::InvalidGrant("the user is not active".into()))?;
        let family = if client.metadata.allows_grant("refresh_token") {
            let session_expiry = session.map(|s| s.absolute_expiry).unwrap_or(now);
            Some(self.new_refresh_family(client, grant, session_expiry))
        } else {
            None
        };
        Ok((user, family))
    }

    /// Signs and records an access token and an ID token (when `openid` was granted) for a user
    /// grant, and the next refresh token of `family` when there is one.
    pub(crate) async fn issue_user_tokens(
        &self,
        client: &Client,
        grant: &CodeGrant,
        user: &User,
        claim: Option<Claim>,
        family: Option<Family>,
        grant_type: &'static str,
    ) -> Result<TokenResponse, TokenError> {
        let now = self.now();
        let code_hash = match &claim {
            Some(Claim::Code(hash)) => Some(hash.clone()),
            _ => None,
        };
        let family_id = family.as_ref().map(|f| f.id.clone());
        // Tokens from a code, and from a refresh family bound to its session, live only as
        // long as the sign-in session.
        let session_bound = match &claim {
            Some(Claim::Code(_)) => true,
            Some(Claim::RefreshToken(_)) => family.as_ref().is_some_and(|f| !f.offline),
            None => false,
        };
        let times = TokenTimes {
            now,
            id_token_ttl: self.config.tokens.id_token_ttl_secs,
            access_token_ttl: self.config.tokens.access_token_ttl_secs,
        };
        let (at_claims, jti) = claims::access_token(&self.config.issuer, grant, &times);
        let access_token = self
            .keys
            .sign(SigningAlg::RS256, "at+jwt", at_claims)
            .map_err(ServiceError::from)?;
        let id_token = if grant.has_scope("openid") {
            let id_claims =
                claims::id_token(&self.config.issuer, grant, user, &access_token, &times);
            Some(
                self.keys
                    .sign(
                        client.metadata.id_token_signed_response_alg,
                        "JWT",
                        id_claims,
                    )
                    .map_err(ServiceError::from)?,
            )
        } else {
            None
        };
        let mut writes = match &claim {
            Some(Claim::Code(hash)) => WriteSet::redeeming_code(hash, now),
            Some(Claim::RefreshToken(hash)) => WriteSet::rotating_refresh_token(hash, now),
            None => WriteSet::new(),
        };
        writes.insert_access_token(&AccessTokenRecord {
            jti: jti.clone(),
            client_id: grant.client_id.clone(),
            user_uuid: Some(grant.user_uuid.clone()),
            sid: Some(grant.sid.clone()),
            code_hash: code_hash.clone(),
            scope: grant.scopes.join(" "),
            issued_at: now,
            expires_at: now + times.access_token_ttl,
            family_id: family.as_ref().map(|f| f.id.clone()),
        });
        let refresh_token = match family {
            Some(f) => Some(self.store_refresh_token(client, grant, &f, &mut writes)?),
            None => None,
        };
        writes.audit(self.audit_event(AuditKind::TokenIssued, "success", Some(&grant.user_uuid), Some(&grant.client_id), json!({ "grant_type": grant_type, "jti": jti, "sid": grant.sid, "refresh": refresh_token.is_some() })));
        let written = self.db.commit_guarded(writes).await?;
        // The guard changed nothing: between the read and this commit the code or refresh
        // token was used by a concurrent request (this presentation is the replay), or it was
        // revoked or purged (then it is merely no longer valid).
        match (written, claim) {
            (None, Some(Claim::Code(hash))) => {
                return match self.db.code(&hash).await? {
                    CodeState::Unknown => Err(TokenError::InvalidGrant("unknown code".into())),
                    _ => self.refuse_replay(client, &hash).await,
                }
            }
            (None, Some(Claim::RefreshToken(hash))) => {
                let used = self
                    .db
                    .refresh_token(&hash)
                    .await?
                    .is_some_and(|r| r.used_at.is_some());
                if !used {
                    return Err(TokenError::InvalidGrant(
                        "the refresh token has been revoked".into(),
                    ));
                }
                return self
                    .refuse_refresh_reuse(
                        client,
                        family_id.as_deref().unwrap_or_default(),
                        &grant.user_uuid,
                    )
                    .await;
            }
            _ => {}
        }
        if session_bound && self.session_ended_meanwhile(&grant.sid).await? {
            self.db.revoke_access_token(&jti, now).await?;
            if let Some(family_id) = &family_id {
                self.revoke_family(family_id).await?;
            }
            return Err(TokenError::InvalidGrant(
                "the sign-in session has ended".into(),
            ));
        }
        metrics::counter!("careid_tokens_issued_total", "grant_type" => grant_type).increment(1);
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: times.access_token_ttl,
            scope: grant.scopes.join(" "),
            id_token,
            refresh_token,
        })
    }
}

/// RFC 7636: the verifier must hash to the stored challenge; a verifier without a challenge is
/// refused too (RFC 9700 §2.1.1).
fn check_pkce(grant: &CodeGrant, verifier: Option<&str>) -> Result<(), TokenError> {
    match (&grant.code_challenge, verifier) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(TokenError::InvalidGrant("code_verifier is required".into())),
        (None, Some(_)) => Err(TokenError::InvalidGrant(
            "code_verifier sent but the authorization request had no code_challenge".into(),
        )),
        (Some(challenge), Some(v)) => {
            let well_formed = (43..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if well_formed && secrets::constant_time_eq(&secrets::s256(v), challenge) {
                Ok(())
            } else {
                Err(TokenError::InvalidGrant(
                    "code_verifier does not match the code_challenge".into(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    #[test]
    fn a_token_request_is_parsed_into_its_grant() {
        let r = TokenRequest::parse(
            None,
            &pairs("grant_type=authorization_code&code=c&redirect_uri=https%3A%2F%2Frp%2Fcb&code_verifier=v&client_id=x"),
        )
        .unwrap();
        assert_eq!(
            r.grant.unwrap(),
            Grant::AuthorizationCode {
                code: Some("c".into()),
                redirect_uri: Some("https://rp/cb".into()),
                code_verifier: Some("v".into()),
            }
        );
        let r = TokenRequest::parse(None, &pairs("grant_type=refresh_token&scope=openid")).unwrap();
        assert_eq!(
            r.grant.unwrap(),
            Grant::RefreshToken {
                refresh_token: None,
                scope: Some("openid".into())
            },
            "a missing refresh_token is the grant's to refuse, after the client is known"
        );
    }

    #[test]
    fn repeats_are_refused_at_once_and_grant_errors_wait_for_the_client() {
        assert!(matches!(
            TokenRequest::parse(None, &pairs("grant_type=client_credentials&scope=a&scope=b")),
            Err(TokenError::InvalidRequest(m)) if m.contains("scope")
        ));
        let unknown = TokenRequest::parse(None, &pairs("grant_type=password")).unwrap();
        assert!(matches!(
            unknown.grant,
            Err(TokenError::UnsupportedGrantType(_))
        ));
        let missing = TokenRequest::parse(None, &pairs("code=c")).unwrap();
        assert!(
            matches!(missing.grant, Err(TokenError::InvalidRequest(m)) if m.contains("grant_type"))
        );
        assert!(!missing.credentials.header_sent);
        let basic =
            TokenRequest::parse(Some("Basic eDp5"), &pairs("grant_type=client_credentials"))
                .unwrap();
        assert!(basic.credentials.header_sent);
        assert!(matches!(
            basic.credentials.presented,
            Ok(Presented::Basic { .. })
        ));
    }
}

//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): ends the sign-in session of the
//! browser's cookie, and returns to a registered `post_logout_redirect_uri` only. It ends that
//! session without asking only when an `id_token_hint` names it (its `sid`, or else its user);
//! otherwise the person confirms first, so a forged link cannot sign them out.
//!
//! An ID token alone is no proof of anything (it travels through browsers, URLs and logs), so a
//! hint never ends a session other than the cookie's. The one exception is the server-to-server
//! call some CIS2 relying parties make (`../shared/reference/cis2.md` §10.2): `id_token_hint`
//! with that session's own active access token as bearer, issued to the hint's audience.

use serde_json::Value;

use super::authorize::Params;
use super::login::with_query;
use super::provider::{Provider, ServiceError};
use super::secrets;

#[derive(Debug)]
pub enum LogoutOutcome {
    Redirect(String),
    SignedOut,
    /// Ask the person to confirm; the form carries this CSRF token.
    Confirm {
        csrf: String,
        /// The origin of the `post_logout_redirect_uri`, where the form may end.
        return_to: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

/// The CSRF token of a form, bound to the session cookie secret.
pub fn csrf_token(session_secret: &str, purpose: &str) -> String {
    secrets::s256(&format!("csrf:{purpose}:{session_secret}"))
}

impl Provider {
    pub async fn logout(
        &self,
        pairs: &[(String, String)],
        session_secret: Option<&str>,
        confirmed_csrf: Option<&str>,
        bearer: Option<&str>,
    ) -> Result<LogoutOutcome, LogoutError> {
        let params = Params::new(pairs);
        if let Some(name) = params.first_repeated() {
            return Err(LogoutError::BadRequest(format!(
                "the parameter {name} appears more than once"
            )));
        }
        let get = |n: &str| {
            params
                .get(n)
                .map_err(|e| LogoutError::BadRequest(e.to_string()))
        };
        let hint = match get("id_token_hint")? {
            Some(h) => Some(self.verify_own_token(h, "JWT").await.map_err(|_| {
                LogoutError::BadRequest("id_token_hint is not an ID token careid issued".into())
            })?),
            None => None,
        };
        let hint_str = |n: &str| {
            hint.as_ref()
                .and_then(|c| c.get(n))
                .and_then(Value::as_str)
                .map(String::from)
        };
        let client_id = match (get("client_id")?, hint_str("aud")) {
            (Some(a), Some(b)) if a != b => {
                return Err(LogoutError::BadRequest(
                    "client_id differs from the id_token_hint audience".into(),
                ))
            }
            (Some(a), _) => Some(a.to_string()),
            (None, b) => b,
        };
        let redirect = match get("post_logout_redirect_uri")? {
            None => None,
            Some(uri) => {
                let client = match &client_id {
                    Some(id) => self.active_client(id).await?,
                    None => None,
                };
                let registered = client.is_some_and(|c| {
                    c.metadata
                        .post_logout_redirect_uris
                        .iter()
                        .any(|r| r == uri)
                });
                if !registered {
                    return Err(LogoutError::BadRequest(
                        "post_logout_redirect_uri is not registered for this application".into(),
                    ));
                }
                Some(uri.to_string())
            }
        };
        let session = self.usable_session(session_secret).await?;
        if let Some(session) = &session {
            let hint_names_it = hint.is_some()
                && match hint_str("sid") {
                    Some(sid) => sid == session.sid,
                    None => hint_str("sub").is_some_and(|sub| sub == session.user_uuid),
                };
            if !hint_names_it {
                let expected = session_secret
                    .map(|s| csrf_token(s, "logout"))
                    .unwrap_or_default();
                if !confirmed_csrf.is_some_and(|c| secrets::constant_time_eq(c, &expected)) {
                    return Ok(LogoutOutcome::Confirm {
                        csrf: expected,
                        return_to: redirect.as_deref().map(super::login::origin_of),
                    });
                }
            }
            self.end_session(&session.sid, "logout").await?;
        } else if let (Some(sid), Some(token)) = (hint_str("sid"), bearer) {
            // Server to server: the caller holds the session's access token for this client.
            let holds_it = self.active_access_claims(token).await?.is_some_and(|c| {
                c.get("sid").and_then(Value::as_str) == Some(sid.as_str())
                    && c.get("client_id").and_then(Value::as_str) == client_id.as_deref()
            });
            if holds_it {
                self.end_session(&sid, "logout").await?;
            }
        }
        Ok(match redirect {
            Some(uri) => {
                let state = get("state")?;
                Redirect(with_query(
                    &uri,
                    &state.map(|s| vec![("state", s)]).unwrap_or_default(),
                ))
            }
            None => LogoutOutcome::SignedOut,
        })
    }
}

use LogoutOutcome::Redirect;

//! After a verified authentication, whatever the method: the session opened or refreshed, the
//! flow taken once, and the one path that ends sessions.

use super::*;
use crate::model::audit::AuditKind;
use crate::model::identity::Authenticator;

/// What [`Provider::open_session`] prepared.
struct OpenedSession {
    session: Session,
    /// The new cookie secret.
    secret: String,
    /// Another user's session in this browser, to end once the sign-in has committed.
    replaced: Option<String>,
}

impl Provider {
    /// A verified authentication for a pending sign-in, whatever the method: takes the flow
    /// (once; `None` if it was taken meanwhile), opens or refreshes the session, audits, and
    /// goes on to role selection and the code, or to `unmet_authentication_requirements`.
    pub(crate) async fn sign_in_verified(
        &self,
        flow: &PendingFlow,
        key: &str,
        authenticator: &Authenticator,
        method: Method,
        previous_secret: Option<&str>,
        agent_binding: Option<&str>,
    ) -> Result<Option<(Next, String)>, ServiceError> {
        let (user_uuid, authenticator_id) = (&*authenticator.user_uuid, &*authenticator.id);
        let now = self.now();
        let request = &flow.request;
        let browser_hash = flow.browser_hash.clone().unwrap_or_default();
        // Taking the flow guards the set: of two completions of one flow, one writes.
        let mut writes = WriteSet::taking_login_flow(key);
        writes.touch_authenticator(authenticator_id, now);
        let OpenedSession {
            session,
            secret: session_secret,
            replaced,
        } = self
            .open_session(previous_secret, authenticator, method, &mut writes)
            .await?;
        if let Some(binding) = agent_binding {
            writes.bind_agent_session(binding, &session.sid);
        }
        let (label, kind) = match method.kind() {
            MethodKind::Smartcard => ("smartcard", AuditKind::LoginSmartcard),
            MethodKind::Fido2 => ("webauthn", AuditKind::LoginWebauthn),
        };
        writes.audit(self.audit_event(
            kind,
            "success",
            Some(user_uuid),
            Some(&request.client_id),
            login_detail(&session.sid, authenticator_id, method, agent_binding),
        ));
        let hinted = self.hinted_subject(request).await;
        let next = match request.acr.satisfied_by(method) {
            // The relying party named who should sign in: someone else gets no code.
            Some(_) if !hinted.is_ok_and(|h| h.is_none_or(|sub| sub == user_uuid)) => {
                let e = RedirectError {
                    error: "login_required",
                    description: "the person who signed in is not the one id_token_hint names"
                        .into(),
                };
                Next::Redirect(self.error_redirect(
                    &request.redirect_uri,
                    request.state.as_deref(),
                    &e,
                ))
            }
            Some(acr) => {
                self.complete(request, &session, acr, &browser_hash, &mut writes)
                    .await?
            }
            None => {
                let e = RedirectError {
                    error: "unmet_authentication_requirements",
                    description: "the sign-in method does not meet the requested acr_values".into(),
                };
                Next::Redirect(self.error_redirect(
                    &request.redirect_uri,
                    request.state.as_deref(),
                    &e,
                ))
            }
        };
        if self.db.commit_guarded(writes).await?.is_none() {
            return Ok(None);
        }
        if let Some(sid) = replaced {
            self.end_session(&sid, "replaced").await?;
        }
        // A card pulled while this sign-in was being written: its session ends at once.
        if let Some(binding) = agent_binding {
            if self
                .db
                .agent_binding(binding)
                .await?
                .is_none_or(|b| b.ended_at.is_some())
            {
                self.end_session(&session.sid, "card_removed").await?;
            }
        }
        metrics::counter!("careid_logins_total", "method" => label, "outcome" => "success")
            .increment(1);
        Ok(Some((next, session_secret)))
    }

    /// After a successful authentication, adds to `writes`: the same user's usable session
    /// refreshed (same `sid`, new cookie secret), or a new session. Another user's session in
    /// this browser is named in `replaced`, for the caller to end once the set has committed (a
    /// sign-in that loses the race for its flow changes no session).
    async fn open_session(
        &self,
        previous_secret: Option<&str>,
        authenticator: &Authenticator,
        method: Method,
        writes: &mut WriteSet,
    ) -> Result<OpenedSession, ServiceError> {
        let (user_uuid, authenticator_id) = (&*authenticator.user_uuid, &*authenticator.id);
        let now = self.now();
        let secret = secrets::random_token();
        let previous = self.usable_session(previous_secret).await?;
        let mut session = Session {
            sid: uuid::Uuid::new_v4().to_string(),
            user_uuid: user_uuid.to_string(),
            authenticator_id: authenticator_id.to_string(),
            amr: method.amr().to_string(),
            aal: i64::from(method.aal()),
            auth_time: now,
            created_at: now,
            last_seen_at: now,
            absolute_expiry: now + self.config.session.absolute_timeout_secs,
            ended_at: None,
        };
        // A session opened with a temporary access card ends when the card stops working.
        if let Some(until) = authenticator.expires_at {
            session.absolute_expiry = session.absolute_expiry.min(until);
        }
        let mut replaced = None;
        if let Some(prev) = previous {
            if prev.user_uuid == user_uuid {
                session.sid = prev.sid.clone();
                session.created_at = prev.created_at;
                writes.reauthenticate_session(&prev.sid, &secrets::digest(&secret), &session);
                return Ok(OpenedSession {
                    session,
                    secret,
                    replaced,
                });
            }
            replaced = Some(prev.sid);
        }
        writes.insert_session(&secrets::digest(&secret), &session);
        Ok(OpenedSession {
            session,
            secret,
            replaced,
        })
    }

    /// The one path that ends a session, whatever the cause (logout, suspension, card removal,
    /// leaver): marks it ended, revokes its access tokens and session-bound refresh tokens, and
    /// queues a back-channel logout to every client that was issued tokens in it.
    pub async fn end_session(&self, sid: &str, reason: &str) -> Result<bool, ServiceError> {
        let now = self.now();
        let Some(session) = self.db.session_by_sid(sid).await? else {
            return Ok(false);
        };
        if !self.db.end_session(sid, reason, now).await? {
            return Ok(false);
        }
        self.db.revoke_tokens_of_session(sid, now).await?;
        self.db.revoke_refresh_tokens_of_session(sid, now).await?;
        let queued = self
            .queue_backchannel_logouts(sid, &session.user_uuid)
            .await?;
        self.audit(
            AuditKind::SessionEnded,
            reason,
            Some(&session.user_uuid),
            None,
            json!({ "sid": sid, "backchannel_logouts": queued }),
        )
        .await?;
        Ok(true)
    }

    /// Ends everything a user holds: every session (through [`Self::end_session`]) and every
    /// token, offline ones included. Used when an identity is suspended or closed.
    pub async fn revoke_user(&self, user_uuid: &str, reason: &str) -> Result<(), ServiceError> {
        for sid in self.db.open_sessions_of_user(user_uuid).await? {
            self.end_session(&sid, reason).await?;
        }
        let now = self.now();
        self.db
            .revoke_refresh_tokens_of_user(user_uuid, now)
            .await?;
        self.db.revoke_access_tokens_of_user(user_uuid, now).await?;
        Ok(())
    }
}

/// A sign-in's audit detail: the session, the authenticator, the AAL, and the agent binding
/// when the card signed through the agent.
fn login_detail(
    sid: &str,
    authenticator_id: &str,
    method: Method,
    agent_binding: Option<&str>,
) -> serde_json::Value {
    let mut detail = json!({ "sid": sid, "authenticator": authenticator_id, "aal": method.aal() });
    if let Some(binding) = agent_binding {
        detail["card_agent"] = json!(binding);
    }
    detail
}

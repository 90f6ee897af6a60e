//! Signing a user in: the authorization endpoint's decision (single sign-on from the session,
//! `prompt`, `max_age`, `acr_values`, or a new sign-in) and completing a sign-in with a
//! smartcard certificate, which creates or refreshes the session and issues the code.

use rustls_pki_types::CertificateDer;
use serde_json::json;

use super::assurance::{Method, MethodKind};
use super::authorize::{self, AuthorizationRequest, Params, RedirectError, UnsafeRequest};
use super::claims::CodeGrant;
use super::identity::UserStatus;
use super::provider::{Provider, ServiceError};
use super::rbac::{self, RoleClaim};
use super::secrets;
use super::session::Session;
use super::smartcard::CardRejection;
pub use crate::model::grant::{FlowStep, PendingFlow};
use crate::store::WriteSet;

/// The key a flow is stored under: the digest of its id, like every other bearer secret.
pub fn flow_key(flow_id: &str) -> String {
    secrets::digest(flow_id)
}

/// What the authorization endpoint does next.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// Send the browser to the (verified) redirect URI: with a code, or with an OAuth error.
    Redirect(String),
    /// The user must sign in; the flow id names the stored request.
    SignIn {
        flow_id: String,
        client_name: String,
        login_hint: Option<String>,
        /// The lowest AAL the requested `acr_values` accept: the page says what will do.
        minimum_aal: u8,
        /// The origin of the client's redirect URI: the page's forms may end there.
        return_to: String,
    },
    /// The request cannot be answered by a redirect: tell the person.
    Refuse(UnsafeRequest),
    /// Signed in already; a role must be chosen, or there is none.
    Continue(Next),
}

/// What follows a successful authentication.
#[derive(Debug)]
pub enum Next {
    /// Back to the client, with a code (or an OAuth error).
    Redirect(String),
    /// The user holds several current roles and must choose one (scope `selectedrole` or
    /// `changedrole`); the flow id names the stored request.
    ChooseRole {
        flow_id: String,
        roles: Vec<RoleClaim>,
        orgs: serde_json::Value,
        /// The role the picker starts on (the relying party's `role_hint`), if the user holds it.
        hinted: Option<String>,
        /// The origin of the client's redirect URI: the picker's form ends there.
        return_to: String,
    },
    /// Role selection was asked for but the user holds no current role: no tokens.
    NoRole,
    /// The user has not accepted the current terms and conditions; the flow id names the request.
    /// `return_to`: the origin of the client's redirect URI, where the form may end.
    AcceptTerms { flow_id: String, return_to: String },
}

/// What a card sign-in attempt ended with.
#[derive(Debug)]
pub enum CardLoginOutcome {
    /// Signed in: set the session cookie, then go on as `next` says.
    SignedIn {
        next: Next,
        session_secret: String,
    },
    Rejected(CardRejection),
    /// The sign-in request is unknown or has expired.
    FlowExpired,
}

/// The first current role a relying party's `role_hint` names: by `person_roleid`, or by the
/// national job role code at the end of `role_code`.
pub fn hinted_role(roles: &[RoleClaim], hint: Option<&str>) -> Option<String> {
    let hint = hint?.trim();
    roles
        .iter()
        .find(|r| r.person_roleid == hint || r.role_code.rsplit(':').next() == Some(hint))
        .map(|r| r.person_roleid.clone())
}

/// The origin (`scheme://host[:port]`) of a URI, for a page's `form-action`.
pub fn origin_of(uri: &str) -> String {
    url::Url::parse(uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// Appends parameters to a registered redirect URI without re-serialising it.
pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", s.finish())
}

/// What [`Provider::open_session`] prepared.
struct OpenedSession {
    session: Session,
    /// The new cookie secret.
    secret: String,
    /// Another user's session in this browser, to end once the sign-in has committed.
    replaced: Option<String>,
}

impl Provider {
    fn error_redirect(&self, redirect_uri: &str, state: Option<&str>, e: &RedirectError) -> String {
        let mut pairs = vec![
            ("error", e.error),
            ("error_description", e.description.as_str()),
        ];
        if let Some(state) = state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", self.config.issuer.as_str()));
        with_query(redirect_uri, &pairs)
    }

    /// The authorization endpoint (GET and POST share it).
    /// `browser` is the value of the browser-binding cookie (the HTTP layer makes one when
    /// the browser has none): the flows started here can be finished only by that browser.
    pub async fn authorize(
        &self,
        pairs: &[(String, String)],
        session_secret: Option<&str>,
        browser: &str,
    ) -> Result<AuthorizeOutcome, ServiceError> {
        let browser_hash = secrets::digest(browser);
        let params = Params::new(pairs);
        let (client_id, redirect_uri) = match authorize::client_and_redirect(&params) {
            Ok(v) => v,
            Err(e) => return Ok(AuthorizeOutcome::Refuse(e)),
        };
        let Some(client) = self.active_client(&client_id).await? else {
            return Ok(AuthorizeOutcome::Refuse(UnsafeRequest::UnknownClient));
        };
        let redirect_uri =
            match authorize::check_redirect(&client.metadata, redirect_uri.as_deref()) {
                Ok(uri) => uri,
                Err(e) => return Ok(AuthorizeOutcome::Refuse(e)),
            };
        let state = params.get("state").ok().flatten().map(String::from);
        let request = match authorize::validate(&params, &client.metadata, redirect_uri.clone()) {
            Ok(r) => r,
            Err(e) => {
                return Ok(AuthorizeOutcome::Redirect(self.error_redirect(
                    &redirect_uri,
                    state.as_deref(),
                    &e,
                )))
            }
        };
        if !request.acr.satisfiable() {
            let e = RedirectError {
                error: "unmet_authentication_requirements",
                description: "no sign-in method careid offers meets the requested acr_values"
                    .into(),
            };
            return Ok(AuthorizeOutcome::Redirect(self.error_redirect(
                &redirect_uri,
                state.as_deref(),
                &e,
            )));
        }
        let session = self.usable_session(session_secret).await?;
        let Ok(hint_sub) = self.hinted_subject(&request).await else {
            let e = RedirectError {
                error: "invalid_request",
                description: "id_token_hint is not a token careid issued".into(),
            };
            return Ok(AuthorizeOutcome::Redirect(self.error_redirect(
                &redirect_uri,
                state.as_deref(),
                &e,
            )));
        };
        let now = self.now();
        if let Some(session) =
            session.filter(|s| hint_sub.as_deref().is_none_or(|h| h == s.user_uuid))
        {
            let method = Method::from_session(&session.amr, session.aal);
            let acr = method
                .and_then(|m| request.acr.satisfied_by(m))
                .map(String::from);
            let fresh = session.fresh_enough(now, request.max_age);
            match (request.prompt.login, fresh, acr) {
                (false, true, Some(acr)) => {
                    let mut writes = WriteSet::new();
                    writes.touch_session(&session.sid, now);
                    let next = self
                        .complete(&request, &session, &acr, &browser_hash, &mut writes)
                        .await?;
                    self.db.commit(writes).await?;
                    return Ok(match next {
                        Next::Redirect(location) => AuthorizeOutcome::Redirect(location),
                        _ if request.prompt.none => {
                            let e = RedirectError {
                                error: "interaction_required",
                                description: "the user must accept the terms or choose a role"
                                    .into(),
                            };
                            AuthorizeOutcome::Redirect(self.error_redirect(
                                &redirect_uri,
                                state.as_deref(),
                                &e,
                            ))
                        }
                        next => AuthorizeOutcome::Continue(next),
                    });
                }
                (_, true, None) if request.prompt.none => {
                    let e = RedirectError {
                        error: "interaction_required",
                        description:
                            "the session's authentication does not meet the requested acr_values"
                                .into(),
                    };
                    return Ok(AuthorizeOutcome::Redirect(self.error_redirect(
                        &redirect_uri,
                        state.as_deref(),
                        &e,
                    )));
                }
                _ => {}
            }
        }
        if request.prompt.none {
            let e = RedirectError {
                error: "login_required",
                description: "the user is not signed in".into(),
            };
            return Ok(AuthorizeOutcome::Redirect(self.error_redirect(
                &redirect_uri,
                state.as_deref(),
                &e,
            )));
        }
        let mut writes = WriteSet::new();
        let flow_id =
            self.new_flow(&request, FlowStep::SignIn, &browser_hash, None, &mut writes)?;
        self.db.commit(writes).await?;
        Ok(AuthorizeOutcome::SignIn {
            flow_id,
            client_name: client.metadata.client_name,
            minimum_aal: request.acr.minimum_aal(),
            return_to: origin_of(&request.redirect_uri),
            login_hint: request.login_hint,
        })
    }

    /// The session behind a cookie secret, if it is still usable now.
    pub async fn usable_session(
        &self,
        session_secret: Option<&str>,
    ) -> Result<Option<Session>, ServiceError> {
        let Some(secret) = session_secret else {
            return Ok(None);
        };
        let session = self.db.session_by_secret(&secrets::digest(secret)).await?;
        Ok(session.filter(|s| s.is_usable(self.now(), self.config.session.idle_timeout_secs)))
    }

    /// The subject of the request's `id_token_hint`: None without a hint, Err when the hint is
    /// not a token careid issued.
    async fn hinted_subject(&self, request: &AuthorizationRequest) -> Result<Option<String>, ()> {
        let Some(hint) = request.id_token_hint.as_deref() else {
            return Ok(None);
        };
        self.verify_own_token(hint, "JWT")
            .await
            .ok()
            .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(String::from))
            .map(Some)
            .ok_or(())
    }

    /// Adds a pending flow to `writes` and returns its id (only its digest is stored).
    /// `session` is the authenticated session a role or terms step continues.
    fn new_flow(
        &self,
        request: &AuthorizationRequest,
        step: FlowStep,
        browser_hash: &str,
        session: Option<&Session>,
        writes: &mut WriteSet,
    ) -> Result<String, ServiceError> {
        let now = self.now();
        let flow_id = secrets::random_token();
        let flow = PendingFlow {
            request: request.clone(),
            step,
            browser_hash: Some(browser_hash.to_string()),
            sid: session.map(|s| s.sid.clone()),
            auth_time: session.map(|s| s.auth_time),
            created_at: now,
        };
        writes.insert_login_flow(
            &flow_key(&flow_id),
            &flow,
            now + self.config.tokens.login_flow_ttl_secs,
        )?;
        Ok(flow_id)
    }

    /// The pending flow `flow_id` names, if it has not expired, waits for `step` and was started
    /// in this browser (`browser`: its binding cookie). Anything else is None: a flow is not
    /// finished by another browser, nor by a step it was not made for.
    pub(crate) async fn pending_flow(
        &self,
        flow_id: &str,
        step: FlowStep,
        browser: Option<&str>,
    ) -> Result<Option<PendingFlow>, ServiceError> {
        let Some(flow) = self.db.login_flow(&flow_key(flow_id), self.now()).await? else {
            return Ok(None);
        };
        let same_browser = match (&flow.browser_hash, browser) {
            (Some(hash), Some(b)) => secrets::constant_time_eq(hash, &secrets::digest(b)),
            _ => false,
        };
        if flow.step != step || !same_browser {
            metrics::counter!("careid_login_flow_refusals_total", "reason" => if same_browser { "wrong_step" } else { "other_browser" }).increment(1);
            return Ok(None);
        }
        Ok(Some(flow))
    }

    /// Whether a role or terms step may go on with `session`: the very session and
    /// authentication the flow was made for (so `prompt=login` and `max_age`, checked when the
    /// flow was made, still hold), still fresh enough when the flow was made, and the subject
    /// the relying party's `id_token_hint` names.
    async fn continues(&self, flow: &PendingFlow, session: &Session) -> bool {
        flow.sid.as_deref() == Some(session.sid.as_str())
            && flow.auth_time == Some(session.auth_time)
            && session.fresh_enough(flow.created_at, flow.request.max_age)
            && self
                .hinted_subject(&flow.request)
                .await
                .is_ok_and(|h| h.is_none_or(|sub| sub == session.user_uuid))
    }

    /// Issues a single-use code for a signed-in session and returns the redirect to the client.
    fn issue_code(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        acr: &str,
        selected_roleid: Option<String>,
        writes: &mut WriteSet,
    ) -> Result<String, ServiceError> {
        let now = self.now();
        let code = secrets::random_token();
        let grant = CodeGrant {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            user_uuid: session.user_uuid.clone(),
            sid: session.sid.clone(),
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            acr: acr.to_string(),
            amr: session.amr.clone(),
            aal: session.aal,
            auth_time: session.auth_time,
            issued_at: now,
            selected_roleid,
        };
        writes.insert_code(
            &secrets::digest(&code),
            &grant,
            now + self.config.tokens.code_ttl_secs,
        )?;
        let session_state = secrets::s256(&format!("{} {}", request.client_id, session.sid));
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            pairs.push(("state", state));
        }
        pairs.extend([
            ("iss", self.config.issuer.as_str()),
            ("session_state", session_state.as_str()),
            ("client_id", request.client_id.as_str()),
        ]);
        Ok(with_query(&request.redirect_uri, &pairs))
    }

    /// Completes a pending sign-in with the presented certificate chain.
    pub async fn card_login(
        &self,
        flow_id: &str,
        chain: Option<&[CertificateDer<'_>]>,
        previous_secret: Option<&str>,
        browser: Option<&str>,
    ) -> Result<CardLoginOutcome, ServiceError> {
        let Some(flow) = self
            .pending_flow(flow_id, FlowStep::SignIn, browser)
            .await?
        else {
            return Ok(CardLoginOutcome::FlowExpired);
        };
        let request = &flow.request;
        let user_and_card = match self.check_card(chain.unwrap_or(&[])).await? {
            Ok(v) => v,
            Err(rejection) => {
                metrics::counter!("careid_logins_total", "method" => "smartcard", "outcome" => rejection.code()).increment(1);
                self.audit(
                    "login.smartcard",
                    rejection.code(),
                    None,
                    Some(&request.client_id),
                    json!({ "reason": rejection.to_string() }),
                )
                .await?;
                return Ok(CardLoginOutcome::Rejected(rejection));
            }
        };
        let (user_uuid, authenticator_id) = user_and_card;
        match self
            .sign_in_verified(
                &flow,
                &flow_key(flow_id),
                &user_uuid,
                &authenticator_id,
                Method::Smartcard,
                previous_secret,
            )
            .await?
        {
            Some((next, session_secret)) => Ok(CardLoginOutcome::SignedIn {
                next,
                session_secret,
            }),
            None => Ok(CardLoginOutcome::FlowExpired),
        }
    }

    /// A verified authentication for a pending sign-in, whatever the method: takes the flow
    /// (once; `None` if it was taken meanwhile), opens or refreshes the session, audits, and
    /// goes on to role selection and the code, or to `unmet_authentication_requirements`.
    pub(crate) async fn sign_in_verified(
        &self,
        flow: &PendingFlow,
        key: &str,
        user_uuid: &str,
        authenticator_id: &str,
        method: Method,
        previous_secret: Option<&str>,
    ) -> Result<Option<(Next, String)>, ServiceError> {
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
            .open_session(
                previous_secret,
                user_uuid,
                authenticator_id,
                method,
                &mut writes,
            )
            .await?;
        let label = match method.kind() {
            MethodKind::Smartcard => "smartcard",
            MethodKind::Fido2 => "webauthn",
        };
        writes.audit(self.audit_event(
            &format!("login.{label}"),
            "success",
            Some(user_uuid),
            Some(&request.client_id),
            json!({ "sid": session.sid, "authenticator": authenticator_id, "aal": method.aal() }),
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
        metrics::counter!("careid_logins_total", "method" => label, "outcome" => "success")
            .increment(1);
        Ok(Some((next, session_secret)))
    }

    /// Certificate → (user UUID, authenticator id), or why not.
    async fn check_card(
        &self,
        chain: &[CertificateDer<'_>],
    ) -> Result<Result<(String, String), CardRejection>, ServiceError> {
        let card = match self.card_trust.current().verify(chain, self.now()) {
            Ok(card) => card,
            Err(r) => {
                if r == CardRejection::RevocationListStale {
                    metrics::counter!("careid_smartcard_crl_stale_refusals_total").increment(1);
                    tracing::error!("a card sign-in was refused because a smartcard CRL is past its nextUpdate: distribute a fresh CRL");
                }
                return Ok(Err(r));
            }
        };
        let Some((authenticator, user_status)) =
            self.db.card_binding(&card.issuer, &card.serial).await?
        else {
            return Ok(Err(CardRejection::NotBound));
        };
        if !authenticator.is_active() {
            return Ok(Err(CardRejection::AuthenticatorRevoked));
        }
        if !authenticator.is_usable(self.now()) {
            return Ok(Err(CardRejection::TacExpired));
        }
        if user_status != Some(UserStatus::Active) {
            return Ok(Err(CardRejection::UserNotActive));
        }
        // A temporary access card's certificate names the TAC, not the person it is issued to.
        if authenticator.kind != "tac"
            && card
                .subject_uuid
                .as_deref()
                .is_some_and(|u| u != authenticator.user_uuid)
        {
            return Ok(Err(CardRejection::UuidMismatch));
        }
        Ok(Ok((authenticator.user_uuid, authenticator.id)))
    }

    /// After a successful authentication, adds to `writes`: the same user's usable session
    /// refreshed (same `sid`, new cookie secret), or a new session. Another user's session in
    /// this browser is named in `replaced`, for the caller to end once the set has committed (a
    /// sign-in that loses the race for its flow changes no session).
    async fn open_session(
        &self,
        previous_secret: Option<&str>,
        user_uuid: &str,
        authenticator_id: &str,
        method: Method,
        writes: &mut WriteSet,
    ) -> Result<OpenedSession, ServiceError> {
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
            "session.ended",
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

    /// After authentication: role selection when the client asked for it (CIS2 §8), then the code.
    /// One current role is chosen without asking; a role already chosen in this session is reused
    /// unless the client sent `changedrole`.
    async fn complete(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        acr: &str,
        browser_hash: &str,
        writes: &mut WriteSet,
    ) -> Result<Next, ServiceError> {
        if self
            .db
            .terms_accepted(&session.user_uuid, &self.config.terms.version)
            .await?
            .is_none()
        {
            let flow_id = self.new_flow(
                request,
                FlowStep::AcceptTerms,
                browser_hash,
                Some(session),
                writes,
            )?;
            return Ok(Next::AcceptTerms {
                flow_id,
                return_to: origin_of(&request.redirect_uri),
            });
        }
        if !request.has_scope("selectedrole") && !request.has_scope("changedrole") {
            return Ok(Next::Redirect(
                self.issue_code(request, session, acr, None, writes)?,
            ));
        }
        let roles = rbac::current_roles(&self.db, &session.user_uuid, self.now()).await?;
        if roles.is_empty() {
            writes.audit(self.audit_event(
                "login.role",
                "no_current_role",
                Some(&session.user_uuid),
                Some(&request.client_id),
                json!({ "sid": session.sid }),
            ));
            return Ok(Next::NoRole);
        }
        let chosen = self
            .db
            .selected_role(&session.sid)
            .await?
            .filter(|id| roles.iter().any(|r| &r.person_roleid == id));
        let selected = match (chosen, roles.as_slice()) {
            (Some(id), _) if !request.has_scope("changedrole") => Some(id),
            (_, [only]) => Some(only.person_roleid.clone()),
            _ => None,
        };
        if let Some(id) = selected {
            writes.set_selected_role(&session.sid, &id);
            return Ok(Next::Redirect(self.issue_code(
                request,
                session,
                acr,
                Some(id),
                writes,
            )?));
        }
        let flow_id = self.new_flow(
            request,
            FlowStep::ChooseRole,
            browser_hash,
            Some(session),
            writes,
        )?;
        let orgs = rbac::user_orgs(&self.db, &roles).await?;
        let hinted = hinted_role(&roles, request.role_hint.as_deref());
        Ok(Next::ChooseRole {
            flow_id,
            roles,
            orgs,
            hinted,
            return_to: origin_of(&request.redirect_uri),
        })
    }

    /// The role picker's answer: the chosen role must be one of the user's current roles.
    /// None when the sign-in (session or request) has expired.
    pub async fn choose_role(
        &self,
        flow_id: &str,
        person_roleid: &str,
        session_secret: Option<&str>,
        browser: Option<&str>,
    ) -> Result<Option<Next>, ServiceError> {
        let now = self.now();
        let (Some(session), Some(flow)) = (
            self.usable_session(session_secret).await?,
            self.pending_flow(flow_id, FlowStep::ChooseRole, browser)
                .await?,
        ) else {
            return Ok(None);
        };
        let request = &flow.request;
        let asked = request.has_scope("selectedrole") || request.has_scope("changedrole");
        let terms_current = self
            .db
            .terms_accepted(&session.user_uuid, &self.config.terms.version)
            .await?
            .is_some();
        if !asked || !terms_current || !self.continues(&flow, &session).await {
            return Ok(None);
        }
        let roles = rbac::current_roles(&self.db, &session.user_uuid, now).await?;
        if !roles.iter().any(|r| r.person_roleid == person_roleid) {
            let orgs = rbac::user_orgs(&self.db, &roles).await?;
            let hinted = hinted_role(&roles, request.role_hint.as_deref());
            return Ok(Some(Next::ChooseRole {
                flow_id: flow_id.into(),
                roles,
                orgs,
                hinted,
                return_to: origin_of(&request.redirect_uri),
            }));
        }
        let Some(acr) = Method::from_session(&session.amr, session.aal)
            .and_then(|m| request.acr.satisfied_by(m))
            .map(String::from)
        else {
            return Ok(None);
        };
        let mut writes = WriteSet::taking_login_flow(&flow_key(flow_id));
        writes.set_selected_role(&session.sid, person_roleid);
        writes.audit(self.audit_event(
            "login.role",
            "selected",
            Some(&session.user_uuid),
            Some(&request.client_id),
            json!({ "sid": session.sid, "person_roleid": person_roleid }),
        ));
        let location = self.issue_code(
            request,
            &session,
            &acr,
            Some(person_roleid.into()),
            &mut writes,
        )?;
        if self.db.commit_guarded(writes).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(Next::Redirect(location)))
    }

    /// The terms page's answer. Accepting records the version and time and carries on with the
    /// sign-in; declining sends `access_denied` to the client (no tokens).
    pub async fn answer_terms(
        &self,
        flow_id: &str,
        accept: bool,
        session_secret: Option<&str>,
        browser: Option<&str>,
    ) -> Result<Option<Next>, ServiceError> {
        let now = self.now();
        let (Some(session), Some(flow)) = (
            self.usable_session(session_secret).await?,
            self.pending_flow(flow_id, FlowStep::AcceptTerms, browser)
                .await?,
        ) else {
            return Ok(None);
        };
        if !self.continues(&flow, &session).await {
            return Ok(None);
        }
        let request = &flow.request;
        if !self.db.take_login_flow(&flow_key(flow_id)).await? {
            return Ok(None);
        }
        let version = self.config.terms.version.clone();
        if !accept {
            self.audit(
                "terms.declined",
                "declined",
                Some(&session.user_uuid),
                Some(&request.client_id),
                json!({ "version": version }),
            )
            .await?;
            let e = RedirectError {
                error: "access_denied",
                description: "the user did not accept the terms and conditions".into(),
            };
            return Ok(Some(Next::Redirect(self.error_redirect(
                &request.redirect_uri,
                request.state.as_deref(),
                &e,
            ))));
        }
        self.db
            .record_terms_acceptance(&session.user_uuid, &version, now)
            .await?;
        self.audit(
            "terms.accepted",
            "success",
            Some(&session.user_uuid),
            Some(&request.client_id),
            json!({ "version": version }),
        )
        .await?;
        let Some(acr) = Method::from_session(&session.amr, session.aal)
            .and_then(|m| request.acr.satisfied_by(m))
            .map(String::from)
        else {
            return Ok(None);
        };
        let mut writes = WriteSet::new();
        let browser_hash = flow.browser_hash.clone().unwrap_or_default();
        let next = self
            .complete(request, &session, &acr, &browser_hash, &mut writes)
            .await?;
        self.db.commit(writes).await?;
        Ok(Some(next))
    }
}

//! Signing a user in: the authorization endpoint's decision (single sign-on from the session,
//! `prompt`, `max_age`, `acr_values`, or a new sign-in) and completing a sign-in with a
//! smartcard certificate, which creates or refreshes the session and issues the code.

use rustls_pki_types::CertificateDer;
use serde_json::json;

use super::authorize::{self, AuthorizationRequest, Params, RedirectError, UnsafeRequest};
use super::claims::CodeGrant;
use super::provider::{Provider, ServiceError};
use super::rbac::{self, RoleClaim};
use super::secrets;
use super::smartcard::CardRejection;
use crate::model::assurance::{Method, MethodKind};
pub use crate::model::grant::{FlowStep, PendingFlow};
use crate::model::identity::UserStatus;
use crate::model::session::Session;
use crate::store::WriteSet;

mod agent;
mod card;
mod flow;
mod session;
mod steps;

pub use agent::{AgentCode, AgentFlowState};
pub use flow::flow_key;

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

impl Provider {
    pub(super) fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        e: &RedirectError,
    ) -> String {
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

    /// The sign-in page of a pending flow again (after a refused security key, say): the same
    /// flow, still waiting for its sign-in step, from the browser that started it. None when it
    /// has expired, moved on or belongs to another browser.
    pub async fn resume_sign_in(
        &self,
        flow_id: &str,
        browser: Option<&str>,
    ) -> Result<Option<AuthorizeOutcome>, ServiceError> {
        let Some(flow) = self
            .pending_flow(flow_id, FlowStep::SignIn, browser)
            .await?
        else {
            return Ok(None);
        };
        let Some(client) = self.active_client(&flow.request.client_id).await? else {
            return Ok(None);
        };
        let request = flow.request;
        Ok(Some(AuthorizeOutcome::SignIn {
            flow_id: flow_id.to_string(),
            client_name: client.metadata.client_name,
            minimum_aal: request.acr.minimum_aal(),
            return_to: origin_of(&request.redirect_uri),
            login_hint: request.login_hint,
        }))
    }

    /// The session behind a cookie secret, if it is still usable now.
    /// The roles a session may use: the person's current roles, and for a session opened with a
    /// temporary access card only those the RA chose for it (none unless chosen; policy 002
    /// section 6.3).
    pub async fn session_roles(
        &self,
        user_uuid: &str,
        authenticator_id: &str,
    ) -> Result<Vec<RoleClaim>, ServiceError> {
        let mut roles = rbac::current_roles(&self.db, user_uuid, self.now()).await?;
        if let Some(tac) = self.db.tac_issue_of_authenticator(authenticator_id).await? {
            roles.retain(|r| tac.person_roleids.contains(&r.person_roleid));
        }
        Ok(roles)
    }

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
    pub(super) async fn hinted_subject(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Option<String>, ()> {
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

    /// Issues a single-use code for a signed-in session and returns the redirect to the client.
    pub(super) fn issue_code(
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(person_roleid: &str, role_code: &str) -> RoleClaim {
        RoleClaim {
            person_orgid: "o".into(),
            person_roleid: person_roleid.into(),
            org_code: "RZ9".into(),
            role_name: "r".into(),
            role_code: role_code.into(),
            activities: vec![],
            activity_codes: vec![],
            workgroups: vec![],
            workgroups_codes: vec![],
            aow: vec![],
            aow_codes: vec![],
        }
    }

    #[test]
    fn a_role_hint_names_a_held_role_by_id_or_job_role() {
        let roles = [role("111", "S1:G1:R8000"), role("222", "S2:G2:R8003")];
        assert_eq!(hinted_role(&roles, Some("222")).as_deref(), Some("222"));
        assert_eq!(hinted_role(&roles, Some(" R8003 ")).as_deref(), Some("222"));
        assert_eq!(hinted_role(&roles, Some("R9999")), None, "a role not held");
        assert_eq!(hinted_role(&roles, None), None);
    }

    #[test]
    fn parameters_are_appended_to_the_registered_uri_as_it_is() {
        assert_eq!(
            with_query(
                "https://rp.example/cb",
                &[("code", "a b"), ("state", "s&t")]
            ),
            "https://rp.example/cb?code=a+b&state=s%26t"
        );
        assert_eq!(
            with_query("https://rp.example/cb?tenant=7", &[("code", "c")]),
            "https://rp.example/cb?tenant=7&code=c"
        );
    }

    #[test]
    fn a_form_target_is_the_origin_of_the_redirect_uri() {
        assert_eq!(
            origin_of("https://rp.example:8443/cb?x=1"),
            "https://rp.example:8443"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/callback"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin_of("not a uri"), "");
    }
}

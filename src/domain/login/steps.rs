//! What follows authentication before the code: the terms page and the role picker, each
//! re-checking the flow it continues.

use super::*;
use crate::model::audit::AuditKind;

impl Provider {
    /// After authentication: role selection when the client asked for it (CIS2 §8), then the code.
    /// One current role is chosen without asking; a role already chosen in this session is reused
    /// unless the client sent `changedrole`.
    pub(super) async fn complete(
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
                AuditKind::LoginRole,
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
        let Some((session, flow)) = self
            .continuation(flow_id, FlowStep::ChooseRole, session_secret, browser)
            .await?
        else {
            return Ok(None);
        };
        let request = &flow.request;
        let asked = request.has_scope("selectedrole") || request.has_scope("changedrole");
        let terms_current = self
            .db
            .terms_accepted(&session.user_uuid, &self.config.terms.version)
            .await?
            .is_some();
        if !asked || !terms_current {
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
            AuditKind::LoginRole,
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
        let Some((session, flow)) = self
            .continuation(flow_id, FlowStep::AcceptTerms, session_secret, browser)
            .await?
        else {
            return Ok(None);
        };
        let request = &flow.request;
        if !self.db.take_login_flow(&flow_key(flow_id)).await? {
            return Ok(None);
        }
        let version = self.config.terms.version.clone();
        if !accept {
            self.audit(
                AuditKind::TermsDeclined,
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
            AuditKind::TermsAccepted,
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

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
        // Integration clients take test identities only; test identities nothing else.
        if let Some(why) = self
            .stage_refusal(&request.client_id, &session.user_uuid)
            .await?
        {
            writes.audit(self.audit_event(
                AuditKind::LoginStageRefused,
                "refused",
                Some(&session.user_uuid),
                Some(&request.client_id),
                json!({ "reason": why }),
            ));
            let e = RedirectError {
                error: "access_denied",
                description: why.into(),
            };
            return Ok(Next::Redirect(self.error_redirect(
                &request.redirect_uri,
                request.state.as_deref(),
                &e,
            )));
        }
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
        let roles = self
            .session_roles(&session.user_uuid, &session.authenticator_id)
            .await?;
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
        let roles = self
            .session_roles(&session.user_uuid, &session.authenticator_id)
            .await?;
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

#[cfg(test)]
mod tests {
    //! The steps after authentication, on a real (SQLite) store and a manual clock: terms first,
    //! then the code at once, or the role: none, one (chosen without asking), several (the
    //! picker), and a chosen role reused until `changedrole`.

    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::Config;
    use crate::domain::smartcard::CardTrust;
    use crate::domain::webauthn::policy::AttestationPolicy;
    use crate::model::assurance::AcrRequest;
    use crate::model::grant::Prompt;
    use crate::model::identity::User;
    use crate::store::Db;

    const SAMPLE: &str = include_str!("../../../config/rbac-sample.json");
    const UUID: &str = "970000000001";

    struct Fixture {
        provider: Provider,
        _dir: tempfile::TempDir,
    }

    async fn fixture(terms: bool, positions: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/steps.db", dir.path().display()), 2)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let clock = ManualClock::starting_now();
        let now = clock.now();
        let config = Config::default();
        let user = User {
            uuid: UUID.into(),
            title: None,
            given_name: "Sam".into(),
            middle_names: None,
            family_name: "Steps".into(),
            email: None,
            id_assurance_level: 3,
            status: UserStatus::Active,
        };
        crate::domain::registry::create_user(&db, &user, "test", now)
            .await
            .unwrap();
        if terms {
            db.record_terms_acceptance(UUID, &config.terms.version, now)
                .await
                .unwrap();
        }
        rbac::import(&db, SAMPLE, "test", now).await.unwrap();
        for (org, name) in positions {
            let id = db.position_by_name(org, name).await.unwrap().unwrap();
            rbac::assign_position(&db, UUID, &id, now - 60, None, "test", now)
                .await
                .unwrap();
        }
        let mut writes = WriteSet::new();
        writes.insert_session("secret-digest", &session(now));
        db.commit(writes).await.unwrap();
        let provider = Provider::new(
            db,
            Arc::new(clock),
            config,
            CardTrust::default(),
            AttestationPolicy::default(),
        );
        Fixture {
            provider,
            _dir: dir,
        }
    }

    const WARD: (&str, &str) = ("RZ9", "Staff Nurse - Example Ward 7");
    const IMMUNISER: (&str, &str) = ("RZ8", "Immunisation Nurse (inter-organisation)");

    fn request(scopes: &[&str]) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "123456789012.apps.national".into(),
            redirect_uri: "https://rp.example/callback".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            state: Some("s".into()),
            nonce: None,
            code_challenge: None,
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
            id_token_hint: None,
            acr: AcrRequest::parse(None),
            role_hint: None,
        }
    }

    fn session(now: i64) -> Session {
        Session {
            sid: "sid-1".into(),
            user_uuid: UUID.into(),
            authenticator_id: "card-1".into(),
            amr: "N3_SMARTCARD".into(),
            aal: 3,
            auth_time: now,
            created_at: now,
            last_seen_at: now,
            absolute_expiry: now + 3600,
            ended_at: None,
        }
    }

    async fn next(f: &Fixture, scopes: &[&str]) -> Next {
        let p = &f.provider;
        let mut writes = WriteSet::new();
        let next = p
            .complete(
                &request(scopes),
                &session(p.now()),
                "AAL3_ANY",
                "browser",
                &mut writes,
            )
            .await
            .unwrap();
        p.db.commit(writes).await.unwrap();
        next
    }

    #[tokio::test]
    async fn the_terms_come_before_any_code_or_role() {
        let f = fixture(false, &[WARD]).await;
        match next(&f, &["openid", "selectedrole"]).await {
            Next::AcceptTerms { return_to, .. } => assert_eq!(return_to, "https://rp.example"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn without_role_selection_the_code_is_issued_at_once() {
        let f = fixture(true, &[WARD, IMMUNISER]).await;
        match next(&f, &["openid"]).await {
            Next::Redirect(to) => {
                assert!(to.starts_with("https://rp.example/callback?code="), "{to}");
                assert!(to.contains("&state=s&iss="), "{to}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn role_selection_without_a_current_role_gives_no_tokens() {
        let f = fixture(true, &[]).await;
        assert!(matches!(
            next(&f, &["openid", "selectedrole"]).await,
            Next::NoRole
        ));
        let events = f.provider.db.recent_audit(5).await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.kind == "login.role" && e.outcome == "no_current_role"),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn one_role_is_chosen_without_asking_and_several_are_offered() {
        let one = fixture(true, &[WARD]).await;
        assert!(matches!(
            next(&one, &["openid", "selectedrole"]).await,
            Next::Redirect(_)
        ));
        assert!(one
            .provider
            .db
            .selected_role("sid-1")
            .await
            .unwrap()
            .is_some());

        let two = fixture(true, &[WARD, IMMUNISER]).await;
        match next(&two, &["openid", "selectedrole"]).await {
            Next::ChooseRole { roles, hinted, .. } => {
                assert_eq!(roles.len(), 2);
                assert_eq!(hinted, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_chosen_role_is_reused_until_changedrole_asks_again() {
        let f = fixture(true, &[WARD, IMMUNISER]).await;
        let roles = rbac::current_roles(&f.provider.db, UUID, f.provider.now())
            .await
            .unwrap();
        let mut writes = WriteSet::new();
        writes.set_selected_role("sid-1", &roles[1].person_roleid);
        f.provider.db.commit(writes).await.unwrap();
        assert!(matches!(
            next(&f, &["openid", "selectedrole"]).await,
            Next::Redirect(_)
        ));
        assert!(matches!(
            next(&f, &["openid", "changedrole"]).await,
            Next::ChooseRole { .. }
        ));
    }
}

//! Pending sign-ins between steps: stored under the digest of their id, bound to the browser
//! that started them and to their step, and (for the role and terms steps) to the session and
//! `auth_time` they continue.

use super::*;

/// The key a flow is stored under: the digest of its id, like every other bearer secret.
pub fn flow_key(flow_id: &str) -> String {
    secrets::digest(flow_id)
}

impl Provider {
    /// Adds a pending flow to `writes` and returns its id (only its digest is stored).
    /// `session` is the authenticated session a role or terms step continues.
    pub(super) fn new_flow(
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

    /// The usable session and the pending flow a role or terms step continues: the flow at
    /// `step`, from this browser, made for this very session and authentication (`continues`).
    /// None when any of that fails.
    pub(super) async fn continuation(
        &self,
        flow_id: &str,
        step: FlowStep,
        session_secret: Option<&str>,
        browser: Option<&str>,
    ) -> Result<Option<(Session, PendingFlow)>, ServiceError> {
        let (Some(session), Some(flow)) = (
            self.usable_session(session_secret).await?,
            self.pending_flow(flow_id, step, browser).await?,
        ) else {
            return Ok(None);
        };
        Ok(self
            .continues(&flow, &session)
            .await
            .then_some((session, flow)))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_is_stored_under_a_digest_of_its_id() {
        let id = secrets::random_token();
        let key = flow_key(&id);
        assert_ne!(key, id);
        assert_eq!(key, flow_key(&id), "the same id finds the same row");
        assert_ne!(key, flow_key(&secrets::random_token()));
        assert!(!key.contains(&id));
    }

    #[test]
    fn steps_are_stored_by_name_and_read_back() {
        for step in [
            FlowStep::SignIn,
            FlowStep::ChooseRole,
            FlowStep::AcceptTerms,
        ] {
            assert_eq!(FlowStep::parse(step.as_str()), Some(step));
        }
        assert_eq!(FlowStep::parse("code"), None, "an unknown step is no step");
    }
}

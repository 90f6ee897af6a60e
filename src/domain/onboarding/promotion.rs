//! From integration to production: the supplier asks (with the registration access token);
//! careid runs the conformance checks again and queues the request only if they pass; an
//! onboarding manager who is not a developer of that supplier approves or refuses it. Both
//! steps are audited, and the client changes stage in the same transaction as the decision.

use serde_json::json;

use super::checks::at_stage;
use super::{OnboardingCaller, OnboardingError, Provider};
use crate::domain::client::Stage;
use crate::model::audit::AuditKind;
use crate::model::client::Client;
use crate::model::onboarding::{ConformanceReport, PromotionRequest, SupplierClient};
use crate::store::WriteSet;

/// What asking for promotion led to.
#[derive(Debug)]
pub enum PromotionAsked {
    /// Queued for an onboarding manager.
    Queued(PromotionRequest),
    /// A check failed: nothing queued; the report says what to fix.
    ChecksFailed(ConformanceReport),
}

impl Provider {
    pub async fn request_promotion(
        &self,
        client_id: &str,
        registration_token: Option<&str>,
    ) -> Result<PromotionAsked, OnboardingError> {
        let (client, onboarding) = self
            .registered_client(client_id, registration_token)
            .await?;
        self.ask_promotion(&client, &onboarding).await
    }

    /// Runs the checks on a supplier's client and queues its promotion if they pass.
    pub async fn ask_promotion(
        &self,
        client: &Client,
        onboarding: &SupplierClient,
    ) -> Result<PromotionAsked, OnboardingError> {
        let client_id = client.metadata.client_id.as_str();
        if !at_stage(client, Stage::Integration) {
            return Err(OnboardingError::Conflict(
                "the client is in production already".into(),
            ));
        }
        if self
            .db
            .open_promotion_requests()
            .await?
            .iter()
            .any(|p| p.client_id == client_id)
        {
            return Err(OnboardingError::Conflict(
                "a promotion request for this client is waiting already".into(),
            ));
        }
        let report = self.check_client(client, onboarding).await?;
        if !report.passed {
            return Ok(PromotionAsked::ChecksFailed(report));
        }
        let request = PromotionRequest {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: client_id.to_string(),
            report_id: report.id.clone(),
            requested_by: format!("supplier:{}", onboarding.supplier_id),
            requested_at: self.now(),
            decided_by: None,
            decided_at: None,
            outcome: None,
            reason: None,
        };
        self.db.insert_promotion_request(&request).await?;
        self.audit(
            AuditKind::OnboardingPromotionRequested,
            "queued",
            None,
            Some(client_id),
            json!({ "request": request.id, "report": report.id }),
        )
        .await?;
        Ok(PromotionAsked::Queued(request))
    }

    /// The onboarding managers' queue, with each request's client and supplier.
    pub async fn promotion_queue(
        &self,
        caller: &OnboardingCaller,
    ) -> Result<Vec<PromotionRequest>, OnboardingError> {
        if !caller.manager {
            return Err(OnboardingError::Forbidden(
                "only onboarding managers see the promotion queue".into(),
            ));
        }
        Ok(self.db.open_promotion_requests().await?)
    }

    /// An onboarding manager approves (the client goes to production) or refuses a request.
    /// Refused: the caller is not a manager, or develops for the client's supplier; the request
    /// was decided already; approving a request whose evidence is older than the test-sign-in
    /// window (run the checks again).
    pub async fn decide_promotion(
        &self,
        caller: &OnboardingCaller,
        request_id: &str,
        approve: bool,
        reason: &str,
    ) -> Result<PromotionRequest, OnboardingError> {
        if !caller.manager {
            return Err(OnboardingError::Forbidden(
                "only onboarding managers decide promotions".into(),
            ));
        }
        let request = self
            .db
            .promotion_request(request_id)
            .await?
            .ok_or_else(|| OnboardingError::NotFound("no such promotion request".into()))?;
        let onboarding = self
            .db
            .supplier_client(&request.client_id)
            .await?
            .ok_or_else(|| OnboardingError::NotFound("the client is gone".into()))?;
        if caller.develops_for(&onboarding.supplier_id) {
            return Err(OnboardingError::Forbidden(
                "a supplier's own developer cannot approve its client: another onboarding manager must".into(),
            ));
        }
        if reason.trim().is_empty() {
            return Err(OnboardingError::Invalid(
                "give a reason for the decision".into(),
            ));
        }
        let now = self.now();
        let mut client = self
            .db
            .client(&request.client_id)
            .await?
            .filter(|c| c.active)
            .ok_or_else(|| OnboardingError::NotFound("the client is gone".into()))?;
        if approve && now - request.requested_at > self.config.onboarding.test_sign_in_max_age_secs
        {
            return Err(OnboardingError::Conflict(
                "the evidence is too old: the supplier must run the checks and ask again".into(),
            ));
        }
        let outcome = if approve { "approved" } else { "refused" };
        let mut writes =
            WriteSet::decide_promotion(request_id, &caller.uuid, now, outcome, reason.trim());
        if approve {
            client.metadata.careid_stage = Some(Stage::Production);
            writes.promote_client(
                &request.client_id,
                serde_json::to_string(&client.metadata).map_err(crate::store::StoreError::from)?,
                &caller.uuid,
                now,
            );
        }
        writes.audit(self.audit_event(
            AuditKind::OnboardingPromotionDecided,
            outcome,
            Some(&caller.uuid),
            Some(&request.client_id),
            json!({ "request": request_id, "report": request.report_id, "reason": reason.trim() }),
        ));
        if self.db.commit_guarded(writes).await?.is_none() {
            return Err(OnboardingError::Conflict(
                "the request was decided already".into(),
            ));
        }
        self.forget_client(&request.client_id);
        Ok(self
            .db
            .promotion_request(request_id)
            .await?
            .unwrap_or(request))
    }
}

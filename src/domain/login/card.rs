//! The smartcard step: a presented certificate chain, checked against the trust and the bound
//! authenticator, completes a pending sign-in.

use super::*;
use crate::model::audit::AuditKind;
use crate::model::identity::{Authenticator, AuthenticatorKind, AuthenticatorStatus};

impl Provider {
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
                    AuditKind::LoginSmartcard,
                    rejection.code(),
                    None,
                    Some(&request.client_id),
                    json!({ "reason": rejection.to_string() }),
                )
                .await?;
                return Ok(CardLoginOutcome::Rejected(rejection));
            }
        };
        let authenticator = user_and_card;
        match self
            .sign_in_verified(
                &flow,
                &flow_key(flow_id),
                &authenticator,
                Method::Smartcard,
                previous_secret,
                None,
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

    /// Certificate → the bound authenticator (its person, its id, a TAC's end), or why not.
    pub(super) async fn check_card(
        &self,
        chain: &[CertificateDer<'_>],
    ) -> Result<Result<Authenticator, CardRejection>, ServiceError> {
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
        if let Err(r) = card_usable(&authenticator, user_status, self.now()) {
            return Ok(Err(r));
        }
        // A temporary access card's certificate names the TAC, not the person it is issued to.
        if authenticator.kind != AuthenticatorKind::Tac
            && card
                .subject_uuid
                .as_deref()
                .is_some_and(|u| u != authenticator.user_uuid)
        {
            return Ok(Err(CardRejection::UuidMismatch));
        }
        Ok(Ok(authenticator))
    }
}

/// Whether a bound card may sign its person in now: the card active (not suspended, revoked, or
/// a lapsed TAC) and its person active.
pub(super) fn card_usable(
    authenticator: &Authenticator,
    user_status: Option<UserStatus>,
    now: crate::clock::UnixTime,
) -> Result<(), CardRejection> {
    if authenticator.status == AuthenticatorStatus::Suspended {
        return Err(CardRejection::AuthenticatorSuspended);
    }
    if !authenticator.is_active() {
        return Err(CardRejection::AuthenticatorRevoked);
    }
    if !authenticator.is_usable(now) {
        return Err(CardRejection::TacExpired);
    }
    if user_status != Some(UserStatus::Active) {
        return Err(CardRejection::UserNotActive);
    }
    Ok(())
}

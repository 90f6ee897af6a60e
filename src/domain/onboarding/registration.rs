//! Dynamic client registration (RFC 7591) with an initial access token, and client
//! configuration (RFC 7592) with the registration access token it returns: read, update,
//! delete, and (careid's extension) secret rotation with an overlap window. Ids and secrets are
//! made by careid; a supplier's client starts in `integration`.

use serde_json::json;

use super::{OnboardingError, Provider};
use crate::domain::client::{self, ClientRequest, NewClient, RegistrationError, Stage};
use crate::domain::secrets;
use crate::model::audit::AuditKind;
use crate::model::client::Client;
use crate::model::onboarding::{RegistrationRequest, SupplierClient};
use crate::store::WriteSet;

/// A registration's answer: the client (with its secret, shown once) and the registration
/// access token for RFC 7592.
#[derive(Debug)]
pub struct Registered {
    pub client: NewClient,
    pub registration_access_token: Option<String>,
}

fn client_request(req: &RegistrationRequest) -> ClientRequest {
    ClientRequest {
        client_name: req.client_name.clone(),
        redirect_uris: req.redirect_uris.clone(),
        post_logout_redirect_uris: req.post_logout_redirect_uris.clone(),
        backchannel_logout_uri: req.backchannel_logout_uri.clone(),
        auth_method: req.token_endpoint_auth_method.clone(),
        jwks_uri: req.jwks_uri.clone(),
        jwks: req.jwks.clone(),
        grant_types: req.grant_types.clone(),
        scopes: req
            .scope
            .as_deref()
            .map(|s| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default(),
        id_token_signing_alg: req.id_token_signed_response_alg.clone(),
        token_endpoint_auth_signing_alg: req.token_endpoint_auth_signing_alg.clone(),
        ..Default::default()
    }
}

fn metadata_error(m: String) -> OnboardingError {
    OnboardingError::Metadata(RegistrationError::Metadata(m))
}

impl Provider {
    /// What a stage allows beyond the registration rules every client follows: in
    /// integration no production-only scope; in production https redirect URIs only.
    fn check_stage(&self, req: &RegistrationRequest, stage: Stage) -> Result<(), OnboardingError> {
        if !req.response_types.is_empty() && req.response_types != ["code"] {
            return Err(metadata_error(
                "response_types: careid issues codes only".into(),
            ));
        }
        let scopes = req.scope.as_deref().unwrap_or("");
        if stage == Stage::Integration {
            let only_live = &self.config.onboarding.production_only_scopes;
            if let Some(s) = scopes
                .split_whitespace()
                .find(|s| only_live.iter().any(|p| p == s))
            {
                return Err(metadata_error(format!(
                    "{s} is for production clients only; register without it, and ask for it when the client is promoted"
                )));
            }
        }
        if stage == Stage::Production {
            if let Some(uri) = req
                .redirect_uris
                .iter()
                .find(|u| !u.starts_with("https://"))
            {
                return Err(OnboardingError::Metadata(RegistrationError::RedirectUri(
                    format!("{uri}: production clients redirect to https only"),
                )));
            }
        }
        Ok(())
    }

    /// RFC 7591: registers a supplier's client with an initial access token (used once).
    pub async fn register_by_supplier(
        &self,
        initial_token: Option<&str>,
        req: &RegistrationRequest,
    ) -> Result<Registered, OnboardingError> {
        let invalid = || {
            OnboardingError::InvalidToken(
                "the initial access token is unknown, used or expired".into(),
            )
        };
        let token = initial_token.ok_or_else(invalid)?;
        let now = self.now();
        let token_hash = secrets::digest(token);
        let supplier_id = self
            .db
            .initial_access_token(&token_hash, now)
            .await?
            .ok_or_else(invalid)?;
        self.check_stage(req, Stage::Integration)?;
        let mut new = client::register(client_request(req), now)?;
        new.client.metadata.careid_stage = Some(Stage::Integration);
        let registration_token = secrets::random_token();
        let onboarding = SupplierClient {
            client_id: new.client.metadata.client_id.clone(),
            supplier_id: supplier_id.clone(),
            scope_justification: req.scope_justification.clone().unwrap_or_default(),
            last_test_sign_in_at: None,
            created_at: now,
            promoted_at: None,
            promoted_by: None,
        };
        let mut writes = WriteSet::register_supplier_client(
            &token_hash,
            &new.client,
            &onboarding,
            &secrets::digest(&registration_token),
            now,
        )?;
        writes.audit(self.audit_event(
            AuditKind::OnboardingClientRegistered,
            "integration",
            None,
            Some(&onboarding.client_id),
            json!({ "supplier": supplier_id, "client_name": new.client.metadata.client_name }),
        ));
        if self.db.commit_guarded(writes).await?.is_none() {
            return Err(invalid());
        }
        Ok(Registered {
            client: new,
            registration_access_token: Some(registration_token),
        })
    }

    /// The client a registration access token manages, checked against the path's client id.
    pub async fn registered_client(
        &self,
        client_id: &str,
        registration_token: Option<&str>,
    ) -> Result<(Client, SupplierClient), OnboardingError> {
        let invalid = || {
            OnboardingError::InvalidToken(
                "the registration access token is not valid for this client".into(),
            )
        };
        let token = registration_token.ok_or_else(invalid)?;
        let onboarding = self
            .db
            .supplier_client_by_token(&secrets::digest(token))
            .await?
            .filter(|s| s.client_id == client_id)
            .ok_or_else(invalid)?;
        let client = self
            .db
            .client(client_id)
            .await?
            .filter(|c| c.active)
            .ok_or_else(invalid)?;
        Ok((client, onboarding))
    }

    /// RFC 7592 update: the whole metadata again. The authentication method stays (register a
    /// new client to change it); in production, the redirect URIs, scopes, grant types,
    /// back-channel URI and `jwks_uri` stay too (they were checked for the promotion).
    pub async fn update_registration(
        &self,
        client_id: &str,
        registration_token: Option<&str>,
        req: &RegistrationRequest,
    ) -> Result<Client, OnboardingError> {
        let (current, _) = self
            .registered_client(client_id, registration_token)
            .await?;
        if req.client_id.as_deref().is_some_and(|id| id != client_id) {
            return Err(metadata_error(
                "client_id does not match the client being updated".into(),
            ));
        }
        let stage = current.metadata.careid_stage.unwrap_or(Stage::Production);
        self.check_stage(req, stage)?;
        let mut updated = client::register(client_request(req), self.now())?.client;
        let old = &current.metadata;
        let new = &mut updated.metadata;
        if new.token_endpoint_auth_method != old.token_endpoint_auth_method {
            return Err(metadata_error(
                "token_endpoint_auth_method cannot change: register a new client".into(),
            ));
        }
        if stage == Stage::Production
            && (new.redirect_uris != old.redirect_uris
                || new.scope != old.scope
                || new.grant_types != old.grant_types
                || new.backchannel_logout_uri != old.backchannel_logout_uri
                || new.jwks_uri != old.jwks_uri)
        {
            return Err(metadata_error(
                "a production client keeps the redirect URIs, scopes, grant types, back-channel URI and jwks_uri it was approved with: register a new client for changes".into(),
            ));
        }
        new.client_id = old.client_id.clone();
        new.client_id_issued_at = old.client_id_issued_at;
        new.careid_stage = old.careid_stage;
        self.db.set_client_metadata(new).await?;
        if let Some(text) = &req.scope_justification {
            self.db.set_scope_justification(client_id, text).await?;
        }
        self.forget_client(client_id);
        self.audit(
            AuditKind::OnboardingClientUpdated,
            stage.as_str(),
            None,
            Some(client_id),
            json!({}),
        )
        .await?;
        updated.secret_digest = current.secret_digest;
        updated.previous_secret = current.previous_secret;
        Ok(updated)
    }

    /// RFC 7592 delete: the client stops working, and so does its registration access token.
    pub async fn delete_registration(
        &self,
        client_id: &str,
        registration_token: Option<&str>,
    ) -> Result<(), OnboardingError> {
        self.registered_client(client_id, registration_token)
            .await?;
        self.db.delete_supplier_client(client_id).await?;
        self.forget_client(client_id);
        self.audit(
            AuditKind::OnboardingClientDeleted,
            "deleted",
            None,
            Some(client_id),
            json!({}),
        )
        .await?;
        Ok(())
    }

    /// A new client secret (shown once); the old one works until the overlap window closes.
    pub async fn rotate_registered_secret(
        &self,
        client_id: &str,
        registration_token: Option<&str>,
    ) -> Result<(String, i64), OnboardingError> {
        let (client, _) = self
            .registered_client(client_id, registration_token)
            .await?;
        self.rotate_secret_of(&client, None).await
    }

    /// A new secret for `client` (shown once); the old one works until the overlap window
    /// closes. `by`: the developer, when it comes from the pages.
    pub async fn rotate_secret_of(
        &self,
        client: &Client,
        by: Option<&str>,
    ) -> Result<(String, i64), OnboardingError> {
        let client_id = client.metadata.client_id.as_str();
        if !client.metadata.token_endpoint_auth_method.uses_secret() {
            return Err(OnboardingError::Invalid(
                "this client does not authenticate with a secret".into(),
            ));
        }
        let secret = secrets::random_token();
        let overlap_until = self.now() + self.config.onboarding.secret_overlap_secs;
        self.db
            .rotate_client_secret(client_id, &secrets::digest(&secret), overlap_until)
            .await?;
        self.forget_client(client_id);
        self.audit(
            AuditKind::OnboardingSecretRotated,
            "rotated",
            by,
            Some(client_id),
            json!({ "old_secret_until": overlap_until }),
        )
        .await?;
        Ok((secret, overlap_until))
    }
}

//! The onboarding pages' sign-in and sessions, and the developer's actions on a client from
//! those pages. The portal is careid's own tool `careid-onboarding` (public, PKCE, scope
//! `openid careid:admin`, AAL2 or above: suppliers' developers may sign in with a passkey),
//! signed in like the RA console (`domain/console.rs`), its sessions kept in the same table;
//! every request presents the session's access token to [`Provider::onboarding_caller`].

use serde_json::{json, Value};

use super::{OnboardingCaller, OnboardingError, Provider};
use crate::domain::client::{self, AuthMethod, ClientRequest, ADMIN_SCOPE};
use crate::domain::console::{ConsoleError, ConsoleSignIn};
use crate::domain::secrets;
use crate::model::audit::AuditKind;
use crate::model::client::Client;
use crate::model::console::ConsoleSession;
use crate::model::onboarding::{ConformanceReport, SupplierClient};

pub const PORTAL_CLIENT_ID: &str = "careid-onboarding";

/// The signed-in portal user.
#[derive(Debug, Clone)]
pub struct PortalUser {
    pub caller: OnboardingCaller,
    pub display_name: String,
    /// The CSRF token every portal form carries.
    pub csrf: String,
}

impl Provider {
    pub fn portal_redirect_uri(&self) -> String {
        self.config.endpoint("/onboarding/callback")
    }

    /// Registers careid's onboarding client (or keeps it in line with the issuer).
    pub async fn ensure_portal_client(&self) -> Result<(), ConsoleError> {
        self.ensure_own_client(
            PORTAL_CLIENT_ID,
            "careid supplier onboarding",
            self.portal_redirect_uri(),
            &["openid", ADMIN_SCOPE],
            true,
        )
        .await
    }

    pub fn begin_portal_sign_in(&self) -> ConsoleSignIn {
        self.begin_own_sign_in(
            PORTAL_CLIENT_ID,
            &self.portal_redirect_uri(),
            "openid careid:admin",
            "AAL2_OR_AAL3_ANY",
            false,
        )
    }

    /// Exchanges the code, checks the person may work in onboarding, opens a session: its
    /// secret (for the cookie).
    pub async fn finish_portal_sign_in(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<String, ConsoleError> {
        let tokens = self
            .exchange_own_code(
                PORTAL_CLIENT_ID,
                &self.portal_redirect_uri(),
                code,
                code_verifier,
            )
            .await?;
        let caller = self
            .onboarding_caller(Some(&tokens.access_token))
            .await
            .map_err(portal_refusal)?;
        let now = self.now();
        let secret = secrets::random_token();
        let session = ConsoleSession {
            access_token: tokens.access_token,
            user_uuid: caller.uuid.clone(),
            auth_time: now,
            created_at: now,
            last_seen_at: now,
            expires_at: now + tokens.expires_in,
        };
        self.db
            .insert_console_session(&secrets::digest(&secret), &session)
            .await?;
        Ok(secret)
    }

    /// The portal user behind a session cookie (each call counts as activity).
    pub async fn portal_user(&self, secret: Option<&str>) -> Result<PortalUser, ConsoleError> {
        let secret = secret.ok_or(ConsoleError::SignInNeeded)?;
        let (key, session) = self.live_tool_session(secret).await?;
        let caller = match self.onboarding_caller(Some(&session.access_token)).await {
            Ok(c) => c,
            Err(OnboardingError::InvalidToken(_)) => {
                self.db.delete_console_session(&key).await?;
                return Err(ConsoleError::Expired);
            }
            Err(e) => return Err(portal_refusal(e)),
        };
        let display_name = self
            .db
            .user(&caller.uuid)
            .await?
            .map(|u| u.display_name())
            .unwrap_or_default();
        Ok(PortalUser {
            caller,
            display_name,
            csrf: crate::domain::logout::csrf_token(secret, "onboarding"),
        })
    }

    pub async fn portal_sign_out(&self, secret: &str) -> Result<(), ConsoleError> {
        self.db
            .delete_console_session(&secrets::digest(secret))
            .await?;
        Ok(())
    }

    /// A client of one of the caller's suppliers.
    pub async fn developer_client(
        &self,
        caller: &OnboardingCaller,
        client_id: &str,
    ) -> Result<(Client, SupplierClient), OnboardingError> {
        let not_yours = || OnboardingError::NotFound("no such client of your suppliers".into());
        let onboarding = self
            .db
            .supplier_client(client_id)
            .await?
            .filter(|s| caller.develops_for(&s.supplier_id))
            .ok_or_else(not_yours)?;
        let client = self
            .db
            .client(client_id)
            .await?
            .filter(|c| c.active)
            .ok_or_else(not_yours)?;
        Ok((client, onboarding))
    }

    /// A developer uploads the JWK set a `private_key_jwt` client signs with (key rotation,
    /// in either stage); checked by the same rules as at registration.
    pub async fn upload_client_keys(
        &self,
        caller: &OnboardingCaller,
        client_id: &str,
        jwks: Value,
    ) -> Result<(), OnboardingError> {
        let (mut client, _) = self.developer_client(caller, client_id).await?;
        let m = &client.metadata;
        if m.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
            return Err(OnboardingError::Invalid(
                "only private_key_jwt clients have keys here".into(),
            ));
        }
        client::register(
            ClientRequest {
                client_name: m.client_name.clone(),
                redirect_uris: m.redirect_uris.clone(),
                auth_method: Some("private_key_jwt".into()),
                jwks: Some(jwks.clone()),
                grant_types: m.grant_types.clone(),
                ..Default::default()
            },
            self.now(),
        )?;
        client.metadata.jwks = Some(jwks);
        client.metadata.jwks_uri = None;
        self.db.set_client_metadata(&client.metadata).await?;
        self.forget_client(client_id);
        self.audit(
            AuditKind::OnboardingClientUpdated,
            "keys",
            Some(&caller.uuid),
            Some(client_id),
            json!({}),
        )
        .await?;
        Ok(())
    }
}

/// A supplier and its clients, as the developer's page lists them.
#[derive(Debug, serde::Serialize)]
pub struct SupplierOverview {
    pub id: String,
    pub name: String,
    pub clients: Vec<ClientOverview>,
}

#[derive(Debug, serde::Serialize)]
pub struct ClientOverview {
    pub client_id: String,
    pub name: String,
    pub stage: Option<&'static str>,
    /// `client_secret_basic` and the like: the page offers a new secret.
    pub uses_secret: bool,
    /// `private_key_jwt` with keys registered inline: the page offers a key upload.
    pub uses_keys: bool,
    pub report: Option<ConformanceReport>,
}

/// A waiting promotion with what the manager needs to decide.
#[derive(Debug, serde::Serialize)]
pub struct QueuedPromotion {
    pub id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub supplier: Option<String>,
    pub requested_at: i64,
    pub report: Option<ConformanceReport>,
}

impl Provider {
    /// The caller's suppliers with their live clients, each with its stage and last report.
    pub async fn portal_overview(
        &self,
        caller: &OnboardingCaller,
    ) -> Result<Vec<SupplierOverview>, OnboardingError> {
        let mut out = Vec::new();
        for id in &caller.suppliers {
            let Some(supplier) = self.db.supplier(id).await? else {
                continue;
            };
            let mut clients = Vec::new();
            for sc in self.db.supplier_clients_of(id).await? {
                let Some(client) = self.db.client(&sc.client_id).await?.filter(|c| c.active) else {
                    continue;
                };
                let method = client.metadata.token_endpoint_auth_method;
                clients.push(ClientOverview {
                    uses_secret: method.uses_secret(),
                    uses_keys: method == AuthMethod::PrivateKeyJwt
                        && client.metadata.jwks_uri.is_none(),
                    name: client.metadata.client_name,
                    stage: client.metadata.careid_stage.map(|s| s.as_str()),
                    report: self.db.latest_conformance_report(&sc.client_id).await?,
                    client_id: sc.client_id,
                });
            }
            out.push(SupplierOverview {
                id: supplier.id,
                name: supplier.name,
                clients,
            });
        }
        Ok(out)
    }

    /// The promotion queue with each request's client, supplier and evidence (managers only).
    pub async fn promotion_queue_details(
        &self,
        caller: &OnboardingCaller,
    ) -> Result<Vec<QueuedPromotion>, OnboardingError> {
        let mut out = Vec::new();
        for r in self.promotion_queue(caller).await? {
            let client = self.db.client(&r.client_id).await?;
            let supplier = match self.db.supplier_client(&r.client_id).await? {
                Some(sc) => self.db.supplier(&sc.supplier_id).await?,
                None => None,
            };
            out.push(QueuedPromotion {
                client_name: client.map(|c| c.metadata.client_name),
                supplier: supplier.map(|s| s.name),
                report: self.db.latest_conformance_report(&r.client_id).await?,
                id: r.id,
                client_id: r.client_id,
                requested_at: r.requested_at,
            });
        }
        Ok(out)
    }
}

fn portal_refusal(e: OnboardingError) -> ConsoleError {
    match e {
        OnboardingError::Service(s) => ConsoleError::Internal(s),
        other => ConsoleError::Refused(other.to_string()),
    }
}

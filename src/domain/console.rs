//! The RA console's sign-in and sessions. The console is careid's own admin client
//! (`careid-ra-console`, public, PKCE, redirect `{issuer}/ra/callback`): a person signs in
//! through `/authorize` like at any relying party (AAL3: a smartcard or an AAL3 security key,
//! then the role picker), and the code is exchanged through the same token grant as `/token`.
//! The access token it gets is kept server-side in a console session and presented, on every
//! request, to the same RA rules as an admin API caller's token (`admin_caller`), so the console
//! has no second path to RA power or to the database.
//!
//! A console session ends at sign-out, after `console.idle_timeout_secs` without a request, when
//! its token expires, or when anything that ends the token happens (sign-out elsewhere, the
//! person suspended, the role ended). Sensitive actions need an authentication at most
//! `console.reauth_max_age_secs` old.

use serde_json::json;

use crate::clock::UnixTime;
use crate::domain::client::{self, ClientRequest, ADMIN_SCOPE};
use crate::domain::provider::{Provider, ServiceError};
use crate::domain::ra::{AdminError, Caller};
use crate::domain::secrets;
use crate::domain::token::TokenRequest;
use crate::model::audit::AuditKind;
use crate::model::console::ConsoleSession;

/// The console's client id.
pub const CONSOLE_CLIENT_ID: &str = "careid-ra-console";
/// What the console asks for: who, which role, and RA power.
const CONSOLE_SCOPE: &str = "openid selectedrole careid:admin";

/// A started sign-in: where to send the browser, and what to keep (in a cookie) for the answer.
#[derive(Debug)]
pub struct ConsoleSignIn {
    pub authorize_url: String,
    pub state: String,
    pub code_verifier: String,
}

/// The signed-in console user: the RA caller the rules see, plus what the console needs.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub caller: Caller,
    pub display_name: String,
    pub auth_time: UnixTime,
    /// The CSRF token every console form carries.
    pub csrf: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No console session: sign in.
    #[error("sign in to the RA console")]
    SignInNeeded,
    /// The session lapsed (idle timeout, token expired or ended): sign in again.
    #[error("your console session has ended; sign in again")]
    Expired,
    /// Signed in, but the sign-in cannot be used for RA work (no RA role, not AAL3, …).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<crate::store::StoreError> for ConsoleError {
    fn from(e: crate::store::StoreError) -> Self {
        ConsoleError::Internal(e.into())
    }
}

impl Provider {
    /// Registers careid's console client, or brings it in line with the configuration (its
    /// redirect URI follows the issuer; it is disabled while the console is).
    pub async fn ensure_console_client(&self) -> Result<(), ConsoleError> {
        self.ensure_own_client(
            CONSOLE_CLIENT_ID,
            "careid RA console",
            self.console_redirect_uri(),
            &["openid", "selectedrole", ADMIN_SCOPE],
            self.config.console.enabled,
        )
        .await
    }

    /// One of careid's own tools' clients (public, PKCE, admin): registered when missing and
    /// enabled, its redirect URI kept in line with the issuer, enabled or disabled as asked.
    pub(crate) async fn ensure_own_client(
        &self,
        client_id: &str,
        name: &str,
        redirect_uri: String,
        scopes: &[&str],
        enabled: bool,
    ) -> Result<(), ConsoleError> {
        let mut wanted = client::register(
            ClientRequest {
                client_name: name.into(),
                redirect_uris: vec![redirect_uri],
                auth_method: Some("none".into()),
                grant_types: vec!["authorization_code".into()],
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                admin: true,
                ..Default::default()
            },
            self.now(),
        )
        .map_err(|e| ConsoleError::Refused(format!("the {name} client: {e}")))?
        .client;
        wanted.metadata.client_id = client_id.into();
        match self.db.client(client_id).await? {
            None if enabled => {
                self.db.insert_client(&wanted).await?;
                self.audit(
                    AuditKind::ClientRegistered,
                    "success",
                    None,
                    Some(client_id),
                    json!({ "client_name": wanted.metadata.client_name, "redirect_uris": wanted.metadata.redirect_uris }),
                )
                .await?;
            }
            None => {}
            Some(existing) => {
                if existing.metadata.redirect_uris != wanted.metadata.redirect_uris {
                    let mut metadata = wanted.metadata;
                    metadata.client_id_issued_at = existing.metadata.client_id_issued_at;
                    self.db.set_client_metadata(&metadata).await?;
                }
                if existing.active != enabled {
                    self.db.set_client_active(client_id, enabled).await?;
                }
            }
        }
        Ok(())
    }

    pub fn console_redirect_uri(&self) -> String {
        self.config.endpoint("/ra/callback")
    }

    /// Starts a console sign-in. `again` forces a fresh authentication (before a sensitive
    /// action), even inside a careid session.
    pub fn begin_console_sign_in(&self, again: bool) -> ConsoleSignIn {
        self.begin_own_sign_in(
            CONSOLE_CLIENT_ID,
            &self.console_redirect_uri(),
            CONSOLE_SCOPE,
            "AAL3_ANY",
            again,
        )
    }

    /// A sign-in to one of careid's own tools: PKCE, state, the scope and `acr_values` it needs.
    pub(crate) fn begin_own_sign_in(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        acr_values: &str,
        again: bool,
    ) -> ConsoleSignIn {
        let state = secrets::random_token();
        let code_verifier = secrets::random_token();
        let challenge = secrets::s256(&code_verifier);
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("acr_values", acr_values),
        ];
        if again {
            query.push(("prompt", "login"));
        }
        ConsoleSignIn {
            authorize_url: crate::domain::login::with_query(
                &self.config.endpoint("/authorize"),
                &query,
            ),
            state,
            code_verifier,
        }
    }

    /// Exchanges a code for one of careid's own tools through the same grant as `/token`.
    pub(crate) async fn exchange_own_code(
        &self,
        client_id: &str,
        redirect_uri: &str,
        code: &str,
        code_verifier: &str,
    ) -> Result<crate::domain::token::TokenResponse, ConsoleError> {
        let pairs: Vec<(String, String)> = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
            ("client_id", client_id),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let request = TokenRequest::parse(None, &pairs)
            .map_err(|e| ConsoleError::Refused(format!("the sign-in failed: {e}")))?;
        self.token(request)
            .await
            .map_err(|e| ConsoleError::Refused(format!("the sign-in could not be completed: {e}")))
    }

    /// Finishes a console sign-in: exchanges the code (the same grant as `/token`), checks the
    /// token against the RA rules, and opens a console session. Returns the session's secret.
    pub async fn finish_console_sign_in(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<String, ConsoleError> {
        let tokens = self
            .exchange_own_code(
                CONSOLE_CLIENT_ID,
                &self.console_redirect_uri(),
                code,
                code_verifier,
            )
            .await?;
        let caller = self
            .admin_caller(Some(&tokens.access_token))
            .await
            .map_err(refusal)?;
        no_ra_role(&caller)?;
        let now = self.now();
        let secret = secrets::random_token();
        let session = ConsoleSession {
            access_token: tokens.access_token,
            user_uuid: caller.uuid.clone(),
            auth_time: caller.auth_time,
            created_at: now,
            last_seen_at: now,
            expires_at: now + tokens.expires_in,
        };
        self.db
            .insert_console_session(&secrets::digest(&secret), &session)
            .await?;
        self.console_audit(&caller, AuditKind::ConsoleSignedIn)
            .await?;
        Ok(secret)
    }

    /// The signed-in console user behind a session cookie, if the session is live. Each call
    /// counts as activity for the idle timeout.
    pub async fn console_user(&self, secret: Option<&str>) -> Result<ConsoleUser, ConsoleError> {
        let secret = secret.ok_or(ConsoleError::SignInNeeded)?;
        let (key, session) = self.live_tool_session(secret).await?;
        let caller = match self.admin_caller(Some(&session.access_token)).await {
            Ok(c) => c,
            Err(AdminError::Unauthenticated(_)) => {
                self.db.delete_console_session(&key).await?;
                return Err(ConsoleError::Expired);
            }
            Err(e) => return Err(refusal(e)),
        };
        no_ra_role(&caller)?;
        let display_name = self
            .db
            .user(&caller.uuid)
            .await?
            .map(|u| u.display_name())
            .unwrap_or_default();
        Ok(ConsoleUser {
            display_name,
            auth_time: session.auth_time,
            csrf: crate::domain::logout::csrf_token(secret, "ra-console"),
            caller,
        })
    }

    /// The live session of one of careid's own tools (the RA console, the onboarding pages)
    /// behind a cookie secret, with its key: unknown is `SignInNeeded`; idle past
    /// `console.idle_timeout_secs` is deleted and `Expired`. Each call counts as activity.
    pub(crate) async fn live_tool_session(
        &self,
        secret: &str,
    ) -> Result<(String, ConsoleSession), ConsoleError> {
        let key = secrets::digest(secret);
        let Some(session) = self.db.console_session(&key).await? else {
            return Err(ConsoleError::SignInNeeded);
        };
        let now = self.now();
        let idle = self.config.console.idle_timeout_secs;
        if !self.db.touch_console_session(&key, now, now - idle).await? {
            self.db.delete_console_session(&key).await?;
            return Err(ConsoleError::Expired);
        }
        Ok((key, session))
    }

    /// Whether the console user authenticated recently enough for a sensitive action.
    pub fn console_recently_authenticated(&self, user: &ConsoleUser) -> bool {
        self.now() - user.auth_time <= self.config.console.reauth_max_age_secs
    }

    /// Ends a console session (the careid sign-in session stays: other apps keep working).
    pub async fn console_sign_out(&self, secret: &str) -> Result<(), ConsoleError> {
        let key = secrets::digest(secret);
        if let Ok(user) = self.console_user(Some(secret)).await {
            self.console_audit(&user.caller, AuditKind::ConsoleSignedOut)
                .await?;
        }
        self.db.delete_console_session(&key).await?;
        Ok(())
    }

    /// Drops a console session without a sign-out event (a new sign-in replaces it).
    pub async fn console_forget(&self, secret: &str) -> Result<(), ConsoleError> {
        self.db
            .delete_console_session(&secrets::digest(secret))
            .await?;
        Ok(())
    }

    /// A warning while the caller's organisation has fewer than two RA Managers (policy 002 §4
    /// recommends at least two, so RA work does not stop when one is away).
    pub async fn ra_manager_shortfall(
        &self,
        caller: &Caller,
    ) -> Result<Option<String>, AdminError> {
        let holders = self
            .db
            .current_job_roles_at(&caller.org_code, self.now())
            .await?;
        let mut managers: Vec<&str> = holders
            .iter()
            .filter(|(_, job)| job == "R5080" || job == "R5072")
            .map(|(uuid, _)| uuid.as_str())
            .collect();
        managers.sort_unstable();
        managers.dedup();
        Ok((managers.len() < 2).then(|| {
            format!(
                "{} has {} RA Manager{}; the policy recommends at least two.",
                caller.org_code,
                managers.len(),
                if managers.len() == 1 { "" } else { "s" }
            )
        }))
    }

    async fn console_audit(&self, caller: &Caller, kind: AuditKind) -> Result<(), ConsoleError> {
        let detail = json!({ "ra_role_profile": caller.person_roleid, "org_code_acting": caller.org_code, "jti": caller.jti });
        self.audit(
            kind,
            "success",
            Some(&caller.uuid),
            Some(CONSOLE_CLIENT_ID),
            detail,
        )
        .await?;
        Ok(())
    }
}

/// A sign-in whose selected role carries no RA role has nothing to do in the console.
fn no_ra_role(caller: &Caller) -> Result<(), ConsoleError> {
    if caller.ra_roles.is_empty() {
        return Err(ConsoleError::Refused(
            "the role you selected carries no RA role".into(),
        ));
    }
    Ok(())
}

fn refusal(e: AdminError) -> ConsoleError {
    match e {
        AdminError::Internal(e) => ConsoleError::Internal(e),
        other => ConsoleError::Refused(other.to_string()),
    }
}

//! Managing WebAuthn credentials: RA invitations, listing and revocation (admin API), and the
//! signed-in user's own list, rename and remove (account page). Every change is audited.

use serde_json::json;

use super::ceremonies::clean_name;
use super::StoredCredential;
use crate::domain::provider::{Provider, ServiceError};
use crate::domain::ra::answers::{AuthenticatorList, AuthenticatorView, InvitationSent};
use crate::domain::ra::authority as op;
use crate::domain::ra::{AdminError, Caller};
use crate::domain::secrets;
use crate::model::audit::AuditKind;
use crate::model::identity::{Authenticator, User};
use crate::model::identity::{AuthenticatorKind, AuthenticatorStatus};
use crate::model::session::Session;

/// Why a change to one's own authenticators was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountRefusal {
    #[error("you are not signed in to careid in this browser")]
    NotSignedIn,
    #[error("you have no authenticator with that id")]
    NoSuchAuthenticator,
    #[error("names are 1 to 64 characters")]
    BadName,
    #[error("this is your last working authenticator; register another before removing it")]
    LastAuthenticator,
}

/// What the account page shows.
#[derive(Debug)]
pub struct Account {
    pub user: User,
    pub session: Session,
    pub cards: Vec<Authenticator>,
    pub credentials: Vec<StoredCredential>,
}

impl Provider {
    /// RA: a single-use invitation to bind an authenticator to this identity. The RA gets a
    /// handover link, not the code: the person opens it at the desk (or it is sent to them),
    /// and the code exists only on that page, once. So the RA who made the invitation cannot
    /// register an authenticator for someone else with it, nor read the code back later.
    pub async fn admin_invite_authenticator(
        &self,
        caller: &Caller,
        uuid: &str,
    ) -> Result<InvitationSent, AdminError> {
        self.act_on_person(caller, &op::INVITE, uuid).await?;
        self.active_identity(uuid).await?;
        let (handover_url, expires_at) = self.new_invitation(uuid, &caller.uuid).await?;
        self.admin_audit(
            caller,
            AuditKind::AdminAuthenticatorInvited,
            json!({ "uuid": uuid, "expires_at": expires_at }),
        )
        .await?;
        Ok(InvitationSent {
            uuid: uuid.to_string(),
            handover_url,
            expires_at,
        })
    }

    /// A single-use invitation to register a security key or passkey: the handover link (the
    /// code is made only when the person opens it) and when it expires.
    pub(crate) async fn new_invitation(
        &self,
        uuid: &str,
        created_by: &str,
    ) -> Result<(String, i64), ServiceError> {
        let now = self.now();
        let handover = secrets::random_token();
        let invitation = super::Invitation {
            user_uuid: uuid.to_string(),
            created_by: created_by.to_string(),
            created_at: now,
            expires_at: now + self.config.webauthn.invitation_ttl_secs,
        };
        self.db
            .insert_invitation(
                &secrets::digest(&secrets::random_token()),
                &secrets::digest(&handover),
                &invitation,
            )
            .await?;
        let handover_url = crate::domain::login::with_query(
            &self.config.endpoint("/webauthn/invitation"),
            &[("handover", &handover)],
        );
        Ok((handover_url, invitation.expires_at))
    }

    /// The person's side of an invitation's handover: makes the code (once) and returns it with
    /// the invitation. None when the handover is unknown, used or expired.
    pub async fn hand_over_invitation(
        &self,
        handover: &str,
    ) -> Result<Option<(String, super::Invitation)>, ServiceError> {
        let code = secrets::random_token();
        let Some(invitation) = self
            .db
            .hand_over_invitation(
                &secrets::digest(handover),
                &secrets::digest(&code),
                self.now(),
            )
            .await?
        else {
            return Ok(None);
        };
        self.audit(
            AuditKind::AuthenticatorInvitationHandedOver,
            "success",
            Some(&invitation.user_uuid),
            None,
            json!({ "created_by": invitation.created_by }),
        )
        .await?;
        Ok(Some((code, invitation)))
    }

    /// RA: every authenticator of an identity (cards and WebAuthn), in any status.
    pub async fn admin_list_authenticators(
        &self,
        caller: &Caller,
        uuid: &str,
    ) -> Result<AuthenticatorList, AdminError> {
        self.read_person(caller, &op::LIST_AUTHENTICATORS, uuid)
            .await?;
        let credentials = self.db.webauthn_credentials_of(uuid).await?;
        let mut authenticators: Vec<AuthenticatorView> = self
            .db
            .authenticators_of(uuid)
            .await?
            .iter()
            .filter(|a| a.kind.is_card())
            .map(AuthenticatorView::card)
            .collect();
        authenticators.extend(credentials.iter().map(AuthenticatorView::webauthn));
        Ok(AuthenticatorList {
            uuid: uuid.to_string(),
            authenticators,
        })
    }

    /// The signed-in user's identity and authenticators, if the session is usable.
    pub async fn account(
        &self,
        session_secret: Option<&str>,
    ) -> Result<Option<Account>, ServiceError> {
        let Some(session) = self.usable_session(session_secret).await? else {
            return Ok(None);
        };
        let Some(user) = self.db.user(&session.user_uuid).await? else {
            return Ok(None);
        };
        let cards = self
            .db
            .authenticators_of(&user.uuid)
            .await?
            .into_iter()
            .filter(|a| a.kind == AuthenticatorKind::Smartcard)
            .collect();
        let credentials = self.db.webauthn_credentials_of(&user.uuid).await?;
        Ok(Some(Account {
            user,
            session,
            cards,
            credentials,
        }))
    }

    pub async fn rename_own_authenticator(
        &self,
        session_secret: Option<&str>,
        id: &str,
        name: &str,
    ) -> Result<Result<(), AccountRefusal>, ServiceError> {
        let Some(account) = self.account(session_secret).await? else {
            return Ok(Err(AccountRefusal::NotSignedIn));
        };
        let Some(name) = clean_name(name) else {
            return Ok(Err(AccountRefusal::BadName));
        };
        if !account.credentials.iter().any(|c| c.authenticator.id == id) {
            return Ok(Err(AccountRefusal::NoSuchAuthenticator));
        }
        self.db.rename_webauthn_credential(id, &name).await?;
        self.audit(
            AuditKind::WebauthnRenamed,
            "success",
            Some(&account.user.uuid),
            None,
            json!({ "authenticator": id, "name": name }),
        )
        .await?;
        Ok(Ok(()))
    }

    /// Removes (revokes) one of the user's own WebAuthn credentials; never the last working
    /// authenticator. Sessions it opened end.
    pub async fn remove_own_authenticator(
        &self,
        session_secret: Option<&str>,
        id: &str,
    ) -> Result<Result<(), AccountRefusal>, ServiceError> {
        let Some(account) = self.account(session_secret).await? else {
            return Ok(Err(AccountRefusal::NotSignedIn));
        };
        let Some(target) = account
            .credentials
            .iter()
            .find(|c| c.authenticator.id == id && c.authenticator.is_active())
        else {
            return Ok(Err(AccountRefusal::NoSuchAuthenticator));
        };
        let working = account.cards.iter().filter(|a| a.is_active()).count()
            + account
                .credentials
                .iter()
                .filter(|c| c.authenticator.is_active())
                .count();
        if working <= 1 {
            return Ok(Err(AccountRefusal::LastAuthenticator));
        }
        self.db
            .set_authenticator_status(id, AuthenticatorStatus::Removed)
            .await?;
        self.audit(
            AuditKind::WebauthnRemoved,
            "success",
            Some(&account.user.uuid),
            None,
            json!({ "authenticator": id, "name": target.name }),
        )
        .await?;
        for sid in self.db.open_sessions_of_authenticator(id).await? {
            self.end_session(&sid, "authenticator_removed").await?;
        }
        Ok(Ok(()))
    }
}

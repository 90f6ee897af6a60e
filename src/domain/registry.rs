//! Registering and managing relying parties and smartcard bindings: the operations behind the
//! `careid clients` commands, the demo and (later) the admin API. Each change is audited.

use serde_json::json;

use super::client::{self, ClientRequest, NewClient, RegistrationError};
use super::smartcard::{self, CardRejection};
use crate::clock::UnixTime;
use crate::model::audit::AuditKind;
use crate::model::identity::{Authenticator, AuthenticatorKind, AuthenticatorStatus, User};
use crate::store::{AuditEvent, Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Invalid(#[from] RegistrationError),
    #[error("the certificate cannot be bound: {0}")]
    Certificate(CardRejection),
    #[error("no such client: {0}")]
    NoSuchClient(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn audit(
    db: &Db,
    now: UnixTime,
    kind: AuditKind,
    actor: &str,
    client_id: Option<&str>,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    db.append_audit(&AuditEvent {
        at: now,
        kind: kind.as_str().into(),
        outcome: "success".into(),
        actor: Some(actor.into()),
        client_id: client_id.map(String::from),
        detail,
    })
    .await
}

/// Registers a client; the returned secret is shown once and only its digest is stored.
pub async fn register_client(
    db: &Db,
    request: ClientRequest,
    actor: &str,
    now: UnixTime,
) -> Result<NewClient, RegistryError> {
    let new = client::register(request, now)?;
    db.insert_client(&new.client).await?;
    let m = &new.client.metadata;
    audit(db, now, AuditKind::ClientRegistered, actor, Some(&m.client_id), json!({ "client_name": m.client_name, "redirect_uris": m.redirect_uris, "auth_method": m.token_endpoint_auth_method })).await?;
    Ok(new)
}

pub async fn disable_client(
    db: &Db,
    client_id: &str,
    actor: &str,
    now: UnixTime,
) -> Result<(), RegistryError> {
    if !db.set_client_active(client_id, false).await? {
        return Err(RegistryError::NoSuchClient(client_id.into()));
    }
    audit(
        db,
        now,
        AuditKind::ClientDisabled,
        actor,
        Some(client_id),
        json!({}),
    )
    .await?;
    Ok(())
}

pub async fn create_user(
    db: &Db,
    user: &User,
    actor: &str,
    now: UnixTime,
) -> Result<(), RegistryError> {
    db.insert_user(user, now).await?;
    audit(
        db,
        now,
        AuditKind::IdentityCreated,
        actor,
        None,
        json!({ "uuid": user.uuid }),
    )
    .await?;
    Ok(())
}

/// Binds a smartcard certificate (DER) to a user by its issuer and serial number.
pub async fn bind_smartcard(
    db: &Db,
    user_uuid: &str,
    cert_der: &[u8],
    actor: &str,
    now: UnixTime,
) -> Result<Authenticator, RegistryError> {
    let card = smartcard::binding_of(cert_der).map_err(RegistryError::Certificate)?;
    if card.subject_uuid.as_deref().is_some_and(|u| u != user_uuid) {
        return Err(RegistryError::Certificate(CardRejection::UuidMismatch));
    }
    let authenticator = Authenticator {
        id: uuid::Uuid::new_v4().to_string(),
        user_uuid: user_uuid.into(),
        kind: AuthenticatorKind::Smartcard,
        cert_issuer: Some(card.issuer.clone()),
        cert_serial: Some(card.serial.clone()),
        status: AuthenticatorStatus::Active,
        created_at: now,
        last_used_at: None,
        expires_at: None,
    };
    db.insert_authenticator(&authenticator).await?;
    audit(db, now, AuditKind::AuthenticatorBound, actor, None, json!({ "uuid": user_uuid, "kind": "smartcard", "issuer": card.issuer, "serial": card.serial })).await?;
    Ok(authenticator)
}

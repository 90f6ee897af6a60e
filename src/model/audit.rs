//! The kinds of event in the audit trail, one enum so a kind cannot be misspelt: every event
//! written, the permission table's "audited as" column and the reports name them from here.

/// Every kind of event in the audit trail. Stored (and shown) by its dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    LoginSmartcard,
    LoginWebauthn,
    LoginRole,
    TokenIssued,
    TokenRevoked,
    TokenRefreshReuse,
    TokenCodeReuse,
    TokenCodeOtherClient,
    ClientAuthentication,
    ClientRegistered,
    ClientDisabled,
    SessionEnded,
    LogoutBackchannel,
    TermsAccepted,
    TermsDeclined,
    WebauthnRegistered,
    WebauthnRenamed,
    WebauthnRemoved,
    WebauthnBlocked,
    RbacImported,
    KeysRotated,
    IdentityCreated,
    AuthenticatorBound,
    AuthenticatorInvitationHandedOver,
    AssignmentCreated,
    AuditFailuresSuppressed,
    AdminBootstrap,
    AdminIdentityCreated,
    AdminIdentityUpdated,
    AdminIdentityVerified,
    AdminIdentityStatus,
    AdminSmartcardBound,
    AdminSmartcardRevoked,
    AdminAuthenticatorRevoked,
    AdminAuthenticatorInvited,
    AdminAssignmentCreated,
    AdminAssignmentEnded,
    AdminPositionCreated,
    AdminPositionUpdated,
    AdminPositionRetired,
    AdminPhotoRecorded,
    AdminAuthenticatorSuspended,
    AdminAuthenticatorUnlocked,
    AdminRaRoleGranted,
    AdminRaRoleEnded,
    AdminTacIssued,
    AdminTacReturned,
    AdminAccessRequested,
    AdminAccessApproved,
    AdminAccessRejected,
    AdminAccessFulfilled,
    ConsoleSignedIn,
    ConsoleSignedOut,
    HrApplied,
    HrImported,
    HrLeaverEnforced,
    AssignmentExpired,
    AdminHrPositionMapped,
    AdminHrPositionUnmapped,
    AdminHrDetailsDecided,
    OnboardingSupplier,
    OnboardingInitialToken,
    OnboardingClientRegistered,
    OnboardingClientUpdated,
    OnboardingClientDeleted,
    OnboardingSecretRotated,
    OnboardingConformance,
    OnboardingPromotionRequested,
    OnboardingPromotionDecided,
    OnboardingTestIdentity,
    LoginStageRefused,
}

impl AuditKind {
    pub const ALL: [AuditKind; 71] = [
        AuditKind::LoginSmartcard,
        AuditKind::LoginWebauthn,
        AuditKind::LoginRole,
        AuditKind::TokenIssued,
        AuditKind::TokenRevoked,
        AuditKind::TokenRefreshReuse,
        AuditKind::TokenCodeReuse,
        AuditKind::TokenCodeOtherClient,
        AuditKind::ClientAuthentication,
        AuditKind::ClientRegistered,
        AuditKind::ClientDisabled,
        AuditKind::SessionEnded,
        AuditKind::LogoutBackchannel,
        AuditKind::TermsAccepted,
        AuditKind::TermsDeclined,
        AuditKind::WebauthnRegistered,
        AuditKind::WebauthnRenamed,
        AuditKind::WebauthnRemoved,
        AuditKind::WebauthnBlocked,
        AuditKind::RbacImported,
        AuditKind::KeysRotated,
        AuditKind::IdentityCreated,
        AuditKind::AuthenticatorBound,
        AuditKind::AuthenticatorInvitationHandedOver,
        AuditKind::AssignmentCreated,
        AuditKind::AuditFailuresSuppressed,
        AuditKind::AdminBootstrap,
        AuditKind::AdminIdentityCreated,
        AuditKind::AdminIdentityUpdated,
        AuditKind::AdminIdentityVerified,
        AuditKind::AdminIdentityStatus,
        AuditKind::AdminSmartcardBound,
        AuditKind::AdminSmartcardRevoked,
        AuditKind::AdminAuthenticatorRevoked,
        AuditKind::AdminAuthenticatorInvited,
        AuditKind::AdminAssignmentCreated,
        AuditKind::AdminAssignmentEnded,
        AuditKind::AdminPositionCreated,
        AuditKind::AdminPositionUpdated,
        AuditKind::AdminPositionRetired,
        AuditKind::AdminPhotoRecorded,
        AuditKind::AdminAuthenticatorSuspended,
        AuditKind::AdminAuthenticatorUnlocked,
        AuditKind::AdminRaRoleGranted,
        AuditKind::AdminRaRoleEnded,
        AuditKind::AdminTacIssued,
        AuditKind::AdminTacReturned,
        AuditKind::AdminAccessRequested,
        AuditKind::AdminAccessApproved,
        AuditKind::AdminAccessRejected,
        AuditKind::AdminAccessFulfilled,
        AuditKind::ConsoleSignedIn,
        AuditKind::ConsoleSignedOut,
        AuditKind::HrApplied,
        AuditKind::HrImported,
        AuditKind::HrLeaverEnforced,
        AuditKind::AssignmentExpired,
        AuditKind::AdminHrPositionMapped,
        AuditKind::AdminHrPositionUnmapped,
        AuditKind::AdminHrDetailsDecided,
        AuditKind::OnboardingSupplier,
        AuditKind::OnboardingInitialToken,
        AuditKind::OnboardingClientRegistered,
        AuditKind::OnboardingClientUpdated,
        AuditKind::OnboardingClientDeleted,
        AuditKind::OnboardingSecretRotated,
        AuditKind::OnboardingConformance,
        AuditKind::OnboardingPromotionRequested,
        AuditKind::OnboardingPromotionDecided,
        AuditKind::OnboardingTestIdentity,
        AuditKind::LoginStageRefused,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginSmartcard => "login.smartcard",
            AuditKind::LoginWebauthn => "login.webauthn",
            AuditKind::LoginRole => "login.role",
            AuditKind::TokenIssued => "token.issued",
            AuditKind::TokenRevoked => "token.revoked",
            AuditKind::TokenRefreshReuse => "token.refresh_reuse",
            AuditKind::TokenCodeReuse => "token.code_reuse",
            AuditKind::TokenCodeOtherClient => "token.code_other_client",
            AuditKind::ClientAuthentication => "client.authentication",
            AuditKind::ClientRegistered => "client.registered",
            AuditKind::ClientDisabled => "client.disabled",
            AuditKind::SessionEnded => "session.ended",
            AuditKind::LogoutBackchannel => "logout.backchannel",
            AuditKind::TermsAccepted => "terms.accepted",
            AuditKind::TermsDeclined => "terms.declined",
            AuditKind::WebauthnRegistered => "webauthn.registered",
            AuditKind::WebauthnRenamed => "webauthn.renamed",
            AuditKind::WebauthnRemoved => "webauthn.removed",
            AuditKind::WebauthnBlocked => "webauthn.blocked",
            AuditKind::RbacImported => "rbac.imported",
            AuditKind::KeysRotated => "keys.rotated",
            AuditKind::IdentityCreated => "identity.created",
            AuditKind::AuthenticatorBound => "authenticator.bound",
            AuditKind::AuthenticatorInvitationHandedOver => "authenticator.invitation_handed_over",
            AuditKind::AssignmentCreated => "assignment.created",
            AuditKind::AuditFailuresSuppressed => "audit.failures_suppressed",
            AuditKind::AdminBootstrap => "admin.bootstrap",
            AuditKind::AdminIdentityCreated => "admin.identity_created",
            AuditKind::AdminIdentityUpdated => "admin.identity_updated",
            AuditKind::AdminIdentityVerified => "admin.identity_verified",
            AuditKind::AdminIdentityStatus => "admin.identity_status",
            AuditKind::AdminSmartcardBound => "admin.smartcard_bound",
            AuditKind::AdminSmartcardRevoked => "admin.smartcard_revoked",
            AuditKind::AdminAuthenticatorRevoked => "admin.authenticator_revoked",
            AuditKind::AdminAuthenticatorInvited => "admin.authenticator_invited",
            AuditKind::AdminAssignmentCreated => "admin.assignment_created",
            AuditKind::AdminAssignmentEnded => "admin.assignment_ended",
            AuditKind::AdminPositionCreated => "admin.position_created",
            AuditKind::AdminPositionUpdated => "admin.position_updated",
            AuditKind::AdminPositionRetired => "admin.position_retired",
            AuditKind::AdminPhotoRecorded => "admin.photo_recorded",
            AuditKind::AdminAuthenticatorSuspended => "admin.authenticator_suspended",
            AuditKind::AdminAuthenticatorUnlocked => "admin.authenticator_unlocked",
            AuditKind::AdminRaRoleGranted => "admin.ra_role_granted",
            AuditKind::AdminRaRoleEnded => "admin.ra_role_ended",
            AuditKind::AdminTacIssued => "admin.tac_issued",
            AuditKind::AdminTacReturned => "admin.tac_returned",
            AuditKind::AdminAccessRequested => "admin.access_requested",
            AuditKind::AdminAccessApproved => "admin.access_approved",
            AuditKind::AdminAccessRejected => "admin.access_rejected",
            AuditKind::AdminAccessFulfilled => "admin.access_fulfilled",
            AuditKind::ConsoleSignedIn => "console.signed_in",
            AuditKind::ConsoleSignedOut => "console.signed_out",
            AuditKind::HrApplied => "hr.applied",
            AuditKind::HrImported => "hr.imported",
            AuditKind::HrLeaverEnforced => "hr.leaver_enforced",
            AuditKind::AssignmentExpired => "assignment.expired",
            AuditKind::AdminHrPositionMapped => "admin.hr_position_mapped",
            AuditKind::AdminHrPositionUnmapped => "admin.hr_position_unmapped",
            AuditKind::AdminHrDetailsDecided => "admin.hr_details_decided",
            AuditKind::OnboardingSupplier => "onboarding.supplier",
            AuditKind::OnboardingInitialToken => "onboarding.initial_access_token",
            AuditKind::OnboardingClientRegistered => "onboarding.client_registered",
            AuditKind::OnboardingClientUpdated => "onboarding.client_updated",
            AuditKind::OnboardingClientDeleted => "onboarding.client_deleted",
            AuditKind::OnboardingSecretRotated => "onboarding.secret_rotated",
            AuditKind::OnboardingConformance => "onboarding.conformance",
            AuditKind::OnboardingPromotionRequested => "onboarding.promotion_requested",
            AuditKind::OnboardingPromotionDecided => "onboarding.promotion_decided",
            AuditKind::OnboardingTestIdentity => "onboarding.test_identity",
            AuditKind::LoginStageRefused => "login.stage_refused",
        }
    }

    pub fn parse(s: &str) -> Option<AuditKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_dotted_name() {
        let mut names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        for k in AuditKind::ALL {
            assert_eq!(AuditKind::parse(k.as_str()), Some(k));
            assert!(k.as_str().split_once('.').is_some(), "{}", k.as_str());
        }
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            AuditKind::ALL.len(),
            "no two kinds share a name"
        );
    }
}

/// Which audit events to read (the RA console's and the admin API's audit trail).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events this person did.
    pub actor: Option<String>,
    /// Events this person did or that were done to them.
    pub person: Option<String>,
    /// Events done to this person (a `uuid` in the detail), whoever did them.
    pub subject: Option<String>,
    /// Events done from or at this organisation.
    pub org_code: Option<String>,
    /// Events of this kind (`login.smartcard`), or of every kind under a prefix (`admin.*`).
    pub kind: Option<String>,
    pub since: Option<crate::clock::UnixTime>,
    pub until: Option<crate::clock::UnixTime>,
    /// Only events older than this cursor (a previous page's `next`): the next page.
    pub before: Option<i64>,
    pub limit: i64,
}

impl AuditFilter {
    /// The `LIKE` pattern of a `kind` filter: `admin.*` matches every kind under `admin.`;
    /// anything else only itself. None for a kind with characters no kind has.
    pub fn kind_pattern(&self) -> Option<Option<String>> {
        let Some(kind) = &self.kind else {
            return Some(None);
        };
        let (stem, wildcard) = match kind.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (kind.as_str(), false),
        };
        let valid = !stem.is_empty()
            && stem
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_');
        if !valid {
            return None;
        }
        Some(Some(if wildcard {
            format!("{stem}%")
        } else {
            stem.to_string()
        }))
    }
}

/// One event as exported (`careid audit export`, the live sink): its place in the chain and
/// the hashes that link it, so a receiver can check that nothing is missing or changed.
/// `detail` is the stored JSON text, byte for byte, as the hash covers it; `row_hash` is the hex
/// SHA-256 of the JSON array `["careid.audit.v1", seq, at, kind, outcome, actor, client_id,
/// detail, prev_hash]` (docs/operations.md).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportedAuditEvent {
    pub seq: i64,
    pub at: crate::clock::UnixTime,
    pub kind: String,
    pub outcome: String,
    pub actor: Option<String>,
    pub client_id: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub row_hash: String,
}

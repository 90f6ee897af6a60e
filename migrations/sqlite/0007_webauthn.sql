-- WebAuthn: security keys, passkeys and platform authenticators. Each credential is also a row
-- of `authenticators` (kind security_key | passkey | platform), which carries its owner, status
-- and use times, so revocation and session tracking work the same as for smartcards.
CREATE TABLE webauthn_credentials (
    authenticator_id    TEXT PRIMARY KEY REFERENCES authenticators(id),
    credential_id       TEXT NOT NULL UNIQUE,   -- base64url, as the browser reports it
    credential          TEXT NOT NULL,          -- webauthn-rs-core Credential (public key, counter, flags) as JSON
    name                TEXT NOT NULL,
    aaguid              TEXT NOT NULL,
    attestation_format  TEXT NOT NULL,
    attestation_trusted BIGINT NOT NULL,        -- 1: chains to a configured AAL3 trust anchor
    transports          TEXT NOT NULL,          -- JSON array
    backup_eligible     BIGINT NOT NULL,
    backup_state        BIGINT NOT NULL,
    discoverable        BIGINT NOT NULL,
    aal                 BIGINT NOT NULL,        -- 2 or 3, decided by the attestation policy at registration
    sign_count          BIGINT NOT NULL
);

-- A started registration or sign-in: the server-side state webauthn-rs needs to finish it.
-- Keyed by the digest of a handle held in the browser's __Host- cookie; single use.
CREATE TABLE webauthn_ceremonies (
    handle_hash  TEXT PRIMARY KEY,
    purpose      TEXT NOT NULL,                -- register | authenticate
    user_uuid    TEXT,
    detail       TEXT NOT NULL,                -- JSON: kind, name, invitation, flow
    state        TEXT NOT NULL,                -- JSON: RegistrationState / AuthenticationState
    expires_at   BIGINT NOT NULL
);

-- An RA's single-use invitation to bind an authenticator to a Care Identity.
CREATE TABLE webauthn_invitations (
    code_hash   TEXT PRIMARY KEY,
    user_uuid   TEXT NOT NULL REFERENCES users(uuid),
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX webauthn_invitations_user ON webauthn_invitations(user_uuid);

-- careid core schema (PostgreSQL). Times are unix seconds (BIGINT); JSON is TEXT.
CREATE TABLE clients (
    client_id    TEXT PRIMARY KEY,
    secret_hash  TEXT,
    status       TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE users (
    uuid                TEXT PRIMARY KEY,
    title               TEXT,
    given_name          TEXT NOT NULL,
    middle_names        TEXT,
    family_name         TEXT NOT NULL,
    email               TEXT,
    id_assurance_level  BIGINT NOT NULL,
    status              TEXT NOT NULL,
    created_at          BIGINT NOT NULL
);

CREATE TABLE authenticators (
    id           TEXT PRIMARY KEY,
    user_uuid    TEXT NOT NULL REFERENCES users(uuid),
    kind         TEXT NOT NULL,
    cert_issuer  TEXT,
    cert_serial  TEXT,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE UNIQUE INDEX authenticators_cert ON authenticators(cert_issuer, cert_serial);
CREATE INDEX authenticators_user ON authenticators(user_uuid);

CREATE TABLE login_flows (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    request     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE sessions (
    secret_hash     TEXT PRIMARY KEY,
    sid             TEXT NOT NULL UNIQUE,
    user_uuid       TEXT NOT NULL REFERENCES users(uuid),
    authenticator_id TEXT NOT NULL,
    amr             TEXT NOT NULL,
    aal             BIGINT NOT NULL,
    auth_time       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    absolute_expiry BIGINT NOT NULL,
    ended_at        BIGINT,
    end_reason      TEXT
);
CREATE INDEX sessions_user ON sessions(user_uuid);

CREATE TABLE auth_codes (
    code_hash       TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    grant_json      TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);

CREATE TABLE access_tokens (
    jti         TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    user_uuid   TEXT,
    sid         TEXT,
    code_hash   TEXT,
    scope       TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX access_tokens_code ON access_tokens(code_hash);
CREATE INDEX access_tokens_sid ON access_tokens(sid);

CREATE TABLE assertion_jtis (
    client_id   TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_pem  TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    retire_at    BIGINT
);

CREATE TABLE audit_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    actor       TEXT,
    client_id   TEXT,
    detail      TEXT NOT NULL
);

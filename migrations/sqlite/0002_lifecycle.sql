-- Token and session lifecycle: refresh tokens, the back-channel logout outbox, housekeeping lease.

-- Refresh tokens (stored by SHA-256). A family is every token rotated from one grant; reuse of a
-- rotated token revokes the family. grant_json keeps the original authentication (acr, amr,
-- auth_time, AAL, scopes) so a refresh never raises or drops them.
CREATE TABLE refresh_tokens (
    token_hash        TEXT PRIMARY KEY,
    family_id         TEXT NOT NULL,
    client_id         TEXT NOT NULL,
    user_uuid         TEXT NOT NULL,
    sid               TEXT,
    grant_json        TEXT NOT NULL,
    offline           BIGINT NOT NULL,
    issued_at         BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    family_expires_at BIGINT NOT NULL,
    used_at           BIGINT,
    revoked_at        BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_sid ON refresh_tokens(sid);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_uuid);

-- Access tokens derived from a refresh family die with it.
ALTER TABLE access_tokens ADD COLUMN family_id TEXT;
CREATE INDEX access_tokens_family ON access_tokens(family_id);
CREATE INDEX access_tokens_user ON access_tokens(user_uuid);

-- Back-channel logout deliveries still to make. A row is claimed by one process at a time
-- (locked_until/lock_owner) and ends delivered or failed.
CREATE TABLE logout_outbox (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    sid              TEXT NOT NULL,
    user_uuid        TEXT NOT NULL,
    uri              TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    attempts         BIGINT NOT NULL,
    locked_until     BIGINT,
    lock_owner       TEXT,
    delivered_at     BIGINT,
    failed_at        BIGINT,
    last_error       TEXT
);
CREATE INDEX logout_outbox_due ON logout_outbox(next_attempt_at);

-- One row per periodic job: which process holds it until when.
CREATE TABLE job_leases (
    job          TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    held_until   BIGINT NOT NULL
);

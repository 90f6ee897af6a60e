-- Issue 16 (RA console): the console's own sessions. A console session is careid's own admin
-- client signed in for one person: the cookie holds a random secret, this table its digest and
-- the access token the console presents to the RA rules (as the admin API's callers do). Rows
-- end at sign-out, after the idle timeout, or when the token expires.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    access_token TEXT NOT NULL,
    user_uuid TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);

-- Professional registrations an RA records (GMC, NMC, GPhC, ...): released under the
-- professionalmemberships scope as gmc_id, nmc_id, ... (cis2.md section 5).
CREATE TABLE professional_registrations (
    user_uuid TEXT NOT NULL REFERENCES users(uuid),
    body TEXT NOT NULL,
    number TEXT NOT NULL,
    PRIMARY KEY (user_uuid, body)
);

-- Positions are corrected and retired, not only created (policy 002 section 7): who approved
-- the position as it stands, and when it was retired (no new assignments after that).
ALTER TABLE positions ADD COLUMN approved_by TEXT;
ALTER TABLE positions ADD COLUMN retired_at BIGINT;

-- The photograph taken at registration (policy 002 sections 5.2 and 6.1): shown to RA staff for
-- the TAC likeness check, never put in a token. Kept as base64 text (both dialects alike).
CREATE TABLE identity_photos (
    user_uuid TEXT PRIMARY KEY REFERENCES users(uuid),
    content_type TEXT NOT NULL,
    image TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);

-- A TAC carries no positions until an RA chooses which of the person's positions it may use
-- (policy 002 section 6.3): their person_roleids, as a JSON array.
ALTER TABLE tac_issues ADD COLUMN person_roleids TEXT;

-- Who registered an identity (the RA), so that a second RA can be required to check it.
ALTER TABLE users ADD COLUMN registered_by TEXT;
CREATE INDEX tac_issues_authenticator ON tac_issues(authenticator_id);

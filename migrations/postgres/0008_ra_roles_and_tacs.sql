-- RA roles that are not national job roles (Advanced RA Agent, ID Checker, Local Smartcard
-- Administrator): granted at an organisation by one of its RA Managers, never to themselves.
CREATE TABLE ra_role_grants (
    id          TEXT PRIMARY KEY,
    user_uuid   TEXT NOT NULL REFERENCES users(uuid),
    org_code    TEXT NOT NULL,
    role        TEXT NOT NULL,
    evidence    TEXT,
    granted_by  TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    ended_by    TEXT
);
CREATE INDEX ra_role_grants_user ON ra_role_grants(user_uuid);

-- Temporary access cards: a card certificate bound to a person for at most 72 hours. The
-- authenticator stops working at expires_at; the issue log keeps who issued it, why and when it
-- came back.
ALTER TABLE authenticators ADD COLUMN expires_at BIGINT;
CREATE TABLE tac_issues (
    id               TEXT PRIMARY KEY,
    authenticator_id TEXT NOT NULL REFERENCES authenticators(id),
    user_uuid        TEXT NOT NULL REFERENCES users(uuid),
    tac_name         TEXT NOT NULL,
    reason           TEXT NOT NULL,
    issued_by        TEXT NOT NULL,
    issued_at        BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    returned_at      BIGINT,
    returned_to      TEXT
);
CREATE INDEX tac_issues_user ON tac_issues(user_uuid);

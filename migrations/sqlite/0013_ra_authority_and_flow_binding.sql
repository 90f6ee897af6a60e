-- Issue 14 (security): RA authority scoped to organisations, login flows bound to their browser,
-- step and session, and invitations handed to the person rather than to the RA.

-- The organisation whose RA registered the identity: its affiliation until it holds a position.
ALTER TABLE users ADD COLUMN registered_org TEXT;

-- Flow ids are now stored as digests, so flows written before this migration can never be
-- found again; they live for minutes, so they are simply dropped.
DELETE FROM login_flows;
-- sign_in | choose_role | accept_terms: a flow is finished only by the step it was made for.
ALTER TABLE login_flows ADD COLUMN step TEXT NOT NULL DEFAULT 'sign_in';
-- Digest of the __Host- browser-binding cookie of the browser that started the flow.
ALTER TABLE login_flows ADD COLUMN browser_hash TEXT;
-- After authentication: the session (and its auth_time) the role and terms steps belong to.
ALTER TABLE login_flows ADD COLUMN sid TEXT;
ALTER TABLE login_flows ADD COLUMN auth_time BIGINT;

-- The RA gets a single-use handover link, never the code: opening it (at the desk, by the
-- person) makes the code, which exists only on that page. Until then code_hash is a digest of
-- nothing anyone holds.
ALTER TABLE webauthn_invitations ADD COLUMN handover_hash TEXT;
ALTER TABLE webauthn_invitations ADD COLUMN handed_over_at BIGINT;
CREATE UNIQUE INDEX webauthn_invitations_handover ON webauthn_invitations(handover_hash);

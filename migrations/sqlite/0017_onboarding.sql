-- Issue 19 (supplier onboarding): suppliers, their developers, onboarding managers, initial
-- access tokens for dynamic client registration, each registered client's stage and checks.
CREATE TABLE suppliers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- People (Care Identities) who act for a supplier, and careid's own onboarding managers.
CREATE TABLE supplier_developers (
    supplier_id TEXT NOT NULL REFERENCES suppliers(id),
    user_uuid TEXT NOT NULL REFERENCES users(uuid),
    PRIMARY KEY (supplier_id, user_uuid)
);
CREATE TABLE onboarding_managers (
    user_uuid TEXT PRIMARY KEY REFERENCES users(uuid),
    created_at BIGINT NOT NULL
);

-- RFC 7591 initial access tokens (digest only): one registration each, until they expire.
CREATE TABLE initial_access_tokens (
    token_hash TEXT PRIMARY KEY,
    supplier_id TEXT NOT NULL REFERENCES suppliers(id),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    client_id TEXT
);

-- A client registered by a supplier (its stage is in the client's metadata, careid_stage): its
-- RFC 7592 registration access token (digest), the scopes' justification, and the last complete
-- sign-in by a test identity (code exchanged, userinfo called).
CREATE TABLE supplier_clients (
    client_id TEXT PRIMARY KEY REFERENCES clients(client_id),
    supplier_id TEXT NOT NULL REFERENCES suppliers(id),
    registration_token_hash TEXT NOT NULL UNIQUE,
    scope_justification TEXT NOT NULL DEFAULT '',
    last_test_sign_in_at BIGINT,
    created_at BIGINT NOT NULL,
    promoted_at BIGINT,
    promoted_by TEXT
);

-- Conformance reports careid made by checking the relying party: kept as evidence.
CREATE TABLE conformance_reports (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    passed INTEGER NOT NULL,
    checks TEXT NOT NULL
);
CREATE INDEX conformance_reports_client ON conformance_reports(client_id, created_at);

-- Promotion requests and their decisions.
CREATE TABLE promotion_requests (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    report_id TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    outcome TEXT,
    reason TEXT
);
CREATE INDEX promotion_requests_open ON promotion_requests(decided_at);

-- Synthetic test identities (integration only), and the supplier that made each.
CREATE TABLE test_identities (
    user_uuid TEXT PRIMARY KEY REFERENCES users(uuid),
    supplier_id TEXT NOT NULL REFERENCES suppliers(id),
    created_at BIGINT NOT NULL
);

-- A rotated client secret stays valid until previous_secret_expires_at (the overlap window).
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;

-- Issue 18 (HR feed): access that follows the Electronic Staff Record.

-- Which access-control position an organisation's HR position gives (PBAC). Many HR
-- positions may map to one access-control position; one HR position gives one.
CREATE TABLE hr_position_maps (
    org_code TEXT NOT NULL,
    hr_position TEXT NOT NULL,
    position_id TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    mapped_by TEXT NOT NULL,
    mapped_at BIGINT NOT NULL,
    PRIMARY KEY (org_code, hr_position)
);

-- An HR person record (an ESR person at one organisation), its link to a Care Identity and
-- the state the feed keeps for it. `version` is bumped by every application of its events:
-- two processes applying one person's events cannot both write (optimistic concurrency).
CREATE TABLE hr_people (
    org_code TEXT NOT NULL,
    person_id TEXT NOT NULL,
    user_uuid TEXT,
    version BIGINT NOT NULL,
    left_at BIGINT,
    leaver_enforced_at BIGINT,
    suspended_identity BIGINT NOT NULL,
    details TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_code, person_id)
);
CREATE INDEX hr_people_leavers ON hr_people(left_at) WHERE leaver_enforced_at IS NULL;
CREATE INDEX hr_people_user ON hr_people(user_uuid);

-- Every HR event, recorded before it is applied. The HR system's event id is the key, so a
-- duplicate is recognised and not applied twice. state: pending, applied or attention.
CREATE TABLE hr_inbox (
    event_id TEXT PRIMARY KEY,
    org_code TEXT NOT NULL,
    person_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    digest TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    applied_at BIGINT
);
CREATE INDEX hr_inbox_person ON hr_inbox(org_code, person_id, recorded_at);
CREATE INDEX hr_inbox_pending ON hr_inbox(org_code, person_id) WHERE state = 'pending';
CREATE INDEX hr_inbox_attention ON hr_inbox(org_code) WHERE state = 'attention';

-- The person-role assignments an HR assignment gave: one row per stretch of one HR
-- assignment in one access-control position.
CREATE TABLE hr_assignment_roles (
    org_code TEXT NOT NULL,
    person_id TEXT NOT NULL,
    assignment_id TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    position_id TEXT NOT NULL,
    user_uuid TEXT NOT NULL,
    ends_at BIGINT,
    person_roleids TEXT NOT NULL,
    PRIMARY KEY (org_code, person_id, assignment_id, starts_at, position_id, user_uuid)
);

-- Personal details HR changed, waiting for an RA (policy 002 section 6.1.2).
CREATE TABLE hr_detail_changes (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    org_code TEXT NOT NULL,
    person_id TEXT NOT NULL,
    user_uuid TEXT NOT NULL,
    changes TEXT NOT NULL,
    core BIGINT NOT NULL,
    state TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    note TEXT
);
CREATE INDEX hr_detail_changes_open ON hr_detail_changes(org_code) WHERE state = 'pending';

-- When the scheduler ended the sessions acting in an assignment that had ended (contract end,
-- inter-organisation term, a mover's old position, a leaver): each is handled once.
ALTER TABLE role_assignments ADD COLUMN expiry_handled_at BIGINT;
CREATE INDEX role_assignments_unhandled_ends ON role_assignments(ends_at) WHERE expiry_handled_at IS NULL;

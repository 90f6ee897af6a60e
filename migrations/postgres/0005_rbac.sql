-- National RBAC reference data, organisations, positions and person-role assignments.

CREATE TABLE organisations (
    org_code  TEXT PRIMARY KEY,
    org_name  TEXT NOT NULL
);

CREATE TABLE rbac_roles (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role_code  TEXT,
    role_name  TEXT
);

CREATE TABLE rbac_activities (
    code  TEXT PRIMARY KEY,
    name  TEXT NOT NULL
);

CREATE TABLE rbac_workgroups (
    code      TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    org_code  TEXT NOT NULL
);

-- An organisation's named access-control position: one or more access profiles
-- (job role + activities + workgroups at an organisation), optionally tied to an HR position.
CREATE TABLE positions (
    id            TEXT PRIMARY KEY,
    org_code      TEXT NOT NULL,
    name          TEXT NOT NULL,
    esr_position  TEXT,
    profiles      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (org_code, name)
);

-- A person's membership of an organisation (person_orgid, 12 digits).
CREATE TABLE person_orgs (
    user_uuid     TEXT NOT NULL,
    org_code      TEXT NOT NULL,
    person_orgid  TEXT NOT NULL UNIQUE,
    PRIMARY KEY (user_uuid, org_code)
);

-- One row per access profile a person holds through a position (person_roleid, 12 digits).
-- It gives access only from starts_at until ends_at.
CREATE TABLE role_assignments (
    person_roleid  TEXT PRIMARY KEY,
    user_uuid      TEXT NOT NULL,
    position_id    TEXT NOT NULL,
    profile_index  BIGINT NOT NULL,
    org_code       TEXT NOT NULL,
    starts_at      BIGINT NOT NULL,
    ends_at        BIGINT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX role_assignments_user ON role_assignments(user_uuid);

-- The role chosen in a sign-in session (reused until changedrole asks again).
ALTER TABLE sessions ADD COLUMN selected_roleid TEXT;

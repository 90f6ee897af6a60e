-- Requests for access (a position for a person): raised by RA staff or a sponsor, approved or
-- rejected by a sponsor who neither raised it nor is its subject, then carried out by RA staff
-- other than the approver (approval and execution are separate steps).
CREATE TABLE access_requests (
    id              TEXT PRIMARY KEY,
    user_uuid       TEXT NOT NULL REFERENCES users(uuid),
    position_id     TEXT NOT NULL,
    reason          TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    requested_at    BIGINT NOT NULL,
    status          TEXT NOT NULL,     -- pending | approved | rejected | fulfilled
    decided_by      TEXT,
    decided_at      BIGINT,
    decision_note   TEXT,
    fulfilled_by    TEXT,
    fulfilled_at    BIGINT,
    person_roleids  TEXT               -- JSON array, once fulfilled
);
CREATE INDEX access_requests_status ON access_requests(status);

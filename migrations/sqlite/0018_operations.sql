-- Issue 20 (operations). `/readyz` proves the database takes writes by updating this one row
-- (within database.readiness_timeout_ms), not only that it answers a read.
CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
INSERT INTO readiness_probe (id, checked_at) VALUES (1, 0);

-- Migrations that break the versions before them (the "contract" step of expand/contract,
-- docs/operations.md). Such a migration inserts its own version and the reason here; an older
-- careid that finds an applied migration it does not know listed here refuses to start, while
-- unknown migrations not listed (additions) leave it running beside the newer version.
CREATE TABLE schema_breaks (
    version BIGINT PRIMARY KEY,
    reason TEXT NOT NULL
);

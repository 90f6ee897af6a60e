-- A hash-chained audit trail: tampering with audit_events (a row altered, deleted or slipped in)
-- is detectable with `careid audit verify`.

-- seq numbers chained rows 1, 2, 3 ... with no gaps. row_hash is the hex SHA-256 of the row's
-- fields and prev_hash, which is the row_hash of the row with the previous seq (a fixed genesis
-- value for seq 1). src/store/audit.rs computes and checks them.
ALTER TABLE audit_events ADD COLUMN seq BIGINT;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_events ADD COLUMN row_hash TEXT;
CREATE UNIQUE INDEX audit_events_seq ON audit_events (seq);

-- The head of the chain: the last seq and row_hash. Each append is one transaction that first
-- updates this row, which queues concurrent appends (SQLite's write lock, PostgreSQL's row
-- lock) so no two rows chain to the same predecessor.
--
-- Rows written before this migration cannot be chained in portable SQL, so they stay unchained:
-- legacy_through_id is the last id they used. An unchained row with a higher id was inserted
-- out of chain.
CREATE TABLE audit_head (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    seq                 BIGINT NOT NULL,
    last_hash           TEXT,
    legacy_through_id   BIGINT NOT NULL
);
INSERT INTO audit_head (id, seq, last_hash, legacy_through_id)
SELECT 1, 0, NULL, COALESCE(MAX(id), 0) FROM audit_events;

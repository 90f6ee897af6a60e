-- A code presented a second time is marked here. Tokens from its first redemption that are still
-- waiting to be written when the replay is refused cannot be revoked by it (they are not there
-- yet); they read this mark in their own transaction and are written already revoked.
ALTER TABLE auth_codes ADD COLUMN replayed_at BIGINT;

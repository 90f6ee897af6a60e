-- Signing-key lifecycle: publish before use, one new key per generation, private keys encrypted.

-- A key is published from creation and signs only from activate_at. Existing keys were active
-- from creation.
ALTER TABLE signing_keys ADD COLUMN activate_at BIGINT NOT NULL DEFAULT 0;
UPDATE signing_keys SET activate_at = created_at;

-- 1, 2, 3 ... per algorithm, in creation order. The unique index admits one key per generation,
-- so when several processes add the key after the same generation (scheduled rotation, first
-- start), exactly one succeeds.
ALTER TABLE signing_keys ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
UPDATE signing_keys SET generation = (
    SELECT COUNT(*) FROM signing_keys AS earlier
    WHERE earlier.alg = signing_keys.alg
      AND (earlier.created_at < signing_keys.created_at
           OR (earlier.created_at = signing_keys.created_at AND earlier.kid <= signing_keys.kid))
);
CREATE UNIQUE INDEX signing_keys_alg_generation ON signing_keys (alg, generation);

-- The private key is stored sealed with AES-256-GCM under keys.encryption_key. Plain-text PEMs
-- written by earlier versions are sealed in place when careid next starts.
ALTER TABLE signing_keys RENAME COLUMN private_pem TO sealed_private_key;

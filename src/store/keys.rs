//! The `signing_keys` table: careid's JWT signing keys, shared by every process. Private keys are
//! stored only sealed (see `domain::keys`); this module never sees them in plain text.

use sqlx::Row;

use super::{from_json, Db, StoreError};
use crate::clock::UnixTime;
use crate::model::client::SigningAlg;
use crate::model::keys::StoredKey;

impl Db {
    /// Adds a key unless one of its algorithm already has its generation (unique index): of
    /// several processes adding the key after the same generation, exactly one succeeds. This is
    /// safe on PostgreSQL under READ COMMITTED too, where an `INSERT … WHERE NOT EXISTS` is not.
    /// Returns whether this call added it.
    pub async fn insert_signing_key(&self, k: &StoredKey) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, generation, sealed_private_key, public_jwk, created_at, activate_at, retire_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&k.kid)
        .bind(k.alg.as_str())
        .bind(k.generation)
        .bind(&k.sealed_private_key)
        .bind(serde_json::to_string(&k.public_jwk)?)
        .bind(k.created_at)
        .bind(k.activate_at)
        .bind(k.retire_at)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every key, retired ones included, as stored (private keys still sealed).
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, generation, sealed_private_key, public_jwk, created_at, activate_at, retire_at \
             FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let alg: String = r.try_get("alg")?;
                Ok(StoredKey {
                    kid: r.try_get("kid")?,
                    alg: SigningAlg::parse(&alg)
                        .ok_or_else(|| StoreError::Corrupt(format!("key algorithm {alg}")))?,
                    generation: r.try_get("generation")?,
                    sealed_private_key: r.try_get("sealed_private_key")?,
                    public_jwk: from_json(&r.try_get::<String, _>("public_jwk")?)?,
                    created_at: r.try_get("created_at")?,
                    activate_at: r.try_get("activate_at")?,
                    retire_at: r.try_get("retire_at")?,
                })
            })
            .collect()
    }

    /// Gives a replaced key its `retire_at`, unless it already has one (every process computes
    /// the same value; the first to write it wins). Returns whether this call set it.
    pub async fn schedule_key_retirement(
        &self,
        kid: &str,
        retire_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET retire_at = $1 WHERE kid = $2 AND retire_at IS NULL",
        )
        .bind(retire_at)
        .bind(kid)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Retires at `now` every other key of `alg`, including ones already retiring later or not yet
    /// active (`keys rotate --now`). Returns how many.
    pub async fn retire_other_signing_keys(
        &self,
        alg: SigningAlg,
        except_kid: &str,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET retire_at = $1 \
             WHERE alg = $2 AND kid <> $3 AND (retire_at IS NULL OR retire_at > $1)",
        )
        .bind(now)
        .bind(alg.as_str())
        .bind(except_kid)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// Replaces a key's stored private key, if it still holds `old` (sealing a plain-text key
    /// left by an earlier careid; another process may have done it first). Returns whether this
    /// call replaced it.
    pub async fn replace_sealed_private_key(
        &self,
        kid: &str,
        old: &str,
        sealed: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET sealed_private_key = $1 WHERE kid = $2 AND sealed_private_key = $3",
        )
        .bind(sealed)
        .bind(kid)
        .bind(old)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

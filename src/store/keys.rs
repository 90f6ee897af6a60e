//! The `signing_keys` table: careid's JWT signing keys, shared by every process.

use sqlx::Row;

use super::{from_json, Db, StoreError};
use crate::clock::UnixTime;
use crate::domain::client::SigningAlg;
use crate::domain::keys::StoredKey;

impl Db {
    pub async fn insert_signing_key(&self, k: &StoredKey) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_pem, public_jwk, created_at, retire_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(&k.private_pem)
            .bind(serde_json::to_string(&k.public_jwk)?)
            .bind(k.created_at)
            .bind(k.retire_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let alg: String = r.try_get("alg")?;
                Ok(StoredKey {
                    kid: r.try_get("kid")?,
                    alg: SigningAlg::parse(&alg)
                        .ok_or_else(|| StoreError::Corrupt(format!("key algorithm {alg}")))?,
                    private_pem: r.try_get("private_pem")?,
                    public_jwk: from_json(&r.try_get::<String, _>("public_jwk")?)?,
                    created_at: r.try_get("created_at")?,
                    retire_at: r.try_get("retire_at")?,
                })
            })
            .collect()
    }

    /// Schedules the retirement of every current key of `alg` (used when a new one replaces it).
    pub async fn schedule_key_retirement(
        &self,
        alg: SigningAlg,
        except_kid: &str,
        retire_at: UnixTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE signing_keys SET retire_at = $1 WHERE alg = $2 AND kid <> $3 AND retire_at IS NULL")
            .bind(retire_at)
            .bind(alg.as_str())
            .bind(except_kid)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

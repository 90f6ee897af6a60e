//! The `auth_codes` table. A code is stored by its SHA-256; redeeming it marks it used in the same
//! statement that reads it, so two concurrent redemptions cannot both succeed.

use sqlx::Row;

use super::{from_json, Db, StoreError, WriteSet};
use crate::clock::UnixTime;
use crate::domain::claims::CodeGrant;

/// What redeeming a code found.
#[derive(Debug)]
pub enum Redeemed {
    Fresh(Box<CodeGrant>),
    /// Redeemed before: the caller revokes what it issued.
    AlreadyUsed,
    Unknown,
}

impl WriteSet {
    pub fn insert_code(
        &mut self,
        code_hash: &str,
        grant: &CodeGrant,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.insert(
            "auth_codes (code_hash, client_id, grant_json, expires_at)",
            vec![
                code_hash.into(),
                (&grant.client_id).into(),
                serde_json::to_string(grant)?.into(),
                expires_at.into(),
            ],
        );
        Ok(())
    }
}

impl Db {
    pub async fn insert_code(
        &self,
        code_hash: &str,
        grant: &CodeGrant,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        let mut set = WriteSet::new();
        set.insert_code(code_hash, grant, expires_at)?;
        self.commit(set).await?;
        Ok(())
    }

    /// Marks the code used and returns its grant, once. Expiry is the caller's rule.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Redeemed, StoreError> {
        let mut set = WriteSet::new();
        set.fetch(
            "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL RETURNING grant_json",
            vec![now.into(), code_hash.into()],
        );
        let row = self
            .commit(set)
            .await?
            .pop()
            .and_then(|w| w.rows.into_iter().next());
        if let Some(r) = row {
            return Ok(Redeemed::Fresh(Box::new(from_json(
                &r.try_get::<String, _>("grant_json")?,
            )?)));
        }
        let used = sqlx::query("SELECT 1 AS one FROM auth_codes WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(self.pool())
            .await?;
        Ok(if used.is_some() {
            Redeemed::AlreadyUsed
        } else {
            Redeemed::Unknown
        })
    }
}

//! The `auth_codes` table. A code is stored by its SHA-256. Redeeming it marks it used in the
//! commit that writes its tokens, guarded by `used_at IS NULL`, so of two concurrent
//! redemptions only one writes anything.

use sqlx::Row;

use super::{from_json, Db, StoreError, WriteSet};
use crate::clock::UnixTime;
use crate::model::grant::CodeGrant;

/// What a code's row says.
#[derive(Debug)]
pub enum CodeState {
    Unused(Box<CodeGrant>),
    /// Presented before: a second presentation revokes what the first issued.
    Used,
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

impl WriteSet {
    /// A set written only if it marks the code used: the first of concurrent redemptions
    /// writes its tokens, the others get [`StoreError::GuardFailed`] and write nothing. A code
    /// marked replayed ([`Db::revoke_tokens_of_code`]) is never redeemed.
    pub fn redeeming_code(code_hash: &str, now: UnixTime) -> WriteSet {
        WriteSet::guarded(
            "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND replayed_at IS NULL",
            vec![now.into(), code_hash.into()],
        )
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

    /// A code as it stands (a read: redeeming it is [`WriteSet::redeeming_code`] in the set that
    /// writes the tokens). Expiry is the caller's rule.
    pub async fn code(&self, code_hash: &str) -> Result<CodeState, StoreError> {
        let row = sqlx::query("SELECT grant_json, used_at FROM auth_codes WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Ok(CodeState::Unknown);
        };
        if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
            return Ok(CodeState::Used);
        }
        Ok(CodeState::Unused(Box::new(from_json(
            &row.try_get::<String, _>("grant_json")?,
        )?)))
    }

    /// Marks a code used without issuing anything (a refused presentation spends the code too).
    /// False when it was used already: another presentation got there first.
    pub async fn spend_code(&self, code_hash: &str, now: UnixTime) -> Result<bool, StoreError> {
        Ok(self
            .commit_guarded(WriteSet::redeeming_code(code_hash, now))
            .await?
            .is_some())
    }
}

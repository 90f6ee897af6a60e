//! A signed-in RA console session (see `domain/console.rs`).

use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The access token careid issued to its console client for this person: presented to the
    /// same RA rules as an admin API caller's.
    pub access_token: String,
    pub user_uuid: String,
    /// When the person last authenticated (card or security key): re-authentication before
    /// sensitive actions compares against it.
    pub auth_time: UnixTime,
    pub created_at: UnixTime,
    pub last_seen_at: UnixTime,
    /// The token's expiry: the session cannot outlive it.
    pub expires_at: UnixTime,
}

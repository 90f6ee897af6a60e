//! The card agent's protocol (`docs/agent.md`): the messages `careid-agent` and the server
//! exchange, the exact bytes the card signs, and the server's record of an agent sign-in (a
//! binding: which card signed, which session it made, when the agent last spoke).

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

/// What the card signs for a challenge: a fixed context, the issuer (a signature made for one
/// careid is worthless at another), the challenge id and its nonce, one per line.
pub fn to_be_signed(issuer: &str, challenge_id: &str, nonce: &str) -> Vec<u8> {
    format!("careid card agent sign-in v1\n{issuer}\n{challenge_id}\n{nonce}").into_bytes()
}

/// The short code a sign-in page shows, as people type it: case, spaces and dashes do not
/// matter. None when it cannot be a code.
pub fn normalise_code(code: &str) -> Option<String> {
    let code: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LENGTH && code.chars().all(|c| CODE_ALPHABET.contains(c))).then_some(code)
}

/// Letters and digits that cannot be mistaken for one another (no 0/O, 1/I/L, vowels).
pub const CODE_ALPHABET: &str = "BCDFGHJKMNPQRSTVWXZ23456789";
pub const CODE_LENGTH: usize = 8;

/// `XXXX-XXXX`, as the page shows a normalised code.
pub fn display_code(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

/// `POST /agent/v1/challenge`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The code the browser's sign-in page shows.
    pub code: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChallengeResponse {
    pub challenge_id: String,
    pub nonce: String,
    /// The application the person is signing in to, for the agent to show before the PIN.
    pub client_name: String,
    pub expires_in: i64,
}

/// `POST /agent/v1/login`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentLoginRequest {
    pub challenge_id: String,
    /// The card's certificate first, then any intermediates: base64 (standard) DER.
    pub certificates: Vec<String>,
    /// The card's signature over [`to_be_signed`]: base64url without padding.
    pub signature: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AgentLoginResponse {
    /// Authenticates this agent's heartbeats and removal notice for this sign-in only.
    pub agent_token: String,
    pub binding_id: String,
    pub heartbeat_interval_secs: i64,
}

/// `POST /agent/v1/heartbeat` and `/agent/v1/removed`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BindingStatus {
    /// False once the sign-in has ended (card removed, signed out, agent silent too long): the
    /// agent stops watching for it.
    pub active: bool,
}

/// An agent sign-in: one card's signature for one browser's pending sign-in, and the session
/// it then made.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentBinding {
    pub id: String,
    pub authenticator_id: String,
    pub user_uuid: String,
    /// The session it made, once the browser has finished the sign-in.
    pub sid: Option<String>,
    pub created_at: UnixTime,
    pub last_heartbeat_at: UnixTime,
    pub ended_at: Option<UnixTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_the_way_people_type_them() {
        assert_eq!(normalise_code("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalise_code(" BCDF GHJK").as_deref(), Some("BCDFGHJK"));
        assert_eq!(display_code("BCDFGHJK"), "BCDF-GHJK");
        assert_eq!(normalise_code("BCDF-GHJ"), None, "too short");
        assert_eq!(
            normalise_code("BCDF-GHJO"),
            None,
            "O is not in the alphabet"
        );
        assert_eq!(normalise_code("BCDF-GHJÉ"), None);
    }

    #[test]
    fn the_signed_bytes_name_the_issuer_and_the_challenge() {
        let a = to_be_signed("https://a.example", "c1", "n1");
        assert_ne!(a, to_be_signed("https://b.example", "c1", "n1"));
        assert_ne!(a, to_be_signed("https://a.example", "c2", "n1"));
        assert_ne!(a, to_be_signed("https://a.example", "c1", "n2"));
    }
}

//! Sign-in sessions at careid (the IdP session behind the `__Host-` cookie): what one records
//! and when it stops being usable. Idle and absolute limits default to 15 minutes and 12 hours,
//! the limits CIS2 relying parties themselves apply.

use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Public session id: the `sid` claim in ID tokens and logout tokens. Never reused.
    pub sid: String,
    pub user_uuid: String,
    pub authenticator_id: String,
    pub amr: String,
    pub aal: i64,
    /// When the user last actively authenticated.
    pub auth_time: UnixTime,
    pub created_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub absolute_expiry: UnixTime,
    pub ended_at: Option<UnixTime>,
}

impl Session {
    /// Usable now: not ended, not past the absolute limit, used within the idle limit.
    pub fn is_usable(&self, now: UnixTime, idle_timeout: i64) -> bool {
        self.ended_at.is_none()
            && now < self.absolute_expiry
            && now - self.last_seen_at < idle_timeout
    }

    /// Does the authentication satisfy `max_age` (OIDC Core §3.1.2.1)?
    pub fn fresh_enough(&self, now: UnixTime, max_age: Option<i64>) -> bool {
        max_age.is_none_or(|m| now - self.auth_time <= m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            sid: "s".into(),
            user_uuid: "000000000001".into(),
            authenticator_id: "a".into(),
            amr: "N3_SMARTCARD".into(),
            aal: 3,
            auth_time: 1000,
            created_at: 1000,
            last_seen_at: 1000,
            absolute_expiry: 1000 + 43200,
            ended_at: None,
        }
    }

    #[test]
    fn idle_and_absolute_limits() {
        let s = session();
        assert!(s.is_usable(1000 + 899, 900));
        assert!(!s.is_usable(1000 + 900, 900));
        let mut busy = s.clone();
        busy.last_seen_at = 1000 + 43199;
        assert!(!busy.is_usable(1000 + 43200, 900));
        let mut ended = s;
        ended.ended_at = Some(1001);
        assert!(!ended.is_usable(1002, 900));
    }

    #[test]
    fn max_age_compares_with_auth_time() {
        let s = session();
        assert!(s.fresh_enough(1300, Some(300)));
        assert!(!s.fresh_enough(1301, Some(300)));
        assert!(s.fresh_enough(99999, None));
    }
}

//! A bound on audit rows written for unauthenticated failures (issue #14 item 6). Anyone can
//! present a wrong card, a bad WebAuthn answer or a wrong client secret as often as they like,
//! and each refusal is a row in the hash-chained audit trail. Per kind, outcome and source
//! address, the first `limits.failure_audit_per_minute` refusals of each minute are written as
//! usual; the rest are counted (`careid_audit_failures_suppressed_total`) and summed up in one
//! `audit.failures_suppressed` event per key and minute, written by the server's flush task.
//! Successes and every other kind of event are always written.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::UnixTime;

/// Event kinds an unauthenticated caller can cause at will.
const CAPPED_KINDS: &[&str] = &[
    crate::model::audit::AuditKind::LoginSmartcard.as_str(),
    crate::model::audit::AuditKind::LoginWebauthn.as_str(),
    crate::model::audit::AuditKind::ClientAuthentication.as_str(),
];
/// Beyond this many keys, new sources are counted together under `*`.
const MAX_KEYS: usize = 10_000;
pub const WINDOW_SECS: i64 = 60;
pub const SUPPRESSED_KIND: crate::model::audit::AuditKind =
    crate::model::audit::AuditKind::AuditFailuresSuppressed;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    kind: String,
    outcome: String,
    source: String,
}

#[derive(Debug)]
struct Window {
    start: UnixTime,
    written: u32,
    suppressed: u64,
    last_at: UnixTime,
}

/// A window's suppressed events, to be written as one audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    pub kind: String,
    pub outcome: String,
    pub source: String,
    pub count: u64,
    pub from: UnixTime,
    pub to: UnixTime,
}

#[derive(Debug)]
pub struct FailureAudit {
    per_window: u32,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    windows: HashMap<Key, Window>,
    finished: Vec<Suppressed>,
}

fn window_start(now: UnixTime) -> UnixTime {
    now - now.rem_euclid(WINDOW_SECS)
}

impl FailureAudit {
    /// `per_window` 0: no cap.
    pub fn new(per_window: u32) -> FailureAudit {
        FailureAudit {
            per_window,
            state: Mutex::default(),
        }
    }

    /// Whether this event is written. False (and counted) when it is an unauthenticated
    /// failure beyond the cap of its source's current window.
    pub fn admit(&self, kind: &str, outcome: &str, now: UnixTime) -> bool {
        if self.per_window == 0 || outcome == "success" || !CAPPED_KINDS.contains(&kind) {
            return true;
        }
        let source = super::request_origin::source()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = Key {
            kind: kind.into(),
            outcome: outcome.into(),
            source,
        };
        if state.windows.len() >= MAX_KEYS && !state.windows.contains_key(&key) {
            key.source = "*".into();
        }
        let start = window_start(now);
        let State { windows, finished } = &mut *state;
        let w = windows.entry(key.clone()).or_insert(Window {
            start,
            written: 0,
            suppressed: 0,
            last_at: now,
        });
        if w.start != start {
            if w.suppressed > 0 {
                finished.push(summary(&key, w));
            }
            *w = Window {
                start,
                written: 0,
                suppressed: 0,
                last_at: now,
            };
        }
        w.last_at = now;
        if w.written < self.per_window {
            w.written += 1;
            return true;
        }
        w.suppressed += 1;
        metrics::counter!("careid_audit_failures_suppressed_total", "kind" => kind.to_string())
            .increment(1);
        false
    }

    /// Suppressed counts of windows that have ended by `now` (all of them with `all`, at
    /// shutdown), removing finished windows.
    pub fn take_finished(&self, now: UnixTime, all: bool) -> Vec<Suppressed> {
        let current = window_start(now);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State { windows, finished } = &mut *state;
        let mut out = std::mem::take(finished);
        windows.retain(|key, w| {
            if w.start < current || all {
                if w.suppressed > 0 {
                    out.push(summary(key, w));
                }
                false
            } else {
                true
            }
        });
        out
    }
}

fn summary(key: &Key, w: &Window) -> Suppressed {
    Suppressed {
        kind: key.kind.clone(),
        outcome: key.outcome.clone(),
        source: key.source.clone(),
        count: w.suppressed,
        from: w.start,
        to: w.last_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::request_origin::{RequestOrigin, ORIGIN};
    use std::net::IpAddr;

    fn from(ip: IpAddr) -> RequestOrigin {
        RequestOrigin::new(ip, None)
    }

    #[tokio::test]
    async fn failures_beyond_the_cap_are_counted_per_source_and_window() {
        let f = FailureAudit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let now = 6_000; // a window start
        let admitted = ORIGIN
            .scope(from(a), async {
                (0..5)
                    .filter(|_| f.admit("login.smartcard", "unknown_card", now + 1))
                    .count()
            })
            .await;
        assert_eq!(admitted, 2);
        assert!(
            ORIGIN
                .scope(from(b), async {
                    f.admit("login.smartcard", "unknown_card", now + 2)
                })
                .await
        );
        assert!(f.admit("login.smartcard", "success", now));
        assert!(f.admit("session.ended", "logout", now));
        assert!(
            f.take_finished(now + 30, false).is_empty(),
            "window still open"
        );
        let done = f.take_finished(now + 60, false);
        assert_eq!(
            done,
            vec![Suppressed {
                kind: "login.smartcard".into(),
                outcome: "unknown_card".into(),
                source: "192.0.2.1".into(),
                count: 3,
                from: now,
                to: now + 1,
            }]
        );
        assert!(
            ORIGIN
                .scope(from(a), async {
                    f.admit("login.smartcard", "unknown_card", now + 61)
                })
                .await
        );
        assert!(FailureAudit::new(0).admit("client.authentication", "failure", now));
    }
}

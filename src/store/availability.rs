//! Telling "the database cannot be used right now" apart from other errors: the pool gave up
//! waiting for a connection (`database.acquire_timeout_ms`), the connection broke, PostgreSQL is
//! shutting down, out of resources or cancelled a statement at `database.statement_timeout_ms`,
//! or SQLite's disk is full, unwritable, locked or gone. Such errors become
//! [`StoreError::Unavailable`](super::StoreError::Unavailable) and are noted with the time, so
//! the HTTP layer can answer 503 with `Retry-After` rather than 500 while it lasts
//! ([`Db::unavailable_recently`](super::Db::unavailable_recently)).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Milliseconds after [`origin`] of the last unavailable error (0: none yet).
static LAST_UNAVAILABLE: AtomicU64 = AtomicU64::new(0);

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Records that the database was just unavailable.
pub(crate) fn noticed() {
    let since = origin().elapsed().as_millis() as u64;
    LAST_UNAVAILABLE.store(since.max(1), Ordering::Relaxed);
    metrics::counter!("careid_database_unavailable_total").increment(1);
}

/// Whether the database was unavailable within `window`.
pub(crate) fn recently(window: Duration) -> bool {
    let last = LAST_UNAVAILABLE.load(Ordering::Relaxed);
    last != 0 && origin().elapsed().as_millis() as u64 <= last + window.as_millis() as u64
}

/// Whether `e` means the database cannot be used now (rather than a bad statement or a
/// constraint).
pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| unavailable_code(&c)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs (five characters) and SQLite result codes (decimal, extended codes
/// carry the primary code in their low byte).
fn unavailable_code(code: &str) -> bool {
    if code.len() == 5 {
        // A SQLSTATE: 08 connection exception, 53 insufficient resources (53100 disk full),
        // 58 system error (I/O), 57P01-03 shutting down or cannot connect now, 57014 a
        // statement cancelled by statement_timeout.
        let class = &code[..2];
        return matches!(class, "08" | "53" | "58") || code.starts_with("57P") || code == "57014";
    }
    // An SQLite result code (at most four digits): BUSY 5, LOCKED 6, READONLY 8, IOERR 10,
    // FULL 13, CANTOPEN 14.
    code.chars().all(|c| c.is_ascii_digit())
        && code
            .parse::<u32>()
            .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_codes_are_told_from_mistakes() {
        for outage in [
            "08006", "57P01", "57P03", "57014", "53100", "58030", "13", "10", "778", "5", "517",
            "14", "8",
        ] {
            assert!(unavailable_code(outage), "{outage}");
        }
        // Unique violation, syntax error, foreign key (PostgreSQL); constraint, error (SQLite).
        for mistake in ["23505", "42601", "23503", "19", "2067", "1"] {
            assert!(!unavailable_code(mistake), "{mistake}");
        }
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }
}

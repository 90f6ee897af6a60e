//! The live audit sink (`[audit]`): a task that follows the audit trail and hands every new
//! event, in chain order and with its hashes, to the trust's SIEM as JSON lines, appended to a
//! file or sent to syslog. It reads committed rows (so it sees the events of every process that
//! shares the database) and records the last `seq` delivered in a cursor file, written after
//! each batch: delivery is at least once and in order; after a crash a batch may come again,
//! and receivers drop repeats by `seq`. A failed delivery is logged, counted
//! (`careid_audit_sink_failures_total`) and retried on the next poll from the same cursor.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::provider::Provider;
use crate::config::AuditConfig;
use crate::model::audit::ExportedAuditEvent;

/// Events read per query.
const BATCH: i64 = 500;

/// Where events go.
#[derive(Debug, Clone)]
struct Targets {
    file: Option<PathBuf>,
    syslog: Option<PathBuf>,
    cursor: PathBuf,
}

impl Targets {
    fn of(c: &AuditConfig) -> Option<Targets> {
        if c.sink_file.is_none() && c.sink_syslog.is_none() {
            return None;
        }
        Some(Targets {
            file: c.sink_file.clone(),
            syslog: c.sink_syslog.clone(),
            cursor: c.cursor_file()?,
        })
    }
}

/// Why a batch was not delivered.
#[derive(Debug, thiserror::Error)]
enum SinkError {
    #[error("reading the audit trail: {0}")]
    Read(#[from] crate::store::StoreError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("the cursor file {0} does not hold a seq")]
    BadCursor(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |e| SinkError::Io(path.display().to_string(), e)
}

/// The last `seq` delivered (0 before the first).
fn read_cursor(path: &Path) -> Result<i64, SinkError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| SinkError::BadCursor(path.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io(path)(e)),
    }
}

/// Replaces the cursor file whole (write aside, then rename), so it is never half written.
fn write_cursor(path: &Path, seq: i64) -> Result<(), SinkError> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".new");
    let aside = PathBuf::from(aside);
    std::fs::write(&aside, format!("{seq}\n")).map_err(io(&aside))?;
    std::fs::rename(&aside, path).map_err(io(path))
}

/// An RFC 5424 message: facility authpriv (10), severity informational (6).
fn syslog_message(event: &ExportedAuditEvent, line: &str) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(event.at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into());
    format!("<86>1 {at} - careid - audit - {line}")
}

fn deliver(targets: &Targets, events: &[ExportedAuditEvent]) -> Result<(), SinkError> {
    let lines: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect();
    if let Some(path) = &targets.file {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        let mut text = lines.join("\n");
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io(path))?;
        file.sync_data().map_err(io(path))?;
    }
    if let Some(path) = &targets.syslog {
        let socket = std::os::unix::net::UnixDatagram::unbound().map_err(io(path))?;
        for (event, line) in events.iter().zip(&lines) {
            socket
                .send_to(syslog_message(event, line).as_bytes(), path)
                .map_err(io(path))?;
        }
    }
    Ok(())
}

/// Delivers everything after the cursor; returns how many events went.
async fn catch_up(provider: &Provider, targets: &Targets) -> Result<u64, SinkError> {
    let mut cursor = read_cursor(&targets.cursor)?;
    let mut sent = 0;
    loop {
        let events = provider.db.audit_export_after(cursor, BATCH).await?;
        let Some(last) = events.last() else {
            return Ok(sent);
        };
        let last = last.seq;
        let count = events.len();
        // File writes, fsync and socket sends block: off the runtime's threads.
        let (to, cursor_file) = (targets.clone(), targets.cursor.clone());
        tokio::task::spawn_blocking(move || {
            deliver(&to, &events)?;
            write_cursor(&cursor_file, last)
        })
        .await
        .map_err(|e| SinkError::Io("the delivery task".into(), std::io::Error::other(e)))??;
        metrics::counter!("careid_audit_sink_events_total").increment(count as u64);
        metrics::gauge!("careid_audit_sink_seq").set(last as f64);
        sent += count as u64;
        cursor = last;
        if (count as i64) < BATCH {
            return Ok(sent);
        }
    }
}

/// Runs until shutdown when a sink is configured (one last catch-up on the way out).
pub async fn run_audit_sink(provider: Arc<Provider>, mut shutdown: watch::Receiver<bool>) {
    let Some(targets) = Targets::of(&provider.config.audit) else {
        return;
    };
    let poll = Duration::from_millis(provider.config.audit.sink_poll_ms);
    tracing::info!(cursor = %targets.cursor.display(), "audit sink started");
    loop {
        if let Err(e) = catch_up(&provider, &targets).await {
            metrics::counter!("careid_audit_sink_failures_total").increment(1);
            tracing::error!(error = %e, "audit sink: events not delivered; retrying");
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_survives_a_restart_and_refuses_garbage() {
        let dir = std::env::temp_dir().join(format!("careid-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cursor = dir.join("audit.cursor");
        assert_eq!(read_cursor(&cursor).unwrap(), 0, "no file: from the start");
        write_cursor(&cursor, 42).unwrap();
        assert_eq!(read_cursor(&cursor).unwrap(), 42);
        std::fs::write(&cursor, "forty-two").unwrap();
        assert!(matches!(read_cursor(&cursor), Err(SinkError::BadCursor(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn syslog_messages_are_rfc5424_authpriv_info() {
        let e = ExportedAuditEvent {
            seq: 7,
            at: 1_800_000_000,
            kind: "login.smartcard".into(),
            outcome: "success".into(),
            actor: None,
            client_id: None,
            detail: "{}".into(),
            prev_hash: "a".into(),
            row_hash: "b".into(),
        };
        assert_eq!(
            syslog_message(&e, "{\"seq\":7}"),
            "<86>1 2027-01-15T08:00:00Z - careid - audit - {\"seq\":7}"
        );
    }
}

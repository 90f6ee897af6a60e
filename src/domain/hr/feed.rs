//! The two doors HR events come in by, and their one path: the HTTPS API's batches (a machine
//! client's token, for its own organisations only) and `careid hr import FILE` (CSV or JSON
//! Lines, streamed). Rows are checked, the good ones recorded in the inbox before anything is
//! applied (a duplicate id is acknowledged, not recorded again), then the people they concern
//! are applied (`apply.rs`). A bad row never stops the good ones: it is reported by its line.

use std::collections::BTreeSet;
use std::io::BufRead;

use serde::Serialize;
use serde_json::{json, Value};

use super::apply::{MapCache, FEED_ACTOR};
use super::events;
use crate::domain::provider::{Provider, ServiceError};
use crate::model::audit::AuditKind;
use crate::model::client::HR_FEED_SCOPE;
use crate::model::hr::RawEvent;
use crate::model::rbac::within;
use crate::store::NewInboxEvent;

/// Why the HR API refused a caller (problem details at the edge: 401 or 403).
#[derive(Debug, thiserror::Error)]
pub enum HrFeedError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<crate::store::StoreError> for HrFeedError {
    fn from(e: crate::store::StoreError) -> Self {
        HrFeedError::Service(e.into())
    }
}

/// Rows recorded per inbox write during a file import.
const IMPORT_CHUNK: usize = 1000;

/// An HR feed client, authenticated by its client-credentials token.
#[derive(Debug, Clone)]
pub struct HrFeedCaller {
    pub client_id: String,
    /// The organisations it may send events for (and their sites).
    pub orgs: Vec<String>,
}

impl HrFeedCaller {
    pub fn may_send_for(&self, org: &str) -> bool {
        self.orgs.iter().any(|o| within(org, o))
    }
}

/// A row that was not recorded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RejectedRow {
    /// The line of the file, or the event's position in the batch (from 1).
    pub line: u64,
    pub event_id: Option<String>,
    pub reason: String,
}

/// An event kept but not applied, and what would let it apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AttentionRow {
    pub event_id: String,
    pub reason: String,
}

/// What became of a batch or a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BatchReport {
    /// Rows read.
    pub received: u64,
    /// Events recorded now (new ids).
    pub recorded: u64,
    /// Ids already received with the same content: acknowledged, not applied again.
    pub duplicates: Vec<String>,
    pub rejected: Vec<RejectedRow>,
    /// Events of this batch applied.
    pub applied: Vec<String>,
    /// Events of this batch kept for attention.
    pub attention: Vec<AttentionRow>,
    /// Events left for the scheduler (another process was applying the same person).
    pub pending: Vec<String>,
}

impl BatchReport {
    /// A row that could not even be read as an event (counted as received).
    fn unreadable(&mut self, row: RejectedRow) {
        self.received += 1;
        self.rejected.push(row);
    }
}

/// Where a batch of rows stands while it is being recorded.
struct Intake<'a> {
    source: &'a str,
    caller: Option<&'a HrFeedCaller>,
    rows: Vec<(u64, NewInboxEvent)>,
}

impl Provider {
    /// Authenticates an HR feed from a bearer token: an active client-credentials token with
    /// the HR scope, issued to a client registered as an HR feed. A person's token, even an
    /// RA's, is refused: HR changes come from the HR system.
    pub async fn hr_feed_caller(&self, token: Option<&str>) -> Result<HrFeedCaller, HrFeedError> {
        let token = token.ok_or_else(|| {
            HrFeedError::Unauthenticated("a bearer access token is required".into())
        })?;
        let claims = self
            .active_access_claims(token)
            .await?
            .ok_or_else(|| HrFeedError::Unauthenticated("the access token is not active".into()))?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("");
        let client_id = text("client_id");
        if text("sub") != client_id {
            return Err(HrFeedError::Forbidden(
                "the HR API takes an HR system's own token (client credentials), never a person's"
                    .into(),
            ));
        }
        let client = self.active_client(client_id).await?;
        let orgs = client
            .map(|c| c.metadata.careid_hr_feed_orgs)
            .filter(|o| !o.is_empty())
            .ok_or_else(|| {
                HrFeedError::Forbidden("the client is not registered as an HR feed".into())
            })?;
        if !text("scope").split(' ').any(|s| s == HR_FEED_SCOPE) {
            return Err(HrFeedError::Forbidden(format!(
                "the token lacks the {HR_FEED_SCOPE} scope"
            )));
        }
        Ok(HrFeedCaller {
            client_id: client_id.to_string(),
            orgs,
        })
    }

    /// Where one of the caller's events stands; None for an unknown id or another
    /// organisation's event.
    pub async fn hr_event_status(
        &self,
        caller: &HrFeedCaller,
        event_id: &str,
    ) -> Result<Option<Value>, ServiceError> {
        Ok(self
            .db
            .hr_event(event_id)
            .await?
            .filter(|e| caller.may_send_for(&e.raw.org_code))
            .map(|e| json!({ "event_id": e.raw.event_id, "state": e.state, "reason": e.reason, "received_at": e.received_at })))
    }

    /// `POST /hr/api/v1/events`: records a batch, applies the people it concerns, and reports
    /// every event.
    pub async fn receive_hr_events(
        &self,
        caller: &HrFeedCaller,
        batch: Vec<Value>,
    ) -> Result<BatchReport, ServiceError> {
        let source = format!("api:{}", caller.client_id);
        let mut report = BatchReport::default();
        let mut intake = Intake::new(&source, Some(caller));
        for (i, value) in batch.into_iter().enumerate() {
            let line = i as u64 + 1;
            let event_id = value
                .get("event_id")
                .and_then(Value::as_str)
                .map(String::from);
            match serde_json::from_value::<RawEvent>(value) {
                Ok(raw) => intake.take(line, raw, &mut report),
                Err(e) => report.unreadable(RejectedRow {
                    line,
                    event_id,
                    reason: e.to_string(),
                }),
            }
        }
        let recorded = self.record(&mut intake, &mut report).await?;
        let people: BTreeSet<(String, String)> = recorded
            .iter()
            .map(|e| (e.raw.org_code.clone(), e.raw.person_id.clone()))
            .collect();
        let people: Vec<(String, String)> = people.into_iter().collect();
        let outcomes = self.apply_hr_people(&people, &MapCache::default()).await?;
        let ours: BTreeSet<&str> = recorded.iter().map(|e| e.raw.event_id.as_str()).collect();
        for o in outcomes {
            report.applied.extend(
                o.applied
                    .into_iter()
                    .filter(|id| ours.contains(id.as_str())),
            );
            report.attention.extend(
                o.attention
                    .into_iter()
                    .filter(|(id, _)| ours.contains(id.as_str()))
                    .map(|(event_id, reason)| AttentionRow { event_id, reason }),
            );
            report.pending.extend(
                o.pending
                    .into_iter()
                    .filter(|id| ours.contains(id.as_str())),
            );
        }
        report.applied.sort();
        report.attention.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        Ok(report)
    }

    /// Records what the intake holds; returns the events recorded now.
    async fn record(
        &self,
        intake: &mut Intake<'_>,
        report: &mut BatchReport,
    ) -> Result<Vec<NewInboxEvent>, ServiceError> {
        let rows = std::mem::take(&mut intake.rows);
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let events: Vec<NewInboxEvent> = rows.iter().map(|(_, e)| e.clone()).collect();
        let inserted: BTreeSet<String> = self
            .db
            .insert_hr_events(&events, self.now())
            .await?
            .into_iter()
            .collect();
        let others: Vec<String> = events
            .iter()
            .filter(|e| !inserted.contains(&e.raw.event_id))
            .map(|e| e.raw.event_id.clone())
            .collect();
        let mut stored = self.db.hr_event_digests(&others).await?;
        let mut recorded = Vec::new();
        for (line, e) in rows {
            // The first row of an id inserted now is recorded; a repeat in the same chunk is
            // compared with it, as a later one is with the stored event.
            if inserted.contains(&e.raw.event_id) && !stored.contains_key(&e.raw.event_id) {
                stored.insert(e.raw.event_id.clone(), e.digest.clone());
                recorded.push(e);
            } else if stored.get(&e.raw.event_id) == Some(&e.digest) {
                report.duplicates.push(e.raw.event_id);
            } else {
                report.rejected.push(RejectedRow {
                    line,
                    event_id: Some(e.raw.event_id.clone()),
                    reason: format!(
                        "event_id {} was received before with different content: an HR event id names one event",
                        e.raw.event_id
                    ),
                });
            }
        }
        report.recorded += recorded.len() as u64;
        Ok(recorded)
    }

    /// `careid hr import FILE`: [`Self::record_hr_file`], then [`Self::finish_hr_import`].
    pub async fn import_hr_file(
        &self,
        reader: impl BufRead,
        format: ImportFormat,
        source: &str,
    ) -> Result<BatchReport, ImportError> {
        let report = self.record_hr_file(reader, format, source).await?;
        self.finish_hr_import(source, &report).await?;
        Ok(report)
    }

    /// Streams a CSV or JSON Lines extract into the inbox in chunks. Memory stays flat: rows are
    /// not kept once recorded (bad rows are, to be reported).
    pub async fn record_hr_file(
        &self,
        reader: impl BufRead,
        format: ImportFormat,
        source: &str,
    ) -> Result<BatchReport, ImportError> {
        let mut report = BatchReport::default();
        let mut intake = Intake::new(source, None);
        match format {
            ImportFormat::Csv => {
                let mut csv = csv::ReaderBuilder::new()
                    .flexible(false)
                    .from_reader(reader);
                let headers = csv.headers()?.clone();
                if let Some(bad) = headers.iter().find(|h| !events::CSV_COLUMNS.contains(h)) {
                    return Err(ImportError::Header(format!(
                        "unknown column {bad:?}: the columns are {}",
                        events::CSV_COLUMNS.join(", ")
                    )));
                }
                let mut record = csv::StringRecord::new();
                loop {
                    let line = csv.position().line();
                    match csv.read_record(&mut record) {
                        Ok(false) => break,
                        Ok(true) => match record.deserialize::<RawEvent>(Some(&headers)) {
                            Ok(raw) => intake.take(line, raw, &mut report),
                            Err(e) => report.unreadable(RejectedRow {
                                line,
                                event_id: None,
                                reason: e.to_string(),
                            }),
                        },
                        Err(e) => report.unreadable(RejectedRow {
                            line,
                            event_id: None,
                            reason: e.to_string(),
                        }),
                    }
                    self.record_if_full(&mut intake, &mut report).await?;
                }
            }
            ImportFormat::JsonLines => {
                for (i, text) in reader.lines().enumerate() {
                    let line = i as u64 + 1;
                    let text = text?;
                    if text.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<RawEvent>(&text) {
                        Ok(raw) => intake.take(line, raw, &mut report),
                        Err(e) => report.unreadable(RejectedRow {
                            line,
                            event_id: None,
                            reason: e.to_string(),
                        }),
                    }
                    self.record_if_full(&mut intake, &mut report).await?;
                }
            }
        }
        self.record(&mut intake, &mut report).await?;
        Ok(report)
    }

    /// Applies everyone with pending events after an import, and audits the import.
    pub async fn finish_hr_import(
        &self,
        source: &str,
        report: &BatchReport,
    ) -> Result<usize, ServiceError> {
        let applied = self.apply_pending_hr(&MapCache::default()).await?;
        let counts = self
            .db
            .hr_inbox_counts()
            .await
            .map_err(ServiceError::from)?;
        self.audit(
            AuditKind::HrImported,
            "success",
            Some(FEED_ACTOR),
            None,
            json!({ "source": source, "received": report.received, "recorded": report.recorded, "duplicates": report.duplicates.len(), "rejected": report.rejected.len(), "people_applied": applied, "inbox": counts }),
        )
        .await?;
        Ok(applied)
    }

    async fn record_if_full(
        &self,
        intake: &mut Intake<'_>,
        report: &mut BatchReport,
    ) -> Result<(), ServiceError> {
        if intake.rows.len() >= IMPORT_CHUNK {
            self.record(intake, report).await?;
        }
        Ok(())
    }
}

impl<'a> Intake<'a> {
    fn new(source: &'a str, caller: Option<&'a HrFeedCaller>) -> Self {
        Intake {
            source,
            caller,
            rows: Vec::new(),
        }
    }

    /// Checks one row and queues it to record, or reports it.
    fn take(&mut self, line: u64, raw: RawEvent, report: &mut BatchReport) {
        report.received += 1;
        let raw = events::tidy(raw);
        let reject = |reason: String, report: &mut BatchReport| {
            report.rejected.push(RejectedRow {
                line,
                event_id: Some(raw.event_id.clone()).filter(|i| !i.is_empty()),
                reason,
            })
        };
        let event = match events::check(&raw) {
            Ok(e) => e,
            Err(reason) => return reject(reason, report),
        };
        if let Some(caller) = self.caller {
            if !caller.may_send_for(&event.org_code) {
                return reject(
                    format!(
                        "this HR feed sends events for {} only, not {}",
                        caller.orgs.join(", "),
                        event.org_code
                    ),
                    report,
                );
            }
        }
        let mut raw = raw;
        raw.org_code = event.org_code.clone();
        let digest = events::digest(&raw);
        self.rows.push((
            line,
            NewInboxEvent {
                raw,
                recorded_at: event.recorded_at,
                digest,
                source: self.source.to_string(),
            },
        ));
    }
}

/// The file formats `careid hr import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    /// One event object per line, as the API takes them.
    JsonLines,
}

impl ImportFormat {
    /// From the file name: `.csv`, or `.jsonl` / `.ndjson` / `.json`.
    pub fn of(path: &std::path::Path) -> Option<ImportFormat> {
        match path.extension()?.to_str()? {
            "csv" => Some(ImportFormat::Csv),
            "jsonl" | "ndjson" | "json" => Some(ImportFormat::JsonLines),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file's header: {0}")]
    Header(String),
    #[error("reading the file: {0}")]
    Read(#[from] std::io::Error),
    #[error("reading the file: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

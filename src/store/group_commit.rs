//! Group commit: the writes of concurrent requests share one transaction.
//!
//! A request gathers the rows it must write — the access-token record and its audit event, a new
//! session and its code — into a [`WriteSet`] and hands it to [`Db::commit`]. Sets queue in the
//! process; whoever holds the turn writes every queued set in one transaction, in a task of its
//! own (so a dropped request cannot take the others' writes with it), and tells each caller
//! what its statements did once the transaction has committed. A set is atomic: all of it
//! commits or none does, and nobody is told "written" before the commit.
//!
//! Why: on SQLite every commit takes the single write lock and appends whole pages to the WAL,
//! and every statement is a hand-off to the connection's thread. One transaction per batch
//! shares the lock, the pages and the commit among all the requests in it, and the writes of a
//! process queue here instead of sleeping in SQLite's busy handler. On PostgreSQL it saves a
//! commit (and a WAL flush) per request. Audit events of the batch are chained in the same
//! transaction, before the other writes, so the `audit_head` row lock orders batches from
//! different processes the same way everywhere.
//!
//! On PostgreSQL, which takes concurrent writers, only sets that carry audit events queue (the
//! chain's head row serialises them anyway); the others commit on their own at once.
//!
//! When a shared transaction fails (say one set breaks a constraint), each set is retried in a
//! transaction of its own, so one caller's error is never another's.

use std::sync::{Arc, Mutex};

use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use tokio::sync::oneshot;

use super::audit::{self, AuditEvent};
use super::{Backend, Db, StoreError};

/// A bound parameter, owned so that a set can wait in the queue.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
    OptText(Option<String>),
    OptInt(Option<i64>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::OptText(v.map(String::from))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

#[derive(Debug)]
enum Sql {
    /// Any statement.
    Text(&'static str),
    /// One row for `INSERT INTO {target} VALUES (...)`: the rows that sets in a batch add to the
    /// same target are written by one multi-row statement.
    Row { target: &'static str },
}

#[derive(Debug)]
struct Statement {
    sql: Sql,
    args: Vec<Arg>,
    /// Whether its rows (`RETURNING`) are wanted.
    fetch: bool,
}

/// Binds owned arguments in order.
pub(crate) fn bind_args<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(*v),
            Arg::Text(v) => query.bind(v.as_str()),
            Arg::OptText(v) => query.bind(v.as_deref()),
            Arg::OptInt(v) => query.bind(*v),
        };
    }
    query
}

/// Most rows in one multi-row INSERT (well under both databases' limits on parameters).
const ROWS_PER_INSERT: usize = 100;

/// `($1, $2), ($3, $4)` for two rows of two.
fn values_clause(rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * width + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// What one statement of a committed set did.
#[derive(Default)]
pub struct Written {
    pub(crate) rows_affected: u64,
    pub(crate) rows: Vec<AnyRow>,
}

/// Writes that commit together: statements (run in the order added) and audit events (chained
/// in the order added). Built with the `impl WriteSet` methods of each aggregate's module, so
/// domain code composes a set without seeing SQL.
#[derive(Debug, Default)]
pub struct WriteSet {
    statements: Vec<Statement>,
    audit: Vec<AuditEvent>,
}

impl WriteSet {
    pub fn new() -> WriteSet {
        WriteSet::default()
    }

    /// Adds a statement; its result is at the returned index of [`Db::commit`]'s answer.
    pub(crate) fn execute(&mut self, sql: &'static str, args: Vec<Arg>) -> usize {
        self.statements.push(Statement {
            sql: Sql::Text(sql),
            args,
            fetch: false,
        });
        self.statements.len() - 1
    }

    /// Adds a row to insert into `target` (`table (column, ...)`, one argument per column).
    pub(crate) fn insert(&mut self, target: &'static str, args: Vec<Arg>) -> usize {
        self.statements.push(Statement {
            sql: Sql::Row { target },
            args,
            fetch: false,
        });
        self.statements.len() - 1
    }

    /// Adds a statement whose `RETURNING` rows are wanted.
    pub(crate) fn fetch(&mut self, sql: &'static str, args: Vec<Arg>) -> usize {
        self.statements.push(Statement {
            sql: Sql::Text(sql),
            args,
            fetch: true,
        });
        self.statements.len() - 1
    }

    /// Adds an event to the audit trail, committed with the rest of the set.
    pub fn audit(&mut self, event: AuditEvent) {
        self.audit.push(event);
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty() && self.audit.is_empty()
    }
}

impl std::fmt::Debug for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Written")
            .field("rows_affected", &self.rows_affected)
            .field("rows", &self.rows.len())
            .finish()
    }
}

type Answer = Result<Vec<Written>, StoreError>;

/// The queue and the turn, shared by every clone of a [`Db`].
#[derive(Default)]
pub(crate) struct GroupCommit {
    turn: Arc<tokio::sync::Mutex<()>>,
    queue: Mutex<Vec<(WriteSet, oneshot::Sender<Answer>)>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl Db {
    /// Commits a set (with whatever other sets are waiting) and returns what each of its
    /// statements did, in the order they were added.
    pub async fn commit(&self, set: WriteSet) -> Result<Vec<Written>, StoreError> {
        if set.is_empty() {
            return Ok(Vec::new());
        }
        // PostgreSQL takes concurrent writers, so a set that does not extend the audit chain
        // (whose head row serialises its writers anyway) commits on its own at once instead of
        // waiting its turn behind the batch in flight.
        if self.backend() == Backend::Postgres && set.audit.is_empty() {
            return self
                .write_sets(&[&set])
                .await
                .map(|mut r| r.pop().unwrap_or_default());
        }
        let (done, mut answer) = oneshot::channel();
        self.group().queue_push(set, done);
        let turn = self.group().turn.clone().lock_owned().await;
        // The previous holder of the turn may have written this set with its own.
        if let Ok(written) = answer.try_recv() {
            return written;
        }
        let db = self.clone();
        tokio::spawn(async move {
            let batch = db.group().queue_take();
            db.write_batch(batch).await;
            drop(turn);
        });
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::GroupCommit("the writer task stopped".into())))
    }

    /// Writes the sets in one transaction, or each in its own when that fails, and answers
    /// every caller.
    async fn write_batch(&self, batch: Vec<(WriteSet, oneshot::Sender<Answer>)>) {
        if batch.is_empty() {
            return;
        }
        let sets: Vec<&WriteSet> = batch.iter().map(|(s, _)| s).collect();
        let shared = self.write_sets(&sets).await;
        metrics::histogram!("careid_group_commit_sets").record(sets.len() as f64);
        match shared {
            Ok(results) => {
                for ((_, done), written) in batch.into_iter().zip(results) {
                    let _ = done.send(Ok(written));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some((_, done)) = batch.into_iter().next() {
                    let _ = done.send(Err(e));
                }
            }
            Err(_) => {
                for (set, done) in batch {
                    let alone = self
                        .write_sets(&[&set])
                        .await
                        .map(|mut r| r.pop().unwrap_or_default());
                    let _ = done.send(alone);
                }
            }
        }
    }

    /// One transaction: the audit chain first (it takes the `audit_head` lock, as every writer
    /// of the chain does first), then the sets' statements in rounds: every set's first
    /// statement, then every set's second, and so on, so each set's statements run in order;
    /// within a round, rows bound for the same table go in one multi-row INSERT.
    async fn write_sets(&self, sets: &[&WriteSet]) -> Result<Vec<Vec<Written>>, StoreError> {
        let mut tx = self.writer().begin().await?;
        let mut plan = Plan::default();
        let events: Vec<&AuditEvent> = sets.iter().flat_map(|s| s.audit.iter()).collect();
        if !events.is_empty() {
            let (rows, last_hash) = audit::chain_rows(&mut tx, &events).await?;
            plan.rows(audit::EVENTS_TARGET, 9, rows, Vec::new());
            plan.text(
                "UPDATE audit_head SET last_hash = $1 WHERE id = 1",
                vec![last_hash.into()],
                None,
                false,
            );
        }
        let rounds = sets.iter().map(|s| s.statements.len()).max().unwrap_or(0);
        for round in 0..rounds {
            let mut rows: Vec<(&'static str, usize, Vec<Arg>, Vec<usize>)> = Vec::new();
            for (k, set) in sets.iter().enumerate() {
                let Some(statement) = set.statements.get(round) else {
                    continue;
                };
                match statement.sql {
                    Sql::Row { target } => {
                        let width = statement.args.len();
                        match rows.iter_mut().find(|r| r.0 == target && r.1 == width) {
                            Some(group) => {
                                group.2.extend(statement.args.iter().cloned());
                                group.3.push(k);
                            }
                            None => rows.push((target, width, statement.args.clone(), vec![k])),
                        }
                    }
                    Sql::Text(sql) => {
                        plan.text(sql, statement.args.clone(), Some(k), statement.fetch)
                    }
                }
            }
            for (target, width, args, owners) in rows {
                plan.rows(target, width, args, owners);
            }
        }
        let results = plan.run(&mut tx, sets.len()).await?;
        tx.commit().await?;
        Ok(results)
    }
}

/// The statements of one batch, in order, and whose result each is.
#[derive(Default)]
struct Plan {
    steps: Vec<Step>,
}

struct Step {
    /// With parameters numbered from `$1`.
    sql: String,
    args: Vec<Arg>,
    /// The sets a statement's result goes to: one for a statement of a set (with its rows),
    /// each owner of a multi-row INSERT (one row each), none for the audit chain's.
    owners: Vec<usize>,
    fetch: bool,
}

impl Plan {
    fn text(&mut self, sql: &str, args: Vec<Arg>, owner: Option<usize>, fetch: bool) {
        self.steps.push(Step {
            sql: sql.to_string(),
            args,
            owners: owner.into_iter().collect(),
            fetch,
        });
    }

    /// Rows (each `width` arguments) for `target`, in statements of at most [`ROWS_PER_INSERT`].
    fn rows(&mut self, target: &str, width: usize, args: Vec<Arg>, owners: Vec<usize>) {
        let mut owners = owners.into_iter();
        for chunk in args.chunks(width * ROWS_PER_INSERT) {
            let n = chunk.len() / width;
            self.steps.push(Step {
                sql: format!("INSERT INTO {target} VALUES {}", values_clause(n, width)),
                args: chunk.to_vec(),
                owners: owners.by_ref().take(n).collect(),
                fetch: false,
            });
        }
    }

    /// Runs the statements in order. (Sending them to SQLite as one multi-statement query, to
    /// save the hand-offs to its connection thread, was measured and gained nothing: see
    /// docs/performance.md.)
    async fn run(
        self,
        conn: &mut AnyConnection,
        sets: usize,
    ) -> Result<Vec<Vec<Written>>, StoreError> {
        let mut results: Vec<Vec<Written>> = (0..sets).map(|_| Vec::new()).collect();
        for step in self.steps {
            let query = bind_args(sqlx::query(&step.sql), &step.args);
            let written = if step.fetch {
                let rows = query.fetch_all(&mut *conn).await?;
                Written {
                    rows_affected: rows.len() as u64,
                    rows,
                }
            } else {
                Written {
                    rows_affected: query.execute(&mut *conn).await?.rows_affected(),
                    rows: Vec::new(),
                }
            };
            deliver(&mut results, &step.owners, written);
        }
        Ok(results)
    }
}

/// Gives a statement's result to its set, or one row each to the owners of a multi-row INSERT.
fn deliver(results: &mut [Vec<Written>], owners: &[usize], written: Written) {
    match owners {
        [] => {}
        [one] => results[*one].push(written),
        many => {
            for k in many {
                results[*k].push(Written {
                    rows_affected: 1,
                    rows: Vec::new(),
                });
            }
        }
    }
}

impl GroupCommit {
    fn queue_push(&self, set: WriteSet, done: oneshot::Sender<Answer>) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((set, done));
    }

    fn queue_take(&self) -> Vec<(WriteSet, oneshot::Sender<Answer>)> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

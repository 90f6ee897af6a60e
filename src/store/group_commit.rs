//! Group commit: the writes of concurrent requests share one transaction.
//!
//! A request gathers the rows it must write — the access-token record and its audit event, a new
//! session and its code — into a [`WriteSet`] and hands it to [`Db::commit`]. Sets queue in the
//! process and are written many to a transaction, away from the request (so a dropped request
//! cannot take the others' writes with it); each caller is told what its statements did once
//! the transaction has committed. A set is atomic: all of it commits or none does, and nobody
//! is told "written" before the commit.
//!
//! On SQLite the batches are written by a thread of the process's own ([`WriterThread`]): it
//! takes every set waiting, writes them, and starts again. Its own thread, rather than a task
//! among the request handlers, because the writer is what every login waits for, and a task
//! would wait for a turn on a runtime thread busy signing tokens (measured: docs/performance.md,
//! session 5). On PostgreSQL a batch is written by a task of whoever takes the turn.
//!
//! Why: on SQLite every commit takes the single write lock and appends whole pages to the WAL,
//! and every statement is a hand-off to the connection's thread. One transaction per batch
//! shares the lock, the pages and the commit among all the requests in it, and the writes of a
//! process queue here instead of sleeping in SQLite's busy handler. On PostgreSQL it saves a
//! commit (and a WAL flush) per request. Audit events of the batch are chained in the same
//! transaction, after the guards and before the other writes, so the `audit_head` row lock
//! orders batches from different processes the same way everywhere. (A guard locks only the row
//! it claims, guards run sorted, and no statement run after the head lock updates a row a guard
//! claims, so a batch holding the head never waits for a guard's row. What remains possible on
//! PostgreSQL is rare: housekeeping deleting a claimed row; PostgreSQL then aborts one
//! transaction and its sets are retried one by one.)
//!
//! On PostgreSQL, which takes concurrent writers, only sets that carry audit events queue (the
//! chain's head row serialises them anyway); the others commit on their own at once.
//!
//! When a shared transaction fails (say one set breaks a constraint), each set is retried in a
//! transaction of its own, so one caller's error is never another's.
//!
//! A set may start with a guard ([`WriteSet::guarded`]): a statement that claims something once,
//! such as marking a code used or deleting a pending sign-in. The guards of a batch run first; a
//! set whose guard changes no row (someone claimed it first) is written not at all, and its
//! caller gets [`StoreError::GuardFailed`], while the rest of the batch commits. This lets a
//! request read what it needs, decide, and claim and write in one commit, instead of claiming in
//! a commit of its own first.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt;

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

/// What one statement of a committed set did: the rows it changed.
#[derive(Debug, Default)]
pub struct Written {
    pub(crate) rows_affected: u64,
}

/// Writes that commit together: statements (run in the order added) and audit events (chained
/// in the order added). Built with the `impl WriteSet` methods of each aggregate's module, so
/// domain code composes a set without seeing SQL.
#[derive(Debug, Default)]
pub struct WriteSet {
    /// Must change a row, or nothing of the set is written.
    guard: Option<Statement>,
    statements: Vec<Statement>,
    audit: Vec<AuditEvent>,
}

impl WriteSet {
    pub fn new() -> WriteSet {
        WriteSet::default()
    }

    /// A set that is written only if `sql` changes at least one row when its batch runs (a set
    /// has at most one guard, so a failed guard has changed nothing that would need undoing).
    pub(crate) fn guarded(sql: &'static str, args: Vec<Arg>) -> WriteSet {
        WriteSet {
            guard: Some(Statement {
                sql: Sql::Text(sql),
                args,
            }),
            ..WriteSet::default()
        }
    }

    /// Adds a statement; its result is at the returned index of [`Db::commit`]'s answer.
    pub(crate) fn execute(&mut self, sql: &'static str, args: Vec<Arg>) -> usize {
        self.statements.push(Statement {
            sql: Sql::Text(sql),
            args,
        });
        self.statements.len() - 1
    }

    /// Adds a row to insert into `target` (`table (column, ...)`, one argument per column).
    pub(crate) fn insert(&mut self, target: &'static str, args: Vec<Arg>) -> usize {
        self.statements.push(Statement {
            sql: Sql::Row { target },
            args,
        });
        self.statements.len() - 1
    }

    /// Adds an event to the audit trail, committed with the rest of the set.
    pub fn audit(&mut self, event: AuditEvent) {
        self.audit.push(event);
    }

    pub fn is_empty(&self) -> bool {
        self.guard.is_none() && self.statements.is_empty() && self.audit.is_empty()
    }
}

type Answer = Result<Vec<Written>, StoreError>;

type Queued = (WriteSet, oneshot::Sender<Answer>);

/// How a process's sets reach a transaction, shared by every clone of a [`Db`].
#[derive(Default)]
pub(crate) struct GroupCommit {
    /// SQLite: the writer thread's inbox.
    thread: Option<WriterThread>,
    /// PostgreSQL: the sets waiting, and the turn to write them.
    turn: Arc<tokio::sync::Mutex<()>>,
    queue: Mutex<Vec<Queued>>,
}

impl GroupCommit {
    /// Whether this process's writer thread (SQLite) has stopped, so no write can succeed.
    pub(crate) fn thread_stopped(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| t.inbox.is_closed())
    }

    /// On SQLite, starts the writer thread for `writer`.
    pub(crate) fn new(writer: BatchWriter) -> Result<GroupCommit, StoreError> {
        Ok(GroupCommit {
            thread: match writer.backend {
                Backend::Sqlite => Some(WriterThread::start(writer)?),
                Backend::Postgres => None,
            },
            ..GroupCommit::default()
        })
    }
}

/// The thread that writes SQLite batches. It ends when the last clone of its [`Db`] is gone.
pub(crate) struct WriterThread {
    inbox: tokio::sync::mpsc::UnboundedSender<Queued>,
}

impl WriterThread {
    fn start(writer: BatchWriter) -> Result<WriterThread, StoreError> {
        let (inbox, mut sets) = tokio::sync::mpsc::unbounded_channel::<Queued>();
        // The runtime is made on the new thread (a runtime dropped inside the caller's async
        // context would panic), which reports whether it could.
        let (started, outcome) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
        std::thread::Builder::new()
            .name("careid-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                let _ = started.send(Ok(()));
                runtime.block_on(async move {
                    while let Some(first) = sets.recv().await {
                        let mut batch = vec![first];
                        while let Ok(more) = sets.try_recv() {
                            batch.push(more);
                        }
                        // A panic (a bug) fails this batch's callers, whose answers are
                        // dropped, not every later one: the thread carries on.
                        let written = AssertUnwindSafe(writer.write_batch(batch));
                        if written.catch_unwind().await.is_err() {
                            tracing::error!("the writer thread caught a panic writing a batch");
                        }
                    }
                })
            })?;
        outcome
            .recv()
            .map_err(|_| StoreError::GroupCommit("the writer thread did not start".into()))??;
        Ok(WriterThread { inbox })
    }

    async fn commit(&self, set: WriteSet) -> Answer {
        let stopped = || StoreError::GroupCommit("the writer thread stopped".into());
        let (done, answer) = oneshot::channel();
        self.inbox.send((set, done)).map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// What writes batches: the write connections and which database they are.
#[derive(Clone)]
pub(crate) struct BatchWriter {
    pub(crate) pool: sqlx::AnyPool,
    pub(crate) backend: Backend,
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
        if let Some(thread) = &self.group().thread {
            return thread.commit(set).await;
        }
        // PostgreSQL takes concurrent writers, so a set that does not extend the audit chain
        // (whose head row serialises its writers anyway) commits on its own at once instead of
        // waiting its turn behind the batch in flight.
        let writer = self.batch_writer();
        if set.audit.is_empty() {
            return writer.write_alone(&set).await;
        }
        let (done, mut answer) = oneshot::channel();
        self.group().queue_push(set, done);
        let turn = self.group().turn.clone().lock_owned().await;
        // The previous holder of the turn may have written this set with its own.
        if let Ok(written) = answer.try_recv() {
            return written;
        }
        let group = self.group_handle();
        tokio::spawn(async move {
            let batch = group.queue_take();
            writer.write_batch(batch).await;
            drop(turn);
        });
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::GroupCommit("the writer task stopped".into())))
    }

    /// [`commit`](Self::commit) for a set made with [`WriteSet::guarded`]: `None` when its guard
    /// changed nothing, and so nothing was written.
    pub async fn commit_guarded(&self, set: WriteSet) -> Result<Option<Vec<Written>>, StoreError> {
        match self.commit(set).await {
            Ok(written) => Ok(Some(written)),
            Err(StoreError::GuardFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl BatchWriter {
    /// Writes the sets in one transaction, or each in its own when that fails, and answers
    /// every caller.
    async fn write_batch(&self, batch: Vec<Queued>) {
        if batch.is_empty() {
            return;
        }
        let sets: Vec<&WriteSet> = batch.iter().map(|(s, _)| s).collect();
        let started = std::time::Instant::now();
        let shared = self.write_sets(&sets).await;
        metrics::histogram!("careid_group_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("careid_group_commit_sets").record(sets.len() as f64);
        match shared {
            Ok(answers) => {
                for ((_, done), answer) in batch.into_iter().zip(answers) {
                    let _ = done.send(answer);
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some((_, done)) = batch.into_iter().next() {
                    let _ = done.send(Err(e));
                }
            }
            Err(_) => {
                for (set, done) in batch {
                    let _ = done.send(self.write_alone(&set).await);
                }
            }
        }
    }

    /// One set in a transaction of its own.
    async fn write_alone(&self, set: &WriteSet) -> Answer {
        self.write_sets(&[set])
            .await?
            .pop()
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// One transaction: the guards first (a set whose guard changes nothing drops out), then
    /// the audit chain of the remaining sets (it takes the `audit_head` lock, as every writer of
    /// the chain does), then their statements in rounds: every set's first statement, then every
    /// set's second, and so on, so each set's statements run in order; within a round, rows
    /// bound for the same table go in one multi-row INSERT. `Err` when the transaction failed;
    /// otherwise an answer per set.
    async fn write_sets(&self, all: &[&WriteSet]) -> Result<Vec<Answer>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let passed = self.check_guards(&mut tx, all).await?;
        let sets: Vec<&WriteSet> = all
            .iter()
            .zip(&passed)
            .filter(|(_, passed)| **passed)
            .map(|(set, _)| *set)
            .collect();
        let mut plan = Plan::default();
        let events: Vec<&AuditEvent> = sets.iter().flat_map(|s| s.audit.iter()).collect();
        if !events.is_empty() {
            let (rows, last_hash) = audit::chain_rows(&mut tx, &events).await?;
            plan.rows(audit::EVENTS_TARGET, 9, rows, Vec::new());
            plan.text(
                "UPDATE audit_head SET last_hash = $1 WHERE id = 1",
                vec![last_hash.into()],
                None,
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
                    Sql::Text(sql) => plan.text(sql, statement.args.clone(), Some(k)),
                }
            }
            for (target, width, args, owners) in rows {
                plan.rows(target, width, args, owners);
            }
        }
        let mut results = plan
            .execute(&mut tx, sets.len(), self.backend)
            .await?
            .into_iter();
        tx.commit().await?;
        Ok(passed
            .into_iter()
            .map(|passed| match passed {
                true => Ok(results.next().unwrap_or_default()),
                false => Err(StoreError::GuardFailed),
            })
            .collect())
    }

    /// Runs the guards of `sets` (all in one query on SQLite) and says which sets may be written:
    /// those without a guard and those whose guard changed a row.
    async fn check_guards(
        &self,
        conn: &mut AnyConnection,
        sets: &[&WriteSet],
    ) -> Result<Vec<bool>, StoreError> {
        let mut guards = Vec::new();
        for (k, set) in sets.iter().enumerate() {
            if let Some(guard) = &set.guard {
                let Sql::Text(sql) = guard.sql else {
                    return Err(StoreError::GroupCommit("a guard is a statement".into()));
                };
                guards.push((sql, &guard.args, k));
            }
        }
        // In one order everywhere (by statement, then arguments), so that two processes whose
        // batches claim the same rows lock them in the same order, not into a deadlock.
        guards.sort_by_cached_key(|(sql, args, k)| (*sql, format!("{args:?}"), *k));
        let mut plan = Plan::default();
        for (sql, args, k) in guards {
            plan.text(sql, args.clone(), Some(k));
        }
        if plan.steps.is_empty() {
            return Ok(vec![true; sets.len()]);
        }
        let results = plan.execute(conn, sets.len(), self.backend).await?;
        Ok(sets
            .iter()
            .zip(results)
            .map(|(set, written)| {
                set.guard.is_none() || written.first().is_some_and(|w| w.rows_affected > 0)
            })
            .collect())
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
    /// The sets a statement's result goes to: one for a statement of a set, each owner of a
    /// multi-row INSERT (one row each), none for the audit chain's.
    owners: Vec<usize>,
}

impl Plan {
    fn text(&mut self, sql: &str, args: Vec<Arg>, owner: Option<usize>) {
        self.steps.push(Step {
            sql: sql.to_string(),
            args,
            owners: owner.into_iter().collect(),
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
            });
        }
    }

    /// Runs the statements in order: on SQLite as one query, on PostgreSQL one by one.
    async fn execute(
        self,
        conn: &mut AnyConnection,
        sets: usize,
        backend: Backend,
    ) -> Result<Vec<Vec<Written>>, StoreError> {
        match backend {
            Backend::Sqlite => self.run_as_one_query(conn, sets).await,
            Backend::Postgres => self.run(conn, sets).await,
        }
    }

    /// Runs the statements in order, one round trip each (PostgreSQL).
    async fn run(
        self,
        conn: &mut AnyConnection,
        sets: usize,
    ) -> Result<Vec<Vec<Written>>, StoreError> {
        let mut results: Vec<Vec<Written>> = (0..sets).map(|_| Vec::new()).collect();
        for step in self.steps {
            let query = bind_args(sqlx::query(&step.sql), &step.args);
            let written = Written {
                rows_affected: query.execute(&mut *conn).await?.rows_affected(),
            };
            deliver(&mut results, &step.owners, written);
        }
        Ok(results)
    }
}

impl Plan {
    /// Runs the statements in order as few multi-statement queries (SQLite): one, unless the
    /// batch binds more than [`MAX_PARAMS_PER_QUERY`] values. (careid's batched statements
    /// return no rows: a set that needs to read first does so outside the batch and claims with
    /// a guard.)
    ///
    /// Why: every query is a hand-off to the SQLite connection's thread and back, and the writer
    /// holds the write lock across all of them. With one hand-off per statement, a batch of eight
    /// logins' sets took 2.5 ms of mostly waking threads, and that, not the CPU, capped logins/s
    /// (docs/performance.md, session 5). SQLite runs the statements of one query one after
    /// another and sqlx reports each one's rows followed by its result, so every set still gets
    /// what each of its statements did. (sqlx marks several statements in one query with
    /// arguments as a SQLite-only behaviour it may drop; the group commit tests run this path on
    /// every batch, so an upgrade that drops it fails them.)
    async fn run_as_one_query(
        self,
        conn: &mut AnyConnection,
        sets: usize,
    ) -> Result<Vec<Vec<Written>>, StoreError> {
        use futures::TryStreamExt;
        use sqlx::{Either, Executor};

        let mut results: Vec<Vec<Written>> = (0..sets).map(|_| Vec::new()).collect();
        let mut steps = self.steps.into_iter().peekable();
        while steps.peek().is_some() {
            let mut chunk: Vec<Step> = Vec::new();
            let mut params = 0;
            while let Some(step) =
                steps.next_if(|s| chunk.is_empty() || params + s.args.len() <= MAX_PARAMS_PER_QUERY)
            {
                params += step.args.len();
                chunk.push(step);
            }
            let mut sql = String::new();
            let mut args: Vec<Arg> = Vec::with_capacity(params);
            for step in &chunk {
                sql.push_str(&renumber_params(&step.sql, args.len()));
                sql.push_str(";\n");
                args.extend(step.args.iter().cloned());
            }
            let query = bind_args(sqlx::query(&sql), &args).persistent(false);
            let mut stream = conn.fetch_many(query);
            let mut chunk = chunk.into_iter();
            while let Some(item) = stream.try_next().await? {
                // Statements with no RETURNING clause produce no rows, only their results.
                if let Either::Left(done) = item {
                    let step = chunk.next().ok_or_else(|| {
                        StoreError::GroupCommit("more results than statements".into())
                    })?;
                    let written = Written {
                        rows_affected: done.rows_affected(),
                    };
                    deliver(&mut results, &step.owners, written);
                }
            }
            if chunk.next().is_some() {
                return Err(StoreError::GroupCommit(
                    "fewer results than statements".into(),
                ));
            }
        }
        Ok(results)
    }
}

/// Most values one multi-statement query binds (SQLite allows 32,766 since 3.32).
const MAX_PARAMS_PER_QUERY: usize = 30_000;

/// `sql` with each parameter `$n` renamed `$(n + offset)`, so that statements can share one
/// argument list. careid's SQL has no `$` inside string literals.
fn renumber_params(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut n = 0usize;
        let mut digits = false;
        while let Some((_, d)) = chars.next_if(|(_, d)| d.is_ascii_digit()) {
            n = n * 10 + (d as usize - '0' as usize);
            digits = true;
        }
        if digits {
            out.push_str(&(n + offset).to_string());
        }
    }
    out
}

/// Gives a statement's result to its set, or one row each to the owners of a multi-row INSERT.
fn deliver(results: &mut [Vec<Written>], owners: &[usize], written: Written) {
    match owners {
        [] => {}
        [one] => results[*one].push(written),
        many => {
            for k in many {
                results[*k].push(Written { rows_affected: 1 });
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

    fn queue_take(&self) -> Vec<Queued> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_renumbered_after_the_statements_before() {
        assert_eq!(
            renumber_params("UPDATE t SET a = $1, b = $12 WHERE c = $2", 10),
            "UPDATE t SET a = $11, b = $22 WHERE c = $12"
        );
        assert_eq!(renumber_params("SELECT $1", 0), "SELECT $1");
        assert_eq!(
            renumber_params("INSERT INTO t VALUES ($1, $2), ($3, $4)", 2),
            "INSERT INTO t VALUES ($3, $4), ($5, $6)"
        );
    }
}

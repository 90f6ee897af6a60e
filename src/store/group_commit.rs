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

use super::audit;
use super::write_set::{bind_args, Arg, AuditEvent, Sql, WriteSet, Written};
use super::{Backend, Db, StoreError};

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
            // An outage fails every set alike: retrying each alone would only wait longer.
            Err(e) if e.is_unavailable() => {
                let reason = e.to_string();
                for (_, done) in batch {
                    let _ = done.send(Err(StoreError::Unavailable(reason.clone())));
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
    ///
    /// A connection whose transaction failed for an outage is closed, not reused: after a failed
    /// commit (a full disk) SQLite may still hold the transaction open, and a connection reused in that
    /// state keeps the write lock and later "commits" only savepoints inside it (measured: every
    /// later write was lost or refused as `database is locked` until a restart).
    async fn write_sets(&self, all: &[&WriteSet]) -> Result<Vec<Answer>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let written = self.write_sets_on(&mut conn, all).await;
        if written.as_ref().is_err_and(StoreError::is_unavailable) {
            conn.close_on_drop();
        }
        written
    }

    async fn write_sets_on(
        &self,
        conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
        all: &[&WriteSet],
    ) -> Result<Vec<Answer>, StoreError> {
        let mut tx = sqlx::Connection::begin(&mut **conn).await?;
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
        plan.statements(&sets);
        let results = plan.execute(&mut tx, sets.len(), self.backend).await?;
        tx.commit().await?;
        Ok(answers(passed, results))
    }

    /// Runs the guards of `sets` (all in one query on SQLite) and says which sets may be written:
    /// those without a guard and those whose guard changed a row.
    async fn check_guards(
        &self,
        conn: &mut AnyConnection,
        sets: &[&WriteSet],
    ) -> Result<Vec<bool>, StoreError> {
        let plan = guard_plan(sets)?;
        if plan.steps.is_empty() {
            return Ok(vec![true; sets.len()]);
        }
        let results = plan.execute(conn, sets.len(), self.backend).await?;
        Ok(guards_passed(sets, results))
    }
}

/// The guards of `sets`, each owned by its set, sorted.
fn guard_plan(sets: &[&WriteSet]) -> Result<Plan, StoreError> {
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
    Ok(plan)
}

/// Which sets may be written, from what their guards did (`results`, one per set): those
/// without a guard and those whose guard changed a row.
fn guards_passed(sets: &[&WriteSet], results: Vec<Vec<Written>>) -> Vec<bool> {
    sets.iter()
        .zip(results)
        .map(|(set, written)| {
            set.guard.is_none() || written.first().is_some_and(|w| w.rows_affected > 0)
        })
        .collect()
}

/// Each set's answer: [`StoreError::GuardFailed`] where its guard failed, otherwise the next of
/// `results` (which holds one entry per set that passed, in order).
fn answers(passed: Vec<bool>, results: Vec<Vec<Written>>) -> Vec<Answer> {
    let mut results = results.into_iter();
    passed
        .into_iter()
        .map(|passed| match passed {
            true => Ok(results.next().unwrap_or_default()),
            false => Err(StoreError::GuardFailed),
        })
        .collect()
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

    /// Adds the statements of `sets` (owned by their index in `sets`) in rounds: every set's
    /// first statement, then every set's second, and so on, so each set's statements run in
    /// order; within a round, rows bound for the same table (with as many columns) go in one
    /// multi-row INSERT, after the round's other statements.
    fn statements(&mut self, sets: &[&WriteSet]) {
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
                    Sql::Text(sql) => self.text(sql, statement.args.clone(), Some(k)),
                }
            }
            for (target, width, args, owners) in rows {
                self.rows(target, width, args, owners);
            }
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
            let chunk = take_query(&mut steps);
            let (sql, args) = one_query(&chunk);
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

/// The next statements of `steps` that bind at most [`MAX_PARAMS_PER_QUERY`] values together
/// (at least one, however many it binds).
fn take_query(steps: &mut std::iter::Peekable<std::vec::IntoIter<Step>>) -> Vec<Step> {
    let mut chunk: Vec<Step> = Vec::new();
    let mut params = 0;
    while let Some(step) =
        steps.next_if(|s| chunk.is_empty() || params + s.args.len() <= MAX_PARAMS_PER_QUERY)
    {
        params += step.args.len();
        chunk.push(step);
    }
    chunk
}

/// The statements of `chunk` as one multi-statement query, each one's parameters numbered after
/// those of the statements before it, and the arguments of all in order.
fn one_query(chunk: &[Step]) -> (String, Vec<Arg>) {
    let params = chunk.iter().map(|s| s.args.len()).sum();
    let mut sql = String::new();
    let mut args: Vec<Arg> = Vec::with_capacity(params);
    for step in chunk {
        sql.push_str(&renumber_params(&step.sql, args.len()));
        sql.push_str(";\n");
        args.extend(step.args.iter().cloned());
    }
    (sql, args)
}

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
    use super::super::write_set::Statement;
    use super::*;

    use sqlx::{Connection, Row};

    fn int(arg: &Arg) -> i64 {
        match arg {
            Arg::Int(v) => *v,
            other => panic!("not an Int: {other:?}"),
        }
    }

    fn ints(args: &[Arg]) -> Vec<i64> {
        args.iter().map(int).collect()
    }

    fn args(values: impl IntoIterator<Item = i64>) -> Vec<Arg> {
        values.into_iter().map(Arg::from).collect()
    }

    fn counts(written: &[Written]) -> Vec<u64> {
        written.iter().map(|w| w.rows_affected).collect()
    }

    /// An answer, comparable: the row counts, or the error's name.
    fn shown(answer: &Answer) -> Result<Vec<u64>, &'static str> {
        match answer {
            Ok(written) => Ok(counts(written)),
            Err(StoreError::GuardFailed) => Err("guard failed"),
            Err(StoreError::Database(_)) => Err("database"),
            Err(_) => Err("other"),
        }
    }

    fn step(sql: &str, args: Vec<Arg>) -> Step {
        Step {
            sql: sql.to_string(),
            args,
            owners: Vec::new(),
        }
    }

    /// (sql, arguments, owners) of each step, to compare whole plans.
    fn steps(plan: &Plan) -> Vec<(String, Vec<i64>, Vec<usize>)> {
        plan.steps
            .iter()
            .map(|s| (s.sql.clone(), ints(&s.args), s.owners.clone()))
            .collect()
    }

    /// How `take_query` cuts steps binding `sizes` values each: the steps' indices per query.
    fn split(sizes: &[usize]) -> Vec<Vec<usize>> {
        let all: Vec<Step> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| step(&format!("S{i}"), vec![Arg::Int(0); *n]))
            .collect();
        let mut steps = all.into_iter().peekable();
        let mut queries = Vec::new();
        while steps.peek().is_some() {
            let chunk = take_query(&mut steps);
            queries.push(
                chunk
                    .iter()
                    .map(|s| s.sql[1..].parse::<usize>().unwrap())
                    .collect(),
            );
        }
        queries
    }

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

    /// `$10` is parameter ten, not `$1` followed by a 0: all its digits are read as one number,
    /// and a renumbered parameter may gain digits.
    #[test]
    fn a_parameter_of_several_digits_is_renumbered_whole() {
        assert_eq!(renumber_params("$1, $10, $11, $2", 5), "$6, $15, $16, $7");
        assert_eq!(renumber_params("a = $9", 1), "a = $10");
        assert_eq!(renumber_params("($99)", 901), "($1000)");
        assert_eq!(
            renumber_params("x IN ($1,$2,$3)", 29_997),
            "x IN ($29998,$29999,$30000)"
        );
    }

    /// Only `$` followed by digits is a parameter: the rest of the text, a lone `$` and
    /// non-ASCII text included, is copied as it is.
    #[test]
    fn text_around_parameters_is_copied_unchanged() {
        assert_eq!(
            renumber_params("SELECT '$' || $1 || 'Zoë ½' || $2", 3),
            "SELECT '$' || $4 || 'Zoë ½' || $5"
        );
        assert_eq!(renumber_params("a$ = $1$", 1), "a$ = $2$");
        assert_eq!(renumber_params("no parameters", 7), "no parameters");
        assert_eq!(renumber_params("", 7), "");
    }

    /// What the module promises and no more: careid's SQL has no `$` inside string literals,
    /// because a `$n` there is renumbered like any other (the function does not parse SQL). If
    /// this starts failing, the function learned about literals: update its comment.
    #[test]
    fn a_parameter_inside_a_string_literal_is_renumbered_too() {
        assert_eq!(renumber_params("SELECT '$1', $1", 3), "SELECT '$4', $4");
    }

    /// The statements of a query share one argument list: each one's parameters follow the
    /// arguments of all the statements before it (a statement without any shifts nothing).
    #[test]
    fn one_query_numbers_each_statement_after_the_arguments_before_it() {
        let chunk = [
            step("UPDATE a SET x = $1 WHERE y = $2", args([1, 2])),
            step("DELETE FROM d", Vec::new()),
            step("DELETE FROM b WHERE z = $1", args([3])),
            step(
                "INSERT INTO c VALUES ($1, $2), ($3, $4)",
                args([4, 5, 6, 7]),
            ),
        ];
        let (sql, all) = one_query(&chunk);
        assert_eq!(
            sql,
            "UPDATE a SET x = $1 WHERE y = $2;\n\
             DELETE FROM d;\n\
             DELETE FROM b WHERE z = $3;\n\
             INSERT INTO c VALUES ($4, $5), ($6, $7);\n"
        );
        assert_eq!(ints(&all), vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn values_clause_numbers_along_each_row_then_down() {
        assert_eq!(values_clause(1, 1), "($1)");
        assert_eq!(values_clause(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_clause(3, 1), "($1), ($2), ($3)");
    }

    /// More rows than one INSERT takes become several statements of at most
    /// [`ROWS_PER_INSERT`] rows: every row kept, in order, each with its owner.
    #[test]
    fn rows_past_the_per_insert_limit_split_keeping_order_and_owners() {
        let mut plan = Plan::default();
        plan.rows("t (a, b)", 2, args(0..500), (0..250).collect());
        let sizes: Vec<usize> = plan.steps.iter().map(|s| s.owners.len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        for (s, rows) in plan.steps.iter().zip(&sizes) {
            assert_eq!(
                s.sql,
                format!("INSERT INTO t (a, b) VALUES {}", values_clause(*rows, 2))
            );
            assert_eq!(s.args.len(), rows * 2, "two arguments a row");
        }
        let all_args: Vec<i64> = plan.steps.iter().flat_map(|s| ints(&s.args)).collect();
        assert_eq!(all_args, (0..500).collect::<Vec<_>>());
        let all_owners: Vec<usize> = plan.steps.iter().flat_map(|s| s.owners.clone()).collect();
        assert_eq!(all_owners, (0..250).collect::<Vec<_>>());

        // Exactly the limit is one statement; the audit chain's rows have no owner.
        let mut plan = Plan::default();
        plan.rows("t (a)", 1, args(0..100), Vec::new());
        assert_eq!(plan.steps.len(), 1);
        assert!(plan.steps[0].owners.is_empty());
        let mut plan = Plan::default();
        plan.rows("t (a)", 1, args(0..101), Vec::new());
        assert_eq!(plan.steps.len(), 2);
        assert!(plan.steps.iter().all(|s| s.owners.is_empty()));
    }

    /// SQLite queries bind at most [`MAX_PARAMS_PER_QUERY`] values: the steps are cut into
    /// queries at that bound (a query may hold exactly that many), every step kept, in order;
    /// a step binding more than the bound goes alone rather than being lost or looping.
    #[test]
    fn a_batch_past_the_parameter_limit_splits_into_queries_in_order() {
        assert_eq!(split(&[1, 2, 3]), vec![vec![0, 1, 2]]);
        assert_eq!(
            split(&[10_000, 10_000, 10_000, 1]),
            vec![vec![0, 1, 2], vec![3]]
        );
        assert_eq!(split(&[29_999, 2, 1]), vec![vec![0], vec![1, 2]]);
        assert_eq!(
            split(&[5, 40_000, 0, 5]),
            vec![vec![0], vec![1], vec![2, 3]]
        );
        assert_eq!(split(&[0, 0, 30_000, 0]), vec![vec![0, 1, 2, 3]]);

        // A real batch: 15,001 rows of two columns between two statements of set 0.
        let mut plan = Plan::default();
        plan.text("DELETE FROM log WHERE k = $1", args([-1]), Some(0));
        plan.rows("log (k, j)", 2, args(0..30_002), Vec::new());
        plan.text("UPDATE log SET j = j WHERE k >= $1", args([0]), Some(0));
        let expected: Vec<String> = plan.steps.iter().map(|s| s.sql.clone()).collect();
        let mut steps = plan.steps.into_iter().peekable();
        let mut queries = Vec::new();
        while steps.peek().is_some() {
            queries.push(take_query(&mut steps));
        }
        assert!(queries.len() >= 2, "split: {} queries", queries.len());
        for query in &queries {
            let params: usize = query.iter().map(|s| s.args.len()).sum();
            assert!(
                params <= MAX_PARAMS_PER_QUERY,
                "{params} values in one query"
            );
        }
        let kept: Vec<String> = queries.iter().flatten().map(|s| s.sql.clone()).collect();
        assert_eq!(kept, expected);
    }

    /// The statements of a batch go in rounds (each set's first, then each set's second, ...);
    /// within a round the other statements come first, in the order of their sets, then one
    /// INSERT per table for the rows bound there, owned by the sets the rows came from.
    #[test]
    fn the_rows_of_a_round_share_one_insert_per_table() {
        let mut s0 = WriteSet::new();
        assert_eq!(s0.insert("t (a, b)", args([1, 2])), 0);
        assert_eq!(s0.execute("UPDATE x SET a = $1", args([3])), 1);
        let mut s1 = WriteSet::new();
        s1.execute("DELETE FROM y WHERE a = $1", args([4]));
        s1.insert("t (a, b)", args([5, 6]));
        let mut s2 = WriteSet::new();
        s2.insert("t (a, b)", args([7, 8]));
        s2.insert("u (a)", args([9]));
        s2.insert("t (a, b)", args([10, 11]));
        let mut s3 = WriteSet::new();
        s3.insert("v (a)", args([12]));
        // A row of another width is not merged into a statement it does not fit.
        let mut s4 = WriteSet::new();
        s4.insert("t (a, b)", args([13]));
        let mut plan = Plan::default();
        plan.statements(&[&s0, &s1, &s2, &s3, &s4]);
        let step =
            |sql: &str, a: &[i64], owners: &[usize]| (sql.to_string(), a.to_vec(), owners.to_vec());
        assert_eq!(
            steps(&plan),
            vec![
                // Round 0.
                step("DELETE FROM y WHERE a = $1", &[4], &[1]),
                step(
                    "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)",
                    &[1, 2, 7, 8],
                    &[0, 2]
                ),
                step("INSERT INTO v (a) VALUES ($1)", &[12], &[3]),
                step("INSERT INTO t (a, b) VALUES ($1)", &[13], &[4]),
                // Round 1.
                step("UPDATE x SET a = $1", &[3], &[0]),
                step("INSERT INTO t (a, b) VALUES ($1, $2)", &[5, 6], &[1]),
                step("INSERT INTO u (a) VALUES ($1)", &[9], &[2]),
                // Round 2.
                step("INSERT INTO t (a, b) VALUES ($1, $2)", &[10, 11], &[2]),
            ]
        );
    }

    /// A statement's count goes to the set that owns it; a multi-row INSERT gives each of its
    /// owners one row; a statement owned by no set (the audit chain's) gives nothing.
    #[test]
    fn deliver_routes_a_count_to_its_owner_and_one_row_to_each_owner_of_an_insert() {
        let mut results: Vec<Vec<Written>> = (0..3).map(|_| Vec::new()).collect();
        deliver(&mut results, &[1], Written { rows_affected: 7 });
        deliver(&mut results, &[0, 2], Written { rows_affected: 2 });
        deliver(&mut results, &[], Written { rows_affected: 5 });
        deliver(&mut results, &[1], Written { rows_affected: 0 });
        assert_eq!(
            results.iter().map(|r| counts(r)).collect::<Vec<_>>(),
            vec![vec![1], vec![7, 0], vec![1]]
        );
    }

    /// Plans a batch of sets of different lengths mixing statements and rows, "runs" it (each
    /// step's count is its index + 10, so a count names its step) and checks that every set gets
    /// one result per statement, each from its own statement, in the order it added them.
    #[test]
    fn every_set_gets_the_results_of_its_own_statements_in_order() {
        const UPDATE: &str = "UPDATE s SET n = n WHERE k = $1 AND j = $2";
        let is_row = |k: usize, j: usize| (k + j) % 2 == 1;
        let sets: Vec<WriteSet> = (0..6)
            .map(|k| {
                let mut set = WriteSet::new();
                for j in 0..=k {
                    let a = args([k as i64, j as i64]);
                    let index = if is_row(k, j) {
                        set.insert("r (k, j)", a)
                    } else {
                        set.execute(UPDATE, a)
                    };
                    assert_eq!(index, j);
                }
                set
            })
            .collect();
        let refs: Vec<&WriteSet> = sets.iter().collect();
        let mut plan = Plan::default();
        plan.statements(&refs);
        let mut results: Vec<Vec<Written>> = (0..sets.len()).map(|_| Vec::new()).collect();
        for (i, step) in plan.steps.iter().enumerate() {
            let written = Written {
                rows_affected: i as u64 + 10,
            };
            deliver(&mut results, &step.owners, written);
        }
        for (k, got) in results.iter().enumerate() {
            assert_eq!(got.len(), k + 1, "set {k}: one result per statement");
            for (j, written) in got.iter().enumerate() {
                let want = vec![k as i64, j as i64];
                if written.rows_affected == 1 {
                    // One row of a multi-row INSERT: set k must own a row of it that is this one.
                    assert!(is_row(k, j), "set {k} statement {j}");
                    let owned = plan.steps.iter().any(|s| {
                        s.owners.len() > 1
                            && s.owners
                                .iter()
                                .enumerate()
                                .any(|(p, o)| *o == k && ints(&s.args[p * 2..p * 2 + 2]) == want)
                    });
                    assert!(
                        owned,
                        "set {k} statement {j}: no shared INSERT holds its row"
                    );
                } else {
                    let s = &plan.steps[written.rows_affected as usize - 10];
                    assert_eq!(s.owners, vec![k], "set {k} statement {j}");
                    assert_eq!(ints(&s.args), want, "set {k} statement {j}");
                    if is_row(k, j) {
                        assert!(s.sql.starts_with("INSERT INTO r (k, j)"), "{}", s.sql);
                    } else {
                        assert_eq!(s.sql, UPDATE);
                    }
                }
            }
        }
    }

    /// Guards run in one order everywhere, by statement and then arguments (and then by set),
    /// each owned by its set; sets without a guard add none.
    #[test]
    fn guards_run_sorted_and_belong_to_their_sets() {
        const CLAIM: &str = "UPDATE codes SET used = 1 WHERE code = $1";
        const TAKE: &str = "DELETE FROM flows WHERE id = $1";
        let s0 = WriteSet::guarded(CLAIM, vec!["b".into()]);
        let mut s1 = WriteSet::new();
        s1.execute("UPDATE x SET a = 1", Vec::new());
        let s2 = WriteSet::guarded(CLAIM, vec!["a".into()]);
        let s3 = WriteSet::guarded(TAKE, vec!["z".into()]);
        let s4 = WriteSet::guarded(CLAIM, vec!["b".into()]);
        let plan = guard_plan(&[&s0, &s1, &s2, &s3, &s4]).unwrap();
        let order: Vec<(String, Vec<usize>)> = plan
            .steps
            .iter()
            .map(|s| (s.sql.clone(), s.owners.clone()))
            .collect();
        assert_eq!(
            order,
            vec![
                (TAKE.to_string(), vec![3]),
                (CLAIM.to_string(), vec![2]),
                (CLAIM.to_string(), vec![0]),
                (CLAIM.to_string(), vec![4]),
            ]
        );
        assert!(guard_plan(&[&s1]).unwrap().steps.is_empty());
    }

    #[test]
    fn a_guard_that_is_a_row_is_refused() {
        let set = WriteSet {
            guard: Some(Statement {
                sql: Sql::Row { target: "t (a)" },
                args: args([1]),
            }),
            ..WriteSet::default()
        };
        assert!(matches!(
            guard_plan(&[&set]),
            Err(StoreError::GroupCommit(_))
        ));
    }

    /// A set passes without a guard, or when its guard changed a row; not when it changed none
    /// (or, defensively, when no result came back for it).
    #[test]
    fn a_set_passes_only_without_a_guard_or_when_its_guard_changed_a_row() {
        let guarded = || WriteSet::guarded("DELETE FROM f WHERE id = $1", args([1]));
        let free = WriteSet::new();
        let (g0, g1, g2, g3) = (guarded(), guarded(), guarded(), guarded());
        let results = vec![
            vec![Written { rows_affected: 1 }],
            Vec::new(),
            vec![Written { rows_affected: 0 }],
            vec![Written { rows_affected: 3 }],
            Vec::new(),
        ];
        assert_eq!(
            guards_passed(&[&g0, &free, &g1, &g2, &g3], results),
            vec![true, true, false, true, false]
        );
    }

    /// The results of the sets that were written come back to those sets, in order, past the
    /// sets whose guard failed (which are told so).
    #[test]
    fn answers_skip_the_sets_whose_guard_failed() {
        let w = |n: u64| Written { rows_affected: n };
        let results = vec![vec![w(1)], vec![w(2), w(3)], Vec::new()];
        let got: Vec<_> = answers(vec![false, true, false, true, true], results)
            .iter()
            .map(shown)
            .collect();
        assert_eq!(
            got,
            vec![
                Err("guard failed"),
                Ok(vec![1]),
                Err("guard failed"),
                Ok(vec![2, 3]),
                Ok(vec![]),
            ]
        );
    }

    async fn memory_pool() -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        // One connection, kept: an in-memory database lives as long as its connection.
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    async fn column(pool: &sqlx::AnyPool, sql: &str) -> Vec<i64> {
        sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<i64, _>(0))
            .collect()
    }

    /// SQLite runs a batch as one multi-statement query, and sqlx reports one result per
    /// statement: each count reaches the set whose statement it is (3 for set 0's update, 5
    /// for set 1's delete, 0 for set 2's), and the rows of the shared INSERT arrive.
    #[tokio::test]
    async fn one_sqlite_query_routes_each_result_to_its_set() {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE t (tag TEXT NOT NULL, n INTEGER);
             CREATE TABLE log (k INTEGER NOT NULL, j INTEGER NOT NULL);
             INSERT INTO t (tag) VALUES ('x'), ('x'), ('x'), ('y'), ('y'), ('y'), ('y'), ('y');",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let mut s0 = WriteSet::new();
        s0.execute(
            "UPDATE t SET n = $1 WHERE tag = $2",
            vec![1.into(), "x".into()],
        );
        s0.insert("log (k, j)", args([0, 1]));
        let mut s1 = WriteSet::new();
        s1.insert("log (k, j)", args([1, 0]));
        s1.execute("DELETE FROM t WHERE tag = $1", vec!["y".into()]);
        let mut s2 = WriteSet::new();
        s2.execute(
            "UPDATE t SET n = $1 WHERE tag = $2",
            vec![2.into(), "none".into()],
        );
        let mut plan = Plan::default();
        plan.statements(&[&s0, &s1, &s2]);
        let results = plan.execute(&mut conn, 3, Backend::Sqlite).await.unwrap();
        assert_eq!(
            results.iter().map(|r| counts(r)).collect::<Vec<_>>(),
            vec![vec![3, 1], vec![1, 5], vec![0]]
        );
        let rows: Vec<(i64, i64)> = sqlx::query("SELECT k, j FROM log ORDER BY k")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(rows, vec![(0, 1), (1, 0)]);
    }

    /// A batch binding more values than one query may is sent as several queries: every row
    /// arrives, in order, and the statements after the split still report to their set.
    #[tokio::test]
    async fn a_batch_past_the_parameter_limit_writes_every_row_in_order() {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::raw_sql("CREATE TABLE log (k INTEGER NOT NULL, j INTEGER NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        let rows = 15_001;
        let mut plan = Plan::default();
        plan.text("DELETE FROM log WHERE k = $1", args([-1]), Some(0));
        plan.rows(
            "log (k, j)",
            2,
            (0..rows)
                .flat_map(|k| [Arg::Int(k), Arg::Int(-k)])
                .collect(),
            Vec::new(),
        );
        plan.text("UPDATE log SET j = j WHERE k >= $1", args([0]), Some(0));
        let params: usize = plan.steps.iter().map(|s| s.args.len()).sum();
        assert!(
            params > MAX_PARAMS_PER_QUERY,
            "the batch must need splitting"
        );
        let results = plan.execute(&mut conn, 1, Backend::Sqlite).await.unwrap();
        assert_eq!(counts(&results[0]), vec![0, rows as u64]);
        let stored: Vec<(i64, i64)> = sqlx::query("SELECT k, j FROM log ORDER BY rowid")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(stored, (0..rows).map(|k| (k, -k)).collect::<Vec<_>>());
    }

    async fn claims_db() -> BatchWriter {
        let pool = memory_pool().await;
        sqlx::raw_sql(
            "CREATE TABLE codes (code TEXT PRIMARY KEY, used INTEGER NOT NULL);
             CREATE TABLE log (k INTEGER PRIMARY KEY);
             INSERT INTO codes VALUES ('c1', 0), ('c2', 0);",
        )
        .execute(&pool)
        .await
        .unwrap();
        BatchWriter {
            pool,
            backend: Backend::Sqlite,
        }
    }

    const CLAIM: &str = "UPDATE codes SET used = 1 WHERE code = $1 AND used = 0";

    fn claiming(code: &str, k: i64) -> WriteSet {
        let mut set = WriteSet::guarded(CLAIM, vec![code.into()]);
        set.insert("log (k)", args([k]));
        set
    }

    /// In one transaction: of two sets claiming one code the first (guards run sorted, then
    /// by set) is written and the second is not; a set claiming nothing that exists is not
    /// written; a set without a guard is; each written set gets its own results.
    #[tokio::test]
    async fn a_batch_writes_only_the_sets_whose_guard_changed_a_row() {
        let writer = claims_db().await;
        let s0 = claiming("c1", 0);
        let s1 = claiming("c1", 1);
        let mut s2 = WriteSet::new();
        s2.insert("log (k)", args([2]));
        s2.execute(
            "UPDATE codes SET used = used WHERE code = $1 OR code = $2",
            vec!["c1".into(), "c2".into()],
        );
        let s3 = claiming("c3", 3);
        let s4 = claiming("c2", 4);
        let answers = writer.write_sets(&[&s0, &s1, &s2, &s3, &s4]).await.unwrap();
        assert_eq!(
            answers.iter().map(shown).collect::<Vec<_>>(),
            vec![
                Ok(vec![1]),
                Err("guard failed"),
                Ok(vec![1, 2]),
                Err("guard failed"),
                Ok(vec![1]),
            ]
        );
        assert_eq!(
            column(&writer.pool, "SELECT k FROM log ORDER BY k").await,
            vec![0, 2, 4]
        );
        assert_eq!(
            column(&writer.pool, "SELECT used FROM codes ORDER BY code").await,
            vec![1, 1]
        );
    }

    /// When the shared transaction fails (one set breaks a constraint), each set is retried on
    /// its own: the breaking set alone gets the error, and the others are written and told.
    #[tokio::test]
    async fn when_the_shared_transaction_fails_each_set_is_retried_alone() {
        let writer = claims_db().await;
        sqlx::query("INSERT INTO log (k) VALUES (7)")
            .execute(&writer.pool)
            .await
            .unwrap();
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        for set in [claiming("c1", 1), claiming("c1", 3), claiming("c2", 2)] {
            let (done, answer) = oneshot::channel();
            batch.push((set, done));
            answers.push(answer);
        }
        let mut breaking = WriteSet::new();
        breaking.insert("log (k)", args([7]));
        let (done, answer) = oneshot::channel();
        batch.insert(1, (breaking, done));
        answers.insert(1, answer);
        writer.write_batch(batch).await;
        let mut got = Vec::new();
        for answer in answers {
            got.push(shown(&answer.await.unwrap()));
        }
        assert_eq!(
            got,
            vec![
                Ok(vec![1]),
                Err("database"),
                // Retried alone after the first set took c1: its guard now fails.
                Err("guard failed"),
                Ok(vec![1]),
            ]
        );
        assert_eq!(
            column(&writer.pool, "SELECT k FROM log ORDER BY k").await,
            vec![1, 2, 7]
        );
    }
}

//! A request's writes, gathered to commit as one (`group_commit.rs` commits them): statements,
//! rows to insert, an optional guard, and audit events. Each table's module adds its
//! `impl WriteSet` methods, so domain code composes a set without seeing SQL. This module holds
//! only the shape; it imports neither the group commit nor the audit chain.

use serde_json::Value;

use crate::clock::UnixTime;

/// A bound parameter, owned so that a set can wait in the queue.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
    OptText(Option<String>),
    OptInt(Option<i64>),
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

#[derive(Debug)]
pub(super) enum Sql {
    /// Any statement.
    Text(&'static str),
    /// One row for `INSERT INTO {target} VALUES (...)`: the rows that sets in a batch add to the
    /// same target are written by one multi-row statement.
    Row { target: &'static str },
}

#[derive(Debug)]
pub(super) struct Statement {
    pub(super) sql: Sql,
    pub(super) args: Vec<Arg>,
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
    pub(super) guard: Option<Statement>,
    pub(super) statements: Vec<Statement>,
    pub(super) audit: Vec<AuditEvent>,
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

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub at: UnixTime,
    /// What happened, e.g. `login.smartcard`, `token.issued`, `client.registered`.
    pub kind: String,
    /// `success`, or the reason it failed.
    pub outcome: String,
    /// The user or operator responsible, when known.
    pub actor: Option<String>,
    pub client_id: Option<String>,
    pub detail: Value,
}

//! How every write runs: a transaction that takes the write lock up front and always ends
//! (commit or rollback), retried when another process holds the lock, and the write path's
//! statements prepared once and kept (local mode).

use std::time::Duration;

use libsql::Connection;

use super::error::{DbContext, Result};
use super::{Record, TursoBackend, calls};

/// How often a write retries a lock that another process holds past the busy timeout.
const LOCK_RETRIES: u32 = 3;

/// Starts a write transaction, taking the write lock up front so that the transaction can
/// never fail halfway for want of it. Another process (a second editor window) holding the
/// lock makes SQLite wait up to the busy timeout; if it still reports the file locked, or
/// reports it without waiting, the start is retried a few times before the caller hears of
/// it.
pub(super) async fn begin_write(
    conn: &Connection,
    doing: &'static str,
) -> Result<libsql::Transaction> {
    let mut attempt = 0;
    loop {
        match conn
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await
        {
            Err(e) if is_locked(&e) && attempt < LOCK_RETRIES => {
                attempt += 1;
                tracing::debug!("{doing}: the database is locked, retry {attempt}: {e}");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            other => return other.doing(doing),
        }
    }
}

/// Runs `body` in a write transaction and always ends it: commit when `body` succeeded,
/// rollback when it failed. libsql 0.10 does not roll back a transaction that is merely
/// dropped on a replica (the primary keeps it open and every later `BEGIN` fails), so no
/// path may leave one behind.
pub(super) async fn in_write<T>(
    conn: &Connection,
    doing: &'static str,
    body: impl AsyncFnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let tx = begin_write(conn, doing).await?;
    let outcome = body(&tx).await;
    end_write(tx, outcome, doing).await
}

/// Ends a write transaction explicitly: commit on success, rollback on failure (the
/// failure is what the caller hears about, whatever the rollback says).
pub(super) async fn end_write<T>(
    tx: libsql::Transaction,
    outcome: Result<T>,
    doing: &'static str,
) -> Result<T> {
    match outcome {
        Ok(value) => {
            tx.commit().await.doing(doing)?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!("{doing}: rolling back after \"{e}\" failed too: {rollback}");
            }
            Err(e)
        }
    }
}

impl TursoBackend {
    /// One write tool call: a write transaction on the working file, ended explicitly on
    /// every path. Local in both modes: replica mode pushes it to the primary afterwards.
    pub(super) async fn write<T>(
        &self,
        doing: &'static str,
        body: impl AsyncFnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let conn = self.conn.lock().await;
        in_write(&conn, doing, async |tx| {
            let value = body(tx).await?;
            calls::mark_applied(tx).await?;
            Ok(value)
        })
        .await
    }
}

/// The statements of the write path, prepared once per connection and reused (local mode).
/// Preparing an `INSERT INTO nodes` compiles every trigger it fires — the full-text index's,
/// with its JSON walk, and the change count's — which cost about as much as running them.
/// A statement is taken out while it runs and put back reset, so it never holds a read
/// open between calls; SQLite prepares it again by itself if the schema changed.
#[derive(Default)]
pub(crate) struct Kept(
    std::sync::Mutex<std::collections::HashMap<&'static str, libsql::Statement>>,
);

impl Kept {
    fn take(&self, sql: &'static str) -> Option<libsql::Statement> {
        self.0.lock().expect("statement cache lock").remove(sql)
    }

    fn put(&self, sql: &'static str, statement: libsql::Statement) {
        statement.reset();
        self.0
            .lock()
            .expect("statement cache lock")
            .insert(sql, statement);
    }

    pub(super) fn clear(&self) {
        self.0.lock().expect("statement cache lock").clear();
    }
}

impl TursoBackend {
    /// A statement of the write path, ready to bind: the kept one in local mode (prepared
    /// now if it is the first use). Replica mode prepares it afresh every time: the
    /// connection is replaced after a failure and statements run on the primary.
    async fn statement(
        &self,
        conn: &Connection,
        sql: &'static str,
        doing: &'static str,
    ) -> Result<libsql::Statement> {
        if let Some(kept) = self.kept.take(sql) {
            kept.reset();
            return Ok(kept);
        }
        conn.prepare(sql).await.doing(doing)
    }

    fn give_back(&self, sql: &'static str, statement: libsql::Statement) {
        self.kept.put(sql, statement);
    }

    /// Runs a statement that returns no rows, through [`TursoBackend::statement`].
    pub(crate) async fn execute_kept(
        &self,
        conn: &Connection,
        sql: &'static str,
        params: impl libsql::params::IntoParams,
        doing: &'static str,
    ) -> Result<u64> {
        let statement = self.statement(conn, sql, doing).await?;
        let outcome = statement.execute(params).await.doing(doing);
        self.give_back(sql, statement);
        outcome.map(|n| n as u64)
    }

    /// Reads the first row of a query, through [`TursoBackend::statement`].
    pub(crate) async fn first_row_kept(
        &self,
        conn: &Connection,
        sql: &'static str,
        params: impl libsql::params::IntoParams,
        doing: &'static str,
    ) -> Result<Option<Record>> {
        let statement = self.statement(conn, sql, doing).await?;
        let outcome = async {
            let mut rows = statement.query(params).await.doing(doing)?;
            match rows.next().await.doing(doing)? {
                Some(row) => Ok(Some(Record::read(&row, doing)?)),
                None => Ok(None),
            }
        }
        .await;
        self.give_back(sql, statement);
        outcome
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED, with any extended code.
pub(super) fn is_locked(e: &libsql::Error) -> bool {
    match e {
        libsql::Error::SqliteFailure(code, _) => matches!(code & 0xff, 5 | 6),
        other => other.to_string().contains("database is locked"),
    }
}

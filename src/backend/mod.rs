//! The one place that talks to libsql. Tools call these methods and never see SQL; this
//! module never sees MCP. Every public method is one transaction: it either fully happens
//! or changes nothing.

mod codec;
mod error;
mod filters;
mod fts_query;
mod graph;
mod memories;
mod pyjson;
mod schema;
mod search;
mod stats;
mod typo;

use std::path::{Path, PathBuf};
use std::time::Duration;

use libsql::{Connection, Database, Row, Value};
use tokio::sync::Mutex;

pub use error::{BackendError, Result};
pub use graph::RelationshipQuery;
pub use search::{Correction, MatchMode, Neighbour, SearchPage, SearchRequest, Tolerance};
pub use stats::{BackendHealth, Statistics};

use error::DbContext;

/// How long a statement waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings the backend needs from the configuration.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// The database file.
    pub path: PathBuf,
    /// Whether a relationship may close a cycle among edges of its type.
    pub allow_cycles: bool,
}

/// The memory store: one libsql database in local mode, one connection, serialised access.
pub struct TursoBackend {
    /// Kept alive for as long as the connection; dropping both closes the file.
    _db: Database,
    conn: Mutex<Connection>,
    path: PathBuf,
    allow_cycles: bool,
}

impl TursoBackend {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(options: BackendOptions) -> Result<Self> {
        let path = options.path;
        ensure_parent_dir(&path)?;
        let db = libsql::Builder::new_local(&path)
            .build()
            .await
            .doing("opening the database file")?;
        let conn = db.connect().doing("connecting to the database")?;
        configure(&conn).await?;
        schema::migrate(&conn).await?;
        restrict_permissions(&path);
        Ok(TursoBackend {
            _db: db,
            conn: Mutex::new(conn),
            path,
            allow_cycles: options.allow_cycles,
        })
    }

    /// Checkpoints the write-ahead log so the file is complete on its own, then closes.
    pub async fn close(self) -> Result<()> {
        let conn = self.conn.into_inner();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .doing("checkpointing the write-ahead log")?;
        drop(conn);
        Ok(())
    }

    /// Rebuilds the full-text index from scratch.
    pub async fn reindex(&self) -> Result<()> {
        let conn = self.conn.lock().await;
        schema::rebuild_full_text_index(&conn).await
    }
}

fn ensure_parent_dir(path: &Path) -> Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| BackendError::Io {
        doing: format!("creating the folder {}", dir.display()),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// A memory file holds private notes: readable by its owner only.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
}

async fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .doing("setting the busy timeout")?;
    // journal_mode answers with a row, so it is read as a query.
    let mut rows = conn
        .query("PRAGMA journal_mode = WAL", ())
        .await
        .doing("switching to write-ahead logging")?;
    while rows
        .next()
        .await
        .doing("switching to write-ahead logging")?
        .is_some()
    {}
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .await
        .doing("setting connection pragmas")?;
    Ok(())
}

/// One result row, read out of the statement. libsql's `Row` is a view of the statement's
/// current row and changes when the statement steps, so rows are copied before moving on.
#[derive(Clone)]
pub(crate) struct Record(Vec<Value>);

impl Record {
    fn read(row: &Row, doing: &'static str) -> Result<Record> {
        (0..row.column_count())
            .map(|i| row.get_value(i).doing(doing))
            .collect::<Result<Vec<_>>>()
            .map(Record)
    }

    pub(crate) fn value(&self, idx: usize) -> &Value {
        self.0.get(idx).unwrap_or(&Value::Null)
    }

    /// A nullable text column.
    pub(crate) fn opt_text(&self, idx: usize) -> Option<String> {
        match self.value(idx) {
            Value::Null => None,
            Value::Text(s) => Some(s.clone()),
            Value::Integer(i) => Some(i.to_string()),
            Value::Real(f) => Some(f.to_string()),
            Value::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        }
    }

    /// A text column as borrowed text ("" when it is not text).
    pub(crate) fn str(&self, idx: usize) -> &str {
        match self.value(idx) {
            Value::Text(s) => s,
            _ => "",
        }
    }

    pub(crate) fn text(&self, idx: usize) -> String {
        self.opt_text(idx).unwrap_or_default()
    }

    pub(crate) fn int(&self, idx: usize) -> i64 {
        match self.value(idx) {
            Value::Integer(i) => *i,
            Value::Real(f) => *f as i64,
            _ => 0,
        }
    }

    pub(crate) fn real(&self, idx: usize) -> Option<f64> {
        match self.value(idx) {
            Value::Integer(i) => Some(*i as f64),
            Value::Real(f) => Some(*f),
            _ => None,
        }
    }
}

/// Reads every row of a query.
async fn all_rows(mut rows: libsql::Rows, doing: &'static str) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.doing(doing)? {
        out.push(Record::read(&row, doing)?);
    }
    Ok(out)
}

/// Runs a query and reads its first row, if any.
async fn first_row(
    conn: &Connection,
    sql: &str,
    params: impl libsql::params::IntoParams,
    doing: &'static str,
) -> Result<Option<Record>> {
    let mut rows = conn.query(sql, params).await.doing(doing)?;
    match rows.next().await.doing(doing)? {
        Some(row) => Ok(Some(Record::read(&row, doing)?)),
        None => Ok(None),
    }
}

/// Reads a single integer (a count, a sum).
async fn scalar_i64(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
    doing: &'static str,
) -> Result<i64> {
    Ok(first_row(conn, sql, params, doing)
        .await?
        .map(|r| r.int(0))
        .unwrap_or(0))
}

//! The one place that talks to libsql. Tools call these methods and never see SQL; this
//! module never sees MCP. Every public method is one transaction: it either fully happens
//! or changes nothing.

mod calls;
mod codec;
mod error;
mod exchange;
mod graph;
mod memories;
mod overview;
mod pyjson;
mod rows;
mod schema;
mod search;
mod stats;
mod sync;
mod versions;

use std::path::{Path, PathBuf};
use std::time::Duration;

use libsql::{Connection, Database, Row, Value};
use tokio::sync::Mutex;

pub use calls::{RecordedCall, keyed};
pub use error::{BackendError, Result};
pub use exchange::{
    Everything, ImportBatch, ImportOptions, ImportReport, ImportedMemory, ImportedRelationship,
    StoredRelationship,
};
pub use graph::RelationshipQuery;
pub use overview::{OVERVIEW_MAX, Overview};
/// JSON in the form MemoryGraph wrote inside its rows (Python `json.dumps` defaults).
pub use pyjson::to_string as python_json;
pub use replica::{PULL_WAIT, Primary, SyncStatus, redact_url};
pub use search::embed;
pub use search::fusion::{Method as FusionMethod, Params as FusionParams};
pub use search::semantic::{BATCH as EMBED_BATCH, READY_WAIT as MODEL_WAIT, SemanticHealth};
pub use search::{
    Correction, DEFAULT_SEARCH_MODE, MatchMode, MatchedBy, Neighbour, SearchHit, SearchMode,
    SearchPage, SearchRequest, Tolerance,
};
pub use stats::{BackendHealth, Statistics};
pub use sync::layout::{moved_aside, remove_moved_aside};
pub use sync::migrate::copy_to_primary;
pub use sync::resync::{LocalCopy, ResyncReport, resync};
pub use sync::state::{IssueKind, SyncIssue};
pub use sync::{Backlog, KEPT_DAYS, Policy, Reconciled, Which};
pub use versions::Version;

use error::DbContext;
use sync::{queue, replica};

/// How long a statement waits for another process's write lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings the backend needs from the configuration.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// The database file (in replica mode, the local replica).
    pub path: PathBuf,
    /// Whether a relationship may close a cycle among edges of its type.
    pub allow_cycles: bool,
    /// `Some` for replica mode: the primary the file replicates.
    pub primary: Option<Primary>,
    /// What an acknowledged local write survives.
    pub durability: Durability,
    /// Replica mode: sync at open and at close (`MEMORY_TURSO_AUTO_SYNC`); when off, only an
    /// explicit `sync_now` syncs.
    pub auto_sync: bool,
}

impl BackendOptions {
    /// A local file with every default: no cycles, no primary, `Durability::Normal` (the
    /// benchmark and the tests that open the backend in-process).
    pub fn local(path: impl Into<PathBuf>) -> BackendOptions {
        BackendOptions {
            path: path.into(),
            allow_cycles: false,
            primary: None,
            durability: Durability::default(),
            auto_sync: true,
        }
    }
}

/// What an acknowledged write survives. Both keep the file consistent whatever happens
/// (write-ahead log); they differ in what a power cut may take back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a write survives any crash of the program; a power cut
    /// or OS crash may take back the last writes before the next checkpoint, never corrupt.
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: every commit is fsynced before it is acknowledged, so
    /// it survives a power cut too. Costs one fsync per write.
    Full,
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Normal => "normal",
            Durability::Full => "full",
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "PRAGMA synchronous = NORMAL",
            Durability::Full => "PRAGMA synchronous = FULL",
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(Durability::Normal),
            "full" => Ok(Durability::Full),
            _ => Err(format!("{s:?} is not a durability; allowed: normal, full")),
        }
    }
}

/// The memory store: one libsql database, local or an embedded replica of a primary, one
/// connection, serialised access.
pub struct TursoBackend {
    /// Local mode: the write path's statements, prepared once (see [`Kept`]). First, so it
    /// is dropped before the connection it belongs to.
    kept: Kept,
    /// Local mode: kept alive for as long as the connection; dropping both closes the file.
    _db: Option<Database>,
    conn: Mutex<Connection>,
    path: PathBuf,
    allow_cycles: bool,
    durability: Durability,
    /// Replica mode: whether opening and closing sync.
    auto_sync: bool,
    /// Replica mode: the primary, and the replica once this process owns it.
    sync: Option<sync::SyncLink>,
    /// Woken after every write, so the sync task pulls soon.
    written: tokio::sync::Notify,
    /// Writes made through this backend; tells caches the index changed.
    writes: std::sync::atomic::AtomicU64,
    /// The typo corrector's vocabulary cache.
    vocabulary: std::sync::Mutex<Option<search::lexical::vocabulary::Vocabulary>>,
    /// Document frequencies for ranking (see `search::lexical`).
    frequencies: std::sync::Mutex<search::lexical::Frequencies>,
    /// Use counts not written yet (see `count_use`).
    pending_uses: std::sync::Mutex<std::collections::HashMap<String, (i64, String)>>,
    /// Semantic recall: the model, when installed, and the embedding worker's state.
    semantic: search::semantic::Semantic,
}

impl TursoBackend {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(options: BackendOptions) -> Result<Self> {
        search::register_ranking_functions();
        let path = options.path.clone();
        ensure_parent_dir(&path)?;
        if let Some(primary) = &options.primary {
            sync::layout::upgrade(&path, primary).await?;
        }
        let new_file = create_private_file(&path)?;
        let db = libsql::Builder::new_local(&path)
            .build()
            .await
            .doing("opening the database file")?;
        let conn = db.connect().doing("connecting to the database")?;
        if new_file {
            choose_page_size(&conn).await?;
        }
        configure(&conn, options.durability).await?;
        schema::migrate(&conn).await?;
        let mut backend = TursoBackend {
            kept: Kept::default(),
            _db: Some(db),
            conn: Mutex::new(conn),
            path,
            allow_cycles: options.allow_cycles,
            durability: options.durability,
            auto_sync: options.auto_sync,
            sync: None,
            written: tokio::sync::Notify::new(),
            writes: Default::default(),
            vocabulary: Default::default(),
            frequencies: Default::default(),
            pending_uses: Default::default(),
            semantic: Default::default(),
        };
        match options.primary {
            Some(primary) => backend.start_replica_mode(primary).await?,
            None => backend.prune_feed().await?,
        }
        restrict_permissions(&backend.path);
        Ok(backend)
    }

    /// Local mode: checkpoints the write-ahead log so the file is complete on its own.
    /// Replica mode: a last sync, briefly. Then closes.
    pub async fn close(self) -> Result<()> {
        if self.auto_sync
            && self.owns_replica()
            && let Err(e) = self.sync_now(replica::CONNECT_WAIT).await
        {
            tracing::warn!("last sync before closing failed: {e}");
        }
        self.flush_uses(&*self.conn.lock().await).await;
        self.kept.clear();
        let conn = self.conn.into_inner();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .doing("checkpointing the write-ahead log")?;
        drop(conn);
        Ok(())
    }

    /// Waits until a write happened (replica mode wakes the sync task with it).
    pub async fn written(&self) {
        self.written.notified().await
    }

    /// Called after every successful write: caches learn the index changed, the embedding
    /// worker looks for new text, and in replica mode the sync task pushes soon.
    fn after_write(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.semantic.wake();
        if self.sync.is_some() {
            self.written.notify_one();
        }
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
    /// The database file (the working file in replica mode): files handed to the owner
    /// go next to it.
    pub fn path(&self) -> &Path {
        &self.path
    }

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

    fn clear(&self) {
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
fn is_locked(e: &libsql::Error) -> bool {
    match e {
        libsql::Error::SqliteFailure(code, _) => matches!(code & 0xff, 5 | 6),
        other => other.to_string().contains("database is locked"),
    }
}

/// A memory file holds private notes: readable by its owner only. SQLite gives the log and
/// shared-memory files the database file's mode, so a new file is created private before
/// SQLite opens it; files made by an older version are tightened here, with their companions.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in [
            "",
            "-wal",
            "-shm",
            "-info",
            "-client_wal_index",
            ".lock",
            ".queue",
            ".queue-wal",
            ".queue-shm",
        ] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            if let Ok(meta) = std::fs::metadata(&file)
                && meta.is_file()
                && meta.permissions().mode() & 0o077 != 0
            {
                let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
}

/// Creates a missing database file empty (a valid empty database) and private, so that
/// SQLite's own companion files inherit the private mode from the start. True when the file
/// is empty (new, or created empty before), so its page size can still be chosen.
fn create_private_file(path: &Path) -> Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(BackendError::Io {
                    doing: format!("creating the database file {}", path.display()),
                    source,
                });
            }
        }
    }
    Ok(std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true))
}

/// The page size of a new file. A memory's row is 0.3–3 KB of JSON: with SQLite's default
/// 4 KiB pages, two rows of just over 2 KB never share a page, and a quarter of the file
/// was unused space in the rows' pages. 16 KiB pages leave under 8 % unused (a file of
/// 10,000 memories: 40.1 → 33.9 MB). Files made before keep their page size.
const PAGE_SIZE: u32 = 16384;

/// Sets the page size of a file that has no page yet (SQLite fixes it with the first write).
async fn choose_page_size(conn: &Connection) -> Result<()> {
    conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}"))
        .await
        .doing("choosing the page size")?;
    Ok(())
}

/// Switches a file to write-ahead logging (a pragma that answers with a row, so it is
/// read as a query).
async fn use_write_ahead_log(conn: &Connection) -> Result<()> {
    first_row(
        conn,
        "PRAGMA journal_mode = WAL",
        (),
        "switching to write-ahead logging",
    )
    .await?;
    Ok(())
}

/// How much write-ahead log accumulates before a checkpoint.
const WAL_BYTES_BETWEEN_CHECKPOINTS: i64 = 32 * 1024 * 1024;

async fn configure(conn: &Connection, durability: Durability) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .doing("setting the busy timeout")?;
    use_write_ahead_log(conn).await?;
    // A checkpoint copies each changed page once, however often it changed: every store
    // rewrites the same full-text and index pages, so a longer log (32 MiB) between
    // checkpoints means fewer copies and fsyncs per store.
    let page_size = scalar_i64(
        conn,
        "SELECT page_size FROM pragma_page_size()",
        vec![],
        "reading the page size",
    )
    .await?
    .max(512);
    conn.execute_batch(&format!(
        "{}; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = {};",
        durability.pragma(),
        WAL_BYTES_BETWEEN_CHECKPOINTS / page_size
    ))
    .await
    .doing("setting connection pragmas")?;
    Ok(())
}

/// A consistent view for a multi-statement read: a deferred transaction (one snapshot), in
/// both modes, since replica mode reads the same kind of local file.
pub(crate) struct Reading<'a>(libsql::Transaction, std::marker::PhantomData<&'a ()>);

impl std::ops::Deref for Reading<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl Reading<'_> {
    pub(crate) async fn finish(self) -> Result<()> {
        self.0.commit().await.doing("finishing a read")
    }
}

impl TursoBackend {
    pub(crate) async fn reading<'a>(&self, conn: &'a Connection) -> Result<Reading<'a>> {
        Ok(Reading(
            conn.transaction().await.doing("starting a read")?,
            std::marker::PhantomData,
        ))
    }
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

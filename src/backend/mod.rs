//! The one place that talks to libsql. Tools call these methods and never see SQL; this
//! module never sees MCP. Every public method is one transaction: it either fully happens
//! or changes nothing.

mod calls;
mod codec;
pub mod consolidate;
mod error;
mod exchange;
mod file;
mod graph;
mod memories;
pub(crate) mod near;
mod overview;
mod pyjson;
mod reading;
mod rows;
mod schema;
mod search;
mod stats;
mod sync;
mod versions;
mod writing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use libsql::{Connection, Database};
use tokio::sync::Mutex;

pub use calls::{RecordedCall, keyed};
pub use consolidate::Consolidation;
pub use error::{BackendError, Result};
pub use exchange::{
    Everything, ImportBatch, ImportOptions, ImportReport, ImportedMemory, ImportedRelationship,
    StoredRelationship,
};
pub use graph::RelationshipQuery;
pub use near::{Closeness, NearDuplicate};
pub use overview::{OVERVIEW_MAX, Overview};
/// JSON in the form MemoryGraph wrote inside its rows (Python `json.dumps` defaults).
pub use pyjson::to_string as python_json;
pub use replica::{PULL_WAIT, Primary, SyncStatus, redact_url};
pub use search::embed;
pub use search::fusion::{Method as FusionMethod, Params as FusionParams};
pub use search::semantic::{BATCH as EMBED_BATCH, READY_WAIT as MODEL_WAIT, SemanticHealth};
pub use search::{
    Correction, DEFAULT_SEARCH_MODE, Folded, MatchMode, MatchedBy, Neighbour, SearchHit,
    SearchMode, SearchPage, SearchRequest, Tolerance,
};
pub use stats::{BackendHealth, Statistics};
pub use sync::layout::{moved_aside, remove_moved_aside};
pub use sync::migrate::copy_to_primary;
pub use sync::resync::{LocalCopy, ResyncReport, resync};
pub use sync::state::{IssueKind, SyncIssue};
pub use sync::{Backlog, KEPT_DAYS, Policy, Reconciled, Which};
pub use versions::Version;

use error::DbContext;
use file::{
    choose_page_size, configure, create_private_file, ensure_parent_dir, restrict_permissions,
};
pub(crate) use reading::Record;
use reading::{all_rows, first_row, scalar_i64};
use sync::{queue, replica};
pub(crate) use writing::Kept;
use writing::{begin_write, end_write, in_write};

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

impl TursoBackend {
    /// The database file (the working file in replica mode): files handed to the owner
    /// go next to it.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

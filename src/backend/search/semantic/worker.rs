//! The embedding worker: loads the model, then gives every memory without a vector one, in
//! batches while the server is quiet, and keeps doing so for new and changed memories.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libsql::Connection;

use super::*;
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::{TursoBackend, all_rows, first_row};

impl TursoBackend {
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

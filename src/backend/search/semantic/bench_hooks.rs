//! What only the benchmark uses: random vectors for sizes that would take long to embed,
//! timing the semantic side of a search part by part, and tuning the fusion. Built with the
//! `bench` feature only, so the library users get does not carry them.

use std::time::Instant;

use super::*;
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::{TursoBackend, all_rows};

impl TursoBackend {
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
            scan: None,
        };
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        let started = Instant::now();
        nearest(
            &tx,
            &crate::backend::search::SearchRequest::new("", k as u32),
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

    /// For each text, the `k` nearest memories as a search finds them (the scan on a blocking
    /// thread, then the checks) against the `k` nearest by an exact scan of every stored
    /// vector in SQL: how many of the exact ones the search found, out of how many, and the
    /// milliseconds per text of the scan, of the whole search (scan and checks) and of the
    /// exact scan (benchmark only).
    pub async fn nearest_against_exact(
        &self,
        texts: &[String],
        k: usize,
    ) -> Result<(usize, usize, [Vec<f64>; 3])> {
        let (mut found, mut wanted) = (0, 0);
        let (mut scanning, mut searching, mut exact) = (Vec::new(), Vec::new(), Vec::new());
        for text in texts {
            let vector = self
                .start_query_vector(text, false)
                .ok_or_else(|| BackendError::Refused("semantic recall is off".into()))?
                .await
                .map_err(|e| BackendError::Refused(format!("the embedding thread failed: {e}")))?
                .map_err(BackendError::Refused)?
                .vector;
            let started = Instant::now();
            let index = self.semantic.index.clone();
            let probe = vector.clone();
            let scan = tokio::task::spawn_blocking(move || index.scan_blocking(&probe))
                .await
                .map_err(|e| BackendError::Refused(format!("the scan thread failed: {e}")))?;
            scanning.push(started.elapsed().as_secs_f64() * 1000.0);
            let query = Query {
                vector: vector.clone(),
                index: self.semantic.index.clone(),
                scan,
            };
            let conn = self.conn.lock().await;
            let request = crate::backend::search::SearchRequest::new("", k as u32);
            let near = nearest(&conn, &request, &query, k, None).await?;
            searching.push(started.elapsed().as_secs_f64() * 1000.0);
            let started = Instant::now();
            let rows = conn
                .query(
                    "SELECT n.rowid FROM memory_vectors v JOIN nodes n ON n.id = v.memory_id
                     WHERE n.label = 'Memory'
                     ORDER BY vector_distance_cos(v.embedding, ?1), n.rowid LIMIT ?2",
                    libsql::params![to_blob(&vector), k as i64],
                )
                .await
                .doing("scanning every vector")?;
            let best: std::collections::HashSet<i64> = all_rows(rows, "scanning every vector")
                .await?
                .iter()
                .map(|r| r.int(0))
                .collect();
            exact.push(started.elapsed().as_secs_f64() * 1000.0);
            wanted += best.len();
            found += near.iter().filter(|n| best.contains(&n.rid)).count();
        }
        Ok((found, wanted, [scanning, searching, exact]))
    }

    /// The vectors the in-memory copy holds and the bytes it takes (benchmark only).
    pub async fn vector_index_stats(&self) -> index::IndexStats {
        self.semantic.index.stats().await
    }

    /// Replaces the fusion's parameters (for tuning them on a benchmark).
    pub fn set_fusion_params(&self, params: crate::backend::search::fusion::Params) {
        if let Ok(mut p) = self.semantic.fusion.write() {
            *p = params;
        }
    }
}

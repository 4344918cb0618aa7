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

    /// Replaces the fusion's parameters (for tuning them on a benchmark).
    pub fn set_fusion_params(&self, params: crate::backend::search::fusion::Params) {
        if let Ok(mut p) = self.semantic.fusion.write() {
            *p = params;
        }
    }
}

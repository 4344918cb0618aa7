//! Closeness by meaning, for near-duplicates ([`crate::backend::near`]): the stored memories
//! whose vectors are nearest a new memory's, and the vectors of a page of hits, for recall to
//! fold the ones that say the same in other words.

use std::collections::HashMap;

use libsql::{Connection, Value};

use super::index::{from_blob, to_blob};
use crate::backend::TursoBackend;
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::search::{SearchRequest, embed};
use crate::backend::{all_rows, scalar_i64};
use crate::model::Memory;

/// Cosine from which two memories say the same thing in other words. Measured with
/// all-MiniLM-L6-v2 on pairs written for it: the same lesson in other words scored
/// 0.73–0.90, different lessons on one subject ("retry three times" against "never retry a
/// POST") at most 0.64.
pub const MEANING_THRESHOLD: f64 = 0.70;

/// Cosine from which recall folds two hits into one. Higher than [`MEANING_THRESHOLD`]: a
/// store's list is a hint, while a fold takes a memory out of the results. At 0.70, recall
/// folded LoCoMo turns that say nearly the same and lost evidence (conversations 0–4,
/// recall@5 hybrid 0.620 → 0.582, lexical 0.529 → 0.507); at 0.85 and 0.92 every figure is
/// the same as without folding by meaning.
pub const FOLD_THRESHOLD: f64 = 0.85;

/// A store looks for closeness by meaning while the database holds at most this many
/// vectors: the nearest search scans them all (their codes, about 0.2 ms per 10,000 on one
/// thread), and a store must stay fast at any size. Above it, only words are compared.
pub const MEANING_WINDOW: i64 = 100_000;

impl TursoBackend {
    /// The memories nearest `memory` (just stored) in meaning, at least
    /// [`MEANING_THRESHOLD`] similar, best first, without `memory` itself: `(id, title,
    /// cosine)`. Empty without a loaded model, or above [`MEANING_WINDOW`] vectors. The new
    /// memory's vector, made here, is stored as the background worker would store it (while
    /// its text is still the one embedded), so it is embedded once.
    pub(crate) async fn close_in_meaning(
        &self,
        memory: &Memory,
        most: usize,
    ) -> Result<Vec<(String, String, f64)>> {
        let text = embed::memory_text(&memory.title, memory.summary.as_deref(), &memory.content);
        // No scan on the embedding thread: most stores never search (above the window), and
        // the vector must be written first anyway.
        let Some(vector) = self.start_query_vector(&text, false) else {
            return Ok(Vec::new());
        };
        let query = vector
            .await
            .map_err(|e| BackendError::Refused(format!("the embedding thread failed: {e}")))?
            .map_err(BackendError::Refused)?;
        self.write("storing a vector", async |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO memory_vectors (memory_id, embedding)
                 SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM nodes WHERE id = ?1
                   AND json_extract(properties, '$.title') IS ?3
                   AND json_extract(properties, '$.content') IS ?4
                   AND json_extract(properties, '$.summary') IS ?5)",
                libsql::params![
                    memory.id.as_str(),
                    to_blob(&query.vector),
                    memory.title.as_str(),
                    memory.content.as_str(),
                    memory.summary.clone()
                ],
            )
            .await
            .doing("storing a vector")
        })
        .await?;
        let conn = self.conn.lock().await;
        let held = scalar_i64(
            &conn,
            "SELECT count(*) FROM memory_vectors",
            vec![],
            "counting vectors",
        )
        .await?;
        if held > MEANING_WINDOW {
            return Ok(Vec::new());
        }
        let near = super::nearest(
            &conn,
            &SearchRequest::new("", 1),
            &query,
            most + 1,
            Some(MEANING_THRESHOLD),
        )
        .await?;
        let mut out = Vec::new();
        for n in near {
            let row = crate::backend::first_row(
                &conn,
                "SELECT id, json_extract(properties, '$.title') FROM nodes WHERE rowid = ?1",
                libsql::params![n.rid],
                "reading a close memory",
            )
            .await?;
            if let Some(row) = row.filter(|r| r.str(0) != memory.id) {
                out.push((row.text(0), row.text(1), n.similarity));
            }
        }
        out.truncate(most);
        Ok(out)
    }
}

/// The stored vectors of these memories (those that have one).
pub async fn vectors_of(conn: &Connection, ids: &[&str]) -> Result<HashMap<String, Vec<f32>>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let marks = (1..=ids.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let params: Vec<Value> = ids.iter().map(|id| Value::from(id.to_string())).collect();
    let rows = conn
        .query(
            &format!(
                "SELECT memory_id, embedding FROM memory_vectors WHERE memory_id IN ({marks})"
            ),
            params,
        )
        .await
        .doing("reading vectors")?;
    for row in all_rows(rows, "reading vectors").await? {
        if let Some(v) = from_blob(row.value(1)) {
            out.insert(row.text(0), v);
        }
    }
    Ok(out)
}

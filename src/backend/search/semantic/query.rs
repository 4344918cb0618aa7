//! A query's side of semantic search: its vector (embedded on a blocking thread, cached),
//! and the nearest memories, their similarities and how many pass a floor, through the
//! in-memory copy of the vectors.

use libsql::Connection;

use super::*;
use crate::backend::TursoBackend;
use crate::backend::error::Result;
use crate::backend::search::Total;

impl TursoBackend {
    /// Starts embedding the query on a blocking thread (so the lexical half of a search runs
    /// meanwhile), when semantic recall is on; with `scan`, the same thread then scans the
    /// in-memory copy of the vectors for its candidates.
    pub(crate) fn start_query_vector(&self, text: &str, scan: bool) -> Option<QueryVector> {
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
            let vector = match cached {
                Some(vector) => vector,
                None => {
                    let vector = embedder.embed(&[text.as_str()])?.pop().unwrap_or_default();
                    if let Ok(mut cache) = queries.lock() {
                        if cache.len() >= QUERY_CACHE {
                            cache.clear();
                        }
                        cache.insert(text, vector.clone());
                    }
                    vector
                }
            };
            // Here, not under the connection: the search takes it only to check candidates.
            let scan = if scan {
                index.scan_blocking(&vector)
            } else {
                None
            };
            Ok(Query {
                vector,
                index,
                scan,
            })
        }))
    }
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
        .nearest(conn, req, &query.vector, query.scan.as_ref(), k, floor)
        .await
}

/// The exact cosine of each of `rids` that has a vector and passes the request's filters.
pub async fn similarities(
    conn: &Connection,
    req: &SearchRequest,
    query: &Query,
    rids: &[i64],
) -> Result<std::collections::HashMap<i64, f64>> {
    Ok(nearest::check(conn, req, &query.vector, rids, None)
        .await?
        .into_iter()
        .map(|(rid, _, similarity)| (rid, similarity))
        .collect())
}

/// The memories whose vectors are nearest the query's and at least `floor` similar (as
/// [`nearest`]), at most `k`, with how many memories passing the filters are: exactly, or at
/// least (with filters, when vectors the scan did not pick could still count).
pub async fn nearest_counted(
    conn: &Connection,
    req: &SearchRequest,
    query: &Query,
    k: usize,
    floor: f64,
) -> Result<(Vec<Near>, Total)> {
    debug_assert_eq!(query.vector.len(), DIMENSIONS);
    query
        .index
        .nearest_counted(conn, req, &query.vector, query.scan.as_ref(), k, floor)
        .await
}

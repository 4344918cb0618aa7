//! Document frequencies for BM25's IDFs, cached with the database's change count.
//!
//! A word's frequency is counted exactly up to [`DOCS_COUNTED`] memories. Past that, walking
//! its whole document list costs more than the search (28–47 ms for a word in most of a
//! million memories), and a frequency that large only needs to be close: it is estimated
//! from [`WINDOWS`] stretches of rowids spread evenly over the index, a sixteenth of it in
//! all, as matches per indexed memory in them times the memories indexed (≈5 ms at a
//! million). The test below finds such an IDF within 0.006 of the exact one, for a word
//! spread through the memories and for one only in the oldest; a query that uses one has
//! more than 1,000 matches, so it is ranked over candidates anyway.

use std::collections::HashMap;

use libsql::{Connection, Value};

use crate::backend::error::Result;
use crate::backend::{TursoBackend, first_row, scalar_i64};

/// Memories counted for a word before its frequency is estimated instead.
const DOCS_COUNTED: i64 = 10_000;
/// Stretches of rowids an estimate reads, each 1/512 of the rowids.
const WINDOWS: i64 = 32;
const WINDOW_SHARE: i64 = 512;
/// Document frequencies remembered (the cache is cleared when it outgrows this).
const CACHED_PHRASES: usize = 10_000;

/// Document frequencies and the table's row count, remembered with the database's change
/// count (`memorygraph_meta.changes`, raised by triggers on every write by any writer).
/// A value is reused exactly while nothing changed, and for ranking also while the number
/// of changes since is at most 1 % of it: each change moves a frequency by at most one, so
/// the IDF moves by at most ≈1 %.
#[derive(Default)]
pub struct Frequencies {
    rows: Option<(i64, i64)>,
    docs: HashMap<String, Counted>,
}

/// A document frequency and the change count it was read at.
#[derive(Debug, Clone, Copy)]
struct Counted {
    docs: i64,
    at: i64,
    /// Counted, not estimated.
    exact: bool,
}

fn usable(value: i64, at: i64, now: i64) -> bool {
    (now - at).abs() <= value / 100
}

/// The database's change count, or -1 on a file without one (every cache entry then
/// matches only itself).
pub(super) async fn generation(conn: &Connection) -> Result<i64> {
    scalar_i64(
        conn,
        "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM memorygraph_meta WHERE key = 'changes'), -1)",
        vec![],
        "reading the change count",
    )
    .await
}

impl TursoBackend {
    /// Rows in the full-text index.
    pub(super) async fn indexed_rows(&self, conn: &Connection, now: i64) -> Result<i64> {
        if let Some((value, at)) = self.frequencies.lock().unwrap().rows
            && usable(value, at, now)
        {
            return Ok(value);
        }
        let value = scalar_i64(
            conn,
            "SELECT count(*) FROM memory_fts_docsize",
            vec![],
            "counting indexed memories",
        )
        .await?;
        self.frequencies.lock().unwrap().rows = Some((value, now));
        Ok(value)
    }

    /// How many memories contained `phrase` at change count `now`, if they were counted
    /// (not estimated) then.
    pub(super) fn phrase_docs_counted_at(&self, phrase: &str, now: i64) -> Option<i64> {
        match self.frequencies.lock().unwrap().docs.get(phrase) {
            Some(c) if c.exact && c.at == now && now >= 0 => Some(c.docs),
            _ => None,
        }
    }

    /// How many of the `rows` indexed memories contain `phrase` (an FTS5 phrase expression),
    /// for its IDF: a count made within 1 % of changes will do, and past [`DOCS_COUNTED`]
    /// an estimate.
    pub(super) async fn phrase_docs(
        &self,
        conn: &Connection,
        phrase: &str,
        now: i64,
        rows: i64,
    ) -> Result<i64> {
        if let Some(c) = self.frequencies.lock().unwrap().docs.get(phrase)
            && (c.at == now || usable(c.docs, c.at, now))
        {
            return Ok(c.docs);
        }
        let (docs, exact) = docs_of(conn, phrase, rows).await?;
        let mut cache = self.frequencies.lock().unwrap();
        if cache.docs.len() >= CACHED_PHRASES {
            cache.docs.clear();
        }
        cache.docs.insert(
            phrase.to_string(),
            Counted {
                docs,
                at: now,
                exact,
            },
        );
        Ok(docs)
    }
}

/// The number of memories matching `phrase` of the `rows` indexed, and whether it was
/// counted (true) or estimated.
async fn docs_of(conn: &Connection, phrase: &str, rows: i64) -> Result<(i64, bool)> {
    let counted = scalar_i64(
        conn,
        &format!(
            "SELECT count(*) FROM (SELECT 1 FROM memory_fts WHERE memory_fts MATCH ?1 LIMIT {})",
            DOCS_COUNTED + 1
        ),
        vec![Value::from(phrase.to_string())],
        "counting a search word's memories",
    )
    .await?;
    if counted <= DOCS_COUNTED {
        return Ok((counted, true));
    }
    Ok((
        estimated_docs(conn, phrase, rows).await?.max(counted),
        false,
    ))
}

/// A frequency estimated from [`WINDOWS`] evenly spread stretches of rowids: the share of
/// the memories indexed in them that match, times all the memories indexed.
async fn estimated_docs(conn: &Connection, phrase: &str, rows: i64) -> Result<i64> {
    let Some(index) = first_row(
        conn,
        // Apart, each is one seek; together SQLite walks the whole table (47 ms at a million).
        "SELECT (SELECT min(id) FROM memory_fts_docsize), (SELECT max(id) FROM memory_fts_docsize)",
        (),
        "reading the index's rowids",
    )
    .await?
    else {
        return Ok(0);
    };
    let (first, last) = (index.int(0), index.int(1));
    let span = last - first + 1;
    let width = (span / WINDOW_SHARE).max(1);
    let (mut matches, mut indexed) = (Vec::new(), Vec::new());
    for w in 0..WINDOWS {
        let start = first + span * w / WINDOWS;
        let end = start + width - 1;
        matches.push(format!(
            "(SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?1 AND rowid BETWEEN {start} AND {end})"
        ));
        indexed.push(format!(
            "(SELECT count(*) FROM memory_fts_docsize WHERE id BETWEEN {start} AND {end})"
        ));
    }
    let sql = format!("SELECT {}, {}", matches.join(" + "), indexed.join(" + "));
    let Some(sample) = first_row(
        conn,
        &sql,
        vec![Value::from(phrase.to_string())],
        "estimating a search word's memories",
    )
    .await?
    else {
        return Ok(rows);
    };
    let (hit, seen) = (sample.int(0), sample.int(1));
    if seen == 0 {
        return Ok(rows);
    }
    Ok((hit as f64 / seen as f64 * rows as f64).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::search::lexical::bm25::idf;

    /// 40,000 memories with every seventh deleted (gaps in the rowids): a word in every
    /// third, one in every memory, one only in the oldest 15,000, one in 60.
    async fn index() -> (libsql::Database, Connection) {
        let (db, conn) = crate::backend::schema::test_database().await;
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
             INSERT INTO nodes (id, label, properties)
             SELECT 'm' || i, 'Memory', json_object('title', 'entry', 'content',
                    'harbor' || CASE WHEN i % 3 = 0 THEN ' tide' ELSE '' END
                             || CASE WHEN i <= 15000 THEN ' era' ELSE '' END
                             || CASE WHEN i % 661 = 0 THEN ' quokka' ELSE '' END)
             FROM n;
             DELETE FROM nodes WHERE rowid % 7 = 0;",
        )
        .await
        .unwrap();
        (db, conn)
    }

    async fn exact(conn: &Connection, phrase: &str) -> i64 {
        scalar_i64(
            conn,
            "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?1",
            vec![Value::from(phrase.to_string())],
            "counting",
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn frequencies_are_counted_up_to_ten_thousand_and_estimated_closely_past_it() {
        let (_db, conn) = index().await;
        let rows = scalar_i64(&conn, "SELECT count(*) FROM memory_fts_docsize", vec![], "")
            .await
            .unwrap();
        assert_eq!(
            docs_of(&conn, "quokka", rows).await.unwrap(),
            (exact(&conn, "quokka").await, true)
        );
        for (word, within) in [("tide", 0.03), ("harbor", 0.0), ("era", 0.06)] {
            let truth = exact(&conn, word).await;
            assert!(truth > DOCS_COUNTED, "{word}: {truth}");
            let (estimate, counted) = docs_of(&conn, word, rows).await.unwrap();
            assert!(!counted, "{word}");
            let off = (estimate - truth).abs() as f64 / truth as f64;
            assert!(off <= within, "{word}: {estimate} for {truth}");
            let idf_off = (idf(rows, estimate) - idf(rows, truth)).abs();
            assert!(idf_off <= 0.06, "{word}: IDF off by {idf_off}");
        }
    }
}

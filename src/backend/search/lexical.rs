//! Lexical ranking that stays fast at any size.
//!
//! BM25 has to score every match to find the best ten, and FTS5 has no early termination:
//! at 100,000 memories a word found in 80,000 of them cost ≈130 ms. Here a query is first
//! scored over its newest [`EXACT_LIMIT`] + 1 matches (one statement, scores computed by
//! [`super::bm25`]'s `mg_bm25` with cached IDFs). When that is all of them — every query
//! but those matching thousands of memories — the ranking is exact, the same BM25 as
//! before. When it is not, the ranking is made over candidates chosen by where the best
//! scores can be, and the rest of the matches follow newest first:
//!
//! - every memory containing one of the query's rare phrases (found in at most
//!   [`RARE_DOCS`] memories), since a rare phrase's IDF dominates the score;
//! - the newest [`STRONG_CANDIDATES`] memories with a common phrase in their title, summary
//!   or tags (weights 10 and 4 against content's 1);
//! - the newest [`EXACT_LIMIT`] matches, and, when memories matching every phrase go first,
//!   the newest [`EXACT_LIMIT`] of those.
//!
//! `total` stays exact: it is the number of scored rows when the ranking is exact, the
//! phrase's cached document frequency for a single phrase without filters, and otherwise
//! a count over the index.

use std::collections::{HashMap, HashSet};

use libsql::{Connection, Value};

use super::bm25;
use super::filters::filter_sql;
use super::fts_query::{self, Term};
use super::{BM25_WEIGHTS, SearchRequest, Tolerance, matches_of};
use crate::backend::error::{DbContext, Result};
use crate::backend::{TursoBackend, all_rows, scalar_i64};

/// Matches ranked exactly (all of them scored) when there are at most this many.
pub const EXACT_LIMIT: usize = 2000;
/// A phrase found in at most this many memories is rare: all its memories are candidates.
const RARE_DOCS: i64 = 2000;
/// Candidates taken from title, summary and tag matches of common phrases.
const STRONG_CANDIDATES: usize = 1000;
/// Most memories taken for rare phrases (32 rare phrases could otherwise mean 64,000).
const RARE_CANDIDATES: usize = 8000;
/// Document frequencies remembered (the cache is cleared when it outgrows this).
const CACHED_PHRASES: usize = 10_000;

/// One scored match.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub rid: i64,
    /// BM25, larger is better.
    pub relevance: f64,
    /// Whether it contains every phrase of the query.
    pub complete: bool,
}

/// A query's matches, best first.
#[derive(Debug)]
pub struct Ranking {
    pub ranked: Vec<Scored>,
    /// Every match of the request, across all pages.
    pub total: i64,
    /// Whether `ranked` holds every match. Otherwise the other matches follow newest first
    /// ([`rest`]).
    pub all: bool,
    scoring: Scoring,
    /// What scores are multiplied by (a single phrase's IDF, applied afterwards).
    scale: f64,
}

/// Document frequencies and the table's row count, remembered with the database's change
/// count (`memorygraph_meta.changes`, raised by triggers on every write by any writer).
/// A value is reused exactly while nothing changed, and for ranking also while the number
/// of changes since is at most 1 % of it: each change moves a frequency by at most one, so
/// the IDF moves by at most ≈1 %.
#[derive(Default)]
pub struct Frequencies {
    rows: Option<(i64, i64)>,
    docs: HashMap<String, (i64, i64)>,
}

fn usable(value: i64, at: i64, now: i64) -> bool {
    (now - at).abs() <= value / 100
}

/// The database's change count, or -1 on a file without one (every cache entry then
/// matches only itself).
async fn generation(conn: &Connection) -> Result<i64> {
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
    async fn indexed_rows(&self, conn: &Connection, now: i64) -> Result<i64> {
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

    /// How many memories contain `phrase` (an FTS5 phrase expression). `exact`: only a
    /// count made at this very change count will do.
    async fn phrase_docs(
        &self,
        conn: &Connection,
        phrase: &str,
        now: i64,
        exact: bool,
    ) -> Result<i64> {
        if let Some(&(value, at)) = self.frequencies.lock().unwrap().docs.get(phrase)
            && (at == now || (!exact && usable(value, at, now)))
        {
            return Ok(value);
        }
        let value = scalar_i64(
            conn,
            "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?1",
            vec![Value::from(phrase.to_string())],
            "counting a search word's memories",
        )
        .await?;
        let mut cache = self.frequencies.lock().unwrap();
        if cache.docs.len() >= CACHED_PHRASES {
            cache.docs.clear();
        }
        cache.docs.insert(phrase.to_string(), (value, now));
        Ok(value)
    }
}

/// Ranks the matches of `expression` (whose phrases are `terms`, in order) for `req`.
/// `complete_first`: memories containing every phrase come first.
pub async fn rank(
    backend: &TursoBackend,
    conn: &Connection,
    req: &SearchRequest,
    terms: &[Term],
    expression: &str,
    complete_first: bool,
) -> Result<Ranking> {
    let prefix = req.tolerance == Tolerance::Fuzzy;
    let phrases: Vec<String> = terms
        .iter()
        .map(|t| fts_query::any_of(std::slice::from_ref(t), prefix))
        .collect();
    let n = phrases.len();
    let now = generation(conn).await?;
    let rows = backend.indexed_rows(conn, now).await?;
    // One phrase: its IDF scales every score alike, so it is applied afterwards, once the
    // frequency is known (often for free: the number of matches).
    let mut docs = Vec::with_capacity(n);
    if n > 1 {
        for p in &phrases {
            docs.push(backend.phrase_docs(conn, p, now, false).await?);
        }
    }
    let idf: Vec<f64> = if n > 1 {
        docs.iter().map(|&d| bm25::idf(rows, d)).collect()
    } else {
        vec![1.0; n]
    };
    let scoring = Scoring::new(n, &idf);
    let mut params = vec![Value::from(expression.to_string())];
    let filters = filter_sql(req, &mut params);
    let newest = scoring
        .newest(conn, &filters, &params, EXACT_LIMIT + 1)
        .await?;
    let (mut ranked, total, all) = if newest.len() <= EXACT_LIMIT {
        let total = newest.len() as i64;
        (newest, total, true)
    } else {
        let total = if n == 1 && filters.is_empty() {
            backend.phrase_docs(conn, &phrases[0], now, true).await?
        } else {
            super::count_matches(conn, req, expression).await?
        };
        let mut candidates: HashMap<i64, Scored> = newest.into_iter().map(|s| (s.rid, s)).collect();
        let mut more = |found: Vec<Scored>| {
            for s in found {
                candidates.entry(s.rid).or_insert(s);
            }
        };
        let (rare, common): (Vec<usize>, Vec<usize>) = if n == 1 {
            (Vec::new(), vec![0])
        } else {
            (0..n).partition(|&i| docs[i] <= RARE_DOCS)
        };
        let join = |which: &[usize], op: &str| {
            which
                .iter()
                .map(|&i| phrases[i].as_str())
                .collect::<Vec<_>>()
                .join(op)
        };
        if !rare.is_empty() {
            let narrowed = format!("({expression}) AND ({})", join(&rare, " OR "));
            more(
                scoring
                    .newest(
                        conn,
                        &filters,
                        &with_expression(&params, narrowed),
                        RARE_CANDIDATES,
                    )
                    .await?,
            );
        }
        if !common.is_empty() {
            let narrowed = format!(
                "({expression}) AND ({{title summary tags}}: ({}))",
                join(&common, " OR ")
            );
            more(
                scoring
                    .newest(
                        conn,
                        &filters,
                        &with_expression(&params, narrowed),
                        STRONG_CANDIDATES,
                    )
                    .await?,
            );
        }
        if complete_first {
            let every = fts_query::all_of(terms, prefix);
            more(
                scoring
                    .newest(
                        conn,
                        &filters,
                        &with_expression(&params, every),
                        EXACT_LIMIT,
                    )
                    .await?,
            );
        }
        (candidates.into_values().collect(), total, false)
    };
    let mut scale = 1.0;
    if n == 1 {
        let docs = if all && filters.is_empty() {
            total
        } else {
            backend.phrase_docs(conn, &phrases[0], now, false).await?
        };
        scale = bm25::idf(rows, docs);
        for s in &mut ranked {
            s.relevance *= scale;
        }
    }
    ranked.sort_by(|a, b| {
        let group = |s: &Scored| complete_first && s.complete;
        group(b)
            .cmp(&group(a))
            .then(b.relevance.total_cmp(&a.relevance))
            .then(a.rid.cmp(&b.rid))
    });
    Ok(Ranking {
        ranked,
        total,
        all,
        scoring,
        scale,
    })
}

fn with_expression(params: &[Value], expression: String) -> Vec<Value> {
    let mut p = params.to_vec();
    p[0] = Value::from(expression);
    p
}

/// The scoring part of a statement: `mg_bm25` and `mg_matched` over the first `n` phrases.
#[derive(Debug)]
struct Scoring {
    select: String,
    /// Phrases scored: a match containing all of them is complete.
    n: i64,
}

impl Scoring {
    fn new(n: usize, idf: &[f64]) -> Self {
        let idf: String = idf.iter().map(|v| format!(", {v:?}")).collect();
        Scoring {
            select: format!(
                "SELECT memory_fts.rowid, mg_bm25(memory_fts, {n}, {BM25_WEIGHTS}{idf}), mg_matched(memory_fts, {n})"
            ),
            n: n as i64,
        }
    }

    /// The newest `limit` matches of `params[0]` that pass `filters`, scored.
    async fn newest(
        &self,
        conn: &Connection,
        filters: &str,
        params: &[Value],
        limit: usize,
    ) -> Result<Vec<Scored>> {
        let sql = format!(
            "{} FROM {} ORDER BY memory_fts.rowid DESC LIMIT {limit}",
            self.select,
            matches_of(filters, false)
        );
        self.read(conn, &sql, params.to_vec()).await
    }

    async fn read(&self, conn: &Connection, sql: &str, params: Vec<Value>) -> Result<Vec<Scored>> {
        let rows = conn.query(sql, params).await.doing("ranking matches")?;
        let records = all_rows(rows, "ranking matches").await?;
        Ok(records
            .into_iter()
            .map(|r| Scored {
                rid: r.int(0),
                relevance: r.real(1).unwrap_or(0.0),
                complete: r.int(2) >= self.n,
            })
            .collect())
    }
}

/// The matches after a capped ranking's candidates (and `taken`), newest first: `limit` of
/// them after skipping `skip`, scored like the candidates.
pub async fn rest(
    conn: &Connection,
    req: &SearchRequest,
    expression: &str,
    ranking: &Ranking,
    taken: &HashSet<i64>,
    skip: usize,
    limit: usize,
) -> Result<Vec<Scored>> {
    let mut params = vec![Value::from(expression.to_string())];
    let filters = filter_sql(req, &mut params);
    let taken = ranking
        .ranked
        .iter()
        .map(|c| c.rid)
        .chain(taken.iter().copied())
        .map(|rid| rid.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "{} FROM {} AND memory_fts.rowid NOT IN ({taken})
         ORDER BY memory_fts.rowid DESC LIMIT {limit} OFFSET {skip}",
        ranking.scoring.select,
        matches_of(&filters, false)
    );
    let mut found = ranking.scoring.read(conn, &sql, params).await?;
    for s in &mut found {
        s.relevance *= ranking.scale;
    }
    Ok(found)
}

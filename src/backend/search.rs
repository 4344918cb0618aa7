//! Finding memories: ranked full-text search (BM25 over title, summary, tags, content)
//! combined with filters, all in one SQL statement, with stable pages.

use libsql::Value;
use serde::Serialize;

use super::error::{DbContext, Result};
use super::fts_query::{self, Term};
use super::memories::decode;
use super::{TursoBackend, all_rows, scalar_i64};
use crate::model::{Memory, MemoryType, RelationshipType};

/// BM25 column weights: title, summary, tags, content. A word in the title says more about
/// what a memory is than the same word deep in its content.
const BM25_WEIGHTS: &str = "10.0, 4.0, 4.0, 1.0";

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
    /// Whole words only (after stemming).
    Strict,
    /// Whole words after stemming.
    Normal,
    /// Words also match as prefixes ("auth" finds "authentication").
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
    pub project_path: Option<String>,
    pub min_importance: Option<f64>,
    /// Only memories with a current relationship of one of these types.
    pub relationship_types: Vec<RelationshipType>,
    /// Restricts the search to these memory ids.
    pub within: Option<Vec<String>>,
    /// Pieces of a query that holds no indexable word (emoji, symbols): matched as
    /// substrings of title, summary, tags and content instead, every piece required.
    pub literal: Vec<String>,
    pub limit: u32,
    pub offset: u32,
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
            project_path: None,
            min_importance: None,
            relationship_types: Vec::new(),
            within: None,
            limit,
            offset: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SearchHit {
    pub memory: Memory,
    /// Text relevance (BM25, larger is better); absent for filter-only listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relevance: Option<f64>,
    /// A short excerpt around the matched words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
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
}

impl TursoBackend {
    /// Runs a search: ranked by relevance when there are terms, otherwise a filtered
    /// listing by importance and recency (MemoryGraph's order).
    pub async fn search(&self, req: &SearchRequest) -> Result<SearchPage> {
        let conn = self.conn.lock().await;
        let tx = conn.transaction().await.doing("starting a search")?;
        let (total, rows) = if req.terms.is_empty() {
            let mut params = Vec::new();
            let filters = filter_sql(req, &mut params);
            let total = scalar_i64(
                &tx,
                &format!("SELECT count(*) FROM nodes n WHERE n.label = 'Memory'{filters}"),
                params.clone(),
                "counting memories",
            )
            .await?;
            let sql = format!(
                "SELECT n.id, n.properties, NULL, NULL FROM nodes n WHERE n.label = 'Memory'{filters}
                 ORDER BY coalesce(json_extract(n.properties, '$.importance'), 0.5) DESC,
                          json_extract(n.properties, '$.created_at') DESC, n.id
                 LIMIT {} OFFSET {}",
                req.limit, req.offset
            );
            (
                total,
                tx.query(&sql, params).await.doing("listing memories")?,
            )
        } else {
            let prefix = req.tolerance == Tolerance::Fuzzy;
            let (matching, first) = match req.match_mode {
                Some(MatchMode::All) => (fts_query::all_of(&req.terms, prefix), None),
                Some(MatchMode::Any) => (fts_query::any_of(&req.terms, prefix), None),
                None if req.terms.len() == 1 => (fts_query::any_of(&req.terms, prefix), None),
                None => (
                    fts_query::any_of(&req.terms, prefix),
                    Some(fts_query::all_of(&req.terms, prefix)),
                ),
            };
            let mut params = vec![Value::from(matching.clone())];
            let filters = filter_sql(req, &mut params);
            let total = scalar_i64(
                &tx,
                &format!(
                    "SELECT count(*) FROM memory_fts JOIN nodes n ON n.rowid = memory_fts.rowid
                     WHERE memory_fts MATCH ?1 AND n.label = 'Memory'{filters}"
                ),
                params,
                "counting search results",
            )
            .await?;
            let mut params = vec![Value::from(matching)];
            let full_match_first = match first {
                Some(all) => {
                    params.push(Value::from(all));
                    "n.rowid IN (SELECT rowid FROM memory_fts WHERE memory_fts MATCH ?2) DESC,"
                }
                None => "",
            };
            let filters = filter_sql(req, &mut params);
            let sql = format!(
                "SELECT n.id, n.properties, bm25(memory_fts, {BM25_WEIGHTS}) AS score,
                        snippet(memory_fts, -1, '', '', '…', 16)
                 FROM memory_fts JOIN nodes n ON n.rowid = memory_fts.rowid
                 WHERE memory_fts MATCH ?1 AND n.label = 'Memory'{filters}
                 ORDER BY {full_match_first} score, n.id
                 LIMIT {} OFFSET {}",
                req.limit, req.offset
            );
            (
                total,
                tx.query(&sql, params).await.doing("searching memories")?,
            )
        };
        let mut hits = Vec::new();
        for row in all_rows(rows, "reading search results").await? {
            let relevance = row.real(2).map(|score| -score);
            hits.push(SearchHit {
                memory: decode(&row.text(0), &row.text(1))?,
                relevance,
                snippet: row.opt_text(3),
            });
        }
        tx.commit().await.doing("finishing a search")?;
        let total = total.max(0) as u64;
        let end = u64::from(req.offset) + hits.len() as u64;
        let has_more = end < total;
        Ok(SearchPage {
            hits,
            total,
            offset: req.offset,
            limit: req.limit,
            has_more,
            next_offset: has_more.then_some(end as u32),
        })
    }
}

/// The SQL conditions for a request's filters, each starting with ` AND `; their values are
/// appended to `params` and numbered after the ones already there.
fn filter_sql(req: &SearchRequest, params: &mut Vec<Value>) -> String {
    let mut sql = String::new();
    let placeholders = |values: Vec<String>, params: &mut Vec<Value>| {
        values
            .into_iter()
            .map(|v| {
                params.push(v.into());
                format!("?{}", params.len())
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !req.memory_types.is_empty() {
        let list = placeholders(
            req.memory_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            params,
        );
        sql.push_str(&format!(
            " AND json_extract(n.properties, '$.type') IN ({list})"
        ));
    }
    if !req.tags.is_empty() {
        let list = placeholders(req.tags.clone(), params);
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM json_each(n.properties, '$.tags') t WHERE lower(trim(t.value)) IN ({list}))"
        ));
    }
    if let Some(project) = &req.project_path {
        let p = placeholders(vec![project.clone()], params);
        sql.push_str(&format!(
            " AND json_extract(n.properties, '$.context_project_path') = {p}"
        ));
    }
    if let Some(min) = req.min_importance {
        params.push(min.into());
        sql.push_str(&format!(
            " AND coalesce(json_extract(n.properties, '$.importance'), 0.5) >= ?{}",
            params.len()
        ));
    }
    if !req.relationship_types.is_empty() {
        let list = placeholders(
            req.relationship_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            params,
        );
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM relationships r WHERE (r.from_id = n.id OR r.to_id = n.id)
                 AND r.valid_until IS NULL AND r.rel_type IN ({list}))"
        ));
    }
    for piece in &req.literal {
        params.push(piece.to_lowercase().into());
        sql.push_str(&format!(
            " AND instr(lower(coalesce(json_extract(n.properties, '$.title'), '') || ' ' ||
                              coalesce(json_extract(n.properties, '$.summary'), '') || ' ' ||
                              coalesce(json_extract(n.properties, '$.tags'), '') || ' ' ||
                              coalesce(json_extract(n.properties, '$.content'), '')), ?{}) > 0",
            params.len()
        ));
    }
    if let Some(ids) = &req.within {
        if ids.is_empty() {
            sql.push_str(" AND 0");
        } else {
            let list = placeholders(ids.clone(), params);
            sql.push_str(&format!(" AND n.id IN ({list})"));
        }
    }
    sql
}

impl TursoBackend {
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

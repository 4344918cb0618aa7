//! Lexical search and listing: a page of memories by relevance (BM25) or by time, with the
//! count of matches.

use libsql::{Connection, Value};

use super::hits::{blend, details, facts_of, order};
use super::lexical::fts_query::Term;
use super::*;
use crate::backend::error::{DbContext, Result};
use crate::backend::rows::decode;
use crate::backend::{Record, TursoBackend, all_rows, scalar_i64};

/// A filter-only listing, by importance then recency.
pub(super) async fn list(conn: &Connection, req: &SearchRequest) -> Result<SearchPage> {
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
    let elsewhere = match req.project.as_ref().filter(|f| !f.only) {
        Some(focus) => {
            params.push(focus.path.clone().into());
            format!("NOT {}, ", projects::belongs_sql(params.len()))
        }
        None => String::new(),
    };
    let sql = format!(
        "SELECT n.id, n.properties, NULL, NULL, {superseded} AS superseded_by
         FROM nodes n WHERE n.label = 'Memory'{filters}
         ORDER BY {elsewhere}{superseded} IS NOT NULL,
                  coalesce(json_extract(n.properties, '$.importance'), 0.5) DESC,
                  json_extract(n.properties, '$.created_at') DESC, n.id
         LIMIT {} OFFSET {}",
        req.limit, req.offset
    );
    let rows = conn.query(&sql, params).await.doing("listing memories")?;
    let hits = hits_from(all_rows(rows, "listing memories").await?, false)?;
    Ok(SearchPage::new(
        hits,
        Total::exact(total),
        req,
        Checked::default(),
    ))
}

/// The match expressions for a request: the one that selects, and, when memories
/// matching every term go first, the one that says which do.
pub(super) fn match_expressions(req: &SearchRequest, terms: &[Term]) -> (String, Option<String>) {
    let prefix = req.tolerance == Tolerance::Fuzzy;
    match req.match_mode {
        Some(MatchMode::All) => (lexical::fts_query::all_of(terms, prefix), None),
        Some(MatchMode::Any) => (lexical::fts_query::any_of(terms, prefix), None),
        None if terms.len() == 1 => (lexical::fts_query::any_of(terms, prefix), None),
        None => (
            lexical::fts_query::any_of(terms, prefix),
            Some(lexical::fts_query::all_of(terms, prefix)),
        ),
    }
}

/// The number of matches of `matching` that pass the request's filters, counted up to
/// `up_to`: past it, `up_to` as a lower bound. Counting every match of common words walks
/// every document list of the query (≈135 ms for four words at a million memories), where
/// stopping at 10,000 costs ≈1 ms.
pub(super) async fn count_matches(
    conn: &Connection,
    req: &SearchRequest,
    matching: &str,
    up_to: i64,
) -> Result<Total> {
    let mut params = vec![Value::from(matching.to_string())];
    let filters = filter_sql(req, &mut params);
    let counted = scalar_i64(
        conn,
        &format!(
            "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {})",
            matches_of(req, &filters),
            up_to.saturating_add(1)
        ),
        params,
        "counting search results",
    )
    .await?;
    Ok(if counted > up_to {
        Total::at_least(up_to)
    } else {
        Total::exact(counted)
    })
}

/// The FROM and WHERE of the matches of `?1` that pass `filters`. Every indexed row is a
/// memory, so without filters the index alone answers. Filters on indexed fields (type,
/// project, ids) become the set of memories passing them, read from their indexes once;
/// joining each match to its row instead would parse every match's JSON (≈0.5 s for a
/// word in 80,000 of 100,000 memories), and SQLite would otherwise run the full-text
/// query once per memory of that set. Other filters are checked on each match's row.
pub(super) fn matches_of(req: &SearchRequest, filters: &str) -> String {
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
pub(super) async fn ranked(
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
    ranking.ranked =
        projects::favour(conn, req.project.as_ref(), ranking.ranked, |s| s.rid).await?;
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
pub(super) fn lexical_hit(s: &lexical::Scored, score: f64) -> fusion::Fused {
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
pub(super) async fn lexical_after(
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
pub(super) async fn blended(
    backend: &TursoBackend,
    conn: &Connection,
    req: &SearchRequest,
    terms: &[Term],
    checked: Checked,
) -> Result<SearchPage> {
    let prefix = req.tolerance == Tolerance::Fuzzy;
    let matching = lexical::fts_query::any_of(terms, prefix);
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
    let top = order(conn, top, &facts, req).await?;
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
pub(super) fn hits_from(records: Vec<Record>, ranked: bool) -> Result<Vec<SearchHit>> {
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
                folded: Vec::new(),
            })
        })
        .collect()
}

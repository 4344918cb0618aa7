//! Semantic and hybrid search: the memories nearest in meaning, and lexical and semantic
//! candidates fused.

use libsql::{Connection, Value};

use super::hits::{blend, details, facts_of, order};
use super::lexical::fts_query::Term;
use super::listing::{lexical_after, lexical_hit};
use super::*;
use crate::backend::error::{BackendError, Result};
use crate::backend::{TursoBackend, scalar_i64};

/// Semantic mode: the memories at least [`SEMANTIC_FLOOR`] similar, nearest first, up to
/// the [`semantic::MAX_NEAREST`] nearest; `total` counts exactly those, so pages walk them
/// all. With filters that most of the nearest vectors fail, the count may only be a lower
/// bound, never below what the pages hold: one more than the page is looked for, so a
/// full page knows whether another follows.
pub(super) async fn semantic(
    conn: &Connection,
    req: &SearchRequest,
    vector: &semantic::Query,
) -> Result<SearchPage> {
    let end = (req.offset as usize + req.limit as usize).min(semantic::MAX_NEAREST);
    let probe = (end + 1).min(semantic::MAX_NEAREST);
    let (mut near, counted) =
        semantic::nearest_counted(conn, req, vector, probe, SEMANTIC_FLOOR).await?;
    let most = semantic::MAX_NEAREST as i64;
    let count = counted.count.max(near.len() as i64).min(most);
    let total = if counted.exact || count == most {
        Total::exact(count)
    } else if near.len() < probe {
        // With filters the search checks every candidate that can reach the floor, so
        // finding fewer than it looked for is finding them all.
        Total::exact(near.len() as i64)
    } else {
        Total::at_least(count)
    };
    near.truncate(end);
    let near = projects::favour(conn, req.project.as_ref(), near, |n| n.rid).await?;
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

/// Hybrid: lexical and semantic candidates fused ([`fusion`]); for recall, re-ranked with
/// importance and recency as lexical recall is. An old version comes right after the
/// memory that replaced it. Pages past the fused candidates go on with the remaining
/// lexical matches by relevance.
pub(super) async fn fused(
    backend: &TursoBackend,
    conn: &Connection,
    req: &SearchRequest,
    terms: &[Term],
    checked: Checked,
    vector: semantic::QueryVector,
    recall: bool,
) -> Result<SearchPage> {
    let params = &backend.fusion_params();
    let prefix = req.tolerance == Tolerance::Fuzzy;
    let matching = (!terms.is_empty()).then(|| lexical::fts_query::any_of(terms, prefix));
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
    let lexical_total = ranking.as_ref().map_or(Total::exact(0), |r| r.total);
    let vector = vector_of(vector).await?;
    let near: Vec<(i64, f64)> =
        semantic::nearest(conn, req, &vector, params.semantic_candidates, None)
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
        let similar = semantic::similarities(conn, req, &vector, &beyond).await?;
        for l in &mut lexical {
            l.similarity = similar.get(&l.rid).copied();
        }
    }
    let mut candidates = fusion::fuse(&lexical, &near, params);
    // Semantic-only candidates that still match some query word lie past the lexical cut:
    // they are counted among the lexical matches already. When the lexical count is a lower
    // bound, so is it alone, and finding out which they are (a seek each, 9 ms for
    // common words at a million memories) would buy nothing.
    let semantic_only: Vec<i64> = candidates
        .iter()
        .filter(|c| c.matched == MatchedBy::Semantic)
        .map(|c| c.rid)
        .collect();
    let mut also_lexical = std::collections::HashSet::new();
    if let (Some(matching), Some(ranking)) = (&matching, &ranking)
        && lexical_total.exact
        && lexical_total.count > lexical.len() as i64
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
    let total = if lexical_total.exact {
        Total::exact(lexical_total.count + (semantic_only.len() - also_lexical.len()) as i64)
    } else {
        lexical_total
    };
    let facts = facts_of(conn, &candidates).await?;
    if recall {
        blend(&mut candidates, &facts, 1e-12);
    }
    let candidates = order(conn, candidates, &facts, req).await?;
    let start = (req.offset as usize).min(candidates.len());
    let end = (req.offset as usize + req.limit as usize).min(candidates.len());
    let mut page: Vec<fusion::Fused> = candidates[start..end].to_vec();
    let wanted = req.limit as usize - page.len();
    if wanted > 0
        && let (Some(matching), Some(ranking)) = (&matching, &ranking)
        && lexical_total.count > lexical.len() as i64
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

pub(super) async fn vector_of(vector: semantic::QueryVector) -> Result<semantic::Query> {
    vector
        .await
        .map_err(|e| BackendError::Refused(format!("the embedding thread failed: {e}")))?
        .map_err(BackendError::Refused)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::search::semantic::index::tests::{near, pseudo_unit};
    use crate::backend::search::semantic::index::{VectorIndex, to_blob};

    /// Filtered semantic pages over more vectors near the query than a scan picks: the
    /// tagged memories the picks leave out are still found, `total` never falls below what
    /// the pages hold, says "at least" while it is not known, and the walk of pages visits
    /// each tagged memory at least as similar as the floor exactly once, as the exact scan
    /// orders them, ending on an exact total.
    #[tokio::test]
    async fn a_filter_most_near_vectors_fail_still_pages_and_counts_what_it_finds() {
        let (_db, conn) = crate::backend::schema::test_database().await;
        let centre = pseudo_unit(4_242);
        let n = 3_000u64;
        for i in 0..n {
            let tags = if i % 40 == 0 {
                r#"["rare"]"#
            } else {
                r#"["common"]"#
            };
            let id = format!("m{i}");
            conn.execute(
                "INSERT INTO nodes (id, label, properties) VALUES (?1, 'Memory',
                 json_object('type', 'general', 'title', ?1, 'content', 'body', 'tags', json(?2)))",
                libsql::params![id.as_str(), tags],
            )
            .await
            .unwrap();
            // Similarities to the centre from about 0.25 to 0.95.
            let v = near(&centre, 2 * i + 1, 0.3 + (i % 97) as f32 / 30.0);
            conn.execute(
                "INSERT INTO memory_vectors (memory_id, embedding) VALUES (?1, ?2)",
                libsql::params![id.as_str(), to_blob(&v)],
            )
            .await
            .unwrap();
        }
        let index = Arc::new(VectorIndex::default());
        index.refresh(&conn).await.unwrap();
        let query = semantic::Query::for_tests(centre.clone(), index.clone());
        let mut rows = conn
            .query(
                "SELECT n.id FROM memory_vectors v JOIN nodes n ON n.id = v.memory_id
                 WHERE n.properties LIKE '%rare%'
                   AND 1.0 - vector_distance_cos(v.embedding, ?1) >= ?2
                 ORDER BY vector_distance_cos(v.embedding, ?1), n.rowid",
                libsql::params![to_blob(&centre), SEMANTIC_FLOOR],
            )
            .await
            .unwrap();
        let mut want = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            want.push(row.get::<String>(0).unwrap());
        }
        assert!(
            want.len() > 40,
            "{} tagged memories above the floor",
            want.len()
        );

        // With a filter no index answers (importance), the search goes through the scan's
        // picks; with the tag alone (an index, 75 memories), it checks every one of them.
        for indexed in [false, true] {
            let mut req = SearchRequest::new("", 10);
            req.tags = vec!["rare".into()];
            if !indexed {
                req.min_importance = Some(0.0);
            }
            let (seen, totals) = walk_pages(&conn, req, &query).await;
            assert_eq!(seen, want, "indexed: {indexed}");
            assert_eq!(totals.last(), Some(&(want.len() as u64, true)));
            // Through the picks, the first page cannot know the total: they hold only some.
            assert_eq!(totals[0].1, indexed, "{totals:?}");
        }
        // A tag nobody holds: nothing, exactly.
        let mut req = SearchRequest::new("", 10);
        req.tags = vec!["nobody".into()];
        let page = semantic(&conn, &req, &query).await.unwrap();
        assert!(page.hits.is_empty() && page.total == 0 && page.total_exact);
    }

    /// Every page of a semantic search from `req`'s offset on: the ids in order, and each
    /// page's total and whether it is exact. No total may fall below what the pages hold.
    async fn walk_pages(
        conn: &libsql::Connection,
        mut req: SearchRequest,
        query: &semantic::Query,
    ) -> (Vec<String>, Vec<(u64, bool)>) {
        let mut seen = Vec::new();
        let mut totals = Vec::new();
        loop {
            let page = semantic(conn, &req, query).await.unwrap();
            let end = req.offset as u64 + page.hits.len() as u64;
            assert!(page.total >= end, "total {} below {end}", page.total);
            assert_eq!(page.has_more, page.next_offset.is_some());
            seen.extend(page.hits.iter().map(|h| h.memory.id.clone()));
            totals.push((page.total, page.total_exact));
            match page.next_offset {
                Some(next) => req.offset = next,
                None => return (seen, totals),
            }
            assert!(totals.len() < 100, "the pages never end: {totals:?}");
        }
    }
}

//! What every kind of search shares once it has its candidates: the facts recall blends
//! (importance, age, use), the order (an old version right after its successor), and the
//! details each hit carries.

use libsql::Connection;

use super::*;
use crate::backend::all_rows;
use crate::backend::error::{DbContext, Result};
use crate::backend::rows::decode;

/// A fused candidate's facts that recall's blend and the ordering need.
pub(super) struct Facts {
    importance: f64,
    /// Age in days.
    age: f64,
    used: i64,
}

/// Importance, age and use of each candidate.
pub(super) async fn facts_of(
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
pub(super) fn blend(
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

/// By score, then the more used, then by id; other projects' matches after the current
/// one's when it is favoured ([`projects`]); an old version right after the memory that
/// replaced it ([`versions`]).
pub(super) async fn order(
    conn: &Connection,
    mut candidates: Vec<fusion::Fused>,
    facts: &std::collections::HashMap<i64, Facts>,
    req: &SearchRequest,
) -> Result<Vec<fusion::Fused>> {
    let used = |rid: i64| facts.get(&rid).map_or(0, |f| f.used);
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(used(b.rid).cmp(&used(a.rid)))
            .then(a.rid.cmp(&b.rid))
    });
    let candidates = projects::favour(conn, req.project.as_ref(), candidates, |c| c.rid).await?;
    let rids: Vec<i64> = candidates.iter().map(|c| c.rid).collect();
    let successors = versions::successors(conn, &rids, req.as_of.as_ref()).await?;
    Ok(versions::after_successors(
        candidates,
        |c| c.rid,
        &successors,
    ))
}

/// The memories of a page with their snippets: around the matched words for a lexical hit,
/// the start of the content otherwise.
pub(super) async fn details(
    conn: &Connection,
    req: &SearchRequest,
    page: &[fusion::Fused],
    matching: Option<&str>,
) -> Result<Vec<SearchHit>> {
    let mut hits = Vec::with_capacity(page.len());
    let superseded = superseded_by(req.as_of.as_ref());
    for c in page {
        let Some(row) = crate::backend::first_row(
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
            Some(m) => crate::backend::first_row(
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
            folded: Vec::new(),
        });
    }
    Ok(hits)
}

/// The first 16 words of a text, as a snippet.
pub(super) fn opening(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = words.iter().take(16).copied().collect::<Vec<_>>().join(" ");
    if words.len() > 16 {
        out.push('…');
    }
    out
}

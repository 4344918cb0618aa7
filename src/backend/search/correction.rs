//! Typo correction of the query's words against the index, and the neighbours a word that
//! matches nothing is told about.

use libsql::{Connection, Value};

use super::lexical::fts_query::Term;
use super::*;
use crate::backend::error::{DbContext, Result};
use crate::backend::rows::decode;
use crate::backend::{TursoBackend, all_rows, scalar_i64};

/// What checking the query words against the index found.
#[derive(Debug, Default)]
pub(super) struct Checked {
    pub(super) corrections: Vec<Correction>,
    pub(super) unmatched: Vec<String>,
}

/// Replaces each word that matches nothing with the closest indexed stem, unless the
/// search is strict; a word with no near neighbour stays as it is and is reported. A word
/// matches as the search will match it: with `fuzzy`, also as the beginning of a longer
/// word, so a word that finds memories is never reported as unmatched.
pub(super) async fn correct(
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
            vec![Value::from(lexical::fts_query::any_of(
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
        if chars < lexical::typo::MIN_STEM_CHARS || word.chars().all(|c| c.is_ascii_digit()) {
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
pub(super) async fn neighbours(
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
                folded: Vec::new(),
            });
            break;
        }
    }
    Ok(added)
}

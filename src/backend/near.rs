//! Near-duplicates: the same lesson stored again in nearly the same words. A store is never
//! refused for it; its answer names the memories it is close to, so the assistant can
//! update or supersede instead, and recall folds such memories into one hit. Close means
//! that the share of distinct words the two have in common (of title and content, words of
//! three letters or more and numbers, case aside) is at least [`WORDS_THRESHOLD`], both
//! having at least six such words.
//!
//! Finding the candidates is one full-text lookup of the new memory's longest words (long
//! words are the rarer ones) taken two by two: up to [`CANDIDATES`] memories that hold both
//! words of some pair, among the newest [`WINDOW`] rows. A memory sharing most of the words
//! holds such a pair; when more memories than that hold one (a corpus of memories written
//! from one template), or the near-duplicate is older than the window, it can go
//! unnoticed, and the cost stays bounded.

use std::collections::HashSet;

use serde::Serialize;

use super::error::{DbContext, Result};
use super::search::lexical::fts_query;
use super::{TursoBackend, all_rows};
use crate::model::Memory;

/// Share of distinct words in common (Jaccard) from which two memories say the same.
pub const WORDS_THRESHOLD: f64 = 0.8;
/// Fewest distinct words a memory needs before it is compared.
const FEWEST_WORDS: usize = 6;
/// Most near-duplicates named in an answer.
const MOST_NAMED: usize = 3;
/// Words of the new memory looked up.
const PROBE_WORDS: usize = 8;
/// Candidates compared word by word: memories holding a pair, among the newest.
const CANDIDATES: usize = 32;
/// How many of the newest rows are looked through: the full-text index reads a word's
/// memories in order, so a bound on the rows bounds the work in a large file.
const WINDOW: i64 = 50_000;

/// What made two memories close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Closeness {
    /// Most of their words in common.
    Words,
    /// Their vectors (with the model loaded): the same thing in other words.
    Meaning,
}

/// A memory close to another.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NearDuplicate {
    pub id: String,
    pub title: String,
    /// By words: the share of distinct words in common; by meaning: the cosine of the
    /// two memories' vectors. 0–1.
    pub similarity: f64,
    pub by: Closeness,
}

impl TursoBackend {
    /// The stored memories closest to `memory` (not itself), most similar first; none when
    /// nothing is close.
    pub async fn near_duplicates(&self, memory: &Memory) -> Result<Vec<NearDuplicate>> {
        let mut close = self.close_in_words(memory, MOST_NAMED).await?;
        if close.len() < MOST_NAMED {
            for (id, title, similarity) in self.close_in_meaning(memory, MOST_NAMED).await? {
                if close.len() < MOST_NAMED && !close.iter().any(|c| c.id == id) {
                    close.push(NearDuplicate {
                        id,
                        title,
                        similarity: (similarity * 1000.0).round() / 1000.0,
                        by: Closeness::Meaning,
                    });
                }
            }
        }
        Ok(close)
    }

    /// Every stored memory close to `memory` in words among the candidates compared, not
    /// only the few an answer names: the consolidation report joins them into groups, and a
    /// few superseded copies must not hide a current one.
    pub(crate) async fn all_near_duplicates(&self, memory: &Memory) -> Result<Vec<NearDuplicate>> {
        self.close_in_words(memory, CANDIDATES).await
    }

    /// The stored memories closest to `memory` in words (not itself), at most `most`, most
    /// similar first.
    async fn close_in_words(&self, memory: &Memory, most: usize) -> Result<Vec<NearDuplicate>> {
        let own = words(&memory.title, &memory.content);
        if own.len() < FEWEST_WORDS {
            return Ok(Vec::new());
        }
        let mut probe: Vec<&String> = own.iter().collect();
        probe.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        probe.truncate(PROBE_WORDS);
        // Pairs of words, each pair required whole: a memory missing at most a fifth of
        // these words still holds a pair. The first memories found holding one in the
        // window are compared, not the best ranked: ranking costs as much as the memories
        // matching, which in a corpus of similar memories is thousands (60 ms a store);
        // taking the first found stops early.
        let pairs: Vec<String> = probe
            .chunks_exact(2)
            .map(|pair| {
                let pair: Vec<fts_query::Term> = pair
                    .iter()
                    .map(|w| fts_query::Term::Word((*w).clone()))
                    .collect();
                format!("({})", fts_query::all_of(&pair, false))
            })
            .collect();
        let rows = {
            let conn = self.conn.lock().await;
            // Its own statement: the full-text index takes a rowid bound only as a value.
            let newest = super::scalar_i64(
                &conn,
                "SELECT coalesce(max(rowid), 0) FROM nodes",
                vec![],
                "looking for near-duplicates",
            )
            .await?;
            let rows = conn
                .query(
                    &format!(
                        "SELECT n.id, json_extract(n.properties, '$.title'),
                                json_extract(n.properties, '$.content')
                         FROM (SELECT rowid FROM memory_fts WHERE memory_fts MATCH ?1
                                 AND rowid >= ?3
                               LIMIT {CANDIDATES}) best
                         JOIN nodes n ON n.rowid = best.rowid
                         WHERE n.id != ?2"
                    ),
                    libsql::params![pairs.join(" OR "), memory.id.as_str(), newest - WINDOW],
                )
                .await
                .doing("looking for near-duplicates")?;
            all_rows(rows, "looking for near-duplicates").await?
        };
        let mut close: Vec<NearDuplicate> = rows
            .iter()
            .filter_map(|r| {
                let shared = jaccard(&own, &words(r.str(1), r.str(2)));
                (shared >= WORDS_THRESHOLD).then(|| NearDuplicate {
                    id: r.text(0),
                    title: r.text(1),
                    similarity: (shared * 1000.0).round() / 1000.0,
                    by: Closeness::Words,
                })
            })
            .collect();
        close.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        close.truncate(most);
        Ok(close)
    }
}

/// A memory's words, read once, for comparing it with several others.
pub struct Words(HashSet<String>);

impl Words {
    pub fn of(memory: &Memory) -> Words {
        Words(words(&memory.title, &memory.content))
    }

    /// Whether the two memories say nearly the same (see [`WORDS_THRESHOLD`]).
    pub fn nearly_the_same(&self, other: &Words) -> bool {
        jaccard(&self.0, &other.0) >= WORDS_THRESHOLD
    }
}

/// The distinct words of a memory, lower-cased: words of three letters or more, and every
/// number (so "note 1" and "note 2" differ).
fn words(title: &str, content: &str) -> HashSet<String> {
    title
        .split(|c: char| !c.is_alphanumeric())
        .chain(content.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| {
            w.chars().count() >= 3 || (!w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_lowercase)
        .collect()
}

/// The share of distinct words two memories have in common; 0 when either has fewer than
/// [`FEWEST_WORDS`] (too little text to judge: an identical one is caught by the store).
fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    if a.len() < FEWEST_WORDS || b.len() < FEWEST_WORDS {
        return 0.0;
    }
    a.intersection(b).count() as f64 / a.union(b).count() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_of_words_in_common() {
        let a = words(
            "Raise the pool size",
            "the pool of 10 was too small for the workers",
        );
        let b = words(
            "Raise the pool size",
            "the pool of 10 was too small for our workers",
        );
        let c = words("Pin the image", "pinning fixed the crash");
        assert!(jaccard(&a, &b) >= WORDS_THRESHOLD, "{}", jaccard(&a, &b));
        assert!(jaccard(&a, &c) < 0.2);
        assert_eq!(jaccard(&HashSet::new(), &HashSet::new()), 0.0);
        // Too short to judge, and numbers count.
        let short = words("Alpha note 1", "alpha");
        assert_eq!(jaccard(&short, &short), 0.0);
        let one = words("Deploy step 1", "run the deploy script on the staging host");
        let two = words("Deploy step 2", "run the deploy script on the staging host");
        assert!(
            jaccard(&one, &two) < WORDS_THRESHOLD,
            "{}",
            jaccard(&one, &two)
        );
    }
}

//! The index's vocabulary for typo correction: the stems a misspelt word may be corrected
//! to, with how many memories hold each.
//!
//! Reading it walks the whole full-text index, so it is read once and kept. What is kept is
//! bounded whatever the memories hold: terms with several digits (ids, hashes, numbers)
//! and very long terms are not corrections worth offering and are skipped; beyond
//! `MAX_TERMS` the rarest terms are dropped; and the text lives in one buffer rather than a
//! string per term. A file full of hex and UUIDs would otherwise make this hundreds of
//! megabytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libsql::Connection;

use crate::backend::error::{DbContext, Result};
use crate::backend::{TursoBackend, scalar_i64};

/// Most terms kept; the ones found in the fewest memories go first.
const MAX_TERMS: usize = 250_000;
/// Longest term kept, in bytes.
const MAX_TERM_BYTES: usize = 40;
/// A vocabulary this small is re-read as soon as the index changes; a bigger one at most
/// this often, so a stream of writes does not re-read the whole index before each typo.
const LARGE_VOCABULARY_TERMS: usize = 20_000;
const LARGE_VOCABULARY_REFRESH: Duration = Duration::from_secs(30);

/// Stems, compactly: all their text in one buffer.
#[derive(Default)]
pub struct Terms {
    text: String,
    /// (end of the term in `text`, its length in characters, memories holding it).
    entries: Vec<(u32, u8, u32)>,
}

impl Terms {
    fn push(&mut self, term: &str, docs: u32) {
        let chars = term.chars().count().min(usize::from(u8::MAX)) as u8;
        self.push_counted(term, chars, docs);
    }

    fn push_counted(&mut self, term: &str, chars: u8, docs: u32) {
        self.text.push_str(term);
        self.entries.push((self.text.len() as u32, chars, docs));
    }

    /// Keeps only the terms found in at least `min_docs` memories.
    fn keep_at_least(&mut self, min_docs: u32) {
        let mut kept = Terms::default();
        for (term, chars, docs) in self.iter().filter(|&(_, _, docs)| docs >= min_docs) {
            kept.push_counted(term, chars, docs);
        }
        *self = kept;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every term with its length in characters and the memories holding it.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u8, u32)> {
        let mut start = 0usize;
        self.entries.iter().map(move |&(end, chars, docs)| {
            let term = &self.text[start..end as usize];
            start = end as usize;
            (term, chars, docs)
        })
    }
}

/// Whether a term can be a correction: a word ("ipv6" and "http2" are), not an id, a hash
/// or a number.
fn worth_keeping(term: &str) -> bool {
    term.len() <= MAX_TERM_BYTES && term.bytes().filter(u8::is_ascii_digit).count() <= 1
}

/// The cached vocabulary and when and at which database state it was read.
pub(crate) struct Vocabulary {
    stamp: (i64, u64),
    read_at: Instant,
    terms: Arc<Terms>,
}

impl TursoBackend {
    pub(super) async fn vocabulary(&self, conn: &Connection) -> Result<Arc<Terms>> {
        // data_version moves when another connection commits; our own writes are counted.
        let stamp = (
            scalar_i64(
                conn,
                "SELECT data_version FROM pragma_data_version()",
                vec![],
                "checking for changes",
            )
            .await?,
            self.writes.load(std::sync::atomic::Ordering::SeqCst),
        );
        if let Some(cached) = self.vocabulary.lock().expect("vocabulary lock").as_ref() {
            let fresh_enough = cached.terms.len() >= LARGE_VOCABULARY_TERMS
                && cached.read_at.elapsed() < LARGE_VOCABULARY_REFRESH;
            if cached.stamp == stamp || fresh_enough {
                return Ok(cached.terms.clone());
            }
        }
        let terms = Arc::new(read_terms(conn).await?);
        *self.vocabulary.lock().expect("vocabulary lock") = Some(Vocabulary {
            stamp,
            read_at: Instant::now(),
            terms: terms.clone(),
        });
        Ok(terms)
    }
}

/// Streams the index's vocabulary into a bounded `Terms`.
async fn read_terms(conn: &Connection) -> Result<Terms> {
    let mut rows = conn
        .query("SELECT term, doc FROM memory_fts_vocab", ())
        .await
        .doing("reading the index vocabulary")?;
    let mut terms = Terms::default();
    let mut min_docs = 1u32;
    while let Some(row) = rows.next().await.doing("reading the index vocabulary")? {
        let docs = row.get::<i64>(1).unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
        if docs < min_docs {
            continue;
        }
        let Ok(term) = row.get_str(0) else { continue };
        if !worth_keeping(term) {
            continue;
        }
        terms.push(term, docs);
        if terms.len() > MAX_TERMS {
            // Too many: raise the bar until the rarest are gone.
            while terms.len() > MAX_TERMS * 3 / 4 {
                min_docs += 1;
                terms.keep_at_least(min_docs);
            }
        }
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_stored_compactly_and_pruned_by_frequency() {
        let mut t = Terms::default();
        t.push("cache", 3);
        t.push("café", 1);
        t.push("redis", 2);
        let all: Vec<_> = t.iter().collect();
        assert_eq!(all, vec![("cache", 5, 3), ("café", 4, 1), ("redis", 5, 2)]);
        t.keep_at_least(2);
        assert_eq!(
            t.iter().map(|(s, _, _)| s).collect::<Vec<_>>(),
            ["cache", "redis"]
        );
    }

    #[test]
    fn ids_and_numbers_are_not_corrections() {
        assert!(worth_keeping("deadlock"));
        assert!(!worth_keeping("4f37db4b"));
        assert!(worth_keeping("ipv6"));
        assert!(!worth_keeping("sha256"));
        assert!(!worth_keeping(&"a".repeat(41)));
    }
}

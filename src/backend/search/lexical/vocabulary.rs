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

use super::typo;
use crate::backend::error::{DbContext, Result};
use crate::backend::{TursoBackend, scalar_i64};

/// Most terms kept; the ones found in the fewest memories go first.
const MAX_TERMS: usize = 250_000;
/// Longest term kept, in bytes.
const MAX_TERM_BYTES: usize = 40;
/// A vocabulary read this fast is re-read as soon as the index changes. A slower one is
/// kept while the index changes for [`STALE_READS`] times as long as reading it took, and
/// at most [`LONGEST_STALE`], so a stream of writes does not re-read the whole index before
/// each typo (at 10,000 memories a read takes ≈20 ms, at 100,000 ≈0.35 s). A word written
/// in between is missing from corrections for that long.
const CHEAP_READ: Duration = Duration::from_millis(2);
const STALE_READS: u32 = 100;
const LONGEST_STALE: Duration = Duration::from_secs(30);

/// Stems, compactly: all their text in one buffer, in order (the index lists them so), which
/// is what lets a correction be looked up without comparing the word with every stem.
#[derive(Default)]
pub struct Terms {
    text: String,
    /// (end of the term in `text`, its length in characters, memories holding it).
    entries: Vec<(u32, u8, u32)>,
    /// Whether some term came before one it sorts after.
    unsorted: bool,
    /// The most characters in a term.
    longest: u8,
}

impl Terms {
    fn push(&mut self, term: &str, docs: u32) {
        let chars = term.chars().count().min(usize::from(u8::MAX)) as u8;
        self.push_counted(term, chars, docs);
    }

    fn push_counted(&mut self, term: &str, chars: u8, docs: u32) {
        if let Some(last) = self.len().checked_sub(1) {
            self.unsorted |= self.term(last) > term;
        }
        self.longest = self.longest.max(chars);
        self.text.push_str(term);
        self.entries.push((self.text.len() as u32, chars, docs));
    }

    /// The `i`th term.
    fn term(&self, i: usize) -> &str {
        let start = i.checked_sub(1).map_or(0, |p| self.entries[p].0 as usize);
        &self.text[start..self.entries[i].0 as usize]
    }

    /// Puts the terms in order, should they not be (the index lists them in order already).
    fn sort(&mut self) {
        if !self.unsorted {
            return;
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by(|&a, &b| self.term(a).cmp(self.term(b)));
        let mut sorted = Terms::default();
        for i in order {
            let (_, chars, docs) = self.entries[i];
            sorted.push_counted(self.term(i), chars, docs);
        }
        *self = sorted;
    }

    /// The stem closest to `word`, a word the index does not know, as
    /// [`typo::best_correction`] picks it among the stems of comparable length.
    pub fn correction(&self, word: &str) -> Option<&str> {
        let (shortest, longest) = typo::candidate_lengths(word.chars().count());
        let comparable =
            |&(_, chars, _): &(&str, u8, u32)| (shortest..=longest).contains(&usize::from(chars));
        fn candidate((term, _, docs): (&str, u8, u32)) -> (&str, i64) {
            (term, i64::from(docs))
        }
        if shortest > usize::from(self.longest) {
            // A long word: no stem is long enough to be compared with it.
            return None;
        }
        if self.unsorted {
            return typo::best_correction(word, self.iter().filter(comparable).map(candidate));
        }
        let mut near = Vec::new();
        typo::near_stems(word, self.len(), |i| self.term(i), |i| near.push(i));
        let near = near.into_iter().map(|i| {
            let (_, chars, docs) = self.entries[i];
            (self.term(i), chars, docs)
        });
        typo::best_correction(word, near.filter(comparable).map(candidate))
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
    /// How long reading it took.
    took: Duration,
    terms: Arc<Terms>,
}

impl TursoBackend {
    pub(in crate::backend::search) async fn vocabulary(
        &self,
        conn: &Connection,
    ) -> Result<Arc<Terms>> {
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
            let fresh_enough = cached.took >= CHEAP_READ
                && cached.read_at.elapsed() < (cached.took * STALE_READS).min(LONGEST_STALE);
            if cached.stamp == stamp || fresh_enough {
                return Ok(cached.terms.clone());
            }
        }
        let started = Instant::now();
        let terms = Arc::new(read_terms(conn).await?);
        *self.vocabulary.lock().expect("vocabulary lock") = Some(Vocabulary {
            stamp,
            read_at: Instant::now(),
            took: started.elapsed(),
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
    terms.sort();
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

    /// The correction as it was found before the sorted walk: every stem of comparable length
    /// compared with the word.
    fn every_stem_compared<'a>(terms: &'a Terms, word: &str) -> Option<&'a str> {
        let (shortest, longest) = typo::candidate_lengths(word.chars().count());
        let candidates = terms
            .iter()
            .filter(|(_, chars, _)| (shortest..=longest).contains(&usize::from(*chars)))
            .map(|(term, _, docs)| (term, i64::from(docs)));
        typo::best_correction(word, candidates)
    }

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<T: Copy>(&mut self, from: &[T]) -> T {
            from[self.below(from.len())]
        }

        fn text(&mut self, alphabet: &[char], len: usize) -> Vec<char> {
            (0..len).map(|_| self.pick(alphabet)).collect()
        }
    }

    /// A misspelling of `base`: up to three substitutions, insertions, deletions or swaps of
    /// neighbours, then perhaps a plural "s".
    fn misspell(rng: &mut Rng, alphabet: &[char], mut w: Vec<char>) -> (String, bool) {
        let mut swapped = false;
        for _ in 0..rng.below(4) {
            let at = rng.below(w.len() + 1);
            match rng.below(4) {
                0 if at < w.len() => w[at] = rng.pick(alphabet),
                1 => w.insert(at, rng.pick(alphabet)),
                2 if at < w.len() => {
                    w.remove(at);
                }
                _ if at + 1 < w.len() => {
                    w.swap(at, at + 1);
                    swapped = true;
                }
                _ => {}
            }
        }
        if rng.below(8) == 0 {
            w.push('s');
        }
        (w.into_iter().collect(), swapped)
    }

    #[test]
    fn sorted_walk_corrects_exactly_as_comparing_every_stem() {
        let alphabets: [&[char]; 5] = [
            &['a', 'b', 's'],
            &['a', 'b', 'c', 'd', 'e', 's'],
            &['a', 'b', 'é', 'ß', '日', 's', '😀'],
            &['c', 'o', 'n', 'f', 'i', 'g', 'u', 'r', 'e', 's', 't'],
            &[
                'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p',
                'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ü', 'ø',
            ],
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut words, mut corrected, mut over_stem, mut swapped_corrected) = (0, 0, 0, 0);
        // MEMORYGRAPH_TYPO_ROUNDS=3000 for a longer run.
        let rounds = std::env::var("MEMORYGRAPH_TYPO_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(300);
        for round in 0..rounds {
            let alphabet = alphabets[round % alphabets.len()];
            let mut vocabulary = std::collections::BTreeMap::new();
            for _ in 0..1 + rng.below(300) {
                let longest = if rng.below(4) == 0 { 16 } else { 9 };
                let len = 1 + rng.below(longest);
                let term: String = rng.text(alphabet, len).into_iter().collect();
                vocabulary.insert(term, 1 + rng.below(4) as u32);
            }
            let mut sorted = Terms::default();
            for (term, &docs) in &vocabulary {
                sorted.push(term, docs);
            }
            assert!(!sorted.unsorted);
            let listed: Vec<&String> = vocabulary.keys().collect();
            for _ in 0..40 {
                let mut base: Vec<char> = match rng.below(5) {
                    0 => {
                        let len = 1 + rng.below(12);
                        rng.text(alphabet, len)
                    }
                    _ => rng.pick(&listed).chars().collect(),
                };
                if rng.below(3) == 0 {
                    // A word whose stem the index holds: "configuration" for "configur".
                    let len = 1 + rng.below(5);
                    let suffix = rng.text(alphabet, len);
                    base.extend(suffix);
                }
                let (word, swapped) = misspell(&mut rng, alphabet, base);
                let expected = every_stem_compared(&sorted, &word);
                assert_eq!(sorted.correction(&word), expected, "{word:?} in {listed:?}");
                // The walk's stems include every stem a comparison accepts.
                let mut near = std::collections::HashSet::new();
                typo::near_stems(
                    &word,
                    sorted.len(),
                    |i| sorted.term(i),
                    |i| {
                        near.insert(sorted.term(i));
                    },
                );
                for term in &listed {
                    if typo::distance_to_stem(&word, term).is_some() {
                        assert!(near.contains(term.as_str()), "{word:?} missed {term:?}");
                    }
                }
                words += 1;
                if let Some(stem) = expected {
                    corrected += 1;
                    let (w, s) = (word.chars().count(), stem.chars().count());
                    over_stem += usize::from(w > s + 3);
                    swapped_corrected += usize::from(swapped);
                }
            }
            // Terms out of order are sorted, or compared one by one, with the same answer.
            let mut shuffled: Vec<(&String, &u32)> = vocabulary.iter().collect();
            for k in (1..shuffled.len()).rev() {
                shuffled.swap(k, rng.below(k + 1));
            }
            let mut unsorted = Terms::default();
            for (term, &docs) in shuffled {
                unsorted.push(term, docs);
            }
            let base = rng.pick(&listed).chars().collect();
            let word = misspell(&mut rng, alphabet, base).0;
            let expected = every_stem_compared(&sorted, &word);
            assert_eq!(unsorted.correction(&word), expected);
            unsorted.sort();
            assert!(!unsorted.unsorted);
            assert_eq!(
                unsorted.iter().collect::<Vec<_>>(),
                sorted.iter().collect::<Vec<_>>()
            );
        }
        eprintln!(
            "{words} words, {corrected} corrected, {over_stem} to a stem 4+ characters shorter, \
             {swapped_corrected} with a swap"
        );
        assert!(corrected > words / 4 && over_stem > words / 100 && swapped_corrected > words / 20);
    }

    /// Corrections in a vocabulary like the benchmark's at 100k memories: 100,000 rare words
    /// of one length, and common ones. `cargo test --profile quick-release --lib
    /// typo_timing -- --ignored --nocapture`
    #[test]
    #[ignore = "a timing, not a check"]
    fn typo_timing() {
        const COMMON: &[&str] = &[
            "cach", "request", "timeout", "retri", "backoff", "databas", "index", "queri",
            "latenc", "deploi", "rollback", "contain", "kubernet", "docker", "pipelin", "build",
            "compil", "linker", "memori", "thread", "mutex", "deadlock", "async", "await", "futur",
            "socket", "connect", "pool", "schema", "migrat", "column", "tabl", "replica",
            "primari", "shard", "partit", "queue", "consum", "produc", "event", "stream", "batch",
            "worker", "schedul", "cron", "token", "session", "cooki",
        ];
        let letters: Vec<char> = "bcdfghjklmnpqrstvwxz".chars().collect();
        let rare = |mut n: usize| {
            let mut w = String::from("zq");
            for _ in 0..5 {
                w.push(letters[n % letters.len()]);
                n /= letters.len();
            }
            w
        };
        let mut listed = std::collections::BTreeMap::new();
        for i in 0..100_000 {
            listed.insert(rare(i), 1);
        }
        for (k, word) in COMMON.iter().enumerate() {
            listed.insert(word.to_string(), 1_000 + k as u32);
        }
        let mut terms = Terms::default();
        for (term, &docs) in &listed {
            terms.push(term, docs);
        }
        let mut shuffled = Terms::default();
        for i in 0..100_000 {
            shuffled.push(&rare(i), 1);
        }
        let started = Instant::now();
        shuffled.sort();
        let sort = started.elapsed();

        let mut rng = Rng(7);
        let typos: Vec<String> = (0..200)
            .map(|_| {
                let mut w: Vec<char> = rare(rng.below(100_000)).chars().collect();
                w.swap(1, 2);
                w.into_iter().collect()
            })
            .chain(["zqbcdfgh", "zqbcd", "deadlokc", "configuraton", "qqqqqqq"].map(String::from))
            .collect();
        let time = |f: &dyn Fn(&str) -> Option<String>| {
            let mut each: Vec<Duration> = typos
                .iter()
                .map(|t| {
                    let started = Instant::now();
                    std::hint::black_box(f(t));
                    started.elapsed()
                })
                .collect();
            each.sort();
            (
                each[each.len() / 2],
                each[each.len() * 99 / 100],
                each[each.len() - 1],
            )
        };
        for t in &typos {
            assert_eq!(terms.correction(t), every_stem_compared(&terms, t), "{t}");
        }
        let before = time(&|t| every_stem_compared(&terms, t).map(String::from));
        let after = time(&|t| terms.correction(t).map(String::from));
        eprintln!(
            "{} terms, {} bytes of text: every stem compared p50 {:?} p99 {:?} max {:?}; sorted \
             walk p50 {:?} p99 {:?} max {:?}; sorting 100,000 terms listed out of order {sort:?}",
            terms.len(),
            terms.text.len(),
            before.0,
            before.1,
            before.2,
            after.0,
            after.1,
            after.2
        );
    }

    /// The walk needs the index's terms in order; the index lists them so, across segments
    /// and whatever the letters.
    #[tokio::test]
    async fn the_index_lists_its_terms_in_order() {
        let db = libsql::Builder::new_local(":memory:")
            .build()
            .await
            .unwrap();
        let conn = db.connect().unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE memory_fts USING fts5(content, \
               tokenize = 'porter unicode61 remove_diacritics 2'); \
             CREATE VIRTUAL TABLE memory_fts_vocab USING fts5vocab(memory_fts, 'row');",
        )
        .await
        .unwrap();
        let words = [
            "zebra",
            "Straße",
            "日本語",
            "naïve",
            "éclair",
            "apple",
            "zq",
            "ωμέγα",
            "b",
            "a1",
            "Ünïcode",
            "😀",
            "configuration",
            "configure",
            "z",
            "ab",
            "abc",
            "emoji",
        ];
        let mut rng = Rng(11);
        for _ in 0..40 {
            // One segment per statement: terms come from several, merged.
            let text: Vec<&str> = (0..6).map(|_| rng.pick(&words)).collect();
            conn.execute(
                "INSERT INTO memory_fts(content) VALUES (?1)",
                [text.join(" ")],
            )
            .await
            .unwrap();
        }
        let terms = read_terms(&conn).await.unwrap();
        assert!(terms.len() > 10);
        assert!(!terms.unsorted, "{:?}", terms.iter().collect::<Vec<_>>());
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

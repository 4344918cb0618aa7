//! Typo correction for search words that match nothing: the closest word the index knows.
//!
//! The index holds porter stems ("configur" for "configuration"), and a stem is nearly
//! always a prefix of its words, so a typed word is compared with each stem over the
//! stem's length (plus one character, for a typo at the cut). Edits allowed: 2 for words
//! of 5 or more letters, 1 for shorter ones; a transposition counts as one edit.

/// How many edits a word of `chars` characters may be corrected by.
pub fn max_edits(chars: usize) -> usize {
    if chars >= 5 { 2 } else { 1 }
}

/// Most characters porter strips from a word ("-ation" and the like).
const MAX_STRIPPED: usize = 4;

/// Shortest stem a word is corrected to: "zebra" must not become every word starting
/// with "a".
pub const MIN_STEM_CHARS: usize = 3;

/// The lengths of the stems a word of `chars` characters may be corrected to: comparable to
/// the word (a stem may be shorter by what porter strips), never under [`MIN_STEM_CHARS`].
pub fn candidate_lengths(chars: usize) -> (usize, usize) {
    let shortest = chars
        .saturating_sub(MAX_STRIPPED)
        .max(chars.div_ceil(2))
        .max(MIN_STEM_CHARS);
    (shortest, chars + max_edits(chars))
}

#[cfg(test)]
pub fn distance_to_stem(word: &str, stem: &str) -> Option<usize> {
    let w: Vec<char> = word.chars().collect();
    distance_chars(&w, stem)
}

/// Longest stem compared, in characters (the vocabulary keeps terms of at most 40 bytes).
const MAX_STEM_CHARS: usize = 48;

/// The distance between a typed word and an indexed stem, or `None` when it is beyond
/// the allowed edits. Comparing over the stem's length (the rest of the word taken for a
/// suffix porter stripped) costs one edit more than a whole-word match, so a stem that
/// merely starts the typed word never beats a real near-match.
fn distance_chars(w: &[char], stem: &str) -> Option<usize> {
    let mut buffer = ['\0'; MAX_STEM_CHARS];
    let mut len = 0;
    for c in stem.chars() {
        if len == MAX_STEM_CHARS {
            return None;
        }
        buffer[len] = c;
        len += 1;
    }
    let s = &buffer[..len];
    let (shortest, _) = candidate_lengths(w.len());
    if s.len() < shortest {
        return None;
    }
    // Edits allowed also depend on the stem: a short stem changed in two of its letters is
    // another word, not a typo of this one.
    let limit = max_edits(w.len()).min(max_edits(s.len()));
    let mut best = osa(w, s, limit);
    if w.len() > 3 && w.last() == Some(&'s') {
        best = best.min(osa(&w[..w.len() - 1], s, limit));
    }
    if w.len() >= 5 && s.len() >= 4 && s.len() + MAX_STRIPPED >= w.len() {
        for cut in [s.len(), s.len() + 1] {
            if cut < w.len() && best > 1 {
                best = best.min(osa(&w[..cut], s, limit - 1) + 1);
            }
        }
    }
    (best <= limit).then_some(best)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours each cost one. Gives up early with `bound + 1` once the distance must exceed
/// `bound`: the corrector compares a word with every stem of similar length, and nearly all
/// are far off after a few characters.
fn osa(a: &[char], b: &[char], bound: usize) -> usize {
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > bound {
        return bound + 1;
    }
    // Three rolling rows: two back (for swaps), one back, and the current one.
    let mut rows = vec![0usize; 3 * (m + 1)];
    let (mut before, mut previous, mut current) = (0, m + 1, 2 * (m + 1));
    for j in 0..=m {
        rows[previous + j] = j;
    }
    for i in 1..=n {
        rows[current] = i;
        let mut row_min = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (rows[previous + j] + 1)
                .min(rows[current + j - 1] + 1)
                .min(rows[previous + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(rows[before + j - 2] + 1);
            }
            rows[current + j] = v;
            row_min = row_min.min(v);
        }
        if row_min > bound {
            return bound + 1;
        }
        (before, previous, current) = (previous, current, before);
    }
    rows[previous + m].min(bound + 1)
}

/// Calls `near` with the index of every stem of a sorted list that may be within reach of
/// `word`: a superset of the stems [`best_correction`] accepts, found without comparing the
/// word with each stem. `stem(i)` is the `i`th of `count` stems, in the order of their
/// characters (UTF-8 byte order is the same).
///
/// The list is walked as the trie it spells: the rows of the distance table between the
/// word and a stem's first characters are kept for the next stem, which shares a prefix
/// with it, and a prefix whose row exceeds the allowed edits everywhere rules out every
/// stem that starts with it (a row's minimum never decreases further down, which is also
/// what lets [`osa`] give up early). Every distance [`best_correction`] takes, including
/// those over the stem's length and those without a plural "s", is an entry of the last
/// row, so a stem it accepts is never ruled out.
pub fn near_stems<'a>(
    word: &str,
    count: usize,
    stem: impl Fn(usize) -> &'a str,
    mut near: impl FnMut(usize),
) {
    let w: Vec<char> = word.chars().collect();
    let bound = max_edits(w.len());
    let width = w.len() + 1;
    // The characters of the prefix walked so far, and a row per character plus the empty row.
    let mut path: Vec<char> = Vec::new();
    let mut rows: Vec<usize> = (0..width).collect();
    let mut i = 0;
    while i < count {
        let s = stem(i);
        let shared = path
            .iter()
            .zip(s.chars())
            .take_while(|&(&a, b)| a == b)
            .count();
        path.truncate(shared);
        rows.truncate((shared + 1) * width);
        let mut out_of_reach = None;
        for (at, c) in s.char_indices().skip(shared) {
            path.push(c);
            if next_row(&w, &path, &mut rows) > bound {
                out_of_reach = Some(&s[..at + c.len_utf8()]);
                break;
            }
        }
        match out_of_reach {
            None => {
                near(i);
                i += 1;
            }
            Some(prefix) => i = past_prefix(i, count, &stem, prefix),
        }
    }
}

/// Appends the distance table's row for the last character of `path` (the rows of the
/// characters before it are in `rows`) and returns its smallest entry. Same recurrence as
/// [`osa`], with the stem along the rows.
fn next_row(w: &[char], path: &[char], rows: &mut Vec<usize>) -> usize {
    let width = w.len() + 1;
    let j = path.len();
    let c = path[j - 1];
    let base = j * width;
    rows.resize(base + width, 0);
    rows[base] = j;
    let mut smallest = j;
    for i in 1..width {
        let cost = usize::from(w[i - 1] != c);
        let mut v = (rows[base - width + i] + 1)
            .min(rows[base + i - 1] + 1)
            .min(rows[base - width + i - 1] + cost);
        if i > 1 && j > 1 && w[i - 1] == path[j - 2] && w[i - 2] == c {
            v = v.min(rows[base - 2 * width + i - 2] + 1);
        }
        rows[base + i] = v;
        smallest = smallest.min(v);
    }
    smallest
}

/// The first stem after the `i`th that does not start with `prefix` (the `i`th does): the
/// stems that do are contiguous in a sorted list, and usually few, so this gallops forward
/// before halving.
fn past_prefix<'a>(
    i: usize,
    count: usize,
    stem: &impl Fn(usize) -> &'a str,
    prefix: &str,
) -> usize {
    let (mut inside, mut step) = (i, 1);
    let mut outside = loop {
        let probe = inside + step;
        if probe >= count {
            break count;
        }
        if !stem(probe).starts_with(prefix) {
            break probe;
        }
        inside = probe;
        step *= 2;
    };
    while outside - inside > 1 {
        let middle = inside + (outside - inside) / 2;
        if stem(middle).starts_with(prefix) {
            inside = middle;
        } else {
            outside = middle;
        }
    }
    outside
}

/// Picks the best correction among `(stem, documents)` candidates: fewest edits, then the
/// stem found in the most memories, then alphabetical for a stable answer.
pub fn best_correction<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = (&'a str, i64)>,
) -> Option<&'a str> {
    let w: Vec<char> = word.chars().collect();
    candidates
        .into_iter()
        .filter_map(|(stem, docs)| distance_chars(&w, stem).map(|d| (d, -docs, stem)))
        .min()
        .map(|(_, _, stem)| stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrects_one_typo_against_stems() {
        for typo in [
            "zorbulat",
            "zorbulaet",
            "zrobulate",
            "xorbulate",
            "zorbulatex",
            "zorbuate",
        ] {
            assert!(distance_to_stem(typo, "zorbul").is_some(), "{typo}");
        }
        assert_eq!(distance_to_stem("deadlokc", "deadlock"), Some(1));
        assert_eq!(distance_to_stem("configuraton", "configur"), Some(1));
        assert_eq!(distance_to_stem("cat", "dog"), None);
        assert_eq!(
            distance_to_stem("zeppelin", "zep"),
            None,
            "a short stem is not a prefix match"
        );
        assert_eq!(distance_to_stem("redsi", "redi"), Some(1));
    }

    #[test]
    fn never_to_a_letter_or_two() {
        for (word, stem) in [
            ("zebra", "a"),
            ("zebra", "ze"),
            ("third", "a"),
            ("third", "thi"),
            ("limit", "a"),
            ("limit", "li"),
            ("limit", "lim"),
            ("zebra", "zeb"),
        ] {
            assert_eq!(distance_to_stem(word, stem), None, "{word} -> {stem}");
        }
        assert_eq!(candidate_lengths(5).0, 3);
        assert_eq!(candidate_lengths(12).0, 8);
    }

    #[test]
    fn prefers_fewest_edits_then_most_documents() {
        let c = [("deadlock", 3), ("deadline", 50), ("deadlok", 1)];
        assert_eq!(best_correction("deadlokc", c), Some("deadlock"));
        assert_eq!(best_correction("qqqqqq", c), None);
    }
}

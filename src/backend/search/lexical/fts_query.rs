//! Turns what a user typed into a safe FTS5 `MATCH` expression. User text never reaches
//! `MATCH` raw: it is cut into words and quoted phrases, and each is written as an FTS5
//! string, so `"`, `*`, `-`, `:`, `(`, `NEAR`, `AND`, `OR` are only ever words.

/// One searchable unit: a single word, or a phrase the user quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Word(String),
    Phrase(Vec<String>),
    /// An indexed stem, matched with every word that starts with it (a typo correction).
    Stem(String),
}

impl Term {
    fn to_fts(&self, prefix: bool) -> String {
        match self {
            Term::Word(w) if prefix && w.chars().count() >= 3 => format!("\"{w}\"*"),
            Term::Word(w) => format!("\"{w}\""),
            Term::Phrase(ws) => format!("\"{}\"", ws.join(" ")),
            Term::Stem(s) => format!("\"{s}\"*"),
        }
    }
}

/// Most terms a query may use; the rest are ignored (a pasted page must not make a
/// thousand-term query).
pub const MAX_TERMS: usize = 32;

/// Splits text into the words the index knows (letters and digits; everything else
/// separates words), lower-cased.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Reads a query: text inside double quotes is a phrase, the rest is words. Repeated terms
/// are kept once.
pub fn parse(query: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    for (i, part) in query.split('"').enumerate() {
        let ws = words(part);
        if i % 2 == 1 && ws.len() > 1 {
            terms.push(Term::Phrase(ws));
        } else {
            terms.extend(ws.into_iter().map(Term::Word));
        }
    }
    let mut unique = Vec::new();
    for t in terms {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    unique.truncate(MAX_TERMS);
    unique
}

/// Every term must match.
pub fn all_of(terms: &[Term], prefix: bool) -> String {
    join(terms, " AND ", prefix)
}

/// Any term may match.
pub fn any_of(terms: &[Term], prefix: bool) -> String {
    join(terms, " OR ", prefix)
}

fn join(terms: &[Term], op: &str, prefix: bool) -> String {
    terms
        .iter()
        .map(|t| t.to_fts(prefix))
        .collect::<Vec<_>>()
        .join(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_are_only_words() {
        let t = parse(r#"redis -timeout NEAR("a b") col:x * AND"#);
        assert_eq!(
            all_of(&t, false),
            r#""redis" AND "timeout" AND "near" AND "a b" AND "col" AND "x" AND "and""#
        );
    }

    #[test]
    fn phrases_and_repeats() {
        let t = parse(r#""cache stampede" cache "cache""#);
        assert_eq!(
            t,
            vec![
                Term::Phrase(vec!["cache".into(), "stampede".into()]),
                Term::Word("cache".into())
            ]
        );
        assert!(parse("\"").is_empty());
        assert!(parse("*** --- ()").is_empty());
        assert_eq!(any_of(&parse("café 🚀 x"), true), r#""café"* OR "x""#);
    }
}

//! Reads structure out of a relationship's free-text context ("fully fixes the retry storm
//! in the billing service when the cache is cold"), so relationships can be searched by
//! scope, conditions, evidence, components and time. Simple word cues, no grammar: the
//! original text is always kept beside what was extracted.

use super::RelationshipContext;

const COMPONENT_NOUNS: [&str; 12] = [
    "module",
    "service",
    "component",
    "layer",
    "api",
    "endpoint",
    "worker",
    "database",
    "cache",
    "library",
    "server",
    "client",
];

impl RelationshipContext {
    pub fn from_text(text: &str) -> Self {
        let lower = text.to_lowercase();
        RelationshipContext {
            text: text.to_string(),
            scope: scope(&lower),
            components: components(&lower),
            conditions: clauses_after(
                &lower,
                &["only when ", "only if ", "when ", "if ", "unless "],
            ),
            evidence: clauses_after(
                &lower,
                &[
                    "verified by ",
                    "confirmed by ",
                    "proven by ",
                    "tested with ",
                    "tested by ",
                    "according to ",
                    "measured ",
                ],
            ),
            temporal: clauses_after(&lower, &["since ", "as of ", "until ", "after ", "before "])
                .into_iter()
                .next(),
            exceptions: clauses_after(&lower, &["except ", "excluding ", "but not "]),
        }
    }
}

fn scope(lower: &str) -> Option<String> {
    let has = |cues: &[&str]| cues.iter().any(|c| contains_word(lower, c));
    if has(&["partially", "partial", "partly", "somewhat", "mostly"]) {
        Some("partial".into())
    } else if has(&["only when", "only if", "when", "if", "unless", "provided"]) {
        Some("conditional".into())
    } else if has(&["fully", "completely", "entirely", "always", "full"]) {
        Some("full".into())
    } else {
        None
    }
}

fn contains_word(haystack: &str, phrase: &str) -> bool {
    haystack.match_indices(phrase).any(|(i, _)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The words of a text; a dot inside a word (`v2.1`, `node.js`) belongs to it.
fn words(lower: &str) -> Vec<&str> {
    lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .map(|w| w.trim_matches('.'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Where a clause ends: at the first punctuation mark that is not inside a word or number
/// (the dots of `v2.1` and `2.1.3`, the comma of `10,000`, keep it going).
fn clause_end(rest: &str) -> usize {
    let chars: Vec<(usize, char)> = rest.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let between = |ok: fn(&char) -> bool| {
            k > 0 && ok(&chars[k - 1].1) && chars.get(k + 1).is_some_and(|n| ok(&n.1))
        };
        let inside = match c {
            '.' => between(|c| c.is_alphanumeric()),
            ',' => between(char::is_ascii_digit),
            _ => false,
        };
        if matches!(c, ',' | ';' | '.' | '(' | ')' | '!' | '?') && !inside {
            return i;
        }
    }
    rest.len()
}

fn components(lower: &str) -> Vec<String> {
    let words = words(lower);
    let mut found = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if COMPONENT_NOUNS.contains(w) && i > 0 {
            let prev = words[i - 1];
            if !["the", "a", "an", "this", "that", "its", "our", "of", "in"].contains(&prev) {
                let name = format!("{prev} {w}");
                if !found.contains(&name) {
                    found.push(name);
                }
            }
        }
    }
    found
}

/// The words following each cue, up to the next punctuation mark or cue-like connective.
fn clauses_after(lower: &str, cues: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut taken_until = 0;
    let mut hits: Vec<(usize, &str)> = cues
        .iter()
        .flat_map(|cue| {
            lower.match_indices(cue).filter(|(i, _)| {
                !lower[..*i]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_alphanumeric)
            })
        })
        .collect();
    hits.sort();
    for (i, cue) in hits {
        if i < taken_until {
            continue;
        }
        let rest = &lower[i + cue.len()..];
        let end = clause_end(rest);
        let clause = rest[..end].trim();
        taken_until = i + cue.len() + end;
        if !clause.is_empty() && !out.iter().any(|c: &String| c == clause) {
            out.push(clause.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_scope_components_and_conditions() {
        let c = RelationshipContext::from_text(
            "fully resolves the cold start in the django migration module",
        );
        assert_eq!(c.scope.as_deref(), Some("full"));
        assert_eq!(c.components, vec!["migration module"]);
        let c = RelationshipContext::from_text(
            "works only when the cache is warm, verified by load test; since v2.1",
        );
        assert_eq!(c.scope.as_deref(), Some("conditional"));
        assert_eq!(c.conditions, vec!["the cache is warm"]);
        assert_eq!(c.evidence, vec!["load test"]);
        assert_eq!(c.temporal.as_deref(), Some("v2.1"));
    }

    #[test]
    fn version_numbers_stay_whole() {
        let c = RelationshipContext::from_text(
            "holds since 2.1.3. Tested with 10,000 rows, when node.js runs the v1.2 api.",
        );
        assert_eq!(c.temporal.as_deref(), Some("2.1.3"));
        assert_eq!(c.evidence, vec!["10,000 rows"]);
        assert_eq!(c.conditions, vec!["node.js runs the v1.2 api"]);
        assert_eq!(c.components, vec!["v1.2 api"]);
        let c = RelationshipContext::from_text("since v3, fixed. Then, 4.");
        assert_eq!(c.temporal.as_deref(), Some("v3"));
    }
}

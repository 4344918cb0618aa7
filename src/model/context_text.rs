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

fn words(lower: &str) -> Vec<&str> {
    lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect()
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
        let end = rest
            .find([',', ';', '.', '(', ')', '!', '?'])
            .unwrap_or(rest.len());
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
        assert_eq!(c.temporal.as_deref(), Some("v2"));
    }
}

//! Fusing lexical and semantic candidates into one ranking (docs/architecture.md explains
//! the choice and how it was tuned).
//!
//! Each list votes with its score scaled to the list's best: BM25 / best BM25 for the
//! lexical list, (cosine − floor) / (best cosine − floor) for the semantic one, the latter
//! weighted 0.4. A lexical vote is also multiplied by the share of the query's words the
//! memory holds: a memory that matched one word of eight says little about the query, however
//! rare that word, while the best of the lexical list always gets its full BM25 vote. That
//! one factor is what lets the semantic list win where the wording differs and the lexical
//! list win where it is the same (docs/performance.md). A memory's fused score is the sum of
//! its votes; a memory both lists found gets both, and a lexical candidate beyond the
//! semantic ones gets the semantic vote of its own cosine. Scaling per list keeps BM25 and cosine
//! comparable from query to query while keeping how far ahead the best candidates are,
//! which ranks alone forget. Tuned on LoCoMo conversations 0–4 and the paraphrase set. For
//! recall, importance and recency then re-rank the fused candidates the way they re-rank
//! lexical ones.

/// Which list found a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// Its words matched the query's.
    Lexical,
    /// Its meaning is near the query's (its vector is among the nearest).
    Semantic,
    /// Both.
    Both,
}

/// How the two lists' votes are counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Reciprocal ranks: `weight / (k + rank)`.
    Ranks,
    /// Scores scaled to the list's best: BM25 / best BM25 (times the memory's coverage of
    /// the query when `by_coverage`), and cosine above `min_similarity` / the best cosine
    /// above it, each times its weight.
    Scores,
}

/// A lexical candidate.
#[derive(Debug, Clone, Copy)]
pub struct Lexical {
    pub rid: i64,
    /// BM25, larger is better.
    pub relevance: f64,
    /// The share of the query's words it holds, 0–1.
    pub coverage: f64,
    /// Its cosine to the query when it is not among the semantic candidates (they bring
    /// their own), so that its meaning votes too.
    pub similarity: Option<f64>,
}

/// The fusion's parameters (the defaults are the tuned ones).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub method: Method,
    /// Lexical candidates considered (best by BM25).
    pub lexical_candidates: usize,
    /// Semantic candidates considered (nearest by cosine).
    pub semantic_candidates: usize,
    /// The rank constant: larger flattens the difference between the first ranks.
    pub k: f64,
    pub lexical_weight: f64,
    pub semantic_weight: f64,
    /// A semantic candidate less similar than this gets no vote (it is noise).
    pub min_similarity: f64,
    /// Whether a lexical vote is multiplied by the memory's coverage of the query.
    pub by_coverage: bool,
    /// Whether lexical candidates beyond the semantic ones get a semantic vote from their
    /// own cosine (scores only).
    pub lexical_similarity: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            method: Method::Scores,
            lexical_candidates: 100,
            semantic_candidates: 50,
            k: 60.0,
            lexical_weight: 1.0,
            semantic_weight: 0.4,
            min_similarity: super::SEMANTIC_FLOOR,
            by_coverage: true,
            lexical_similarity: true,
        }
    }
}

/// One fused candidate.
#[derive(Debug, Clone)]
pub struct Fused {
    pub rid: i64,
    pub score: f64,
    pub matched: MatchedBy,
    /// BM25 relevance, when lexical.
    pub relevance: Option<f64>,
    /// Cosine similarity, when semantic.
    pub similarity: Option<f64>,
}

/// Fuses `lexical` (best first) and `semantic` (rid, similarity; best first) into one list,
/// best first (ties by rid).
pub fn fuse(lexical: &[Lexical], semantic: &[(i64, f64)], p: &Params) -> Vec<Fused> {
    let best_rel = lexical.iter().map(|l| l.relevance).fold(1e-9, f64::max);
    let best_sim = semantic
        .iter()
        .map(|s| s.1 - p.min_similarity)
        .fold(1e-9, f64::max);
    let lexical_vote = |rank: usize, l: &Lexical| {
        let coverage = if p.by_coverage { l.coverage } else { 1.0 };
        match p.method {
            Method::Ranks => p.lexical_weight * coverage / (p.k + rank as f64),
            Method::Scores => p.lexical_weight * coverage * l.relevance / best_rel,
        }
    };
    // A cosine's vote when scores are scaled (for a semantic candidate, or a lexical one
    // with its own cosine).
    let scaled = |sim: f64| p.semantic_weight * (sim - p.min_similarity).max(0.0) / best_sim;
    let semantic_vote = |rank: usize, sim: f64| match p.method {
        Method::Ranks => p.semantic_weight / (p.k + rank as f64),
        Method::Scores => scaled(sim),
    };
    let mut out: Vec<Fused> = Vec::with_capacity(lexical.len() + semantic.len());
    let mut at: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    for (rank, l) in lexical.iter().take(p.lexical_candidates).enumerate() {
        let meaning = match l.similarity {
            Some(sim) if p.lexical_similarity && p.method == Method::Scores => scaled(sim),
            _ => 0.0,
        };
        at.insert(l.rid, out.len());
        out.push(Fused {
            rid: l.rid,
            score: lexical_vote(rank, l) + meaning,
            matched: MatchedBy::Lexical,
            relevance: Some(l.relevance),
            similarity: l.similarity,
        });
    }
    let semantic = semantic
        .iter()
        .take(p.semantic_candidates)
        .filter(|(_, sim)| *sim >= p.min_similarity);
    for (rank, &(rid, sim)) in semantic.enumerate() {
        let vote = semantic_vote(rank, sim);
        match at.get(&rid) {
            Some(&i) => {
                out[i].score += vote;
                out[i].matched = MatchedBy::Both;
                out[i].similarity = Some(sim);
            }
            None => {
                at.insert(rid, out.len());
                out.push(Fused {
                    rid,
                    score: vote,
                    matched: MatchedBy::Semantic,
                    relevance: None,
                    similarity: Some(sim),
                });
            }
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.rid.cmp(&b.rid)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexical(rid: i64, relevance: f64, coverage: f64) -> Lexical {
        Lexical {
            rid,
            relevance,
            coverage,
            similarity: None,
        }
    }

    #[test]
    fn both_lists_agreeing_wins_and_says_so() {
        let p = Params::default();
        let fused = fuse(
            &[lexical(1, 9.0, 1.0), lexical(2, 7.0, 1.0)],
            &[(2, 0.8), (3, 0.7)],
            &p,
        );
        assert_eq!(fused[0].rid, 2);
        assert_eq!(fused[0].matched, MatchedBy::Both);
        let by = |rid| fused.iter().find(|f| f.rid == rid).unwrap().matched;
        assert_eq!(by(1), MatchedBy::Lexical);
        assert_eq!(by(3), MatchedBy::Semantic);
    }

    #[test]
    fn a_match_of_few_query_words_yields_to_a_near_meaning() {
        let p = Params::default();
        // The best BM25 match holds one word of five; the nearest memory by meaning holds
        // none of them.
        let fused = fuse(&[lexical(1, 12.0, 0.2)], &[(2, 0.55), (3, 0.3)], &p);
        assert_eq!(fused[0].rid, 2);
        // The same match holding every word keeps the top.
        let fused = fuse(&[lexical(1, 12.0, 1.0)], &[(2, 0.55), (3, 0.3)], &p);
        assert_eq!(fused[0].rid, 1);
    }

    #[test]
    fn a_lexical_match_beyond_the_nearest_still_gets_its_meanings_vote() {
        let p = Params::default();
        let near = [(3, 0.6), (4, 0.5)];
        let mut close = lexical(2, 8.0, 1.0);
        close.similarity = Some(0.45);
        let fused = fuse(&[lexical(1, 9.0, 1.0), close], &near, &p);
        assert_eq!(fused[0].rid, 2);
        assert_eq!(fused[0].matched, MatchedBy::Lexical);
        assert_eq!(fused[0].similarity, Some(0.45));
        let off = Params {
            lexical_similarity: false,
            ..p
        };
        assert_eq!(fuse(&[lexical(1, 9.0, 1.0), close], &near, &off)[0].rid, 1);
    }

    #[test]
    fn dissimilar_vectors_get_no_vote() {
        let p = Params::default();
        let fused = fuse(&[], &[(7, 0.05)], &p);
        assert!(fused.is_empty());
    }
}

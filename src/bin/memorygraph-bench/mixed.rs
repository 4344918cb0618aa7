//! A realistic session on one server: stores, searches of every shape, recalls, reads,
//! links and graph walks interleaved, the way an assistant uses its memory while it works.
//! Writes change the index between reads, so no cache sees a still database.

use std::time::Duration;

use serde_json::json;

use crate::client::Client;
use crate::corpus::{self, Rng};
use crate::stats::{Row, row};

/// The operations of the mix and their weights (out of 100).
const MIX: &[(Op, u32)] = &[
    (Op::Store, 20),
    (Op::Relate, 5),
    (Op::Search, 30),
    (Op::Recall, 20),
    (Op::Get, 15),
    (Op::Walk, 10),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Store,
    Relate,
    Search,
    Recall,
    Get,
    Walk,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Store => "mixed: store_memory",
            Op::Relate => "mixed: create_relationship",
            Op::Search => "mixed: search_memories (any shape)",
            Op::Recall => "mixed: recall_memories",
            Op::Get => "mixed: get_memory",
            Op::Walk => "mixed: get_related_memories depth 2",
        }
    }
}

fn pick(rng: &mut Rng) -> Op {
    let mut roll = rng.below(100) as u32;
    for &(op, weight) in MIX {
        if roll < weight {
            return op;
        }
        roll -= weight;
    }
    Op::Search
}

/// A search of a random shape: a common word, two or three words, a phrase, a rare word,
/// a typo, a word in every memory, or a common word with a type filter.
fn search_arguments(rng: &mut Rng, n: usize) -> serde_json::Value {
    match rng.below(8) {
        0 => json!({"query": rng.word()}),
        1 => json!({"query": format!("{} {}", rng.word(), rng.word())}),
        2 => json!({"query": format!("{} {} {}", rng.word(), rng.word(), rng.word())}),
        3 => json!({"query": format!("\"{} {}\"", rng.word(), rng.word())}),
        4 => json!({"query": corpus::rare_word(rng.below(n))}),
        5 => json!({"query": corpus::typo(&corpus::rare_word(rng.below(n)))}),
        6 => json!({"query": corpus::EVERYWHERE}),
        _ => json!({
            "query": rng.word(),
            "memory_types": [corpus::TYPES[rng.below(corpus::TYPES.len())]],
        }),
    }
}

/// Runs `steps` operations of the mix against `client`, whose database holds the memories
/// `ids` (new ones are added to it), and reports each operation's latencies.
pub fn run(client: &mut Client, rng: &mut Rng, ids: &mut Vec<String>, steps: usize) -> Vec<Row> {
    let n = ids.len();
    let mut samples: Vec<(Op, Vec<Duration>)> =
        MIX.iter().map(|&(op, _)| (op, Vec::new())).collect();
    for step in 0..steps {
        let op = pick(rng);
        let took = match op {
            Op::Store => {
                let m = corpus::memory(rng, 2_000_000 + step);
                let (out, took) = client.call("store_memory", m.store_arguments());
                ids.push(out["memory_id"].as_str().expect("stored").to_string());
                took
            }
            Op::Relate => {
                let (a, b) = (rng.below(ids.len()), rng.below(ids.len()));
                if a == b {
                    continue;
                }
                client
                    .call(
                        "create_relationship",
                        json!({"from_memory_id": ids[a], "to_memory_id": ids[b], "relationship_type": "RELATED_TO"}),
                    )
                    .1
            }
            Op::Search => {
                let mut arguments = search_arguments(rng, n);
                arguments["limit"] = json!(10);
                client.call("search_memories", arguments).1
            }
            Op::Recall => {
                let q = format!(
                    "what did we decide about {} and {} in the {}",
                    rng.word(),
                    rng.word(),
                    rng.word()
                );
                client
                    .call("recall_memories", json!({"query": q, "limit": 10}))
                    .1
            }
            Op::Get => {
                let id = &ids[rng.below(ids.len())];
                client.call("get_memory", json!({"memory_id": id})).1
            }
            Op::Walk => {
                let id = &ids[rng.below(ids.len())];
                client
                    .call(
                        "get_related_memories",
                        json!({"memory_id": id, "max_depth": 2}),
                    )
                    .1
            }
        };
        if let Some((_, s)) = samples.iter_mut().find(|(o, _)| *o == op) {
            s.push(took);
        }
    }
    samples
        .into_iter()
        .map(|(op, s)| row(op.name(), n, s, None, "interleaved on one server"))
        .collect()
}

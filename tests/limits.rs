//! Unbounded requests are bounded: `limit`, `max_depth` and answer size are capped, and the
//! cheapest-looking queries over 100,000 memories (one letter, a symbol, a prefix) answer.

mod common;

use std::time::Duration;

use common::{Scratch, Server, store};
use serde_json::json;

const MEMORIES: usize = 100_000;

/// Fills the file with 100,000 memories in one transaction, through SQL so the test does
/// not wait for 100,000 tool calls; the full-text triggers index them as any writer's.
fn fill(db: &std::path::Path) {
    common::on_database(db, async |conn| {
        conn.execute_batch(&format!(
            "BEGIN;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MEMORIES})
             INSERT INTO nodes (id, label, properties)
             SELECT 'bulk-' || i, 'Memory', json_object(
                 'id', 'bulk-' || i, 'type', 'general',
                 'title', 'a note ' || i || ' on cache layer ' || (i % 97),
                 'content', 'a b c x y z: the cache layer ' || (i % 13) || ' keeps a copy of row ' || i,
                 'tags', json_array('t' || (i % 50)), 'importance', 0.5, 'confidence', 0.8,
                 'usage_count', 0, 'created_at', '2026-01-01T00:00:00+00:00',
                 'updated_at', '2026-01-01T00:00:00+00:00')
             FROM n;
             COMMIT;"
        ))
        .await
        .unwrap();
    });
}

#[test]
fn one_letter_queries_over_100k_memories_answer() {
    let scratch = Scratch::new();
    let db = scratch.db();
    assert!(Server::started(&db, &[]).stop().success());
    fill(&db);

    let mut server = Server::started(&db, &[]);
    assert_eq!(
        server.ok("health", json!({}))["database"]["memories"],
        MEMORIES
    );
    for query in ["a", "x", "q", "é", "*", "a*", "\"a\"", "-", "a b c x y z"] {
        for tolerance in ["strict", "normal", "fuzzy"] {
            let result = server.call(
                "search_memories",
                json!({"query": query, "search_tolerance": tolerance, "limit": 1000}),
            );
            assert_eq!(result["isError"], false, "{query}: {result}");
            let text = result["content"][0]["text"].as_str().unwrap();
            assert!(
                text.chars().count() <= 16_000,
                "{query}: answer size is capped"
            );
        }
        let recalled = server.call("recall_memories", json!({"query": query, "limit": 1000}));
        assert_eq!(recalled["isError"], false, "{query}: {recalled}");
    }
    // A one-letter word is still a word: every memory matches. Counted up to 10,000 for the
    // first page, and all of them for a page past that.
    let first = server.ok("search_memories", json!({"query": "a"}));
    assert_eq!(first["total"], 10_000, "{first}");
    assert_eq!(first["total_exact"], false);
    let last = server.ok(
        "search_memories",
        json!({"query": "a", "offset": MEMORIES - 5, "limit": 10}),
    );
    assert_eq!(last["total"], MEMORIES, "a one-letter word is still a word");
    assert_eq!(last["results"].as_array().unwrap().len(), 5);
    assert_eq!(last["has_more"], false);
    assert!(server.stop().success());
}

#[test]
fn limits_depth_and_answer_size_are_capped() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[("MEMORY_MAX_RESPONSE_CHARS", "4000")]);
    let mut ids = Vec::new();
    for i in 0..120 {
        ids.push(store(
            &mut server,
            "general",
            &format!("capped memory {i}"),
            &"long words to fill the answer ".repeat(40),
            json!({}),
        ));
    }
    for pair in ids.windows(2) {
        server.ok(
            "create_relationship",
            json!({"from_memory_id": pair[0], "to_memory_id": pair[1], "relationship_type": "RELATED_TO"}),
        );
    }
    let text = server.err(
        "search_memories",
        json!({"query": "capped", "limit": 1_000_000}),
    );
    assert!(text.contains("limit"), "{text}");
    let result = server.call("search_memories", json!({"query": "capped", "limit": 1000}));
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(
        text.chars().count() <= 4000,
        "answer of {} chars",
        text.len()
    );
    let page = &result["structuredContent"];
    assert!(page["results"].as_array().unwrap().len() < 120);
    assert_eq!(page["has_more"], true);

    let text = server.err(
        "get_related_memories",
        json!({"memory_id": ids[0], "max_depth": 1000}),
    );
    assert!(text.contains("max_depth"), "{text}");
    let related = server.ok(
        "get_related_memories",
        json!({"memory_id": ids[0], "max_depth": 5}),
    );
    assert!(related["related"].as_array().unwrap().len() <= 5);
    let text = server.err("search_memories", json!({"query": "x", "limit": -1}));
    assert!(text.contains("limit"), "{text}");
    assert!(server.silent_for(Duration::from_millis(50)));
    assert!(server.stop().success());
}

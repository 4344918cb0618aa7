//! A database written by MemoryGraph 0.12.4 opens in place and shows everything in it.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Scratch, Server, fixture_json};
use serde_json::{Value, json};

fn open_fixture(scratch: &Scratch) -> Server {
    let db = scratch.fixture("memorygraph-0.12.4.db");
    Server::started(&db, &[("MEMORY_TOOL_PROFILE", "extended")])
}

#[test]
fn every_memory_reads_back_as_memorygraph_wrote_it() {
    let expected = fixture_json("expected.json");
    let scratch = Scratch::new();
    let mut server = open_fixture(&scratch);
    let memories = expected["memories"].as_array().unwrap();
    assert_eq!(memories.len(), 61);
    for want in memories {
        let id = want["id"].as_str().unwrap();
        let got = common::full_memory(&mut server, id);
        for field in [
            "type",
            "title",
            "content",
            "tags",
            "importance",
            "confidence",
            "created_at",
            "updated_at",
        ] {
            assert_eq!(got[field], want[field], "{id}: {field}");
        }
        assert_eq!(
            got.get("summary").cloned().unwrap_or(Value::Null),
            want["summary"],
            "{id}: summary"
        );
        match want["context"].as_object() {
            None => assert!(got.get("context").is_none(), "{id}: no context"),
            Some(context) => {
                for (key, value) in context {
                    assert_eq!(&got["context"][key], value, "{id}: context.{key}");
                }
            }
        }
    }
    for id in expected["deleted_memory_ids"].as_array().unwrap() {
        let text = server.err("get_memory", json!({"memory_id": id}));
        assert!(text.contains("not found"), "{text}");
    }
}

#[test]
fn every_relationship_is_found_from_both_ends() {
    let expected = fixture_json("expected.json");
    let scratch = Scratch::new();
    let mut server = open_fixture(&scratch);
    let mut by_memory: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in expected["relationships"].as_array().unwrap() {
        for end in ["from", "to"] {
            by_memory
                .entry(r[end].as_str().unwrap().to_string())
                .or_default()
                .insert(r["id"].as_str().unwrap().to_string());
        }
    }
    let want_by_id: BTreeMap<&str, &Value> = expected["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    for (memory, want) in &by_memory {
        let got = server.ok("get_memory", json!({"memory_id": memory}))["relationships"].clone();
        let ids: BTreeSet<String> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(&ids, want, "relationships of {memory}");
        for r in got.as_array().unwrap() {
            let w = want_by_id[r["id"].as_str().unwrap()];
            assert_eq!(r["from_id"], w["from"]);
            assert_eq!(r["to_id"], w["to"]);
            assert_eq!(r["type"], w["type"]);
            assert_eq!(r["strength"], w["strength"]);
            assert_eq!(r["confidence"], w["confidence"]);
            assert_eq!(r["context"]["text"].as_str(), w["context_text"].as_str());
        }
        let related = server.ok(
            "get_related_memories",
            json!({"memory_id": memory, "max_depth": 1}),
        );
        assert_eq!(related["total"].as_u64().unwrap() as usize, {
            let mut others = BTreeSet::new();
            for id in want {
                let w = want_by_id[id.as_str()];
                let other = if w["from"] == json!(memory) {
                    &w["to"]
                } else {
                    &w["from"]
                };
                if other != &json!(memory) {
                    others.insert(other.as_str().unwrap().to_string());
                }
            }
            others.len()
        });
    }
}

#[test]
fn counts_match_and_searches_find_the_expected_memories() {
    let expected = fixture_json("expected.json");
    let scratch = Scratch::new();
    let mut server = open_fixture(&scratch);
    let stats = server.ok("get_memory_statistics", json!({}));
    assert_eq!(stats["total_memories"], expected["counts"]["memories"]);
    assert_eq!(
        stats["total_relationships"],
        expected["counts"]["relationships"]
    );
    assert_eq!(
        stats["memories_by_type"],
        expected["counts"]["memories_by_type"]
    );
    assert_eq!(
        stats["relationships_by_type"],
        expected["counts"]["relationships_by_type"]
    );
    let tags_of: BTreeMap<&str, Vec<String>> = expected["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let tags = m["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            (m["id"].as_str().unwrap(), tags)
        })
        .collect();
    for search in expected["searches"].as_array().unwrap() {
        let want: BTreeSet<&str> = search["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let page = server.ok(
            "search_memories",
            json!({"terms": search["words"], "match_mode": "all", "limit": 1000}),
        );
        let got: BTreeSet<&str> = page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        // MemoryGraph matched title, content and summary; we match tags too, so a memory we
        // find beyond its list must carry the word as a tag.
        assert!(
            want.is_subset(&got),
            "{}: missing {:?}",
            search["query"],
            want.difference(&got)
        );
        for extra in got.difference(&want) {
            let tags = &tags_of[extra];
            let words: Vec<String> = search["words"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap().to_lowercase())
                .collect();
            assert!(
                words.iter().any(|w| tags.contains(w)),
                "{}: {extra} is not a match",
                search["query"]
            );
        }
    }
}

#[test]
fn the_file_keeps_memorygraphs_layout_after_we_write() {
    let scratch = Scratch::new();
    let db = scratch.fixture("memorygraph-0.12.4.db");
    let mut server = Server::started(&db, &[]);
    let id = common::store(
        &mut server,
        "solution",
        "  Café résumé 🚀  ",
        "Raise the pool size",
        json!({"tags": [" Redis ", "redis", ""], "context": {"project_path": "/srv/app", "languages": []}}),
    );
    let a = common::store(
        &mut server,
        "problem",
        "Slow queries",
        "p99 is 3 s",
        json!({}),
    );
    server.ok(
        "create_relationship",
        json!({"from_memory_id": id, "to_memory_id": a, "relationship_type": "SOLVES"}),
    );
    assert!(server.stop().success());
    // Read the raw row with a second, independent reader of the same file.
    let mut reader = Server::started(&db, &[]);
    let got = reader.ok("get_memory", json!({"memory_id": id}));
    assert_eq!(got["memory"]["title"], "Café résumé 🚀");
    assert_eq!(got["memory"]["tags"], json!(["redis", "redis"]));
    assert_eq!(got["memory"]["context"]["project_path"], "/srv/app");
    assert_eq!(got["memory"]["context"]["visibility"], "project");
    assert_eq!(got["relationships"][0]["type"], "SOLVES");
    assert_eq!(
        got["relationships"][0]["strength"], 0.9,
        "SOLVES default strength"
    );
}

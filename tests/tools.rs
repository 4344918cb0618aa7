//! Every tool over the real binary: happy paths, error paths, and nothing written on error.

mod common;

use std::collections::BTreeSet;

use common::{Scratch, Server, store};
use serde_json::{Value, json};

fn extended(scratch: &Scratch) -> Server {
    Server::started(&scratch.db(), &[("MEMORY_TOOL_PROFILE", "extended")])
}

fn total(server: &mut Server) -> u64 {
    server.ok("search_memories", json!({}))["total"]
        .as_u64()
        .unwrap()
}

#[test]
fn store_validates_and_normalises() {
    let scratch = Scratch::new();
    let mut server = extended(&scratch);
    let out = server.ok(
        "store_memory",
        json!({"type": "fix", "title": "  Pool size  ", "content": "Raise it to 50", "summary": "",
               "tags": [" Redis ", "CACHE", "  "], "importance": 1}),
    );
    let id = out["memory_id"].as_str().unwrap();
    assert_eq!(out["memory"]["title"], "Pool size");
    assert_eq!(out["memory"]["tags"], json!(["redis", "cache"]));
    assert_eq!(out["memory"]["importance"], 1.0);
    let got = server.ok("get_memory", json!({"memory_id": id}))["memory"].clone();
    assert_eq!(got["confidence"], 0.8);
    assert!(got.get("summary").is_none());

    let cases = [
        (
            json!({"type": "fixx", "title": "t", "content": "c"}),
            "type",
        ),
        (json!({"type": "fix", "title": "", "content": "c"}), "title"),
        (
            json!({"type": "fix", "title": "x".repeat(201), "content": "c"}),
            "title",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "summary": "s".repeat(501)}),
            "summary",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c".repeat(50_001)}),
            "content",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "importance": 1.5}),
            "importance",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "importance": "high"}),
            "importance",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "tags": "redis"}),
            "tags",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "context": {"languages": "rust"}}),
            "languages",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "colour": "red"}),
            "colour",
        ),
        (json!({"title": "t", "content": "c"}), "type"),
    ];
    for (args, field) in cases {
        let text = server.err("store_memory", args.clone());
        assert!(
            text.contains(field),
            "error for {args} should name {field}: {text}"
        );
    }
    assert_eq!(total(&mut server), 1, "failed stores wrote nothing");
}

#[test]
fn get_update_delete() {
    let scratch = Scratch::new();
    let mut server = extended(&scratch);
    let a = store(
        &mut server,
        "problem",
        "Deploys hang",
        "kubectl rollout never ends",
        json!({"summary": "hang"}),
    );
    let b = store(
        &mut server,
        "solution",
        "Set a readiness probe",
        "probe /healthz",
        json!({}),
    );
    server.ok(
        "create_relationship",
        json!({"from_memory_id": b, "to_memory_id": a, "relationship_type": "SOLVES"}),
    );

    let got = server.ok("get_memory", json!({"memory_id": a}));
    assert_eq!(got["memory"]["content"], "kubectl rollout never ends");
    assert_eq!(got["relationships"].as_array().unwrap().len(), 1);
    let bare = server.ok(
        "get_memory",
        json!({"memory_id": a, "include_relationships": false}),
    );
    assert_eq!(bare["relationships"], json!([]));
    assert!(
        server
            .err("get_memory", json!({"memory_id": "nope"}))
            .contains("not found")
    );

    let before = got["memory"]["updated_at"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let upd = server.ok(
        "update_memory",
        json!({"memory_id": a, "importance": 0.9, "tags": ["K8S"], "summary": ""}),
    );
    assert_eq!(
        upd["updated_fields"],
        json!(["summary", "tags", "importance"])
    );
    let after = server.ok("get_memory", json!({"memory_id": a}))["memory"].clone();
    assert_eq!(after["title"], "Deploys hang", "untouched");
    assert_eq!(after["content"], "kubectl rollout never ends", "untouched");
    assert_eq!(after["importance"], 0.9);
    assert_eq!(after["tags"], json!(["k8s"]));
    assert!(after.get("summary").is_none());
    assert!(after["updated_at"].as_str().unwrap() > before.as_str());
    assert!(
        server
            .err("update_memory", json!({"memory_id": a}))
            .contains("Nothing to update")
    );
    assert!(
        server
            .err("update_memory", json!({"memory_id": a, "importance": -1}))
            .contains("importance")
    );
    assert!(
        server
            .err("update_memory", json!({"memory_id": "nope", "title": "x"}))
            .contains("not found")
    );

    let del = server.ok("delete_memory", json!({"memory_id": a}));
    assert_eq!(del["relationships_removed"], 1);
    assert!(
        server
            .err("get_memory", json!({"memory_id": a}))
            .contains("not found")
    );
    assert_eq!(
        server.ok("get_memory", json!({"memory_id": b}))["relationships"],
        json!([])
    );
    assert!(
        server
            .err("delete_memory", json!({"memory_id": a}))
            .contains("not found")
    );
    assert_eq!(
        server.ok("search_memories", json!({"query": "kubectl"}))["total"],
        0,
        "index follows deletes"
    );
}

#[test]
fn search_filters_ranks_and_pages() {
    let scratch = Scratch::new();
    let mut server = extended(&scratch);
    let title_hit = store(
        &mut server,
        "error",
        "Redis timeout on checkout",
        "the cart page fails",
        json!({"importance": 0.2}),
    );
    let body_hit = store(
        &mut server,
        "fix",
        "Checkout fix",
        "we saw a redis timeout under load",
        json!({"importance": 0.9}),
    );
    let one_word = store(
        &mut server,
        "general",
        "Redis notes",
        "eviction policy",
        json!({"tags": ["ops"], "context": {"project_path": "/srv/shop"}}),
    );
    for i in 0..25 {
        store(
            &mut server,
            "general",
            &format!("Filler note {i}"),
            "padding text about caching",
            json!({"importance": (i as f64) / 100.0}),
        );
    }
    let found = server.ok("search_memories", json!({"query": "redis timeout"}));
    let ids: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [title_hit.as_str(), body_hit.as_str(), one_word.as_str()],
        "all words first, title above content"
    );
    assert!(found["results"][0]["snippet"].is_string());
    assert!(
        found["results"][0].get("content").is_none(),
        "lists carry no full content"
    );

    let all = server.ok(
        "search_memories",
        json!({"query": "redis timeout", "match_mode": "all"}),
    );
    assert_eq!(all["total"], 2);
    let terms = server.ok(
        "search_memories",
        json!({"query": "ignored", "terms": ["eviction"]}),
    );
    assert_eq!(terms["total"], 1, "terms win over query: {terms}");
    let typed = server.ok(
        "search_memories",
        json!({"query": "redis", "memory_types": ["fix"]}),
    );
    assert_eq!(typed["total"], 1);
    let tagged = server.ok("search_memories", json!({"tags": ["OPS"]}));
    assert_eq!(tagged["results"][0]["id"], one_word.as_str());
    let project = server.ok("search_memories", json!({"project_path": "/srv/shop"}));
    assert_eq!(project["total"], 1);
    let important = server.ok(
        "search_memories",
        json!({"query": "redis", "min_importance": 0.6}),
    );
    assert_eq!(important["total"], 1);
    let both_tags = server.ok(
        "search_memories",
        json!({"tags": ["ops", "missing"], "tag_match": "all"}),
    );
    assert_eq!(both_tags["total"], 0, "tag_match all needs every tag");
    let future = server.ok(
        "search_memories",
        json!({"query": "redis", "created_after": "2999-01-01"}),
    );
    assert_eq!(future["total"], 0);
    let past = server.ok(
        "search_memories",
        json!({"query": "redis", "created_before": "2999-01-01T00:00:00Z"}),
    );
    assert_eq!(past["total"], 3);
    assert!(
        server
            .err("search_memories", json!({"created_after": "yesterday"}))
            .contains("created_after")
    );
    let stems = server.ok("search_memories", json!({"query": "cache"}));
    assert_eq!(stems["total"], 25, "porter stemming: cache finds caching");
    let fuzzy = server.ok(
        "search_memories",
        json!({"query": "evict", "search_tolerance": "fuzzy"}),
    );
    assert_eq!(fuzzy["total"], 1, "fuzzy matches prefixes");
    for hostile in [
        "\"",
        "*",
        "-redis",
        "col:redis",
        "NEAR(a b)",
        "a AND OR NOT",
        "((",
        "🚀",
        "'; DROP TABLE nodes; --",
    ] {
        server.ok("search_memories", json!({"query": hostile}));
    }

    let mut seen = BTreeSet::new();
    let mut offset = 0;
    loop {
        let page = server.ok(
            "search_memories",
            json!({"query": "padding", "limit": 7, "offset": offset}),
        );
        assert_eq!(page["total"], 25);
        for r in page["results"].as_array().unwrap() {
            assert!(
                seen.insert(r["id"].as_str().unwrap().to_string()),
                "pages overlap"
            );
        }
        match page["next_offset"].as_u64() {
            Some(next) => {
                assert_eq!(page["has_more"], true);
                offset = next;
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 25, "the pages cover every result");
    assert!(
        server
            .err("search_memories", json!({"limit": 0}))
            .contains("limit")
    );
    assert!(
        server
            .err("search_memories", json!({"limit": 1001}))
            .contains("limit")
    );
    assert!(
        server
            .err("search_memories", json!({"offset": -1}))
            .contains("offset")
    );
    assert!(
        server
            .err("search_memories", json!({"search_tolerance": "loose"}))
            .contains("search_tolerance")
    );

    let recalled = server.ok(
        "recall_memories",
        json!({"query": "why does checkout time out with redis"}),
    );
    assert_eq!(recalled["limit"], 20);
    assert!(
        recalled["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == title_hit.as_str())
    );
}

#[test]
fn answers_stay_within_the_size_limit() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[("MEMORY_MAX_RESPONSE_CHARS", "4000")]);
    for i in 0..40 {
        store(
            &mut server,
            "general",
            &format!("Long note number {i} about the deployment pipeline"),
            "pipeline",
            json!({"summary": "s".repeat(200)}),
        );
    }
    let result = server.call("search_memories", json!({"query": "pipeline", "limit": 40}));
    let size = result["content"][0]["text"].as_str().unwrap().len()
        + result["structuredContent"].to_string().len();
    assert!(size <= 4000, "answer of {size} characters");
    let page = &result["structuredContent"];
    let shown = page["results"].as_array().unwrap().len() as u64;
    assert!(shown < 40);
    assert_eq!(page["next_offset"], shown);
    assert!(page["note"].as_str().unwrap().contains("offset="));
}

#[test]
fn relationships_cycles_and_traversal() {
    let scratch = Scratch::new();
    let mut server = extended(&scratch);
    let ids: Vec<String> = (0..5)
        .map(|i| store(&mut server, "general", &format!("Node {i}"), "x", json!({})))
        .collect();
    let link = |server: &mut Server, a: usize, b: usize, t: &str| {
        server.call(
            "create_relationship",
            json!({"from_memory_id": ids[a], "to_memory_id": ids[b], "relationship_type": t}),
        )
    };
    // A chain 0 → 1 → 2 → 3 of DEPENDS_ON, and 3 SIMILAR_TO 4.
    for (a, b) in [(0, 1), (1, 2), (2, 3)] {
        assert_eq!(link(&mut server, a, b, "DEPENDS_ON")["isError"], false);
    }
    let made = link(&mut server, 3, 4, "similar_to");
    assert_eq!(
        made["structuredContent"]["relationship"]["strength"], 0.6,
        "per-type default"
    );
    assert_eq!(
        made["structuredContent"]["relationship"]["confidence"], 0.7,
        "per-type default"
    );

    let cycle = link(&mut server, 3, 0, "DEPENDS_ON");
    assert_eq!(cycle["isError"], true);
    assert!(
        cycle["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("cycle")
    );
    assert_eq!(
        link(&mut server, 3, 0, "FOLLOWS")["isError"],
        false,
        "other types are separate graphs"
    );
    assert_eq!(
        link(&mut server, 4, 3, "SIMILAR_TO")["structuredContent"]["created"],
        false,
        "symmetric: same link"
    );
    assert_eq!(
        link(&mut server, 4, 3, "RELATED_TO")["isError"],
        false,
        "symmetric is never a cycle"
    );
    assert_eq!(
        link(&mut server, 1, 1, "DEPENDS_ON")["isError"],
        true,
        "self-loop"
    );
    assert!(
        server.err("create_relationship", json!({"from_memory_id": ids[0], "to_memory_id": ids[1], "relationship_type": "LIKES"}))
            .contains("relationship_type")
    );
    assert!(
        server.err("create_relationship", json!({"from_memory_id": ids[0], "to_memory_id": "ghost", "relationship_type": "CAUSES"}))
            .contains("not found")
    );
    assert!(
        server.err("create_relationship", json!({"from_memory_id": ids[0], "to_memory_id": ids[1], "relationship_type": "CAUSES", "strength": 2}))
            .contains("strength")
    );

    let depth = |server: &mut Server, d: u64, types: Value| {
        let out = server.ok(
            "get_related_memories",
            json!({"memory_id": ids[0], "max_depth": d, "relationship_types": types}),
        );
        out["related"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["memory"]["id"].as_str().unwrap().to_string(),
                    r["depth"].as_u64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let one = depth(&mut server, 1, json!(["DEPENDS_ON"]));
    assert_eq!(one, vec![(ids[1].clone(), 1)]);
    let three = depth(&mut server, 3, json!(["DEPENDS_ON"]));
    assert_eq!(
        three,
        vec![
            (ids[1].clone(), 1),
            (ids[2].clone(), 2),
            (ids[3].clone(), 3)
        ]
    );
    let everything = depth(&mut server, 5, Value::Null);
    assert_eq!(
        everything.len(),
        4,
        "each memory once, at its shortest distance: {everything:?}"
    );
    assert!(
        everything.contains(&(ids[3].clone(), 1)),
        "via FOLLOWS 3 → 0"
    );
    assert!(
        server
            .err(
                "get_related_memories",
                json!({"memory_id": ids[0], "max_depth": 6})
            )
            .contains("max_depth")
    );

    let mut permissive = Server::started(&scratch.db(), &[("MEMORY_ALLOW_CYCLES", "true")]);
    let ok = permissive.call("create_relationship", json!({"from_memory_id": ids[3], "to_memory_id": ids[0], "relationship_type": "DEPENDS_ON"}));
    assert_eq!(
        ok["isError"], false,
        "cycles allowed by MEMORY_ALLOW_CYCLES"
    );
}

#[test]
fn relationship_context_search_and_contextual_search() {
    let scratch = Scratch::new();
    let mut server = extended(&scratch);
    let fix = store(
        &mut server,
        "fix",
        "Add jittered backoff",
        "retry with jitter",
        json!({}),
    );
    let bug = store(
        &mut server,
        "error",
        "Retry storm in the billing service",
        "thundering herd",
        json!({}),
    );
    let far = store(
        &mut server,
        "general",
        "Unrelated retry notes",
        "retry everything",
        json!({}),
    );
    server.ok(
        "create_relationship",
        json!({"from_memory_id": fix, "to_memory_id": bug, "relationship_type": "SOLVES",
               "context": "partially fixes it in the billing service, only when the cache is cold; verified by load test"}),
    );
    let found = server.ok(
        "search_relationships_by_context",
        json!({"scope": "partial"}),
    );
    assert_eq!(found["total"], 1);
    assert_eq!(
        found["relationships"][0]["context"]["components"],
        json!(["billing service"])
    );
    assert_eq!(
        server.ok(
            "search_relationships_by_context",
            json!({"conditions": ["cache"]})
        )["total"],
        1
    );
    assert_eq!(
        server.ok(
            "search_relationships_by_context",
            json!({"has_evidence": true})
        )["total"],
        1
    );
    assert_eq!(
        server.ok("search_relationships_by_context", json!({"scope": "full"}))["total"],
        0
    );

    let around = server.ok(
        "contextual_search",
        json!({"memory_id": fix, "query": "retry"}),
    );
    let ids: Vec<&str> = around["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [bug.as_str()], "only the neighbourhood, not {far}");
}

/// The context filters follow the documented rule: every word given must occur inside
/// the extracted values (one matching word is not enough), and a version number in the
/// context stays whole, so the documented `temporal: "v2.1"` finds "since v2.1".
#[test]
fn relationship_context_filters_match_every_word_and_keep_versions() {
    let scratch = Scratch::new();
    let mut server = extended(&scratch);
    let ids: Vec<String> = (0..4)
        .map(|i| {
            store(
                &mut server,
                "general",
                &format!("Linked {i}"),
                "x",
                json!({}),
            )
        })
        .collect();
    let link = |server: &mut Server, from: usize, to: usize, context: &str| {
        server.ok(
            "create_relationship",
            json!({"from_memory_id": ids[from], "to_memory_id": ids[to],
                   "relationship_type": "SOLVES", "context": context}),
        )
    };
    let warm = link(
        &mut server,
        0,
        1,
        "fixes it when the cache is warm, verified by load test, since v2.1",
    );
    assert_eq!(
        warm["relationship"]["context"]["temporal"], "v2.1",
        "{warm}"
    );
    link(
        &mut server,
        2,
        3,
        "fixes it when the queue is empty, tested with 2.1.3 replay; since 2.1.3.",
    );
    let found = |server: &mut Server, args: Value| -> u64 {
        server.ok("search_relationships_by_context", args)["total"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(found(&mut server, json!({"temporal": "v2.1"})), 1);
    assert_eq!(found(&mut server, json!({"temporal": "2.1.3"})), 1);
    assert_eq!(found(&mut server, json!({"temporal": "2.1"})), 2);
    assert_eq!(found(&mut server, json!({"temporal": "v2.1 beta"})), 0);
    // Every word, in any order, wherever it stands in the values.
    assert_eq!(found(&mut server, json!({"conditions": ["warm cache"]})), 1);
    assert_eq!(
        found(&mut server, json!({"conditions": ["cache", "queue"]})),
        0
    );
    assert_eq!(
        found(&mut server, json!({"conditions": ["cache", "warm"]})),
        1
    );
    assert_eq!(found(&mut server, json!({"conditions": ["is"]})), 2);
    assert_eq!(
        found(&mut server, json!({"evidence": ["load", "replay"]})),
        0
    );
    assert_eq!(found(&mut server, json!({"evidence": ["2.1.3 replay"]})), 1);
    // And every filter.
    assert_eq!(
        found(
            &mut server,
            json!({"conditions": ["queue"], "temporal": "v2.1"})
        ),
        0
    );
    assert!(server.stop().success());
}

#[test]
fn activity_statistics_health_sync_and_restart() {
    let scratch = Scratch::new();
    let mut server = extended(&scratch);
    let p = store(
        &mut server,
        "problem",
        "Flaky test",
        "sometimes fails",
        json!({"context": {"project_path": "/a"}}),
    );
    store(
        &mut server,
        "problem",
        "Slow build",
        "takes 20 minutes",
        json!({}),
    );
    let f = store(
        &mut server,
        "fix",
        "Retry the flaky test",
        "pytest-rerunfailures",
        json!({}),
    );
    server.ok(
        "create_relationship",
        json!({"from_memory_id": f, "to_memory_id": p, "relationship_type": "SOLVES"}),
    );

    let activity = server.ok("get_recent_activity", json!({}));
    assert_eq!(activity["total_count"], 3);
    assert_eq!(
        activity["memories_by_type"],
        json!({"fix": 1, "problem": 2})
    );
    let unresolved: Vec<&str> = activity["unresolved_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().unwrap())
        .collect();
    assert_eq!(unresolved, ["Slow build"]);
    assert_eq!(
        server.ok("get_recent_activity", json!({"project": "/a"}))["total_count"],
        1
    );
    assert!(
        server
            .err("get_recent_activity", json!({"days": 0}))
            .contains("days")
    );

    let stats = server.ok("get_memory_statistics", json!({}));
    assert_eq!(stats["total_memories"], 3);
    assert_eq!(stats["relationships_by_category"], json!({"solution": 1}));

    let health = server.ok("health", json!({}));
    assert_eq!(health["mode"], "local");
    assert_eq!(health["database"]["memories"], 3);
    assert_eq!(health["database"]["full_text_indexed"], 3);
    assert_eq!(
        health["database"]["schema_version"],
        health["database"]["supported_schema_version"]
    );
    let sync = server.ok("sync", json!({}));
    assert_eq!(sync["synced"], false);
    assert!(
        sync["message"]
            .as_str()
            .unwrap()
            .contains("nothing to sync")
    );
    assert!(server.stop().success());

    let mut again = extended(&scratch);
    assert_eq!(
        again.ok("get_memory_statistics", json!({}))["total_memories"],
        3,
        "a restart finds the data"
    );
    assert_eq!(
        again.ok("search_memories", json!({"query": "flaky"}))["total"],
        2
    );
}

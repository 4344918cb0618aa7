//! A file written by memorygraph stays readable and writable by MemoryGraph 0.12.4 itself,
//! and what MemoryGraph writes into it is found by our search (the index triggers run
//! inside its SQLite too).
//!
//! Needs MemoryGraph: `MEMORYGRAPH_PY_BIN` names its `memorygraph` executable, or the test
//! installs it into a virtual environment under `target/` (see `common::tools`).

mod common;

use std::process::Command;

use common::{Scratch, Server, on_database, store};
use serde_json::{Value, json};

/// The file's page size and which of MemoryGraph's indexes on `nodes` exist.
fn layout(db: &std::path::Path) -> (i64, Vec<String>) {
    on_database(db, async |conn| {
        let mut rows = conn
            .query("SELECT page_size FROM pragma_page_size()", ())
            .await
            .unwrap();
        let page_size: i64 = rows.next().await.unwrap().unwrap().get(0).unwrap();
        let mut rows = conn
            .query(
                "SELECT name FROM sqlite_master WHERE type = 'index'
                   AND name IN ('idx_nodes_label', 'idx_nodes_memory', 'idx_nodes_created') ORDER BY name",
                (),
            )
            .await
            .unwrap();
        let mut names = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            names.push(row.get::<String>(0).unwrap());
        }
        (page_size, names)
    })
}

fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn first_uuid(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .find(|w| w.len() == 36 && w.matches('-').count() == 4)
        .map(str::to_string)
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs MemoryGraph 0.12.4 from PyPI; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn memorygraph_reads_and_writes_our_file() {
    let python_bin = common::tools::memorygraph_py();
    let scratch = Scratch::new();
    let db = scratch.db();

    let mut ours = Server::started(&db, &[]);
    let problem = store(
        &mut ours,
        "problem",
        "Café checkout 🚀 times out",
        "The checkout page hangs on the payment call.\nLine two with \"quotes\" and a \\ backslash.",
        json!({"summary": "payment hangs", "tags": ["Payments", "latency"], "importance": 0.7,
               "context": {"project_path": "/srv/shop", "languages": ["python"], "additional_metadata": {"ticket": "OPS-1"}}}),
    );
    let fix = store(
        &mut ours,
        "fix",
        "Set a payment timeout",
        "timeout=5s with retries",
        json!({}),
    );
    ours.ok("create_relationship", json!({"from_memory_id": fix, "to_memory_id": problem, "relationship_type": "SOLVES", "context": "fully fixes it"}));
    ours.ok(
        "update_memory",
        json!({"memory_id": fix, "importance": 0.9}),
    );
    assert!(ours.stop().success());
    // A new file has 16 KiB pages and none of MemoryGraph's unread indexes.
    assert_eq!(layout(&db), (16384, vec![]));

    let mut cmd = Command::new(&python_bin);
    cmd.env("MEMORY_BACKEND", "sqlite")
        .env("MEMORY_SQLITE_PATH", &db)
        .env("MEMORY_TOOL_PROFILE", "extended")
        .env("HOME", scratch.dir.path())
        .env_remove("MEMORY_TURSO_PATH");
    let mut theirs = Server::spawn(cmd);
    theirs.initialize("2025-06-18");
    let got = theirs.call("get_memory", json!({"memory_id": problem}));
    assert_ne!(got["isError"], json!(true), "{got}");
    let text = text_of(&got);
    assert!(text.contains("Café checkout 🚀 times out"), "{text}");
    assert!(text.contains("backslash"), "{text}");
    let related = text_of(&theirs.call("get_related_memories", json!({"memory_id": problem})));
    assert!(
        related.contains(&fix) || related.contains("Set a payment timeout"),
        "{related}"
    );
    let found = text_of(&theirs.call("search_memories", json!({"query": "payment"})));
    assert!(found.contains("Set a payment timeout"), "{found}");
    let stored = theirs.call(
        "store_memory",
        json!({"type": "solution", "title": "Written by MemoryGraph", "content": "zeppelin keyword"}),
    );
    let theirs_id = first_uuid(&text_of(&stored)).unwrap_or_else(|| panic!("no id in {stored}"));
    let _ = theirs.stop();
    // MemoryGraph makes its indexes again when it opens the file; that is all it needs.
    assert_eq!(layout(&db).1.len(), 3, "MemoryGraph recreated its indexes");

    let mut again = Server::started(&db, &[]);
    let read = again.ok("get_memory", json!({"memory_id": theirs_id}));
    assert_eq!(read["memory"]["title"], "Written by MemoryGraph");
    let search = again.ok("search_memories", json!({"query": "zeppelin"}));
    assert_eq!(search["total"], 1, "the index saw MemoryGraph's write");
    assert_eq!(
        again.ok("health", json!({}))["database"]["full_text_indexed"],
        3
    );
}

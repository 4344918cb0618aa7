//! `memorygraph consolidate` over a file imported with known groups: near-duplicates, a
//! chain of versions, old memories never used, a relationship whose end is gone. The
//! report names exactly those, changes nothing, and bad bounds are refused.

mod common;

use common::run::run;
use common::{Scratch, on_database};
use serde_json::{Value, json};

fn memory(n: u32, title: &str, content: &str, at: &str, importance: f64, used: i64) -> Value {
    json!({"id": format!("00000000-0000-4000-8000-{n:012}"), "type": "general",
           "title": title, "content": content, "tags": [], "importance": importance,
           "confidence": 0.8, "usage_count": used, "created_at": at, "updated_at": at})
}

fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[test]
fn the_report_names_what_could_be_merged_retired_or_mended_and_changes_nothing() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let now = "2026-12-01T12:00:00+00:00";
    let old = "2025-01-01T12:00:00+00:00";
    let pool = "the connection pool of 10 was too small for the eight workers; raised it to 40";
    let memories = vec![
        memory(1, "Raise the pool size", pool, now, 0.5, 1),
        memory(
            2,
            "Raise the pool size",
            &pool.replace("the eight", "our eight"),
            now,
            0.5,
            1,
        ),
        memory(
            3,
            "Raise the pool size",
            &pool.replace("40", "48"),
            now,
            0.5,
            1,
        ),
        memory(4, "Deploy v1", "deploy with the first script", now, 0.5, 1),
        memory(5, "Deploy v2", "deploy with the second script", now, 0.5, 1),
        memory(6, "Deploy v3", "deploy with the third script", now, 0.5, 1),
        memory(7, "Old scratch note", "a note nobody read", old, 0.1, 0),
        memory(8, "Old but important", "a rule that matters", old, 0.9, 0),
        memory(9, "Old and read", "read many times", old, 0.1, 3),
        memory(
            10,
            "New scratch note",
            "a note nobody read yet",
            now,
            0.1,
            0,
        ),
    ];
    let link = |from: u32, to: u32| {
        json!({"id": format!("r-{from}-{to}"), "from_memory_id": id(from), "to_memory_id": id(to),
               "type": "REPLACES", "properties": {"strength": 0.9, "confidence": 0.9}})
    };
    let export = json!({"format_version": "2.0", "export_version": "1.0", "backend_type": "sqlite",
        "memory_count": memories.len(), "relationship_count": 2,
        "memories": memories, "relationships": [link(6, 5), link(5, 4)]});
    let file = scratch.dir.path().join("known.json");
    std::fs::write(&file, export.to_string()).unwrap();
    run(&db, &["import", "--input", file.to_str().unwrap()]).ok();
    on_database(&db, async |conn| {
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO relationships (id, from_id, to_id, rel_type, properties)
             VALUES ('r-gone', '00000000-0000-4000-8000-000000000008', 'gone', 'RELATED_TO', '{}');",
        )
        .await
        .unwrap();
    });
    let changes_before = run(&db, &["health", "--json"]).ok().json()["database"]["changes"].clone();

    let report = run(&db, &["consolidate", "--json"]).ok().json();
    let ids = |list: &Value| -> Vec<String> {
        let mut ids: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        report["near_duplicates"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(
        ids(&report["near_duplicates"][0]),
        vec![id(1), id(2), id(3)]
    );
    let chain: Vec<&str> = report["version_chains"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(chain, vec![id(6), id(5), id(4)], "newest first");
    assert_eq!(report["version_chains"].as_array().unwrap().len(), 1);
    assert_eq!(ids(&report["unused"]), vec![id(7)]);
    let dangling = report["dangling_relationships"].as_array().unwrap();
    assert_eq!(dangling.len(), 1, "{report}");
    assert_eq!(dangling[0]["id"], "r-gone");
    assert_eq!(dangling[0]["missing"], json!(["to"]));

    // A looser bound finds more; the text says the same in words.
    let looser = run(
        &db,
        &[
            "consolidate",
            "--json",
            "--days",
            "0",
            "--max-importance",
            "0.5",
        ],
    )
    .ok()
    .json();
    assert!(ids(&looser["unused"]).contains(&id(10)), "{looser}");
    let text = run(&db, &["consolidate"]).ok().stdout;
    for needle in [
        "Near-duplicates: 1 group",
        "Versions: 1 chain",
        "Unused: 1 memory",
        "Dangling: 1 relationship",
        "Old scratch note",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // It read only; bad bounds are refused and change nothing either.
    for bad in [["--max-importance", "2"], ["--days", "-1"]] {
        let refused = run(&db, &["consolidate", bad[0], bad[1]]);
        assert_eq!(refused.code, 2, "{bad:?}: {}", refused.stderr);
    }
    let after = run(&db, &["health", "--json"]).ok().json();
    assert_eq!(after["database"]["changes"], changes_before);
    assert_eq!(after["database"]["memories"], 10);
}

//! Searches with more matches than are ranked exactly (1,000; docs/performance.md): totals
//! stay exact, following `next_offset` visits every match once, the memories that deserve
//! the top are there, and filters apply. Queries with fewer matches are ranked exactly as
//! FTS5's own `bm25()` ranks them, checked against the file with SQLite's function.

mod common;

use std::collections::HashSet;

use common::{Scratch, Server, on_database};
use serde_json::{Value, json};

/// Memories stored; every one holds "harbor", all but every tenth "lantern".
const MEMORIES: usize = 1300;
const TYPES: [&str; 3] = ["solution", "problem", "general"];

/// Memory `i`: its type, title, content and tags.
fn memory(i: usize) -> Value {
    let mut content = format!("entry {i} moored at the harbor");
    if !i.is_multiple_of(10) {
        content.push_str(" under a lantern");
    }
    if i.is_multiple_of(13) {
        content.push_str(" beside the lighthouse keeper");
    }
    if i == 500 {
        content.push_str(" where a quokka waited");
    }
    let title = if i == 7 {
        "lantern lantern keeper".to_string()
    } else {
        format!("entry {i}")
    };
    json!({
        "type": TYPES[i % 3],
        "title": title,
        "content": content,
        "tags": if i.is_multiple_of(4) { json!(["dock"]) } else { json!(["pier"]) },
    })
}

fn stored(server: &mut Server) -> Vec<String> {
    (0..MEMORIES)
        .map(|i| {
            server.ok("store_memory", memory(i))["memory_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Follows `next_offset` from 0; returns the ids in order and the total.
fn every_page(server: &mut Server, tool: &str, mut args: Value) -> (Vec<String>, u64) {
    let mut seen = Vec::new();
    let mut total = None;
    args["limit"] = json!(100);
    for _ in 0..100 {
        let page = server.ok(tool, args.clone());
        let this = page["total"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(this), this, "{tool}: total moved");
        for hit in page["results"].as_array().unwrap() {
            seen.push(hit["id"].as_str().unwrap().to_string());
        }
        match page["next_offset"].as_u64() {
            Some(next) => args["offset"] = json!(next),
            None => return (seen, total.unwrap()),
        }
    }
    panic!("{tool}: paging never ended");
}

fn assert_each_once(what: &str, seen: &[String], expected: &HashSet<String>) {
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "{what}: a memory came twice");
    assert_eq!(
        &unique, expected,
        "{what}: not exactly the matching memories"
    );
}

fn first_id(page: &Value) -> &str {
    page["results"][0]["id"].as_str().unwrap()
}

#[test]
fn many_matches_keep_exact_totals_complete_pages_and_the_best_first() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let ids = stored(&mut server);
    let which = |keep: &dyn Fn(usize) -> bool| -> HashSet<String> {
        (0..MEMORIES)
            .filter(|&i| keep(i))
            .map(|i| ids[i].clone())
            .collect()
    };

    // A word in every memory, and one in nine of ten: pages from the ranked candidates
    // and then the rest, newest first, each memory once.
    let (seen, total) = every_page(&mut server, "search_memories", json!({"query": "harbor"}));
    assert_eq!(total, MEMORIES as u64);
    assert_each_once("harbor", &seen, &which(&|_| true));
    let lantern = which(&|i| !i.is_multiple_of(10));
    let (seen, total) = every_page(&mut server, "search_memories", json!({"query": "lantern"}));
    assert_eq!(total, lantern.len() as u64);
    assert_each_once("lantern", &seen, &lantern);

    // The one memory with the word twice in its title outranks content matches.
    let page = server.ok("search_memories", json!({"query": "lantern", "limit": 5}));
    assert_eq!(first_id(&page), ids[7], "{page}");
    // A rare word with a common one: the memory with the rare one comes first.
    let page = server.ok(
        "search_memories",
        json!({"query": "quokka lantern", "limit": 5}),
    );
    assert_eq!(first_id(&page), ids[500], "{page}");
    let quokka_or_lantern = which(&|i| !i.is_multiple_of(10) || i == 500);
    assert_eq!(page["total"], json!(quokka_or_lantern.len()));
    let page = server.ok(
        "recall_memories",
        json!({"query": "the lantern keeper", "limit": 5}),
    );
    assert_eq!(first_id(&page), ids[7], "{page}");
    let lantern_or_keeper = which(&|i| !i.is_multiple_of(10) || i.is_multiple_of(13));
    assert_eq!(page["total"], json!(lantern_or_keeper.len()));

    // Filters on an indexed field (type) and on another (tags), through every page.
    let solutions = which(&|i| !i.is_multiple_of(10) && i.is_multiple_of(3));
    let (seen, total) = every_page(
        &mut server,
        "search_memories",
        json!({"query": "lantern", "memory_types": ["solution"]}),
    );
    assert_eq!(total, solutions.len() as u64);
    assert_each_once("lantern among solutions", &seen, &solutions);
    let docks = which(&|i| i.is_multiple_of(4));
    let (seen, total) = every_page(
        &mut server,
        "search_memories",
        json!({"query": "harbor", "tags": ["dock"]}),
    );
    assert_eq!(total, docks.len() as u64);
    assert_each_once("harbor at the dock", &seen, &docks);
    // Every term required: the intersection, counted exactly.
    let (seen, total) = every_page(
        &mut server,
        "search_memories",
        json!({"query": "harbor lantern", "match_mode": "all"}),
    );
    assert_eq!(total, lantern.len() as u64);
    assert_each_once("harbor and lantern", &seen, &lantern);

    // A store and a delete move the totals at once (cached frequencies follow writes).
    let id = server.ok(
        "store_memory",
        json!({"type": "general", "title": "late lantern", "content": "one more"}),
    )["memory_id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = server.ok("search_memories", json!({"query": "lantern", "limit": 1}));
    assert_eq!(page["total"], json!(lantern.len() + 1));
    server.ok("delete_memory", json!({"memory_id": id}));
    server.ok("delete_memory", json!({"memory_id": ids[1]}));
    let page = server.ok("search_memories", json!({"query": "lantern", "limit": 1}));
    assert_eq!(page["total"], json!(lantern.len() - 1));
    server.stop();
}

#[test]
fn fewer_matches_rank_exactly_as_fts5_bm25() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    stored(&mut server);
    let queries = [
        json!({"query": "keeper"}),
        json!({"query": "lighthouse quokka", "match_mode": "any"}),
        json!({"query": "keeper entry", "match_mode": "all"}),
        json!({"query": "\"lighthouse keeper\""}),
        json!({"query": "lantern keeper", "match_mode": "all"}),
    ];
    let mut answers = Vec::new();
    for q in &queries {
        let mut args = q.clone();
        args["limit"] = json!(20);
        answers.push(server.ok("search_memories", args));
    }
    server.stop();
    let expressions = [
        r#""keeper""#,
        r#""lighthouse" OR "quokka""#,
        r#""keeper" AND "entry""#,
        r#""lighthouse keeper""#,
        r#""lantern" AND "keeper""#,
    ];
    for (answer, expression) in answers.iter().zip(expressions) {
        let expected: Vec<(String, f64)> = on_database(&scratch.db(), async |conn| {
            let mut rows = conn
                .query(
                    "SELECT n.id, -bm25(memory_fts, 10.0, 4.0, 4.0, 1.0) AS rel
                     FROM memory_fts JOIN nodes n ON n.rowid = memory_fts.rowid
                     WHERE memory_fts MATCH ?1 ORDER BY rel DESC, memory_fts.rowid LIMIT 20",
                    [expression],
                )
                .await
                .unwrap();
            let mut out = Vec::new();
            while let Some(row) = rows.next().await.unwrap() {
                out.push((row.get::<String>(0).unwrap(), row.get::<f64>(1).unwrap()));
            }
            out
        });
        let got: Vec<(String, f64)> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["id"].as_str().unwrap().to_string(),
                    h["relevance"].as_f64().unwrap(),
                )
            })
            .collect();
        assert!(!expected.is_empty(), "{expression} matches nothing");
        assert_eq!(
            got.iter().map(|g| &g.0).collect::<Vec<_>>(),
            expected.iter().map(|e| &e.0).collect::<Vec<_>>(),
            "{expression}: not BM25's order"
        );
        for ((_, g), (_, e)) in got.iter().zip(&expected) {
            assert!(
                (g - e).abs() <= e.abs() * 0.006,
                "{expression}: relevance {g} vs bm25 {e}"
            );
        }
    }
}

/// Past 10,000 matches (docs/tools.md) a page near the start says "at least 10,000" instead
/// of counting every match; pages still reach every match once, and the page that reaches
/// the end counts them exactly.
#[test]
fn past_ten_thousand_matches_the_total_is_a_lower_bound_and_paging_still_ends() {
    const MANY: usize = 10_100;
    let scratch = Scratch::new();
    let db = scratch.db();
    let at = "2026-11-01T12:00:00+00:00";
    let memories: Vec<Value> = (0..MANY)
        .map(|i| {
            let word = if i % 2 == 0 { "lantern" } else { "keeper" };
            json!({"id": format!("00000000-0000-4000-8000-{i:012}"), "type": TYPES[i % 3],
                   "title": format!("entry {i}"), "content": format!("moored at the harbor by the {word}"),
                   "tags": [], "importance": 0.5, "created_at": at, "updated_at": at})
        })
        .collect();
    let export = json!({"format_version": "2.0", "export_version": "1.0", "backend_type": "sqlite",
        "memory_count": MANY, "relationship_count": 0, "memories": memories, "relationships": []});
    let file = scratch.dir.path().join("many.json");
    std::fs::write(&file, export.to_string()).unwrap();
    common::run::run(&db, &["import", "--input", file.to_str().unwrap()]).ok();
    let mut server = Server::started(&db, &[]);

    for (tool, args) in [
        (
            "search_memories",
            json!({"query": "lantern keeper", "match_mode": "any", "limit": 5}),
        ),
        (
            "recall_memories",
            json!({"query": "lantern keeper", "limit": 5}),
        ),
    ] {
        let answer = server.call(tool, args);
        let page = &answer["structuredContent"];
        assert_eq!(page["total"], 10_000, "{tool}: {page}");
        assert_eq!(page["total_exact"], false, "{tool}");
        assert_eq!(page["has_more"], true, "{tool}");
        let text = answer["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("at least 10000 memories"), "{tool}: {text}");
    }

    // Fewer matches than that, through a filter: exact, and no `total_exact` at all.
    let page = server.ok(
        "search_memories",
        json!({"query": "lantern keeper", "match_mode": "any", "memory_types": ["solution"], "limit": 5}),
    );
    assert_eq!(page["total"], (MANY / 3 + 1) as u64, "{page}");
    assert!(page.get("total_exact").is_none(), "{page}");

    // Every page from the first: each match once; the page that reaches the end knows the
    // exact count and ends the paging.
    let mut seen = HashSet::new();
    let mut args = json!({"query": "lantern keeper", "match_mode": "any", "limit": 500});
    let last = loop {
        let page = server.ok("search_memories", args.clone());
        let results = page["results"].as_array().unwrap();
        for hit in results {
            assert!(
                seen.insert(hit["id"].as_str().unwrap().to_string()),
                "a memory came twice"
            );
        }
        match page["next_offset"].as_u64() {
            Some(next) => {
                assert!(page["total"].as_u64().unwrap() > next, "{page}");
                args["offset"] = json!(next);
            }
            None => break page,
        }
    };
    assert_eq!(seen.len(), MANY);
    assert_eq!(last["total"], MANY as u64);
    assert!(last.get("total_exact").is_none(), "{last}");
    assert_eq!(last["has_more"], false);

    // A page asked for past the bound counts exactly.
    let page = server.ok(
        "search_memories",
        json!({"query": "lantern keeper", "match_mode": "any", "offset": 10_095, "limit": 10}),
    );
    assert_eq!(page["total"], MANY as u64);
    assert_eq!(page["results"].as_array().unwrap().len(), 5);
    server.stop();
}

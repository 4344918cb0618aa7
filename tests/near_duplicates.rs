//! Near-duplicates over stdio: a store that nearly repeats a stored memory is stored and its
//! answer names the close ones (or links them, or says nothing, as MEMORY_NEAR_DUPLICATES
//! asks); recall folds them into one hit that names the others; a bad setting is refused.

mod common;

use common::{Scratch, Server, run};
use serde_json::{Value, json};

const POOL: &str = "the connection pool of 10 was too small for the eight workers; raised it to 40";

fn store(server: &mut Server, title: &str, content: &str, extra: Value) -> Value {
    let mut args = json!({"type": "solution", "title": title, "content": content});
    args.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    server.ok("store_memory", args)
}

#[test]
fn a_near_duplicate_is_stored_named_and_folded_in_recall() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let first = store(&mut server, "Raise the pool size", POOL, json!({}));
    assert!(first.get("similar").is_none(), "{first}");
    // The same lesson in nearly the same words: stored, and the first one named.
    let again = store(
        &mut server,
        "Raise the pool size",
        "the connection pool of 10 was too small for our eight workers; raised it to 40",
        json!({}),
    );
    assert_eq!(again["duplicate"], false);
    let similar = again["similar"].as_array().expect("the close memory named");
    assert_eq!(similar.len(), 1, "{again}");
    assert_eq!(similar[0]["id"], first["memory_id"]);
    assert!(similar[0]["similarity"].as_f64().unwrap() >= 0.8);
    // Something else, and an identical store, name nothing.
    let other = store(
        &mut server,
        "Pin the worker image",
        "pinning the image by digest fixed the crash on start",
        json!({}),
    );
    assert!(other.get("similar").is_none(), "{other}");
    let same = store(&mut server, "Raise the pool size", POOL, json!({}));
    assert_eq!(same["duplicate"], true);
    assert!(same.get("similar").is_none(), "{same}");
    // A new version is not told about the memory it replaces.
    let newer = store(
        &mut server,
        "Raise the pool size",
        "the connection pool of 10 was too small for the eight workers; raised it to 48",
        json!({"supersedes": first["memory_id"]}),
    );
    let named: Vec<&Value> = newer["similar"]
        .as_array()
        .map(|s| s.iter().map(|c| &c["id"]).collect())
        .unwrap_or_default();
    assert!(!named.contains(&&first["memory_id"]), "{newer}");
    assert!(named.contains(&&again["memory_id"]), "{newer}");

    // Recall folds them: one hit for the lesson, naming the others.
    let recalled = server.ok(
        "recall_memories",
        json!({"query": "connection pool workers", "limit": 10}),
    );
    let results = recalled["results"].as_array().unwrap();
    let pool: Vec<&Value> = results
        .iter()
        .filter(|r| r["title"] == "Raise the pool size")
        .collect();
    assert_eq!(pool.len(), 1, "{recalled}");
    assert_eq!(pool[0]["near_duplicates"].as_array().unwrap().len(), 2);
    // Search still lists every memory: folding is recall's.
    let searched = server.ok(
        "search_memories",
        json!({"query": "connection pool workers", "limit": 10}),
    );
    let listed = searched["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["title"] == "Raise the pool size")
        .count();
    assert_eq!(listed, 3, "{searched}");
}

#[test]
fn the_setting_links_them_or_says_nothing_and_a_bad_one_is_refused() {
    let scratch = Scratch::new();
    let db = scratch.db();
    {
        let mut server = Server::started(&db, &[("MEMORY_NEAR_DUPLICATES", "link")]);
        let first = store(&mut server, "Raise the pool size", POOL, json!({}));
        let again = store(
            &mut server,
            "Raise the pool size",
            &POOL.replace("eight", "nine"),
            json!({}),
        );
        assert_eq!(again["similar"][0]["id"], first["memory_id"], "{again}");
        let related = server.ok(
            "get_related_memories",
            json!({"memory_id": again["memory_id"], "relationship_types": ["SIMILAR_TO"]}),
        );
        assert_eq!(related["related"][0]["memory"]["id"], first["memory_id"]);
    }
    let scratch = Scratch::new();
    let mut quiet = Server::started(&scratch.db(), &[("MEMORY_NEAR_DUPLICATES", "off")]);
    store(&mut quiet, "Raise the pool size", POOL, json!({}));
    let again = store(
        &mut quiet,
        "Raise the pool size",
        &POOL.replace("eight", "nine"),
        json!({}),
    );
    assert!(again.get("similar").is_none(), "{again}");

    let refused = run::run(&db, &["--near-duplicates", "maybe", "health"]);
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("MEMORY_NEAR_DUPLICATES")
            && refused.stderr.contains("list, link or off"),
        "{}",
        refused.stderr
    );
}

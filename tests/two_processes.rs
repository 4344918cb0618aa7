//! Two servers on one file (two editor windows): both write at full speed at the same time,
//! no write is lost, no "database is locked" reaches a client, each sees the other's work.

mod common;

use common::{Scratch, Server, search_ids};
use serde_json::{Value, json};

const PER_SERVER: usize = 1000;

fn store_many(mut server: Server, name: &'static str) -> (Server, Vec<String>) {
    let mut ids = Vec::with_capacity(PER_SERVER);
    for i in 0..PER_SERVER {
        let result = server.call(
            "store_memory",
            json!({"type": "general", "title": format!("{name} window memory {i}"),
                   "content": format!("written by the {name} window, number {i}, word {name}word"),
                   "tags": [format!("from-{name}")]}),
        );
        assert_eq!(
            result["isError"], false,
            "{name}: store {i} failed: {result}"
        );
        ids.push(
            result["structuredContent"]["memory_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        if i % 100 == 0 {
            // Reads interleaved with the other window's writes.
            let found = server.call("search_memories", json!({"query": "window memory"}));
            assert_eq!(found["isError"], false, "{name}: search failed: {found}");
        }
    }
    (server, ids)
}

fn tagged(server: &mut Server, tag: &str) -> std::collections::BTreeSet<String> {
    search_ids(server, json!({"tags": [tag], "limit": 100}))
}

#[test]
fn two_servers_on_one_file_lose_nothing_and_see_each_other() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let first = Server::started(&db, &[]);
    let second = Server::started(&db, &[]);

    let a = std::thread::spawn(move || store_many(first, "alpha"));
    let b = std::thread::spawn(move || store_many(second, "beta"));
    let (mut first, alpha_ids) = a.join().unwrap();
    let (mut second, beta_ids) = b.join().unwrap();

    let alpha: std::collections::BTreeSet<String> = alpha_ids.into_iter().collect();
    let beta: std::collections::BTreeSet<String> = beta_ids.into_iter().collect();
    assert_eq!(alpha.len(), PER_SERVER);
    assert_eq!(beta.len(), PER_SERVER);

    // Each window finds the other's memories, by tag and by word.
    assert_eq!(tagged(&mut first, "from-beta"), beta);
    assert_eq!(tagged(&mut second, "from-alpha"), alpha);
    assert_eq!(
        first.ok("search_memories", json!({"query": "betaword"}))["total"],
        PER_SERVER
    );
    assert_eq!(
        second.ok("search_memories", json!({"query": "alphaword"}))["total"],
        PER_SERVER
    );
    for server in [&mut first, &mut second] {
        assert_eq!(
            server.ok("health", json!({}))["database"]["memories"],
            2 * PER_SERVER
        );
    }
    let one: Value = first.ok(
        "get_memory",
        json!({"memory_id": beta.iter().next().unwrap()}),
    );
    assert!(
        one["memory"]["content"]
            .as_str()
            .unwrap()
            .contains("betaword")
    );

    for server in [first, second] {
        let log = server.stderr();
        assert!(server.stop().success());
        assert!(!log.contains("locked"), "a lock error was logged: {log}");
    }
}

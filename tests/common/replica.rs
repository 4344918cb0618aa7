//! Replica-mode helpers: a server on a replica of a primary, what a fresh device finds on
//! that primary, and commands run in replica mode.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::Server;
use super::run::Ran;

/// A server in replica mode on `db`, syncing every `interval` seconds.
pub fn replica(db: &Path, url: &str, interval: &str) -> Server {
    Server::started(
        db,
        &[
            ("TURSO_DATABASE_URL", url),
            ("MEMORY_TURSO_SYNC_INTERVAL", interval),
            ("MEMORY_TOOL_PROFILE", "extended"),
        ],
    )
}

/// Every memory id a server finds (up to 1,000 a page, all pages).
pub fn ids(server: &mut Server) -> BTreeSet<String> {
    super::search_ids(server, json!({"limit": 1000}))
}

/// Waits until `check` holds, for at most `limit`.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// Syncs once; whether nothing waits to reach the primary any more (for [`eventually`]).
pub fn drained(server: &mut Server) -> bool {
    server.call("sync", json!({}));
    server.ok("health", json!({}))["queue"]["queued_writes"] == 0
}

/// Runs a command-line command in replica mode.
pub fn run_replica(db: &Path, url: &str, args: &[&str]) -> Ran {
    let mut cmd = super::command(db.parent().unwrap());
    cmd.env("MEMORY_TURSO_PATH", db)
        .env("TURSO_DATABASE_URL", url)
        .args(args)
        .stdin(std::process::Stdio::null());
    super::run::ran(cmd.output().expect("run memorygraph"))
}

/// The memory ids a fresh device finds on the primary at `url`.
pub fn ids_on_primary(dir: &Path, url: &str) -> BTreeSet<String> {
    let fresh = tempfile::Builder::new()
        .prefix("fresh-")
        .suffix(".db")
        .tempfile_in(dir)
        .unwrap()
        .into_temp_path();
    let path = fresh.to_path_buf();
    fresh.close().unwrap();
    let mut s = replica(&path, url, "60");
    let found = ids(&mut s);
    s.stop();
    found
}

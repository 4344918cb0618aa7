//! Replica mode as a local database (`--local-first N`): the same calls timed with the
//! primary idle, behind a link that adds 3 s to every request, and black-holed; then N
//! writes made while the primary is away (the first and last thousand timed, and reads
//! beside them), start-up with them waiting, and how fast they reach the primary once it is
//! back. Every figure is printed beside the idle one from the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::Client;
use crate::corpus::{self, Rng};
use crate::stats::{Row, row};

#[allow(dead_code)]
#[path = "../../../tests/common/proxy.rs"]
mod proxy;

/// Calls per kind in each network condition.
const ROUNDS: usize = 200;

pub fn run(server: &Path, sqld: &Path, dir: &Path, queued: usize, seed: u64) -> Vec<Row> {
    let port = free_port();
    let data = dir.join("local-first-primary");
    let _ = std::fs::remove_dir_all(&data);
    let start_primary = || start_sqld(sqld, &data, port);
    let mut primary = start_primary();
    std::thread::sleep(Duration::from_millis(500));
    let link = proxy::Proxy::start(port);
    let env = [
        ("TURSO_DATABASE_URL", link.url()),
        ("MEMORY_TURSO_SYNC_INTERVAL", "1".to_string()),
    ];
    let db = dir.join("local-first.db");
    for suffix in [
        "",
        "-wal",
        "-shm",
        ".replica",
        ".replica-wal",
        ".replica-shm",
        ".replica-client_wal_index",
        ".replica-info",
    ] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let (mut c, _) = Client::start(server, &db, &env);
    let mut rng = Rng::new(seed);
    let mut next = 0;
    let mut rows = Vec::new();
    for (condition, setup) in [
        ("idle", None),
        ("3 s per request", Some(Duration::from_secs(3))),
        ("black hole", Some(Duration::ZERO)),
    ] {
        match setup {
            None => {}
            Some(d) if d.is_zero() => {
                link.delay(Duration::ZERO);
                link.black_hole();
            }
            Some(d) => link.delay(d),
        }
        link.cut();
        let timed = calls(&mut c, &mut rng, &mut next, ROUNDS);
        for (tool, took) in timed {
            rows.push(row(
                &format!("local-first, {condition}: {tool}"),
                ROUNDS,
                took,
                None,
                "writes go on in the background",
            ));
        }
    }

    // The primary away: N writes wait. The first and last thousand are timed.
    let _ = primary.kill();
    let _ = primary.wait();
    link.forward();
    link.delay(Duration::ZERO);
    link.cut();
    let mut stores = Vec::with_capacity(queued);
    for _ in 0..queued {
        let m = corpus::memory(&mut rng, 3_000_000 + next);
        next += 1;
        let (_, took) = c.call(
            "store_memory",
            json!({"type": m.memory_type, "title": m.title, "content": m.content}),
        );
        stores.push(took);
    }
    let edge = 1000.min(queued / 2).max(1);
    rows.push(row(
        "queue: first stores while the primary is away",
        edge,
        stores[..edge].to_vec(),
        None,
        "",
    ));
    rows.push(row(
        &format!("queue: last stores with {queued} waiting"),
        edge,
        stores[queued - edge..].to_vec(),
        None,
        "",
    ));
    for (tool, took) in calls(&mut c, &mut rng, &mut next, ROUNDS) {
        rows.push(row(
            &format!("queue of {queued}: {tool}"),
            ROUNDS,
            took,
            None,
            "reads beside the queue",
        ));
    }
    c.stop();
    let started = Instant::now();
    let (mut c, handshake) = Client::start(server, &db, &env);
    rows.push(row(
        &format!("initialize with {queued} waiting"),
        1,
        vec![handshake],
        None,
        "primary away",
    ));
    let _ = started;

    // The primary back: time until nothing waits.
    let mut primary = start_primary();
    std::thread::sleep(Duration::from_millis(300));
    let drain = Instant::now();
    loop {
        c.call("sync", json!({}));
        let (health, _) = c.call("health", json!({}));
        if health["queue"]["queued_writes"] == 0 {
            break;
        }
        assert!(
            drain.elapsed() < Duration::from_secs(600),
            "the queue drains"
        );
    }
    let took = drain.elapsed();
    eprintln!(
        "memorygraph-bench: {queued} waiting writes reached the primary in {:.2} s ({:.0} writes/s)",
        took.as_secs_f64(),
        queued as f64 / took.as_secs_f64()
    );
    rows.push(row(
        &format!("drain {queued} writes to the primary"),
        queued,
        vec![took],
        None,
        &format!(
            "{:.0} writes/s on loopback",
            queued as f64 / took.as_secs_f64()
        ),
    ));
    c.stop();
    let _ = primary.kill();
    let _ = primary.wait();
    rows
}

/// `rounds` of store, get, search and recall; their times by tool.
fn calls(
    c: &mut Client,
    rng: &mut Rng,
    next: &mut usize,
    rounds: usize,
) -> Vec<(&'static str, Vec<Duration>)> {
    let mut t: [Vec<Duration>; 4] = Default::default();
    for _ in 0..rounds {
        let m = corpus::memory(rng, 2_000_000 + *next);
        let word = corpus::rare_word(2_000_000 + *next);
        *next += 1;
        let (out, took) = c.call(
            "store_memory",
            json!({"type": m.memory_type, "title": m.title, "content": m.content}),
        );
        t[0].push(took);
        let id = out["memory_id"].as_str().unwrap_or_default().to_string();
        t[1].push(c.call("get_memory", json!({"memory_id": id})).1);
        t[2].push(c.call("search_memories", json!({"query": word})).1);
        t[3].push(c.call("recall_memories", json!({"query": m.title})).1);
    }
    let [a, b, d, e] = t;
    vec![
        ("store_memory", a),
        ("get_memory", b),
        ("search_memories", d),
        ("recall_memories", e),
    ]
}

/// An sqld on 127.0.0.1:`port` keeping its data in `data`.
pub fn start_sqld(sqld: &Path, data: &Path, port: u16) -> std::process::Child {
    std::process::Command::new(sqld)
        .arg("--db-path")
        .arg(data)
        .arg("--http-listen-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--no-welcome")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start sqld")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

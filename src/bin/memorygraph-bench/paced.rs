//! `store_memory` latency with and without the model installed, over MCP, with stores
//! paced the way an assistant makes them (100–300 ms apart). With the model, the server's
//! worker embeds each memory once 150 ms have passed without a write, so it works between
//! the stores and now and then while one arrives: what the store path pays for semantic
//! recall (the goal: within 1.2× of the store without it).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::Client;
use super::corpus::{self, Rng};
use super::stats::percentile;

/// Runs `n` paced stores against a server without the model, then against one with it
/// (the same memories at the same intervals); prints and returns their percentiles.
pub fn paced_stores(server: &Path, dir: &Path, models: &Path, n: usize, seed: u64) -> Value {
    println!("\nstore_memory over MCP, {n} stores 100–300 ms apart\n");
    println!("| server | p50 ms | p95 ms | p99 ms | mean ms | embedded meanwhile |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut report = serde_json::Map::new();
    let mut means = Vec::new();
    for (name, with_model) in [("no model", false), ("model installed", true)] {
        let folder = dir.join(format!("paced-{}", name.replace(' ', "-")));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        #[cfg(unix)]
        if with_model {
            std::os::unix::fs::symlink(models, folder.join("models")).unwrap();
        }
        let (mut client, _) = Client::start(server, &folder.join("memory.db"), &[]);
        if with_model {
            wait_for(
                &mut client,
                |s| s["state"] == json!("ready"),
                "the model to load",
            );
        }
        let mut rng = Rng::new(seed);
        let mut times = Vec::with_capacity(n);
        for i in 0..n {
            std::thread::sleep(Duration::from_millis(100 + rng.below(201) as u64));
            let m = corpus::memory(&mut rng, i);
            let (_, took) = client.call("store_memory", m.store_arguments());
            times.push(took);
        }
        // Vectors written while the stores went on; then the rest, before stopping.
        let embedded = client.call("health", json!({})).0["semantic"]["vectors"]
            .as_u64()
            .unwrap_or(0);
        if with_model {
            wait_for(
                &mut client,
                |s| s["pending"] == json!(0),
                "the last vectors",
            );
        }
        client.stop();
        times.sort();
        let mean = times.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / n as f64;
        let (p50, p95, p99) = (
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            percentile(&times, 0.99),
        );
        println!("| {name} | {p50:.3} | {p95:.3} | {p99:.3} | {mean:.3} | {embedded} |");
        report.insert(
            name.into(),
            json!({"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "mean_ms": mean, "embedded": embedded}),
        );
        means.push((p50, mean));
    }
    let (plain, model) = (means[0], means[1]);
    println!(
        "\nwith the model / without: p50 {:.2}×, mean {:.2}×",
        model.0 / plain.0,
        model.1 / plain.1
    );
    Value::Object(report)
}

/// Polls `health` until its `semantic` part satisfies `done`; returns that part.
pub fn wait_for(client: &mut Client, done: impl Fn(&Value) -> bool, what: &str) -> Value {
    wait_at_most(client, done, what, Duration::from_secs(120))
}

/// As [`wait_for`], for at most `limit`.
pub fn wait_at_most(
    client: &mut Client,
    done: impl Fn(&Value) -> bool,
    what: &str,
    limit: Duration,
) -> Value {
    let started = Instant::now();
    loop {
        let (health, _) = client.call("health", json!({}));
        if done(&health["semantic"]) {
            return health["semantic"].clone();
        }
        assert!(
            started.elapsed() < limit,
            "waited {limit:?} for {what}: {}",
            health["semantic"]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

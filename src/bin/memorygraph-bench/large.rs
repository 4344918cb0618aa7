//! The benchmark at a large size (a million memories): the file is generated once, by
//! importing the generator's memories in batches and giving each a random unit vector, and
//! reused by later runs (`large-N.db` in `--dir`, with `large-N.json` holding what it
//! stores). Then, over stdio: `initialize`, resident memory, a rare word, recall, and
//! stores, beside the database file's size against the text and vectors it holds.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::Client;
use crate::corpus::{self, Rng};
use crate::stats::{Row, row};
use memorygraph::backend::{
    BackendOptions, ImportBatch, ImportOptions, ImportedMemory, TursoBackend,
};

/// Memories per import transaction while generating.
const BATCH: usize = 10_000;
/// Bytes of one stored vector (384 f32).
const VECTOR_BYTES: u64 = 384 * 4;

pub async fn run(
    server: &Path,
    dir: &Path,
    n: usize,
    models: Option<&Path>,
    queries: usize,
    seed: u64,
) -> Vec<Row> {
    let db = dir.join(format!("large-{n}.db"));
    let facts = dir.join(format!("large-{n}.json"));
    let text_bytes = match std::fs::read_to_string(&facts)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["text_bytes"].as_u64())
    {
        Some(bytes) if db.is_file() => {
            println!("reusing {} ({n} memories)", db.display());
            bytes
        }
        _ => {
            let bytes = generate(&db, n, seed).await;
            std::fs::write(&facts, json!({"text_bytes": bytes}).to_string()).unwrap();
            bytes
        }
    };
    let file_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let held = text_bytes + n as u64 * VECTOR_BYTES;
    println!(
        "\n{n} memories: database file {:.0} MB; text {:.0} MB and vectors {:.0} MB; file / (text + vectors) = {:.2}\n",
        file_bytes as f64 / 1e6,
        text_bytes as f64 / 1e6,
        (n as u64 * VECTOR_BYTES) as f64 / 1e6,
        file_bytes as f64 / held as f64
    );

    // The server looks for the model beside the database.
    let beside = dir.join("models");
    let _ = std::fs::remove_file(&beside);
    if let Some(models) = models {
        std::os::unix::fs::symlink(models, &beside).unwrap();
    }
    let env: [(&str, String); 0] = [];
    let mut rows = Vec::new();

    let mut starts = Vec::new();
    for _ in 0..5 {
        let (client, took) = Client::start(server, &db, &env);
        starts.push(took);
        client.stop();
    }
    rows.push(row(
        "large: spawn → initialize",
        n,
        starts,
        None,
        "goal: ≤ 100 ms",
    ));

    let (mut client, _) = Client::start(server, &db, &env);
    let loading = Instant::now();
    if models.is_some() {
        crate::paced::wait_at_most(
            &mut client,
            // Memories a run without the model stored are embedded first: a backfill
            // running beside the measurements would be measured with them.
            |s| s["state"] == json!("ready") && s["pending"] == json!(0),
            "the model, the vectors and every memory's vector",
            Duration::from_secs(3600),
        );
        println!(
            "model and vector copy ready, every memory embedded, {:.1} s after start",
            loading.elapsed().as_secs_f64()
        );
    }
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut rare = Vec::new();
    for _ in 0..queries {
        let word = corpus::rare_word(rng.below(n));
        rare.push(
            client
                .call("search_memories", json!({"query": word, "limit": 10}))
                .1,
        );
    }
    rows.push(row(
        "large: search a rare word",
        n,
        rare,
        None,
        "goal: ≤ 2 ms p50",
    ));
    let mut recalls = Vec::new();
    for _ in 0..queries {
        let q = corpus::question(&mut rng);
        recalls.push(
            client
                .call("recall_memories", json!({"query": q, "limit": 10}))
                .1,
        );
    }
    let mode = if models.is_some() {
        "hybrid"
    } else {
        "lexical"
    };
    rows.push(row(
        &format!("large: recall ({mode})"),
        n,
        recalls,
        None,
        "goal (hybrid): ≤ 30 ms p50, ≤ 60 ms p99",
    ));
    rows.extend(filtered(&mut client, n, models.is_some()));
    let mut stores = Vec::new();
    for i in 0..1_000 {
        let m = corpus::memory(&mut rng, n + i);
        stores.push(client.call("store_memory", m.store_arguments()).1);
    }
    let total: f64 = stores.iter().map(Duration::as_secs_f64).sum();
    let note = format!(
        "{:.0} stores/s; goal: ≥ 1,000/s",
        stores.len() as f64 / total
    );
    rows.push(row("large: store_memory", n, stores, None, &note));
    println!(
        "server's peak resident memory: {:.1} MB (model {}; goal with the model: ≤ 300 MB)",
        client.peak_rss_kb().unwrap_or(0) as f64 / 1024.0,
        if models.is_some() {
            "loaded"
        } else {
            "not installed"
        }
    );
    client.stop();
    if models.is_some() {
        against_exact(&db, &mut rng).await;
    }
    rows
}

/// Searches with filters, five of each: by a tag about 3 % of the generator's memories hold
/// (the corpus's first word), by one nobody holds, and by a type (a seventh of them), in each
/// mode the build serves, and a listing by the tag alone.
fn filtered(client: &mut Client, n: usize, model: bool) -> Vec<Row> {
    let tag = corpus::WORDS[0];
    let query = "how did we fix the cache timeout";
    let nobody = "nobody-holds-this";
    let mut calls = vec![(
        "listing by one tag".to_string(),
        json!({"query": "", "tags": [tag]}),
    )];
    let modes: &[&str] = if model {
        &["lexical", "hybrid", "semantic"]
    } else {
        &["lexical"]
    };
    for mode in modes {
        calls.push((
            format!("{mode} search with one tag"),
            json!({"query": query, "mode": mode, "tags": [tag]}),
        ));
        calls.push((
            format!("{mode} search with a tag nobody holds"),
            json!({"query": query, "mode": mode, "tags": [nobody]}),
        ));
    }
    if model {
        calls.push((
            "semantic search with one type".to_string(),
            json!({"query": query, "mode": "semantic", "memory_types": ["solution"]}),
        ));
    }
    calls
        .into_iter()
        .map(|(name, mut args)| {
            args["limit"] = json!(10);
            let times = (0..5)
                .map(|_| client.call("search_memories", args.clone()).1)
                .collect();
            row(&format!("large: {name}"), n, times, None, "")
        })
        .collect()
}

/// The semantic side in-process: the nearest memories as searches find them, through the
/// copy's one-bit codes and the checks of their candidates, against an exact scan of every
/// vector in SQL, with the memory the copy takes.
async fn against_exact(db: &Path, rng: &mut Rng) {
    let backend = TursoBackend::open(BackendOptions::local(db)).await.unwrap();
    assert!(backend.load_model().await, "the model does not load");
    // The first search loads the copy.
    backend
        .nearest_against_exact(&["warm up".to_string()], 10)
        .await
        .unwrap();
    let stats = backend.vector_index_stats().await;
    println!(
        "\nin-memory copy: {} vectors, {:.1} MB",
        stats.vectors,
        stats.bytes as f64 / 1e6
    );
    let texts: Vec<String> = (0..10).map(|_| corpus::question(rng)).collect();
    for k in [10, 50] {
        let (found, wanted, mut times) = backend.nearest_against_exact(&texts, k).await.unwrap();
        let [scanning, searching, exact] = times.each_mut().map(|t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        });
        println!(
            "nearest {k} of {} questions: {found} of the exact scan's {wanted} found ({:.3}); search p50 {searching:.1} ms, of which the scan {scanning:.1} ms (exact scan p50 {exact:.0} ms)",
            texts.len(),
            found as f64 / wanted.max(1) as f64,
        );
    }
    backend.close().await.unwrap();
}

/// Imports `n` generator memories in batches and gives each a random unit vector; returns
/// the bytes of text stored (title, content, tags).
async fn generate(db: &Path, n: usize, seed: u64) -> u64 {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let backend = TursoBackend::open(BackendOptions::local(db)).await.unwrap();
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let mut text_bytes = 0u64;
    for first in (0..n).step_by(BATCH) {
        let memories: Vec<ImportedMemory> = (first..(first + BATCH).min(n))
            .map(|i| {
                let m = corpus::memory(&mut rng, i);
                text_bytes += (m.title.len()
                    + m.content.len()
                    + m.tags.iter().map(String::len).sum::<usize>())
                    as u64;
                let at = memorygraph::model::now_iso();
                ImportedMemory {
                    id: uuid_of(i),
                    memory: m.to_new(),
                    created_at: at.clone(),
                    updated_at: at,
                    usage_count: 0,
                    last_accessed: None,
                    effectiveness: None,
                }
            })
            .collect();
        let batch = ImportBatch {
            memories,
            relationships: Vec::new(),
        };
        backend
            .import(&batch, ImportOptions::default(), &|_| {})
            .await
            .unwrap();
        if (first / BATCH) % 10 == 9 {
            println!(
                "generated {} memories in {:.0} s",
                first + BATCH,
                started.elapsed().as_secs_f64()
            );
        }
    }
    backend.fill_random_vectors(seed).await.unwrap();
    backend.close().await.unwrap();
    println!(
        "generated {n} memories with vectors in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    text_bytes
}

fn uuid_of(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

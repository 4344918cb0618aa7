//! memorygraph-bench: where memorygraph stands, over stdio exactly as an MCP client talks to
//! it, beside the same work done in-process on libsql (same schema, same SQL, no MCP).
//!
//! `cargo run --release --bin memorygraph-bench -- --sizes 1000,10000`

mod client;
mod corpus;
mod http;
mod large;
mod local_first;
mod mixed;
mod owners;
mod paced;
mod paraphrase;
mod retrieval;
mod stats;
mod web;
mod when_where;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

use client::Client;
use corpus::Rng;
use memorygraph::backend::{BackendOptions, SearchRequest, TursoBackend};
use memorygraph::model::{NewRelationship, RelationshipType};
use stats::{Row, row};

#[derive(Debug, Parser)]
#[command(
    name = "memorygraph-bench",
    about = "Benchmark memorygraph over stdio against raw libsql"
)]
struct Args {
    /// Corpus sizes to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,
    /// The memorygraph binary to drive [default: the one beside this program].
    #[arg(long)]
    server: Option<PathBuf>,
    /// Where to write the figures as JSON.
    #[arg(long, default_value = "bench-results.json")]
    json: PathBuf,
    /// Folder for the databases [default: a temporary folder].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Queries per read phase.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Seed of the corpus.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Replica mode as a local database: calls timed idle, over a 3 s link and a black
    /// hole, then this many writes waiting for the primary, and their drain (needs SQLD_BIN).
    #[arg(long, value_name = "N")]
    local_first: Option<usize>,
    /// One process per database: this many windows on one database (resident memory of
    /// one against all, a forwarded call against the owner's own, HTTP against stdio).
    /// With --model-home the model is loaded.
    #[arg(long, value_name = "N")]
    owners: Option<usize>,
    /// Memories in the database of --owners.
    #[arg(long, default_value_t = 10_000)]
    owner_memories: usize,
    /// A large size (a million memories): the file is generated once and reused from
    /// `--dir`; `initialize`, resident memory, a rare word, recall and stores over stdio,
    /// and the file's size. With --model-home the model and the vector copy are loaded.
    #[arg(long, value_name = "N")]
    large: Option<usize>,
    /// The web view: the first page and a search from the page at this many memories,
    /// beside the same search over stdio.
    #[arg(long, value_name = "N")]
    web: Option<usize>,
    /// Skip the replica-mode phase even when SQLD_BIN names an sqld.
    #[arg(long)]
    skip_replica: bool,
    /// Retrieval quality instead of speed: LoCoMo from this file (the public
    /// `locomo10.json`, or part of it; CC BY-NC 4.0, never part of the crate).
    #[arg(long, value_name = "FILE")]
    locomo: Option<PathBuf>,
    /// The LoCoMo conversations to score (indexes in the file).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4")]
    conversations: Vec<usize>,
    /// Retrieval quality: the paraphrase set among 2,000 generator memories.
    #[arg(long)]
    paraphrase: bool,
    /// Retrieval quality over time and projects: questions that say when, or are asked
    /// from one project among several, as words only and as questions (hit@5). With
    /// --model-home, hybrid.
    #[arg(long)]
    when_where: bool,
    /// Retrieval: also score semantic alone and the fusion variants tried when tuning.
    #[arg(long)]
    tune: bool,
    /// Retrieval: write each question's lexical and semantic candidates, with their
    /// scores, to this file as JSON lines (for trying fusions offline); each line names
    /// its set, LoCoMo or paraphrase.
    #[arg(long, value_name = "FILE")]
    dump: Option<PathBuf>,
    /// A data folder where `memorygraph model install` ran (its `models/` is used); needed
    /// for the retrieval runs, `--recall-latency`, `--backfill` and `--paced-stores`.
    #[arg(long, value_name = "DIR")]
    model_home: Option<PathBuf>,
    /// Recall latency, lexical and hybrid, at this many memories (in-process).
    #[arg(long, value_name = "N")]
    recall_latency: Option<usize>,
    /// Backfill speed: embeds this many short (≈30-token) and this many long (the
    /// generator's 50–400-word) memories, as `reindex --embeddings` does.
    #[arg(long, value_name = "N")]
    backfill: Option<usize>,
    /// Store latency over MCP with and without the model installed: this many stores each,
    /// 100–300 ms apart, so the background worker embeds between them.
    #[arg(long, value_name = "N")]
    paced_stores: Option<usize>,
}

fn main() {
    let args = Args::parse();
    let server = args.server.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .join("memorygraph")
    });
    assert!(
        server.is_file(),
        "no memorygraph binary at {}; build it with `cargo build --release`",
        server.display()
    );
    let own_dir = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("memorygraph-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(queued) = args.local_first {
        let sqld = std::env::var_os("SQLD_BIN")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .expect("--local-first needs SQLD_BIN to name an sqld");
        let rows = local_first::run(&server, &sqld, &dir, queued, args.seed);
        println!("{}", stats::markdown(&rows));
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(n) = args.large {
        let models = args.model_home.as_deref().map(retrieval::models_of);
        let rows = runtime.block_on(large::run(
            &server,
            &dir,
            n,
            models.as_deref(),
            args.queries,
            args.seed,
        ));
        println!("{}", stats::markdown(&rows));
        return;
    }
    if let Some(memories) = args.web {
        let rows = runtime.block_on(web::run(&server, &dir, memories, args.seed));
        println!("{}", stats::markdown(&rows));
        return;
    }
    if let Some(windows) = args.owners {
        let models = args.model_home.as_deref().map(retrieval::models_of);
        let rows = runtime.block_on(owners::run(
            &server,
            &dir,
            windows,
            args.owner_memories,
            models.as_deref(),
            args.seed,
        ));
        println!("{}", stats::markdown(&rows));
        return;
    }
    if args.when_where {
        let models = args.model_home.as_deref().map(retrieval::models_of);
        let report = when_where::run(&server, &dir, args.seed, models.as_deref());
        std::fs::write(&args.json, serde_json::to_string_pretty(&report).unwrap()).unwrap();
        if own_dir {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return;
    }
    if args.locomo.is_some()
        || args.paraphrase
        || args.recall_latency.is_some()
        || args.backfill.is_some()
        || args.paced_stores.is_some()
    {
        let models = retrieval::models_of(
            args.model_home
                .as_deref()
                .expect("--model-home names the folder where `memorygraph model install` ran"),
        );
        let mut report = serde_json::Map::new();
        let mut dump = args.dump.as_deref().map(retrieval::Dump::create);
        if let Some(file) = &args.locomo {
            report.insert(
                "locomo".into(),
                runtime.block_on(retrieval::locomo(
                    file,
                    &args.conversations,
                    &dir,
                    &models,
                    args.tune,
                    dump.as_mut(),
                )),
            );
        }
        if let Some(n) = args.backfill {
            report.insert(
                "backfill".into(),
                runtime.block_on(retrieval::backfill_rates(&dir, &models, n, args.seed)),
            );
        }
        if let Some(n) = args.paced_stores {
            report.insert(
                "paced_stores".into(),
                paced::paced_stores(&server, &dir, &models, n, args.seed),
            );
        }
        if let Some(n) = args.recall_latency {
            report.insert(
                "recall_latency".into(),
                runtime.block_on(retrieval::recall_latency(
                    &dir,
                    &models,
                    n,
                    args.queries,
                    args.seed,
                )),
            );
        }
        if args.paraphrase {
            report.insert(
                "paraphrase".into(),
                runtime.block_on(retrieval::paraphrase(
                    &server,
                    &dir,
                    &models,
                    2000,
                    args.seed,
                    args.tune,
                    dump.as_mut(),
                )),
            );
        }
        std::fs::write(&args.json, serde_json::to_string_pretty(&report).unwrap()).unwrap();
        if own_dir {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return;
    }
    let mut rows = Vec::new();
    for &n in &args.sizes {
        eprintln!("memorygraph-bench: N = {n}");
        rows.extend(runtime.block_on(run_size(&args, &server, &dir, n)));
    }
    if !args.skip_replica {
        match std::env::var_os("SQLD_BIN")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
        {
            Some(sqld) => rows.extend(replica_phase(&server, &sqld, &dir, &args)),
            None => eprintln!("memorygraph-bench: SQLD_BIN not set, replica phase skipped"),
        }
    }
    println!("{}", stats::markdown(&rows));
    let report = json!({
        "machine": machine(),
        "server": server.display().to_string(),
        "seed": args.seed,
        "rows": rows,
    });
    std::fs::write(&args.json, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    if own_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!(
        "memorygraph-bench: figures written to {}",
        args.json.display()
    );
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    json!({"cpu": cpu, "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "os": std::env::consts::OS})
}

fn file_size(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(PathBuf::from(wal))
            .map(|m| m.len())
            .unwrap_or(0)
}

async fn raw_backend(path: &Path) -> TursoBackend {
    TursoBackend::open(BackendOptions::local(path))
        .await
        .expect("open the raw database")
}

/// The search workloads: a name and its queries.
fn search_workloads(rng: &mut Rng, n: usize, count: usize) -> Vec<(&'static str, Vec<String>)> {
    let common: Vec<String> = (0..count)
        .map(|_| ["cache", "timeout", "deadlock", "kafka", "pipeline"][rng.below(5)].to_string())
        .collect();
    let phrases: Vec<String> = (0..count)
        .map(|_| format!("\"{} {}\"", rng.word(), rng.word()))
        .collect();
    let two_words: Vec<String> = (0..count)
        .map(|_| format!("{} {}", rng.word(), rng.word()))
        .collect();
    let rare: Vec<String> = (0..count)
        .map(|_| corpus::rare_word(rng.below(n)))
        .collect();
    let everywhere: Vec<String> = (0..count).map(|_| corpus::EVERYWHERE.to_string()).collect();
    let typos: Vec<String> = (0..count)
        .map(|_| corpus::typo(&corpus::rare_word(rng.below(n))))
        .collect();
    vec![
        ("search: common word", common),
        ("search: two common words", two_words),
        ("search: phrase", phrases),
        ("search: rare word", rare),
        ("search: word in every memory", everywhere),
        ("search: typo of a rare word", typos),
    ]
}

async fn run_size(args: &Args, server: &Path, dir: &Path, n: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let mcp_db = dir.join(format!("mcp-{n}.db"));
    let raw_db = dir.join(format!("raw-{n}.db"));
    for p in [&mcp_db, &raw_db] {
        let _ = std::fs::remove_file(p);
    }

    // Cold start on an empty file (the first start creates the schema).
    let mut starts = Vec::new();
    let mut raw_opens = Vec::new();
    for i in 0..10 {
        let empty = dir.join(format!("empty-{n}-{i}.db"));
        let (c, took) = Client::start(server, &empty, &[]);
        c.stop();
        starts.push(took);
        let raw_empty = dir.join(format!("raw-empty-{n}-{i}.db"));
        let t = Instant::now();
        drop(raw_backend(&raw_empty).await);
        raw_opens.push(t.elapsed());
    }
    rows.push(row(
        "cold start: spawn → initialize (new file)",
        n,
        starts,
        Some(raw_opens),
        "raw: open + schema in-process",
    ));

    // Store N memories.
    let (mut client, _) = Client::start(server, &mcp_db, &[]);
    let raw = raw_backend(&raw_db).await;
    let mut rng = Rng::new(args.seed);
    let mut ids = Vec::with_capacity(n);
    let mut raw_ids = Vec::with_capacity(n);
    let mut stores = Vec::with_capacity(n);
    let mut raw_stores = Vec::with_capacity(n);
    // The stored text: title, content and tags, in UTF-8 bytes (the corpus has no summaries).
    let mut text_bytes = 0usize;
    for i in 0..n {
        let m = corpus::memory(&mut rng, i);
        text_bytes +=
            m.title.len() + m.content.len() + m.tags.iter().map(String::len).sum::<usize>();
        let (out, took) = client.call("store_memory", m.store_arguments());
        stores.push(took);
        ids.push(out["memory_id"].as_str().unwrap().to_string());
        let new = m.to_new();
        let t = Instant::now();
        let stored = raw.store_memory(new, None).await.unwrap();
        raw_stores.push(t.elapsed());
        raw_ids.push(stored.memory.id);
    }
    let raw_total: f64 = raw_stores.iter().map(Duration::as_secs_f64).sum();
    let raw_rate = format!("raw libsql {:.0} ops/s", n as f64 / raw_total);
    rows.push(row("store_memory", n, stores, Some(raw_stores), &raw_rate));

    // Relationships between random memories (symmetric types: never refused as cycles).
    let links = n.min(2000);
    let types = [
        RelationshipType::RelatedTo,
        RelationshipType::SimilarTo,
        RelationshipType::WorksWith,
    ];
    let mut rels = Vec::new();
    let mut raw_rels = Vec::new();
    for i in 0..links {
        let (a, b) = (rng.below(n), rng.below(n));
        if a == b {
            continue;
        }
        let t = types[i % types.len()];
        let (_, took) = client.call(
            "create_relationship",
            json!({"from_memory_id": ids[a], "to_memory_id": ids[b], "relationship_type": t.as_str()}),
        );
        rels.push(took);
        let new = NewRelationship::plain(&raw_ids[a], &raw_ids[b], t);
        let started = Instant::now();
        raw.create_relationship(new).await.unwrap();
        raw_rels.push(started.elapsed());
    }
    rows.push(row("create_relationship", n, rels, Some(raw_rels), ""));

    // Reads.
    let picks: Vec<usize> = (0..args.queries).map(|_| rng.below(n)).collect();
    let mut gets = Vec::new();
    let mut raw_gets = Vec::new();
    for &i in &picks {
        gets.push(client.call("get_memory", json!({"memory_id": ids[i]})).1);
        let t = Instant::now();
        raw.get_memory(&raw_ids[i], true).await.unwrap();
        raw_gets.push(t.elapsed());
    }
    rows.push(row("get_memory", n, gets, Some(raw_gets), ""));

    for (name, queries) in search_workloads(&mut rng, n, args.queries) {
        let mut mcp = Vec::new();
        let mut direct = Vec::new();
        let mut hits = 0u64;
        let mut at_least = false;
        for q in &queries {
            let (out, took) = client.call("search_memories", json!({"query": q, "limit": 10}));
            hits += out["total"].as_u64().unwrap_or(0);
            at_least |= out["total_exact"] == json!(false);
            mcp.push(took);
            let t = Instant::now();
            raw.search(&SearchRequest::new(q, 10)).await.unwrap();
            direct.push(t.elapsed());
        }
        let note = format!(
            "{}{:.0} matches per query on average",
            if at_least {
                "at least (counted up to 10,000) "
            } else {
                ""
            },
            hits as f64 / queries.len() as f64
        );
        rows.push(row(name, n, mcp, Some(direct), &note));
    }

    let mut recalls = Vec::new();
    let mut raw_recalls = Vec::new();
    for _ in 0..args.queries {
        let q = corpus::question(&mut rng);
        recalls.push(
            client
                .call("recall_memories", json!({"query": q, "limit": 10}))
                .1,
        );
        let t = Instant::now();
        raw.recall(&SearchRequest::new(&q, 10)).await.unwrap();
        raw_recalls.push(t.elapsed());
    }
    rows.push(row("recall_memories", n, recalls, Some(raw_recalls), ""));

    for depth in [1u32, 3] {
        let mut mcp = Vec::new();
        let mut direct = Vec::new();
        for &i in &picks {
            mcp.push(
                client
                    .call(
                        "get_related_memories",
                        json!({"memory_id": ids[i], "max_depth": depth}),
                    )
                    .1,
            );
            let t = Instant::now();
            raw.related_memories(&raw_ids[i], &[], depth, None)
                .await
                .unwrap();
            direct.push(t.elapsed());
        }
        rows.push(row(
            &format!("get_related_memories depth {depth}"),
            n,
            mcp,
            Some(direct),
            "",
        ));
    }

    let mut session_ids = ids.clone();
    rows.extend(mixed::run(
        &mut client,
        &mut rng,
        &mut session_ids,
        args.queries * 5,
    ));

    let rss = client.peak_rss_kb();
    client.stop();
    drop(raw);

    let mut populated = Vec::new();
    let mut raw_populated = Vec::new();
    for _ in 0..10 {
        let (c, took) = Client::start(server, &mcp_db, &[]);
        c.stop();
        populated.push(took);
        let t = Instant::now();
        drop(raw_backend(&raw_db).await);
        raw_populated.push(t.elapsed());
    }
    rows.push(row(
        "cold start: spawn → initialize (populated)",
        n,
        populated,
        Some(raw_populated),
        "raw: open in-process",
    ));

    let mut info = row("server peak RSS", n, vec![], None, "");
    info.note = format!("{:.1} MB", rss.unwrap_or(0) as f64 / 1024.0);
    rows.push(info);
    let mut size = row("database size on disk", n, vec![], None, "");
    size.note = format!(
        "{:.1} MB ({:.0} bytes per memory, {:.2}× the {:.0} bytes of text stored per memory)",
        file_size(&mcp_db) as f64 / 1e6,
        file_size(&mcp_db) as f64 / n as f64,
        file_size(&mcp_db) as f64 / text_bytes as f64,
        text_bytes as f64 / n as f64
    );
    rows.push(size);
    rows
}

/// Replica mode against a local sqld: writes, write + sync, and how soon a second
/// replica sees a write.
fn replica_phase(server: &Path, sqld: &Path, dir: &Path, args: &Args) -> Vec<Row> {
    let port = local_first::free_port();
    let data = dir.join("bench-primary");
    let _ = std::fs::remove_dir_all(&data);
    let mut primary = local_first::start_sqld(sqld, &data, port);
    std::thread::sleep(Duration::from_millis(500));
    let url = format!("http://127.0.0.1:{port}");
    let env = [
        ("TURSO_DATABASE_URL", url.clone()),
        ("MEMORY_TURSO_SYNC_INTERVAL", "3600".to_string()),
    ];
    let a_db = dir.join("replica-a.db");
    let b_db = dir.join("replica-b.db");
    for p in [&a_db, &b_db] {
        let _ = std::fs::remove_file(p);
    }
    let (mut a, _) = Client::start(server, &a_db, &env);
    let (mut b, _) = Client::start(server, &b_db, &env);
    let mut rng = Rng::new(args.seed);
    let count = args.queries.min(200);
    let mut writes = Vec::new();
    let mut write_syncs = Vec::new();
    let mut visible = Vec::new();
    for i in 0..count {
        let m = corpus::memory(&mut rng, 1_000_000 + i);
        let started = Instant::now();
        let (out, took) = a.call(
            "store_memory",
            json!({"type": m.memory_type, "title": m.title, "content": m.content}),
        );
        assert_eq!(out["queued"], json!(false), "the primary is up");
        writes.push(took);
        a.call("sync", json!({}));
        write_syncs.push(started.elapsed());
        if i % 10 == 0 {
            let word = corpus::rare_word(1_000_000 + i);
            let seen_from = Instant::now();
            loop {
                b.call("sync", json!({}));
                let (found, _) = b.call("search_memories", json!({"query": word}));
                if found["total"].as_u64() == Some(1) {
                    break;
                }
                assert!(
                    seen_from.elapsed() < Duration::from_secs(10),
                    "replica B never saw the write"
                );
            }
            visible.push(started.elapsed());
        }
    }
    a.stop();
    b.stop();
    let _ = primary.kill();
    let _ = primary.wait();
    vec![
        row(
            "replica: store_memory (write to primary)",
            count,
            writes,
            None,
            "sqld on loopback",
        ),
        row("replica: store + sync", count, write_syncs, None, ""),
        row(
            "replica: write until a second replica sees it",
            visible.len(),
            visible,
            None,
            "B syncs on demand",
        ),
    ]
}

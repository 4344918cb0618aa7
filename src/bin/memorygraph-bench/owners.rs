//! One process per database (`--owners N`): N windows on one database of `memories`
//! memories, the model loaded when `--model-home` gives one. Prints the resident memory of
//! one window beside that of N windows, the latency of a call through a forwarding window
//! beside the same call answered by the owner itself, search over HTTP beside stdio, and
//! the time from killing the owner to the next answer a window gets — every figure beside
//! its baseline from the same run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::Client;
use crate::corpus::{self, Rng};
use crate::http::{Answer, Connection, Served};
use crate::stats::{Row, row};

const CALLS: usize = 500;
/// Owners killed in the hand-over phase.
const KILLS: usize = 20;

pub async fn run(
    server: &Path,
    dir: &Path,
    windows: usize,
    memories: usize,
    models: Option<&Path>,
    seed: u64,
) -> Vec<Row> {
    let folder = dir.join("owners");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    if let Some(models) = models {
        std::os::unix::fs::symlink(models, folder.join("models")).unwrap();
    }
    let db = folder.join("memory.db");
    fill(&db, memories, seed).await;
    let env = [("HOME", folder.display().to_string())];

    // One window: the owner, with everything loaded.
    let (mut owner, _) = Client::start(server, &db, &env);
    if models.is_some() {
        crate::paced::wait_at_most(
            &mut owner,
            |s| s["state"] == json!("ready") && s["pending"] == json!(0),
            "the model and vectors",
            Duration::from_secs(1800),
        );
    }
    owner.call("recall_memories", json!({"query": "deploy the worker"}));
    let one = owner.pss_kb().unwrap_or(0);

    // N windows: the owner and N-1 forwarding to it.
    let mut others: Vec<Client> = (1..windows)
        .map(|_| Client::start(server, &db, &env).0)
        .collect();
    for w in &mut others {
        w.call("recall_memories", json!({"query": "deploy the worker"}));
    }
    let all: u64 =
        owner.pss_kb().unwrap_or(0) + others.iter().map(|w| w.pss_kb().unwrap_or(0)).sum::<u64>();
    println!(
        "\n{windows} windows on one database of {memories} memories (model {}), proportional set size: one window alone {:.1} MB, {windows} windows {:.1} MB together, ratio {:.2}; a forwarding window {:.1} MB\n",
        if models.is_some() {
            "loaded"
        } else {
            "not installed"
        },
        one as f64 / 1024.0,
        all as f64 / 1024.0,
        all as f64 / one.max(1) as f64,
        others.first().and_then(Client::pss_kb).unwrap_or(0) as f64 / 1024.0
    );

    // The same calls, alternating: answered by the owner, and through a forwarding window.
    let mut rng = Rng::new(seed ^ 7);
    let queries: Vec<String> = (0..CALLS).map(|_| rng.words(2)).collect();
    let (mut direct, mut forwarded) = (Vec::new(), Vec::new());
    let relay = &mut others[0];
    for q in &queries {
        direct.push(
            owner
                .call("search_memories", json!({"query": q, "limit": 5}))
                .1,
        );
        forwarded.push(
            relay
                .call("search_memories", json!({"query": q, "limit": 5}))
                .1,
        );
    }
    let listed = owner.call("search_memories", json!({"limit": 100})).0;
    let ids: Vec<String> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let (mut got_direct, mut got_forwarded) = (Vec::new(), Vec::new());
    for i in 0..CALLS {
        let id = &ids[i % ids.len()];
        got_direct.push(owner.call("get_memory", json!({"memory_id": id})).1);
        got_forwarded.push(relay.call("get_memory", json!({"memory_id": id})).1);
    }

    // Search over HTTP, through `serve --http` forwarding to the same owner.
    let mut http = HttpBench::start(server, &db, &env);
    let mut over_http = Vec::new();
    for q in &queries {
        over_http.push(http.search(q));
    }
    drop(http);

    // Hand-over: the owner is killed; a window's next call is answered once another
    // process has taken the database over (and resent the call).
    let mut windows_left = others;
    windows_left.push(owner);
    let mut handed_over = Vec::new();
    for round in 0..KILLS {
        let answer = windows_left[0].call("health", json!({})).0;
        let owner_pid = answer["server_pid"].as_u64().unwrap() as u32;
        let at = windows_left
            .iter()
            .position(|w| w.pid() == owner_pid)
            .expect("the owner is one of the windows");
        windows_left.swap_remove(at).kill();
        let id = &ids[round % ids.len()];
        let (answer, took) = windows_left[0].call("get_memory", json!({"memory_id": id}));
        assert!(answer["memory"].is_object(), "after a kill: {answer}");
        handed_over.push(took);
        windows_left.push(Client::start(server, &db, &env).0);
    }
    for w in windows_left {
        w.stop();
    }
    vec![
        row(
            "search, answered by the owner",
            memories,
            direct.clone(),
            None,
            "stdio, the owner's own client",
        ),
        row(
            "search, through a forwarding window",
            memories,
            forwarded,
            Some(direct.clone()),
            "ratio: over the owner's own",
        ),
        row(
            "get_memory, answered by the owner",
            memories,
            got_direct.clone(),
            None,
            "",
        ),
        row(
            "get_memory, through a forwarding window",
            memories,
            got_forwarded.clone(),
            Some(got_direct),
            "ratio: over the owner's own",
        ),
        row(
            "search over HTTP (serve --http)",
            memories,
            over_http,
            Some(direct),
            "ratio: over stdio to the owner",
        ),
        row(
            "get_memory right after the owner is killed",
            memories,
            handed_over,
            Some(got_forwarded),
            "ratio: over a forwarded call with the owner alive",
        ),
    ]
}

/// A local database of `memories` memories from the seeded corpus.
pub async fn fill(db: &Path, memories: usize, seed: u64) {
    let backend =
        memorygraph::backend::TursoBackend::open(memorygraph::backend::BackendOptions::local(db))
            .await
            .unwrap();
    let mut rng = Rng::new(seed);
    for i in 0..memories {
        let m = corpus::memory(&mut rng, i);
        backend.store_memory(m.to_new(), None).await.unwrap();
    }
    backend.close().await.unwrap();
}

/// `serve --http` and one kept-alive connection to it, with an MCP session.
struct HttpBench {
    connection: Connection,
    token: String,
    session: String,
    next: u64,
    _served: Served,
}

impl HttpBench {
    fn start(server: &Path, db: &Path, env: &[(&str, String)]) -> HttpBench {
        let served = Served::start(server, db, env);
        let token = String::from_utf8(
            Command::new(server)
                .env("MEMORY_TURSO_PATH", db)
                .args(["token", "show"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        let mut bench = HttpBench {
            connection: served.connect(),
            token,
            session: String::new(),
            next: 1,
            _served: served,
        };
        let opened = bench.post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}));
        bench.session = opened.header("mcp-session-id").unwrap().to_string();
        bench.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        bench
    }

    /// One search_memories call; its latency from the request's first byte to the answer.
    fn search(&mut self, query: &str) -> Duration {
        self.next += 1;
        let started = Instant::now();
        let answer = self.post(
            &json!({"jsonrpc": "2.0", "id": self.next, "method": "tools/call",
            "params": {"name": "search_memories", "arguments": {"query": query, "limit": 5}}}),
        );
        let took = started.elapsed();
        assert!(
            answer.body.contains("structuredContent"),
            "search over HTTP failed: {}",
            answer.body
        );
        took
    }

    /// One POST to /mcp with the token and the session.
    fn post(&mut self, message: &Value) -> Answer {
        let bearer = format!("Bearer {}", self.token);
        let mut headers = vec![
            ("Authorization", bearer.as_str()),
            ("Accept", "application/json, text/event-stream"),
        ];
        if !self.session.is_empty() {
            headers.push(("Mcp-Session-Id", self.session.as_str()));
        }
        self.connection
            .exchange("POST", "/mcp", &headers, &message.to_string())
    }
}

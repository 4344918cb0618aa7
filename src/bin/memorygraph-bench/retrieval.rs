//! Retrieval quality, lexical and hybrid side by side, through the backend's own recall and
//! search (the code the tools call; the tools only render):
//!
//! - LoCoMo, retrieval only: one memory per dialogue turn, each question asked through
//!   recall with limit 10, scored against the question's evidence turns. The data (CC BY-NC
//!   4.0) is never part of the crate: `--locomo FILE` names a copy of the public
//!   `locomo10.json` (or a part of it).
//! - Paraphrase: developer memories asked for in other words, among 2,000 memories of the
//!   benchmark's generator ([`super::paraphrase`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use memorygraph::backend::{
    BackendOptions, FusionMethod, FusionParams, SearchMode, SearchRequest, TursoBackend,
};
use memorygraph::model::NewMemory;

/// Scores of one run over a set of questions.
#[derive(Default, Clone)]
pub struct Score {
    pub questions: usize,
    pub hit1: f64,
    pub hit5: f64,
    pub hit10: f64,
    pub recall5: f64,
    pub recall10: f64,
    pub mrr: f64,
}

impl Score {
    fn add(&mut self, ranked: &[Vec<String>], evidence: &[String]) {
        let found_at = |k: usize| {
            evidence
                .iter()
                .filter(|e| ranked.iter().take(k).any(|turns| turns.contains(e)))
                .count()
        };
        let first = ranked
            .iter()
            .position(|turns| evidence.iter().any(|e| turns.contains(e)));
        self.questions += 1;
        let hit = |k: usize| f64::from(u8::from(first.is_some_and(|p| p < k)));
        self.hit1 += hit(1);
        self.hit5 += hit(5);
        self.hit10 += hit(10);
        self.recall5 += found_at(5) as f64 / evidence.len() as f64;
        self.recall10 += found_at(10) as f64 / evidence.len() as f64;
        self.mrr += first.map_or(0.0, |p| 1.0 / (p as f64 + 1.0));
    }

    fn merge(&mut self, other: &Score) {
        self.questions += other.questions;
        self.hit1 += other.hit1;
        self.hit5 += other.hit5;
        self.hit10 += other.hit10;
        self.recall5 += other.recall5;
        self.recall10 += other.recall10;
        self.mrr += other.mrr;
    }

    pub fn mean(&self, x: f64) -> f64 {
        if self.questions == 0 {
            0.0
        } else {
            x / self.questions as f64
        }
    }

    fn cells(&self) -> String {
        format!(
            "{} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3}",
            self.questions,
            self.mean(self.hit1),
            self.mean(self.hit5),
            self.mean(self.hit10),
            self.mean(self.recall5),
            self.mean(self.recall10),
            self.mean(self.mrr)
        )
    }

    fn json(&self) -> Value {
        serde_json::json!({
            "questions": self.questions,
            "hit@1": self.mean(self.hit1), "hit@5": self.mean(self.hit5), "hit@10": self.mean(self.hit10),
            "recall@5": self.mean(self.recall5), "recall@10": self.mean(self.recall10), "mrr": self.mean(self.mrr),
        })
    }
}

/// Opens a fresh database in `dir` that sees the model in `models` (a folder holding
/// `all-MiniLM-L6-v2/`), when given.
pub async fn fresh_backend(dir: &Path, name: &str, models: Option<&Path>) -> TursoBackend {
    let db_dir = dir.join(name);
    let _ = std::fs::remove_dir_all(&db_dir);
    std::fs::create_dir_all(&db_dir).unwrap();
    if let Some(models) = models {
        #[cfg(unix)]
        std::os::unix::fs::symlink(models, db_dir.join("models")).unwrap();
    }
    let backend = TursoBackend::open(BackendOptions::local(db_dir.join("memory.db")))
        .await
        .unwrap();
    if models.is_some() {
        assert!(backend.load_model().await, "the model does not load");
    }
    backend
}

/// Embeds every memory; returns memories per second.
pub async fn backfill(backend: &TursoBackend) -> f64 {
    let started = Instant::now();
    let mut n = 0;
    loop {
        let done = backend
            .embed_pending(memorygraph::backend::EMBED_BATCH)
            .await
            .unwrap();
        if done == 0 {
            break;
        }
        n += done;
    }
    n as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// Cuts a text at a word boundary before `max` characters.
fn cut_at_word(text: &str, max: usize) -> String {
    if text.chars().count() < max {
        return text.to_string();
    }
    let head: String = text.chars().take(max - 1).collect();
    match head.rfind(' ') {
        Some(i) if i > 0 => head[..i].to_string(),
        _ => head,
    }
}

/// One LoCoMo conversation stored as memories: the memory id of each turn.
async fn store_conversation(backend: &TursoBackend, conv: &Value) -> HashMap<String, String> {
    let c = &conv["conversation"];
    let mut by_turn = HashMap::new();
    let mut sessions: Vec<usize> = c
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|k| k.strip_prefix("session_")?.parse().ok())
        .collect();
    sessions.sort();
    sessions.dedup();
    for n in sessions {
        let date = c[format!("session_{n}_date_time")].as_str().unwrap_or("");
        for turn in c[format!("session_{n}")].as_array().into_iter().flatten() {
            let speaker = turn["speaker"].as_str().unwrap_or("");
            let text = turn["text"].as_str().unwrap_or("");
            let title = cut_at_word(&format!("{speaker}: {text}"), 120);
            let mut content = format!("{speaker} said ({date}): {text}");
            if let Some(caption) = turn["blip_caption"].as_str() {
                content.push_str(&format!(" [shared a photo: {caption}]"));
            }
            let tags = vec![format!("session-{n}"), speaker.to_lowercase()];
            let new = NewMemory::validate(
                "conversation",
                &title,
                &content,
                None,
                Some(&tags),
                None,
                None,
            )
            .unwrap();
            let stored = backend.store_memory(new, None).await.unwrap();
            by_turn.insert(
                turn["dia_id"].as_str().unwrap_or("").to_string(),
                stored.memory.id,
            );
        }
    }
    by_turn
}

/// Each question's lexical and semantic candidates with their scores, one JSON line per
/// question, for trying fusions offline (`--dump`).
pub struct Dump(std::io::BufWriter<std::fs::File>);

impl Dump {
    pub fn create(path: &Path) -> Dump {
        let file = std::fs::File::create(path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Dump(std::io::BufWriter::new(file))
    }

    /// Asks hybrid recall for every candidate of both lists (relevance and similarity
    /// come back on each hit) and writes them with the memories that should come first.
    async fn write(
        &mut self,
        backend: &TursoBackend,
        query: &str,
        context: Value,
        wanted: &[&String],
    ) {
        use std::io::Write;
        backend.set_fusion_params(FusionParams {
            lexical_candidates: 200,
            semantic_candidates: 200,
            ..FusionParams::default()
        });
        let mut req = SearchRequest::new(query, 400);
        req.mode = Some(SearchMode::Hybrid);
        let page = backend.recall(&req).await.unwrap();
        backend.set_fusion_params(FusionParams::default());
        let hits: Vec<Value> = page
            .hits
            .iter()
            .map(|h| serde_json::json!({"id": h.memory.id, "rel": h.relevance, "sim": h.similarity, "title": h.memory.title, "content": h.memory.content}))
            .collect();
        let mut line = context;
        line["query"] = query.into();
        line["wanted"] = serde_json::json!(wanted);
        line["hits"] = Value::Array(hits);
        writeln!(self.0, "{line}").unwrap();
    }
}

/// Which modes and fusions to compare.
#[derive(Clone)]
pub struct Variant {
    pub name: String,
    pub mode: SearchMode,
    pub params: Option<FusionParams>,
}

pub fn variants(tune: bool) -> Vec<Variant> {
    let mut out = vec![
        Variant {
            name: "lexical".into(),
            mode: SearchMode::Lexical,
            params: None,
        },
        Variant {
            name: "hybrid".into(),
            mode: SearchMode::Hybrid,
            params: None,
        },
    ];
    if tune {
        out.push(Variant {
            name: "semantic".into(),
            mode: SearchMode::Semantic,
            params: None,
        });
        let base = FusionParams::default();
        let scores = |semantic_weight: f64, by_coverage: bool| FusionParams {
            semantic_weight,
            by_coverage,
            // The fusions before coverage had no cosines for lexical candidates either.
            lexical_similarity: by_coverage,
            ..base
        };
        let ranks = |k: f64, semantic_weight: f64, by_coverage: bool| FusionParams {
            method: FusionMethod::Ranks,
            lexical_similarity: false,
            k,
            semantic_weight,
            by_coverage,
            ..base
        };
        for (name, p) in [
            (
                "scores 1:0.4 without the cosines of lexical candidates",
                FusionParams {
                    lexical_similarity: false,
                    ..base
                },
            ),
            ("scores 1:0.7 without coverage (before)", scores(0.7, false)),
            ("scores 1:1 without coverage", scores(1.0, false)),
            ("scores 1:0.3", scores(0.3, true)),
            ("scores 1:0.5", scores(0.5, true)),
            ("scores 1:0.7", scores(0.7, true)),
            (
                "scores 1:0.4 floor 0.1",
                FusionParams {
                    min_similarity: 0.1,
                    ..base
                },
            ),
            (
                "scores 1:0.4 lex200 sem100",
                FusionParams {
                    lexical_candidates: 200,
                    semantic_candidates: 100,
                    ..base
                },
            ),
            ("ranks k=60 1:1 without coverage", ranks(60.0, 1.0, false)),
            ("ranks k=60 1:1", ranks(60.0, 1.0, true)),
            ("ranks k=10 1:0.7", ranks(10.0, 0.7, true)),
        ] {
            out.push(Variant {
                name: format!("hybrid {name}"),
                mode: SearchMode::Hybrid,
                params: Some(p),
            });
        }
    }
    out
}

/// Runs LoCoMo over the conversations of `file` whose index is in `which`.
pub async fn locomo(
    file: &Path,
    which: &[usize],
    dir: &Path,
    models: &Path,
    tune: bool,
    mut dump: Option<&mut Dump>,
) -> Value {
    let data: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let conversations = data.as_array().expect("a list of conversations");
    let variants = variants(tune);
    // variant -> category -> score
    let mut scores: Vec<BTreeMap<u64, Score>> = vec![BTreeMap::new(); variants.len()];
    let mut rates = Vec::new();
    let mut skipped = 0;
    for &i in which {
        let Some(conv) = conversations.get(i) else {
            eprintln!("locomo: no conversation {i} in {}", file.display());
            continue;
        };
        let backend = fresh_backend(dir, &format!("locomo-{i}"), Some(models)).await;
        let by_turn = store_conversation(&backend, conv).await;
        let rate = backfill(&backend).await;
        rates.push(rate);
        let turns_of: HashMap<String, Vec<String>> =
            by_turn.iter().fold(HashMap::new(), |mut m, (turn, id)| {
                m.entry(id.clone()).or_default().push(turn.clone());
                m
            });
        eprintln!(
            "locomo: conversation {i}: {} turns, {} memories, embedded at {rate:.1}/s",
            by_turn.len(),
            turns_of.len()
        );
        for qa in conv["qa"].as_array().into_iter().flatten() {
            let evidence: Vec<String> = qa["evidence"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .flat_map(|e| e.split(';'))
                .map(|e| e.trim().to_string())
                .filter(|e| by_turn.contains_key(e))
                .collect();
            if evidence.is_empty() {
                skipped += 1;
                continue;
            }
            let category = qa["category"].as_u64().unwrap_or(0);
            let question = qa["question"].as_str().unwrap_or("");
            for (v, variant) in variants.iter().enumerate() {
                backend.set_fusion_params(variant.params.unwrap_or_default());
                let mut req = SearchRequest::new(question, 10);
                req.mode = Some(variant.mode);
                let page = if variant.mode == SearchMode::Semantic {
                    backend.search(&req).await.unwrap()
                } else {
                    backend.recall(&req).await.unwrap()
                };
                let ranked: Vec<Vec<String>> = page
                    .hits
                    .iter()
                    .map(|h| turns_of.get(&h.memory.id).cloned().unwrap_or_default())
                    .collect();
                scores[v]
                    .entry(category)
                    .or_default()
                    .add(&ranked, &evidence);
            }
            // Last: recall counts what it returns as used, which breaks ties.
            if let Some(dump) = &mut dump {
                let wanted: Vec<&String> = evidence.iter().map(|e| &by_turn[e]).collect();
                let context =
                    serde_json::json!({"set": "locomo", "conversation": i, "category": category});
                dump.write(&backend, question, context, &wanted).await;
            }
        }
        backend.set_fusion_params(FusionParams::default());
        drop(backend);
    }
    println!(
        "\nLoCoMo retrieval-only, conversations {which:?} ({skipped} questions without evidence turns skipped)\n"
    );
    println!(
        "| mode | category | questions | hit@1 | hit@5 | hit@10 | recall@5 | recall@10 | MRR |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut report = serde_json::Map::new();
    for (v, variant) in variants.iter().enumerate() {
        let mut all = Score::default();
        let mut rows = serde_json::Map::new();
        for (cat, s) in &scores[v] {
            if *cat != 5 {
                all.merge(s);
            }
        }
        println!(
            "| {} | 1–4 (all but adversarial) | {} |",
            variant.name,
            all.cells()
        );
        rows.insert("1-4".into(), all.json());
        for (cat, s) in &scores[v] {
            println!(
                "| {} | {cat}{} | {} |",
                variant.name,
                if *cat == 5 { " (adversarial)" } else { "" },
                s.cells()
            );
            rows.insert(cat.to_string(), s.json());
        }
        report.insert(variant.name.clone(), Value::Object(rows));
    }
    let rate = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    println!("\nbackfill: {rate:.1} memories/s on average (short turns)");
    serde_json::json!({"conversations": which, "scores": report, "backfill_per_second": rate})
}

/// Runs the paraphrase set among `corpus` generator memories.
pub async fn paraphrase(
    server: &Path,
    dir: &Path,
    models: &Path,
    corpus: usize,
    seed: u64,
    tune: bool,
    mut dump: Option<&mut Dump>,
) -> Value {
    let backend = fresh_backend(dir, "paraphrase", Some(models)).await;
    fill(&backend, corpus, seed).await;
    let mut targets = Vec::new();
    for p in super::paraphrase::PAIRS {
        let tags = vec!["dev".to_string()];
        let new =
            NewMemory::validate(p.kind, p.title, p.content, None, Some(&tags), None, None).unwrap();
        targets.push(backend.store_memory(new, None).await.unwrap().memory.id);
    }
    let rate = backfill(&backend).await;
    eprintln!(
        "paraphrase: {} memories embedded at {rate:.1}/s",
        corpus + targets.len()
    );
    let variants = variants(tune);
    println!(
        "\nParaphrase set: {} developer memories asked for in other words, among {corpus} generator memories\n",
        targets.len()
    );
    println!("| mode | queries | hit@1 | hit@5 | hit@10 | recall@5 | recall@10 | MRR |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut report = serde_json::Map::new();
    for variant in &variants {
        backend.set_fusion_params(variant.params.unwrap_or_default());
        let mut score = Score::default();
        for (p, id) in super::paraphrase::PAIRS.iter().zip(&targets) {
            let mut req = SearchRequest::new(p.query, 10);
            req.mode = Some(variant.mode);
            let page = if variant.mode == SearchMode::Semantic {
                backend.search(&req).await.unwrap()
            } else {
                backend.recall(&req).await.unwrap()
            };
            let ranked: Vec<Vec<String>> = page
                .hits
                .iter()
                .map(|h| vec![h.memory.id.clone()])
                .collect();
            score.add(&ranked, std::slice::from_ref(id));
        }
        println!("| {} | {} |", variant.name, score.cells());
        report.insert(variant.name.clone(), score.json());
    }
    // Last: recall counts what it returns as used, which breaks ties.
    if let Some(dump) = &mut dump {
        for (p, id) in super::paraphrase::PAIRS.iter().zip(&targets) {
            let context = serde_json::json!({"set": "paraphrase"});
            dump.write(&backend, p.query, context, &[id]).await;
        }
    }
    backend.set_fusion_params(FusionParams::default());
    backend.close().await.unwrap();
    let after_start = asked_after_start(server, &dir.join("paraphrase"), &targets);
    serde_json::json!({"corpus": corpus, "queries": targets.len(), "scores": report,
        "backfill_per_second": rate, "asked_right_after_start": after_start})
}

/// The paraphrase questions asked over stdio as a client asks them: a server started on the
/// embedded file, its first `recall_memories` sent as soon as `initialize` is answered
/// (while the model and the vectors are still loading), the default mode, the rest after.
fn asked_after_start(server: &Path, home: &Path, targets: &[String]) -> Value {
    let env = [("HOME", home.display().to_string())];
    let (mut client, started) = crate::client::Client::start(server, &home.join("memory.db"), &env);
    let mut score = Score::default();
    let mut first_ms = 0.0;
    for (i, (p, id)) in super::paraphrase::PAIRS.iter().zip(targets).enumerate() {
        let (answer, took) = client.call(
            "recall_memories",
            serde_json::json!({"query": p.query, "limit": 10}),
        );
        if i == 0 {
            first_ms = took.as_secs_f64() * 1000.0;
        }
        let ranked: Vec<Vec<String>> = answer["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| vec![r["id"].as_str().unwrap_or_default().to_string()])
            .collect();
        score.add(&ranked, std::slice::from_ref(id));
    }
    client.stop();
    println!(
        "\nAsked right after start over stdio (the first recall sent once `initialize` was answered, {:.0} ms after spawn; it was answered {first_ms:.0} ms later): | {} |\n",
        started.as_secs_f64() * 1000.0,
        score.cells()
    );
    let mut json = score.json();
    json["first_answer_ms"] = serde_json::json!(first_ms);
    json
}

/// The folder holding `all-MiniLM-L6-v2/` for a `--model-home` (a data folder where
/// `memorygraph model install` ran).
pub fn models_of(home: &Path) -> PathBuf {
    home.join("models")
}

/// Latency of recall at `n` memories, lexical and hybrid (query embedding included). The
/// memories get random unit vectors instead of embedded ones: the query path's cost does not
/// depend on what the vectors say, and embedding `n` long memories first would take long.
pub async fn recall_latency(
    dir: &Path,
    models: &Path,
    n: usize,
    queries: usize,
    seed: u64,
) -> Value {
    let backend = fresh_backend(dir, "latency", Some(models)).await;
    let mut rng = fill(&backend, n, seed).await;
    backend.fill_random_vectors(seed).await.unwrap();
    let mut report = serde_json::Map::new();
    // The first semantic search loads the in-memory copy of the vectors.
    let (_, load, vectors, bytes) = backend.time_semantic("warm up", 50).await.unwrap();
    println!(
        "\nIn-memory copy of the vectors: {vectors} vectors, {:.1} MB, loaded by the first search in {load:.1} ms",
        bytes as f64 / 1e6
    );
    report.insert(
        "index".into(),
        serde_json::json!({"vectors": vectors, "bytes": bytes, "load_ms": load}),
    );
    println!("\nRecall latency at {n} memories, in-process, {queries} queries (ms)\n");
    println!("| mode | p50 | p95 | p99 |");
    println!("|---|---:|---:|---:|");
    for mode in [SearchMode::Lexical, SearchMode::Hybrid] {
        let mut times = Vec::new();
        for q in 0..queries {
            let text = question(&mut rng, q);
            let mut req = SearchRequest::new(&text, 10);
            req.mode = Some(mode);
            let t = Instant::now();
            backend.recall(&req).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        percentiles(&mut report, mode.as_str(), &mut times);
    }
    // The semantic side alone: the query's embedding, then the nearest 50 (what hybrid
    // recall asks for), each timed apart.
    let (mut embedding, mut searching) = (Vec::new(), Vec::new());
    for q in 0..queries {
        let text = question(&mut rng, q);
        let (e, s, _, _) = backend.time_semantic(&text, 50).await.unwrap();
        embedding.push(e);
        searching.push(s);
    }
    println!("\n| semantic side | p50 | p95 | p99 |\n|---|---:|---:|---:|");
    // What the background worker and `health` cost when every memory has its vector: the
    // worker checks after every burst of writes, on the thread that answers requests.
    let (mut worker, mut counts) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(backend.embed_pending(16).await.unwrap(), 0);
        worker.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        backend.vector_counts().await.unwrap();
        counts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    for (name, times) in [
        ("query embedding", &mut embedding),
        ("nearest 50", &mut searching),
        ("worker round, nothing to embed", &mut worker),
        ("health's vector counts", &mut counts),
    ] {
        percentiles(&mut report, name, times);
    }
    Value::Object(report)
}

/// A new question each time (`q` makes it unique), so a query vector is never cached.
fn question(rng: &mut super::corpus::Rng, q: usize) -> String {
    format!("{} {q}", super::corpus::question(rng))
}

/// Prints a row of p50, p95 and p99 of `times` (ms) and records them under `name`.
fn percentiles(report: &mut serde_json::Map<String, Value>, name: &str, times: &mut [f64]) {
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "| {name} | {:.2} | {:.2} | {:.2} |",
        at(0.5),
        at(0.95),
        at(0.99)
    );
    report.insert(
        name.into(),
        serde_json::json!({"p50": at(0.5), "p95": at(0.95), "p99": at(0.99)}),
    );
}

/// Backfill speed in memories per second, for short memories (a title and about 20 words)
/// and for the generator's long ones, `n` of each, embedded as `reindex --embeddings` does.
pub async fn backfill_rates(dir: &Path, models: &Path, n: usize, seed: u64) -> Value {
    let mut report = serde_json::Map::new();
    println!("\nBackfill at {n} memories (memories per second)\n");
    println!("| memories | products | per second |\n|---|---|---:|");
    for long in [false, true] {
        let name = if long { "long" } else { "short" };
        let backend = fresh_backend(dir, &format!("backfill-{name}"), Some(models)).await;
        let precision = backend.semantic_health("hybrid").await.unwrap().precision;
        let precision = precision.unwrap_or_default();
        let mut rng = super::corpus::Rng::new(seed);
        for i in 0..n {
            let mut m = super::corpus::memory(&mut rng, i);
            if !long {
                m.content = m
                    .content
                    .split_whitespace()
                    .take(20)
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            backend.store_memory(m.to_new(), None).await.unwrap();
        }
        let rate = backfill(&backend).await;
        println!("| {name} | {precision} | {rate:.1} |");
        report.insert(name.into(), serde_json::json!(rate));
        report.insert("precision".into(), serde_json::json!(precision));
    }
    Value::Object(report)
}

/// Stores the first `n` memories of the benchmark corpus drawn from `seed`; returns the
/// generator, to draw on from where the corpus ended.
async fn fill(backend: &TursoBackend, n: usize, seed: u64) -> super::corpus::Rng {
    let mut rng = super::corpus::Rng::new(seed);
    for i in 0..n {
        let m = super::corpus::memory(&mut rng, i);
        backend.store_memory(m.to_new(), None).await.unwrap();
    }
    rng
}

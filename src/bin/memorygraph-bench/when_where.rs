//! The question set over time and projects: questions that say when ("last week", "in
//! March") or that are asked from inside one project among several, over memories whose
//! words alone cannot tell the answer from its look-alikes. Each question is asked over
//! stdio twice: as words only (`terms`, every project alike: how a server that reads neither
//! time nor projects answers) and as the question it is (`query`, in its project's session).
//! hit@5: the share of questions whose one right memory is among the first five results.
//!
//! Dates are made relative to the moment of the run, in this machine's time zone, so every
//! expression names the memory it was written for whatever the day.

use std::path::Path;

use chrono::{DateTime, Datelike, Duration, Local, Months, NaiveDate, TimeZone};
use serde_json::{Value, json};

use crate::client::Client;
use crate::corpus::Rng;

/// Subjects decided again and again over the year: twelve versions each, the same title.
const SUBJECTS: [&str; 8] = [
    "retry policy",
    "deploy script",
    "database migration plan",
    "logging format",
    "cache expiry",
    "release branch naming",
    "API rate limit",
    "test fixture layout",
];

/// Set up differently in each of eight projects: one memory per project, the same title.
const SETUPS: [&str; 6] = [
    "CI runner setup",
    "local dev database",
    "secrets handling",
    "code review rules",
    "error tracking",
    "dependency update routine",
];

const PROJECTS: [&str; 8] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
];

/// A question and the one memory that answers it.
struct Question {
    text: String,
    want: String,
    /// The project whose session asks it; `None`: a session with no project.
    project: Option<&'static str>,
}

/// Noon on a day, in this machine's time zone, as a stored timestamp.
fn noon(day: NaiveDate) -> DateTime<Local> {
    Local
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
        .earliest()
        .unwrap()
}

/// The 15th of the month `back` months before this one.
fn mid_month(today: NaiveDate, back: u32) -> NaiveDate {
    let first = today.with_day(1).unwrap() - Months::new(back);
    first.with_day(15).unwrap()
}

fn memory(
    id: String,
    title: &str,
    content: String,
    at: DateTime<Local>,
    project: Option<String>,
) -> Value {
    let at = at.to_rfc3339();
    let mut m = json!({"id": id, "type": "general", "title": title, "content": content,
        "tags": [], "importance": 0.5, "confidence": 0.8, "created_at": at, "updated_at": at});
    if let Some(p) = project {
        m["context"] = json!({"project_path": p});
    }
    m
}

/// The memories (as an export file's list) and the questions, for a run at `now`.
fn build(root: &Path, now: DateTime<Local>, seed: u64) -> (Vec<Value>, Vec<Question>) {
    let mut rng = Rng::new(seed);
    let today = now.date_naive();
    let mut memories = Vec::new();
    let mut questions = Vec::new();
    for (s, subject) in SUBJECTS.iter().enumerate() {
        // Version 0 yesterday, 1 a week ago, 2–11 mid-month 2–11 months back, 12 mid-June
        // of last year.
        let mut days: Vec<DateTime<Local>> = vec![
            noon(today - Duration::days(1)),
            noon(today - Duration::days(7)),
        ];
        days.extend((2..12).map(|back| noon(mid_month(today, back))));
        days.push(noon(
            NaiveDate::from_ymd_opt(today.year() - 1, 6, 15).unwrap(),
        ));
        let id = |v: usize| format!("00000000-0000-4000-8000-{:06}{:06}", s, v);
        for (v, at) in days.iter().enumerate() {
            let content = format!("Decision on the {subject}: {}.", rng.words(14));
            memories.push(memory(id(v), &format!("The {subject}"), content, *at, None));
        }
        let month = |v: usize| days[v].format("%B").to_string();
        let date = |v: usize| days[v].format("%Y-%m-%d").to_string();
        let kinds = [
            ("last week".to_string(), 1),
            ("yesterday".to_string(), 0),
            ("two months ago".to_string(), 2),
            (format!("in {}", month(5)), 5),
            (format!("on {}", date(4)), 4),
            ("last year".to_string(), 12),
            (format!("in {}", month(8)), 8),
            ("three months ago".to_string(), 3),
            ("six months ago".to_string(), 6),
            (format!("in {}", month(7)), 7),
            (format!("on {}", date(9)), 9),
            ("ten months ago".to_string(), 10),
        ];
        // Two questions a subject, about two different versions.
        for (phrase, v) in [&kinds[s], &kinds[(s + 8) % kinds.len()]] {
            questions.push(Question {
                text: format!("what did we decide {phrase} about the {subject}"),
                want: id(*v),
                project: None,
            });
        }
    }
    for (s, setup) in SETUPS.iter().enumerate() {
        let id = |p: usize| format!("00000000-0000-4000-9000-{:06}{:06}", s, p);
        for (p, project) in PROJECTS.iter().enumerate() {
            let content = format!("How the {setup} works: {}.", rng.words(14));
            let path = root.join(project).display().to_string();
            let at = noon(today - Duration::days(1 + rng.below(200) as i64));
            memories.push(memory(
                id(p),
                &format!("The {setup}"),
                content,
                at,
                Some(path),
            ));
        }
        // Asked from two projects that vary with the subject, so no place in the import
        // order is favoured.
        for p in [(3 * s + 2) % PROJECTS.len(), (5 * s + 7) % PROJECTS.len()] {
            let project = PROJECTS[p];
            questions.push(Question {
                text: format!("how is the {setup} done"),
                want: id(p),
                project: Some(project),
            });
        }
    }
    (memories, questions)
}

/// Whether the wanted memory is among a page's first five.
fn hit(page: &Value, want: &str) -> bool {
    page["results"]
        .as_array()
        .map(|r| r.iter().take(5).any(|m| m["id"] == want))
        .unwrap_or(false)
}

/// Runs the set; prints and returns hit@5 for each way of asking, by kind of question.
pub fn run(server: &Path, dir: &Path, seed: u64, models: Option<&Path>) -> Value {
    let root = dir.join("when-where");
    let _ = std::fs::remove_dir_all(&root);
    for project in PROJECTS {
        std::fs::create_dir_all(root.join(project).join(".git")).unwrap();
    }
    let db = root.join("memory.db");
    let (memories, questions) = build(&root, Local::now(), seed);
    let file = root.join("memories.json");
    let export = json!({"format_version": "2.0", "export_version": "1.0", "backend_type": "sqlite",
        "memory_count": memories.len(), "relationship_count": 0,
        "memories": memories, "relationships": []});
    std::fs::write(&file, export.to_string()).unwrap();
    let imported = std::process::Command::new(server)
        .env("MEMORY_TURSO_PATH", &db)
        .args(["import", "--input"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    if let Some(models) = models {
        // The model beside the database: the sessions search hybrid, once every memory
        // has its vector.
        std::os::unix::fs::symlink(models, root.join("models")).unwrap();
        let (mut client, _) = Client::start(server, &db, &[]);
        let waited = std::time::Instant::now();
        loop {
            let (answer, _) = client.call("health", json!({}));
            let semantic = &answer["semantic"];
            if semantic["state"] == "ready" && semantic["pending"] == 0 {
                break;
            }
            assert!(
                waited.elapsed() < std::time::Duration::from_secs(300),
                "the memories were not embedded: {semantic}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        client.stop();
    }
    let ways = [
        "words only (search, terms)",
        "question (search)",
        "question (recall)",
    ];
    let mut hits = [[0usize; 3]; 2];
    let mut counts = [0usize; 2];
    let mut misses = Vec::new();
    // One session per project (its working directory in the project), and one with none.
    let mut sessions: Vec<(Option<&str>, Client)> = Vec::new();
    for q in &questions {
        if !sessions.iter().any(|(p, _)| *p == q.project) {
            let cwd = q.project.map_or(root.clone(), |p| root.join(p).join("src"));
            std::fs::create_dir_all(&cwd).unwrap();
            sessions.push((q.project, Client::start_in(server, &db, &[], &cwd).0));
        }
        let client = &mut sessions
            .iter_mut()
            .find(|(p, _)| *p == q.project)
            .unwrap()
            .1;
        let kind = usize::from(q.project.is_some());
        counts[kind] += 1;
        let words: Vec<&str> = q.text.split_whitespace().collect();
        let asked = [
            client.call(
                "search_memories",
                json!({"terms": words, "scope": "all", "limit": 5}),
            ),
            client.call("search_memories", json!({"query": q.text, "limit": 5})),
            client.call("recall_memories", json!({"query": q.text, "limit": 5})),
        ];
        for (way, (answer, _)) in asked.iter().enumerate() {
            if hit(answer, &q.want) {
                hits[kind][way] += 1;
            } else if way > 0 {
                misses.push(format!("{} ({})", q.text, ways[way]));
            }
        }
    }
    for (_, client) in sessions {
        client.stop();
    }
    let mut report = serde_json::Map::new();
    println!("| questions | n | {} |", ways.join(" | "));
    println!("|---|---:|---:|---:|---:|");
    for (kind, name) in ["time", "project"].iter().enumerate() {
        let rate: Vec<f64> = (0..3)
            .map(|way| hits[kind][way] as f64 / counts[kind].max(1) as f64)
            .collect();
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} |",
            counts[kind], rate[0], rate[1], rate[2]
        );
        report.insert(
            (*name).into(),
            json!({"questions": counts[kind], "hit_at_5": {
                "words_only": rate[0], "search": rate[1], "recall": rate[2]}}),
        );
    }
    for miss in &misses {
        eprintln!("missed: {miss}");
    }
    report.insert("missed".into(), json!(misses));
    Value::Object(report)
}

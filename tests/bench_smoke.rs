//! The benchmark runs end to end on a small corpus, so it cannot rot. No timing is asserted.

use serde_json::Value;

#[test]
fn the_benchmark_runs_and_reports_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memorygraph-bench"))
        .args([
            "--sizes",
            "200",
            "--queries",
            "20",
            "--skip-replica",
            "--server",
            env!("CARGO_BIN_EXE_memorygraph"),
        ])
        .arg("--json")
        .arg(&json)
        .arg("--dir")
        .arg(dir.path().join("work"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    for operation in [
        "cold start: spawn → initialize (new file)",
        "cold start: spawn → initialize (populated)",
        "store_memory",
        "create_relationship",
        "get_memory",
        "search: common word",
        "search: phrase",
        "search: rare word",
        "search: word in every memory",
        "search: typo of a rare word",
        "recall_memories",
        "get_related_memories depth 1",
        "get_related_memories depth 3",
        "server peak RSS",
        "database size on disk",
    ] {
        let row = rows
            .iter()
            .find(|r| r["operation"] == operation)
            .unwrap_or_else(|| panic!("no {operation} row"));
        assert!(table.contains(operation), "the table shows {operation}");
        if !operation.starts_with("server") && !operation.starts_with("database") {
            assert!(
                row["samples"].as_u64().unwrap() > 0,
                "{operation} was measured"
            );
            assert!(
                row["ratio"].is_number(),
                "{operation} has its raw-libsql ratio"
            );
        }
    }
    let typo = rows
        .iter()
        .find(|r| r["operation"] == "search: typo of a rare word")
        .unwrap();
    assert!(
        typo["note"].as_str().unwrap().starts_with("1 matches"),
        "typos find their memory: {typo}"
    );
}

/// Runs `memorygraph-bench ARGS --server <the binary> --dir <a scratch folder>`; the table
/// it printed, after it succeeded.
fn bench_table(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memorygraph-bench"))
        .args(args)
        .arg("--server")
        .arg(env!("CARGO_BIN_EXE_memorygraph"))
        .arg("--dir")
        .arg(dir.path().join("work"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}\n{table}",
        String::from_utf8_lossy(&out.stderr)
    );
    table
}

/// `--owners`: windows on one database, a forwarded call, HTTP, owners killed; every row
/// is printed.
#[test]
fn the_owners_run_reports_memory_forwarding_http_and_hand_over() {
    let table = bench_table(&["--owners", "3", "--owner-memories", "120"]);
    assert!(
        table.contains("3 windows on one database of 120 memories"),
        "{table}"
    );
    for row in [
        "search, through a forwarding window",
        "get_memory, through a forwarding window",
        "search over HTTP (serve --http)",
        "get_memory right after the owner is killed",
    ] {
        assert!(table.contains(row), "no {row} row:\n{table}");
    }
}

/// `--web`: the first page and a search from the page, beside stdio; every row is printed.
#[test]
fn the_web_run_reports_the_first_page_and_a_search() {
    let table = bench_table(&["--web", "120"]);
    for row in ["web view: first page", "web view: a search from the page"] {
        assert!(table.contains(row), "no {row} row:\n{table}");
    }
}

/// `--when-where`: the question set over time and projects, asked as words only and as
/// questions. The set is built so that reading the time and the project finds every answer.
#[test]
fn the_when_where_run_reports_hit_at_5_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("when-where.json");
    let table = bench_table(&["--when-where", "--json", json.to_str().unwrap()]);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for (kind, n) in [("time", 16), ("project", 12)] {
        assert!(table.contains(&format!("| {kind} | {n} |")), "{table}");
        let hits = &report[kind]["hit_at_5"];
        assert_eq!(hits["search"], 1.0, "{kind}: {report}");
        assert_eq!(hits["recall"], 1.0, "{kind}: {report}");
        assert!(
            hits["words_only"].as_f64().unwrap() < 1.0,
            "{kind}: {report}"
        );
    }
}

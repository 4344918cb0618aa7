//! The command line's memory commands: each one's happy path, a failure with its exit code,
//! `--json` answers that are the MCP tools' own structured answers, and `--help` everywhere.

mod common;

use common::run::{run, run_with_input};
use common::{Scratch, Server};
use serde_json::json;

const SUBCOMMANDS: [&str; 13] = [
    "serve", "store", "get", "search", "recall", "related", "stats", "health", "sync", "export",
    "import", "migrate", "reindex",
];

#[test]
fn every_subcommand_has_help_and_the_exit_codes_are_documented() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let top = run(&db, &["--help"]).ok();
    for name in SUBCOMMANDS {
        assert!(top.stdout.contains(name), "--help lists {name}");
        let help = run(&db, &[name, "--help"]).ok();
        assert!(
            help.stdout.contains("Usage:"),
            "{name} --help:\n{}",
            help.stdout
        );
    }
    assert!(top.stdout.contains("Exit codes: 0 success; 1"));
    let unknown = run(&db, &["frobnicate"]);
    assert_eq!(unknown.code, 2, "an unknown command is a usage error");
}

fn store(db: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["--json", "store"];
    all.extend_from_slice(args);
    let out = run(db, &all).ok();
    out.json()["memory_id"].as_str().unwrap().to_string()
}

#[test]
fn store_get_search_recall_related_stats_health() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let problem = store(
        &db,
        &[
            "--type",
            "problem",
            "--title",
            "Checkout times out",
            "--content",
            "The payment call hangs after thirty seconds.",
            "--tag",
            "Payments,latency",
            "--importance",
            "0.8",
            "--project",
            "/srv/shop",
        ],
    );
    let fix_out = run_with_input(
        &db,
        &[
            "store",
            "--type",
            "fix",
            "--title",
            "Raise the payment timeout",
            "--content",
            "-",
        ],
        "Set PAYMENT_TIMEOUT=90 in the checkout service.\n",
    )
    .ok();
    assert!(
        fix_out.stdout.starts_with("Stored memory "),
        "{}",
        fix_out.stdout
    );
    let fix = fix_out
        .stdout
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();

    // get: human and JSON.
    let human = run(&db, &["get", &problem]).ok();
    assert!(human.stdout.contains("# Checkout times out"));
    assert!(human.stdout.contains("tags: payments, latency"));
    let got = run(&db, &["get", &problem, "--json"]).ok().json();
    assert_eq!(got["memory"]["title"], "Checkout times out");
    assert_eq!(got["memory"]["context"]["project_path"], "/srv/shop");
    let fix_memory = run(&db, &["--json", "get", &fix]).ok().json();
    assert_eq!(
        fix_memory["memory"]["content"],
        "Set PAYMENT_TIMEOUT=90 in the checkout service."
    );

    // Link them through the MCP server, then walk the link from the command line.
    let mut server = Server::started(&db, &[("MEMORY_TOOL_PROFILE", "extended")]);
    server.ok(
        "create_relationship",
        json!({"from_memory_id": fix, "to_memory_id": problem, "relationship_type": "SOLVES"}),
    );
    let tool_stats = server.ok("get_memory_statistics", json!({}));
    drop(server);

    let related = run(&db, &["--json", "related", &problem, "--depth", "1"])
        .ok()
        .json();
    assert_eq!(related["total"], 1);
    assert_eq!(related["related"][0]["memory"]["id"], fix.as_str());
    assert_eq!(related["related"][0]["relationship"]["type"], "SOLVES");
    let related_text = run(&db, &["related", &problem, "--type", "solves"]).ok();
    assert!(
        related_text.stdout.contains("SOLVES"),
        "{}",
        related_text.stdout
    );

    let found = run(&db, &["--json", "search", "payment", "--type", "problem"])
        .ok()
        .json();
    assert_eq!(found["total"], 1);
    assert_eq!(found["results"][0]["id"], problem.as_str());
    let found_text = run(&db, &["search", "paymnet timeout"]).ok();
    assert!(
        found_text.stdout.contains("Raise the payment timeout"),
        "{}",
        found_text.stdout
    );

    let recalled = run(&db, &["--json", "recall", "why does checkout hang"])
        .ok()
        .json();
    assert!(
        recalled["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == problem.as_str())
    );

    // The same structured answer as the tool gives.
    let stats = run(&db, &["stats", "--json"]).ok().json();
    assert_eq!(stats, tool_stats);
    assert_eq!(stats["total_memories"], 2);
    let stats_text = run(&db, &["stats"]).ok();
    assert!(
        stats_text.stdout.contains("Total memories: 2"),
        "{}",
        stats_text.stdout
    );

    let health = run(&db, &["health", "--json"]).ok().json();
    assert_eq!(health["mode"], "local");
    assert_eq!(health["database"]["memories"], 2);
    assert!(run(&db, &["health"]).ok().stdout.contains("local"));
}

#[test]
fn failures_have_their_exit_codes() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let missing = run(&db, &["get", "00000000-0000-4000-8000-000000000000"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);
    assert!(missing.stdout.is_empty());

    let missing_json = run(&db, &["--json", "related", "nope"]);
    assert_eq!(missing_json.code, 1);

    let bad_type = run(
        &db,
        &["store", "--type", "fixx", "--title", "t", "--content", "c"],
    );
    assert_eq!(bad_type.code, 2, "{}", bad_type.stderr);
    assert!(
        bad_type.stderr.contains("unknown memory type"),
        "{}",
        bad_type.stderr
    );

    let empty_title = run(
        &db,
        &["store", "--type", "fix", "--title", " ", "--content", "c"],
    );
    assert_eq!(empty_title.code, 1);
    assert!(
        empty_title.stderr.contains("title"),
        "{}",
        empty_title.stderr
    );

    // A flag's value out of its documented range is a usage mistake, found before the
    // database is opened.
    let bad_depth = run(&db, &["related", "x", "--depth", "9"]);
    assert_eq!(bad_depth.code, 2);
    assert!(bad_depth.stderr.contains("--depth"), "{}", bad_depth.stderr);
    for args in [
        &["search", "--limit", "0"][..],
        &["search", "--offset=-1"],
        &["search", "--min-importance", "1.5"],
        &["recall", "q", "--limit", "1001"],
        &[
            "store",
            "--type",
            "fix",
            "--title",
            "t",
            "--content",
            "c",
            "--importance",
            "2",
        ],
        &["export", "--format", "dot", "--around", "x", "--depth", "6"],
    ] {
        let out = run(&db, args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr
                .lines()
                .next()
                .map(|l| l.contains("invalid value")),
            Some(true),
            "{args:?}: {}",
            out.stderr
        );
    }

    // migrate without its direction, or without a primary, is a usage mistake too.
    let from = scratch.dir.path().join("old.db");
    std::fs::write(&from, b"").unwrap();
    let from = from.to_str().unwrap();
    let no_direction = run(&db, &["migrate", "--from", from]);
    assert_eq!(no_direction.code, 2, "{}", no_direction.stderr);
    assert!(
        no_direction.stderr.contains("--to-replica"),
        "{}",
        no_direction.stderr
    );
    let no_primary = run(&db, &["migrate", "--to-replica", "--from", from]);
    assert_eq!(no_primary.code, 2, "{}", no_primary.stderr);
    assert!(
        no_primary.stderr.contains("TURSO_DATABASE_URL"),
        "{}",
        no_primary.stderr
    );
    assert_eq!(
        no_primary.stderr.lines().count(),
        1,
        "{}",
        no_primary.stderr
    );
    let db_path = db.to_str().unwrap();
    let onto_itself = common::replica::run_replica(
        &db,
        "http://127.0.0.1:9",
        &["migrate", "--to-replica", "--from", db_path],
    );
    assert_eq!(onto_itself.code, 2, "{}", onto_itself.stderr);
    assert!(
        onto_itself.stderr.contains("move the local file aside"),
        "{}",
        onto_itself.stderr
    );

    let missing_arg = run(&db, &["recall"]);
    assert_eq!(missing_arg.code, 2);

    // Local mode has nothing to sync.
    assert_eq!(run(&db, &["sync"]).code, 1);
    assert_eq!(run(&db, &["sync", "--json"]).code, 1);

    // An invalid setting is a configuration error.
    let bad_setting = run(&db, &["--tool-profile", "huge", "stats"]);
    assert_eq!(bad_setting.code, 2);
}

#[test]
fn store_refuses_a_likely_secret_unless_allowed() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let key = "AKIAIOSFODNN7EXAMPLE";
    let content = format!("aws_access_key_id = {key}");
    let args = [
        "store",
        "--type",
        "fix",
        "--title",
        "keys",
        "--content",
        &content,
    ];
    let refused = run(&db, &args);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("allow_secrets"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(key), "{}", refused.stderr);
    let stats = run(&db, &["--json", "stats"]).ok().json();
    assert_eq!(
        stats["total_memories"], 0,
        "the refused memory was not written"
    );

    let mut allowed = args.to_vec();
    allowed.push("--allow-secrets");
    run(&db, &allowed).ok();
    let stats = run(&db, &["--json", "stats"]).ok().json();
    assert_eq!(stats["total_memories"], 1);
}

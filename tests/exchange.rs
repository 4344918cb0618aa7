//! Export and import: MemoryGraph's JSON export of the fixture imports completely, the
//! reference memory server's file imports, export → import → export is the identity, and
//! the pictures and Markdown show what is there.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::run::run;
use common::{Scratch, fixture_json};
use serde_json::Value;

fn fixture_export(scratch: &Scratch) -> String {
    scratch
        .fixture("memorygraph-0.12.4.export.json")
        .display()
        .to_string()
}

fn export_json(db: &Path, file: &Path) -> Value {
    run(
        db,
        &[
            "export",
            "--format",
            "json",
            "--output",
            file.to_str().unwrap(),
        ],
    )
    .ok();
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

fn counts(db: &Path) -> (u64, u64) {
    let stats = run(db, &["--json", "stats"]).ok().json();
    (
        stats["total_memories"].as_u64().unwrap(),
        stats["total_relationships"].as_u64().unwrap(),
    )
}

#[test]
fn memorygraph_export_imports_completely() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let expected = fixture_json("expected.json");
    let input = fixture_export(&scratch);
    let report = run(&db, &["--json", "import", "--input", &input])
        .ok()
        .json();
    assert_eq!(report["memories_imported"], expected["counts"]["memories"]);
    assert_eq!(
        report["relationships_imported"],
        expected["counts"]["relationships"]
    );
    assert_eq!(report["relationships_skipped_missing_endpoint"], 0);

    let stats = run(&db, &["--json", "stats"]).ok().json();
    assert_eq!(
        stats["memories_by_type"],
        expected["counts"]["memories_by_type"]
    );
    assert_eq!(
        stats["relationships_by_type"],
        expected["counts"]["relationships_by_type"]
    );

    // Every memory with its id, text, tags, scores and times; every relationship with its
    // ends, type, scores and context.
    let ours = export_json(&db, &scratch.dir.path().join("ours.json"));
    let by_id: BTreeMap<&str, &Value> = ours["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m))
        .collect();
    for want in expected["memories"].as_array().unwrap() {
        let got = by_id[want["id"].as_str().unwrap()];
        for field in [
            "type",
            "title",
            "content",
            "summary",
            "tags",
            "importance",
            "confidence",
            "created_at",
            "updated_at",
        ] {
            assert_eq!(got[field], want[field], "{field} of {}", want["id"]);
        }
        if let Some(project) = want["context"].get("project_path") {
            assert_eq!(&got["context"]["project_path"], project);
        }
    }
    let links: BTreeSet<String> = ours["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {}",
                r["from_memory_id"],
                r["type"],
                r["to_memory_id"],
                r["properties"]["strength"],
                r["properties"]["confidence"],
                r["properties"]["context"]
            )
        })
        .collect();
    for want in expected["relationships"].as_array().unwrap() {
        let line = format!(
            "{} {} {} {} {} {}",
            want["from"],
            want["type"],
            want["to"],
            want["strength"],
            want["confidence"],
            want["context_stored"]
        );
        assert!(links.contains(&line), "missing relationship {line}");
    }
}

#[test]
fn export_import_export_is_the_identity() {
    let scratch = Scratch::new();
    let first_db = scratch.dir.path().join("first.db");
    let input = fixture_export(&scratch);
    run(&first_db, &["import", "--input", &input]).ok();
    // Something only our export carries: a superseded link with its temporal fields.
    let first = export_json(&first_db, &scratch.dir.path().join("first.json"));

    let second_db = scratch.dir.path().join("second.db");
    let first_file = scratch.dir.path().join("first.json");
    run(
        &second_db,
        &["import", "--input", first_file.to_str().unwrap()],
    )
    .ok();
    let second = export_json(&second_db, &scratch.dir.path().join("second.json"));

    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("export_date");
        v
    };
    assert_eq!(strip(first.clone()), strip(second));
    assert_eq!(first["format_version"], "2.0");
    let rel = &first["relationships"][0];
    for field in [
        "id",
        "valid_from",
        "valid_until",
        "recorded_at",
        "invalidated_by",
    ] {
        assert!(rel.get(field).is_some(), "relationship field {field}");
    }
}

#[test]
fn superseded_links_keep_their_temporal_fields() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let old = run(
        &db,
        &[
            "--json",
            "store",
            "--type",
            "fix",
            "--title",
            "Old fix",
            "--content",
            "a",
        ],
    )
    .ok()
    .json()["memory_id"]
        .as_str()
        .unwrap()
        .to_string();
    run(
        &db,
        &[
            "store",
            "--type",
            "fix",
            "--title",
            "New fix",
            "--content",
            "b",
            "--supersedes",
            &old,
        ],
    )
    .ok();
    let file = scratch.dir.path().join("out.json");
    let mut doc = export_json(&db, &file);
    // Mark the link superseded, as a later correction would, and carry it across.
    let rel = &mut doc["relationships"][0];
    rel["valid_until"] = "2030-01-01T00:00:00.000000+00:00".into();
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    let other = scratch.dir.path().join("other.db");
    run(&other, &["import", "--input", file.to_str().unwrap()]).ok();
    let back = export_json(&other, &scratch.dir.path().join("back.json"));
    assert_eq!(back["relationships"][0]["type"], "REPLACES");
    assert_eq!(
        back["relationships"][0]["valid_until"],
        "2030-01-01T00:00:00.000000+00:00"
    );
    assert_eq!(
        back["relationships"][0]["id"],
        doc["relationships"][0]["id"]
    );
    // A superseded link is history: not drawn, not walked.
    let dot = run(&other, &["export", "--format", "dot"]).ok();
    assert!(!dot.stdout.contains("REPLACES"));
}

#[test]
fn duplicates_stop_the_import_unless_skipped_and_a_dry_run_writes_nothing() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let input = fixture_export(&scratch);

    let dry = run(&db, &["import", "--input", &input, "--dry-run"]).ok();
    assert!(
        dry.stdout
            .contains("Would import 61 memories and 50 relationships"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("nothing was written"));
    assert_eq!(counts(&db), (0, 0));

    run(&db, &["import", "--input", &input]).ok();
    let again = run(&db, &["import", "--input", &input]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("already in the database"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("--skip-duplicates"));
    assert_eq!(counts(&db), (61, 50));

    let skipped = run(
        &db,
        &["--json", "import", "--input", &input, "--skip-duplicates"],
    )
    .ok()
    .json();
    assert_eq!(skipped["memories_imported"], 0);
    assert_eq!(skipped["memories_skipped"], 61);
    assert_eq!(skipped["relationships_skipped_existing"], 50);
    assert_eq!(counts(&db), (61, 50));

    // A file with one bad memory imports nothing, and says which entry is wrong.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
    doc["memories"][3]["type"] = "nonsense".into();
    let broken = scratch.dir.path().join("broken.json");
    std::fs::write(&broken, doc.to_string()).unwrap();
    let fresh = scratch.dir.path().join("fresh.db");
    let failed = run(&fresh, &["import", "--input", broken.to_str().unwrap()]);
    assert_eq!(failed.code, 1);
    assert!(failed.stderr.contains("memories[3]"), "{}", failed.stderr);
    assert_eq!(counts(&fresh), (0, 0));
}

#[test]
fn reference_server_file_imports_with_its_relations_mapped() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let expected = fixture_json("server-memory.expected.json");
    let input = scratch.fixture("server-memory.jsonl");
    let report = run(
        &db,
        &["--json", "import", "--input", input.to_str().unwrap()],
    )
    .ok()
    .json();
    let entities = expected["counts"]["entities"].as_u64().unwrap();
    let relations = expected["counts"]["relations"].as_u64().unwrap();
    let dangling = expected["dangling_relations"].as_array().unwrap().len() as u64;
    assert_eq!(report["memories_imported"], entities);
    assert_eq!(report["relationships_imported"], relations - dangling);
    assert_eq!(report["relationships_skipped_missing_endpoint"], dangling);

    let doc = export_json(&db, &scratch.dir.path().join("out.json"));
    let memories = doc["memories"].as_array().unwrap();
    for entity in expected["entities"].as_array().unwrap() {
        let name = entity["name"].as_str().unwrap();
        let m = memories
            .iter()
            .find(|m| m["title"] == name)
            .unwrap_or_else(|| panic!("entity {name} imported"));
        let kind = entity["entityType"].as_str().unwrap().to_lowercase();
        assert!(
            m["tags"]
                .as_array()
                .unwrap()
                .contains(&Value::from(kind.clone()))
        );
        let expected_type = if kind == "project" {
            "project"
        } else {
            "general"
        };
        assert_eq!(m["type"], expected_type, "{name}");
        for observation in entity["observations"].as_array().unwrap() {
            assert!(
                m["content"]
                    .as_str()
                    .unwrap()
                    .contains(observation.as_str().unwrap())
            );
        }
    }
    // depends_on and uses become DEPENDS_ON; reportsTo has no match and becomes
    // RELATED_TO with its name kept as the context.
    let by_type = |t: &str| {
        doc["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["type"] == t)
            .count() as u64
    };
    let counts = &expected["counts"]["relations_by_type"];
    assert_eq!(
        by_type("DEPENDS_ON"),
        counts["depends_on"].as_u64().unwrap() + counts["uses"].as_u64().unwrap()
    );
    assert!(doc["relationships"].as_array().unwrap().iter().any(|r| {
        r["type"] == "RELATED_TO"
            && r["properties"]["context"]
                .as_str()
                .unwrap()
                .contains("reportsTo")
    }));

    // Importing the same file again adds nothing twice.
    let again = run(
        &db,
        &[
            "--json",
            "import",
            "--input",
            input.to_str().unwrap(),
            "--skip-duplicates",
        ],
    )
    .ok()
    .json();
    assert_eq!(again["memories_imported"], 0);
    assert_eq!(again["relationships_imported"], 0);
}

/// A relation whose name is none of our types becomes `RELATED_TO` and keeps its name as
/// the context text: `search_relationships_by_context` finds it by that name (`text`), and
/// `memorygraph get` shows it beside the link.
#[test]
fn an_imported_relation_is_found_by_its_original_name() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let input = scratch.dir.path().join("memory.jsonl");
    std::fs::write(
        &input,
        [
            r#"{"type":"entity","name":"Alice","entityType":"person","observations":["Leads the platform team"]}"#,
            r#"{"type":"entity","name":"Acme","entityType":"company","observations":["Makes rockets"]}"#,
            r#"{"type":"entity","name":"Bob","entityType":"person","observations":["Writes the billing code"]}"#,
            r#"{"type":"relation","from":"Alice","to":"Acme","relationType":"worksAt"}"#,
            r#"{"type":"relation","from":"Bob","to":"Alice","relationType":"reportsTo"}"#,
            r#"{"type":"relation","from":"Bob","to":"Acme","relationType":"uses"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    run(&db, &["import", "--input", input.to_str().unwrap()]).ok();
    let mut server = common::Server::started(&db, &[("MEMORY_TOOL_PROFILE", "extended")]);
    let mut by_text = |text: &str| -> Vec<(String, String)> {
        let page = server.ok(
            "search_relationships_by_context",
            serde_json::json!({"text": text}),
        );
        let found: Vec<(String, String)> = page["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["type"].as_str().unwrap().to_string(),
                    r["context"]["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(page["total"], found.len() as u64, "{page}");
        found
    };
    let works_at = vec![("RELATED_TO".to_string(), "worksAt".to_string())];
    assert_eq!(by_text("worksAt"), works_at);
    assert_eq!(by_text("WORKSAT"), works_at);
    assert_eq!(by_text("works at"), works_at);
    assert_eq!(
        by_text("reportsTo"),
        [("RELATED_TO".to_string(), "reportsTo".to_string())]
    );
    assert_eq!(
        by_text("uses"),
        [("DEPENDS_ON".to_string(), "uses".to_string())]
    );
    assert!(by_text("worksAt reportsTo").is_empty());
    assert!(server.stop().success());

    let alice = memorygraph::exchange::jsonl::entity_id("Alice");
    let shown = run(&db, &["get", &alice]).ok();
    assert!(shown.stdout.contains("worksAt"), "{}", shown.stdout);
}

fn fixture_db(scratch: &Scratch) -> std::path::PathBuf {
    let db = scratch.db();
    run(&db, &["import", "--input", &fixture_export(scratch)]).ok();
    db
}

/// The memory with the most relationships in the fixture export, and its neighbours.
fn hub(expected: &Value) -> (String, BTreeSet<String>) {
    let mut links: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in expected["relationships"].as_array().unwrap() {
        let (a, b) = (r["from"].as_str().unwrap(), r["to"].as_str().unwrap());
        links.entry(a.into()).or_default().insert(b.into());
        links.entry(b.into()).or_default().insert(a.into());
    }
    links.into_iter().max_by_key(|(_, n)| n.len()).unwrap()
}

#[test]
fn dot_and_mermaid_draw_every_memory_and_relationship() {
    let scratch = Scratch::new();
    let db = fixture_db(&scratch);
    let expected = fixture_json("expected.json");

    let dot = run(&db, &["export", "--format", "dot"]).ok().stdout;
    assert!(dot.starts_with("digraph memorygraph {"));
    for m in expected["memories"].as_array().unwrap() {
        assert!(dot.contains(&format!("\"{}\" [label=", m["id"].as_str().unwrap())));
    }
    for r in expected["relationships"].as_array().unwrap() {
        let edge = format!(
            "\"{}\" -> \"{}\" [label=\"{}\"",
            r["from"].as_str().unwrap(),
            r["to"].as_str().unwrap(),
            r["type"].as_str().unwrap()
        );
        assert!(dot.contains(&edge), "missing edge {edge}");
    }
    assert_eq!(dot.matches(" -> ").count(), 50);

    let mermaid = run(&db, &["export", "--format", "mermaid"]).ok().stdout;
    assert!(mermaid.starts_with("flowchart LR\n"));
    assert_eq!(mermaid.matches("<br/>(").count(), 61);
    assert_eq!(
        mermaid.matches(" -->|").count() + mermaid.matches(" ---|").count(),
        50
    );
    assert!(
        mermaid.contains("---|RELATED_TO|"),
        "symmetric types have no arrow head"
    );
}

#[test]
fn pictures_can_show_a_neighbourhood_a_project_or_a_tag() {
    let scratch = Scratch::new();
    let db = fixture_db(&scratch);
    let expected = fixture_json("expected.json");
    let (centre, neighbours) = hub(&expected);

    let near = run(
        &db,
        &[
            "export", "--format", "dot", "--around", &centre, "--depth", "1",
        ],
    )
    .ok()
    .stdout;
    let nodes = near.matches(" [label=").count() - near.matches(" -> ").count();
    assert_eq!(nodes, neighbours.len() + 1);
    for id in &neighbours {
        assert!(near.contains(&format!("\"{id}\" [label=")));
    }
    let wider = run(
        &db,
        &[
            "export", "--format", "mermaid", "--around", &centre, "--depth", "2",
        ],
    )
    .ok()
    .stdout;
    assert!(wider.matches("<br/>(").count() > neighbours.len() + 1);

    let project = "/opt/ledger-sync";
    let in_project = expected["memories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["context"]["project_path"] == project)
        .count();
    let drawn = run(
        &db,
        &["export", "--format", "mermaid", "--project", project],
    )
    .ok()
    .stdout;
    assert!(in_project > 0);
    assert_eq!(drawn.matches("<br/>(").count(), in_project);

    let tagged = expected["memories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["tags"]
                .as_array()
                .unwrap()
                .contains(&Value::from("redis"))
        })
        .count();
    let drawn = run(&db, &["export", "--format", "mermaid", "--tag", "Redis"])
        .ok()
        .stdout;
    assert_eq!(drawn.matches("<br/>(").count(), tagged);

    let unknown = run(
        &db,
        &["export", "--format", "dot", "--around", "no-such-id"],
    );
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("not found"));
    let misuse = run(&db, &["export", "--format", "json", "--tag", "redis"]);
    assert_eq!(misuse.code, 2);
    let depth_alone = run(&db, &["export", "--format", "dot", "--depth", "2"]);
    assert_eq!(depth_alone.code, 2);
}

#[test]
fn markdown_writes_one_file_per_memory_with_its_relationships() {
    let scratch = Scratch::new();
    let db = fixture_db(&scratch);
    let out = scratch.dir.path().join("md");
    let done = run(
        &db,
        &[
            "export",
            "--format",
            "markdown",
            "--output",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(done.stdout.contains("Exported 61 memories"));
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 61);
    // Named like MemoryGraph's own Markdown export.
    assert!(names.contains(&"Resolved_fastapi_endpoint_stale_read_612ba8d5.md".to_string()));
    let text =
        std::fs::read_to_string(out.join("Resolved_fastapi_endpoint_stale_read_612ba8d5.md"))
            .unwrap();
    assert!(text.starts_with("---\ntitle: Resolved fastapi endpoint stale read\nid: 612ba8d5-"));
    assert!(text.contains("## Content\n\nResolution: raise the pool size"));
    assert!(text.contains("## Relationships\n\n- **SPECIALIZES** → [Note on docker compose stack and postgres](Note_on_docker_compose_stack_and_postgres_c875292a.md)"));
    let linked: usize = names
        .iter()
        .map(|n| std::fs::read_to_string(out.join(n)).unwrap())
        .map(|t| t.lines().filter(|l| l.starts_with("- **")).count())
        .sum();
    assert_eq!(linked, 100, "each of the 50 links is listed at both ends");
    let no_folder = run(&db, &["export", "--format", "markdown"]);
    assert_eq!(no_folder.code, 2);
}

#[test]
fn piped_commands_draw_no_progress() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let input = fixture_export(&scratch);
    let import = run(&db, &["import", "--input", &input]).ok();
    let out = scratch.dir.path().join("e.json");
    let export = run(&db, &["export", "--output", out.to_str().unwrap()]).ok();
    let reindex = run(&db, &["reindex"]).ok();
    for ran in [&import, &export, &reindex] {
        for text in [&ran.stdout, &ran.stderr] {
            assert!(!text.contains('\r'), "no redrawn lines: {text:?}");
            assert!(!text.contains('\u{1b}'), "no terminal escapes: {text:?}");
            assert!(!text.contains("=>"), "no bar: {text:?}");
        }
    }
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs MemoryGraph 0.12.4 from PyPI; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn memorygraph_imports_our_export() {
    let python_bin = common::tools::memorygraph_py();
    let scratch = Scratch::new();
    let db = fixture_db(&scratch);
    let file = scratch.dir.path().join("ours.json");
    export_json(&db, &file);
    let theirs = scratch.dir.path().join("theirs.db");
    let out = std::process::Command::new(&python_bin)
        .env("MEMORY_BACKEND", "sqlite")
        .env("MEMORY_SQLITE_PATH", &theirs)
        .env("HOME", scratch.dir.path())
        .args([
            "import",
            "--format",
            "json",
            "--input",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "MemoryGraph's import failed:\n{said}");
    assert!(
        said.contains("Imported: 61 memories, 50 relationships"),
        "MemoryGraph read everything:\n{said}"
    );
}

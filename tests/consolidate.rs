//! `memorygraph consolidate` over a file imported with known groups: near-duplicates, a
//! chain of versions, old memories never used, a relationship whose end is gone. The
//! report names exactly those and changes nothing; `--apply` acts on each part after
//! writing a backup, and `--undo` with that backup gives back the same export. Mistakes
//! are refused and change nothing.
//!
//! What an undo cannot give back the same, and the comparisons leave out: the export's
//! `export_date`, and the order of the relationships (an export lists them in the order
//! their rows were written, and a relationship put back is written again). Where a test
//! reads memories between the export before and the one after (`get`, `search` and
//! `recall` count a use), the use counts are left out of that comparison too. A
//! relationship row is put back as the export describes it: a row whose properties lacked
//! MemoryGraph's keys (one written by hand) gets them, with an import's defaults.

mod common;

use std::path::{Path, PathBuf};

use common::run::run;
use common::{Scratch, Server, on_database};
use serde_json::{Value, json};

fn memory(n: u32, title: &str, content: &str, at: &str, importance: f64, used: i64) -> Value {
    json!({"id": format!("00000000-0000-4000-8000-{n:012}"), "type": "general",
           "title": title, "content": content, "tags": [], "importance": importance,
           "confidence": 0.8, "usage_count": used, "created_at": at, "updated_at": at})
}

fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

const POOL: &str = "the connection pool of 10 was too small for the eight workers; raised it to 40";

/// A database with known parts: memories 1–3 near-duplicates (2 the most important, 3 the
/// oldest, tags on 1 and 3), 6 replacing 5 replacing 4, 7 old, unimportant and never used
/// (linked to 8), and `r-gone`, a relationship from 8 to a memory that is not there.
fn known(scratch: &Scratch) -> PathBuf {
    let db = scratch.db();
    let now = "2026-12-01T12:00:00+00:00";
    let old = "2025-01-01T12:00:00+00:00";
    let mut one = memory(1, "Raise the pool size", POOL, now, 0.5, 1);
    one["tags"] = json!(["pool"]);
    let two = memory(
        2,
        "Raise the pool size",
        &POOL.replace("the eight", "our eight"),
        now,
        0.6,
        1,
    );
    let mut three = memory(
        3,
        "Raise the pool size",
        &POOL.replace("40", "48"),
        "2026-11-15T12:00:00+00:00",
        0.5,
        1,
    );
    three["tags"] = json!(["db", "pool"]);
    let memories = vec![
        one,
        two,
        three,
        memory(4, "Deploy v1", "deploy with the first script", now, 0.5, 1),
        memory(5, "Deploy v2", "deploy with the second script", now, 0.5, 1),
        memory(6, "Deploy v3", "deploy with the third script", now, 0.5, 1),
        memory(7, "Old scratch note", "a note nobody read", old, 0.1, 0),
        memory(8, "Old but important", "a rule that matters", old, 0.9, 0),
        memory(9, "Old and read", "read many times", old, 0.1, 3),
        memory(
            10,
            "New scratch note",
            "a note nobody read yet",
            now,
            0.1,
            0,
        ),
    ];
    let link = |from: u32, to: u32, kind: &str| {
        json!({"id": format!("r-{from}-{to}"), "from_memory_id": id(from), "to_memory_id": id(to),
               "type": kind, "properties": {"strength": 0.9, "confidence": 0.9}})
    };
    let export = json!({"format_version": "2.0", "export_version": "1.0", "backend_type": "sqlite",
        "memory_count": memories.len(), "relationship_count": 3, "memories": memories,
        "relationships": [link(6, 5, "REPLACES"), link(5, 4, "REPLACES"), link(7, 8, "RELATED_TO")]});
    let file = scratch.dir.path().join("known.json");
    std::fs::write(&file, export.to_string()).unwrap();
    run(&db, &["import", "--input", file.to_str().unwrap()]).ok();
    on_database(&db, async |conn| {
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO relationships (id, from_id, to_id, rel_type, properties)
             VALUES ('r-gone', '00000000-0000-4000-8000-000000000008', 'gone', 'RELATED_TO', '{}');",
        )
        .await
        .unwrap();
    });
    db
}

/// The database as an export shows it, without what an undo cannot give back the same.
fn state(db: &Path) -> Value {
    let mut export = run(db, &["export"]).ok().json();
    export.as_object_mut().unwrap().remove("export_date");
    export["relationships"]
        .as_array_mut()
        .unwrap()
        .sort_by_key(|r| r["id"].as_str().unwrap().to_string());
    export
}

/// [`state`] without the use counts, for a test that read memories in between.
fn without_uses(mut state: Value) -> Value {
    for m in state["memories"].as_array_mut().unwrap() {
        let m = m.as_object_mut().unwrap();
        m.remove("usage_count");
        m.remove("last_accessed");
    }
    state
}

/// Every row of the relationships table, dangling ones included: its columns as text, and
/// its properties.
fn relationship_rows(db: &Path) -> Vec<(String, Value)> {
    on_database(db, async |conn| {
        let mut rows = conn
            .query(
                "SELECT id, from_id, to_id, rel_type, created_at, valid_from, valid_until,
                        recorded_at, invalidated_by, properties
                 FROM relationships ORDER BY id",
                (),
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            let cells: Vec<String> = (0..9)
                .map(|i| format!("{:?}", row.get_value(i).unwrap()))
                .collect();
            let properties = serde_json::from_str(&row.get::<String>(9).unwrap()).unwrap();
            out.push((cells.join(" | "), properties));
        }
        out
    })
}

/// Whether the rows are back as they were: the same columns, and every property they had
/// with its value (a row that lacked MemoryGraph's properties, as `r-gone` written by hand
/// does, gets them with the defaults an import gives).
fn rows_are_back(now: &[(String, Value)], before: &[(String, Value)]) {
    assert_eq!(now.len(), before.len(), "{now:?}");
    for ((columns, properties), (was, had)) in now.iter().zip(before) {
        assert_eq!(columns, was);
        for (key, value) in had.as_object().unwrap() {
            assert_eq!(&properties[key], value, "{columns}: {key}");
        }
    }
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `memorygraph consolidate ARGS --backup BACKUP --json`, which must succeed; its answer.
fn applied(db: &Path, backup: &Path, args: &[&str]) -> Value {
    let mut all = vec!["consolidate"];
    all.extend_from_slice(args);
    all.extend(["--backup", path(backup), "--json"]);
    run(db, &all).ok().json()
}

#[test]
fn the_report_names_what_could_be_merged_retired_or_mended_and_changes_nothing() {
    let scratch = Scratch::new();
    let db = known(&scratch);
    let changes_before = run(&db, &["health", "--json"]).ok().json()["database"]["changes"].clone();

    let report = run(&db, &["consolidate", "--json"]).ok().json();
    assert_eq!(
        report["near_duplicates"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(
        ids(&report["near_duplicates"][0]),
        vec![id(1), id(2), id(3)]
    );
    let chain: Vec<&str> = report["version_chains"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(chain, vec![id(6), id(5), id(4)], "newest first");
    assert_eq!(report["version_chains"].as_array().unwrap().len(), 1);
    assert_eq!(ids(&report["unused"]), vec![id(7)]);
    let dangling = report["dangling_relationships"].as_array().unwrap();
    assert_eq!(dangling.len(), 1, "{report}");
    assert_eq!(dangling[0]["id"], "r-gone");
    assert_eq!(dangling[0]["missing"], json!(["to"]));

    // A looser bound finds more; the text says the same in words.
    let looser = run(
        &db,
        &[
            "consolidate",
            "--json",
            "--days",
            "0",
            "--max-importance",
            "0.5",
        ],
    )
    .ok()
    .json();
    assert!(ids(&looser["unused"]).contains(&id(10)), "{looser}");
    let text = run(&db, &["consolidate"]).ok().stdout;
    for needle in [
        "Near-duplicates: 1 group",
        "Versions: 1 chain",
        "Unused: 1 memory",
        "Dangling: 1 relationship",
        "Old scratch note",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // It read only; bad bounds are refused and change nothing either.
    for bad in [["--max-importance", "2"], ["--days", "-1"]] {
        let refused = run(&db, &["consolidate", bad[0], bad[1]]);
        assert_eq!(refused.code, 2, "{bad:?}: {}", refused.stderr);
    }
    let after = run(&db, &["health", "--json"]).ok().json();
    assert_eq!(after["database"]["changes"], changes_before);
    assert_eq!(after["database"]["memories"], 10);
}

#[test]
fn merging_near_duplicates_makes_one_memory_that_replaces_them_until_undone() {
    let scratch = Scratch::new();
    let db = known(&scratch);
    let before = state(&db);
    let backup = scratch.dir.path().join("merge.json");

    // A dry run says what would be done, and does nothing.
    let dry = run(
        &db,
        &[
            "consolidate",
            "--apply",
            "near-duplicates",
            "--dry-run",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["backup"], Value::Null);
    assert_eq!(dry["merged"][0]["group"], 1, "{dry}");
    assert_eq!(dry["merged"][0]["id"], Value::Null);
    assert_eq!(state(&db), before);

    let done = applied(
        &db,
        &backup,
        &["--apply", "near-duplicates", "--group", "1"],
    );
    assert_eq!(done["backup"], path(&backup));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the backup is private");
    }
    let merged = done["merged"][0]["id"].as_str().unwrap().to_string();
    let mut replaced: Vec<String> =
        serde_json::from_value(done["merged"][0]["replaces"].clone()).unwrap();
    replaced.sort();
    assert_eq!(replaced, vec![id(1), id(2), id(3)]);

    // The merged memory: the keeper's text (2 is the most important), the group's tags,
    // highest importance, earliest creation, every use; it replaces each of the group.
    let got = run(&db, &["get", &merged, "--json"]).ok().json();
    let m = &got["memory"];
    assert_eq!(m["title"], "Raise the pool size");
    assert_eq!(m["content"], POOL.replace("the eight", "our eight"));
    assert_eq!(m["tags"], json!(["pool", "db"]));
    assert_eq!(m["importance"], 0.6);
    assert_eq!(m["created_at"], "2026-11-15T12:00:00+00:00");
    assert!(m["usage_count"].as_i64().unwrap() >= 3, "{m}");
    let versions: Vec<&str> = got["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(versions.len(), 4, "{got}");
    assert_eq!(
        versions[0], merged,
        "the merged memory is the newest version"
    );
    let links = got["relationships"].as_array().unwrap();
    assert!(links.iter().all(|r| r["type"] == "REPLACES"), "{got}");
    assert_eq!(links.len(), 3);

    // Search lists it first and each original after it, superseded by it.
    let found = run(&db, &["search", "pool size", "--json"]).ok().json();
    let results = found["results"].as_array().unwrap();
    assert_eq!(results[0]["id"], merged.as_str(), "{found}");
    for r in &results[1..4] {
        assert_eq!(r["superseded_by"], merged.as_str(), "{found}");
    }
    // The report no longer lists the group, and lists the merge with its versions.
    let report = run(&db, &["consolidate", "--json"]).ok().json();
    assert_eq!(report["near_duplicates"], json!([]), "{report}");
    let chain = report["version_chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0]["id"] == merged.as_str())
        .expect("a chain from the merged memory");
    assert_eq!(chain.as_array().unwrap().len(), 4);

    // The backup holds the group as it was, and what the merge made.
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&backup).unwrap()).unwrap();
    assert_eq!(file["format_version"], "2.0");
    assert_eq!(ids(&file["memories"]), vec![id(1), id(2), id(3)]);
    assert_eq!(file["consolidation"]["merged"][0]["id"], merged.as_str());

    // Undo: the merged memory is gone, the originals are current again, as before.
    let undone = run(&db, &["consolidate", "--undo", path(&backup), "--json"])
        .ok()
        .json();
    assert_eq!(undone["merged_removed"], json!([merged]));
    let missing = run(&db, &["get", &merged]);
    assert_eq!(missing.code, 1, "{}", missing.stdout);
    let found = run(&db, &["search", "pool size", "--json"]).ok().json();
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{found}");
    assert!(results.iter().all(|r| r.get("superseded_by").is_none()));
    assert_eq!(without_uses(state(&db)), without_uses(before));
    // The group is reported again, and a second undo finds nothing left to do.
    let report = run(&db, &["consolidate", "--json"]).ok().json();
    assert_eq!(
        ids(&report["near_duplicates"][0]),
        vec![id(1), id(2), id(3)]
    );
    let again = run(&db, &["consolidate", "--undo", path(&backup), "--json"])
        .ok()
        .json();
    assert_eq!(again["merged_already_gone"], json!([merged]));
    assert_eq!(again["memories_restored"], 0);
}

#[test]
fn archiving_unused_memories_keeps_them_in_the_backup_until_undone() {
    let scratch = Scratch::new();
    let db = known(&scratch);
    let before = state(&db);

    // No --backup: the backup goes beside the database, named for the time.
    let done = run(&db, &["consolidate", "--apply", "unused", "--json"])
        .ok()
        .json();
    let backup = PathBuf::from(done["backup"].as_str().unwrap());
    assert_eq!(backup.parent(), db.parent(), "{done}");
    let name = backup.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("memory.db.consolidate-") && name.ends_with(".json"),
        "{name}"
    );
    assert_eq!(ids(&done["archived"]), vec![id(7)]);
    assert_eq!(done["relationships_removed"], json!(["r-7-8"]));

    // Gone from the database, with its relationship; the rest is as it was.
    assert_eq!(run(&db, &["get", &id(7)]).code, 1);
    let after = state(&db);
    assert_eq!(after["memory_count"], 9);
    assert!(!ids(&after["memories"]).contains(&id(7)));
    assert!(!ids(&after["relationships"]).contains(&"r-7-8".to_string()));
    let related = run(&db, &["get", &id(8), "--json"]).ok().json();
    assert_eq!(ids(&related["relationships"]), vec!["r-gone"], "{related}");

    // The backup is an export: it holds both, and import reads it.
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&backup).unwrap()).unwrap();
    assert_eq!(ids(&file["memories"]), vec![id(7)]);
    assert!(ids(&file["relationships"]).contains(&"r-7-8".to_string()));
    let elsewhere = scratch.dir.path().join("other.db");
    let imported = run(&elsewhere, &["import", "--input", path(&backup), "--json"])
        .ok()
        .json();
    assert_eq!(imported["memories_imported"], 1);

    // Undo brings both back.
    let undone = run(&db, &["consolidate", "--undo", path(&backup), "--json"])
        .ok()
        .json();
    assert_eq!(undone["memories_restored"], 1, "{undone}");
    assert_eq!(undone["relationships_restored"], 1, "{undone}");
    assert_eq!(without_uses(state(&db)), without_uses(before));
}

#[test]
fn removing_dangling_relationships_is_undone_with_their_rows_as_they_were() {
    let scratch = Scratch::new();
    let db = known(&scratch);
    let before = state(&db);
    let rows = relationship_rows(&db);
    let backup = scratch.dir.path().join("dangling.json");

    let text = run(
        &db,
        &[
            "consolidate",
            "--apply",
            "dangling",
            "--backup",
            path(&backup),
        ],
    )
    .ok()
    .stdout;
    assert!(
        text.contains("Removed 1 dangling relationship(s): r-gone"),
        "{text}"
    );
    assert!(
        text.contains(&format!("memorygraph consolidate --undo {}", path(&backup))),
        "the output names the backup and how to undo: {text}"
    );
    let report = run(&db, &["consolidate", "--json"]).ok().json();
    assert_eq!(report["dangling_relationships"], json!([]));
    assert_eq!(relationship_rows(&db).len(), rows.len() - 1);
    assert_eq!(state(&db), before, "nothing else changed");

    let text = run(&db, &["consolidate", "--undo", path(&backup)])
        .ok()
        .stdout;
    assert!(
        text.contains("put back 0 memory(ies) and 1 relationship(s)"),
        "{text}"
    );
    rows_are_back(&relationship_rows(&db), &rows);
    assert_eq!(state(&db), before);
}

#[test]
fn every_part_at_once_is_undone_to_the_same_export() {
    // The known file, every part at once, as a comma list.
    let scratch = Scratch::new();
    let db = known(&scratch);
    let before = state(&db);
    let rows = relationship_rows(&db);
    let backup = scratch.dir.path().join("all.json");
    let done = applied(
        &db,
        &backup,
        &[
            "--apply",
            "near-duplicates,unused,dangling",
            "--days",
            "0",
            "--max-importance",
            "1",
        ],
    );
    assert_eq!(done["merged"].as_array().unwrap().len(), 1, "{done}");
    // Memories 7, 8 and 10 were never used; 8 holds the dangling relationship.
    assert_eq!(ids(&done["archived"]), vec![id(7), id(8), id(10)]);
    assert_eq!(
        state(&db)["memory_count"],
        8,
        "10, less 3 archived, and the merged one"
    );
    run(&db, &["consolidate", "--undo", path(&backup)]).ok();
    assert_eq!(state(&db), before);
    rows_are_back(&relationship_rows(&db), &rows);

    // MemoryGraph's own export: 61 memories and 50 relationships, all archived and back.
    let scratch = Scratch::new();
    let db = scratch.db();
    let fixture = common::fixtures_dir().join("memorygraph-0.12.4.export.json");
    run(&db, &["import", "--input", path(&fixture)]).ok();
    let before = state(&db);
    let backup = scratch.dir.path().join("everything.json");
    let done = applied(
        &db,
        &backup,
        &[
            "--apply",
            "unused",
            "--apply",
            "near-duplicates",
            "--apply",
            "dangling",
            "--days",
            "0",
            "--max-importance",
            "1",
        ],
    );
    assert_eq!(done["archived"].as_array().unwrap().len(), 61, "{done}");
    assert_eq!(state(&db)["memory_count"], 0);
    run(&db, &["consolidate", "--undo", path(&backup)]).ok();
    assert_eq!(state(&db), before);
}

#[test]
fn mistakes_are_refused_and_change_nothing() {
    let scratch = Scratch::new();
    let db = known(&scratch);
    let before = state(&db);
    let rows = relationship_rows(&db);
    let existing = scratch.dir.path().join("existing.json");
    std::fs::write(&existing, "keep me").unwrap();
    let export = scratch.dir.path().join("plain-export.json");
    run(&db, &["export", "--output", path(&export)]).ok();
    let nowhere = scratch.dir.path().join("no-such-folder").join("b.json");
    let missing = scratch.dir.path().join("missing.json");

    let usage: Vec<Vec<&str>> = vec![
        vec!["--apply", "everything"],
        vec!["--apply", "versions"],
        vec!["--apply", "near-duplicates", "--group", "2"],
        vec!["--apply", "near-duplicates", "--group", "0"],
        vec!["--group", "1"],
        vec!["--apply", "unused", "--group", "1"],
        vec!["--apply", "unused", "--backup", path(&nowhere)],
        vec!["--apply", "unused", "--backup", path(&existing)],
        vec!["--backup", path(&missing)],
        vec!["--dry-run"],
        vec!["--undo", path(&export)],
        vec!["--undo", path(&existing)],
        vec!["--undo", path(&missing)],
        vec!["--undo", path(&export), "--apply", "unused"],
    ];
    for args in &usage {
        let mut line = vec!["consolidate"];
        line.extend(args);
        let refused = run(&db, &line);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        assert!(!refused.stderr.trim().is_empty(), "{args:?} says why");
    }
    let said = run(&db, &["consolidate", "--undo", path(&export)]).stderr;
    assert!(
        said.contains("not a backup written by consolidate --apply"),
        "{said}"
    );
    assert!(said.contains("nothing was changed"), "{said}");
    let said = run(
        &db,
        &["consolidate", "--apply", "near-duplicates", "--group", "2"],
    )
    .stderr;
    assert!(said.contains("1 group(s)"), "{said}");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    assert!(!missing.exists());
    assert_eq!(state(&db), before);
    assert_eq!(relationship_rows(&db), rows);
    let leftovers: Vec<_> = std::fs::read_dir(scratch.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("consolidate-"))
        .collect();
    assert!(leftovers.is_empty(), "no backup written: {leftovers:?}");

    // An undo that would lose a change made after the merge is refused (exit 1), and the
    // next command works.
    let backup = scratch.dir.path().join("merge.json");
    let done = applied(&db, &backup, &["--apply", "near-duplicates"]);
    let merged = done["merged"][0]["id"].as_str().unwrap().to_string();
    let mut server = Server::started(&db, &[]);
    server.ok(
        "create_relationship",
        json!({"from_memory_id": id(8), "to_memory_id": merged, "relationship_type": "RELATED_TO"}),
    );
    server.stop();
    let merged_state = state(&db);
    let refused = run(&db, &["consolidate", "--undo", path(&backup)]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains(&merged), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("nothing was undone"),
        "{}",
        refused.stderr
    );
    assert_eq!(state(&db), merged_state);
    run(&db, &["consolidate", "--json"]).ok();
}

#[test]
fn with_a_server_running_the_apply_writes_the_file_as_import_does_and_the_server_sees_it() {
    let scratch = Scratch::new();
    let db = known(&scratch);
    let before = state(&db);
    let mut server = Server::started(&db, &[]);
    let backup = scratch.dir.path().join("owned.json");
    let done = applied(&db, &backup, &["--apply", "near-duplicates,unused"]);
    let merged = done["merged"][0]["id"].as_str().unwrap().to_string();
    let found = server.ok("search_memories", json!({"query": "pool size"}));
    assert_eq!(found["results"][0]["id"], merged.as_str(), "{found}");
    let gone = server.call("get_memory", json!({"memory_id": id(7)}));
    assert_eq!(gone["isError"], true, "{gone}");

    run(&db, &["consolidate", "--undo", path(&backup)]).ok();
    let found = server.ok("search_memories", json!({"query": "pool size"}));
    assert!(
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"] != merged.as_str()),
        "{found}"
    );
    server.ok("get_memory", json!({"memory_id": id(7)}));
    server.stop();
    assert_eq!(without_uses(state(&db)), without_uses(before));
}

//! Protocol edges answered as the MCP spec says, published tools every client loads without
//! a warning, and the small reliability leaks: export permissions, secrets on import, a
//! file with a negative schema version.

mod common;

use common::{Scratch, Server, run::run, store};
use serde_json::{Value, json};

const META: &str = r#"{"io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "1"},
  "io.modelcontextprotocol/clientCapabilities": {}}"#;

#[test]
fn unknown_tools_and_non_object_arguments_are_invalid_params() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let answer = server.request(
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    );
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("no_such_tool"), "{message}");
    let long = "t".repeat(100_000);
    let answer = server.request("tools/call", json!({"name": long, "arguments": {}}));
    assert!(answer["error"]["message"].as_str().unwrap().len() < 300);
    for arguments in [json!("text"), json!([1, 2]), json!(5), json!(true)] {
        let answer = server.request(
            "tools/call",
            json!({"name": "health", "arguments": arguments}),
        );
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`arguments` must be an object"),
            "{answer}"
        );
    }
    // A bad argument is a tool error, short, capitalised, naming the argument.
    let text = server.err("get_memory", json!({"memory_id": "x".repeat(1_000_000)}));
    assert!(text.len() < 200 && text.contains("memory_id"), "{text}");
    let text = server.err("health", json!({"q".repeat(1_000_000): 1}));
    assert!(text.len() < 400 && text.starts_with("Invalid"), "{text}");
    let text = server.err(
        "store_memory",
        json!({"type": "t".repeat(1_000_000), "title": "t", "content": "c"}),
    );
    assert!(text.len() < 1_000 && text.contains("type"), "{text}");
    assert!(server.stop().success());
}

#[test]
fn a_discover_only_session_gets_its_answer_and_ends_cleanly() {
    let scratch = Scratch::new();
    let mut server = Server::start(&scratch.db(), &[]);
    server.send(
        &json!({"jsonrpc": "2.0", "id": "d1", "method": "server/discover",
                        "params": {"_meta": serde_json::from_str::<Value>(META).unwrap()}}),
    );
    let mut stdin_gone = server;
    let answer = stdin_gone.recv();
    assert_eq!(answer["id"], "d1");
    assert_eq!(
        answer["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "memorygraph"
    );
    let status = stdin_gone.stop();
    assert!(status.success(), "exit status {status:?}");

    // Without waiting for the answer: it is still written before the exit.
    let mut server = Server::start(&scratch.db(), &[]);
    server.send(
        &json!({"jsonrpc": "2.0", "id": 7, "method": "server/discover",
                        "params": {"_meta": serde_json::from_str::<Value>(META).unwrap()}}),
    );
    let mut server = server;
    let status = {
        let s = &mut server;
        drop(s.take_stdin());
        s.wait()
    };
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(server.recv()["id"], 7);
}

#[test]
fn stateless_results_name_the_server() {
    let scratch = Scratch::new();
    let mut server = Server::start(&scratch.db(), &[]);
    let meta: Value = serde_json::from_str(META).unwrap();
    for (method, params) in [
        ("tools/list", json!({"_meta": meta})),
        (
            "tools/call",
            json!({"_meta": meta, "name": "health", "arguments": {}}),
        ),
    ] {
        let answer = server.request(method, params);
        assert_eq!(
            answer["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "memorygraph",
            "{answer}"
        );
    }
}

/// Every place in a schema that strict validators flag.
fn unportable(schema: &Value, at: &str, found: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(f)) = map.get("format")
                && (f.starts_with("uint") || f.starts_with("int") || f == "double" || f == "float")
            {
                found.push(format!("{at}: format {f}"));
            }
            if map.get("type").is_some_and(Value::is_array) {
                found.push(format!("{at}: type list"));
            }
            if let Some(Value::String(d)) = map.get("description")
                && d.contains('\n')
            {
                found.push(format!("{at}: description with a line break"));
            }
            for (k, v) in map {
                unportable(v, &format!("{at}/{k}"), found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                unportable(v, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn tools_have_titles_honest_annotations_and_portable_schemas() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[("MEMORY_TOOL_PROFILE", "full")]);
    let listed = server.request("tools/list", json!({}));
    let mut found = Vec::new();
    for tool in listed["result"]["tools"].as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        assert!(
            tool["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name} has no title"
        );
        assert_eq!(tool["annotations"]["title"], tool["title"], "{name}");
        let description = tool["description"].as_str().unwrap();
        assert!(!description.contains('\n'), "{name}: {description:?}");
        unportable(&tool["inputSchema"], &format!("{name} input"), &mut found);
        unportable(&tool["outputSchema"], &format!("{name} output"), &mut found);
        let a = &tool["annotations"];
        match name {
            "update_memory" | "delete_memory" => {
                assert_eq!(a["destructiveHint"], true, "{name}")
            }
            "store_memory" | "create_relationship" => {
                assert_eq!(a["destructiveHint"], false, "{name}")
            }
            "sync" => assert_eq!(a["readOnlyHint"], false),
            _ => assert_eq!(a["readOnlyHint"], true, "{name}"),
        }
    }
    assert!(found.is_empty(), "{found:#?}");
    assert!(server.stop().success());
}

#[test]
fn secrets_in_context_fields_and_links_are_refused() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let key = format!("ghp_{}", "a1B2".repeat(9));
    let text = server.err(
        "store_memory",
        json!({"type": "fix", "title": "t", "content": "c", "context": {"notes": key}}),
    );
    assert!(text.contains("context") && !text.contains(&key), "{text}");
    let a = store(&mut server, "fix", "a", "a", json!({}));
    let b = store(&mut server, "fix", "b", "b", json!({}));
    let text = server.err(
        "create_relationship",
        json!({"from_memory_id": a, "to_memory_id": b, "relationship_type": "SOLVES",
               "context": format!("works with {key}")}),
    );
    assert!(text.contains("context"), "{text}");
    let text = server.err(
        "store_memory",
        json!({"type": "fix", "title": "t", "content": "c", "context": {"project_path": "p".repeat(1_001)}}),
    );
    assert!(
        text.contains("project_path") && text.contains("1000"),
        "{text}"
    );
    assert_eq!(
        server.ok("health", json!({}))["database"]["relationships"],
        0
    );
    assert!(server.stop().success());
}

#[cfg(unix)]
#[test]
fn export_is_private_and_import_refuses_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new();
    let db = scratch.db();
    let mut server = Server::started(&db, &[]);
    store(&mut server, "fix", "exported", "content", json!({}));
    assert!(server.stop().success());
    let out = scratch.dir.path().join("dump.json");
    run(
        &db,
        &[
            "export",
            "--format",
            "json",
            "--output",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "export mode {mode:o}");
    let leftovers: Vec<_> = std::fs::read_dir(scratch.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());

    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let key = format!("AKIA{}", "ABCDEFGHIJKLMNOP");
    let memories = doc["memories"].as_array_mut().unwrap();
    memories[0]["content"] = json!(format!("the key is {key}"));
    memories[0]["id"] = json!("another-id");
    let file = scratch.dir.path().join("secret.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let other = scratch.dir.path().join("other.db");
    let refused = run(&other, &["import", "--input", file.to_str().unwrap()]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("secret"), "{}", refused.stderr);
    assert!(!refused.stderr.contains(&key));
    run(
        &other,
        &[
            "import",
            "--input",
            file.to_str().unwrap(),
            "--allow-secrets",
        ],
    )
    .ok();
}

#[test]
fn a_negative_schema_version_fails_with_a_clear_message() {
    let scratch = Scratch::new();
    let db = scratch.db();
    assert!(Server::started(&db, &[]).stop().success());
    common::on_database(&db, async |conn| {
        conn.execute("PRAGMA user_version = -3", ()).await.unwrap();
    });
    let ran = run(&db, &["health"]);
    assert_ne!(ran.code, 0);
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    assert!(ran.stderr.contains("-3"), "{}", ran.stderr);
}

/// Every upgrade step is safe to run again (a file whose version was reset, or touched by
/// MemoryGraph in between): the memories, their index and the duplicate check survive it.
#[test]
fn every_schema_step_runs_again_safely() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let mut server = Server::started(&db, &[]);
    let first = server.ok(
        "store_memory",
        json!({"type": "solution", "title": "Pin the compiler", "content": "pin rustc in the toolchain file"}),
    );
    assert!(server.stop().success());
    common::on_database(&db, async |conn| {
        conn.execute("PRAGMA user_version = 0", ()).await.unwrap();
    });
    let mut server = Server::started(&db, &[]);
    let again = server.ok(
        "store_memory",
        json!({"type": "solution", "title": "Pin the compiler", "content": "pin rustc in the toolchain file"}),
    );
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["memory_id"], first["memory_id"]);
    let found = server.ok("search_memories", json!({"query": "toolchain"}));
    assert_eq!(found["total"], 1, "{found}");
    let health = server.ok("health", json!({}));
    assert_eq!(
        health["database"]["schema_version"],
        health["database"]["supported_schema_version"]
    );
    assert!(server.stop().success());
}

//! The MCP protocol over stdio, in both eras, and what the server does with bad input.

mod common;

use std::time::Duration;

use common::{Scratch, Server, tool_names};
use serde_json::{Value, json};

const CORE_TOOLS: [&str; 11] = [
    "create_relationship",
    "delete_memory",
    "get_memory",
    "get_recent_activity",
    "get_related_memories",
    "health",
    "recall_memories",
    "search_memories",
    "store_memory",
    "sync",
    "update_memory",
];

#[test]
fn initialize_era_reports_our_name_and_version() {
    for version in ["2025-06-18", "2025-11-25"] {
        let scratch = Scratch::new();
        let mut server = Server::start(&scratch.db(), &[]);
        let answer = server.initialize(version);
        let result = &answer["result"];
        assert_eq!(result["protocolVersion"], version);
        assert_eq!(result["serverInfo"]["name"], "memorygraph");
        assert_eq!(result["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(result["capabilities"]["tools"].is_object());
        let id = common::store(
            &mut server,
            "fix",
            "Pin the redis client",
            "Use 5.0.1",
            json!({}),
        );
        assert_eq!(
            server.ok("get_memory", json!({"memory_id": id}))["memory"]["id"],
            id
        );
        assert!(server.stop().success());
    }
}

#[test]
fn stateless_era_discovers_and_calls_with_request_meta() {
    let scratch = Scratch::new();
    let mut server = Server::start(&scratch.db(), &[]);
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let answer = server.request("server/discover", json!({"_meta": meta}));
    let result = &answer["result"];
    assert!(
        result["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28")),
        "{answer}"
    );
    let info = if result["serverInfo"].is_object() {
        result["serverInfo"].clone()
    } else {
        result["_meta"]["io.modelcontextprotocol/serverInfo"].clone()
    };
    assert_eq!(info["name"], "memorygraph", "{answer}");
    let listed = server.request("tools/list", json!({"_meta": meta}));
    assert_eq!(tool_names(&listed), CORE_TOOLS);
    let stored = server.request(
        "tools/call",
        json!({"_meta": meta, "name": "store_memory",
               "arguments": {"type": "error", "title": "Stateless store", "content": "works without initialize"}}),
    );
    assert_eq!(stored["result"]["isError"], false, "{stored}");
    let id = stored["result"]["structuredContent"]["memory_id"]
        .as_str()
        .unwrap();
    let got = server.request(
        "tools/call",
        json!({"_meta": meta, "name": "get_memory", "arguments": {"memory_id": id}}),
    );
    assert_eq!(
        got["result"]["structuredContent"]["memory"]["title"],
        "Stateless store"
    );
}

#[test]
fn profiles_select_the_tool_set_and_tools_are_annotated() {
    let scratch = Scratch::new();
    let mut core = Server::started(&scratch.db(), &[("MEMORY_TOOL_PROFILE", "lite")]);
    assert_eq!(
        tool_names(&core.request("tools/list", json!({}))),
        CORE_TOOLS
    );
    drop(core);
    let mut extended = Server::started(&scratch.db(), &[("MEMORY_TOOL_PROFILE", "full")]);
    let listed = extended.request("tools/list", json!({}));
    let mut expected: Vec<&str> = CORE_TOOLS.to_vec();
    expected.extend([
        "contextual_search",
        "get_memory_statistics",
        "search_relationships_by_context",
    ]);
    expected.sort();
    assert_eq!(tool_names(&listed), expected);
    for tool in listed["result"]["tools"].as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        assert_eq!(
            tool["outputSchema"]["type"], "object",
            "{name} publishes an object outputSchema"
        );
        assert_eq!(tool["inputSchema"]["type"], "object", "{name}");
        let read_only = tool["annotations"]["readOnlyHint"]
            .as_bool()
            .unwrap_or(false);
        let writes = [
            "store_memory",
            "update_memory",
            "delete_memory",
            "create_relationship",
            "sync",
        ];
        assert_eq!(read_only, !writes.contains(&name), "{name} readOnlyHint");
        if name == "delete_memory" {
            assert_eq!(tool["annotations"]["destructiveHint"], true);
        }
    }
    let store = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "store_memory")
        .unwrap();
    let props = &store["inputSchema"]["properties"];
    for param in [
        "type",
        "title",
        "content",
        "summary",
        "tags",
        "importance",
        "context",
    ] {
        assert!(props.get(param).is_some(), "store_memory lacks {param}");
    }
}

#[test]
fn structured_content_matches_the_published_output_schema_keys() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let listed = server.request("tools/list", json!({}));
    let schema_of = |name: &str| {
        listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["outputSchema"]
            .clone()
    };
    let out = server.ok(
        "store_memory",
        json!({"type": "fix", "title": "t", "content": "c"}),
    );
    for key in out.as_object().unwrap().keys() {
        assert!(
            schema_of("store_memory")["properties"].get(key).is_some(),
            "{key} not in schema"
        );
    }
    for required in schema_of("store_memory")["required"].as_array().unwrap() {
        assert!(out.get(required.as_str().unwrap()).is_some());
    }
}

#[test]
fn malformed_input_gets_json_rpc_errors_and_the_server_keeps_serving() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);

    server.send_line(b"{this is not json");
    let answer = server.recv();
    assert_eq!(answer["error"]["code"], -32700);
    assert_eq!(answer["id"], Value::Null);

    server.send_line(b"\xff\xfe{\"jsonrpc\"");
    assert_eq!(server.recv()["error"]["code"], -32700);

    server.send_line(b"[1, 2]");
    assert_eq!(server.recv()["error"]["code"], -32600);

    server.send_line(br#"{"jsonrpc": "2.0", "id": 77}"#);
    let answer = server.recv();
    assert_eq!(answer["error"]["code"], -32600);

    let answer = server.request(
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    );
    assert!(
        answer["error"]["code"].is_i64(),
        "unknown tool is a JSON-RPC error: {answer}"
    );

    let answer = server.request("no/such/method", json!({}));
    assert_eq!(answer["error"]["code"], -32601, "{answer}");

    // A notification is never answered, even when unknown.
    server.notify("notifications/whatever", json!({}));
    assert!(server.silent_for(Duration::from_millis(300)));

    let big = format!(
        r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"health","arguments":{{"x":"{}"}}}}}}"#,
        "a".repeat(5 * 1024 * 1024)
    );
    server.send_line(big.as_bytes());
    let answer = server.recv();
    assert_eq!(answer["error"]["code"], -32600);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit")
    );

    // Still serving.
    assert_eq!(server.ok("health", json!({}))["status"], "ok");
    assert!(server.stop().success());
}

#[cfg(unix)]
#[test]
fn exits_cleanly_on_sigterm_and_sigint_with_the_database_closed() {
    for signal in ["TERM", "INT"] {
        let scratch = Scratch::new();
        let db = scratch.db();
        let mut server = Server::started(&db, &[]);
        common::store(
            &mut server,
            "fix",
            "Survives a signal",
            "content",
            json!({}),
        );
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &server.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = server.wait();
        assert!(exit.success(), "SIG{signal}: {exit:?}\n{}", server.stderr());
        let wal = db.with_extension("db-wal");
        assert!(
            std::fs::metadata(&wal)
                .map(|m| m.len() == 0)
                .unwrap_or(true),
            "the write-ahead log was checkpointed"
        );
        let mut again = Server::started(&db, &[]);
        let found = again.ok("search_memories", json!({"query": "signal"}));
        assert_eq!(found["total"], 1);
    }
}

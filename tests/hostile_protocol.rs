//! Whatever arrives on stdin, the server answers with the right JSON-RPC error (or nothing,
//! for a notification), keeps serving, and keeps its memory bounded.

mod common;

use std::time::Duration;

use common::{Scratch, Server};
use serde_json::{Value, json};

/// Peak resident memory of a process, from /proc (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn still_serving(server: &mut Server) {
    assert_eq!(server.ok("health", json!({}))["status"], "ok");
}

#[test]
fn oversized_lines_are_refused_without_growing_memory() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    still_serving(&mut server);
    let before = peak_rss_kib(server.pid());

    // 20 MB in one line, written in pieces as a client would stream it.
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"store_memory","arguments":{{"type":"fix","title":"big","content":"{}"}}}}}}"#,
        "x".repeat(20 * 1024 * 1024)
    );
    server.send_line(line.as_bytes());
    let answer = server.recv();
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit"),
        "{answer}"
    );
    still_serving(&mut server);
    assert_eq!(
        server.ok("search_memories", json!({"query": "big"}))["total"],
        0,
        "nothing of the refused line was stored"
    );

    if let (Some(before), Some(after)) = (before, peak_rss_kib(server.pid())) {
        // The line limit is 4 MiB; the 20 MB line must never be held whole.
        assert!(
            after < before + 16 * 1024,
            "peak RSS grew from {before} KiB to {after} KiB"
        );
    }
    assert!(server.stop().success());
}

#[test]
fn broken_json_nesting_and_encodings_get_parse_errors() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);

    let cases: Vec<Vec<u8>> = vec![
        b"{this is not json".to_vec(),
        b"\xff\xfe{\"jsonrpc\"".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"".to_vec(),
        "[".repeat(100_000).into_bytes(),
        format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"store_memory","arguments":{{"context":{}0{}}}}}}}}}"#,
            r#"{"a":"#.repeat(5_000),
            "}".repeat(5_000)
        )
        .into_bytes(),
        b"\"just a string\"".to_vec(),
        b"\0\0\0".to_vec(),
    ];
    for case in cases {
        server.send_line(&case);
        let answer = server.recv();
        let code = answer["error"]["code"].as_i64().unwrap_or(0);
        assert!(
            code == -32700 || code == -32600,
            "{:?}… got {answer}",
            String::from_utf8_lossy(&case[..case.len().min(40)])
        );
        assert!(answer.get("result").is_none());
    }
    still_serving(&mut server);
    assert!(server.stop().success());
}

#[test]
fn unknown_methods_tools_and_bad_envelopes_are_errors() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);

    let answer = server.request("no/such/method", json!({}));
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    let answer = server.request("tools/call", json!({"name": "drop_database"}));
    assert!(answer["error"]["code"].is_i64(), "{answer}");
    let answer = server.request("tools/call", json!({"arguments": {}}));
    assert!(answer["error"]["code"].is_i64(), "{answer}");
    let answer = server.request("tools/call", json!("not an object"));
    assert!(answer["error"]["code"].is_i64(), "{answer}");

    for envelope in [
        json!({"jsonrpc": "1.0", "id": 70, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": {"an": "object"}, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 71, "method": 42}),
        json!({"jsonrpc": "2.0", "id": 72}),
        json!([{"jsonrpc": "2.0", "id": 73, "method": "ping"}]),
    ] {
        server.send(&envelope);
        let answer = server.recv();
        assert_eq!(answer["error"]["code"], -32600, "{envelope} got {answer}");
    }
    still_serving(&mut server);
    assert!(server.stop().success());
}

#[test]
fn notifications_are_never_answered() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    server.notify("notifications/whatever", json!({}));
    server.notify("notifications/cancelled", json!({"requestId": 12345}));
    server.notify("notifications/initialized", json!("wrong params"));
    server.send(&json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "health"}}));
    assert!(
        server.silent_for(Duration::from_millis(500)),
        "a notification was answered"
    );
    still_serving(&mut server);
    assert!(server.stop().success());
}

#[test]
fn requests_before_initialization_and_duplicate_ids() {
    let scratch = Scratch::new();
    let mut server = Server::start(&scratch.db(), &[]);

    // Before `initialize` (and without the stateless era's `_meta`): an error, not a crash.
    let answer = server.request("tools/call", json!({"name": "health", "arguments": {}}));
    assert!(answer["error"]["code"].is_i64(), "{answer}");
    let answer = server.request("tools/list", json!({}));
    assert!(answer["error"]["code"].is_i64(), "{answer}");
    server.initialize("2025-06-18");
    still_serving(&mut server);

    // Two requests in flight with one id: the second is refused, the first answered.
    let slow = json!({"jsonrpc": "2.0", "id": "dup", "method": "tools/call",
        "params": {"name": "search_memories", "arguments": {"query": "anything"}}});
    server.send(&slow);
    server.send(&slow);
    let answers = [server.recv(), server.recv()];
    assert!(answers.iter().all(|a| a["id"] == "dup"), "{answers:?}");
    let results = answers.iter().filter(|a| a.get("result").is_some()).count();
    let refused = answers
        .iter()
        .filter(|a| a["error"]["code"] == -32600)
        .count();
    assert!(
        results == 2 || (results == 1 && refused == 1),
        "each duplicate gets an answer: {answers:?}"
    );
    // Once answered, the id may be used again.
    server.send(&json!({"jsonrpc": "2.0", "id": "dup", "method": "ping"}));
    assert!(server.recv().get("result").is_some());
    still_serving(&mut server);
    assert!(server.stop().success());
}

/// A value of the wrong JSON type for a schema property.
fn wrong_value(schema: &Value) -> Value {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"string") || schema.get("$ref").is_some() || schema.get("anyOf").is_some() {
        json!({"not": "a string"})
    } else if types.contains(&"array") {
        json!("not a list")
    } else if types.contains(&"object") {
        json!(["not", "an", "object"])
    } else {
        json!("not a number or a flag")
    }
}

/// Plausible values for the required parameters, so the wrong one is what fails.
fn valid_value(name: &str) -> Value {
    match name {
        "type" => json!("fix"),
        "relationship_type" => json!("RELATED_TO"),
        _ => json!("x"),
    }
}

#[test]
fn every_parameter_of_every_tool_rejects_a_wrong_type() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[("MEMORY_TOOL_PROFILE", "extended")]);
    let tools = server.request("tools/list", json!({}))["result"]["tools"].clone();
    let mut checked = 0;
    for tool in tools.as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        let schema = &tool["inputSchema"];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        for (param, param_schema) in properties {
            let mut args = serde_json::Map::new();
            for r in &required {
                args.insert(r.to_string(), valid_value(r));
            }
            args.insert(param.clone(), wrong_value(param_schema));
            let before = server.ok("health", json!({}))["database"]["memories"].clone();
            let result = server.call(name, Value::Object(args.clone()));
            assert_eq!(result["isError"], true, "{name}({args:?}) was accepted");
            let text = result["content"][0]["text"].as_str().unwrap();
            assert!(
                text.contains(param.as_str()),
                "{name}: the error does not name `{param}`: {text}"
            );
            let after = server.ok("health", json!({}))["database"]["memories"].clone();
            assert_eq!(before, after, "{name} wrote something");
            checked += 1;
        }
        // An unknown parameter is refused too, by name.
        let mut args = serde_json::Map::new();
        for r in &required {
            args.insert(r.to_string(), valid_value(r));
        }
        args.insert("no_such_parameter".into(), json!(1));
        let text = server.err(name, Value::Object(args));
        assert!(text.contains("no_such_parameter"), "{name}: {text}");
    }
    assert!(checked > 40, "only {checked} parameters checked");
    assert!(server.stop().success());
}

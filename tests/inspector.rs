//! The MCP Inspector's command-line mode against the real binary, as docs/clients.md tells
//! users to run it: list the tools, store a memory, read it back.
//!
//! Needs the Inspector installed outside the repository; `MCP_INSPECTOR_BIN` names its
//! `mcp-inspector` executable (`.ci/run` installs it from npm). Without it the test says
//! so and passes, except under CI, where it fails.

mod common;

use std::process::{Command, Stdio};

use common::Scratch;
use serde_json::Value;

/// `mcp-inspector --cli memorygraph -e MEMORY_TURSO_PATH=… ARGS`, its stdout as JSON.
fn inspect(bin: &std::path::Path, scratch: &Scratch, args: &[&str]) -> Value {
    let db = scratch.db();
    let out = Command::new(bin)
        .current_dir(scratch.dir.path())
        .env("HOME", scratch.dir.path())
        .arg("--cli")
        .arg(common::binary())
        .args(["-e", &format!("MEMORY_TURSO_PATH={}", db.display())])
        .args(["-e", "MEMORY_LOG_LEVEL=warn"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the MCP Inspector");
    assert!(
        out.status.success(),
        "inspector {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "inspector output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn the_inspector_lists_the_tools_and_calls_them() {
    let Some(bin) =
        common::external_tool("MCP_INSPECTOR_BIN", "the MCP Inspector's `mcp-inspector`")
    else {
        return;
    };
    let scratch = Scratch::new();
    let listed = inspect(&bin, &scratch, &["--method", "tools/list"]);
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for tool in [
        "store_memory",
        "get_memory",
        "search_memories",
        "health",
        "sync",
    ] {
        assert!(names.contains(&tool), "{tool} listed: {names:?}");
    }

    let stored = inspect(
        &bin,
        &scratch,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "store_memory",
            "--tool-arg",
            "type=fix",
            "--tool-arg",
            "title=Restart the worker after a config change",
            "--tool-arg",
            "content=The worker reads its configuration only at start.",
        ],
    );
    assert_eq!(stored["isError"], false);
    let id = stored["structuredContent"]["memory_id"].as_str().unwrap();

    let got = inspect(
        &bin,
        &scratch,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "get_memory",
            "--tool-arg",
            &format!("memory_id={id}"),
        ],
    );
    assert_eq!(
        got["structuredContent"]["memory"]["title"],
        "Restart the worker after a config change"
    );
}

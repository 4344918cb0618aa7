//! The MCP Inspector's command-line mode against the real binary, as docs/clients.md tells
//! users to run it: list the tools, store a memory, read it back. Both the current release
//! (what `npx @modelcontextprotocol/inspector` gives today) and the 0.x line run, and neither
//! may warn about our tool schemas.
//!
//! `MCP_INSPECTOR_BIN` (0.17.2) and `MCP_INSPECTOR_2_BIN` (2.12.0) name the `mcp-inspector`
//! executables; without them the tests install both from npm (see `common::tools`).

mod common;

use std::process::{Command, Stdio};

use common::Scratch;
use serde_json::Value;

/// `mcp-inspector --cli memorygraph -e MEMORY_TURSO_PATH=… ARGS`: its stdout as JSON, and
/// its stderr.
fn inspect(bin: &std::path::Path, scratch: &Scratch, args: &[&str]) -> (Value, String) {
    let db = format!("MEMORY_TURSO_PATH={}", scratch.db().display());
    let server = [common::binary(), "-e", &db, "-e", "MEMORY_LOG_LEVEL=warn"];
    run_inspector(bin, scratch, &server, args)
}

/// `mcp-inspector --cli SERVER… ARGS`, SERVER naming how to reach it (a command to start, or
/// a URL with its transport): its stdout as JSON, and its stderr.
fn run_inspector(
    bin: &std::path::Path,
    scratch: &Scratch,
    server: &[&str],
    args: &[&str],
) -> (Value, String) {
    let out = Command::new(bin)
        .current_dir(scratch.dir.path())
        .env("HOME", scratch.dir.path())
        .arg("--cli")
        .args(server)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the MCP Inspector");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "inspector {args:?} failed ({}):\n{stderr}",
        out.status
    );
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "inspector output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (json, stderr)
}

/// Lists the tools (checking the Inspector has nothing to say about their schemas), stores a
/// memory and reads it back, with the Inspector release `version`.
fn lists_and_calls(version: &str) {
    let bin = common::tools::inspector(version);
    let scratch = Scratch::new();
    // The 2.x Inspector checks every tool schema for portability; `--strict` prints each
    // problem in full on stderr (the 0.x line has no such check and no such flag).
    let strict: &[&str] = if version.starts_with("0.") {
        &[]
    } else {
        &["--strict"]
    };
    let (listed, stderr) = inspect(
        &bin,
        &scratch,
        &[&["--method", "tools/list"], strict].concat(),
    );
    if stderr.to_ascii_lowercase().contains("warning") || stderr.contains("Error") {
        let first: Vec<&str> = stderr.lines().take(24).collect();
        let last = stderr.lines().last().unwrap_or_default();
        panic!(
            "the MCP Inspector {version} warns about our tool schemas:\n{}\n…\n{last}",
            first.join("\n")
        );
    }
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

    let (stored, _) = inspect(
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
    assert_eq!(stored["isError"], false, "{stored}");
    let id = stored["structuredContent"]["memory_id"].as_str().unwrap();

    let (got, _) = inspect(
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

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the MCP Inspector from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_current_inspector_lists_the_tools_and_calls_them() {
    lists_and_calls(common::tools::INSPECTOR_VERSIONS[1]);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the MCP Inspector from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_0x_inspector_lists_the_tools_and_calls_them() {
    lists_and_calls(common::tools::INSPECTOR_VERSIONS[0]);
}

/// The Inspector's command-line mode over Streamable HTTP (`--transport http`) against
/// `serve --http`, with the bearer token in a header, as docs/clients.md shows.
fn over_http(version: &str) {
    let bin = common::tools::inspector(version);
    let scratch = Scratch::new();
    let db = scratch.db();
    let server = common::http::HttpServer::start(&db, &[], &[]);
    let token = common::run::run(&db, &["token", "show"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let url = format!("http://{}/mcp", server.address);
    let bearer = format!("Authorization: Bearer {token}");
    let server = [url.as_str(), "--transport", "http", "--header", &bearer];
    let inspect = |args: &[&str]| run_inspector(&bin, &scratch, &server, args).0;
    let listed = inspect(&["--method", "tools/list"]);
    assert!(listed["tools"].as_array().unwrap().len() >= 10, "{listed}");
    let stored = inspect(&[
        "--method",
        "tools/call",
        "--tool-name",
        "store_memory",
        "--tool-arg",
        "type=fix",
        "--tool-arg",
        "title=Reached over HTTP",
        "--tool-arg",
        "content=The Inspector called through serve --http.",
    ]);
    assert_eq!(stored["isError"], false, "{stored}");
    let found = inspect(&[
        "--method",
        "tools/call",
        "--tool-name",
        "search_memories",
        "--tool-arg",
        "query=Inspector",
    ]);
    assert_eq!(
        found["structuredContent"]["results"][0]["title"],
        "Reached over HTTP"
    );
    // Without the token the Inspector is refused.
    let refused = Command::new(&bin)
        .args([
            "--cli",
            &url,
            "--transport",
            "http",
            "--method",
            "tools/list",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "no token, yet the Inspector got in"
    );
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the MCP Inspector from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_current_inspector_reaches_serve_http_with_the_token() {
    over_http(common::tools::INSPECTOR_VERSIONS[1]);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the MCP Inspector from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_0x_inspector_reaches_serve_http_with_the_token() {
    over_http(common::tools::INSPECTOR_VERSIONS[0]);
}

//! The official Python MCP SDK's Streamable HTTP client against `serve --http`, in both
//! protocol eras: `tests/python/sdk_http_client.py` connects with the bearer token, lists
//! the tools, stores a memory, finds it with `search_memories` and asks `get_memory` for an id
//! that does not exist; it prints what it negotiated, what each call gave and every request
//! it put on the wire, which the tests check here.
//!
//! - SDK 1.30.0, the last of the 1.x line, knows only the initialize handshake (up to
//!   2025-11-25): one MCP session, its id on every later request.
//! - SDK 2.3.0, the newest, probes `server/discover` at 2026-07-28 by default and then sends
//!   each request on its own, the version in its `_meta` and header, with no handshake and no
//!   session; asked for `legacy` it does the 2025-11-25 handshake instead.
//!
//! Without the token each release must fail on a 401 and write nothing.
//!
//! `MCP_PYTHON_SDK_1_BIN` (1.30.0) and `MCP_PYTHON_SDK_BIN` (2.3.0) name a `python` that has
//! the SDK; without them the tests install both into venvs from PyPI (see `common::tools`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Scratch;
use common::http::HttpServer;
use common::tools::PYTHON_SDK_VERSIONS;
use serde_json::{Value, json};

const TITLE: &str = "Reached by the Python MCP SDK";
const MISSING_ID: &str = "00000000-0000-4000-8000-000000000000";

/// What one run of the client script gave.
struct Run {
    ok: bool,
    summary: Value,
    stderr: String,
}

impl Run {
    /// The requests the SDK sent, as the script recorded them.
    fn requests(&self) -> &Vec<Value> {
        self.summary["requests"].as_array().expect("the requests")
    }

    /// The JSON-RPC methods of those requests, in order (`GET` and `DELETE` have none).
    fn methods(&self) -> Vec<&str> {
        self.requests()
            .iter()
            .filter_map(|r| r["method"].as_str())
            .collect()
    }
}

/// A `serve --http` on a fresh database, with its token.
struct Served {
    scratch: Scratch,
    server: HttpServer,
    token: String,
}

impl Served {
    fn start() -> Served {
        let scratch = Scratch::new();
        let db = scratch.db();
        let server = HttpServer::start(&db, &[], &[]);
        let token = common::run::run(&db, &["token", "show"])
            .ok()
            .stdout
            .trim()
            .to_string();
        Served {
            scratch,
            server,
            token,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.server.address)
    }

    /// The memories in the database, counted in it.
    fn memories(&self) -> i64 {
        common::on_database(&self.scratch.db(), async |conn| {
            let mut rows = conn.query("SELECT count(*) FROM nodes", ()).await.unwrap();
            rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap()
        })
    }

    /// The tool names a plain tools/list over HTTP gives, to hold the SDK's list against.
    fn tool_names(&self) -> Vec<String> {
        let session = self.server.session(&self.token);
        let answer = self.server.post(
            &self.token,
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        );
        common::tool_names(&answer.reply())
    }

    /// Runs the client script with `python` (with the token when `token`), in `mode`.
    fn client(&self, python: &Path, token: bool, mode: &str) -> Run {
        let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "python"]
            .iter()
            .collect::<PathBuf>()
            .join("sdk_http_client.py");
        let mut command = Command::new(python);
        command
            .arg(&script)
            .arg(self.url())
            .args(["--mode", mode])
            .current_dir(self.scratch.dir.path())
            .env("HOME", self.scratch.dir.path())
            // Only the venv's packages, no bytecode written, and no proxy between the SDK and
            // the loopback server.
            .env("PYTHONNOUSERSITE", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPATH")
            .stdin(Stdio::null());
        for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            command
                .env_remove(proxy)
                .env_remove(proxy.to_ascii_lowercase());
        }
        if token {
            command.args(["--token", &self.token]);
        }
        let out = command.output().expect("run the Python MCP SDK client");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "the client printed no JSON summary ({e}, {}):\n{}\n{stderr}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
            )
        });
        Run {
            ok: out.status.success(),
            summary,
            stderr,
        }
    }
}

/// The four calls went through and gave what a stdio client gets: the whole tool list, the
/// memory stored (and in the database), found by search, and a missing id as a tool error.
fn check_calls(served: &Served, run: &Run, sdk: &str) {
    let summary = &run.summary;
    assert!(
        run.ok,
        "SDK {sdk} failed: {}\n{}",
        summary["error"], run.stderr
    );
    assert_eq!(summary["sdk"], sdk, "the venv has the SDK release pinned");
    assert_eq!(summary["server"], "memorygraph", "{summary}");

    let tools: Vec<String> = serde_json::from_value(summary["tools"].clone()).unwrap();
    assert_eq!(tools, served.tool_names(), "the SDK lists every tool");
    assert_eq!(summary["tool_count"], tools.len());
    for tool in ["store_memory", "get_memory", "search_memories", "health"] {
        assert!(tools.iter().any(|t| t == tool), "{tool} listed: {tools:?}");
    }

    let stored = &summary["stored"];
    assert_eq!(stored["isError"], false, "{stored}");
    let id = stored["structuredContent"]["memory_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no memory_id in {stored}"));
    assert_eq!(served.memories(), 1, "the store reached the database");

    let found = &summary["found"];
    assert_eq!(found["isError"], false, "{found}");
    let results = found["structuredContent"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{found}");
    assert_eq!(results[0]["id"], id);
    assert_eq!(results[0]["title"], TITLE);

    let missing = &summary["missing"];
    assert_eq!(
        missing["isError"], true,
        "a missing id is a tool error: {missing}"
    );
    let text = missing["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("not found") && text.contains(MISSING_ID),
        "{text}"
    );
}

/// The handshake era: `initialize` offered `offered`, 2025-11-25 agreed, then one session
/// whose id and version every later request carries.
fn check_handshake_era(run: &Run, offered: &str) {
    let summary = &run.summary;
    assert_eq!(summary["protocol_version"], "2025-11-25", "{summary}");
    let requests = run.requests();
    assert_eq!(requests[0]["method"], "initialize", "{requests:?}");
    assert_eq!(requests[0]["protocol_version"], offered);
    assert!(!run.methods().contains(&"server/discover"), "{requests:?}");
    let session = requests[1]["session"].as_str().expect("a session id");
    for request in &requests[1..] {
        assert_eq!(request["session"], session, "{request}");
        assert_eq!(request["header"], "2025-11-25", "{request}");
        assert!(request["status"].as_u64().unwrap() < 300, "{request}");
    }
    assert_eq!(
        run.methods()[1..],
        [
            "notifications/initialized",
            "tools/list",
            "tools/call",
            "tools/call",
            "tools/call"
        ]
    );
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the Python MCP SDK from PyPI; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_1x_sdk_does_the_handshake_and_calls_the_tools_over_http() {
    let sdk = PYTHON_SDK_VERSIONS[0];
    let python = common::tools::python_sdk(sdk);
    let served = Served::start();
    let run = served.client(&python, true, "legacy");
    check_calls(&served, &run, sdk);
    check_handshake_era(&run, "2025-11-25");
    // The handshake era's results keep their shape, without 2026-07-28's `resultType` (1.x
    // keeps the fields it does not know, so one sent would show here).
    for call in ["stored", "found", "missing"] {
        let result = &run.summary[call];
        assert!(result.get("resultType").is_none(), "{call}: {result}");
    }
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the Python MCP SDK from PyPI; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_newest_sdk_speaks_2026_07_28_over_http_by_default() {
    let sdk = PYTHON_SDK_VERSIONS[1];
    let python = common::tools::python_sdk(sdk);
    let served = Served::start();
    let run = served.client(&python, true, "auto");
    check_calls(&served, &run, sdk);
    let summary = &run.summary;
    assert_eq!(summary["protocol_version"], "2026-07-28", "{summary}");
    assert_eq!(
        run.methods(),
        [
            "server/discover",
            "tools/list",
            "tools/call",
            "tools/call",
            "tools/call"
        ],
        "a probe and then the calls, no handshake"
    );
    for request in run.requests() {
        assert_eq!(request["protocol_version"], "2026-07-28", "{request}");
        assert_eq!(request["header"], "2026-07-28", "{request}");
        assert_eq!(request["session"], Value::Null, "no session: {request}");
        assert_eq!(request["status"], 200, "{request}");
    }
    // That revision requires `resultType` on every result: the SDK refuses a result without
    // it, so the calls above going through is the check.
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the Python MCP SDK from PyPI; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_newest_sdk_asked_for_the_handshake_gets_2025_11_25_over_http() {
    let sdk = PYTHON_SDK_VERSIONS[1];
    let python = common::tools::python_sdk(sdk);
    let served = Served::start();
    let run = served.client(&python, true, "legacy");
    check_calls(&served, &run, sdk);
    check_handshake_era(&run, "2025-11-25");
}

/// Without the token the SDK gets a 401 on each request it tries (`tried`, in order), fails,
/// and nothing is written.
fn refused_without_the_token(python: &Path, sdk: &str, tried: &[&str]) {
    let served = Served::start();
    let run = served.client(python, false, "auto");
    assert!(!run.ok, "no token, yet SDK {sdk} got in: {}", run.summary);
    assert!(
        run.summary["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        run.summary
    );
    assert_eq!(run.methods(), tried, "{}", run.summary);
    for request in run.requests() {
        assert_eq!(request["status"], 401, "{request}");
    }
    assert_eq!(served.memories(), 0, "a refused client wrote nothing");
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the Python MCP SDK from PyPI; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_1x_sdk_without_the_token_is_refused_and_writes_nothing() {
    let sdk = PYTHON_SDK_VERSIONS[0];
    refused_without_the_token(&common::tools::python_sdk(sdk), sdk, &["initialize"]);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs the Python MCP SDK from PyPI; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_newest_sdk_without_the_token_is_refused_in_both_eras_and_writes_nothing() {
    let sdk = PYTHON_SDK_VERSIONS[1];
    // Its probe at 2026-07-28 is refused, and so is the handshake it falls back to.
    refused_without_the_token(
        &common::tools::python_sdk(sdk),
        sdk,
        &["server/discover", "initialize"],
    );
}

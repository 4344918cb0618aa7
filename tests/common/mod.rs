//! Test helpers that run the real `memorygraph` binary and speak JSON-RPC to it over its
//! pipes, exactly as an MCP client does.

#![allow(dead_code)]

pub mod browser;
pub mod help;
pub mod http;
pub mod jwt;
pub mod markdown;
pub mod proxy;
pub mod replica;
pub mod run;
pub mod shell;
pub mod sqld;
pub mod tools;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// How long a test waits for one answer before failing.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Environment variables the server reads; cleared so the caller's shell cannot leak in.
pub const SERVER_VARS: [&str; 12] = [
    "MEMORY_BACKEND",
    "MEMORY_TURSO_PATH",
    "MEMORY_SQLITE_PATH",
    "TURSO_DATABASE_URL",
    "TURSO_AUTH_TOKEN",
    "MEMORY_TURSO_AUTO_SYNC",
    "MEMORY_TURSO_SYNC_INTERVAL",
    "MEMORY_TOOL_PROFILE",
    "MEMORY_LOG_LEVEL",
    "MEMORY_ALLOW_CYCLES",
    "MEMORY_MAX_RESPONSE_CHARS",
    "MEMORY_DURABILITY",
];

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_memorygraph")
}

/// A command for the binary with a clean environment, HOME inside `home`, and `home` (or
/// its nearest existing folder) as its working directory: outside any repository, so no
/// project is assumed.
pub fn command(home: &Path) -> Command {
    let mut cmd = Command::new(binary());
    for var in SERVER_VARS {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("MEMORY_LOG_LEVEL", "warn")
        .current_dir(existing_folder(home));
    cmd
}

/// `path`, or its nearest folder that exists (a test may name a folder the server makes).
pub fn existing_folder(path: &Path) -> &Path {
    path.ancestors()
        .find(|p| p.is_dir())
        .unwrap_or(Path::new("/"))
}

/// The lines a child writes, read on a thread of their own as they come.
pub fn lines_of(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A running server with its pipes.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    next_id: i64,
}

impl Server {
    /// Starts the server on `db` with extra environment variables.
    pub fn start(db: &Path, env: &[(&str, &str)]) -> Server {
        let home = db.parent().unwrap();
        let mut cmd = command(home);
        cmd.env("MEMORY_TURSO_PATH", db);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::spawn(cmd)
    }

    pub fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start memorygraph");
        let lines = lines_of(child.stdout.take().unwrap());
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Server {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            next_id: 1,
        }
    }

    /// Starts the server and completes the `initialize` handshake.
    pub fn started(db: &Path, env: &[(&str, &str)]) -> Server {
        let mut s = Server::start(db, env);
        s.initialize("2025-06-18");
        s
    }

    pub fn initialize(&mut self, version: &str) -> Value {
        let answer = self.request(
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "tests", "version": "1"}}),
        );
        self.notify("notifications/initialized", json!({}));
        answer
    }

    /// Writes one raw line to the server's stdin.
    pub fn send_line(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub fn send(&mut self, message: &Value) {
        self.send_line(message.to_string().as_bytes());
    }

    /// The next line the server writes, as JSON.
    pub fn recv(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(ANSWER_TIMEOUT)
            .unwrap_or_else(|_| panic!("no answer from the server; stderr:\n{}", self.stderr()));
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
    }

    /// True when nothing arrives within `wait`.
    pub fn silent_for(&mut self, wait: Duration) -> bool {
        self.lines.recv_timeout(wait).is_err()
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns the whole response object.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let answer = self.recv();
        assert_eq!(
            answer["id"],
            json!(id),
            "answer to another request: {answer}"
        );
        answer
    }

    /// Calls a tool and returns its result (a JSON-RPC error fails the test).
    pub fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let answer = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        assert!(
            answer.get("error").is_none(),
            "{tool} failed at the protocol level: {answer}"
        );
        answer["result"].clone()
    }

    /// Calls a tool that must succeed and returns its structured content.
    pub fn ok(&mut self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments.clone());
        assert_eq!(
            result["isError"],
            json!(false),
            "{tool}({arguments}) failed: {result}"
        );
        result["structuredContent"].clone()
    }

    /// Calls a tool that must fail and returns its error text.
    pub fn err(&mut self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments.clone());
        assert_eq!(
            result["isError"],
            json!(true),
            "{tool}({arguments}) should fail: {result}"
        );
        result["content"][0]["text"].as_str().unwrap().to_string()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Closes stdin and waits for the server to exit.
    pub fn stop(mut self) -> ExitStatus {
        drop(self.stdin.take());
        self.wait()
    }

    /// Hands stdin to the caller (to write from another thread); the server ends when it is
    /// dropped.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin is open")
    }

    /// The next line the server writes, or `None` when it writes nothing within `wait`.
    pub fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(wait).ok()?;
        Some(
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")),
        )
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait(&mut self) -> ExitStatus {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!(
            "the server did not exit within 10 s; stderr:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Server {
    /// A server a test leaves behind is closed like a client closes it (stdin, then a short
    /// wait), so it shuts down cleanly and writes its coverage profile; killed only if stuck.
    fn drop(&mut self) {
        drop(self.stdin.take());
        for _ in 0..40 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `work` on a connection to the file `db` in-process, with no server on it: for the
/// tests that prepare or inspect the file itself.
pub fn on_database<T>(db: &Path, work: impl AsyncFnOnce(&libsql::Connection) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let database = libsql::Builder::new_local(db).build().await.unwrap();
        let conn = database.connect().unwrap();
        work(&conn).await
    })
}

/// A temporary folder with a database path inside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("memory.db")
    }

    /// Copies a file of the shared fixtures into the folder and returns its new path.
    pub fn fixture(&self, name: &str) -> PathBuf {
        let from = fixtures_dir().join(name);
        let to = self.dir.path().join(name);
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        let mut perms = std::fs::metadata(&to).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&to, perms).unwrap();
        to
    }
}

/// The fixtures written by MemoryGraph 0.12.4 and the reference memory server.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture file parsed as JSON.
pub fn fixture_json(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Stores a memory and returns its id.
pub fn store(
    server: &mut Server,
    memory_type: &str,
    title: &str,
    content: &str,
    extra: Value,
) -> String {
    let mut args = json!({"type": memory_type, "title": title, "content": content});
    if let Value::Object(more) = extra {
        args.as_object_mut().unwrap().extend(more);
    }
    server.ok("store_memory", args)["memory_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Reads a memory whole, following `content_next_offset` through a long content.
pub fn full_memory(server: &mut Server, id: &str) -> Value {
    let mut out = server.ok(
        "get_memory",
        json!({"memory_id": id, "include_relationships": false}),
    );
    let mut content = out["memory"]["content"].as_str().unwrap().to_string();
    while let Some(next) = out["content_next_offset"].as_u64() {
        out = server.ok(
            "get_memory",
            json!({"memory_id": id, "content_offset": next, "include_relationships": false}),
        );
        content.push_str(out["memory"]["content"].as_str().unwrap());
    }
    out["memory"]["content"] = Value::String(content);
    out["memory"].clone()
}

/// Every id a search finds, following `next_offset` page after page.
pub fn search_ids(server: &mut Server, mut args: Value) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    loop {
        let page = server.ok("search_memories", args.clone());
        for r in page["results"].as_array().unwrap() {
            found.insert(r["id"].as_str().unwrap().to_string());
        }
        match page["next_offset"].as_u64() {
            Some(next) => args["offset"] = json!(next),
            None => return found,
        }
    }
}

/// The tool names of a `tools/list` answer, sorted.
pub fn tool_names(answer: &Value) -> Vec<String> {
    let mut names: Vec<String> = answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tools/list answer: {answer}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

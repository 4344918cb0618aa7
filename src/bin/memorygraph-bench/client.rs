//! An MCP client over the server's pipes: one request in flight, latency from writing the
//! request line to reading its answer.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Client {
    /// Starts the server and completes `initialize`; returns the client and the time from
    /// spawn to the `initialize` answer.
    pub fn start(server: &Path, db: &Path, env: &[(&str, String)]) -> (Client, Duration) {
        // Outside any repository: the benchmark's memories belong to no project.
        Client::start_in(server, db, env, db.parent().unwrap_or(Path::new("/")))
    }

    /// [`Client::start`] with the server's working directory in `cwd` (its project is the
    /// repository holding it).
    pub fn start_in(
        server: &Path,
        db: &Path,
        env: &[(&str, String)],
        cwd: &Path,
    ) -> (Client, Duration) {
        let started = Instant::now();
        let mut cmd = Command::new(server);
        cmd.current_dir(cwd)
            .env("MEMORY_TURSO_PATH", db)
            .env("MEMORY_LOG_LEVEL", "error")
            .env("MEMORY_TOOL_PROFILE", "extended")
            .env_remove("TURSO_DATABASE_URL")
            .env_remove("TURSO_AUTH_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut client = Client {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        client.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "memorygraph-bench", "version": "1"}}),
        );
        let elapsed = started.elapsed();
        client.notify("notifications/initialized");
        (client, elapsed)
    }

    fn notify(&mut self, method: &str) {
        writeln!(
            self.stdin,
            "{}",
            json!({"jsonrpc": "2.0", "method": method})
        )
        .unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        writeln!(
            self.stdin,
            "{}",
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        )
        .unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let answer: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad answer ({e}): {line}"));
        assert_eq!(
            answer["id"],
            json!(id),
            "answers arrive in order with one request in flight"
        );
        answer
    }

    /// Calls a tool; returns its structured content and the latency.
    pub fn call(&mut self, tool: &str, arguments: Value) -> (Value, Duration) {
        let started = Instant::now();
        let answer = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let elapsed = started.elapsed();
        let result = &answer["result"];
        assert!(result["isError"] != json!(true), "{tool} failed: {answer}");
        (result["structuredContent"].clone(), elapsed)
    }

    /// The server's peak resident memory so far, in kB (Linux).
    pub fn peak_rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    /// The server's proportional set size now, in kB (Linux): its resident memory with
    /// each page shared with other processes (the same binary's code) counted by share, so
    /// the figures of several processes add up to the memory they use together.
    pub fn pss_kb(&self) -> Option<u64> {
        let rollup =
            std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.child.id())).ok()?;
        rollup
            .lines()
            .find(|l| l.starts_with("Pss:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the server at once (SIGKILL), as a crash or an impatient user does.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

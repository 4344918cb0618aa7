//! A small HTTP/1.1 client for the tests of `serve --http`: one request per connection,
//! the answer read whole (plain or chunked; an event stream's `data:` lines parsed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The JSON-RPC messages of the answer: the body, or each event's data.
    pub fn messages(&self) -> Vec<Value> {
        if let Ok(value) = serde_json::from_str::<Value>(&self.body) {
            return vec![value];
        }
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    }

    /// The one message answering a request.
    pub fn reply(&self) -> Value {
        self.messages()
            .into_iter()
            .find(|m| m.get("id").is_some())
            .unwrap_or_else(|| panic!("no reply in: {} {}", self.status, self.body))
    }
}

/// Sends one request to `address` (host:port) and reads the answer whole.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    try_request(address, method, path, headers, body).expect("an answer from the HTTP server")
}

/// As [`request`], `None` when the server cannot be reached or goes away.
pub fn try_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Answer> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // The Host names the address, unless the caller names another (a rebound name).
    let host = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map_or(address, |(_, v)| v);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
    {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let _ = stream.write_all(body);
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).ok()?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                break;
            }
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        let _ = reader.read_to_end(&mut body);
    }
    Some(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A running `memorygraph serve --http` on `db`, with the address it printed.
pub struct HttpServer {
    pub child: Child,
    pub address: String,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl HttpServer {
    pub fn start(db: &Path, args: &[&str], env: &[(&str, &str)]) -> HttpServer {
        let mut cmd: Command = super::command(db.parent().unwrap());
        cmd.env("MEMORY_TURSO_PATH", db)
            .arg("serve")
            .arg("--http")
            .arg("127.0.0.1:0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start serve --http");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("MCP over HTTP at ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    let url = url.split("://").nth(1).unwrap_or_default();
                    let _ = tx.send(url.trim_end_matches("/mcp").to_string());
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve --http did not start: {}", stderr.lock().unwrap()));
        HttpServer {
            child,
            address,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn client(&self) -> HttpClient {
        HttpClient {
            address: self.address.clone(),
        }
    }

    /// POSTs one JSON-RPC message to /mcp with the token (and a session, once there is one).
    pub fn post(&self, token: &str, session: Option<&str>, message: &Value) -> Answer {
        self.client()
            .post(token, session, message)
            .expect("an answer from serve --http")
    }

    /// Opens an MCP session; gives its id.
    pub fn session(&self, token: &str) -> String {
        self.client().session(token).expect("a session")
    }

    /// Calls a tool in a session; the JSON-RPC reply.
    pub fn call(&self, token: &str, session: &str, tool: &str, arguments: Value) -> Value {
        self.client()
            .call(token, session, tool, arguments)
            .expect("an answer from serve --http")
    }
}

/// An MCP client of `serve --http` that gives `None` once the server is gone.
pub struct HttpClient {
    pub address: String,
}

impl HttpClient {
    pub fn post(&self, token: &str, session: Option<&str>, message: &Value) -> Option<Answer> {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        if let Some(session) = session {
            headers.push(("Mcp-Session-Id", session));
        }
        try_request(
            &self.address,
            "POST",
            "/mcp",
            &headers,
            message.to_string().as_bytes(),
        )
    }

    pub fn session(&self, token: &str) -> Option<String> {
        let answer = self.post(
            token,
            None,
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "tests", "version": "1"}}}),
        )?;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let session = answer
            .header("mcp-session-id")
            .expect("a session id")
            .to_string();
        let done = self.post(
            token,
            Some(&session),
            &serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )?;
        assert!(done.status < 300, "{} {}", done.status, done.body);
        Some(session)
    }

    pub fn call(&self, token: &str, session: &str, tool: &str, arguments: Value) -> Option<Value> {
        let answer = self.post(
            token,
            Some(session),
            &serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                "params": {"name": tool, "arguments": arguments}}),
        )?;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let messages = answer.messages();
        messages.into_iter().find(|m| m.get("id").is_some())
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The web view (`--web N`): a database of N memories served by `serve --http`, logged in
//! through the one-time link `memorygraph ui --no-browser` prints. Times what a browser
//! asks for to show the first page (the page, every script and sheet, the vocabulary, the
//! first listing and the change count, one after another on one kept-alive connection, as
//! a worst case of a browser's parallel fetches), and a search from the page, beside the
//! same search over stdio to the same owner.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::Client;
use crate::corpus::Rng;
use crate::stats::{Row, row};

const FIRST_PAGES: usize = 30;
const SEARCHES: usize = 200;
/// What the first page loads besides `/`.
const ASSETS: &[&str] = &[
    "app.css",
    "app.js",
    "api.js",
    "dom.js",
    "find.js",
    "memory.js",
    "graph.js",
    "timeline.js",
    "health.js",
    "relationships.js",
];

pub async fn run(server: &Path, dir: &Path, memories: usize, seed: u64) -> Vec<Row> {
    let folder = dir.join("web");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let db = folder.join("memory.db");
    crate::owners::fill(&db, memories, seed).await;
    let env = [("HOME", folder.display().to_string())];
    // The owner, over stdio: the baseline.
    let (mut owner, _) = Client::start(server, &db, &env);
    let mut http = Command::new(server);
    http.env("MEMORY_TURSO_PATH", &db)
        .env("HOME", &folder)
        .env("MEMORY_LOG_LEVEL", "error")
        .args(["serve", "--http", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = http.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("MCP over HTTP at") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "serve --http ended");
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let link = String::from_utf8(
        Command::new(server)
            .env("MEMORY_TURSO_PATH", &db)
            .env("HOME", &folder)
            .args(["ui", "--no-browser"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let link = link.trim().strip_prefix("http://").unwrap().to_string();
    let (address, login) = link.split_once('/').unwrap();
    let mut page = Page::open(address);
    let (_, headers) = page.exchange("GET", &format!("/{login}"), None);
    let cookie = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap().to_string())
        .expect("a session cookie");
    page.cookie = cookie;

    let listing = json!({"name": "search_memories", "arguments": {"limit": 20, "offset": 0}});
    let mut first = Vec::new();
    for _ in 0..FIRST_PAGES {
        let started = Instant::now();
        page.exchange("GET", "/", None);
        for asset in ASSETS {
            page.exchange("GET", &format!("/ui/assets/{asset}"), None);
        }
        page.exchange("GET", "/ui/api/vocabulary", None);
        page.exchange("POST", "/ui/api/call", Some(&listing.to_string()));
        page.exchange("GET", "/ui/api/changes", None);
        first.push(started.elapsed());
    }
    let mut rng = Rng::new(seed ^ 11);
    let queries: Vec<String> = (0..SEARCHES).map(|_| rng.words(2)).collect();
    let (mut from_page, mut over_stdio) = (Vec::new(), Vec::new());
    for q in &queries {
        let call = json!({"name": "search_memories", "arguments": {"query": q, "limit": 20}});
        let started = Instant::now();
        let (body, _) = page.exchange("POST", "/ui/api/call", Some(&call.to_string()));
        from_page.push(started.elapsed());
        assert!(
            body.contains("structuredContent"),
            "a search from the page failed: {body}"
        );
        over_stdio.push(
            owner
                .call("search_memories", json!({"query": q, "limit": 20}))
                .1,
        );
    }
    drop(page);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    owner.stop();
    vec![
        row(
            "web view: first page (page, 10 files, vocabulary, listing, changes)",
            memories,
            first,
            None,
            "one connection, one request after another",
        ),
        row(
            "web view: a search from the page",
            memories,
            from_page,
            Some(over_stdio),
            "ratio: over the same search over stdio",
        ),
    ]
}

/// A browser's kept-alive connection, with the session cookie once logged in.
struct Page {
    stream: BufReader<TcpStream>,
    address: String,
    cookie: String,
}

impl Page {
    fn open(address: &str) -> Page {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Page {
            stream: BufReader::new(stream),
            address: address.to_string(),
            cookie: String::new(),
        }
    }

    /// One request and its whole answer (a body with Content-Length, as the pages' are).
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (String, Vec<(String, String)>) {
        let body = body.unwrap_or("");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nx-memorygraph-ui: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        if !self.cookie.is_empty() {
            head.push_str(&format!("Cookie: {}\r\n", self.cookie));
        }
        head.push_str("\r\n");
        head.push_str(body);
        self.stream.get_mut().write_all(head.as_bytes()).unwrap();
        let mut status = String::new();
        self.stream.read_line(&mut status).unwrap();
        assert!(
            status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.1 303"),
            "{method} {path}: {status}"
        );
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut out = vec![0; length];
        self.stream.read_exact(&mut out).unwrap();
        (String::from_utf8_lossy(&out).into_owned(), headers)
    }
}

//! The web view (`--web N`): a database of N memories served by `serve --http`, logged in
//! through the one-time link `memorygraph ui --no-browser` prints. Times what a browser
//! asks for to show the first page (the page, every script and sheet, the vocabulary, the
//! first listing and the change count, one after another on one kept-alive connection, as
//! a worst case of a browser's parallel fetches), and a search from the page, beside the
//! same search over stdio to the same owner.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use memorygraph::WEB_ASSETS as ASSETS;
use serde_json::json;

use crate::client::Client;
use crate::corpus::Rng;
use crate::http::{Connection, Served};
use crate::stats::{Row, row};

const FIRST_PAGES: usize = 30;
const SEARCHES: usize = 200;

pub async fn run(server: &Path, dir: &Path, memories: usize, seed: u64) -> Vec<Row> {
    let folder = dir.join("web");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let db = folder.join("memory.db");
    crate::owners::fill(&db, memories, seed).await;
    let env = [("HOME", folder.display().to_string())];
    // The owner, over stdio: the baseline.
    let (mut owner, _) = Client::start(server, &db, &env);
    let served = Served::start(server, &db, &env);
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
    let login = link.trim().split_once(served.address.as_str()).unwrap().1;
    let mut page = Page {
        connection: served.connect(),
        cookie: String::new(),
    };
    let answer = page.exchange("GET", login, "");
    page.cookie = answer
        .header("set-cookie")
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("a session cookie");

    let listing = json!({"name": "search_memories", "arguments": {"limit": 20, "offset": 0}});
    let mut first = Vec::new();
    for _ in 0..FIRST_PAGES {
        let started = Instant::now();
        page.exchange("GET", "/", "");
        for asset in ASSETS {
            page.exchange("GET", &format!("/ui/assets/{}", asset.name), "");
        }
        page.exchange("GET", "/ui/api/vocabulary", "");
        page.exchange("POST", "/ui/api/call", &listing.to_string());
        page.exchange("GET", "/ui/api/changes", "");
        first.push(started.elapsed());
    }
    let mut rng = Rng::new(seed ^ 11);
    let queries: Vec<String> = (0..SEARCHES).map(|_| rng.words(2)).collect();
    let (mut from_page, mut over_stdio) = (Vec::new(), Vec::new());
    for q in &queries {
        let call = json!({"name": "search_memories", "arguments": {"query": q, "limit": 20}});
        let started = Instant::now();
        let answer = page.exchange("POST", "/ui/api/call", &call.to_string());
        from_page.push(started.elapsed());
        assert!(
            answer.body.contains("structuredContent"),
            "a search from the page failed: {}",
            answer.body
        );
        over_stdio.push(
            owner
                .call("search_memories", json!({"query": q, "limit": 20}))
                .1,
        );
    }
    drop(page);
    drop(served);
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
    connection: Connection,
    cookie: String,
}

impl Page {
    /// One request as the pages send it; it must succeed.
    fn exchange(&mut self, method: &str, path: &str, body: &str) -> crate::http::Answer {
        let mut headers = vec![("x-memorygraph-ui", "1")];
        if !self.cookie.is_empty() {
            headers.push(("Cookie", self.cookie.as_str()));
        }
        let answer = self.connection.exchange(method, path, &headers, body);
        assert!(
            answer.status == 200 || answer.status == 303,
            "{method} {path}: {} {}",
            answer.status,
            answer.body
        );
        answer
    }
}

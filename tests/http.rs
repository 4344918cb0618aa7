//! `serve --http`: MCP over Streamable HTTP, secure by default. Every refusal (no token, a
//! wrong or rotated one, a foreign Origin, an oversized body, a public bind without
//! consent) gets its status and writes nothing; a good request then works; the token never
//! shows in the logs; and HTTP sessions go through the database's owner like any window.

mod common;

use common::http::{HttpServer, request};
use common::run::run;
use common::{Scratch, Server, on_database};
use serde_json::json;

fn memories(db: &std::path::Path) -> i64 {
    on_database(db, async |conn| {
        let mut rows = conn.query("SELECT count(*) FROM nodes", ()).await.unwrap();
        rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap()
    })
}

fn store_message(title: &str) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "store_memory", "arguments": {"type": "general", "title": title, "content": "over http"}}})
}

#[test]
fn every_refusal_has_its_status_writes_nothing_and_the_token_stays_secret() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let server = HttpServer::start(&db, &[], &[("MEMORY_LOG_LEVEL", "trace")]);
    let token = run(&db, &["token", "show"]).ok().stdout.trim().to_string();
    assert!(token.len() >= 64, "{token}");
    let session = server.session(&token);
    let body = store_message("refused").to_string();
    let with = |auth: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", session.as_str()),
        ];
        if !auth.is_empty() {
            headers.push(("Authorization", auth));
        }
        headers.extend_from_slice(extra);
        request(&server.address, "POST", "/mcp", &headers, body.as_bytes())
    };

    let none = with("", &[]);
    assert_eq!(none.status, 401, "{}", none.body);
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = with("Bearer mgt_not-the-token-at-all-0000000000000000", &[]);
    assert_eq!(wrong.status, 401);
    let scheme = with(&format!("Basic {token}"), &[]);
    assert_eq!(scheme.status, 401);
    let bearer = format!("Bearer {token}");
    let foreign = with(&bearer, &[("Origin", "https://evil.example")]);
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let big = vec![b'x'; 5 * 1024 * 1024];
    let oversized = request(
        &server.address,
        "POST",
        "/mcp",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        &big,
    );
    assert_eq!(oversized.status, 413, "{}", oversized.body);
    let elsewhere = request(
        &server.address,
        "GET",
        "/other",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(elsewhere.status, 404);
    assert_eq!(memories(&db), 0, "no refused request wrote");

    // The right token with this server's own origin works.
    let own = format!("http://{}", server.address);
    let stored = with(&bearer, &[("Origin", own.as_str())]);
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(
        stored.reply()["result"]["isError"],
        false,
        "{}",
        stored.body
    );
    assert_eq!(memories(&db), 1);

    // A rotated token: the old one is refused from the next request on.
    let rotated = run(&db, &["token", "rotate"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_ne!(rotated, token);
    assert_eq!(with(&bearer, &[]).status, 401);
    let fresh = server.session(&rotated);
    let found = server.call(
        &rotated,
        &fresh,
        "search_memories",
        json!({"query": "refused"}),
    );
    assert_eq!(found["result"]["structuredContent"]["total"], 1, "{found}");

    let log = server.stderr();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "logging at trace level: {log}"
    );
    assert!(
        !log.contains(&token) && !log.contains(&rotated),
        "a token in the log"
    );
    let health = run(&db, &["--json", "health"]).ok().stdout;
    assert!(!health.contains(&rotated));
}

#[test]
fn a_public_address_needs_consent_and_bad_addresses_are_usage_errors() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let public = run(&db, &["serve", "--http", "0.0.0.0:0"]);
    assert_eq!(public.code, 2, "{}", public.stderr);
    assert!(
        public.stderr.contains("--allow-remote"),
        "{}",
        public.stderr
    );
    let nonsense = run(&db, &["serve", "--http", "localhost-ish"]);
    assert_eq!(nonsense.code, 2, "{}", nonsense.stderr);
    let alone = run(&db, &["serve", "--allow-remote"]);
    assert_eq!(alone.code, 2, "{}", alone.stderr);
    assert!(!db.exists(), "nothing was opened");
    assert!(!scratch.dir.path().join("memory.db.http-token").exists());

    // With consent it serves, and still asks for the token.
    let mut cmd = common::command(scratch.dir.path());
    cmd.env("MEMORY_TURSO_PATH", &db);
    let server = HttpServer::start(&db, &["--allow-remote"], &[]);
    drop(cmd);
    let port = server.address.rsplit(':').next().unwrap();
    let answer = request(&format!("127.0.0.1:{port}"), "POST", "/mcp", &[], b"{}");
    assert_eq!(answer.status, 401);
}

#[test]
fn http_sessions_go_through_the_owner_and_outlive_it() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let mut window = Server::started(&db, &[]);
    let server = HttpServer::start(&db, &[], &[]);
    let token = run(&db, &["token", "show"]).ok().stdout.trim().to_string();
    let session = server.session(&token);
    let health = server.call(&token, &session, "health", json!({}));
    assert_eq!(
        health["result"]["structuredContent"]["server_pid"],
        window.pid(),
        "answered by the window that owns the database"
    );
    let stored = server.call(
        &token,
        &session,
        "store_memory",
        json!({"type": "solution", "title": "stored over http", "content": "seen by the window"}),
    );
    let id = stored["result"]["structuredContent"]["memory_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        window.ok("get_memory", json!({"memory_id": id}))["memory"]["title"],
        "stored over http"
    );
    // Errors come back as the stdio server gives them.
    let missing = server.call(&token, &session, "get_memory", json!({"memory_id": "nope"}));
    assert_eq!(missing["result"]["isError"], true, "{missing}");
    let unknown = server.call(&token, &session, "no_such_tool", json!({}));
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no_such_tool"),
        "{unknown}"
    );

    // The owner goes away: the HTTP server takes the database over, the session goes on.
    window.kill();
    let after = server.call(
        &token,
        &session,
        "search_memories",
        json!({"query": "http"}),
    );
    assert_eq!(after["result"]["structuredContent"]["total"], 1, "{after}");
    let health = server.call(&token, &session, "health", json!({}));
    assert_eq!(
        health["result"]["structuredContent"]["server_pid"],
        server.child.id()
    );
}

/// HTTPS with a certificate and key given: a client trusting the certificate gets in (with
/// the token), plain HTTP to the same port does not, and a key that is not a key is a
/// usage error before anything is opened.
#[test]
fn https_with_a_certificate_and_key() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let dir = scratch.dir.path();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt-get install openssl) makes the test certificate");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    std::fs::write(dir.join("not-a-key.pem"), "nothing").unwrap();
    let bad = run(
        &db,
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            dir.join("not-a-key.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("private key"), "{}", bad.stderr);
    assert!(!db.exists());

    let server = HttpServer::start(
        &db,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let token = run(&db, &["token", "show"]).ok().stdout.trim().to_string();
    let port = server.address.rsplit(':').next().unwrap().to_string();
    let curl = |auth: bool| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
            .arg(&cert)
            .args(["-X", "POST", &format!("https://localhost:{port}/mcp")])
            .args(["-H", "Content-Type: application/json"])
            .args(["-H", "Accept: application/json, text/event-stream"])
            .args(["-d", r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#]);
        if auth {
            cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        let out = cmd
            .output()
            .expect("curl (apt-get install curl) is the HTTPS client");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let answer = curl(true);
    assert!(answer.ends_with("200"), "{answer}");
    assert!(answer.contains("\"serverInfo\""), "{answer}");
    assert!(curl(false).ends_with("401"));
    let plain = common::http::try_request(&server.address, "POST", "/mcp", &[], b"{}");
    assert!(
        plain.is_none_or(|a| a.status != 200),
        "plain HTTP on the HTTPS port"
    );
}

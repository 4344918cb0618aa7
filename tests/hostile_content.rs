//! Whatever text a model sends is stored and returned byte for byte; what breaks a limit or
//! looks like a secret is refused with a clear error and writes nothing.

mod common;

use common::{Scratch, Server, full_memory, store};
use serde_json::{Value, json};

fn memories(server: &mut Server) -> i64 {
    server.ok("health", json!({}))["database"]["memories"]
        .as_i64()
        .unwrap()
}

#[test]
fn hostile_text_round_trips_byte_for_byte() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let env = [("MEMORY_MAX_RESPONSE_CHARS", "1000000")];
    let mut server = Server::started(&db, &env);
    let emoji = "😀🧠🔥👩‍💻🏳️‍🌈".repeat(50 * 1024 / "😀🧠🔥👩‍💻🏳️‍🌈".len());
    let cases: Vec<(String, String)> = vec![
        (
            "'; DROP TABLE nodes; --".into(),
            "Robert'); DELETE FROM relationships WHERE 1=1; -- \" ` \\".into(),
        ),
        (
            "title with NEAR(a b) AND OR NOT * ^ \"quote".into(),
            "memory_fts MATCH 'x' OR content:* {col1 col2}: -term +term (".into(),
        ),
        (
            "nul\u{0}byte in the title".into(),
            "a\u{0}b\u{0}\u{0}c".into(),
        ),
        (
            "RTL \u{202E}gnp.exe mixed with עברית and العربية".into(),
            "\u{200F}right-to-left mark, \u{2066}isolate\u{2069}, zero\u{200B}width".into(),
        ),
        (
            "combining e\u{301}\u{302}\u{303} and Z\u{351}\u{352}\u{353}algo".into(),
            "a\u{300}\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}\u{307}\u{308} ﬁ ligature Å Å"
                .into(),
        ),
        ("fifty kilobytes of emoji".into(), emoji.clone()),
        (
            "control characters \u{1}\u{7}\u{1b}[31m".into(),
            "\r\n\t\u{b}\u{c}\u{7f} lone surrogate-free 𝕌𝕟𝕚𝕔𝕠𝕕𝕖".into(),
        ),
        (
            "json breakers }\"]".into(),
            r#"{"type":"x"}\u0000 \\u0041 </script><!--"#.into(),
        ),
    ];
    assert!(emoji.len() >= 49 * 1024);
    let mut ids = Vec::new();
    for (title, content) in &cases {
        let id = store(
            &mut server,
            "general",
            title,
            content,
            json!({"tags": [title.chars().take(20).collect::<String>()], "summary": content.chars().take(100).collect::<String>()}),
        );
        ids.push(id);
    }
    let check = |server: &mut Server| {
        for ((title, content), id) in cases.iter().zip(&ids) {
            let memory = full_memory(server, id);
            assert_eq!(memory["title"].as_str().unwrap(), title.trim());
            assert_eq!(
                memory["content"].as_str().unwrap().as_bytes(),
                content.trim().as_bytes(),
                "content of {title:?} changed"
            );
        }
    };
    check(&mut server);
    // Searching for the hostile text itself is an ordinary query.
    for (title, _) in &cases {
        server.ok("search_memories", json!({"query": title}));
        server.ok("recall_memories", json!({"query": title}));
    }
    assert!(server.stop().success());

    // And it is all still there, unchanged, after a restart.
    let mut server = Server::started(&db, &env);
    check(&mut server);
    assert!(server.stop().success());
}

#[test]
fn over_limit_values_are_refused_and_write_nothing() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let id = store(&mut server, "fix", "kept", "unchanged content", json!({}));
    let cases = [
        (
            json!({"type": "fix", "title": "t".repeat(201), "content": "c"}),
            "title",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c".repeat(50_001)}),
            "content",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "😀".repeat(50_001)}),
            "content",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "summary": "s".repeat(501)}),
            "summary",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "tags": vec!["t"; 51].iter().enumerate().map(|(i, _)| format!("t{i}")).collect::<Vec<_>>()}),
            "tags",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "tags": ["x".repeat(101)]}),
            "tags",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "importance": 1.5}),
            "importance",
        ),
        (
            json!({"type": "no_such_type", "title": "t", "content": "c"}),
            "type",
        ),
        (
            json!({"type": "fix", "title": "   ", "content": "c"}),
            "title",
        ),
    ];
    for (args, field) in cases {
        let text = server.err("store_memory", args);
        assert!(text.contains(field), "{field}: {text}");
    }
    let text = server.err(
        "update_memory",
        json!({"memory_id": id, "content": "c".repeat(50_001)}),
    );
    assert!(text.contains("content"), "{text}");
    assert_eq!(memories(&mut server), 1);
    assert_eq!(
        full_memory(&mut server, &id)["content"],
        "unchanged content"
    );
    assert!(server.stop().success());
}

#[test]
fn likely_secrets_are_refused_unless_allowed() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let aws = "AKIAIOSFODNN7EXAMPLE";
    let github = format!("ghp_{}", "A1b2C3d4E5".repeat(4));
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----";
    let jwt = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJhIjoicnciLCJpYXQiOjE3MDAwMDAwMDB9.Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0";
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"type": "fix", "title": "deploy keys", "content": format!("export AWS_ACCESS_KEY_ID={aws}")}),
            "content",
            "AWS access key",
        ),
        (
            json!({"type": "fix", "title": format!("token {github}"), "content": "c"}),
            "title",
            "GitHub token",
        ),
        (
            json!({"type": "fix", "title": "server key", "content": pem}),
            "content",
            "private key",
        ),
        (
            json!({"type": "fix", "title": "turso", "content": "c", "summary": format!("TURSO_AUTH_TOKEN={jwt}")}),
            "summary",
            "JSON web token",
        ),
        (
            json!({"type": "fix", "title": "t", "content": "c", "tags": [github]}),
            "tags",
            "GitHub token",
        ),
    ];
    for (args, field, kind) in &cases {
        let text = server.err("store_memory", args.clone());
        assert!(text.contains(field), "{text}");
        assert!(text.contains(kind), "{text}");
        assert!(text.contains("allow_secrets"), "{text}");
        for secret in [aws, github.as_str(), jwt, "MIIEpAIBAAKCAQEA7"] {
            assert!(
                !text.contains(secret),
                "the error repeats the secret: {text}"
            );
        }
    }
    assert_eq!(memories(&mut server), 0, "a refused memory was written");

    // Updates are checked the same way.
    let id = store(&mut server, "fix", "plain", "nothing secret", json!({}));
    let text = server.err(
        "update_memory",
        json!({"memory_id": id, "content": format!("key {aws}")}),
    );
    assert!(text.contains("allow_secrets"), "{text}");
    assert_eq!(full_memory(&mut server, &id)["content"], "nothing secret");

    // The caller can say it is meant.
    for (args, _, _) in &cases {
        let mut args = args.clone();
        args["allow_secrets"] = json!(true);
        server.ok("store_memory", args);
    }
    server.ok(
        "update_memory",
        json!({"memory_id": id, "content": format!("key {aws}"), "allow_secrets": true}),
    );
    assert_eq!(
        full_memory(&mut server, &id)["content"],
        format!("key {aws}")
    );
    assert_eq!(memories(&mut server), 1 + cases.len() as i64);
    assert!(server.stop().success());
}

#[cfg(unix)]
#[test]
fn new_files_and_folders_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new();
    let folder = scratch.dir.path().join("new-folder");
    let db = folder.join("memory.db");
    let mut server = Server::started(&db, &[]);
    store(&mut server, "fix", "t", "c", json!({}));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&folder), 0o700, "folder");
    assert_eq!(mode(&db), 0o600, "database");
    for suffix in ["-wal", "-shm"] {
        let mut side = db.clone().into_os_string();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if side.exists() {
            assert_eq!(mode(&side) & 0o077, 0, "{}", side.display());
        }
    }
    assert!(server.stop().success());
}

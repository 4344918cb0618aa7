//! The command line: help, version, and settings that stop the program before it serves.

mod common;

use common::{Scratch, Server, command};
use serde_json::json;

#[test]
fn help_and_version() {
    let scratch = Scratch::new();
    let out = command(scratch.dir.path())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("memorygraph {}", env!("CARGO_PKG_VERSION"))
    );
    let out = command(scratch.dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--backend",
        "--turso-path",
        "--sqlite-path",
        "--database-url",
        "--auth-token",
        "--auto-sync",
        "--sync-interval",
        "--tool-profile",
        "--log-level",
        "--allow-cycles",
        "serve",
        "reindex",
    ] {
        assert!(help.contains(flag), "--help lists {flag}");
    }
}

#[test]
fn invalid_settings_stop_before_serving_with_one_line() {
    let scratch = Scratch::new();
    let blocker = scratch.dir.path().join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("MEMORY_BACKEND", "neo4j".into())], "MEMORY_BACKEND"),
        (
            vec![("MEMORY_TOOL_PROFILE", "everything".into())],
            "MEMORY_TOOL_PROFILE",
        ),
        (
            vec![("MEMORY_TURSO_SYNC_INTERVAL", "-5".into())],
            "MEMORY_TURSO_SYNC_INTERVAL",
        ),
        (
            vec![("MEMORY_LOG_LEVEL", "chatty".into())],
            "MEMORY_LOG_LEVEL",
        ),
        (
            vec![("MEMORY_ALLOW_CYCLES", "perhaps".into())],
            "MEMORY_ALLOW_CYCLES",
        ),
        (
            vec![(
                "MEMORY_TURSO_PATH",
                blocker.join("sub/memory.db").display().to_string(),
            )],
            "MEMORY_TURSO_PATH",
        ),
    ];
    for (env, variable) in cases {
        let mut cmd = command(scratch.dir.path());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{variable}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(variable), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing on stdout");
    }
}

#[test]
fn flags_beat_environment_and_sqlite_backend_reads_its_path() {
    let scratch = Scratch::new();
    let env_db = scratch.dir.path().join("env.db");
    let flag_db = scratch.dir.path().join("nested/flag.db");
    let mut cmd = command(scratch.dir.path());
    cmd.env("MEMORY_TURSO_PATH", &env_db)
        .arg("--turso-path")
        .arg(&flag_db);
    let mut server = Server::spawn(cmd);
    server.initialize("2025-06-18");
    assert_eq!(
        server.ok("health", json!({}))["database"]["database_path"],
        flag_db.display().to_string()
    );
    assert!(server.stop().success());
    assert!(flag_db.exists() && !env_db.exists());

    let sqlite_db = scratch.dir.path().join("sqlite.db");
    let mut cmd = command(scratch.dir.path());
    cmd.env("MEMORY_BACKEND", "sqlite")
        .env("MEMORY_SQLITE_PATH", &sqlite_db);
    let mut server = Server::spawn(cmd);
    server.initialize("2025-06-18");
    assert_eq!(
        server.ok("health", json!({}))["database"]["database_path"],
        sqlite_db.display().to_string()
    );

    let mut cmd = command(scratch.dir.path());
    cmd.arg("serve");
    let mut server = Server::spawn(cmd);
    server.initialize("2025-06-18");
    let default = scratch.dir.path().join(".memorygraph/memory.db");
    assert_eq!(
        server.ok("health", json!({}))["database"]["database_path"],
        default.display().to_string()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(default.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the folder is private");
        let mode = std::fs::metadata(&default).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the file is private");
    }
}

#[test]
fn reindex_rebuilds_the_search_index() {
    let scratch = Scratch::new();
    let db = scratch.fixture("memorygraph-0.12.4.db");
    let out = command(scratch.dir.path())
        .env("MEMORY_TURSO_PATH", &db)
        .arg("reindex")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut server = Server::started(&db, &[]);
    assert_eq!(
        server.ok("health", json!({}))["database"]["full_text_indexed"],
        61
    );
    assert_eq!(
        server.ok("search_memories", json!({"query": "palimpsest"}))["total"],
        1
    );
}

/// A MemoryGraph user's settings name the file with MEMORY_SQLITE_PATH alone (MemoryGraph's
/// default backend is `sqlite`): that file is opened, never an empty one in the home folder.
#[test]
fn memorygraph_sqlite_path_alone_opens_that_file() {
    let scratch = Scratch::new();
    let db = scratch.fixture("memorygraph-0.12.4.db");
    let out = command(scratch.dir.path())
        .env("MEMORY_SQLITE_PATH", &db)
        .args(["--json", "health"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let health: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        health["database"]["database_path"],
        db.display().to_string()
    );
    assert_eq!(health["database"]["memories"], 61, "{health}");
    assert!(!scratch.dir.path().join(".memorygraph").exists());

    // With a primary URL also exported, which file is meant is unclear: one line says what
    // to set, and nothing is created.
    let out = command(scratch.dir.path())
        .env("MEMORY_SQLITE_PATH", &db)
        .env("TURSO_DATABASE_URL", "http://127.0.0.1:9")
        .arg("health")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("MEMORY_BACKEND=sqlite"), "{stderr}");
    assert!(!scratch.dir.path().join(".memorygraph").exists());
}

/// Windows sets USERPROFILE, not HOME: the default file goes there.
#[test]
fn the_default_file_lives_in_the_user_profile_without_home() {
    let scratch = Scratch::new();
    let profile = scratch.dir.path().join("profile");
    std::fs::create_dir(&profile).unwrap();
    let out = command(scratch.dir.path())
        .env_remove("HOME")
        .env("USERPROFILE", &profile)
        .args(["--json", "health"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let health: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = profile.join(".memorygraph").join("memory.db");
    assert_eq!(
        health["database"]["database_path"],
        expected.display().to_string()
    );
    assert!(expected.exists());
}

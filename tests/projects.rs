//! Projects over stdio: a memory belongs to the project it was stored from (the client's
//! MCP roots, else the repository of the server's working directory, else none), and recall
//! and search favour the session's project, can be scoped to it, or see all alike.

mod common;

use std::path::Path;

use common::{Scratch, Server, command};
use serde_json::{Value, json};

/// A client that lists roots: sends `initialize` saying so, then answers the server's
/// `roots/list` requests with whatever roots the test holds at the time.
struct RootsClient {
    server: Server,
    roots: Vec<String>,
    next_id: i64,
    /// `roots/list` requests answered so far.
    asked: usize,
}

impl RootsClient {
    fn start(db: &Path, cwd: &Path, roots: Vec<String>) -> RootsClient {
        let mut cmd = command(db.parent().unwrap());
        cmd.env("MEMORY_TURSO_PATH", db).current_dir(cwd);
        let mut server = Server::spawn(cmd);
        server.send(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {"roots": {"listChanged": true}},
            "clientInfo": {"name": "tests", "version": "1"}}}),
        );
        let answer = server.recv();
        assert_eq!(answer["id"], json!(0), "{answer}");
        server.notify("notifications/initialized", json!({}));
        RootsClient {
            server,
            roots,
            next_id: 1,
            asked: 0,
        }
    }

    /// Answers one `roots/list` request, which must be the next line.
    fn answer_roots(&mut self) {
        let request = self.server.recv();
        self.answer(&request);
    }

    fn answer(&mut self, request: &Value) {
        assert_eq!(request["method"], "roots/list", "{request}");
        let roots: Vec<Value> = self.roots.iter().map(|uri| json!({"uri": uri})).collect();
        self.server
            .send(&json!({"jsonrpc": "2.0", "id": request["id"], "result": {"roots": roots}}));
        self.asked += 1;
    }

    /// Calls a tool, answering any `roots/list` request that comes first.
    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.server
            .send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}));
        loop {
            let line = self.server.recv();
            if line.get("method").is_some() {
                self.answer(&line);
                continue;
            }
            assert_eq!(line["id"], json!(id), "{line}");
            return line["result"].clone();
        }
    }

    fn ok(&mut self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments.clone());
        assert_eq!(
            result["isError"],
            json!(false),
            "{tool}({arguments}): {result}"
        );
        result["structuredContent"].clone()
    }

    fn err(&mut self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments.clone());
        assert_eq!(
            result["isError"],
            json!(true),
            "{tool}({arguments}): {result}"
        );
        result["content"][0]["text"].as_str().unwrap().to_string()
    }
}

fn uri(path: &Path) -> String {
    // A space in a folder name travels escaped, as clients send it.
    format!("file://{}", path.display()).replace(' ', "%20")
}

fn ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Steps different enough that no two memories are near-duplicates (recall would fold
/// them), in each project.
const STEPS: [[&str; 3]; 2] = [
    [
        "copies the build with rsync over ssh",
        "takes the release lock, then migrates every database table",
        "warms caches and pings the health endpoint until green",
    ],
    [
        "uploads containers to the registry with rsync fallback",
        "drains old pods gracefully before switching traffic",
        "posts a summary to the team channel afterwards",
    ],
];

/// Stores `n` memories about the deploy script and returns their ids.
fn deploys(store: &mut impl FnMut(Value) -> Value, n: usize, place: &str) -> Vec<String> {
    let set = usize::from(matches!(place, "beta" | "two"));
    (0..n)
        .map(|i| {
            let answer = store(json!({"type": "solution",
                "title": format!("Deploy script step {i} in {place}"),
                "content": format!("the deploy script of {place} {}", STEPS[set][i])}));
            answer["memory_id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Every id of `first` comes before every id of `then` in `order`, and all are there.
fn before(order: &[String], first: &[String], then: &[String]) {
    let at = |id: &String| {
        order
            .iter()
            .position(|o| o == id)
            .unwrap_or_else(|| panic!("{id} missing from {order:?}"))
    };
    let last_first = first.iter().map(at).max().unwrap();
    let first_then = then.iter().map(at).min().unwrap();
    assert!(
        last_first < first_then,
        "{first:?} should all come before {then:?} in {order:?}"
    );
}

#[test]
fn roots_name_the_project_and_searches_favour_it_or_keep_to_it() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let alpha = scratch.dir.path().join("work/alpha app");
    let beta = scratch.dir.path().join("work/beta");
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::create_dir_all(&beta).unwrap();
    let alpha_path = alpha.display().to_string();
    let beta_path = beta.display().to_string();

    // The first `file:` root is the project; another scheme is passed over.
    let mut client = RootsClient::start(
        &db,
        scratch.dir.path(),
        vec!["https://example.invalid/x".into(), uri(&alpha), uri(&beta)],
    );
    client.answer_roots();
    let mut in_alpha = Vec::new();
    let alpha_ids = deploys(
        &mut |args| {
            let out = client.ok("store_memory", args);
            in_alpha.push(out["project"].clone());
            out
        },
        3,
        "alpha",
    );
    for project in &in_alpha {
        assert_eq!(project["path"], json!(alpha_path), "{project}");
        assert_eq!(project["source"], "roots");
    }
    // Shared: stored for every project.
    let shared = client.ok(
        "store_memory",
        json!({"type": "general", "title": "Deploy script rule for all",
               "content": "every deploy script takes the lock first", "project": ""}),
    );
    assert!(shared.get("project").is_none(), "{shared}");
    let shared_id = shared["memory_id"].as_str().unwrap().to_string();

    // One project only: favouring it changes nothing.
    let favoured = client.ok("recall_memories", json!({"query": "deploy script lock"}));
    let all = client.ok(
        "recall_memories",
        json!({"query": "deploy script lock", "scope": "all"}),
    );
    assert_eq!(ids(&favoured), ids(&all));
    assert_eq!(favoured["project"]["scope"], "favoured");
    assert!(all.get("project").is_none(), "{all}");

    // The client moves to beta: asked again, the new first root is the project.
    client.roots = vec![uri(&beta)];
    client
        .server
        .notify("notifications/roots/list_changed", json!({}));
    client.answer_roots();
    let beta_ids = {
        let mut store = |args| client.ok("store_memory", args);
        deploys(&mut store, 3, "beta")
    };
    let stored = client.ok(
        "get_memory",
        json!({"memory_id": beta_ids[0], "include_relationships": false}),
    );
    assert_eq!(
        stored["memory"]["context"]["project_path"],
        json!(beta_path)
    );
    // A sub-folder of a root belongs to its project.
    let sub = client.ok(
        "store_memory",
        json!({"type": "general", "title": "Deploy script notes in a sub-folder",
               "content": "the deploy script of the beta tools folder", "project": format!("{beta_path}/tools/")}),
    );
    let sub_id = sub["memory_id"].as_str().unwrap().to_string();
    assert_eq!(sub["project"]["source"], "argument");

    let mut own = beta_ids.clone();
    own.push(shared_id.clone());
    own.push(sub_id.clone());
    for tool in ["recall_memories", "search_memories"] {
        let favoured = client.ok(tool, json!({"query": "deploy script"}));
        assert_eq!(favoured["project"]["path"], json!(beta_path));
        assert_eq!(favoured["project"]["source"], "roots");
        assert_eq!(favoured["total"], json!(8), "{tool}: {favoured}");
        before(&ids(&favoured), &own, &alpha_ids);

        let only = client.ok(tool, json!({"query": "deploy script", "scope": "project"}));
        assert_eq!(only["project"]["scope"], "only");
        let mut got = ids(&only);
        got.sort();
        let mut want = own.clone();
        want.sort();
        assert_eq!(got, want, "{tool} scoped to beta");
        assert_eq!(only["total"], json!(5));

        // Without words: a listing, beta's first too.
        let listed = client.ok(tool, json!({}));
        before(&ids(&listed), &own, &alpha_ids);
        // MemoryGraph's exact filter still works, and favours nothing.
        let exact = client.ok(tool, json!({"query": "deploy", "project_path": alpha_path}));
        let mut got = ids(&exact);
        got.sort();
        let mut want = alpha_ids.clone();
        want.sort();
        assert_eq!(got, want, "{tool} with project_path");
        assert!(exact.get("project").is_none());
    }

    // A bad scope is refused, and the session goes on.
    let text = client.err(
        "recall_memories",
        json!({"query": "deploy", "scope": "everything"}),
    );
    assert!(text.contains("everything"), "{text}");

    // `scope: all` ranks as a session without any project does.
    let everything = client.ok(
        "search_memories",
        json!({"query": "deploy script", "scope": "all"}),
    );
    let mut plain = Server::started(&db, &[]);
    let no_project = plain.ok("search_memories", json!({"query": "deploy script"}));
    assert!(no_project.get("project").is_none(), "{no_project}");
    assert_eq!(ids(&everything), ids(&no_project));
    // A store from a session with no project belongs to none.
    let loose = plain.ok(
        "store_memory",
        json!({"type": "general", "title": "Loose", "content": "no project here"}),
    );
    assert!(loose.get("project").is_none(), "{loose}");
    assert!(loose["memory"].get("project_path").is_none(), "{loose}");
    assert_eq!(
        client.asked, 2,
        "roots are asked once, and again when they change"
    );
}

#[test]
fn working_directories_name_each_windows_project() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let one = scratch.dir.path().join("one");
    let two = scratch.dir.path().join("two");
    std::fs::create_dir_all(one.join(".git")).unwrap();
    std::fs::create_dir_all(two.join("src/deep")).unwrap();
    // A worktree or submodule marks its root with a `.git` file.
    std::fs::write(two.join(".git"), "gitdir: elsewhere\n").unwrap();
    let start = |cwd: &Path| {
        let mut cmd = command(scratch.dir.path());
        cmd.env("MEMORY_TURSO_PATH", &db).current_dir(cwd);
        let mut server = Server::spawn(cmd);
        server.initialize("2025-06-18");
        server
    };
    // The first process owns the database; the second forwards to it, and its own working
    // directory names its project.
    let mut first = start(&one);
    let mut second = start(&two.join("src/deep"));
    let one_ids = deploys(&mut |args| first.ok("store_memory", args), 2, "one");
    let two_ids = deploys(&mut |args| second.ok("store_memory", args), 2, "two");
    let answer = second.ok(
        "get_memory",
        json!({"memory_id": two_ids[0], "include_relationships": false}),
    );
    assert_eq!(
        answer["memory"]["context"]["project_path"],
        json!(two.display().to_string())
    );
    for (server, own, other, root) in [
        (&mut first, &one_ids, &two_ids, &one),
        (&mut second, &two_ids, &one_ids, &two),
    ] {
        let favoured = server.ok("recall_memories", json!({"query": "deploy script rsync"}));
        assert_eq!(
            favoured["project"]["path"],
            json!(root.display().to_string())
        );
        assert_eq!(favoured["project"]["source"], "working_directory");
        before(&ids(&favoured), own, other);
        let only = server.ok(
            "search_memories",
            json!({"query": "deploy script", "scope": "project"}),
        );
        let mut got = ids(&only);
        got.sort();
        let mut want = own.clone();
        want.sort();
        assert_eq!(&got, &want);
    }
}

#[test]
fn bad_project_arguments_are_refused_and_change_nothing() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let mut server = Server::started(&db, &[]);
    server.ok(
        "store_memory",
        json!({"type": "general", "title": "Kept", "content": "deploy notes"}),
    );
    let refused = [
        (
            "recall_memories",
            json!({"query": "deploy", "scope": "project"}),
            "needs the session's project",
        ),
        (
            "search_memories",
            json!({"query": "deploy", "scope": "project"}),
            "needs the session's project",
        ),
        (
            "search_memories",
            json!({"query": "deploy", "scope": "mine"}),
            "scope",
        ),
        (
            "store_memory",
            json!({"type": "general", "title": "Two projects", "content": "deploy",
                   "project": "/w/a", "context": {"project_path": "/w/b"}}),
            "different projects",
        ),
        (
            "store_memory",
            json!({"type": "general", "title": "Long", "content": "deploy",
                   "project": "x".repeat(1001)}),
            "project",
        ),
        (
            "store_memory",
            json!({"type": "general", "title": "Not text", "content": "deploy", "project": 7}),
            "project",
        ),
    ];
    for (tool, args, says) in refused {
        let text = server.err(tool, args.clone());
        assert!(text.contains(says), "{tool}({args}): {text}");
        let all = server.ok("search_memories", json!({}));
        assert_eq!(all["total"], json!(1), "after {tool}({args})");
    }
    // The same project twice is one project.
    let same = server.ok(
        "store_memory",
        json!({"type": "general", "title": "Same", "content": "deploy",
               "project": "/w/a/", "context": {"project_path": "/w/a"}}),
    );
    assert_eq!(same["project"]["path"], "/w/a");
    assert_eq!(
        server.ok("search_memories", json!({"project_path": "/w/a"}))["total"],
        json!(1)
    );
}

#[test]
fn a_client_that_never_lists_its_roots_is_waited_for_once() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let repo = scratch.dir.path().join("repo");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    let mut client = RootsClient::start(&db, &repo, vec![uri(&scratch.dir.path().join("late"))]);
    // The server asks; the client does not answer yet.
    let pending = client.server.recv();
    assert_eq!(pending["method"], "roots/list");
    let first = client.ok(
        "store_memory",
        json!({"type": "general", "title": "While waiting", "content": "first"}),
    );
    assert_eq!(first["project"]["source"], "working_directory", "{first}");
    assert_eq!(first["project"]["path"], json!(repo.display().to_string()));
    assert!(
        client.server.stderr().contains("did not list them"),
        "the wait is logged: {}",
        client.server.stderr()
    );
    // Not asked again, and not waited for again.
    let second = client.ok(
        "store_memory",
        json!({"type": "general", "title": "Not waiting", "content": "second"}),
    );
    assert_eq!(second["project"]["source"], "working_directory");
    assert_eq!(client.asked, 0);
    // The late answer still counts, as soon as the server has read it.
    client.answer(&pending);
    let late = scratch.dir.path().join("late").display().to_string();
    let waited = std::time::Instant::now();
    loop {
        let page = client.ok("recall_memories", json!({"query": "first"}));
        if page["project"]["source"] == "roots" {
            assert_eq!(page["project"]["path"], json!(late));
            break;
        }
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(10),
            "the late roots never counted: {page}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

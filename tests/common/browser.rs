//! A small synchronous WebDriver client, so the tests of the web page drive a real headless
//! Chromium the way a user's browser runs it: `chromedriver` (started per test on a free
//! port of 127.0.0.1) starts the browser, and each call here is one W3C WebDriver command
//! over plain HTTP/1.1, its JSON answer read with serde_json.
//!
//! Everything panics with context on failure, as the other helpers do: a WebDriver error
//! (`value.error`) names the command, the error and its message.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key under which W3C WebDriver hands over a reference to an element.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long chromedriver may take to answer `/status` as ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How often [`Browser::wait_for`] looks again.
const POLL: Duration = Duration::from_millis(50);
/// How much of the page source a failed lookup shows.
const SOURCE_EXCERPT: usize = 2000;

/// WebDriver's codes for the keys that are not characters, for [`Browser::press_keys`] and
/// [`Element::send_keys`].
pub mod key {
    pub const NULL: &str = "\u{E000}";
    pub const BACKSPACE: &str = "\u{E003}";
    pub const TAB: &str = "\u{E004}";
    pub const ENTER: &str = "\u{E007}";
    pub const SHIFT: &str = "\u{E008}";
    pub const CONTROL: &str = "\u{E009}";
    pub const ALT: &str = "\u{E00A}";
    pub const ESCAPE: &str = "\u{E00C}";
    pub const ARROW_LEFT: &str = "\u{E012}";
    pub const ARROW_UP: &str = "\u{E013}";
    pub const ARROW_RIGHT: &str = "\u{E014}";
    pub const ARROW_DOWN: &str = "\u{E015}";
    pub const DELETE: &str = "\u{E017}";
    pub const META: &str = "\u{E03D}";
}

/// An error WebDriver answered with (`value.error` and `value.message`).
#[derive(Debug)]
pub struct WebDriverError {
    pub error: String,
    pub message: String,
}

/// A headless Chromium under chromedriver, with one WebDriver session open on it.
pub struct Browser {
    driver: Child,
    address: String,
    session: String,
    /// The browser's process, as chromedriver reports it: killed on drop only when ending
    /// the session did not close it.
    browser_pid: Option<u64>,
    /// The request URLs read from the performance log so far: chromedriver hands each log
    /// entry out once, so they are kept here for [`Browser::network_hosts`].
    requests: RefCell<Vec<String>>,
    /// The browser profile and chromedriver's output; removed last, on drop.
    scratch: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of `width` x `height` and a
    /// fresh profile, and opens a session on it.
    pub fn start(width: u32, height: u32) -> Browser {
        let driver_path = program("CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver");
        let chromium = program("CHROMIUM", "/usr/bin/chromium", "Chromium");
        let scratch = tempfile::tempdir().expect("a folder for the browser profile");
        // The port is picked free just before chromedriver binds it; should another
        // process take it in between, chromedriver exits and the next attempt picks again.
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let log_path = scratch.path().join(format!("chromedriver-{attempt}.log"));
            let (driver, address) = match spawn_driver(&driver_path, &log_path) {
                Ok(started) => started,
                Err(problem) => {
                    failures.push(problem);
                    continue;
                }
            };
            let mut browser = Browser {
                driver,
                address,
                session: String::new(),
                browser_pid: None,
                requests: RefCell::new(Vec::new()),
                scratch,
            };
            browser.open_session(&chromium, width, height);
            return browser;
        }
        panic!("chromedriver did not start:\n{}", failures.join("\n"));
    }

    fn open_session(&mut self, chromium: &Path, width: u32, height: u32) {
        let profile = self.scratch.path().join("profile");
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            format!("--window-size={width},{height}"),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-default-apps".to_string(),
            "--disable-extensions".to_string(),
            "--metrics-recording-only".to_string(),
            "--no-default-browser-check".to_string(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args, "prefs": {
                "download.default_directory": self.downloads(),
                "download.prompt_for_download": false,
            }},
            "goog:loggingPrefs": {"performance": "ALL"},
        }}});
        let created = match send(&self.address, "POST", "/session", Some(&capabilities)) {
            Ok(created) => created,
            Err(e) => panic!(
                "chromedriver could not start {}: {}: {}\n{}",
                chromium.display(),
                e.error,
                e.message,
                self.driver_log()
            ),
        };
        self.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in: {created}"))
            .to_string();
        self.browser_pid = created["capabilities"]["goog:processID"].as_u64();
    }

    /// Where the browser saves what a page downloads.
    pub fn downloads(&self) -> PathBuf {
        self.scratch.path().join("downloads")
    }

    /// What chromedriver has written so far, for failure messages.
    fn driver_log(&self) -> String {
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(self.scratch.path()) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".log") {
                    text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
                }
            }
        }
        format!("chromedriver's output:\n{text}")
    }

    /// Sends one command of the session; its `value`, or the error WebDriver answered.
    pub fn try_command(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, WebDriverError> {
        let path = format!("/session/{}{path}", self.session);
        send(&self.address, method, &path, body)
    }

    /// Sends one command of the session and gives its `value`; an error fails the test.
    pub fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.try_command(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {}: {}", e.error, e.message))
    }

    /// Loads `url` and waits until the page has loaded.
    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(&json!({"url": url})));
    }

    /// The URL of the page shown.
    pub fn url(&self) -> String {
        string(self.command("GET", "/url", None))
    }

    /// The page's HTML as it is now (the DOM serialised, not what the server sent).
    pub fn source(&self) -> String {
        string(self.command("GET", "/source", None))
    }

    /// The first element matching the CSS selector; fails the test, showing the start of the
    /// page, when there is none.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.try_find(css).unwrap_or_else(|| {
            let source = self.source();
            let end = source
                .char_indices()
                .nth(SOURCE_EXCERPT)
                .map_or(source.len(), |(i, _)| i);
            panic!(
                "no element matches {css:?} on {}; the page begins:\n{}",
                self.url(),
                &source[..end]
            )
        })
    }

    /// The first element matching the CSS selector, if any.
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let body = json!({"using": "css selector", "value": css});
        match self.try_command("POST", "/element", Some(&body)) {
            Ok(found) => Some(self.element(&found)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("finding {css:?}: {}: {}", e.error, e.message),
        }
    }

    /// Every element matching the CSS selector, in document order.
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let body = json!({"using": "css selector", "value": css});
        match self.command("POST", "/elements", Some(&body)) {
            Value::Array(found) => found.iter().map(|r| self.element(r)).collect(),
            other => panic!("finding all {css:?}: not a list: {other}"),
        }
    }

    /// The element an answer refers to.
    fn element(&self, reference: &Value) -> Element<'_> {
        let id = reference[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element reference: {reference}"));
        Element {
            browser: self,
            id: id.to_string(),
        }
    }

    /// Calls `check` every 50 ms until it holds; fails the test, naming `what`, when it
    /// still does not after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, mut check: impl FnMut(&Browser) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if check(self) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {limit:?} waiting for {what} on {}",
                    self.url()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until an element matching `css` shows text containing `needle`.
    pub fn wait_text(&self, css: &str, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        let last_seen: Vec<String> = loop {
            // The page may replace an element between the lookup and the reading of its
            // text; such an element is skipped and looked up again on the next round.
            let seen: Vec<String> = self
                .find_all(css)
                .iter()
                .filter_map(|e| e.try_text())
                .collect();
            if seen.iter().any(|text| text.contains(needle)) {
                return;
            }
            if Instant::now() >= deadline {
                break seen;
            }
            std::thread::sleep(POLL);
        };
        panic!(
            "timed out after {limit:?} waiting for an element {css:?} showing {needle:?} on {}; \
             they show: {last_seen:?}",
            self.url()
        );
    }

    /// Runs `js` as the body of a function in the page, with `args` as its `arguments`, and
    /// gives what it returns.
    pub fn script(&self, js: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(&json!({"script": js, "args": args})),
        )
    }

    /// As [`Browser::script`], for a script that finishes by calling its last argument (a
    /// callback WebDriver adds) with the result.
    pub fn script_async(&self, js: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/async",
            Some(&json!({"script": js, "args": args})),
        )
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let encoded = string(self.command("GET", "/screenshot", None));
        let png = base64_decode(&encoded);
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Resizes the browser's window (the outer window: the page gets a little less).
    pub fn set_window(&self, width: u32, height: u32) {
        let rect = json!({"width": width, "height": height});
        self.command("POST", "/window/rect", Some(&rect));
    }

    /// The URLs of every request the pages have made since the browser started, each once,
    /// in the order first seen: the page loads, their resources, fetches and web sockets.
    /// The browser's own pages and data (`chrome:`, `data:`, `blob:`, `about:`, ...) are
    /// left out: they never leave it (the first tab shows Chromium's new tab page, which
    /// loads a few hundred `chrome://` resources).
    ///
    /// They come from Chromium's performance log (the DevTools network events); where the
    /// driver cannot give that log, from the page's resource timing entries and its own
    /// address, which cover the page shown only.
    pub fn network_hosts(&self) -> Vec<String> {
        let kind = json!({"type": "performance"});
        let entries = self
            .try_command("POST", "/se/log", Some(&kind))
            .or_else(|_| self.try_command("POST", "/log", Some(&kind)));
        let urls = match entries {
            Ok(Value::Array(entries)) => entries.iter().filter_map(request_url).collect(),
            _ => self.resource_urls(),
        };
        let mut requests = self.requests.borrow_mut();
        for url in urls {
            if !inside_browser(&url) && !requests.contains(&url) {
                requests.push(url);
            }
        }
        requests.clone()
    }

    /// The page's own address and what its resource timing entries name.
    fn resource_urls(&self) -> Vec<String> {
        let found = self.script(
            "return [location.href].concat(\
             performance.getEntriesByType('resource').map(e => e.name));",
            vec![],
        );
        found
            .as_array()
            .map(|urls| {
                urls.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The cookies the page can see, as WebDriver lists them.
    pub fn cookies(&self) -> Value {
        self.command("GET", "/cookie", None)
    }

    /// Types `keys` into whatever has the focus, one key press each, through the actions
    /// API so it works on any focused element (or none). A modifier ([`key::CONTROL`],
    /// [`key::SHIFT`], ...) stays held for the keys after it until [`key::NULL`] or the end:
    /// `press_keys("\u{E009}k")` is Ctrl+K.
    pub fn press_keys(&self, keys: &str) {
        let mut actions = Vec::new();
        let mut held: Vec<char> = Vec::new();
        for c in keys.chars() {
            if c == '\u{E000}' {
                release(&mut actions, &mut held);
            } else if is_modifier(c) {
                actions.push(json!({"type": "keyDown", "value": c.to_string()}));
                held.push(c);
            } else {
                actions.push(json!({"type": "keyDown", "value": c.to_string()}));
                actions.push(json!({"type": "keyUp", "value": c.to_string()}));
            }
        }
        release(&mut actions, &mut held);
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.command("POST", "/actions", Some(&body));
        self.command("DELETE", "/actions", None);
    }
}

impl Drop for Browser {
    /// Ends the session first, which closes the browser, then stops chromedriver by its pid;
    /// a browser that outlives its session is stopped by its pid too.
    fn drop(&mut self) {
        let closed = self.session.is_empty() || self.try_command("DELETE", "", None).is_ok();
        if !closed && let Some(pid) = self.browser_pid {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An element of the page, as WebDriver refers to it.
pub struct Element<'a> {
    browser: &'a Browser,
    pub id: String,
}

impl Element<'_> {
    fn command(&self, method: &str, what: &str, body: Option<&Value>) -> Value {
        let path = format!("/element/{}{what}", self.id);
        self.browser.command(method, &path, body)
    }

    /// The reference to pass it to [`Browser::script`] as an argument.
    pub fn reference(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    /// Clicks its centre, scrolling it into view first, as a user would.
    pub fn click(&self) {
        self.command("POST", "/click", Some(&json!({})));
    }

    /// Its text as rendered: what is hidden left out.
    pub fn text(&self) -> String {
        string(self.command("GET", "/text", None))
    }

    /// As [`Element::text`], `None` when the element has left the page.
    fn try_text(&self) -> Option<String> {
        let path = format!("/element/{}/text", self.id);
        self.browser
            .try_command("GET", &path, None)
            .ok()
            .map(string)
    }

    /// Focuses it and types `keys` into it.
    pub fn send_keys(&self, keys: &str) {
        self.command("POST", "/value", Some(&json!({"text": keys})));
    }

    /// Empties an input or a text area.
    pub fn clear(&self) {
        self.command("POST", "/clear", Some(&json!({})));
    }

    /// An attribute as written in the HTML, `None` when it is absent.
    pub fn attribute(&self, name: &str) -> Option<String> {
        match self.command("GET", &format!("/attribute/{name}"), None) {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }
    }

    /// A DOM property as it is now (`checked`, `disabled`, ...).
    pub fn property(&self, name: &str) -> Value {
        self.command("GET", &format!("/property/{name}"), None)
    }

    /// What an input holds now (its `value` property, not the attribute).
    pub fn value(&self) -> String {
        match self.property("value") {
            Value::Null => String::new(),
            value => string(value),
        }
    }

    /// Whether a user could see it.
    pub fn is_displayed(&self) -> bool {
        self.command("GET", "/displayed", None)
            .as_bool()
            .expect("displayed is a boolean")
    }
}

/// The program a variable names, or its usual place; fails the test with how to install it.
fn program(var: &str, usual: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(usual), PathBuf::from);
    if path.is_file() {
        return path;
    }
    if super::tools::offline() {
        panic!(
            "this test needs {what}, which is not at {}, and MEMORYGRAPH_TEST_OFFLINE is set: \
             set {var} to it (and mark the test `#[cfg_attr(memorygraph_test_offline, ignore = ...)]`)",
            path.display()
        );
    }
    panic!(
        "this test needs {what}, which is not at {}: run `apt-get install chromium \
         chromium-driver`, or set {var} to it",
        path.display()
    );
}

/// Starts chromedriver on a free port of 127.0.0.1 and waits until it is ready for a
/// session; its address, or what went wrong.
fn spawn_driver(path: &Path, log_path: &Path) -> Result<(Child, String), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let log = File::create(log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(status) = send(&address, "GET", "/status", None)
            && status["ready"] == json!(true)
        {
            return Ok((child, address));
        }
        let output = || std::fs::read_to_string(log_path).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("chromedriver exited ({status}):\n{}", output()));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "chromedriver was not ready within {READY_TIMEOUT:?}:\n{}",
                output()
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// One WebDriver request to chromedriver; the answer's `value`, or its error.
fn send(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, WebDriverError> {
    let payload = body.map(Value::to_string);
    let (status, text) =
        exchange(address, method, path, payload.as_deref()).map_err(|e| WebDriverError {
            error: "no answer".to_string(),
            message: format!("chromedriver at {address}, {method} {path}: {e}"),
        })?;
    let parsed: Value = serde_json::from_str(&text).map_err(|e| WebDriverError {
        error: "not JSON".to_string(),
        message: format!("{status} {e}: {text}"),
    })?;
    let value = parsed.get("value").cloned().unwrap_or(Value::Null);
    match value.get("error").and_then(Value::as_str) {
        Some(error) => Err(WebDriverError {
            error: error.to_string(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        }),
        None => Ok(value),
    }
}

/// One HTTP/1.1 request on a connection of its own; the status and the body. The body is
/// read by its `Content-Length`, not to the end of the stream: chromedriver keeps the
/// connection open after its answer even when asked to close it, so [`super::http`]'s
/// client, which reads to the end, would wait out its timeout on every command.
fn exchange(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    // A page load or an asynchronous script can take a while; chromedriver's own limits
    // (five minutes for a page, 30 s for a script) end them first.
    stream.set_read_timeout(Some(Duration::from_secs(330)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(body) = body {
        head.push_str("Content-Type: application/json; charset=utf-8\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or_default());
    stream.write_all(head.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP status line: {line:?}")))?;
    let mut length = None;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut bytes = Vec::new();
    match length {
        Some(length) => {
            bytes.resize(length, 0);
            reader.read_exact(&mut bytes)?;
        }
        None => {
            reader.read_to_end(&mut bytes)?;
        }
    }
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// The URL of a performance log entry that records a request or a web socket opening.
fn request_url(entry: &Value) -> Option<String> {
    let message: Value = serde_json::from_str(entry["message"].as_str()?).ok()?;
    let event = &message["message"];
    let url = match event["method"].as_str()? {
        "Network.requestWillBeSent" => &event["params"]["request"]["url"],
        "Network.webSocketCreated" => &event["params"]["url"],
        _ => return None,
    };
    url.as_str().map(str::to_string)
}

/// Whether a URL names something the browser serves itself, with no connection made.
fn inside_browser(url: &str) -> bool {
    const SCHEMES: [&str; 8] = [
        "about:",
        "blob:",
        "chrome:",
        "chrome-error:",
        "chrome-extension:",
        "chrome-untrusted:",
        "data:",
        "devtools:",
    ];
    SCHEMES.iter().any(|scheme| url.starts_with(scheme))
}

fn is_modifier(c: char) -> bool {
    matches!(c, '\u{E008}'..='\u{E00A}' | '\u{E03D}' | '\u{E050}'..='\u{E053}')
}

/// Appends the key releases of the modifiers held, last pressed first.
fn release(actions: &mut Vec<Value>, held: &mut Vec<char>) {
    while let Some(c) = held.pop() {
        actions.push(json!({"type": "keyUp", "value": c.to_string()}));
    }
}

/// A string answer, or the test fails showing what came instead.
fn string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => panic!("expected a string from WebDriver, got: {other}"),
    }
}

/// Decodes standard base64 (screenshots come that way); line breaks and padding are
/// skipped.
fn base64_decode(text: &str) -> Vec<u8> {
    fn sextet(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", c as char),
        }
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut bits = 0u32;
    let mut count = 0;
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        bits = (bits << 6) | sextet(c);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

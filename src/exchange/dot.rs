//! The graph as Graphviz DOT: render it with `dot -Tsvg graph.dot -o graph.svg`.

use std::fmt::Write;

use super::picture::{LABEL_CHARS, Picture, type_colour};
use super::shorten;

/// A DOT digraph: one box per memory (title and type, coloured by type), one edge per
/// relationship labelled by its type; symmetric types have no arrow head.
pub fn render(picture: &Picture) -> String {
    let mut out = String::from(
        "digraph memorygraph {\n  graph [rankdir=LR, fontname=\"Helvetica\"];\n  \
         node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n  \
         edge [fontname=\"Helvetica\", fontsize=8];\n",
    );
    for m in &picture.memories {
        let label = format!("{}\n({})", shorten(&m.title, LABEL_CHARS), m.memory_type);
        let _ = writeln!(
            out,
            "  {} [label={}, fillcolor=\"{}\"];",
            quote(&m.id),
            quote(&label),
            type_colour(&m.memory_type)
        );
    }
    for r in &picture.relationships {
        let dir = if Picture::is_symmetric(r) {
            ", dir=none"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}{dir}];",
            quote(&r.from_id),
            quote(&r.to_id),
            quote(&r.rel_type)
        );
    }
    out.push_str("}\n");
    out
}

/// A DOT string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_escape_what_dot_reads_specially() {
        assert_eq!(quote("a \"b\" \\ c\nd"), "\"a \\\"b\\\" \\\\ c\\nd\"");
    }
}

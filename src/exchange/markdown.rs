//! Markdown: one file per memory, named and laid out like MemoryGraph's Markdown export
//! (front matter, summary, content, relationships), so a folder of them reads well in any
//! Markdown viewer or notes app. Relationship lines link to the other memory's file and
//! show the direction: `→` from this memory, `←` to it.

use std::collections::HashMap;
use std::fmt::Write;

use crate::backend::Everything;
use crate::model::Memory;

/// One file to write: its name (no folders) and its text.
pub struct MarkdownFile {
    pub name: String,
    pub text: String,
}

/// Longest part of a file name taken from the title, in characters (file systems limit
/// names to 255 bytes).
const NAME_CHARS: usize = 80;

/// The file name of a memory: its title with every character that is not a letter,
/// digit, `-` or `_` replaced by `_`, then the first 8 characters of its id.
pub fn file_name(m: &Memory) -> String {
    let title: String = m
        .title
        .chars()
        .take(NAME_CHARS)
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let short_id: String = m.id.chars().take(8).collect();
    format!("{title}_{short_id}.md")
}

/// Every memory as a Markdown file, with its current relationships.
pub fn render(all: &Everything) -> Vec<MarkdownFile> {
    let by_id: HashMap<&str, &Memory> = all.memories.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut links: HashMap<&str, Vec<String>> = HashMap::new();
    for r in all.relationships.iter().filter(|r| r.is_current()) {
        let (Some(from), Some(to)) = (by_id.get(r.from_id.as_str()), by_id.get(r.to_id.as_str()))
        else {
            continue;
        };
        links
            .entry(&r.from_id)
            .or_default()
            .push(link_line(&r.rel_type, "→", to));
        links
            .entry(&r.to_id)
            .or_default()
            .push(link_line(&r.rel_type, "←", from));
    }
    all.memories
        .iter()
        .map(|m| MarkdownFile {
            name: file_name(m),
            text: memory_text(m, links.get(m.id.as_str()).map(Vec::as_slice)),
        })
        .collect()
}

fn link_line(rel_type: &str, arrow: &str, other: &Memory) -> String {
    format!(
        "- **{rel_type}** {arrow} [{}]({})",
        other.title.replace(['[', ']'], ""),
        file_name(other).replace(' ', "%20")
    )
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

fn memory_text(m: &Memory, links: Option<&[String]>) -> String {
    let mut out = String::from("---\n");
    let _ = writeln!(out, "title: {}", m.title.replace('\n', " "));
    let _ = writeln!(out, "id: {}", m.id);
    let _ = writeln!(out, "type: {}", m.memory_type);
    let _ = writeln!(out, "importance: {}", m.importance);
    let _ = writeln!(out, "confidence: {}", m.confidence);
    let _ = writeln!(out, "tags: {}", list(&m.tags));
    let _ = writeln!(out, "created_at: {}", m.created_at);
    let _ = writeln!(out, "updated_at: {}", m.updated_at);
    if let Some(ctx) = &m.context {
        if let Some(project) = ctx.project_path() {
            let _ = writeln!(out, "project: {project}");
        }
        if !ctx.languages.is_empty() {
            let _ = writeln!(out, "languages: {}", list(&ctx.languages));
        }
        if !ctx.technologies.is_empty() {
            let _ = writeln!(out, "technologies: {}", list(&ctx.technologies));
        }
    }
    out.push_str("---\n\n");
    if let Some(summary) = &m.summary {
        let _ = write!(out, "## Summary\n\n{summary}\n\n");
    }
    let _ = writeln!(out, "## Content\n\n{}", m.content);
    if let Some(links) = links.filter(|l| !l.is_empty()) {
        out.push_str("\n## Relationships\n\n");
        for line in links {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

//! File formats for moving memories in and out and for looking at them: MemoryGraph's JSON
//! export (read and written), the reference memory server's JSON Lines (read), Markdown
//! (one file per memory), and Graphviz DOT and Mermaid pictures of the graph.
//!
//! Everything here is plain conversion between values and text; reading and writing the
//! database is the backend's job, and files and terminals are the command line's.

pub mod backup;
pub mod dot;
pub mod files;
pub mod json;
pub mod jsonl;
pub mod markdown;
pub mod mermaid;
pub mod picture;

use crate::backend::ImportBatch;

/// A file read for import: what to write, and what the reader already had to leave out.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    pub batch: ImportBatch,
    /// Relationships the reader left out because an end is not in the file, described.
    pub dangling: Vec<String>,
}

/// Cuts `text` to at most `max` characters, marking the cut with an ellipsis.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

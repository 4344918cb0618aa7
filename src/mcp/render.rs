//! Turning results into tool answers: a compact text for the model, the same facts as
//! `structuredContent`, and a size budget no answer may exceed.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;

use super::output::MemoryBrief;
use crate::backend::BackendError;
use crate::model::Relationship;

/// A successful answer: `text` for the model, `data` as structured content.
pub fn reply<T: Serialize>(text: String, data: &T) -> ToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content =
        Some(serde_json::to_value(data).expect("tool outputs are plain data"));
    Ok(result)
}

/// What a tool returns: an answer, or the text of a tool error (`isError: true`) the
/// model can read and act on.
pub type ToolResult = Result<CallToolResult, String>;

/// A backend error as a tool error's text; problems on our side are logged as well.
pub fn backend_failure(e: BackendError) -> String {
    if e.is_caller_error() {
        e.to_string()
    } else {
        tracing::error!("tool failed: {e}");
        format!("Internal error: {e}")
    }
}

/// Keeps the longest prefix of `items` whose text lines and JSON together fit `budget`
/// characters; returns how many were kept.
pub fn fit<T: Serialize>(items: &[T], line: impl Fn(&T) -> String, budget: usize) -> usize {
    let mut used = 0;
    for (i, item) in items.iter().enumerate() {
        let json = serde_json::to_string(item).map(|s| s.len()).unwrap_or(0);
        used += json + line(item).len() + 2;
        if used > budget {
            return i;
        }
    }
    items.len()
}

/// [`fit`] for a page: at least one item, so that following `next_offset` always moves on
/// (an item too large for the answer is cut to fit by [`super::limit`]).
pub fn fit_page<T: Serialize>(items: &[T], line: impl Fn(&T) -> String, budget: usize) -> usize {
    fit(items, line, budget).max(items.len().min(1))
}

/// Room left for list items once the fixed parts of an answer are written: all but 1,000
/// characters, and half at the smallest limits.
pub fn list_budget(max_chars: usize) -> usize {
    max_chars.saturating_sub(1_000).max(max_chars / 2)
}

/// One line describing a memory in a list.
pub fn brief_line(m: &MemoryBrief) -> String {
    let tags = if m.tags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", m.tags.join(", "))
    };
    format!(
        "{} ({}, importance {}) id={}{}",
        m.title, m.memory_type, m.importance, m.id, tags
    )
}

/// One line describing a relationship as seen from `from` (`→` outgoing, `←` incoming).
pub fn relationship_line(r: &Relationship, from: &str) -> String {
    let (arrow, other) = if r.from_id == from {
        ("→", &r.to_id)
    } else {
        ("←", &r.from_id)
    };
    let context = r
        .context
        .as_ref()
        .map(|c| format!(" — {}", c.text))
        .unwrap_or_default();
    format!(
        "{} {arrow} {other} (strength {}, confidence {}){context}",
        r.rel_type, r.strength, r.confidence
    )
}

/// The note shown when a page was cut to fit.
pub fn cut_note(shown: usize, offset: u32, total: &dyn std::fmt::Display) -> String {
    format!(
        "Showing {shown} of {total} results to stay within the answer size limit; call again with offset={} for the next ones.",
        u64::from(offset) + shown as u64
    )
}

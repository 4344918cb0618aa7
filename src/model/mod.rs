//! The vocabulary shared by the backend and the tools: what a memory and a relationship are,
//! which values they may hold, and the limits every writer must respect.

mod context;
mod context_text;
mod memory;
pub mod project;
mod relationship;
mod secrets;
mod text;
pub mod time_words;

pub use context::{CONTEXT_FIELDS, MemoryContext};
pub use memory::{Memory, MemoryPatch, MemoryType, NewMemory, normalise_tags};
pub use relationship::{NewRelationship, Relationship, RelationshipContext, RelationshipType};
pub use secrets::{SecretFinding, find_secret, refuse_secrets};
pub use text::{clip_quoted, quote, shorten};

/// Limits a memory must respect; checked before anything is written.
pub mod limits {
    /// Longest title, in characters.
    pub const TITLE_MAX_CHARS: usize = 200;
    /// Longest summary, in characters.
    pub const SUMMARY_MAX_CHARS: usize = 500;
    /// Longest content, in characters.
    pub const CONTENT_MAX_CHARS: usize = 50_000;
    /// Most tags on one memory.
    pub const TAGS_MAX: usize = 50;
    /// Longest tag, in characters.
    pub const TAG_MAX_CHARS: usize = 100;
    /// Longest free-text relationship context, in characters.
    pub const RELATIONSHIP_CONTEXT_MAX_CHARS: usize = 2_000;
    /// Deepest graph traversal a caller may ask for.
    pub const MAX_DEPTH: u32 = 5;
    /// Longest string field of a memory's `context` (`project_path`, `git_branch`, ...).
    pub const CONTEXT_FIELD_MAX_CHARS: usize = 1_000;
    /// Most items in a list field of a memory's `context` (`files_involved`, ...).
    pub const CONTEXT_LIST_MAX_ITEMS: usize = 100;
    /// Deepest nesting of objects and arrays inside a memory's `context`.
    pub const CONTEXT_MAX_DEPTH: usize = 8;
    /// Largest `context` of a memory, in characters of its JSON.
    pub const CONTEXT_MAX_CHARS: usize = 4_000;
    /// Longest search query, in characters: room for a pasted error message or stack
    /// trace (only its first 32 distinct words are searched).
    pub const QUERY_MAX_CHARS: usize = 20_000;
    /// Most items in a list a search takes (`terms`, `tags`, `memory_types`, ...).
    pub const QUERY_LIST_MAX_ITEMS: usize = 50;
    /// Longest item of such a list, or short filter value (`project_path`, a date), in
    /// characters.
    pub const QUERY_ITEM_MAX_CHARS: usize = 200;
    /// Longest memory id accepted anywhere (ours are 36 characters).
    pub const ID_MAX_CHARS: usize = 200;
}

/// A caller's value broke a rule; names the field and the rule so the caller can fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Invalid `{field}`: {rule}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub rule: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field,
            rule: rule.into(),
        }
    }
}

/// Checks that a score (importance, strength, confidence) is a finite number in 0..=1.
pub fn check_unit_interval(field: &'static str, value: f64) -> Result<f64, InvalidInput> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(InvalidInput::new(
            field,
            format!("must be a number from 0.0 to 1.0, got {value}"),
        ))
    }
}

/// The current time in the format MemoryGraph writes inside `properties`:
/// ISO 8601, UTC, microseconds, `+00:00`.
pub fn now_iso() -> String {
    iso_from(chrono::Utc::now())
}

/// Formats an instant the way MemoryGraph does inside `properties`.
pub fn iso_from(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// Turns the `properties` timestamp into SQLite's `CURRENT_TIMESTAMP` form used by the
/// `created_at`/`updated_at` columns (`YYYY-MM-DD HH:MM:SS`).
pub fn column_timestamp(iso: &str) -> String {
    let head: String = iso.chars().take(19).collect();
    head.replacen('T', " ", 1)
}

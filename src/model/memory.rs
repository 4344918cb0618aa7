//! A memory: one fact worth keeping (a fix, an error, a decision, ...), and its validation.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::secrets::refuse_secrets;
use super::{InvalidInput, MemoryContext, check_unit_interval, limits};

/// The thirteen kinds of memory MemoryGraph knows; stored as their snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemoryType {
    Task,
    CodePattern,
    Problem,
    Solution,
    Project,
    Technology,
    Error,
    Fix,
    Command,
    FileContext,
    Workflow,
    General,
    Conversation,
}

impl MemoryType {
    pub const ALL: [MemoryType; 13] = [
        MemoryType::Task,
        MemoryType::CodePattern,
        MemoryType::Problem,
        MemoryType::Solution,
        MemoryType::Project,
        MemoryType::Technology,
        MemoryType::Error,
        MemoryType::Fix,
        MemoryType::Command,
        MemoryType::FileContext,
        MemoryType::Workflow,
        MemoryType::General,
        MemoryType::Conversation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemoryType::Task => "task",
            MemoryType::CodePattern => "code_pattern",
            MemoryType::Problem => "problem",
            MemoryType::Solution => "solution",
            MemoryType::Project => "project",
            MemoryType::Technology => "technology",
            MemoryType::Error => "error",
            MemoryType::Fix => "fix",
            MemoryType::Command => "command",
            MemoryType::FileContext => "file_context",
            MemoryType::Workflow => "workflow",
            MemoryType::General => "general",
            MemoryType::Conversation => "conversation",
        }
    }
}

impl fmt::Display for MemoryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MemoryType {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        MemoryType::ALL
            .into_iter()
            .find(|t| t.as_str() == wanted)
            .ok_or_else(|| {
                InvalidInput::new(
                    "type",
                    format!(
                        "unknown memory type {}; allowed: {}",
                        super::quote(s),
                        MemoryType::ALL.map(|t| t.as_str()).join(", ")
                    ),
                )
            })
    }
}

/// A memory as read back from the database, normalised the way MemoryGraph's reader does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Memory {
    pub id: String,
    /// The memory type; a row with a type outside the enum keeps its raw name.
    #[serde(rename = "type")]
    pub memory_type: String,
    pub title: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub tags: Vec<String>,
    pub importance: f64,
    pub confidence: f64,
    pub usage_count: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_accessed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effectiveness: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<MemoryContext>,
}

impl Memory {
    /// The project a memory belongs to, if its context names one.
    pub fn project_path(&self) -> Option<&str> {
        self.context.as_ref().and_then(|c| c.project_path())
    }
}

/// A validated memory about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMemory {
    pub memory_type: MemoryType,
    pub title: String,
    pub content: String,
    pub summary: Option<String>,
    pub tags: Vec<String>,
    pub importance: f64,
    pub confidence: f64,
    pub context: Option<MemoryContext>,
}

/// The default importance of a memory stored without one (MemoryGraph's value).
pub const DEFAULT_IMPORTANCE: f64 = 0.5;
/// The confidence MemoryGraph gives every memory stored through its tools.
pub const DEFAULT_CONFIDENCE: f64 = 0.8;

impl NewMemory {
    /// Validates and normalises a caller's input: trims title and content, lower-cases and
    /// trims tags (dropping blanks), turns an empty summary into none, checks every limit.
    pub fn validate(
        memory_type: &str,
        title: &str,
        content: &str,
        summary: Option<&str>,
        tags: Option<&[String]>,
        importance: Option<f64>,
        context: Option<MemoryContext>,
    ) -> Result<Self, InvalidInput> {
        Ok(NewMemory {
            memory_type: memory_type.parse()?,
            title: check_title(title)?,
            content: check_content(content)?,
            summary: check_summary(summary)?,
            tags: normalise_tags(tags.unwrap_or_default())?,
            importance: check_unit_interval(
                "importance",
                importance.unwrap_or(DEFAULT_IMPORTANCE),
            )?,
            confidence: DEFAULT_CONFIDENCE,
            context,
        })
    }

    /// Refuses a memory whose text holds a likely secret (see `secrets`).
    pub fn refuse_secrets(&self) -> Result<(), InvalidInput> {
        refuse_secrets(
            [
                ("title", self.title.as_str()),
                ("content", self.content.as_str()),
                ("summary", self.summary.as_deref().unwrap_or_default()),
            ]
            .into_iter()
            .chain(self.tags.iter().map(|t| ("tags", t.as_str())))
            .chain(
                self.context
                    .iter()
                    .flat_map(|c| c.texts())
                    .map(|t| ("context", t)),
            ),
        )
    }
}

/// The fields an update may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryPatch {
    pub title: Option<String>,
    pub content: Option<String>,
    /// `Some(None)` clears the summary.
    pub summary: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub importance: Option<f64>,
}

impl MemoryPatch {
    /// Validates an update with the same rules as a store.
    pub fn validate(
        title: Option<&str>,
        content: Option<&str>,
        summary: Option<&str>,
        tags: Option<&[String]>,
        importance: Option<f64>,
    ) -> Result<Self, InvalidInput> {
        Ok(MemoryPatch {
            title: title.map(check_title).transpose()?,
            content: content.map(check_content).transpose()?,
            summary: summary.map(|s| check_summary(Some(s))).transpose()?,
            tags: tags.map(normalise_tags).transpose()?,
            importance: importance
                .map(|v| check_unit_interval("importance", v))
                .transpose()?,
        })
    }

    /// Refuses an update whose new text holds a likely secret (see `secrets`).
    pub fn refuse_secrets(&self) -> Result<(), InvalidInput> {
        refuse_secrets(
            [
                ("title", self.title.as_deref()),
                ("content", self.content.as_deref()),
                ("summary", self.summary.as_ref().and_then(|s| s.as_deref())),
            ]
            .into_iter()
            .filter_map(|(field, text)| text.map(|t| (field, t)))
            .chain(self.tags.iter().flatten().map(|t| ("tags", t.as_str()))),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.content.is_none()
            && self.summary.is_none()
            && self.tags.is_none()
            && self.importance.is_none()
    }
}

fn check_title(title: &str) -> Result<String, InvalidInput> {
    let title = title.trim();
    let chars = title.chars().count();
    if chars == 0 {
        return Err(InvalidInput::new("title", "must not be empty"));
    }
    if chars > limits::TITLE_MAX_CHARS {
        return Err(InvalidInput::new(
            "title",
            format!(
                "must be at most {} characters, got {chars}",
                limits::TITLE_MAX_CHARS
            ),
        ));
    }
    Ok(title.to_string())
}

fn check_content(content: &str) -> Result<String, InvalidInput> {
    let content = content.trim();
    let chars = content.chars().count();
    if chars == 0 {
        return Err(InvalidInput::new("content", "must not be empty"));
    }
    if chars > limits::CONTENT_MAX_CHARS {
        return Err(InvalidInput::new(
            "content",
            format!(
                "must be at most {} characters, got {chars}",
                limits::CONTENT_MAX_CHARS
            ),
        ));
    }
    Ok(content.to_string())
}

fn check_summary(summary: Option<&str>) -> Result<Option<String>, InvalidInput> {
    let Some(summary) = summary.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let chars = summary.chars().count();
    if chars > limits::SUMMARY_MAX_CHARS {
        return Err(InvalidInput::new(
            "summary",
            format!(
                "must be at most {} characters, got {chars}",
                limits::SUMMARY_MAX_CHARS
            ),
        ));
    }
    Ok(Some(summary.to_string()))
}

/// Lower-cases and trims tags and drops blank ones, keeping order and repeats as MemoryGraph did.
pub fn normalise_tags(tags: &[String]) -> Result<Vec<String>, InvalidInput> {
    let tags: Vec<String> = tags
        .iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if tags.len() > limits::TAGS_MAX {
        return Err(InvalidInput::new(
            "tags",
            format!("at most {} tags, got {}", limits::TAGS_MAX, tags.len()),
        ));
    }
    if let Some(long) = tags
        .iter()
        .find(|t| t.chars().count() > limits::TAG_MAX_CHARS)
    {
        return Err(InvalidInput::new(
            "tags",
            format!(
                "each tag must be at most {} characters; {:?}… is longer",
                limits::TAG_MAX_CHARS,
                long.chars().take(20).collect::<String>()
            ),
        ));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_normalises_like_memorygraph() {
        let tags = vec![" Redis ".to_string(), "redis".into(), "  ".into()];
        let m = NewMemory::validate("fix", "  Title ", "body", Some(""), Some(&tags), None, None)
            .unwrap();
        assert_eq!(m.title, "Title");
        assert_eq!(m.tags, vec!["redis", "redis"]);
        assert_eq!(m.summary, None);
        assert_eq!(m.importance, 0.5);
    }

    #[test]
    fn rejects_bad_values_naming_the_field() {
        let err = NewMemory::validate("fixx", "t", "c", None, None, None, None).unwrap_err();
        assert_eq!(err.field, "type");
        let err = NewMemory::validate("fix", " ", "c", None, None, None, None).unwrap_err();
        assert_eq!(err.field, "title");
        let err = NewMemory::validate("fix", "t", "c", None, None, Some(1.5), None).unwrap_err();
        assert_eq!(err.field, "importance");
        let long = "x".repeat(201);
        let err = NewMemory::validate("fix", &long, "c", None, None, None, None).unwrap_err();
        assert!(err.rule.contains("200"));
    }
}

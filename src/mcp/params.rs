//! The tools' input shapes, with MemoryGraph's parameter names (see TOOLS-COMPAT.md).
//! Unknown arguments are refused so a misspelt one does not silently do nothing.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::backend::{MatchMode, Tolerance};
use crate::model::{MemoryType, RelationshipType};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreMemoryParams {
    /// What kind of memory this is.
    #[serde(rename = "type")]
    #[schemars(with = "MemoryType")]
    pub memory_type: String,
    /// A short, specific title (1–200 characters).
    pub title: String,
    /// The full text worth remembering (up to 50,000 characters).
    pub content: String,
    /// One or two sentences (up to 500 characters).
    pub summary: Option<String>,
    /// Keywords; stored lower-cased and trimmed.
    pub tags: Option<Vec<String>>,
    /// 0.0–1.0, default 0.5; higher ranks first.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub importance: Option<f64>,
    /// The id of a memory this one replaces: a REPLACES link is made and the old memory
    /// ranks below current ones from then on.
    pub supersedes: Option<String>,
    /// Where it came from: project_path, files_involved, languages, frameworks,
    /// technologies, git_commit, git_branch, working_directory, timestamp, session_id,
    /// user_id, additional_metadata, tenant_id, team_id, visibility, created_by.
    pub context: Option<Map<String, Value>>,
    /// Store text that looks like a secret (a private key, an access key, a token) anyway.
    /// Without it such a memory is refused: memories are plain text, shown to models and
    /// synced to every machine.
    pub allow_secrets: Option<bool>,
    /// The project (its root folder's path) this memory belongs to. Default: the session's
    /// project (the client's first root, else the repository of the server's working
    /// directory); "" stores it for every project. Same as `context.project_path`.
    pub project: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetMemoryParams {
    pub memory_id: String,
    /// Also list the memory's relationships (default true).
    pub include_relationships: Option<bool>,
    /// For a long content: the character to start from (default 0).
    #[schemars(range(min = 0))]
    pub content_offset: Option<i64>,
    /// For a memory with many relationships: the first one to list (default 0).
    #[schemars(range(min = 0))]
    pub relationships_offset: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemoryParams {
    pub memory_id: String,
    pub title: Option<String>,
    pub content: Option<String>,
    /// An empty string removes the summary.
    pub summary: Option<String>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    #[schemars(range(min = 0.0, max = 1.0))]
    pub importance: Option<f64>,
    /// Accept new text that looks like a secret, as in store_memory.
    pub allow_secrets: Option<bool>,
}

/// For the tools that take no parameters: an unknown one is refused by name like anywhere
/// else, so a caller's mistake is never silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl JsonSchema for NoParams {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NoParams".into()
    }

    /// `properties` is spelled out (empty): some clients expect it on every tool.
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "properties": {},
            "additionalProperties": false
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMemoryParams {
    pub memory_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchMemoriesParams {
    /// Words to look for; "quoted phrases" are matched as phrases.
    pub query: Option<String>,
    /// Words to look for, one per item; used instead of `query` when given.
    pub terms: Option<Vec<String>>,
    pub memory_types: Option<Vec<MemoryType>>,
    /// Only memories with at least one of these tags.
    pub tags: Option<Vec<String>>,
    /// Only memories whose context names this project path.
    pub project_path: Option<String>,
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_importance: Option<f64>,
    /// 1–1000, default 50.
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<i64>,
    /// How many results to skip, for the next page.
    #[schemars(range(min = 0))]
    pub offset: Option<i64>,
    /// strict: whole words; normal (default): stemmed words; fuzzy: also prefixes.
    pub search_tolerance: Option<ToleranceParam>,
    /// lexical: by words; semantic: by meaning (nearest vectors); hybrid: both, fused.
    /// Default: hybrid when semantic recall is on (see health), lexical otherwise.
    pub mode: Option<crate::backend::SearchMode>,
    /// any: a memory matching any word is a hit; all: every word must match. Default:
    /// memories matching every word first, then those matching some.
    pub match_mode: Option<MatchModeParam>,
    /// Only memories that have relationships of these types.
    pub relationship_filter: Option<Vec<String>>,
    /// With `tags`: any (default) or all of them.
    pub tag_match: Option<MatchModeParam>,
    /// Only memories created at or after this ISO 8601 date or date-time.
    pub created_after: Option<String>,
    /// Only memories created before this ISO 8601 date or date-time.
    pub created_before: Option<String>,
    /// Answer as of this ISO 8601 date-time (a date: the end of that day, UTC): memories
    /// created by then, ranked and marked with the versions current then.
    pub as_of: Option<String>,
    /// project: only the session's project's memories and the shared ones; all: every
    /// memory alike. Default: every memory, the session's project's first.
    pub scope: Option<ProjectScopeParam>,
}

/// Which memories a search sees with respect to the session's project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProjectScopeParam {
    Project,
    All,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToleranceParam {
    Strict,
    Normal,
    Fuzzy,
}

impl From<ToleranceParam> for Tolerance {
    fn from(t: ToleranceParam) -> Self {
        match t {
            ToleranceParam::Strict => Tolerance::Strict,
            ToleranceParam::Normal => Tolerance::Normal,
            ToleranceParam::Fuzzy => Tolerance::Fuzzy,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchModeParam {
    Any,
    All,
}

impl From<MatchModeParam> for MatchMode {
    fn from(m: MatchModeParam) -> Self {
        match m {
            MatchModeParam::Any => MatchMode::Any,
            MatchModeParam::All => MatchMode::All,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallMemoriesParams {
    /// A natural-language description of what you are looking for.
    pub query: Option<String>,
    pub memory_types: Option<Vec<MemoryType>>,
    pub project_path: Option<String>,
    /// 1–1000, default 20.
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<i64>,
    #[schemars(range(min = 0))]
    pub offset: Option<i64>,
    /// Answer as of this ISO 8601 date-time (a date: the end of that day, UTC): memories
    /// created by then, ranked and marked with the versions current then.
    pub as_of: Option<String>,
    /// project: only the session's project's memories and the shared ones; all: every
    /// memory alike. Default: every memory, the session's project's first.
    pub scope: Option<ProjectScopeParam>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelationshipParams {
    pub from_memory_id: String,
    pub to_memory_id: String,
    #[schemars(with = "RelationshipType")]
    pub relationship_type: String,
    /// 0.0–1.0; default depends on the type.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub strength: Option<f64>,
    /// 0.0–1.0; default depends on the type.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: Option<f64>,
    /// Free text: when and how the link holds ("fixes it only when the cache is cold"); up
    /// to 2,000 characters.
    pub context: Option<String>,
    /// Accept a context that looks like a secret, as in store_memory.
    pub allow_secrets: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRelatedMemoriesParams {
    pub memory_id: String,
    /// Follow only these relationship types.
    #[schemars(with = "Option<Vec<RelationshipType>>")]
    pub relationship_types: Option<Vec<String>>,
    /// Hops to follow, 1–5, default 2.
    #[schemars(range(min = 1, max = 5))]
    pub max_depth: Option<i64>,
    /// 1–1000, default 50.
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<i64>,
    /// How many related memories to skip, for the next page.
    #[schemars(range(min = 0))]
    pub offset: Option<i64>,
    /// Walk the relationships as they were at this ISO 8601 date-time (a date: the end of
    /// that day, UTC): links valid then, including ones ended since.
    pub as_of: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRecentActivityParams {
    /// Days to look back, 1–365, default 7.
    #[schemars(range(min = 1, max = 365))]
    pub days: Option<i64>,
    /// Only this project path.
    pub project: Option<String>,
    /// How many of the newest memories (and of the unresolved problems) to skip, for the
    /// next page.
    #[schemars(range(min = 0))]
    pub offset: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRelationshipsByContextParams {
    pub scope: Option<ScopeParam>,
    /// Every word of these items occurs in the link's conditions.
    pub conditions: Option<Vec<String>>,
    pub has_evidence: Option<bool>,
    /// Every word of these items occurs in the link's evidence.
    pub evidence: Option<Vec<String>>,
    /// Every word of these items occurs in the link's components.
    pub components: Option<Vec<String>>,
    /// Every word occurs in the link's time clause ("v2.1" for "since v2.1").
    pub temporal: Option<String>,
    /// Every word occurs in the link's whole context text (for an imported relation, its
    /// original name, e.g. "worksAt").
    pub text: Option<String>,
    /// 1–100, default 20.
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<i64>,
    /// How many relationships to skip, for the next page.
    #[schemars(range(min = 0))]
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScopeParam {
    Partial,
    Full,
    Conditional,
}

impl ScopeParam {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeParam::Partial => "partial",
            ScopeParam::Full => "full",
            ScopeParam::Conditional => "conditional",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextualSearchParams {
    /// The memory whose neighbourhood is searched.
    pub memory_id: String,
    pub query: String,
    /// Hops around the memory, 1–5, default 2.
    #[schemars(range(min = 1, max = 5))]
    pub max_depth: Option<i64>,
    /// 1–1000, default 50.
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<i64>,
    /// How many results to skip, for the next page.
    #[schemars(range(min = 0))]
    pub offset: Option<i64>,
}

/// Checks a caller's text against its length limit, naming the field.
pub fn short_text(field: &'static str, value: &str, max: usize) -> Result<(), String> {
    let chars = value.chars().count();
    if chars > max {
        return Err(format!(
            "Invalid `{field}`: must be at most {max} characters, got {chars}"
        ));
    }
    Ok(())
}

/// Refuses a list longer than `max_items`, naming the field.
pub fn few_items<T>(
    field: &'static str,
    items: Option<&[T]>,
    max_items: usize,
) -> Result<(), String> {
    let count = items.map_or(0, <[T]>::len);
    if count > max_items {
        return Err(format!(
            "Invalid `{field}`: at most {max_items} items, got {count}"
        ));
    }
    Ok(())
}

/// Checks an optional list: how many items, and how long each may be.
pub fn short_list(
    field: &'static str,
    items: Option<&[String]>,
    max_items: usize,
    max_chars: usize,
) -> Result<(), String> {
    few_items(field, items, max_items)?;
    let items = items.unwrap_or_default();
    for item in items {
        let chars = item.chars().count();
        if chars > max_chars {
            return Err(format!(
                "Invalid `{field}`: each item must be at most {max_chars} characters, got one of {chars}"
            ));
        }
    }
    Ok(())
}

/// Checks a memory id's length (a longer one cannot exist).
pub fn memory_id(field: &'static str, id: &str) -> Result<(), String> {
    short_text(field, id, crate::model::limits::ID_MAX_CHARS)
}

/// Checks an optional whole number against its bounds, naming the field.
pub fn bounded(
    field: &'static str,
    value: Option<i64>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<u32, String> {
    match value {
        None => Ok(default as u32),
        Some(v) if (min..=max).contains(&v) => Ok(v as u32),
        Some(v) => Err(format!(
            "Invalid `{field}`: must be from {min} to {max}, got {v}"
        )),
    }
}

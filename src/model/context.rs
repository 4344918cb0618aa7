//! Where a memory came from: project, files, languages, git state, who and when.
//!
//! MemoryGraph stores this flattened into `context_<field>` keys of a memory's properties;
//! the backend's codec does that. Here the context is validated and held in one shape.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::InvalidInput;

/// MemoryGraph's context fields, in the order it writes them.
pub const CONTEXT_FIELDS: [&str; 16] = [
    "project_path",
    "files_involved",
    "languages",
    "frameworks",
    "technologies",
    "git_commit",
    "git_branch",
    "working_directory",
    "timestamp",
    "session_id",
    "user_id",
    "additional_metadata",
    "tenant_id",
    "team_id",
    "visibility",
    "created_by",
];

const LIST_FIELDS: [&str; 4] = ["files_involved", "languages", "frameworks", "technologies"];
const VISIBILITIES: [&str; 4] = ["private", "project", "team", "public"];

/// A memory's context, fields in MemoryGraph's order; absent strings are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_path: Option<String>,
    #[serde(default)]
    pub files_involved: Vec<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub frameworks: Vec<String>,
    #[serde(default)]
    pub technologies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default)]
    pub additional_metadata: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl MemoryContext {
    pub fn project_path(&self) -> Option<&str> {
        self.project_path.as_deref()
    }

    /// Validates a caller's `context` object. Known fields must have the right JSON type;
    /// keys MemoryGraph does not know are kept inside `additional_metadata` rather than
    /// dropped, so nothing the caller sent is lost. `timestamp` defaults to `now` and
    /// `visibility` to `project`, as in MemoryGraph.
    pub fn from_input(input: &Map<String, Value>, now: &str) -> Result<Self, InvalidInput> {
        let mut ctx = MemoryContext::default();
        let mut extra = Map::new();
        for (key, value) in input {
            if value.is_null() {
                continue;
            }
            match key.as_str() {
                k if LIST_FIELDS.contains(&k) => {
                    let list = string_list(k, value)?;
                    match k {
                        "files_involved" => ctx.files_involved = list,
                        "languages" => ctx.languages = list,
                        "frameworks" => ctx.frameworks = list,
                        _ => ctx.technologies = list,
                    }
                }
                "additional_metadata" => match value {
                    Value::Object(map) => extra.extend(map.clone()),
                    _ => {
                        return Err(InvalidInput::new(
                            "context",
                            "`additional_metadata` must be an object",
                        ));
                    }
                },
                "visibility" => {
                    let v = string_field(key, value)?;
                    if !VISIBILITIES.contains(&v.as_str()) {
                        return Err(InvalidInput::new(
                            "context",
                            format!(
                                "`visibility` must be one of {}, got {v:?}",
                                VISIBILITIES.join(", ")
                            ),
                        ));
                    }
                    ctx.visibility = Some(v);
                }
                "timestamp" => {
                    let v = string_field(key, value)?;
                    ctx.timestamp = Some(normalise_timestamp(&v)?);
                }
                "project_path" => ctx.project_path = Some(string_field(key, value)?),
                "git_commit" => ctx.git_commit = Some(string_field(key, value)?),
                "git_branch" => ctx.git_branch = Some(string_field(key, value)?),
                "working_directory" => ctx.working_directory = Some(string_field(key, value)?),
                "session_id" => ctx.session_id = Some(string_field(key, value)?),
                "user_id" => ctx.user_id = Some(string_field(key, value)?),
                "tenant_id" => ctx.tenant_id = Some(string_field(key, value)?),
                "team_id" => ctx.team_id = Some(string_field(key, value)?),
                "created_by" => ctx.created_by = Some(string_field(key, value)?),
                _ => {
                    extra.insert(key.clone(), value.clone());
                }
            }
        }
        ctx.additional_metadata = extra;
        ctx.timestamp.get_or_insert_with(|| now.to_string());
        ctx.visibility.get_or_insert_with(|| "project".to_string());
        Ok(ctx)
    }
}

fn string_field(key: &str, value: &Value) -> Result<String, InvalidInput> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(InvalidInput::new(
            "context",
            format!("`{key}` must be a string, got {}", json_kind(other)),
        )),
    }
}

fn string_list(key: &str, value: &Value) -> Result<Vec<String>, InvalidInput> {
    let bad = || InvalidInput::new("context", format!("`{key}` must be a list of strings"));
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

/// Accepts an ISO 8601 instant and writes it as MemoryGraph does (`Z` becomes `+00:00`).
fn normalise_timestamp(raw: &str) -> Result<String, InvalidInput> {
    let parsed = chrono::DateTime::parse_from_rfc3339(raw.trim()).map_err(|_| {
        InvalidInput::new(
            "context",
            format!("`timestamp` must be an ISO 8601 date-time, got {raw:?}"),
        )
    })?;
    let utc = parsed.with_timezone(&chrono::Utc);
    Ok(super::iso_from(utc))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_unknown_keys() {
        let input =
            json!({"project_path": "/p", "mood": "good", "timestamp": "2026-01-02T03:04:05Z"});
        let ctx = MemoryContext::from_input(input.as_object().unwrap(), "NOW").unwrap();
        assert_eq!(ctx.project_path(), Some("/p"));
        assert_eq!(ctx.visibility.as_deref(), Some("project"));
        assert_eq!(
            ctx.timestamp.as_deref(),
            Some("2026-01-02T03:04:05.000000+00:00")
        );
        assert_eq!(ctx.additional_metadata["mood"], "good");
    }

    #[test]
    fn wrong_types_are_refused() {
        let input = json!({"languages": "rust"});
        let err = MemoryContext::from_input(input.as_object().unwrap(), "NOW").unwrap_err();
        assert!(err.rule.contains("languages"));
        let input = json!({"visibility": "everyone"});
        assert!(MemoryContext::from_input(input.as_object().unwrap(), "NOW").is_err());
    }
}

//! Where a memory came from: project, files, languages, git state, who and when.
//!
//! MemoryGraph stores this flattened into `context_<field>` keys of a memory's properties;
//! the backend's codec does that. Here the context is validated and held in one shape.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{InvalidInput, limits, quote};

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
        check_size(input)?;
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
                                "`visibility` must be one of {}, got {}",
                                VISIBILITIES.join(", "),
                                super::quote(&v)
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

/// The limits on a whole context: its JSON size, its nesting, and each known string field.
fn check_size(input: &Map<String, Value>) -> Result<(), InvalidInput> {
    let depth = input.values().map(depth_of).max().unwrap_or(0);
    if depth > limits::CONTEXT_MAX_DEPTH {
        return Err(InvalidInput::new(
            "context",
            format!(
                "objects and lists may nest at most {} levels deep, got {depth}",
                limits::CONTEXT_MAX_DEPTH
            ),
        ));
    }
    for (key, value) in input {
        if key.chars().count() > limits::QUERY_ITEM_MAX_CHARS {
            return Err(InvalidInput::new(
                "context",
                format!(
                    "a key must be at most {} characters, got {}",
                    limits::QUERY_ITEM_MAX_CHARS,
                    quote(key)
                ),
            ));
        }
        if let Value::String(s) = value {
            let chars = s.chars().count();
            if chars > limits::CONTEXT_FIELD_MAX_CHARS {
                return Err(InvalidInput::new(
                    "context",
                    format!(
                        "`{}` must be at most {} characters, got {chars}",
                        super::shorten(key),
                        limits::CONTEXT_FIELD_MAX_CHARS
                    ),
                ));
            }
        }
        if let Value::Array(items) = value
            && items.len() > limits::CONTEXT_LIST_MAX_ITEMS
        {
            return Err(InvalidInput::new(
                "context",
                format!(
                    "`{}` may hold at most {} items, got {}",
                    super::shorten(key),
                    limits::CONTEXT_LIST_MAX_ITEMS,
                    items.len()
                ),
            ));
        }
    }
    let chars = serde_json::to_string(input)
        .map(|s| s.chars().count())
        .unwrap_or(usize::MAX);
    if chars > limits::CONTEXT_MAX_CHARS {
        return Err(InvalidInput::new(
            "context",
            format!(
                "must be at most {} characters as JSON, got {chars}",
                limits::CONTEXT_MAX_CHARS
            ),
        ));
    }
    Ok(())
}

/// How deep objects and arrays nest in a value (a string or number is 0).
fn depth_of(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

impl MemoryContext {
    /// Every string of the context (keys of `additional_metadata` included), for the
    /// secret check.
    pub fn texts(&self) -> Vec<&str> {
        fn collect<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::String(s) => out.push(s),
                Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
                Value::Object(map) => {
                    for (k, v) in map {
                        out.push(k);
                        collect(v, out);
                    }
                }
                _ => {}
            }
        }
        let mut out: Vec<&str> = [
            &self.project_path,
            &self.git_commit,
            &self.git_branch,
            &self.working_directory,
            &self.session_id,
            &self.user_id,
            &self.tenant_id,
            &self.team_id,
            &self.created_by,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
        for list in [
            &self.files_involved,
            &self.languages,
            &self.frameworks,
            &self.technologies,
        ] {
            out.extend(list.iter().map(String::as_str));
        }
        for (k, v) in &self.additional_metadata {
            out.push(k);
            collect(v, &mut out);
        }
        out
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
            format!(
                "`timestamp` must be an ISO 8601 date-time, got {}",
                super::quote(raw)
            ),
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

//! The `properties` JSON of MemoryGraph's `nodes` and `relationships` rows: how our values
//! are written into it and read back out of it. The layout is MemoryGraph's, described in
//! docs/architecture.md; tests/fixtures/ holds a file MemoryGraph 0.12.4 wrote.

use serde_json::{Map, Value};

use super::pyjson;
use crate::model::{
    CONTEXT_FIELDS, Memory, MemoryContext, MemoryPatch, NewMemory, NewRelationship, Relationship,
    RelationshipContext,
};

const LIST_FIELDS: [&str; 4] = ["files_involved", "languages", "frameworks", "technologies"];

/// Builds a new memory's properties in MemoryGraph's key order.
pub fn encode_new_memory(id: &str, m: &NewMemory, now: &str) -> String {
    encode_memory(id, m, &MemoryTimes::new(now))
}

/// What a memory carries besides its content: when it was made and changed, and how it
/// was used. New memories get "now" and no use; imported ones keep what the file says.
pub struct MemoryTimes<'a> {
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub usage_count: i64,
    pub last_accessed: Option<&'a str>,
    pub effectiveness: Option<f64>,
}

impl<'a> MemoryTimes<'a> {
    pub fn new(now: &'a str) -> Self {
        MemoryTimes {
            created_at: now,
            updated_at: now,
            usage_count: 0,
            last_accessed: None,
            effectiveness: None,
        }
    }
}

/// Builds a memory's properties in MemoryGraph's key order, with the given times.
pub fn encode_memory(id: &str, m: &NewMemory, times: &MemoryTimes) -> String {
    let mut p = Map::new();
    p.insert("id".into(), id.into());
    p.insert("type".into(), m.memory_type.as_str().into());
    p.insert("title".into(), m.title.clone().into());
    p.insert("content".into(), m.content.clone().into());
    p.insert("tags".into(), m.tags.clone().into());
    p.insert("importance".into(), m.importance.into());
    p.insert("confidence".into(), m.confidence.into());
    p.insert("usage_count".into(), times.usage_count.into());
    p.insert("created_at".into(), times.created_at.into());
    p.insert("updated_at".into(), times.updated_at.into());
    if let Some(summary) = &m.summary {
        p.insert("summary".into(), summary.clone().into());
    }
    if let Some(effectiveness) = times.effectiveness {
        p.insert("effectiveness".into(), effectiveness.into());
    }
    if let Some(last) = times.last_accessed {
        p.insert("last_accessed".into(), last.into());
    }
    if let Some(ctx) = &m.context {
        flatten_context(ctx, &mut p);
    }
    pyjson::to_string(&p)
}

/// Applies an update to stored properties, keeping every key we do not change (including
/// keys written by other programs) and bumping `updated_at`.
pub fn apply_patch(
    properties: &str,
    patch: &MemoryPatch,
    now: &str,
) -> Result<String, serde_json::Error> {
    let mut p: Map<String, Value> = serde_json::from_str(properties)?;
    if let Some(title) = &patch.title {
        p.insert("title".into(), title.clone().into());
    }
    if let Some(content) = &patch.content {
        p.insert("content".into(), content.clone().into());
    }
    if let Some(tags) = &patch.tags {
        p.insert("tags".into(), tags.clone().into());
    }
    if let Some(importance) = patch.importance {
        p.insert("importance".into(), importance.into());
    }
    match &patch.summary {
        Some(Some(summary)) => {
            p.insert("summary".into(), summary.clone().into());
        }
        Some(None) => {
            p.shift_remove("summary");
        }
        None => {}
    }
    p.insert("updated_at".into(), now.into());
    Ok(pyjson::to_string(&p))
}

fn flatten_context(ctx: &MemoryContext, p: &mut Map<String, Value>) {
    let Value::Object(fields) = serde_json::to_value(ctx).expect("a context is plain data") else {
        unreachable!("a context serialises as an object")
    };
    for name in CONTEXT_FIELDS {
        let Some(value) = fields.get(name) else {
            continue;
        };
        let stored = match (name, value) {
            // MemoryGraph writes an empty list as the string "[]" and the metadata object as
            // a JSON string; its reader decodes strings that start with `[` or `{`.
            (n, Value::Array(items)) if LIST_FIELDS.contains(&n) && items.is_empty() => {
                Value::String("[]".into())
            }
            ("additional_metadata", v) => Value::String(pyjson::to_string(v)),
            (_, v) => v.clone(),
        };
        p.insert(format!("context_{name}"), stored);
    }
}

/// Reads a memory's properties the way MemoryGraph's reader does: title and content
/// trimmed, tags lower-cased and trimmed, context rebuilt from `context_*` keys.
pub fn decode_memory(id: &str, properties: &str) -> Result<Memory, serde_json::Error> {
    let p: Map<String, Value> = serde_json::from_str(properties)?;
    let text = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_string);
    let number = |key: &str| p.get(key).and_then(Value::as_f64);
    let tags = match p.get("tags") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    Ok(Memory {
        id: id.to_string(),
        memory_type: text("type").unwrap_or_else(|| "general".into()),
        title: text("title").unwrap_or_default().trim().to_string(),
        content: text("content").unwrap_or_default().trim().to_string(),
        summary: text("summary").filter(|s| !s.is_empty()),
        tags,
        importance: number("importance").unwrap_or(0.5),
        confidence: number("confidence").unwrap_or(0.8),
        usage_count: p.get("usage_count").and_then(Value::as_i64).unwrap_or(0),
        created_at: text("created_at").unwrap_or_default(),
        updated_at: text("updated_at").unwrap_or_default(),
        last_accessed: text("last_accessed"),
        effectiveness: number("effectiveness"),
        context: rebuild_context(&p),
    })
}

fn rebuild_context(p: &Map<String, Value>) -> Option<MemoryContext> {
    let mut fields = Map::new();
    for (key, value) in p {
        let Some(name) = key.strip_prefix("context_") else {
            continue;
        };
        let value = match value {
            Value::String(s) if s.starts_with('[') || s.starts_with('{') => {
                serde_json::from_str(s).unwrap_or_else(|_| value.clone())
            }
            v => v.clone(),
        };
        fields.insert(name.to_string(), value);
    }
    if fields.is_empty() {
        return None;
    }
    // Lenient: a field of an unexpected shape is left out rather than hiding the memory.
    let mut ctx = MemoryContext::default();
    for (name, value) in fields {
        let one = Map::from_iter([(name, value)]);
        if let Ok(part) = serde_json::from_value::<MemoryContext>(Value::Object(one)) {
            merge_context(&mut ctx, part);
        }
    }
    Some(ctx)
}

fn merge_context(into: &mut MemoryContext, part: MemoryContext) {
    macro_rules! take {
        ($($f:ident),*) => { $( if part.$f.is_some() { into.$f = part.$f; } )* };
    }
    macro_rules! take_list {
        ($($f:ident),*) => { $( if !part.$f.is_empty() { into.$f = part.$f; } )* };
    }
    take!(
        project_path,
        git_commit,
        git_branch,
        working_directory,
        timestamp,
        session_id,
        user_id,
        tenant_id,
        team_id,
        visibility,
        created_by
    );
    take_list!(files_involved, languages, frameworks, technologies);
    if !part.additional_metadata.is_empty() {
        into.additional_metadata = part.additional_metadata;
    }
}

/// Builds a new relationship's properties in MemoryGraph's key order.
pub fn encode_new_relationship(id: &str, r: &NewRelationship, now: &str) -> String {
    let mut p = Map::new();
    p.insert("strength".into(), r.strength.into());
    p.insert("confidence".into(), r.confidence.into());
    p.insert(
        "context".into(),
        match &r.context {
            Some(ctx) => Value::String(pyjson::to_string(ctx)),
            None => Value::Null,
        },
    );
    p.insert("evidence_count".into(), 1.into());
    p.insert("success_rate".into(), Value::Null);
    p.insert("created_at".into(), now.into());
    p.insert("last_validated".into(), now.into());
    p.insert("validation_count".into(), 0.into());
    p.insert("counter_evidence_count".into(), 0.into());
    p.insert("valid_from".into(), now.into());
    p.insert("valid_until".into(), Value::Null);
    p.insert("recorded_at".into(), now.into());
    p.insert("invalidated_by".into(), Value::Null);
    p.insert("id".into(), id.into());
    pyjson::to_string(&p)
}

/// The columns of one `relationships` row, as selected by the backend.
pub struct RelationshipRow {
    pub id: String,
    pub from_id: String,
    pub to_id: String,
    pub rel_type: String,
    pub properties: String,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
}

/// Reads a relationship row; a context that is not MemoryGraph's JSON string is kept as text.
pub fn decode_relationship(row: RelationshipRow) -> Relationship {
    let p: Map<String, Value> = serde_json::from_str(&row.properties).unwrap_or_default();
    let text = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_string);
    let context = match p.get("context") {
        Some(Value::String(s)) => Some(
            serde_json::from_str::<RelationshipContext>(s).unwrap_or_else(|_| {
                RelationshipContext {
                    text: s.clone(),
                    ..Default::default()
                }
            }),
        ),
        _ => None,
    };
    let created_at = text("created_at").unwrap_or_default();
    Relationship {
        id: row.id,
        from_id: row.from_id,
        to_id: row.to_id,
        rel_type: row.rel_type,
        strength: p.get("strength").and_then(Value::as_f64).unwrap_or(0.5),
        confidence: p.get("confidence").and_then(Value::as_f64).unwrap_or(0.8),
        context,
        valid_from: row
            .valid_from
            .or_else(|| text("valid_from"))
            .unwrap_or_else(|| created_at.clone()),
        created_at,
        valid_until: row.valid_until,
    }
}

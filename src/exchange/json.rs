//! MemoryGraph's JSON export (`format_version` 2.0), written and read.
//!
//! Written with MemoryGraph's keys in its order, so MemoryGraph's own importer reads our
//! files, plus what its export leaves out: each memory's full context and use count, and
//! each relationship's id, every stored property and its temporal columns (`valid_from`,
//! `valid_until`, `recorded_at`, `invalidated_by`). Reading accepts both MemoryGraph's
//! files and ours; with ours, export → import → export gives the same file.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use super::ParsedFile;
use crate::backend::{Everything, ImportedMemory, ImportedRelationship};
use crate::model::{MemoryContext, NewMemory, RelationshipType, check_unit_interval, now_iso};

/// The export layout version MemoryGraph 0.12.4 writes and reads.
pub const FORMAT_VERSION: &str = "2.0";
const EXPORT_VERSION: &str = "1.0";
/// What `backend_type` says in our files (MemoryGraph's importer does not read it).
const BACKEND_TYPE: &str = "turso";

/// Keys of a relationship's properties that are checked, or carried in their own fields,
/// on import; every other stored property is kept as it is.
const CHECKED_PROPERTIES: [&str; 8] = [
    "strength",
    "confidence",
    "context",
    "id",
    "valid_from",
    "valid_until",
    "recorded_at",
    "invalidated_by",
];

/// The export document for everything in the database, made at `exported_at`.
pub fn export(all: &Everything, exported_at: &str) -> Value {
    let memories: Vec<Value> = all.memories.iter().map(memory_value).collect();
    let relationships: Vec<Value> = all.relationships.iter().map(relationship_value).collect();
    json!({
        "format_version": FORMAT_VERSION,
        "export_version": EXPORT_VERSION,
        "export_date": exported_at,
        "backend_type": BACKEND_TYPE,
        "exported_by": format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
        "memory_count": memories.len(),
        "relationship_count": relationships.len(),
        "memories": memories,
        "relationships": relationships,
    })
}

fn memory_value(m: &crate::model::Memory) -> Value {
    let mut v = Map::new();
    v.insert("id".into(), m.id.clone().into());
    v.insert("type".into(), m.memory_type.clone().into());
    v.insert("title".into(), m.title.clone().into());
    v.insert("content".into(), m.content.clone().into());
    v.insert("summary".into(), m.summary.clone().into());
    v.insert("tags".into(), m.tags.clone().into());
    v.insert("importance".into(), m.importance.into());
    v.insert("confidence".into(), m.confidence.into());
    v.insert("created_at".into(), m.created_at.clone().into());
    v.insert("updated_at".into(), m.updated_at.clone().into());
    if let Some(ctx) = &m.context {
        v.insert(
            "context".into(),
            serde_json::to_value(ctx).expect("a context is plain data"),
        );
    }
    v.insert("usage_count".into(), m.usage_count.into());
    if let Some(last) = &m.last_accessed {
        v.insert("last_accessed".into(), last.clone().into());
    }
    if let Some(e) = m.effectiveness {
        v.insert("effectiveness".into(), e.into());
    }
    Value::Object(v)
}

fn relationship_value(r: &crate::backend::StoredRelationship) -> Value {
    let mut properties = Map::new();
    // MemoryGraph's four keys first, the way its export lists them.
    for key in ["strength", "confidence", "context", "evidence_count"] {
        properties.insert(
            key.into(),
            r.properties.get(key).cloned().unwrap_or(match key {
                "strength" => 0.5.into(),
                "confidence" => 0.8.into(),
                "evidence_count" => 1.into(),
                _ => Value::Null,
            }),
        );
    }
    for (key, value) in &r.properties {
        properties
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
    json!({
        "from_memory_id": r.from_id,
        "to_memory_id": r.to_id,
        "type": r.rel_type,
        "properties": properties,
        "id": r.id,
        "valid_from": r.valid_from,
        "valid_until": r.valid_until,
        "recorded_at": r.recorded_at,
        "invalidated_by": r.invalidated_by,
    })
}

/// Reads an export (MemoryGraph's or ours), checking every memory by the same rules as
/// `store_memory`. Errors name the entry at fault.
pub fn parse(text: &str) -> Result<ParsedFile> {
    let doc: Value = serde_json::from_str(text).context("the file is not valid JSON")?;
    let Value::Object(doc) = doc else {
        bail!("the file is not a MemoryGraph export: expected a JSON object");
    };
    let version = doc
        .get("format_version")
        .or_else(|| doc.get("export_version"))
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the file is not a MemoryGraph export: no format_version"))?;
    if !matches!(version, "1.0" | "2.0") {
        bail!("unsupported export format_version {version:?} (1.0 and 2.0 are read)");
    }
    let list = |key: &str| -> Result<&Vec<Value>> {
        doc.get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("the file is not a MemoryGraph export: no `{key}` list"))
    };
    let now = now_iso();
    let mut parsed = ParsedFile::default();
    for (i, m) in list("memories")?.iter().enumerate() {
        let memory = read_memory(m, &now).with_context(|| {
            let id = m.get("id").and_then(Value::as_str).unwrap_or("?");
            format!("memories[{i}] (id {id})")
        })?;
        parsed.batch.memories.push(memory);
    }
    for (i, r) in list("relationships")?.iter().enumerate() {
        let relationship = read_relationship(r).with_context(|| format!("relationships[{i}]"))?;
        parsed.batch.relationships.push(relationship);
    }
    Ok(parsed)
}

fn text<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => bail!("`{key}` must be a string, got {other}"),
    }
}

fn required<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    text(v, key)?.ok_or_else(|| anyhow!("`{key}` is missing"))
}

fn number(v: &Value, key: &str) -> Result<Option<f64>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| anyhow!("`{key}` must be a number, got {n}")),
    }
}

fn read_memory(m: &Value, now: &str) -> Result<ImportedMemory> {
    let id = required(m, "id")?.to_string();
    let created_at = text(m, "created_at")?.unwrap_or(now).to_string();
    let updated_at = text(m, "updated_at")?.unwrap_or(&created_at).to_string();
    let tags: Option<Vec<String>> = match m.get("tags") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value(v.clone())
                .map_err(|_| anyhow!("`tags` must be a list of strings"))?,
        ),
    };
    let context = match m.get("context") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(MemoryContext::from_input(map, &created_at)?),
        Some(other) => bail!("`context` must be an object, got {other}"),
    };
    let mut memory = NewMemory::validate(
        required(m, "type")?,
        required(m, "title")?,
        required(m, "content")?,
        text(m, "summary")?,
        tags.as_deref(),
        number(m, "importance")?,
        context,
    )?;
    if let Some(confidence) = number(m, "confidence")? {
        memory.confidence = check_unit_interval("confidence", confidence)?;
    }
    Ok(ImportedMemory {
        id,
        memory,
        created_at,
        updated_at,
        usage_count: m.get("usage_count").and_then(Value::as_i64).unwrap_or(0),
        last_accessed: text(m, "last_accessed")?.map(str::to_string),
        effectiveness: number(m, "effectiveness")?,
    })
}

fn read_relationship(r: &Value) -> Result<ImportedRelationship> {
    let empty = Map::new();
    let properties = match r.get("properties") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(other) => bail!("`properties` must be an object, got {other}"),
    };
    let props = Value::Object(properties.clone());
    let rel_type = RelationshipType::parse_field("type", required(r, "type")?)?;
    let context = match properties.get("context") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(_)) => Some(crate::backend::python_json(&properties["context"])),
        Some(other) => bail!("`properties.context` must be a string or an object, got {other}"),
    };
    // The top-level fields are ours; a file without them may still carry them inside
    // the properties.
    let temporal = |key: &str| -> Result<Option<String>> {
        Ok(match text(r, key)? {
            Some(v) => Some(v.to_string()),
            None => text(&props, key)?.map(str::to_string),
        })
    };
    let extra = properties
        .iter()
        .filter(|(k, _)| !CHECKED_PROPERTIES.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(ImportedRelationship {
        id: temporal("id")?,
        from_id: required(r, "from_memory_id")?.to_string(),
        to_id: required(r, "to_memory_id")?.to_string(),
        rel_type,
        strength: check_unit_interval("strength", number(&props, "strength")?.unwrap_or(0.5))?,
        confidence: check_unit_interval(
            "confidence",
            number(&props, "confidence")?.unwrap_or(0.8),
        )?,
        context,
        extra,
        valid_from: temporal("valid_from")?,
        valid_until: temporal("valid_until")?,
        recorded_at: temporal("recorded_at")?,
        invalidated_by: temporal("invalidated_by")?,
    })
}

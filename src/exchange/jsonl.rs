//! The knowledge-graph file of the reference MCP memory server (`server-memory`), read.
//!
//! One JSON object a line: entities (`name`, `entityType`, `observations`) and relations
//! (`from`, `to`, `relationType`). An entity becomes a memory: its name the title, its
//! observations the content (one a line), its entity type a tag and, when it names one
//! of MemoryGraph's 13 memory types, the type (else `general`). A relation becomes the
//! closest of the 35 relationship types (see [`relationship_type_for`]), its original
//! name kept as the relationship's context text, so nothing of the file is lost.
//!
//! The file has no ids: a memory's id is derived from the entity's name (a UUID v5), so
//! importing the same file again with `--skip-duplicates` adds nothing twice.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

use super::ParsedFile;
use crate::backend::{ImportedMemory, ImportedRelationship, python_json};
use crate::model::{MemoryType, NewMemory, RelationshipContext, RelationshipType, now_iso};

/// Namespace of the ids given to imported entities (a fixed, random UUID).
const ENTITY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5c1e_4d0b_9a7e_4f2d_8b1c_6e3a_2f90_d417);

/// The memory id an entity of this name gets.
pub fn entity_id(name: &str) -> String {
    uuid::Uuid::new_v5(&ENTITY_NAMESPACE, name.as_bytes()).to_string()
}

/// Reads the file. Lines that are blank or of another `type` are skipped, as the server
/// itself does; a later entity with a name already seen and a repeated relation are
/// skipped too. Relations naming an entity that is not in the file are left out and listed.
pub fn parse(text: &str) -> Result<ParsedFile> {
    let now = now_iso();
    let mut parsed = ParsedFile::default();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut relations = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("line {line_no} is not valid JSON"))?;
        match v.get("type").and_then(Value::as_str) {
            Some("entity") => {
                let memory = read_entity(&v, &now).with_context(|| format!("line {line_no}"))?;
                let name = string(&v, "name")?.to_string();
                if ids.contains_key(&name) {
                    continue;
                }
                ids.insert(name, memory.id.clone());
                parsed.batch.memories.push(memory);
            }
            Some("relation") => relations.push((line_no, v)),
            _ => {}
        }
    }
    let mut seen = HashSet::new();
    for (line_no, v) in relations {
        let (from, to, kind) = (
            string(&v, "from").with_context(|| format!("line {line_no}"))?,
            string(&v, "to").with_context(|| format!("line {line_no}"))?,
            string(&v, "relationType").with_context(|| format!("line {line_no}"))?,
        );
        if !seen.insert((from.to_string(), to.to_string(), kind.to_string())) {
            continue;
        }
        let (Some(from_id), Some(to_id)) = (ids.get(from), ids.get(to)) else {
            parsed.dangling.push(format!("{from} -[{kind}]-> {to}"));
            continue;
        };
        let rel_type = relationship_type_for(kind);
        parsed.batch.relationships.push(ImportedRelationship {
            id: None,
            from_id: from_id.clone(),
            to_id: to_id.clone(),
            rel_type,
            strength: rel_type.default_strength(),
            confidence: rel_type.default_confidence(),
            context: Some(python_json(&RelationshipContext {
                text: kind.to_string(),
                ..Default::default()
            })),
            extra: Map::new(),
            valid_from: None,
            valid_until: None,
            recorded_at: None,
            invalidated_by: None,
        });
    }
    Ok(parsed)
}

fn string<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("`{key}` is missing or not a string"))
}

fn read_entity(v: &Value, now: &str) -> Result<ImportedMemory> {
    let name = string(v, "name")?;
    let entity_type = string(v, "entityType")?;
    let observations: Vec<String> = match v.get("observations") {
        None | Some(Value::Null) => Vec::new(),
        Some(list) => serde_json::from_value(list.clone())
            .map_err(|_| anyhow!("`observations` must be a list of strings"))?,
    };
    let memory_type = entity_type
        .parse::<MemoryType>()
        .unwrap_or(MemoryType::General);
    let content = if observations.iter().all(|o| o.trim().is_empty()) {
        // A memory needs a content; an entity without observations still says what it is.
        format!("{name} ({entity_type})")
    } else {
        observations.join("\n")
    };
    if name.trim().is_empty() {
        bail!("an entity needs a name");
    }
    let memory = NewMemory::validate(
        memory_type.as_str(),
        name,
        &content,
        None,
        Some(&[entity_type.to_string()]),
        None,
        None,
    )?;
    Ok(ImportedMemory {
        id: entity_id(name),
        memory,
        created_at: now.to_string(),
        updated_at: now.to_string(),
        usage_count: 0,
        last_accessed: None,
        effectiveness: None,
    })
}

/// Words of a relation name: `reportsTo`, `reports_to` and `reports to` all give
/// `reports to`.
fn words(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && prev_lower {
            out.push(' ');
        }
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else {
            out.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Relation names that mean one of our types without spelling it.
const SYNONYMS: &[(&str, RelationshipType)] = &[
    ("uses", RelationshipType::DependsOn),
    ("relies on", RelationshipType::DependsOn),
    ("needs", RelationshipType::DependsOn),
    ("fixes", RelationshipType::Solves),
    ("resolves", RelationshipType::Solves),
    ("allows", RelationshipType::Enables),
    ("supersedes", RelationshipType::Replaces),
    ("extends", RelationshipType::BuildsOn),
    ("based on", RelationshipType::BuildsOn),
    ("part of", RelationshipType::AppliesTo),
    ("belongs to", RelationshipType::AppliesTo),
    ("integrates with", RelationshipType::WorksWith),
    ("collaborates with", RelationshipType::WorksWith),
    ("conflicts with", RelationshipType::Contradicts),
    ("like", RelationshipType::SimilarTo),
    ("resembles", RelationshipType::SimilarTo),
    ("validates", RelationshipType::Confirms),
];

/// The closest relationship type for a relation name: the type it spells (in any case,
/// with spaces, underscores or camelCase), else a known synonym, else `RELATED_TO`.
pub fn relationship_type_for(name: &str) -> RelationshipType {
    let words = words(name);
    let spelled = words.replace(' ', "_");
    if let Ok(t) = RelationshipType::parse_field("relationType", &spelled) {
        return t;
    }
    SYNONYMS
        .iter()
        .find(|(synonym, _)| *synonym == words)
        .map(|(_, t)| *t)
        .unwrap_or(RelationshipType::RelatedTo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_names_map_to_the_closest_type() {
        assert_eq!(
            relationship_type_for("depends_on"),
            RelationshipType::DependsOn
        );
        assert_eq!(
            relationship_type_for("dependsOn"),
            RelationshipType::DependsOn
        );
        assert_eq!(relationship_type_for("uses"), RelationshipType::DependsOn);
        assert_eq!(relationship_type_for("Solves"), RelationshipType::Solves);
        assert_eq!(
            relationship_type_for("reportsTo"),
            RelationshipType::RelatedTo
        );
        assert_eq!(
            relationship_type_for("works_at"),
            RelationshipType::RelatedTo
        );
        assert_eq!(words("reportsTo"), "reports to");
    }

    #[test]
    fn entity_ids_are_stable() {
        assert_eq!(entity_id("Grafana"), entity_id("Grafana"));
        assert_ne!(entity_id("Grafana"), entity_id("grafana"));
    }
}

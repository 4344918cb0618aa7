//! Which part of the graph a picture shows: all of it, one project, one tag, or the
//! neighbourhood of one memory. Only current relationships are drawn.

use std::collections::{HashMap, HashSet, VecDeque};

use anyhow::{Result, bail};

use crate::backend::{Everything, StoredRelationship};
use crate::model::{Memory, RelationshipType, limits};

/// Limits on what is drawn; all given limits apply together.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only memories whose context names this project path.
    pub project: Option<String>,
    /// Only memories with this tag.
    pub tag: Option<String>,
    /// Only memories within `depth` hops of this one (and it).
    pub around: Option<(String, u32)>,
}

/// The memories and relationships to draw.
pub struct Picture<'a> {
    pub memories: Vec<&'a Memory>,
    pub relationships: Vec<&'a StoredRelationship>,
}

impl Picture<'_> {
    /// Whether a relationship reads the same both ways (drawn without an arrow head).
    pub fn is_symmetric(r: &StoredRelationship) -> bool {
        RelationshipType::parse_field("type", &r.rel_type).is_ok_and(|t| t.is_symmetric())
    }
}

/// Picks what to draw. Relationships are kept when both their ends are.
pub fn select<'a>(all: &'a Everything, selection: &Selection) -> Result<Picture<'a>> {
    let current: Vec<&StoredRelationship> = all
        .relationships
        .iter()
        .filter(|r| r.is_current())
        .collect();
    let near = match &selection.around {
        None => None,
        Some((id, depth)) => {
            if !(1..=limits::MAX_DEPTH).contains(depth) {
                bail!(
                    "--depth must be from 1 to {}, got {depth}",
                    limits::MAX_DEPTH
                );
            }
            if !all.memories.iter().any(|m| &m.id == id) {
                bail!("Memory not found: {id}");
            }
            Some(neighbourhood(&current, id, *depth))
        }
    };
    let tag = selection.tag.as_deref().map(str::to_lowercase);
    let memories: Vec<&Memory> = all
        .memories
        .iter()
        .filter(|m| {
            selection
                .project
                .as_deref()
                .is_none_or(|p| m.project_path() == Some(p))
        })
        .filter(|m| tag.as_deref().is_none_or(|t| m.tags.iter().any(|x| x == t)))
        .filter(|m| near.as_ref().is_none_or(|n| n.contains(m.id.as_str())))
        .collect();
    let kept: HashSet<&str> = memories.iter().map(|m| m.id.as_str()).collect();
    let relationships = current
        .into_iter()
        .filter(|r| kept.contains(r.from_id.as_str()) && kept.contains(r.to_id.as_str()))
        .collect();
    Ok(Picture {
        memories,
        relationships,
    })
}

/// The ids within `depth` hops of `start` along current relationships, either direction.
fn neighbourhood<'a>(
    current: &[&'a StoredRelationship],
    start: &'a str,
    depth: u32,
) -> HashSet<&'a str> {
    let mut links: HashMap<&str, Vec<&str>> = HashMap::new();
    for r in current {
        links.entry(&r.from_id).or_default().push(&r.to_id);
        links.entry(&r.to_id).or_default().push(&r.from_id);
    }
    let mut seen = HashSet::from([start]);
    let mut queue = VecDeque::from([(start, 0)]);
    while let Some((id, d)) = queue.pop_front() {
        if d == depth {
            continue;
        }
        for next in links.get(id).into_iter().flatten() {
            if seen.insert(next) {
                queue.push_back((next, d + 1));
            }
        }
    }
    seen
}

/// A fill colour per memory type, so kinds stand apart in a picture.
pub fn type_colour(memory_type: &str) -> &'static str {
    match memory_type {
        "problem" => "#f8d7da",
        "error" => "#f5b7b1",
        "solution" => "#d4edda",
        "fix" => "#c3e6cb",
        "task" => "#fff3cd",
        "code_pattern" => "#d1ecf1",
        "project" => "#e2d9f3",
        "technology" => "#d6eaf8",
        "command" => "#fdebd0",
        "file_context" => "#e8e8e8",
        "workflow" => "#fcf3cf",
        "conversation" => "#f2e6ff",
        _ => "#ffffff",
    }
}

/// Longest title shown in a node; longer ones are cut with an ellipsis.
pub const LABEL_CHARS: usize = 48;

//! What one memory made from a group of near-duplicates holds. The group says nearly the
//! same thing, so the merged memory is the group's keeper — its most important memory, the
//! newest among equally important ones — as a new version: the keeper's type, title,
//! content, summary and context, with what the group knows together: every tag, the
//! highest importance and confidence, every use, and the earliest creation time (the
//! knowledge is that old, so recency ranking and `--days` judge it by that). Its
//! `updated_at` is the merge. The other contents are not pasted together: that would
//! repeat nearly the same text; they stay on the originals, which the merged memory
//! replaces and which `get` lists as its versions.
//!
//! Its project is the group's when they all have the same one; a group recorded in
//! several projects (or in one and shared) makes a shared memory, so that no project's
//! lesson moves into another project.

use crate::backend::ImportedMemory;
use crate::model::{InvalidInput, Memory, NewMemory, limits};

/// The place in `group` of the memory whose text the merged memory keeps: the highest
/// importance, then the newest, then the first in the group.
pub fn keeper(group: &[Memory]) -> usize {
    let mut best = 0;
    for (i, m) in group.iter().enumerate().skip(1) {
        let b = &group[best];
        let better = m
            .importance
            .total_cmp(&b.importance)
            .then_with(|| m.created_at.cmp(&b.created_at))
            .is_gt();
        if better {
            best = i;
        }
    }
    best
}

/// The memory that replaces `group` (at least one memory), with the id `id`, merged at
/// `now`. Fails only when the keeper breaks a rule a new memory must follow (a type this
/// version does not know, a title longer than allowed), which a file written by another
/// program may hold.
pub fn merged(group: &[Memory], id: &str, now: &str) -> Result<ImportedMemory, InvalidInput> {
    let keep = &group[keeper(group)];
    let mut tags: Vec<String> = Vec::new();
    for tag in keep.tags.iter().chain(group.iter().flat_map(|m| &m.tags)) {
        let tag = tag.trim().to_lowercase();
        if !tag.is_empty() && !tags.contains(&tag) && tags.len() < limits::TAGS_MAX {
            tags.push(tag);
        }
    }
    let importance = group.iter().map(|m| m.importance).fold(0.0, f64::max);
    let mut context = keep.context.clone();
    if group
        .iter()
        .any(|m| m.project_path() != keep.project_path())
        && let Some(context) = &mut context
    {
        context.project_path = None;
    }
    let mut memory = NewMemory::validate(
        &keep.memory_type,
        &keep.title,
        &keep.content,
        keep.summary.as_deref(),
        Some(&tags),
        Some(importance),
        context,
    )?;
    memory.confidence = group.iter().map(|m| m.confidence).fold(0.0, f64::max);
    let created_at = group
        .iter()
        .map(|m| m.created_at.as_str())
        .min()
        .unwrap_or(now)
        .to_string();
    Ok(ImportedMemory {
        id: id.to_string(),
        memory,
        created_at,
        updated_at: now.to_string(),
        usage_count: group.iter().map(|m| m.usage_count).sum(),
        last_accessed: group.iter().filter_map(|m| m.last_accessed.clone()).max(),
        effectiveness: keep.effectiveness,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(id: &str, importance: f64, created_at: &str, tags: &[&str]) -> Memory {
        Memory {
            id: id.into(),
            memory_type: "fix".into(),
            title: format!("Title {id}"),
            content: format!("Content {id}"),
            summary: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            importance,
            confidence: 0.7,
            usage_count: 2,
            created_at: created_at.into(),
            updated_at: created_at.into(),
            last_accessed: Some(format!("{created_at}-seen")),
            effectiveness: None,
            context: None,
        }
    }

    #[test]
    fn the_keeper_is_the_most_important_then_the_newest_then_the_first() {
        let a = memory("a", 0.5, "2025-01-01", &[]);
        let b = memory("b", 0.9, "2024-01-01", &[]);
        let c = memory("c", 0.5, "2026-01-01", &[]);
        assert_eq!(keeper(&[a.clone(), b.clone(), c.clone()]), 1);
        assert_eq!(keeper(&[a.clone(), c.clone()]), 1, "newer among equals");
        assert_eq!(
            keeper(&[a.clone(), a.clone()]),
            0,
            "the first among the same"
        );
    }

    #[test]
    fn the_merged_memory_has_the_keepers_text_and_what_the_group_knows_together() {
        let mut a = memory("a", 0.4, "2025-03-01T00:00:00", &["pool", "DB"]);
        a.confidence = 0.95;
        let b = memory("b", 0.6, "2025-05-01T00:00:00", &["db", "workers"]);
        let m = merged(&[a, b], "new", "2026-01-01T00:00:00").unwrap();
        assert_eq!(m.id, "new");
        assert_eq!(m.memory.title, "Title b");
        assert_eq!(m.memory.content, "Content b");
        assert_eq!(
            m.memory.tags,
            ["db", "workers", "pool"],
            "keeper's first, once each"
        );
        assert_eq!(m.memory.importance, 0.6);
        assert_eq!(m.memory.confidence, 0.95);
        assert_eq!(m.created_at, "2025-03-01T00:00:00", "the earliest");
        assert_eq!(m.updated_at, "2026-01-01T00:00:00", "the merge");
        assert_eq!(m.usage_count, 4);
        assert_eq!(m.last_accessed.as_deref(), Some("2025-05-01T00:00:00-seen"));
    }

    #[test]
    fn a_group_of_one_project_stays_in_it_and_a_group_of_several_is_shared() {
        let in_project = |id: &str, project: Option<&str>| {
            let mut m = memory(id, 0.5, "2025-01-01", &[]);
            m.context = Some(crate::model::MemoryContext {
                project_path: project.map(str::to_string),
                git_branch: Some("main".into()),
                ..Default::default()
            });
            m
        };
        let one = merged(
            &[in_project("a", Some("/p")), in_project("b", Some("/p"))],
            "new",
            "now",
        )
        .unwrap();
        assert_eq!(
            one.memory.context.unwrap().project_path.as_deref(),
            Some("/p")
        );
        for other in [Some("/q"), None] {
            let two = merged(
                &[in_project("a", Some("/p")), in_project("b", other)],
                "new",
                "now",
            )
            .unwrap();
            let context = two.memory.context.unwrap();
            assert_eq!(context.project_path, None, "{other:?}");
            assert_eq!(
                context.git_branch.as_deref(),
                Some("main"),
                "the rest is kept"
            );
        }
    }

    #[test]
    fn a_keeper_of_an_unknown_type_is_refused() {
        let mut a = memory("a", 0.5, "2025-01-01", &[]);
        a.memory_type = "someone_elses_type".into();
        assert!(merged(&[a], "new", "now").is_err());
    }
}

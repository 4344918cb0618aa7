//! Acting on the report. In one write transaction: everything about to change is read and
//! handed to the caller, who keeps it as a backup (the command line writes it to a file);
//! only then are near-duplicates merged, unused memories archived and dangling
//! relationships removed. If keeping the backup fails, nothing is changed; if the database
//! no longer holds what the report named (another process wrote meanwhile), nothing is
//! changed either.
//!
//! Merging a group makes one new memory (see `merge`) that `REPLACES` each memory of the
//! group, exactly as `store_memory` with `supersedes` does: search and recall already
//! list a superseded memory after the one that replaced it, and `get` shows the versions.
//! Archiving removes the memories and every relationship touching them: the backup is the
//! archive, and `undo` brings them back.

use std::collections::HashSet;

use libsql::Connection;
use serde::{Deserialize, Serialize};

use super::merge;
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::exchange::{insert_memory, read_memories, read_relationships};
use crate::backend::queue::RelationshipRow;
use crate::backend::{Everything, ImportedMemory, TursoBackend, all_rows, in_write};
use crate::model::{Memory, NewRelationship, RelationshipType, now_iso};

/// What to act on, by id, as the report named it.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Groups of near-duplicates, each merged into one new memory.
    pub merge: Vec<Vec<String>>,
    /// Memories to archive: kept in the backup, then removed with their relationships.
    pub archive: Vec<String>,
    /// Relationships with an end that is not a memory, to remove.
    pub unlink: Vec<String>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.merge.is_empty() && self.archive.is_empty() && self.unlink.is_empty()
    }
}

/// What an apply did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct Applied {
    pub dry_run: bool,
    /// Everything the apply changes or removes, as it was before: the backup's export.
    pub before: Everything,
    pub record: Record,
}

/// What an apply made and removed. The backup carries it beside the export so that `undo`
/// knows what to take away and what to put back; an import ignores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the apply ran.
    pub applied_at: String,
    /// The memories made by merging, with their links.
    pub merged: Vec<MergedRecord>,
    /// The memories archived (in the backup, removed from the database).
    pub archived: Vec<String>,
    /// Every relationship removed: those of archived memories and the dangling ones.
    pub removed_relationships: Vec<String>,
    /// The relationships of the backup whose end was not a memory when it was written:
    /// `undo` puts them back as they were, ends missing.
    pub dangling: Vec<String>,
}

/// One memory made by merging a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedRecord {
    pub id: String,
    pub title: String,
    /// Its `updated_at` as the merge left it: `undo` refuses to remove it once changed.
    pub updated_at: String,
    /// The memories of the group, which it replaces.
    pub replaces: Vec<String>,
    /// Its `REPLACES` links, one for each memory of the group.
    pub links: Vec<String>,
}

/// A list of ids as one parameter, for `IN (SELECT value FROM json_each(?n))`.
pub(super) fn id_list(ids: &[String]) -> libsql::Value {
    serde_json::to_string(ids)
        .expect("a list of strings is JSON")
        .into()
}

/// The refusal when the database no longer holds what the report named.
fn changed(what: String) -> BackendError {
    BackendError::Refused(format!(
        "{what} since the report was read (another process wrote to the database); nothing was changed: run consolidate again"
    ))
}

/// What an apply will do, with the rows it reads first.
struct Plan {
    merged: Vec<(ImportedMemory, Vec<RelationshipRow>)>,
    applied: Applied,
}

impl TursoBackend {
    /// Acts on `selection`. `keep` receives everything about to change, before anything
    /// changes, and must store it durably (an error from it cancels the apply). A dry run
    /// reads the same and changes nothing, without calling `keep`.
    pub async fn apply_consolidation(
        &self,
        selection: &Selection,
        dry_run: bool,
        keep: impl FnOnce(&Applied) -> std::io::Result<()>,
    ) -> Result<Applied> {
        let conn = self.conn.lock().await;
        if dry_run {
            let tx = self.reading(&conn).await?;
            let plan = plan(&tx, selection, true).await;
            tx.finish().await?;
            return Ok(plan?.applied);
        }
        let applied = in_write(&conn, "consolidating", async |tx| {
            let plan = plan(tx, selection, false).await?;
            keep(&plan.applied).map_err(|source| BackendError::Io {
                doing: "keeping the backup before consolidating".into(),
                source,
            })?;
            carry_out(tx, &plan).await?;
            Ok(plan.applied)
        })
        .await?;
        drop(conn);
        self.after_write();
        Ok(applied)
    }
}

/// Reads what the selection touches, checks it is still as the report saw it, and makes
/// the merged memories.
async fn plan(conn: &Connection, selection: &Selection, dry_run: bool) -> Result<Plan> {
    let now = now_iso();
    let merging: Vec<String> = selection.merge.iter().flatten().cloned().collect();
    if let Some(both) = selection.archive.iter().find(|id| merging.contains(id)) {
        return Err(BackendError::Refused(format!(
            "memory {both} is both merged and archived; choose one"
        )));
    }
    let mut touched: Vec<String> = merging.clone();
    touched.extend(selection.archive.iter().cloned());
    let memories = read_memories(
        conn,
        "n.id IN (SELECT value FROM json_each(?1))",
        vec![id_list(&touched)],
    )
    .await?;
    if let Some(gone) = touched
        .iter()
        .find(|id| !memories.iter().any(|m| &m.id == *id))
    {
        return Err(changed(format!("memory {gone} was removed")));
    }
    let superseded = superseded_among(conn, &merging).await?;
    if let Some(old) = superseded.first() {
        return Err(changed(format!("memory {old} was superseded")));
    }

    let mut merged = Vec::new();
    let mut records = Vec::new();
    for group in &selection.merge {
        let members: Vec<Memory> = group
            .iter()
            .filter_map(|id| memories.iter().find(|m| &m.id == id).cloned())
            .collect();
        let id = uuid::Uuid::new_v4().to_string();
        let memory = merge::merged(&members, &id, &now).map_err(|e| {
            BackendError::Refused(format!(
                "the group of {} cannot be merged: its memory {} breaks a rule of new memories ({e})",
                group.join(", "),
                members[merge::keeper(&members)].id
            ))
        })?;
        let links: Vec<RelationshipRow> = group
            .iter()
            .map(|old| {
                RelationshipRow::new(&NewRelationship::plain(
                    &id,
                    old,
                    RelationshipType::Replaces,
                ))
            })
            .collect();
        records.push(MergedRecord {
            id: id.clone(),
            title: memory.memory.title.clone(),
            updated_at: now.clone(),
            replaces: group.clone(),
            links: links.iter().map(|l| l.id.clone()).collect(),
        });
        merged.push((memory, links));
    }

    // The relationships removed: every one touching an archived memory, and the dangling
    // ones named, which must still be dangling.
    let dangling = dangling_among(conn, &selection.unlink).await?;
    if let Some(mended) = selection.unlink.iter().find(|id| !dangling.contains(id)) {
        return Err(changed(format!(
            "relationship {mended} is no longer one with an end that is not a memory"
        )));
    }
    let archived = id_list(&selection.archive);
    let unlinked = id_list(&selection.unlink);
    let removed = read_relationships(
        conn,
        "r.from_id IN (SELECT value FROM json_each(?1))
         OR r.to_id IN (SELECT value FROM json_each(?1))
         OR r.id IN (SELECT value FROM json_each(?2))",
        vec![archived, unlinked],
    )
    .await?;
    let removed_ids: Vec<String> = removed.iter().map(|r| r.id.clone()).collect();
    // Relationships that name a removed one as what replaced them lose that name (the
    // schema sets it to NULL): they are kept as they were too, for `undo` to mend.
    let naming = read_relationships(
        conn,
        "r.invalidated_by IN (SELECT value FROM json_each(?1))
         AND r.id NOT IN (SELECT value FROM json_each(?1))",
        vec![id_list(&removed_ids)],
    )
    .await?;
    let mut relationships = removed;
    relationships.extend(naming);
    let backed_up: Vec<String> = relationships.iter().map(|r| r.id.clone()).collect();
    let dangling = dangling_among(conn, &backed_up).await?;

    let merged_away: HashSet<&String> = merging.iter().collect();
    let before = Everything {
        memories: memories
            .into_iter()
            .filter(|m| merged_away.contains(&m.id) || selection.archive.contains(&m.id))
            .collect(),
        relationships,
    };
    Ok(Plan {
        merged,
        applied: Applied {
            dry_run,
            before,
            record: Record {
                applied_at: now,
                merged: records,
                archived: selection.archive.clone(),
                removed_relationships: removed_ids,
                dangling,
            },
        },
    })
}

/// Makes the merged memories and their links, then removes what is archived or unlinked.
async fn carry_out(conn: &Connection, plan: &Plan) -> Result<()> {
    for (memory, links) in &plan.merged {
        insert_memory(conn, memory).await?;
        for link in links {
            link.insert(conn).await?;
        }
    }
    let record = &plan.applied.record;
    conn.execute(
        "DELETE FROM relationships WHERE id IN (SELECT value FROM json_each(?1))",
        libsql::params![id_list(&record.removed_relationships)],
    )
    .await
    .doing("removing relationships")?;
    conn.execute(
        "DELETE FROM nodes WHERE label = 'Memory' AND id IN (SELECT value FROM json_each(?1))",
        libsql::params![id_list(&record.archived)],
    )
    .await
    .doing("archiving memories")?;
    Ok(())
}

/// The memories among `ids` that a current `REPLACES` link points at.
async fn superseded_among(conn: &Connection, ids: &[String]) -> Result<Vec<String>> {
    first_texts(
        conn,
        "SELECT DISTINCT to_id FROM relationships
         WHERE rel_type = 'REPLACES' AND valid_until IS NULL
           AND to_id IN (SELECT value FROM json_each(?1))",
        ids,
        "looking for superseded memories",
    )
    .await
}

/// The relationships among `ids` with an end that is not a memory.
pub(super) async fn dangling_among(conn: &Connection, ids: &[String]) -> Result<Vec<String>> {
    first_texts(
        conn,
        "SELECT r.id FROM relationships r
         WHERE r.id IN (SELECT value FROM json_each(?1))
           AND (NOT EXISTS (SELECT 1 FROM nodes WHERE id = r.from_id AND label = 'Memory')
                OR NOT EXISTS (SELECT 1 FROM nodes WHERE id = r.to_id AND label = 'Memory'))
         ORDER BY r.rowid",
        ids,
        "looking for relationships whose ends are gone",
    )
    .await
}

/// The first column of `sql`'s rows, given `ids` as a JSON list in `?1`.
async fn first_texts(
    conn: &Connection,
    sql: &str,
    ids: &[String],
    doing: &'static str,
) -> Result<Vec<String>> {
    let rows = conn
        .query(sql, libsql::params![id_list(ids)])
        .await
        .doing(doing)?;
    Ok(all_rows(rows, doing)
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect())
}

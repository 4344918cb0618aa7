//! Undoing an apply from its backup, in one transaction: the memories the merge made are
//! removed with their links, and every memory and relationship of the backup that is not in
//! the database is put back with its id, fields and times. What is already there is left
//! as it is, so undoing twice changes nothing the second time.
//!
//! A merged memory changed since the merge (edited, or linked to by something new) would
//! lose that change: the undo is refused instead, naming it. Relationships whose end was
//! already gone when the backup was written are put back too, ends missing, as they were:
//! the only writes this program makes with foreign keys off.

use libsql::Connection;
use serde::Serialize;

use super::apply::{Record, id_list};
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::exchange::{exists, exists_memory, insert_memory, insert_relationship};
use crate::backend::memories::delete_rows;
use crate::backend::rows::decode;
use crate::backend::{ImportBatch, TursoBackend, all_rows, begin_write, end_write, first_row};

/// What an undo did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Undone {
    pub dry_run: bool,
    /// The merged memories removed.
    pub merged_removed: Vec<String>,
    /// Merged memories no longer in the database (an earlier undo removed them).
    pub merged_already_gone: Vec<String>,
    pub memories_restored: u64,
    /// Memories of the backup already in the database, left as they are.
    pub memories_already_there: u64,
    pub relationships_restored: u64,
    pub relationships_already_there: u64,
    /// Relationships left out because an end that was a memory is gone since.
    pub relationships_left_out: Vec<String>,
}

impl TursoBackend {
    /// Undoes the apply that wrote `batch` and `record` (read from its backup).
    pub async fn undo_consolidation(
        &self,
        batch: &ImportBatch,
        record: &Record,
        dry_run: bool,
    ) -> Result<Undone> {
        let conn = self.conn.lock().await;
        // Foreign keys can only be switched outside a transaction, and only a relationship
        // that was already dangling needs them off: they are on again before any answer.
        conn.execute("PRAGMA foreign_keys = OFF", ())
            .await
            .doing("preparing to undo")?;
        let outcome = async {
            let tx = begin_write(&conn, "undoing a consolidation").await?;
            let outcome = undo(&tx, batch, record, dry_run).await;
            if dry_run && outcome.is_ok() {
                tx.rollback().await.doing("ending a dry run")?;
                return outcome;
            }
            end_write(tx, outcome, "undoing a consolidation").await
        }
        .await;
        let on = conn
            .execute("PRAGMA foreign_keys = ON", ())
            .await
            .doing("ending an undo");
        let undone = outcome?;
        on?;
        drop(conn);
        if !dry_run {
            self.after_write();
        }
        Ok(undone)
    }
}

async fn undo(
    conn: &Connection,
    batch: &ImportBatch,
    record: &Record,
    dry_run: bool,
) -> Result<Undone> {
    let mut undone = Undone {
        dry_run,
        ..Default::default()
    };
    for merged in &record.merged {
        let Some(row) = first_row(
            conn,
            "SELECT properties FROM nodes WHERE id = ?1 AND label = 'Memory'",
            libsql::params![merged.id.as_str()],
            "reading a merged memory",
        )
        .await?
        else {
            undone.merged_already_gone.push(merged.id.clone());
            continue;
        };
        let now = decode(&merged.id, row.str(0))?;
        if now.updated_at != merged.updated_at {
            return Err(refused(
                merged,
                &format!("was changed after the merge (updated {})", now.updated_at),
            ));
        }
        let rows = conn
            .query(
                "SELECT id FROM relationships WHERE (from_id = ?1 OR to_id = ?1)
                   AND id NOT IN (SELECT value FROM json_each(?2))",
                libsql::params![merged.id.as_str(), id_list(&merged.links)],
            )
            .await
            .doing("reading a merged memory's relationships")?;
        if let Some(other) = all_rows(rows, "reading a merged memory's relationships")
            .await?
            .first()
        {
            return Err(refused(
                merged,
                &format!(
                    "has a relationship made after the merge ({})",
                    other.text(0)
                ),
            ));
        }
        delete_rows(conn, &merged.id).await?;
        undone.merged_removed.push(merged.id.clone());
    }

    for m in &batch.memories {
        if exists(conn, "nodes", &m.id).await? {
            undone.memories_already_there += 1;
        } else {
            insert_memory(conn, m).await?;
            undone.memories_restored += 1;
        }
    }

    let in_file: Vec<&str> = batch
        .relationships
        .iter()
        .filter_map(|r| r.id.as_deref())
        .collect();
    for r in &batch.relationships {
        let id = r.id.as_deref().unwrap_or_default();
        if exists(conn, "relationships", id).await? {
            undone.relationships_already_there += 1;
            continue;
        }
        let was_dangling = record.dangling.iter().any(|d| d == id);
        let ends = exists_memory(conn, &r.from_id).await? && exists_memory(conn, &r.to_id).await?;
        if !ends && !was_dangling {
            undone.relationships_left_out.push(id.to_string());
            continue;
        }
        let invalidated_by = match &r.invalidated_by {
            Some(by) if in_file.contains(&by.as_str()) => Some(by.as_str()),
            Some(by) if exists(conn, "relationships", by).await? => Some(by.as_str()),
            _ => None,
        };
        insert_relationship(conn, r, invalidated_by).await?;
        undone.relationships_restored += 1;
    }
    // A relationship that named a removed one as what replaced it lost that name when the
    // other went; it names it again.
    for r in &batch.relationships {
        if let (Some(id), Some(by)) = (&r.id, &r.invalidated_by) {
            conn.execute(
                "UPDATE relationships SET invalidated_by = ?2
                 WHERE id = ?1 AND invalidated_by IS NULL
                   AND EXISTS (SELECT 1 FROM relationships WHERE id = ?2)",
                libsql::params![id.as_str(), by.as_str()],
            )
            .await
            .doing("mending a relationship")?;
        }
    }
    Ok(undone)
}

fn refused(merged: &super::apply::MergedRecord, why: &str) -> BackendError {
    BackendError::Refused(format!(
        "memory {} ({}), made by the merge, {why}: undoing would lose that, so nothing was undone. \
         Delete that memory yourself if it should go, then undo again",
        merged.id, merged.title
    ))
}

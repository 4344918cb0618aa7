//! The write API. In both modes a write is a local transaction on the working file and is
//! answered once it is durable there; in replica mode the sync task pushes it to the
//! primary afterwards, so no write waits for the network.

use crate::backend::TursoBackend;
use crate::backend::error::{DbContext, Result};
use crate::backend::memories::StoredMemory;
use crate::backend::queue::RelationshipRow;
use crate::model::{
    Memory, MemoryPatch, NewMemory, NewRelationship, Relationship, RelationshipType, now_iso,
};

/// What a write did.
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    /// Replica mode, with the primary unreachable: the write is kept here and reaches the
    /// primary when it is back.
    pub queued: bool,
}

impl TursoBackend {
    /// Whether a write made now waits here for the primary: replica mode while the last
    /// contact with the primary failed, or while syncing is stopped. (Before any contact,
    /// nothing says it is away.)
    pub(crate) async fn waits_for_primary(&self) -> bool {
        match self.sync_status().await {
            Some(s) => s.consecutive_failures > 0 || s.diverged.is_some(),
            None => false,
        }
    }

    fn outcome<T>(&self, value: T, queued: bool) -> Written<T> {
        Written { value, queued }
    }

    /// Stores a memory; see [`TursoBackend::store_online`] for duplicates and supersession.
    pub async fn store_memory(
        &self,
        new: NewMemory,
        supersedes: Option<&str>,
    ) -> Result<StoredMemory> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_iso();
        let link = supersedes.map(|old| replaces(&id, old));
        let mut stored = self.store_online(&id, &now, &new, link.as_ref()).await?;
        stored.queued = (!stored.duplicate || link.is_some()) && self.waits_for_primary().await;
        Ok(stored)
    }

    /// Changes the given fields of a memory and bumps `updated_at`.
    pub async fn update_memory(&self, id: &str, patch: &MemoryPatch) -> Result<Written<Memory>> {
        let memory = self.update_online(id, patch, &now_iso()).await?;
        Ok(self.outcome(memory, self.waits_for_primary().await))
    }

    /// Removes a memory and every relationship that touches it; returns how many
    /// relationships went with it.
    pub async fn delete_memory(&self, id: &str) -> Result<Written<u64>> {
        let removed = self.delete_online(id).await?;
        Ok(self.outcome(removed, self.waits_for_primary().await))
    }

    /// Creates a relationship (see [`TursoBackend::relate_online`]); the boolean says
    /// whether it is new.
    pub async fn create_relationship(
        &self,
        new: NewRelationship,
    ) -> Result<Written<(Relationship, bool)>> {
        self.create_relationship_with(new, self.allow_cycles).await
    }

    /// Creates a relationship, closing a cycle only when `allow_cycles` (each client's
    /// MEMORY_ALLOW_CYCLES, when several go through one owner).
    pub async fn create_relationship_with(
        &self,
        new: NewRelationship,
        allow_cycles: bool,
    ) -> Result<Written<(Relationship, bool)>> {
        let row = RelationshipRow::new(&new);
        let made = self.relate_online(&new, &row, allow_cycles).await?;
        let queued = made.1 && self.waits_for_primary().await;
        Ok(self.outcome(made, queued))
    }
}

impl TursoBackend {
    /// Ends a relationship: it stops being current (`valid_until` now; `invalidated_by`
    /// stays empty, as it names only a relationship that replaced this one), so it is no
    /// longer listed, drawn or walked, and its row stays as history (exports carry it).
    /// False when no current relationship has that id.
    pub async fn end_relationship(&self, id: &str) -> Result<Written<bool>> {
        let now = now_iso();
        let ended = {
            let conn = self.conn.lock().await;
            crate::backend::in_write(&conn, "ending a relationship", async |tx| {
                let changed = tx
                    .execute(
                        "UPDATE relationships
                         SET valid_until = ?2, properties = json_set(properties, '$.valid_until', ?2)
                         WHERE id = ?1 AND valid_until IS NULL",
                        libsql::params![id, now.as_str()],
                    )
                    .await
                    .doing("ending a relationship")?;
                Ok(changed > 0)
            })
            .await?
        };
        if ended {
            self.after_write();
        }
        Ok(self.outcome(ended, ended && self.waits_for_primary().await))
    }
}

/// The `REPLACES` link from a new memory to the one it supersedes.
fn replaces(id: &str, old: &str) -> RelationshipRow {
    RelationshipRow::new(&NewRelationship::plain(id, old, RelationshipType::Replaces))
}

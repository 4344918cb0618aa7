//! The public write API and what replica mode adds to it: a write goes to the primary when
//! it is reachable, and to the durable offline queue when it is not (or while older writes
//! still wait there, to keep their order). `sync` replays the queue; reads of a memory
//! overlay what is still queued for it.

use std::time::Instant;

use serde_json::{Map, Value};

use super::codec;
use super::error::{BackendError, DbContext, Result};
use super::memories::{StoredMemory, decode, load_properties};
use super::queue::{PatchRecord, RelationshipRow, WriteOp};
use super::replica::is_unreachable;
use super::{TursoBackend, first_row};
use crate::model::{
    InvalidInput, Memory, MemoryPatch, NewMemory, NewRelationship, Relationship, RelationshipType,
    column_timestamp, now_iso,
};

/// What a write did.
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    /// The primary was unreachable: the write waits in the offline queue and reaches the
    /// primary when it is back.
    pub queued: bool,
}

fn online<T>(value: T) -> Written<T> {
    Written {
        value,
        queued: false,
    }
}

fn queued<T>(value: T) -> Written<T> {
    Written {
        value,
        queued: true,
    }
}

/// What a replay of the queue did.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct ReplayReport {
    pub applied: u64,
    pub conflicts: u64,
}

impl From<&MemoryPatch> for PatchRecord {
    fn from(p: &MemoryPatch) -> Self {
        PatchRecord {
            title: p.title.clone(),
            content: p.content.clone(),
            summary: p.summary.clone().flatten(),
            clear_summary: matches!(p.summary, Some(None)),
            tags: p.tags.clone(),
            importance: p.importance,
        }
    }
}

impl From<&PatchRecord> for MemoryPatch {
    fn from(p: &PatchRecord) -> Self {
        MemoryPatch {
            title: p.title.clone(),
            content: p.content.clone(),
            summary: if p.clear_summary {
                Some(None)
            } else {
                p.summary.clone().map(Some)
            },
            tags: p.tags.clone(),
            importance: p.importance,
        }
    }
}

impl TursoBackend {
    /// Stores a memory; see [`TursoBackend::store_online`] for duplicates and supersession.
    pub async fn store_memory(
        &self,
        new: NewMemory,
        supersedes: Option<&str>,
    ) -> Result<StoredMemory> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_iso();
        if !self.must_queue().await? {
            match self.store_online(&id, &now, &new, supersedes).await {
                Err(e) if self.went_offline(&e) => {}
                other => return other,
            }
        }
        if let Some(old) = supersedes {
            self.memory_anywhere(old).await.map_err(|_| {
                BackendError::Invalid(InvalidInput::new(
                    "supersedes",
                    format!("no memory with id {old}"),
                ))
            })?;
        }
        let properties = codec::encode_new_memory(&id, &new, &now);
        let supersedes = supersedes.map(|old| {
            RelationshipRow::new(&NewRelationship {
                from_id: id.clone(),
                to_id: old.to_string(),
                rel_type: RelationshipType::Replaces,
                strength: RelationshipType::Replaces.default_strength(),
                confidence: RelationshipType::Replaces.default_confidence(),
                context: None,
            })
        });
        self.queue()?
            .push(&WriteOp::Store {
                id: id.clone(),
                properties: properties.clone(),
                column_time: column_timestamp(&now),
                supersedes,
            })
            .await?;
        Ok(StoredMemory {
            memory: decode(&id, &properties)?,
            duplicate: false,
            queued: true,
        })
    }

    /// Changes the given fields of a memory and bumps `updated_at`.
    pub async fn update_memory(&self, id: &str, patch: &MemoryPatch) -> Result<Written<Memory>> {
        let now = now_iso();
        if !self.must_queue().await? {
            match self.update_online(id, patch, &now).await {
                Err(e) if self.went_offline(&e) => {}
                other => return other.map(online),
            }
        }
        let current = self.memory_anywhere(id).await?;
        let properties = self.properties_anywhere(id).await?;
        let updated = codec::apply_patch(&properties, patch, &now).map_err(|source| {
            BackendError::CorruptRow {
                what: "memory",
                id: id.to_string(),
                source,
            }
        })?;
        self.queue()?
            .push(&WriteOp::Update {
                id: id.to_string(),
                patch: PatchRecord::from(patch),
                base_updated_at: current.updated_at.clone(),
                updated_at: now,
            })
            .await?;
        Ok(queued(decode(id, &updated)?))
    }

    /// Removes a memory and every relationship that touches it; returns how many
    /// relationships went with it (as far as known, when queued).
    pub async fn delete_memory(&self, id: &str) -> Result<Written<u64>> {
        if !self.must_queue().await? {
            match self.delete_online(id).await {
                Err(e) if self.went_offline(&e) => {}
                other => return other.map(online),
            }
        }
        self.memory_anywhere(id).await?;
        let links = {
            let conn = self.conn.lock().await;
            super::scalar_i64(
                &conn,
                "SELECT count(*) FROM relationships WHERE from_id = ?1 OR to_id = ?1",
                vec![id.into()],
                "counting relationships",
            )
            .await?
        };
        self.queue()?
            .push(&WriteOp::Delete { id: id.to_string() })
            .await?;
        Ok(queued(links.max(0) as u64))
    }

    /// Creates a relationship (see [`TursoBackend::relate_online`]); the boolean says
    /// whether it is new.
    pub async fn create_relationship(
        &self,
        new: NewRelationship,
    ) -> Result<Written<(Relationship, bool)>> {
        if !self.must_queue().await? {
            match self.relate_online(&new).await {
                Err(e) if self.went_offline(&e) => {}
                other => return other.map(online),
            }
        }
        for end in [&new.from_id, &new.to_id] {
            self.memory_anywhere(end).await?;
        }
        if new.from_id == new.to_id && !self.allow_cycles {
            return Err(BackendError::Refused(format!(
                "Cannot create relationship {} → {}: a memory cannot be linked to itself unless MEMORY_ALLOW_CYCLES=true",
                new.from_id, new.to_id
            )));
        }
        let row = RelationshipRow::new(&new);
        self.queue()?.push(&WriteOp::Relate(row.clone())).await?;
        let relationship = codec::decode_relationship(codec::RelationshipRow {
            id: row.id,
            from_id: row.from_id,
            to_id: row.to_id,
            rel_type: row.rel_type,
            properties: row.properties,
            valid_from: Some(row.at),
            valid_until: None,
        });
        Ok(queued((relationship, true)))
    }

    /// Replays the offline queue in order, each write in its own transaction on the
    /// primary. Stops at the first write the primary cannot be reached for.
    pub(super) async fn replay(&self) -> Result<ReplayReport> {
        let Some(replica) = &self.replica else {
            return Ok(ReplayReport::default());
        };
        let mut report = ReplayReport::default();
        for (seq, op) in replica.queue.pending().await? {
            let conn = self.conn.lock().await;
            let outcome = apply(&conn, &op).await;
            drop(conn);
            match outcome {
                Ok(Applied::Done) => {
                    replica.queue.done(seq).await?;
                    report.applied += 1;
                }
                Ok(Applied::Conflict {
                    reason,
                    primary_version,
                }) => {
                    tracing::warn!(memory = op.subject(), "queued write conflicts: {reason}");
                    replica
                        .queue
                        .conflict(seq, &op, &reason, primary_version.as_deref())
                        .await?;
                    report.conflicts += 1;
                }
                Err(e) => return Err(e),
            }
        }
        if report.applied + report.conflicts > 0 {
            tracing::info!(
                applied = report.applied,
                conflicts = report.conflicts,
                "replayed the offline queue"
            );
            self.after_write();
        }
        Ok(report)
    }

    /// True when a write must go to the queue without trying the primary: the primary is
    /// known to be away, or older writes still wait (order matters).
    pub(super) async fn must_queue(&self) -> Result<bool> {
        let Some(replica) = &self.replica else {
            return Ok(false);
        };
        Ok(!replica.status().online || !replica.queue.is_empty().await?)
    }

    /// True (and the sync state updated) when a write failed because the primary is away.
    fn went_offline(&self, e: &BackendError) -> bool {
        match &self.replica {
            Some(replica) if is_unreachable(e) => {
                replica.record(Instant::now(), Err(replica.describe(e)));
                true
            }
            _ => false,
        }
    }

    fn queue(&self) -> Result<&super::queue::Queue> {
        self.replica.as_ref().map(|r| &r.queue).ok_or_else(|| {
            BackendError::Refused("the offline queue exists only in replica mode".into())
        })
    }

    /// A memory's properties from the replica, or from a store still in the queue, with
    /// the queued updates applied.
    async fn properties_anywhere(&self, id: &str) -> Result<String> {
        let from_replica = {
            let conn = self.conn.lock().await;
            load_properties(&conn, id).await
        };
        let Some(replica) = &self.replica else {
            return from_replica;
        };
        let mut properties = match from_replica {
            Ok(p) => Some(p),
            Err(BackendError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        for (_, op) in replica.queue.pending().await? {
            match op {
                WriteOp::Store {
                    id: stored,
                    properties: p,
                    ..
                } if stored == id => properties = Some(p),
                WriteOp::Update {
                    id: updated,
                    patch,
                    updated_at,
                    ..
                } if updated == id => {
                    if let Some(current) = &properties {
                        properties =
                            codec::apply_patch(current, &MemoryPatch::from(&patch), &updated_at)
                                .ok();
                    }
                }
                WriteOp::Delete { id: deleted } if deleted == id => properties = None,
                _ => {}
            }
        }
        properties.ok_or_else(|| BackendError::NotFound {
            what: "Memory",
            id: id.to_string(),
        })
    }

    /// A memory as this machine knows it, queued writes included.
    pub(super) async fn memory_anywhere(&self, id: &str) -> Result<Memory> {
        decode(id, &self.properties_anywhere(id).await?)
    }

    /// The queued writes and the conflicts (replica mode).
    pub async fn queue_state(
        &self,
        conflicts_shown: u32,
    ) -> Result<Option<(i64, i64, Vec<super::queue::Conflict>)>> {
        let Some(replica) = &self.replica else {
            return Ok(None);
        };
        let pending = replica.queue.len().await?;
        let (conflicts, list) = replica.queue.conflicts(conflicts_shown).await?;
        Ok(Some((pending, conflicts, list)))
    }
}

enum Applied {
    Done,
    Conflict {
        reason: String,
        primary_version: Option<String>,
    },
}

/// Applies one queued write on the primary, idempotently: a write already there (same
/// id, same `updated_at`) is not applied twice.
async fn apply(conn: &libsql::Connection, op: &WriteOp) -> Result<Applied> {
    let tx = super::begin_write(conn, "replaying a queued write").await?;
    let outcome = match op {
        WriteOp::Store {
            id,
            properties,
            column_time,
            supersedes,
        } => {
            tx.execute(
                "INSERT OR IGNORE INTO nodes (id, label, properties, created_at, updated_at) VALUES (?1, 'Memory', ?2, ?3, ?3)",
                libsql::params![id.as_str(), properties.as_str(), column_time.as_str()],
            )
            .await
            .doing("replaying a store")?;
            match supersedes {
                Some(row) if exists(&tx, "nodes", &row.to_id).await? => {
                    row.insert(&tx).await?;
                    Applied::Done
                }
                Some(row) => Applied::Conflict {
                    reason: format!(
                        "memory {id} was stored, but the memory it supersedes ({}) was deleted meanwhile, so no REPLACES link was made",
                        row.to_id
                    ),
                    primary_version: None,
                },
                None => Applied::Done,
            }
        }
        WriteOp::Update {
            id,
            patch,
            base_updated_at,
            updated_at,
        } => {
            match first_row(
                &tx,
                "SELECT properties FROM nodes WHERE id = ?1 AND label = 'Memory'",
                libsql::params![id.as_str()],
                "replaying an update",
            )
            .await?
            {
                None => Applied::Conflict {
                    reason: format!(
                        "memory {id} was deleted on the primary before this offline update reached it"
                    ),
                    primary_version: None,
                },
                Some(row) => {
                    let current = row.text(0);
                    let current_updated = serde_json::from_str::<Map<String, Value>>(&current)
                        .ok()
                        .and_then(|p| {
                            p.get("updated_at")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                        .unwrap_or_default();
                    if &current_updated == updated_at {
                        Applied::Done
                    } else if &current_updated != base_updated_at {
                        Applied::Conflict {
                            reason: format!(
                                "memory {id} changed on the primary (updated {current_updated}) after this offline update was made \
                                 (to the version of {base_updated_at}); the primary's version is kept"
                            ),
                            primary_version: Some(current),
                        }
                    } else {
                        let updated =
                            codec::apply_patch(&current, &MemoryPatch::from(patch), updated_at)
                                .map_err(|source| BackendError::CorruptRow {
                                    what: "memory",
                                    id: id.clone(),
                                    source,
                                })?;
                        tx.execute(
                            "UPDATE nodes SET properties = ?2, updated_at = ?3 WHERE id = ?1",
                            libsql::params![id.as_str(), updated, column_timestamp(updated_at)],
                        )
                        .await
                        .doing("replaying an update")?;
                        Applied::Done
                    }
                }
            }
        }
        WriteOp::Delete { id } => {
            tx.execute(
                "DELETE FROM relationships WHERE from_id = ?1 OR to_id = ?1",
                libsql::params![id.as_str()],
            )
            .await
            .doing("replaying a delete")?;
            tx.execute(
                "DELETE FROM nodes WHERE id = ?1 AND label = 'Memory'",
                libsql::params![id.as_str()],
            )
            .await
            .doing("replaying a delete")?;
            Applied::Done
        }
        WriteOp::Relate(row) => {
            if exists(&tx, "relationships", &row.id).await? {
                Applied::Done
            } else if !exists(&tx, "nodes", &row.from_id).await?
                || !exists(&tx, "nodes", &row.to_id).await?
            {
                Applied::Conflict {
                    reason: format!(
                        "relationship {} {} → {} was not made: one of its memories was deleted meanwhile",
                        row.rel_type, row.from_id, row.to_id
                    ),
                    primary_version: None,
                }
            } else {
                row.insert(&tx).await?;
                Applied::Done
            }
        }
    };
    tx.commit().await.doing("committing a replayed write")?;
    Ok(outcome)
}

async fn exists(conn: &libsql::Connection, table: &'static str, id: &str) -> Result<bool> {
    Ok(first_row(
        conn,
        &format!("SELECT 1 FROM {table} WHERE id = ?1"),
        libsql::params![id],
        "checking a row",
    )
    .await?
    .is_some())
}

//! The public write API and what replica mode adds to it: a write goes to the primary when
//! it is reachable, and to the durable offline queue when it is not (or while older writes
//! still wait there, to keep their order). `sync` replays the queue; reads of a memory
//! overlay what is still queued for it.

use std::time::Instant;

use serde_json::{Map, Value};

use super::known::apply_to;
use super::queue::{PatchRecord, RelationshipRow, WriteOp};
use super::replica::may_succeed_later;
use crate::backend::codec;
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::graph::{cycle_refusal, find_same_link, would_close_cycle};
use crate::backend::memories::{StoredMemory, apply_patch, decode, delete_rows, load_properties};
use crate::backend::{TursoBackend, first_row};
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
    /// Offline, the same rules run against what this machine knows (the replica with the
    /// queued writes applied).
    pub async fn store_memory(
        &self,
        new: NewMemory,
        supersedes: Option<&str>,
    ) -> Result<StoredMemory> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_iso();
        // Decided once, so a write retried from the queue after a lost answer is the same
        // write (same ids), and replaying it changes nothing.
        let link = supersedes.map(|old| replaces(&id, old));
        if !self.must_queue().await? {
            if link.is_none() {
                match self.store_in_one_request(&id, &now, &new).await {
                    Ok(Some(stored)) => return Ok(stored),
                    // A duplicate, or a primary that is not the one this replica knows:
                    // the transaction below tells which, after the identity check.
                    Ok(None) => {}
                    Err(e) if self.went_offline(&e) => {
                        return self.store_queued(&id, &now, new, None).await;
                    }
                    Err(e) => return Err(e),
                }
                if let Some(replica) = &self.replica
                    && let Err(e) = self.check_primary(replica, super::replica::PULL_WAIT).await
                {
                    if !self.went_offline(&e) && !matches!(e, BackendError::Diverged(_)) {
                        return Err(e);
                    }
                    return self.store_queued(&id, &now, new, None).await;
                }
            }
            match self.store_online(&id, &now, &new, link.as_ref()).await {
                Err(e) if self.went_offline(&e) => {}
                other => return self.pulled(other).await,
            }
        }
        self.store_queued(&id, &now, new, link).await
    }

    /// Replica mode, a store without `supersedes`: one statement on the primary, so one
    /// request. It inserts only when no identical memory exists and only when the primary
    /// is still the database this replica came from and not behind it (its id and change
    /// count, the check a pull needs, made in the same statement); the pull that follows
    /// needs no separate identity check then. `None` when it inserted nothing (a duplicate,
    /// or a primary that failed the check) or when this replica does not know its
    /// primary's id yet: the caller takes the transactional path.
    async fn store_in_one_request(
        &self,
        id: &str,
        now: &str,
        new: &NewMemory,
    ) -> Result<Option<StoredMemory>> {
        let Some(replica) = &self.replica else {
            return Ok(None);
        };
        let Some(primary_id) = replica.queue.state(super::replica::PRIMARY_ID).await? else {
            return Ok(None);
        };
        let seen = self.local_changes(replica).await;
        let properties = codec::encode_new_memory(id, new, now);
        let inserted = self
            .write_one(
                "storing a memory",
                GUARDED_STORE,
                libsql::params![
                    id,
                    properties.as_str(),
                    column_timestamp(now),
                    new.title.as_str(),
                    new.memory_type.as_str(),
                    new.content.as_str(),
                    primary_id.as_str(),
                    seen
                ],
            )
            .await?;
        if inserted == 0 {
            return Ok(None);
        }
        self.after_write();
        self.pull_after_checked_write().await;
        Ok(Some(StoredMemory {
            memory: decode(id, &properties)?,
            duplicate: false,
            queued: false,
        }))
    }

    /// A store decided on what this machine knows (the replica with the queued writes
    /// applied), written to the offline queue.
    async fn store_queued(
        &self,
        id: &str,
        now: &str,
        new: NewMemory,
        link: Option<RelationshipRow>,
    ) -> Result<StoredMemory> {
        let supersedes = link.as_ref().map(|l| l.to_id.clone());
        let supersedes = supersedes.as_deref();
        let (id, now) = (id.to_string(), now.to_string());
        let mut known = self.known().await?;
        if let Some(old) = supersedes
            && !known.has(old).await?
        {
            return Err(BackendError::Invalid(InvalidInput::new(
                "supersedes",
                format!("no memory with id {}", crate::model::shorten(old)),
            )));
        }
        if let Some(existing) = known.duplicate_of(&new).await? {
            // As online: what `supersedes` says of the memory still holds.
            let mut queued = false;
            if let Some(link) = link.filter(|l| l.to_id != existing.id) {
                let link = link.from(&existing.id);
                if known.same_link(&link.as_new()).await?.is_none() {
                    self.enqueue(&WriteOp::Relate(link)).await?;
                    queued = true;
                }
            }
            return Ok(StoredMemory {
                memory: existing,
                duplicate: true,
                queued,
            });
        }
        let properties = codec::encode_new_memory(&id, &new, &now);
        self.enqueue(&WriteOp::Store {
            id: id.clone(),
            properties: properties.clone(),
            column_time: column_timestamp(&now),
            supersedes: link,
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
                other => return self.pulled(other).await.map(online),
            }
        }
        let current = self.memory_anywhere(id).await?;
        let properties = self.properties_anywhere(id).await?;
        let updated = apply_patch(id, &properties, patch, &now)?;
        self.enqueue(&WriteOp::Update {
            id: id.to_string(),
            patch: PatchRecord::from(patch),
            base_updated_at: current.updated_at.clone(),
            updated_at: now,
        })
        .await?;
        Ok(queued(decode(id, &updated)?))
    }

    /// Removes a memory and every relationship that touches it; returns how many
    /// relationships went with it.
    pub async fn delete_memory(&self, id: &str) -> Result<Written<u64>> {
        if !self.must_queue().await? {
            match self.delete_online(id).await {
                Err(e) if self.went_offline(&e) => {}
                other => return self.pulled(other).await.map(online),
            }
        }
        let mut known = self.known().await?;
        let Some(properties) = known.properties(id).await? else {
            return Err(BackendError::NotFound {
                what: "Memory",
                id: id.to_string(),
            });
        };
        let links = known.links_touching(id).await?;
        let base_updated_at = decode(id, &properties)?.updated_at;
        self.enqueue(&WriteOp::Delete {
            id: id.to_string(),
            base_updated_at: Some(base_updated_at),
        })
        .await?;
        Ok(queued(links))
    }

    /// Creates a relationship (see [`TursoBackend::relate_online`]); the boolean says
    /// whether it is new. Offline, the same checks run against what this machine knows.
    pub async fn create_relationship(
        &self,
        new: NewRelationship,
    ) -> Result<Written<(Relationship, bool)>> {
        let row = RelationshipRow::new(&new);
        if !self.must_queue().await? {
            match self.relate_online(&new, &row).await {
                Err(e) if self.went_offline(&e) => {}
                other => return self.pulled(other).await.map(online),
            }
        }
        let mut known = self.known().await?;
        for end in [&new.from_id, &new.to_id] {
            if !known.has(end).await? {
                return Err(BackendError::NotFound {
                    what: "Memory",
                    id: end.to_string(),
                });
            }
        }
        if let Some(existing) = known.same_link(&new).await? {
            return Ok(queued((existing, false)));
        }
        if !self.allow_cycles && known.would_close_cycle(&new).await? {
            return Err(BackendError::Refused(cycle_refusal(&new)));
        }
        self.enqueue(&WriteOp::Relate(row.clone())).await?;
        Ok(queued((row.relationship(), true)))
    }

    /// After a write that reached the primary, pull it here before answering, so the
    /// next read sees it.
    async fn pulled<T>(&self, outcome: Result<T>) -> Result<T> {
        if outcome.is_ok() && self.replica.is_some() {
            self.pull_after_write().await;
        }
        outcome
    }

    /// Replays the offline queue in order, each write in its own transaction on the
    /// primary, with the online path's rules. Stops at the first write the primary cannot
    /// take now (unreachable, credentials); a write that can never apply goes to the
    /// conflict log with its reason, and the rest of the queue drains.
    pub(crate) async fn replay(&self) -> Result<ReplayReport> {
        match &self.replica {
            Some(replica) => self.replay_queue(&replica.queue, true).await,
            None => Ok(ReplayReport::default()),
        }
    }

    /// Replays one queue: this process's own (whose applied writes stay, for reads, until
    /// the pull that follows: `keep_until_pulled`), or one another process left behind.
    pub(crate) async fn replay_queue(
        &self,
        queue: &crate::backend::queue::Queue,
        keep_until_pulled: bool,
    ) -> Result<ReplayReport> {
        let Some(replica) = &self.replica else {
            return Ok(ReplayReport::default());
        };
        let mut report = ReplayReport::default();
        let allow_cycles = self.allow_cycles;
        for (seq, op) in queue.unapplied().await? {
            let outcome = self
                .write("replaying a queued write", async |tx| {
                    apply(tx, &op, allow_cycles).await
                })
                .await;
            let (reason, primary_version) = match outcome {
                Ok(Applied::Done) => {
                    if keep_until_pulled {
                        queue.applied(seq).await?;
                    } else {
                        queue.done(seq).await?;
                    }
                    replica.count_replayed(false);
                    report.applied += 1;
                    continue;
                }
                Ok(Applied::Conflict {
                    reason,
                    primary_version,
                }) => (reason, primary_version),
                Err(e) if may_succeed_later(&e) => return Err(e),
                Err(e) => (
                    format!(
                        "the primary refused this write and always will: {}",
                        replica.describe(&e)
                    ),
                    None,
                ),
            };
            tracing::warn!(memory = op.subject(), "queued write conflicts: {reason}");
            queue
                .conflict(seq, &op, &reason, primary_version.as_deref())
                .await?;
            replica.count_replayed(true);
            report.conflicts += 1;
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
    pub(crate) async fn must_queue(&self) -> Result<bool> {
        let Some(replica) = &self.replica else {
            return Ok(false);
        };
        let status = replica.status();
        Ok(!status.online
            || !replica.is_ready()
            || status.diverged.is_some()
            || !replica.queue.is_empty().await?)
    }

    /// True (and the sync state updated) when a write failed because the primary is away.
    fn went_offline(&self, e: &BackendError) -> bool {
        match &self.replica {
            Some(replica) if may_succeed_later(e) => {
                replica.record(Instant::now(), Err(replica.describe(e)));
                true
            }
            _ => false,
        }
    }

    /// Queues a write durably and wakes the sync task to try the primary again.
    async fn enqueue(&self, op: &WriteOp) -> Result<()> {
        self.queue()?.push(op).await?;
        self.written.notify_one();
        Ok(())
    }

    fn queue(&self) -> Result<&crate::backend::queue::Queue> {
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
            if op.subject() == id || matches!(&op, WriteOp::Store { id: s, .. } if s == id) {
                properties = apply_to(properties, &op);
            }
        }
        properties.ok_or_else(|| BackendError::NotFound {
            what: "Memory",
            id: id.to_string(),
        })
    }

    /// A memory as this machine knows it, queued writes included.
    pub(crate) async fn memory_anywhere(&self, id: &str) -> Result<Memory> {
        decode(id, &self.properties_anywhere(id).await?)
    }

    /// The queued writes and the conflicts (replica mode).
    pub async fn queue_state(
        &self,
        conflicts_shown: u32,
    ) -> Result<Option<(i64, i64, Vec<crate::backend::queue::Conflict>)>> {
        let Some(replica) = &self.replica else {
            return Ok(None);
        };
        let pending = replica.queue.len().await?;
        let (conflicts, list) = replica.queue.conflicts(conflicts_shown).await?;
        Ok(Some((pending, conflicts, list)))
    }
}

/// The store of [`TursoBackend::store_in_one_request`]: the row, unless an identical memory
/// exists or the primary is not the database `?7` with at least `?8` changes.
const GUARDED_STORE: &str = "INSERT INTO nodes (id, label, properties, created_at, updated_at)
     SELECT ?1, 'Memory', ?2, ?3, ?3
     WHERE (SELECT value FROM memorygraph_meta WHERE key = 'database_id') = ?7
       AND (SELECT CAST(value AS INTEGER) FROM memorygraph_meta WHERE key = 'changes') >= ?8
       AND NOT EXISTS (SELECT 1 FROM nodes
                       WHERE label = 'Memory' AND json_extract(properties, '$.title') = ?4
                         AND json_extract(properties, '$.type') = ?5
                         AND json_extract(properties, '$.content') = ?6)";

/// The `REPLACES` link from a new memory to the one it supersedes.
fn replaces(id: &str, old: &str) -> RelationshipRow {
    let replaces = RelationshipType::Replaces;
    RelationshipRow::new(&NewRelationship {
        from_id: id.to_string(),
        to_id: old.to_string(),
        rel_type: replaces,
        strength: replaces.default_strength(),
        confidence: replaces.default_confidence(),
        context: None,
    })
}

enum Applied {
    Done,
    Conflict {
        reason: String,
        primary_version: Option<String>,
    },
}

/// Applies one queued write on the primary with the online path's rules, idempotently: a
/// write already there (same id, same `updated_at`) is not applied twice, so a write whose
/// first attempt committed but whose answer was lost changes nothing the second time.
async fn apply(tx: &libsql::Connection, op: &WriteOp, allow_cycles: bool) -> Result<Applied> {
    Ok(match op {
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
                Some(row) if exists(tx, "nodes", &row.to_id).await? => {
                    row.insert(tx).await?;
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
        } => match current_version(tx, id).await? {
            None => Applied::Conflict {
                reason: format!(
                    "memory {id} was deleted on the primary before this offline update reached it"
                ),
                primary_version: None,
            },
            Some((current, current_updated)) => {
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
                    let updated = apply_patch(id, &current, &MemoryPatch::from(patch), updated_at)?;
                    tx.execute(
                        "UPDATE nodes SET properties = ?2, updated_at = ?3 WHERE id = ?1",
                        libsql::params![id.as_str(), updated, column_timestamp(updated_at)],
                    )
                    .await
                    .doing("replaying an update")?;
                    Applied::Done
                }
            }
        },
        WriteOp::Delete {
            id,
            base_updated_at,
        } => match current_version(tx, id).await? {
            None => Applied::Done,
            Some((current, current_updated))
                if base_updated_at
                    .as_ref()
                    .is_some_and(|base| *base != current_updated) =>
            {
                Applied::Conflict {
                    reason: format!(
                        "memory {id} changed on the primary (updated {current_updated}) after this offline delete was made \
                         (of the version of {}); the primary's version is kept",
                        base_updated_at.as_deref().unwrap_or_default()
                    ),
                    primary_version: Some(current),
                }
            }
            Some(_) => {
                delete_rows(tx, id).await?;
                Applied::Done
            }
        },
        WriteOp::Relate(row) => {
            let new = row.as_new();
            if exists(tx, "relationships", &row.id).await? {
                Applied::Done
            } else if !exists(tx, "nodes", &row.from_id).await?
                || !exists(tx, "nodes", &row.to_id).await?
            {
                Applied::Conflict {
                    reason: format!(
                        "relationship {} {} → {} was not made: one of its memories was deleted meanwhile",
                        row.rel_type, row.from_id, row.to_id
                    ),
                    primary_version: None,
                }
            } else if find_same_link(tx, &new).await?.is_some() {
                // The online rule: an identical current link stands for this one.
                Applied::Done
            } else if !allow_cycles && would_close_cycle(tx, &new).await? {
                Applied::Conflict {
                    reason: format!(
                        "relationship {} was not made: {}",
                        row.id,
                        cycle_refusal(&new)
                    ),
                    primary_version: None,
                }
            } else {
                row.insert(tx).await?;
                Applied::Done
            }
        }
    })
}

/// A memory's properties and `updated_at` on the primary, if it is there.
async fn current_version(tx: &libsql::Connection, id: &str) -> Result<Option<(String, String)>> {
    let Some(row) = first_row(
        tx,
        "SELECT properties FROM nodes WHERE id = ?1 AND label = 'Memory'",
        libsql::params![id],
        "reading a memory on the primary",
    )
    .await?
    else {
        return Ok(None);
    };
    let current = row.text(0);
    let updated = serde_json::from_str::<Map<String, Value>>(&current)
        .ok()
        .and_then(|p| {
            p.get("updated_at")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    Ok(Some((current, updated)))
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

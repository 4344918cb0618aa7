//! Storing, reading, changing and removing memories.

use std::collections::BTreeMap;

use libsql::{Connection, Value};
use serde::Serialize;

use super::codec::{self};
use super::error::{BackendError, DbContext, Result};
use super::queue::RelationshipRow;
use super::rows::{
    RELATIONSHIP_COLUMNS, decode, load_memory, load_properties, query_memories,
    relationship_from_row,
};
use super::{TursoBackend, all_rows, first_row, scalar_i64};
use crate::model::{Memory, MemoryPatch, NewMemory, Relationship, column_timestamp, now_iso};

/// The outcome of a store.
#[derive(Debug, Clone)]
pub struct StoredMemory {
    pub memory: Memory,
    /// An identical memory existed already and is returned instead of a new one.
    pub duplicate: bool,
    /// Replica mode, the primary out of reach: the store waits here for it.
    pub queued: bool,
}

/// What happened in the last days, for a session briefing.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RecentActivity {
    pub days: u32,
    pub project: Option<String>,
    pub total_count: i64,
    pub memories_by_type: BTreeMap<String, i64>,
    /// The newest memories of the period, newest first: one page of at most 20.
    pub recent_memories: Vec<Memory>,
    /// How many problems and errors of the period are unresolved.
    pub unresolved_total: i64,
    /// Problems and errors of the period that nothing `SOLVES` or `ADDRESSES` yet.
    pub unresolved_problems: Vec<Memory>,
}

/// Most memories per list in one page of recent activity.
pub const RECENT_LIMIT: u32 = 20;

impl TursoBackend {
    /// Stores a new memory (id and time chosen by the caller) and returns it as it will be
    /// read back. A memory identical in type, title and content is returned instead of
    /// storing a second copy. With `supersedes`, the new memory `REPLACES` that one.
    pub(super) async fn store_online(
        &self,
        id: &str,
        now: &str,
        new: &NewMemory,
        supersedes: Option<&RelationshipRow>,
    ) -> Result<StoredMemory> {
        let properties = codec::encode_new_memory(id, new, now);
        let column_time = column_timestamp(now);
        let stored = self
            .write("starting a store", async |tx| {
                if let Some(link) = supersedes {
                    load_properties(tx, &link.to_id)
                        .await
                        .map_err(|e| no_superseded_memory(e, &link.to_id))?;
                }
                if let Some(existing) = self.find_duplicate(tx, new).await? {
                    // The memory exists already; what `supersedes` says of it still holds.
                    if let Some(link) = supersedes.filter(|l| l.to_id != existing.id) {
                        let link = link.from(&existing.id);
                        if super::graph::find_same_link(tx, &link.as_new())
                            .await?
                            .is_none()
                        {
                            link.insert(tx).await?;
                        }
                    }
                    return Ok(Some(existing));
                }
                self.execute_kept(
                    tx,
                    INSERT_MEMORY,
                    libsql::params![id, properties.as_str(), column_time.as_str()],
                    "storing a memory",
                )
                .await?;
                if let Some(link) = supersedes {
                    link.insert(tx).await?;
                }
                Ok(None)
            })
            .await?;
        if let Some(existing) = stored {
            if supersedes.is_some() {
                self.after_write();
            }
            return Ok(StoredMemory {
                memory: existing,
                duplicate: true,
                queued: false,
            });
        }
        self.after_write();
        Ok(StoredMemory {
            memory: decode(id, &properties)?,
            duplicate: false,
            queued: false,
        })
    }

    /// Reads one memory and, if asked, its current relationships.
    pub async fn get_memory(
        &self,
        id: &str,
        with_relationships: bool,
    ) -> Result<(Memory, Vec<Relationship>)> {
        let conn = self.conn.lock().await;
        let mut memory = load_memory(&conn, id).await?;
        self.count_use(&conn, &[id]).await;
        if let Some(usage) = first_row(
            &conn,
            "SELECT usage_count, last_accessed FROM memory_usage WHERE memory_id = ?1",
            libsql::params![id],
            "reading usage",
        )
        .await?
        {
            memory.usage_count += usage.int(0);
            memory.last_accessed = usage.opt_text(1).or(memory.last_accessed);
        }
        if let Some((count, last)) = self.pending_use(id) {
            memory.usage_count += count;
            memory.last_accessed = Some(last);
        }
        let relationships = if with_relationships {
            relationships_of(&conn, id).await?
        } else {
            Vec::new()
        };
        Ok((memory, relationships))
    }

    /// Changes the given fields of a memory and sets `updated_at` to `now`.
    pub(super) async fn update_online(
        &self,
        id: &str,
        patch: &MemoryPatch,
        now: &str,
    ) -> Result<Memory> {
        let updated = self
            .write("starting an update", async |tx| {
                let properties = load_properties(tx, id).await?;
                let updated = apply_patch(id, &properties, patch, now)?;
                tx.execute(
                    "UPDATE nodes SET properties = ?2, updated_at = ?3 WHERE id = ?1 AND label = 'Memory'",
                    libsql::params![id, updated.as_str(), column_timestamp(now)],
                )
                .await
                .doing("updating a memory")?;
                Ok(updated)
            })
            .await?;
        self.after_write();
        decode(id, &updated)
    }

    /// Removes a memory and every relationship that touches it; returns how many
    /// relationships went with it.
    pub(super) async fn delete_online(&self, id: &str) -> Result<u64> {
        let removed = self
            .write("starting a delete", async |tx| {
                load_properties(tx, id).await?;
                let removed = delete_rows(tx, id).await?;
                super::calls::note_outcome(removed.into());
                Ok(removed)
            })
            .await?;
        self.after_write();
        Ok(removed)
    }

    /// Summarises the memories created in the last `days` days, optionally for one project.
    pub async fn recent_activity(
        &self,
        days: u32,
        project: Option<&str>,
        offset: u32,
    ) -> Result<RecentActivity> {
        let since = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
        let since = crate::model::iso_from(since);
        let mut filter =
            String::from("label = 'Memory' AND json_extract(properties, '$.created_at') >= ?1");
        let mut params: Vec<Value> = vec![since.into()];
        if let Some(project) = project {
            filter.push_str(" AND json_extract(properties, '$.context_project_path') = ?2");
            params.push(project.to_string().into());
        }
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        let total_count = scalar_i64(
            &tx,
            &format!("SELECT count(*) FROM nodes WHERE {filter}"),
            params.clone(),
            "counting recent memories",
        )
        .await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT json_extract(properties, '$.type'), count(*) FROM nodes WHERE {filter} GROUP BY 1"
                ),
                params.clone(),
            )
            .await
            .doing("counting recent memories by type")?;
        let mut memories_by_type = BTreeMap::new();
        for row in all_rows(rows, "counting recent memories by type").await? {
            let count = row.int(1);
            memories_by_type.insert(row.text(0), count);
        }
        let recent_memories = query_memories(
            &tx,
            &format!(
                "SELECT id, properties FROM nodes WHERE {filter}
                 ORDER BY json_extract(properties, '$.created_at') DESC, id
                 LIMIT {RECENT_LIMIT} OFFSET {offset}"
            ),
            params.clone(),
        )
        .await?;
        let unresolved = format!(
            "{filter} AND json_extract(properties, '$.type') IN ('problem', 'error')
               AND NOT EXISTS (SELECT 1 FROM relationships r
                               WHERE r.to_id = nodes.id AND r.valid_until IS NULL
                                 AND r.rel_type IN ('SOLVES', 'ADDRESSES'))"
        );
        let unresolved_total = scalar_i64(
            &tx,
            &format!("SELECT count(*) FROM nodes WHERE {unresolved}"),
            params.clone(),
            "counting unresolved problems",
        )
        .await?;
        let unresolved_problems = query_memories(
            &tx,
            &format!(
                "SELECT id, properties FROM nodes WHERE {unresolved}
                 ORDER BY json_extract(properties, '$.created_at') DESC, id
                 LIMIT {RECENT_LIMIT} OFFSET {offset}"
            ),
            params,
        )
        .await?;
        tx.finish().await?;
        Ok(RecentActivity {
            days,
            project: project.map(str::to_string),
            total_count,
            memories_by_type,
            recent_memories,
            unresolved_total,
            unresolved_problems,
        })
    }
}

/// Uses counted in memory before they are written in one batch.
const USE_BATCH: usize = 64;

impl TursoBackend {
    /// Counts one more use of each memory, for ranking ties and `get_memory`. Uses are
    /// batched in memory and written every [`USE_BATCH`] memories and at close, so a read
    /// costs no write transaction; a crash loses at most one batch of counts, never a
    /// memory. Best effort: a read never fails because of its count.
    pub(super) async fn count_use(&self, conn: &Connection, ids: &[&str]) {
        let now = now_iso();
        let full = {
            let mut pending = self.pending_uses.lock().expect("usage lock");
            for id in ids {
                let entry = pending.entry(id.to_string()).or_insert((0, String::new()));
                entry.0 += 1;
                entry.1 = now.clone();
            }
            pending.len() >= USE_BATCH
        };
        if full {
            self.flush_uses(conn).await;
        }
    }

    /// Uses counted but not written yet, for one memory.
    pub(super) fn pending_use(&self, id: &str) -> Option<(i64, String)> {
        self.pending_uses
            .lock()
            .expect("usage lock")
            .get(id)
            .cloned()
    }

    /// Writes the batched use counts (local in both modes: use counts are this machine's own
    /// and are not synced).
    pub(super) async fn flush_uses(&self, conn: &Connection) {
        let batch = std::mem::take(&mut *self.pending_uses.lock().expect("usage lock"));
        if let Err(e) = write_uses(conn, &batch).await {
            tracing::debug!("could not record {} use count(s): {e}", batch.len());
        }
    }
}

async fn write_uses(
    conn: &Connection,
    uses: &std::collections::HashMap<String, (i64, String)>,
) -> Result<()> {
    if uses.is_empty() {
        return Ok(());
    }
    super::in_write(conn, "starting a usage update", async |tx| {
        write_use_rows(tx, uses).await
    })
    .await
}

async fn write_use_rows(
    tx: &Connection,
    uses: &std::collections::HashMap<String, (i64, String)>,
) -> Result<()> {
    for (id, (count, last)) in uses {
        tx.execute(
            "INSERT INTO memory_usage (memory_id, usage_count, last_accessed) VALUES (?1, ?2, ?3)
             ON CONFLICT(memory_id) DO UPDATE SET usage_count = usage_count + ?2, last_accessed = ?3",
            libsql::params![id.as_str(), *count, last.as_str()],
        )
        .await
        .doing("counting uses")?;
    }
    Ok(())
}

/// Looks a memory up by its content, for the duplicate check.
const DUPLICATE_QUERY: &str = "SELECT id, properties FROM nodes
     WHERE label = 'Memory' AND json_extract(properties, '$.title') = ?1
       AND json_extract(properties, '$.type') = ?2 AND json_extract(properties, '$.content') = ?3
     LIMIT 1";

/// Stores a new memory row (its triggers index it).
const INSERT_MEMORY: &str = "INSERT INTO nodes (id, label, properties, created_at, updated_at) VALUES (?1, 'Memory', ?2, ?3, ?3)";

impl TursoBackend {
    /// The memory identical in type, title and content to `new`, if one exists: a store of
    /// it returns that one instead of a second copy.
    pub(super) async fn find_duplicate(
        &self,
        conn: &Connection,
        new: &NewMemory,
    ) -> Result<Option<Memory>> {
        match self
            .first_row_kept(
                conn,
                DUPLICATE_QUERY,
                libsql::params![
                    new.title.as_str(),
                    new.memory_type.as_str(),
                    new.content.as_str()
                ],
                "looking for a duplicate",
            )
            .await?
        {
            Some(row) => Ok(Some(decode(&row.text(0), &row.text(1))?)),
            None => Ok(None),
        }
    }
}

/// A `supersedes` naming no memory is the caller's mistake, reported against that field.
pub(super) fn no_superseded_memory(e: BackendError, old: &str) -> BackendError {
    match e {
        BackendError::NotFound { .. } => BackendError::Invalid(crate::model::InvalidInput::new(
            "supersedes",
            format!("no memory with id {}", crate::model::shorten(old)),
        )),
        other => other,
    }
}

/// Applies an update to stored properties.
pub(super) fn apply_patch(
    id: &str,
    properties: &str,
    patch: &MemoryPatch,
    now: &str,
) -> Result<String> {
    codec::apply_patch(properties, patch, now).map_err(|source| BackendError::CorruptRow {
        what: "memory",
        id: id.to_string(),
        source,
    })
}

/// Deletes a memory's relationships and then the memory; returns the relationships removed.
pub(super) async fn delete_rows(conn: &Connection, id: &str) -> Result<u64> {
    let removed = conn
        .execute(
            "DELETE FROM relationships WHERE from_id = ?1 OR to_id = ?1",
            libsql::params![id],
        )
        .await
        .doing("deleting a memory's relationships")?;
    conn.execute(
        "DELETE FROM nodes WHERE id = ?1 AND label = 'Memory'",
        libsql::params![id],
    )
    .await
    .doing("deleting a memory")?;
    Ok(removed)
}

/// The current relationships touching a memory, strongest first.
async fn relationships_of(conn: &Connection, id: &str) -> Result<Vec<Relationship>> {
    let rows = conn
        .query(
            &format!(
                "SELECT {RELATIONSHIP_COLUMNS} FROM relationships r
                 WHERE (r.from_id = ?1 OR r.to_id = ?1) AND +r.valid_until IS NULL
                 ORDER BY json_extract(r.properties, '$.strength') DESC, r.created_at, r.id"
            ),
            libsql::params![id],
        )
        .await
        .doing("reading relationships")?;
    all_rows(rows, "reading relationships")
        .await?
        .iter()
        .map(|row| relationship_from_row(row, 0))
        .collect()
}

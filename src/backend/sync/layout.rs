//! Files written by versions whose replica mode read the embedded replica directly: the
//! database path was the replica itself, with an offline queue beside it (`<file>.queue`)
//! and, for further processes, numbered replicas (`<file>.slot2`, ...) with queues of
//! their own. Opened by this version, the replica moves to `<file>.replica`, the working
//! file is made from its rows (no network needed), and every write still queued is applied
//! to the working file as this machine's change, with the old rules (an update made to a
//! version that changed meanwhile is a conflict), so the next sync pushes it. Conflicts
//! logged in the old queues move to the sync issue log.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::feed::{self, Kind};
use super::queue::{PatchRecord, Queue, WriteOp};
use super::replica::Primary;
use super::state;
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::first_row;
use crate::backend::graph::{cycle_refusal, find_same_link, would_close_cycle};
use crate::backend::memories::{apply_patch, delete_rows};
use crate::model::{MemoryPatch, column_timestamp};

/// The files libsql keeps for one replica, by suffix.
pub const REPLICA_FILES: [&str; 5] = ["", "-wal", "-shm", "-client_wal_index", "-info"];

/// Most numbered replicas the old layout made.
const OLD_SLOTS: u32 = 32;

pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Moves an old-layout replica aside and makes the working file from it; applies every
/// old queue. Nothing to do for a file of this version.
pub async fn upgrade(path: &Path, primary: &Primary) -> Result<()> {
    let old_replica = with_suffix(path, "-client_wal_index").exists();
    let queues: Vec<PathBuf> = (1..=OLD_SLOTS)
        .map(|n| old_slot(path, n))
        .filter(|slot| Queue::path_for(slot).exists())
        .collect();
    if !old_replica && queues.is_empty() {
        return Ok(());
    }
    let replica = super::engine::replica_path(path);
    let Some(_lock) = super::owner::try_lock(&replica)? else {
        return Err(BackendError::Refused(format!(
            "another memorygraph process is upgrading {}; try again in a moment",
            path.display()
        )));
    };
    let primary_id = match queues.first() {
        Some(q) => Queue::open_existing(q).await?.state(OLD_PRIMARY_ID).await?,
        None => None,
    };
    if old_replica {
        tracing::info!(
            "moving the replica {} to {} and making the working file from it",
            path.display(),
            replica.display()
        );
        for suffix in REPLICA_FILES {
            let from = with_suffix(path, suffix);
            if from.exists() {
                let to = with_suffix(&replica, suffix);
                std::fs::rename(&from, &to).map_err(|source| BackendError::Io {
                    doing: format!("moving {} to {}", from.display(), to.display()),
                    source,
                })?;
            }
        }
        copy_replica_rows(&replica, path, primary, primary_id.as_deref()).await?;
    }
    let working = open_working(path).await?;
    for slot in queues {
        import_queue(&working.1, &slot).await?;
        if slot != path {
            for suffix in REPLICA_FILES.iter().chain(&[".lock"]) {
                let _ = std::fs::remove_file(with_suffix(&slot, suffix));
            }
        }
    }
    Ok(())
}

/// Folders beside `path` that earlier versions' `resync` moved old replicas into.
pub fn moved_aside(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.before-resync-", name.to_string_lossy());
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Removes the folders of [`moved_aside`]; returns them.
pub fn remove_moved_aside(path: &Path) -> Result<Vec<PathBuf>> {
    let found = moved_aside(path);
    for folder in &found {
        std::fs::remove_dir_all(folder).map_err(|source| BackendError::Io {
            doing: format!("removing {}", folder.display()),
            source,
        })?;
    }
    Ok(found)
}

/// The old layout's key for the primary's id in a queue file.
const OLD_PRIMARY_ID: &str = "primary_database_id";

fn old_slot(base: &Path, number: u32) -> PathBuf {
    if number <= 1 {
        base.to_path_buf()
    } else {
        with_suffix(base, &format!(".slot{number}"))
    }
}

/// The working file, opened for the upgrade with the schema and the sync tables.
pub(super) async fn open_working(path: &Path) -> Result<(libsql::Database, libsql::Connection)> {
    let db = libsql::Builder::new_local(path)
        .build()
        .await
        .doing("opening the working file")?;
    let conn = db.connect().doing("opening the working file")?;
    conn.busy_timeout(crate::backend::BUSY_TIMEOUT)
        .doing("setting the busy timeout")?;
    crate::backend::schema::migrate(&conn).await?;
    state::create(&conn).await?;
    Ok((db, conn))
}

/// Copies every memory, relationship and vector of the old replica into a new working file.
async fn copy_replica_rows(
    replica: &Path,
    path: &Path,
    primary: &Primary,
    primary_id: Option<&str>,
) -> Result<()> {
    let rdb = super::replica::open(replica, primary).await?;
    let rconn = rdb.connect().doing("opening the old replica")?;
    let has_schema = crate::backend::schema::version(&rconn).await.unwrap_or(0) > 0;
    let (_db, conn) = open_working(path).await?;
    if !has_schema {
        return Ok(());
    }
    crate::backend::in_write(&conn, "making the working file", async |tx| {
        super::pull::pulling(tx, true).await?;
        for kind in [Kind::Node, Kind::Relationship] {
            let rows = rconn
                .query(&format!("SELECT id FROM {} ORDER BY rowid", kind.table()), ())
                .await
                .doing("reading the old replica")?;
            let ids: Vec<String> = crate::backend::all_rows(rows, "reading the old replica")
                .await?
                .iter()
                .map(|r| r.text(0))
                .collect();
            for chunk in ids.chunks(500) {
                let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                let found = feed::read_rows(&rconn, kind, &refs).await?;
                for id in chunk {
                    if let Some(row) = found.get(id) {
                        feed::put_row(tx, kind, row).await?;
                    }
                }
            }
        }
        let vectors = rconn
            .query("SELECT memory_id, embedding, embedded_at FROM memory_vectors", ())
            .await;
        if let Ok(rows) = vectors {
            for r in crate::backend::all_rows(rows, "reading the old replica's vectors").await? {
                tx.execute(
                    "INSERT OR REPLACE INTO memory_vectors (memory_id, embedding, embedded_at) VALUES (?1, ?2, ?3)",
                    vec![r.value(0).clone(), r.value(1).clone(), r.value(2).clone()],
                )
                .await
                .doing("copying a vector")?;
            }
        }
        super::pull::pulling(tx, false).await?;
        let pushed = feed::last_seq(tx).await?;
        state::set(tx, state::PUSHED, Some(&pushed.to_string())).await?;
        state::set(tx, super::reconcile::RECONCILED, Some(&crate::model::now_iso())).await?;
        if let Some(id) = primary_id {
            state::set(tx, state::PRIMARY_ID, Some(id)).await?;
        }
        Ok(())
    })
    .await
}

/// Applies an old queue's waiting writes to the working file as this machine's changes,
/// moves its conflicts to the issue log, and removes it.
async fn import_queue(conn: &libsql::Connection, slot: &Path) -> Result<()> {
    let queue = Queue::open_existing(slot).await?;
    let ops = queue.unapplied().await?;
    let conflicts = queue.all_conflicts().await?;
    tracing::info!(
        "applying {} write(s) left in {}",
        ops.len(),
        Queue::path_for(slot).display()
    );
    crate::backend::in_write(conn, "applying the old offline queue", async |tx| {
        for (_, op) in &ops {
            if let Applied::Conflict {
                reason,
                primary_version,
            } = apply(tx, op, false).await?
            {
                record_old(tx, op, &reason, primary_version.as_deref()).await?;
            }
        }
        for c in &conflicts {
            let op: WriteOp = match serde_json::from_str(&c.operation) {
                Ok(op) => op,
                Err(_) => continue,
            };
            record_old(tx, &op, &c.reason, c.primary_version.as_deref()).await?;
        }
        Ok(())
    })
    .await?;
    drop(queue);
    for suffix in ["", "-wal", "-shm"] {
        let file = with_suffix(&Queue::path_for(slot), suffix);
        if let Err(e) = std::fs::remove_file(&file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("could not remove {}: {e}", file.display());
        }
    }
    Ok(())
}

async fn record_old(
    tx: &libsql::Connection,
    op: &WriteOp,
    reason: &str,
    primary_version: Option<&str>,
) -> Result<()> {
    let kind = match op {
        WriteOp::Relate(_) => "relationship",
        _ => "node",
    };
    state::insert_issue(
        tx,
        state::IssueKind::Conflict,
        kind,
        op.subject(),
        reason,
        serde_json::to_string(op).ok(),
        primary_version.map(str::to_string),
    )
    .await
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

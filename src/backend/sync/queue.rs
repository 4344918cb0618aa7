//! A relationship row as it is written, and the offline queue of the old replica layout
//! (`<file>.queue`), read once when such a file is upgraded (see `layout.rs`): its
//! operations carry the ids and timestamps the client chose, and are applied to the
//! working file as this machine's changes.

use std::path::{Path, PathBuf};

use libsql::{Connection, Database};
use serde::{Deserialize, Serialize};

use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::{Record, all_rows, first_row};

/// A relationship row exactly as it will be inserted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationshipRow {
    pub id: String,
    pub from_id: String,
    pub to_id: String,
    pub rel_type: String,
    pub properties: String,
    /// The `created_at` column (`YYYY-MM-DD HH:MM:SS`).
    pub column_time: String,
    /// `valid_from` / `recorded_at` (ISO).
    pub at: String,
}

impl RelationshipRow {
    /// A new relationship's row: a fresh id, now as its time.
    pub fn new(new: &crate::model::NewRelationship) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        let now = crate::model::now_iso();
        RelationshipRow {
            properties: crate::backend::codec::encode_new_relationship(&id, new, &now),
            id,
            from_id: new.from_id.clone(),
            to_id: new.to_id.clone(),
            rel_type: new.rel_type.as_str().to_string(),
            column_time: crate::model::column_timestamp(&now),
            at: now,
        }
    }

    /// The same link, made from another memory (a new row).
    pub fn from(&self, from_id: &str) -> RelationshipRow {
        RelationshipRow::new(&crate::model::NewRelationship {
            from_id: from_id.to_string(),
            ..self.as_new()
        })
    }

    /// The link's ends and type, for the rules the online path checks.
    pub fn as_new(&self) -> crate::model::NewRelationship {
        let rel_type =
            crate::model::RelationshipType::parse_field("relationship_type", &self.rel_type)
                .unwrap_or(crate::model::RelationshipType::RelatedTo);
        crate::model::NewRelationship::plain(&self.from_id, &self.to_id, rel_type)
    }

    /// Writes the row; a row with this id already there is left as it is, so a replayed
    /// write changes nothing.
    pub async fn insert(&self, conn: &Connection) -> Result<()> {
        conn.execute(
            "INSERT OR IGNORE INTO relationships (id, from_id, to_id, rel_type, properties, created_at, valid_from, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            libsql::params![
                self.id.as_str(),
                self.from_id.as_str(),
                self.to_id.as_str(),
                self.rel_type.as_str(),
                self.properties.as_str(),
                self.column_time.as_str(),
                self.at.as_str()
            ],
        )
        .await
        .doing("storing a relationship")?;
        Ok(())
    }
}

/// The fields an update sets; `clear_summary` removes the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatchRecord {
    pub title: Option<String>,
    pub content: Option<String>,
    pub summary: Option<String>,
    pub clear_summary: bool,
    pub tags: Option<Vec<String>>,
    pub importance: Option<f64>,
}

/// One write, with everything decided by the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WriteOp {
    Store {
        id: String,
        properties: String,
        column_time: String,
        supersedes: Option<RelationshipRow>,
    },
    Update {
        id: String,
        patch: PatchRecord,
        /// `updated_at` of the version the change was made to.
        base_updated_at: String,
        /// The `updated_at` the change sets.
        updated_at: String,
    },
    Delete {
        id: String,
        /// `updated_at` of the version that was deleted: a primary whose copy changed
        /// since (another device's edit) keeps it, and the delete becomes a conflict.
        #[serde(default)]
        base_updated_at: Option<String>,
    },
    Relate(RelationshipRow),
}

impl WriteOp {
    /// The memory (or relationship) the operation is about, for messages.
    pub fn subject(&self) -> &str {
        match self {
            WriteOp::Store { id, .. } | WriteOp::Update { id, .. } | WriteOp::Delete { id, .. } => {
                id
            }
            WriteOp::Relate(row) => &row.id,
        }
    }
}

/// A queued write that could not be applied as queued.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// What the queued operation was, as JSON.
    pub operation: String,
    pub reason: String,
    /// The memory as the primary had it, when that is what the write collided with.
    pub primary_version: Option<String>,
}

pub struct Queue {
    _db: Database,
    conn: Connection,
}

impl Queue {
    /// The queue file that went with a replica file.
    pub fn path_for(replica_path: &Path) -> PathBuf {
        let mut path = replica_path.as_os_str().to_owned();
        path.push(".queue");
        PathBuf::from(path)
    }

    /// Opens the queue file beside an old replica.
    pub async fn open_existing(replica_path: &Path) -> Result<Queue> {
        let path = Queue::path_for(replica_path);
        let db = libsql::Builder::new_local(&path)
            .build()
            .await
            .doing("opening the old offline queue")?;
        let conn = db.connect().doing("opening the old offline queue")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .doing("opening the old offline queue")?;
        Ok(Queue { _db: db, conn })
    }

    /// Whether the queue has a table (a file of an older layout has every one; an empty
    /// file, none).
    async fn has(&self, table: &str) -> Result<bool> {
        Ok(first_row(
            &self.conn,
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            libsql::params![table],
            "reading the old offline queue",
        )
        .await?
        .is_some())
    }

    /// The operations the primary does not have yet, oldest first.
    pub async fn unapplied(&self) -> Result<Vec<(i64, WriteOp)>> {
        if !self.has("pending").await? {
            return Ok(Vec::new());
        }
        let marked = first_row(
            &self.conn,
            "SELECT 1 FROM pragma_table_info('pending') WHERE name = 'applied'",
            (),
            "reading the old offline queue's layout",
        )
        .await?
        .is_some();
        let sql = if marked {
            "SELECT seq, op FROM pending WHERE applied = 0 ORDER BY seq"
        } else {
            "SELECT seq, op FROM pending ORDER BY seq"
        };
        let rows = self
            .conn
            .query(sql, ())
            .await
            .doing("reading the old offline queue")?;
        all_rows(rows, "reading the old offline queue")
            .await?
            .iter()
            .map(|r: &Record| {
                let op =
                    serde_json::from_str(r.str(1)).map_err(|source| BackendError::CorruptRow {
                        what: "queued write",
                        id: r.int(0).to_string(),
                        source,
                    })?;
                Ok((r.int(0), op))
            })
            .collect()
    }

    /// A value the old replica remembered (the primary's identity).
    pub async fn state(&self, key: &str) -> Result<Option<String>> {
        if !self.has("state").await? {
            return Ok(None);
        }
        Ok(first_row(
            &self.conn,
            "SELECT value FROM state WHERE key = ?1",
            libsql::params![key],
            "reading the old replica state",
        )
        .await?
        .map(|r| r.text(0)))
    }

    /// Every logged conflict.
    pub async fn all_conflicts(&self) -> Result<Vec<Conflict>> {
        if !self.has("conflicts").await? {
            return Ok(Vec::new());
        }
        let rows = self
            .conn
            .query(
                "SELECT op, reason, primary_version FROM conflicts ORDER BY seq",
                (),
            )
            .await
            .doing("reading old conflicts")?;
        Ok(all_rows(rows, "reading old conflicts")
            .await?
            .iter()
            .map(|r| Conflict {
                operation: r.text(0),
                reason: r.text(1),
                primary_version: r.opt_text(2),
            })
            .collect())
    }
}

//! The offline write queue of replica mode. While the primary is unreachable a write is
//! stored here — in its own small database beside the replica, committed with
//! `synchronous=FULL` (fsynced) before the tool answers — and replayed in order, exactly
//! once, when the primary is back. Every operation carries the ids and timestamps the
//! client chose, so replaying it twice changes nothing. An operation that cannot be
//! applied as queued (its memory changed or vanished on the primary meanwhile) is moved to
//! the conflict log with both versions: nothing is dropped in silence.

use std::path::{Path, PathBuf};

use libsql::{Connection, Database};
use serde::{Deserialize, Serialize};

use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::{Record, all_rows, first_row, scalar_i64};

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

    /// The relationship as it will read back once stored.
    pub fn relationship(&self) -> crate::model::Relationship {
        crate::backend::codec::decode_relationship(crate::backend::codec::RelationshipRow {
            id: self.id.clone(),
            from_id: self.from_id.clone(),
            to_id: self.to_id.clone(),
            rel_type: self.rel_type.clone(),
            properties: self.properties.clone(),
            valid_from: Some(self.at.clone()),
            valid_until: None,
        })
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
        crate::model::NewRelationship {
            from_id: self.from_id.clone(),
            to_id: self.to_id.clone(),
            rel_type,
            strength: rel_type.default_strength(),
            confidence: rel_type.default_confidence(),
            context: None,
        }
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
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Conflict {
    pub seq: i64,
    /// What the queued operation was, as JSON.
    pub operation: String,
    pub reason: String,
    /// The memory as the primary had it, when that is what the write collided with.
    pub primary_version: Option<String>,
    pub detected_at: String,
}

pub struct Queue {
    _db: Database,
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    queued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conflicts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    reason TEXT NOT NULL,
    primary_version TEXT,
    detected_at TEXT NOT NULL
);";

impl Queue {
    /// The queue file that goes with a replica file.
    pub fn path_for(replica_path: &Path) -> PathBuf {
        let mut path = replica_path.as_os_str().to_owned();
        path.push(".queue");
        PathBuf::from(path)
    }

    /// Opens the queue file beside the replica (`<replica>.queue`).
    pub async fn open(replica_path: &Path) -> Result<Queue> {
        let path = Queue::path_for(replica_path);
        let db = libsql::Builder::new_local(&path)
            .build()
            .await
            .doing("opening the offline queue")?;
        let conn = db.connect().doing("opening the offline queue")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .doing("opening the offline queue")?;
        crate::backend::use_write_ahead_log(&conn).await?;
        conn.execute_batch(&format!("PRAGMA synchronous = FULL; {SCHEMA}"))
            .await
            .doing("creating the offline queue")?;
        // Queues written before writes were marked applied: add the mark.
        let marked = first_row(
            &conn,
            "SELECT 1 FROM pragma_table_info('pending') WHERE name = 'applied'",
            (),
            "reading the offline queue's layout",
        )
        .await?
        .is_some();
        if !marked {
            conn.execute(
                "ALTER TABLE pending ADD COLUMN applied INTEGER NOT NULL DEFAULT 0",
                (),
            )
            .await
            .doing("upgrading the offline queue")?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(Queue { _db: db, conn })
    }

    /// Stores an operation durably; returns once it is on disk.
    pub async fn push(&self, op: &WriteOp) -> Result<()> {
        let json = serde_json::to_string(op).expect("operations are plain data");
        self.conn
            .execute(
                "INSERT INTO pending (op, queued_at) VALUES (?1, ?2)",
                libsql::params![json, crate::model::now_iso()],
            )
            .await
            .doing("queueing a write")?;
        Ok(())
    }

    /// The queued operations, oldest first, including those already applied on the
    /// primary but not pulled back yet (reads overlay them until then).
    pub async fn pending(&self) -> Result<Vec<(i64, WriteOp)>> {
        self.read_ops("SELECT seq, op FROM pending ORDER BY seq")
            .await
    }

    /// The queued operations the primary does not have yet, oldest first.
    pub async fn unapplied(&self) -> Result<Vec<(i64, WriteOp)>> {
        self.read_ops("SELECT seq, op FROM pending WHERE applied = 0 ORDER BY seq")
            .await
    }

    async fn read_ops(&self, sql: &str) -> Result<Vec<(i64, WriteOp)>> {
        let rows = self
            .conn
            .query(sql, ())
            .await
            .doing("reading the offline queue")?;
        all_rows(rows, "reading the offline queue")
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

    /// Writes that have not reached the primary yet.
    pub async fn len(&self) -> Result<i64> {
        scalar_i64(
            &self.conn,
            "SELECT count(*) FROM pending WHERE applied = 0",
            vec![],
            "counting queued writes",
        )
        .await
    }

    /// Marks an operation as on the primary; it stays (for reads) until the pull that
    /// brings it back, then [`Queue::forget_applied`] removes it. Replaying it again after a
    /// crash in between would change nothing, but it is not replayed.
    pub async fn applied(&self, seq: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE pending SET applied = 1 WHERE seq = ?1",
                libsql::params![seq],
            )
            .await
            .doing("marking a write applied")?;
        Ok(())
    }

    /// Removes the operations the replica has pulled back.
    pub async fn forget_applied(&self) -> Result<()> {
        self.conn
            .execute("DELETE FROM pending WHERE applied = 1", ())
            .await
            .doing("dequeueing applied writes")?;
        Ok(())
    }

    /// Removes an operation once the primary has it.
    pub async fn done(&self, seq: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM pending WHERE seq = ?1", libsql::params![seq])
            .await
            .doing("dequeueing a write")?;
        Ok(())
    }

    /// Moves an operation to the conflict log, in one transaction.
    pub async fn conflict(
        &self,
        seq: i64,
        op: &WriteOp,
        reason: &str,
        primary_version: Option<&str>,
    ) -> Result<()> {
        crate::backend::in_write(&self.conn, "recording a conflict", async |tx| {
            tx.execute(
                "INSERT INTO conflicts (op, reason, primary_version, detected_at) VALUES (?1, ?2, ?3, ?4)",
                libsql::params![
                    serde_json::to_string(op).expect("operations are plain data"),
                    reason,
                    primary_version,
                    crate::model::now_iso()
                ],
            )
            .await
            .doing("recording a conflict")?;
            tx.execute("DELETE FROM pending WHERE seq = ?1", libsql::params![seq])
                .await
                .doing("recording a conflict")?;
            Ok(())
        })
        .await
    }

    /// A value this replica remembers across restarts (the primary's identity, a
    /// divergence found), or `None`.
    pub async fn state(&self, key: &str) -> Result<Option<String>> {
        Ok(first_row(
            &self.conn,
            "SELECT value FROM state WHERE key = ?1",
            libsql::params![key],
            "reading the replica state",
        )
        .await?
        .map(|r| r.text(0)))
    }

    /// Sets (or, with `None`, forgets) a remembered value, durably.
    pub async fn set_state(&self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => {
                self.conn
                    .execute(
                        "INSERT INTO state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
                        libsql::params![key, v],
                    )
                    .await
            }
            None => {
                self.conn
                    .execute("DELETE FROM state WHERE key = ?1", libsql::params![key])
                    .await
            }
        }
        .doing("saving the replica state")?;
        Ok(())
    }

    /// The conflict log, newest first, at most `limit`.
    pub async fn conflicts(&self, limit: u32) -> Result<(i64, Vec<Conflict>)> {
        let total = scalar_i64(
            &self.conn,
            "SELECT count(*) FROM conflicts",
            vec![],
            "counting conflicts",
        )
        .await?;
        let rows = self
            .conn
            .query(
                &format!("SELECT seq, op, reason, primary_version, detected_at FROM conflicts ORDER BY seq DESC LIMIT {limit}"),
                (),
            )
            .await
            .doing("reading conflicts")?;
        let list = all_rows(rows, "reading conflicts")
            .await?
            .iter()
            .map(|r| Conflict {
                seq: r.int(0),
                operation: r.text(1),
                reason: r.text(2),
                primary_version: r.opt_text(3),
                detected_at: r.text(4),
            })
            .collect();
        Ok((total, list))
    }

    pub async fn is_empty(&self) -> Result<bool> {
        Ok(first_row(
            &self.conn,
            "SELECT 1 FROM pending LIMIT 1",
            (),
            "reading the offline queue",
        )
        .await?
        .is_none())
    }
}

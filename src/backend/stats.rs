//! Counts and facts about the store, for `get_memory_statistics` and `health`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::{DbContext, Result};
use super::schema::{self, SCHEMA_VERSION};
use super::{TursoBackend, all_rows, first_row, scalar_i64};

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Statistics {
    pub total_memories: i64,
    pub memories_by_type: BTreeMap<String, i64>,
    /// Current relationships (not invalidated).
    pub total_relationships: i64,
    pub relationships_by_type: BTreeMap<String, i64>,
    pub relationships_by_category: BTreeMap<String, i64>,
    pub average_importance: Option<f64>,
    pub average_confidence: Option<f64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BackendHealth {
    pub database_path: String,
    pub database_bytes: u64,
    pub wal_bytes: u64,
    pub memories: i64,
    pub relationships: i64,
    pub schema_version: i64,
    pub supported_schema_version: i64,
    pub sqlite_version: String,
    pub full_text_indexed: i64,
    /// Every change to a memory or a relationship raises it, whoever made it (a tool, an
    /// import, a pull): a page or a script polls it to know when to look again.
    pub changes: i64,
    /// `normal` or `full` (MEMORY_DURABILITY): what an acknowledged write survives, in both
    /// modes (replica mode acknowledges a write once it is in the working file).
    pub durability: String,
    /// How relationship ends are kept valid: SQLite's foreign keys.
    pub foreign_keys: String,
    /// Replica mode: the embedded replica beside the working file, which the syncing
    /// process keeps.
    pub replica_path: Option<String>,
    /// Replica mode: whether this process is the one that syncs (owns the replica).
    pub syncs_here: Option<bool>,
    /// Folders earlier versions moved an old replica into (`<file>.before-resync-<time>`);
    /// this version makes none. `memorygraph cleanup` removes them.
    pub moved_aside: Vec<String>,
}

/// The change count every write to a memory or a relationship raises (schema step 5).
async fn change_count(conn: &libsql::Connection) -> Result<i64> {
    scalar_i64(
        conn,
        "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM memorygraph_meta WHERE key = 'changes'), 0)",
        vec![],
        "reading the change count",
    )
    .await
}

impl TursoBackend {
    /// The change count alone: one read, for callers that poll it (the web view).
    pub async fn changes(&self) -> Result<i64> {
        let conn = self.conn.lock().await;
        change_count(&conn).await
    }

    pub async fn statistics(&self) -> Result<Statistics> {
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        let grouped = |sql: &'static str| {
            let tx = &tx;
            async move {
                let rows = tx.query(sql, ()).await.doing("counting")?;
                let mut map = BTreeMap::new();
                for row in all_rows(rows, "counting").await? {
                    map.insert(row.text(0), row.int(1));
                }
                Ok::<_, super::BackendError>(map)
            }
        };
        let memories_by_type = grouped(
            "SELECT json_extract(properties, '$.type'), count(*) FROM nodes WHERE label = 'Memory' GROUP BY 1",
        )
        .await?;
        let relationships_by_type = grouped(
            "SELECT rel_type, count(*) FROM relationships WHERE valid_until IS NULL GROUP BY 1",
        )
        .await?;
        let averages = first_row(
            &tx,
            "SELECT avg(json_extract(properties, '$.importance')), avg(json_extract(properties, '$.confidence'))
             FROM nodes WHERE label = 'Memory'",
            (),
            "averaging",
        )
        .await?;
        let (average_importance, average_confidence) = match averages {
            Some(row) => (row.real(0), row.real(1)),
            None => (None, None),
        };
        tx.finish().await?;
        let mut relationships_by_category = BTreeMap::new();
        for (name, count) in &relationships_by_type {
            let category = crate::model::RelationshipType::parse_field("type", name)
                .map(|t| t.category().as_str())
                .unwrap_or("other");
            *relationships_by_category
                .entry(category.to_string())
                .or_insert(0) += count;
        }
        Ok(Statistics {
            total_memories: memories_by_type.values().sum(),
            memories_by_type,
            total_relationships: relationships_by_type.values().sum(),
            relationships_by_type,
            relationships_by_category,
            average_importance,
            average_confidence,
        })
    }

    pub async fn health(&self) -> Result<BackendHealth> {
        let conn = self.conn.lock().await;
        let memories = scalar_i64(
            &conn,
            "SELECT count(*) FROM nodes WHERE label = 'Memory'",
            vec![],
            "counting memories",
        )
        .await?;
        let relationships = scalar_i64(
            &conn,
            "SELECT count(*) FROM relationships WHERE valid_until IS NULL",
            vec![],
            "counting relationships",
        )
        .await?;
        let full_text_indexed = scalar_i64(
            &conn,
            "SELECT count(*) FROM memory_fts_docsize",
            vec![],
            "counting indexed memories",
        )
        .await?;
        let changes = change_count(&conn).await?;
        let schema_version = schema::version(&conn).await?;
        let sqlite_version = first_row(
            &conn,
            "SELECT sqlite_version()",
            (),
            "reading the SQLite version",
        )
        .await?
        .map(|r| r.text(0))
        .unwrap_or_default();
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        Ok(BackendHealth {
            database_path: self.path.display().to_string(),
            database_bytes: size(&self.path),
            wal_bytes: size(std::path::Path::new(&wal)),
            memories,
            relationships,
            schema_version,
            supported_schema_version: SCHEMA_VERSION,
            sqlite_version,
            full_text_indexed,
            changes,
            durability: self.durability.as_str().to_string(),
            foreign_keys: "on".to_string(),
            replica_path: self
                .sync
                .as_ref()
                .map(|l| l.replica_path.display().to_string()),
            syncs_here: self.sync.as_ref().map(|_| self.owns_replica()),
            moved_aside: crate::backend::sync::layout::moved_aside(&self.path)
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        })
    }
}

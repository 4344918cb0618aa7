//! Moving memories in and out in bulk: reading the whole graph for an export, and writing
//! an import in one transaction, so an import that fails part-way leaves the file as it was.

use std::collections::HashSet;

use libsql::Connection;
use serde::Serialize;
use serde_json::{Map, Value};

use super::codec::{self, MemoryTimes};
use super::error::{BackendError, DbContext, Result};
use super::rows::decode;
use super::{TursoBackend, all_rows, first_row, pyjson};
use crate::model::{Memory, NewMemory, RelationshipType, column_timestamp, now_iso};

/// A relationship row as stored, with every temporal column and all of its properties, so
/// an export can carry what MemoryGraph's own export leaves out.
#[derive(Debug, Clone)]
pub struct StoredRelationship {
    pub id: String,
    pub from_id: String,
    pub to_id: String,
    pub rel_type: String,
    /// The row's `properties` object, keys in stored order.
    pub properties: Map<String, Value>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub recorded_at: Option<String>,
    pub invalidated_by: Option<String>,
}

impl StoredRelationship {
    /// A relationship nothing has superseded yet.
    pub fn is_current(&self) -> bool {
        self.valid_until.is_none()
    }
}

/// Every memory (oldest first, use counts included) and every relationship (in the order
/// they were written, superseded ones included).
#[derive(Debug, Clone, Default)]
pub struct Everything {
    pub memories: Vec<Memory>,
    pub relationships: Vec<StoredRelationship>,
}

/// A memory to import: checked by the model's rules, with the id and times of its source.
#[derive(Debug, Clone)]
pub struct ImportedMemory {
    pub id: String,
    pub memory: NewMemory,
    pub created_at: String,
    pub updated_at: String,
    pub usage_count: i64,
    pub last_accessed: Option<String>,
    pub effectiveness: Option<f64>,
}

/// A relationship to import. Without an id, one is made up, and an identical current link
/// already in the file counts as imported before.
#[derive(Debug, Clone)]
pub struct ImportedRelationship {
    pub id: Option<String>,
    pub from_id: String,
    pub to_id: String,
    pub rel_type: RelationshipType,
    pub strength: f64,
    pub confidence: f64,
    /// The context in its stored form: MemoryGraph's JSON string, or plain text.
    pub context: Option<String>,
    /// Other properties the source carried (`evidence_count`, `created_at`, ...), kept.
    pub extra: Map<String, Value>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub recorded_at: Option<String>,
    pub invalidated_by: Option<String>,
}

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    pub memories: Vec<ImportedMemory>,
    pub relationships: Vec<ImportedRelationship>,
}

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Keep memories (and relationships with an id) that already exist and import the
    /// rest; without it, an existing id stops the import before anything is written.
    pub skip_duplicates: bool,
    /// Do everything, count it, then roll back.
    pub dry_run: bool,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    pub memories_imported: u64,
    /// Memories whose id was already in the database (with `--skip-duplicates`).
    pub memories_skipped: u64,
    pub relationships_imported: u64,
    /// Relationships already in the database: the same id, or (without an id) the same
    /// current link.
    pub relationships_skipped_existing: u64,
    /// Relationships left out because an end is neither in the file nor in the database.
    pub relationships_skipped_missing_endpoint: u64,
    /// The first few of those, as `from -[TYPE]-> to`.
    pub missing_endpoints: Vec<String>,
}

/// Most missing-endpoint relationships listed by name in a report.
const LISTED_MISSING: usize = 10;

impl TursoBackend {
    /// Reads every memory and relationship, for an export or a picture.
    pub async fn read_everything(&self) -> Result<Everything> {
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        let memories = read_memories(&tx, "TRUE", vec![]).await?;
        let relationships = read_relationships(
            &tx,
            "EXISTS (SELECT 1 FROM nodes n WHERE n.id = r.from_id AND n.label = 'Memory')
             AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = r.to_id AND n.label = 'Memory')",
            vec![],
        )
        .await?;
        tx.finish().await?;
        Ok(Everything {
            memories,
            relationships,
        })
    }

    /// Writes a batch of memories and relationships in one transaction, keeping their
    /// ids and times. `progress` is called with the number of items handled so far. In
    /// replica mode, as every write, it lands in the working file and is pushed afterwards.
    pub async fn import(
        &self,
        batch: &ImportBatch,
        options: ImportOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<ImportReport> {
        let mut seen = HashSet::new();
        for m in &batch.memories {
            if !seen.insert(m.id.as_str()) {
                return Err(BackendError::Refused(format!(
                    "the file holds memory {} twice; nothing was imported",
                    m.id
                )));
            }
        }
        let conn = self.conn.lock().await;
        let tx = super::begin_write(&conn, "starting an import").await?;
        let outcome: Result<ImportReport> = async {
            // A relationship may name the one that superseded it further down the file.
            tx.execute("PRAGMA defer_foreign_keys = ON", ())
                .await
                .doing("deferring foreign keys")?;
            let mut report = ImportReport {
                dry_run: options.dry_run,
                ..Default::default()
            };
            let mut done = 0u64;
            for m in &batch.memories {
                if exists(&tx, "nodes", &m.id).await? {
                    if !options.skip_duplicates {
                        return Err(BackendError::Refused(format!(
                            "memory {} is already in the database; nothing was imported. Pass --skip-duplicates to \
                             keep the memories already there and import the rest",
                            m.id
                        )));
                    }
                    report.memories_skipped += 1;
                } else {
                    insert_memory(&tx, m).await?;
                    report.memories_imported += 1;
                }
                done += 1;
                progress(done);
            }
            let relationship_ids: HashSet<&str> = batch
                .relationships
                .iter()
                .filter_map(|r| r.id.as_deref())
                .collect();
            for r in &batch.relationships {
                done += 1;
                let ends_exist = exists_memory(&tx, &r.from_id).await?
                    && (r.to_id == r.from_id || exists_memory(&tx, &r.to_id).await?);
                if !ends_exist {
                    report.relationships_skipped_missing_endpoint += 1;
                    if report.missing_endpoints.len() < LISTED_MISSING {
                        report
                            .missing_endpoints
                            .push(format!("{} -[{}]-> {}", r.from_id, r.rel_type, r.to_id));
                    }
                    progress(done);
                    continue;
                }
                let already = match &r.id {
                    Some(id) => exists(&tx, "relationships", id).await?,
                    None => same_current_link(&tx, r).await?,
                };
                if already {
                    if r.id.is_some() && !options.skip_duplicates {
                        return Err(BackendError::Refused(format!(
                            "relationship {} is already in the database; nothing was imported. Pass --skip-duplicates \
                             to keep what is there and import the rest",
                            r.id.as_deref().unwrap_or_default()
                        )));
                    }
                    report.relationships_skipped_existing += 1;
                    progress(done);
                    continue;
                }
                let invalidated_by = match &r.invalidated_by {
                    Some(by) if relationship_ids.contains(by.as_str()) => Some(by.clone()),
                    Some(by) if exists(&tx, "relationships", by).await? => Some(by.clone()),
                    // The superseding link is not coming along; the end of validity still is.
                    _ => None,
                };
                insert_relationship(&tx, r, invalidated_by.as_deref()).await?;
                report.relationships_imported += 1;
                progress(done);
            }
            Ok(report)
        }
        .await;
        if options.dry_run && outcome.is_ok() {
            tx.rollback().await.doing("undoing a dry run")?;
            return outcome;
        }
        let report = super::end_write(tx, outcome, "committing an import").await?;
        if report.memories_imported + report.relationships_imported > 0 {
            self.after_write();
        }
        Ok(report)
    }
}

/// The memories (node `n`) that `condition` keeps, oldest first, use counts included, as
/// an export carries them.
pub(super) async fn read_memories(
    conn: &Connection,
    condition: &str,
    params: Vec<libsql::Value>,
) -> Result<Vec<Memory>> {
    let rows = conn
        .query(
            &format!(
                "SELECT n.id, n.properties, u.usage_count, u.last_accessed FROM nodes n
                   LEFT JOIN memory_usage u ON u.memory_id = n.id
                  WHERE n.label = 'Memory' AND ({condition})
                  ORDER BY json_extract(n.properties, '$.created_at'), n.id"
            ),
            params,
        )
        .await
        .doing("reading memories")?;
    let mut memories = Vec::new();
    for row in all_rows(rows, "reading memories").await? {
        let mut memory = decode(&row.text(0), &row.text(1))?;
        memory.usage_count += row.int(2);
        if let Some(last) = row.opt_text(3) {
            memory.last_accessed = Some(last);
        }
        memories.push(memory);
    }
    Ok(memories)
}

/// The relationships (row `r`) that `condition` keeps, in the order they were written,
/// with every stored property and temporal column.
pub(super) async fn read_relationships(
    conn: &Connection,
    condition: &str,
    params: Vec<libsql::Value>,
) -> Result<Vec<StoredRelationship>> {
    let rows = conn
        .query(
            &format!(
                "SELECT r.id, r.from_id, r.to_id, r.rel_type, r.properties, r.valid_from,
                        r.valid_until, r.recorded_at, r.invalidated_by
                   FROM relationships r
                  WHERE {condition}
                  ORDER BY r.rowid"
            ),
            params,
        )
        .await
        .doing("reading relationships")?;
    let mut relationships = Vec::new();
    for row in all_rows(rows, "reading relationships").await? {
        let id = row.text(0);
        let properties: Map<String, Value> =
            serde_json::from_str(row.str(4)).map_err(|source| BackendError::CorruptRow {
                what: "relationship",
                id: id.clone(),
                source,
            })?;
        relationships.push(StoredRelationship {
            id,
            from_id: row.text(1),
            to_id: row.text(2),
            rel_type: row.text(3),
            properties,
            valid_from: row.opt_text(5),
            valid_until: row.opt_text(6),
            recorded_at: row.opt_text(7),
            invalidated_by: row.opt_text(8),
        });
    }
    Ok(relationships)
}

pub(super) async fn exists(conn: &Connection, table: &'static str, id: &str) -> Result<bool> {
    let sql = match table {
        "nodes" => "SELECT 1 FROM nodes WHERE id = ?1",
        _ => "SELECT 1 FROM relationships WHERE id = ?1",
    };
    Ok(
        first_row(conn, sql, libsql::params![id], "looking for an id")
            .await?
            .is_some(),
    )
}

pub(super) async fn exists_memory(conn: &Connection, id: &str) -> Result<bool> {
    Ok(first_row(
        conn,
        "SELECT 1 FROM nodes WHERE id = ?1 AND label = 'Memory'",
        libsql::params![id],
        "looking for a memory",
    )
    .await?
    .is_some())
}

/// A current link with the same ends, type and context (either direction for symmetric
/// types): what importing the same file twice would otherwise add again.
async fn same_current_link(conn: &Connection, r: &ImportedRelationship) -> Result<bool> {
    let sql = if r.rel_type.is_symmetric() {
        "SELECT 1 FROM relationships WHERE rel_type = ?3 AND valid_until IS NULL
           AND json_extract(properties, '$.context') IS ?4
           AND ((from_id = ?1 AND to_id = ?2) OR (from_id = ?2 AND to_id = ?1))"
    } else {
        "SELECT 1 FROM relationships WHERE rel_type = ?3 AND valid_until IS NULL
           AND json_extract(properties, '$.context') IS ?4 AND from_id = ?1 AND to_id = ?2"
    };
    Ok(first_row(
        conn,
        sql,
        libsql::params![
            r.from_id.as_str(),
            r.to_id.as_str(),
            r.rel_type.as_str(),
            r.context.clone()
        ],
        "looking for an identical link",
    )
    .await?
    .is_some())
}

pub(super) async fn insert_memory(conn: &Connection, m: &ImportedMemory) -> Result<()> {
    let properties = codec::encode_memory(
        &m.id,
        &m.memory,
        &MemoryTimes {
            created_at: &m.created_at,
            updated_at: &m.updated_at,
            usage_count: m.usage_count,
            last_accessed: m.last_accessed.as_deref(),
            effectiveness: m.effectiveness,
        },
    );
    conn.execute(
        "INSERT INTO nodes (id, label, properties, created_at, updated_at) VALUES (?1, 'Memory', ?2, ?3, ?4)",
        libsql::params![
            m.id.as_str(),
            properties,
            column_timestamp(&m.created_at),
            column_timestamp(&m.updated_at)
        ],
    )
    .await
    .doing("importing a memory")?;
    Ok(())
}

pub(super) async fn insert_relationship(
    conn: &Connection,
    r: &ImportedRelationship,
    invalidated_by: Option<&str>,
) -> Result<()> {
    let id =
        r.id.clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let now = now_iso();
    let created_at = r
        .extra
        .get("created_at")
        .and_then(Value::as_str)
        .or(r.valid_from.as_deref())
        .unwrap_or(&now)
        .to_string();
    let valid_from = r.valid_from.clone().unwrap_or_else(|| created_at.clone());
    let recorded_at = r.recorded_at.clone().unwrap_or_else(|| created_at.clone());
    // MemoryGraph's keys in its order with its defaults, then what the source carried,
    // then the values checked on the way in.
    let mut p = Map::new();
    p.insert("strength".into(), r.strength.into());
    p.insert("confidence".into(), r.confidence.into());
    p.insert("context".into(), r.context.clone().into());
    p.insert("evidence_count".into(), 1.into());
    p.insert("success_rate".into(), Value::Null);
    p.insert("created_at".into(), created_at.clone().into());
    p.insert("last_validated".into(), created_at.clone().into());
    p.insert("validation_count".into(), 0.into());
    p.insert("counter_evidence_count".into(), 0.into());
    for (key, value) in &r.extra {
        p.insert(key.clone(), value.clone());
    }
    p.insert("strength".into(), r.strength.into());
    p.insert("confidence".into(), r.confidence.into());
    p.insert("context".into(), r.context.clone().into());
    p.insert("valid_from".into(), valid_from.clone().into());
    p.insert("valid_until".into(), r.valid_until.clone().into());
    p.insert("recorded_at".into(), recorded_at.clone().into());
    p.insert("invalidated_by".into(), invalidated_by.into());
    p.insert("id".into(), id.clone().into());
    conn.execute(
        "INSERT INTO relationships (id, from_id, to_id, rel_type, properties, created_at, valid_from,
                                    valid_until, recorded_at, invalidated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        libsql::params![
            id,
            r.from_id.as_str(),
            r.to_id.as_str(),
            r.rel_type.as_str(),
            pyjson::to_string(&p),
            column_timestamp(&created_at),
            valid_from,
            r.valid_until.clone(),
            recorded_at,
            invalidated_by
        ],
    )
    .await
    .doing("importing a relationship")?;
    Ok(())
}

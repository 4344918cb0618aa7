//! Copying a local file into a primary (`memorygraph migrate --to-replica --from FILE`):
//! read from the file (opened read-only, so it stays exactly as it was), written to the
//! primary with the same ids, and verified row by row, by content. A row the primary
//! already holds in another version is not overwritten: it is reported as a conflict (the
//! primary's version kept, both shown), never counted as verified. Re-running copies
//! nothing twice.

use std::path::Path;

use libsql::{Connection, TransactionBehavior, Value};
use serde::Serialize;

use super::feed::{self, Kind};
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::replica::{Primary, libsql_url};
use crate::backend::{Record, all_rows, schema};

/// Rows copied per transaction on the primary.
const BATCH: usize = 200;

#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    pub memories: u64,
    /// Memories the primary held already, in the same version.
    pub memories_already_there: u64,
    pub relationships: u64,
    pub relationships_already_there: u64,
    /// FNV-1a over the sorted memory ids, identical on both sides.
    pub id_checksum: String,
    /// Rows the primary holds in another version: kept there, listed here.
    pub conflicts: Vec<MigrationConflict>,
}

/// A row of the file that the primary holds in another version.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationConflict {
    /// `node` (a memory) or `relationship`.
    pub kind: &'static str,
    pub id: String,
    pub in_file: String,
    pub on_primary: String,
}

const NODE_COLUMNS: &str = "id, label, properties, created_at, updated_at";
const RELATIONSHIP_COLUMNS: &str = "id, from_id, to_id, rel_type, properties, created_at, valid_from, valid_until, recorded_at, invalidated_by";

/// Copies every node and relationship of the local file `from` into the primary.
pub async fn copy_to_primary(from: &Path, primary: &Primary) -> Result<MigrationReport> {
    if !from.is_file() {
        return Err(BackendError::Refused(format!(
            "{} is not a file",
            from.display()
        )));
    }
    let source_db = libsql::Builder::new_local(from)
        .flags(libsql::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .build()
        .await
        .doing("opening the local file read-only")?;
    let source = source_db
        .connect()
        .doing("opening the local file read-only")?;
    let nodes = rows(
        &source,
        &format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY id"),
    )
    .await?;
    let relationships = rows(
        &source,
        &format!("SELECT {RELATIONSHIP_COLUMNS} FROM relationships ORDER BY id"),
    )
    .await?;

    let remote_db = libsql::Builder::new_remote(
        libsql_url(&primary.url),
        primary.token.clone().unwrap_or_default(),
    )
    .build()
    .await
    .doing("connecting to the primary")?;
    let remote = remote_db.connect().doing("connecting to the primary")?;
    schema::migrate(&remote).await?;

    let (memories, memories_already_there) =
        insert_all(&remote, "nodes", NODE_COLUMNS, &nodes).await?;
    let (relationships_copied, relationships_already_there) = insert_all(
        &remote,
        "relationships",
        RELATIONSHIP_COLUMNS,
        &relationships,
    )
    .await?;

    let source_ids: Vec<String> = nodes.iter().map(|r| r.text(0)).collect();
    let mut found = Vec::with_capacity(source_ids.len());
    for chunk in source_ids.chunks(BATCH) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let params: Vec<Value> = chunk.iter().map(|id| Value::from(id.clone())).collect();
        let rows = remote
            .query(
                &format!("SELECT id FROM nodes WHERE id IN ({marks}) ORDER BY id"),
                params,
            )
            .await
            .doing("verifying the copy")?;
        found.extend(
            all_rows(rows, "verifying the copy")
                .await?
                .iter()
                .map(|r| r.text(0)),
        );
    }
    found.sort();
    let (want, got) = (checksum(&source_ids), checksum(&found));
    if found.len() != source_ids.len() || want != got {
        return Err(BackendError::Refused(format!(
            "verification failed: the local file has {} memories (checksum {want}), the primary holds {} of them (checksum {got})",
            source_ids.len(),
            found.len()
        )));
    }
    // Every row, by content: what differs is a conflict, never verified.
    let mut conflicts = Vec::new();
    for (kind, rows) in [(Kind::Node, &nodes), (Kind::Relationship, &relationships)] {
        let width = kind.columns().len();
        for chunk in rows.chunks(BATCH) {
            let ids: Vec<String> = chunk.iter().map(|r| r.text(0)).collect();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let there = feed::read_rows(&remote, kind, &refs).await?;
            for row in chunk {
                let mine: feed::Columns = (0..width).map(|i| row.value(i).clone()).collect();
                match there.get(&row.text(0)) {
                    Some(theirs) if !feed::same(&mine, theirs) => {
                        conflicts.push(MigrationConflict {
                            kind: kind.as_str(),
                            id: row.text(0),
                            in_file: super::state::row_json(kind, &mine),
                            on_primary: super::state::row_json(kind, theirs),
                        })
                    }
                    Some(_) => {}
                    None if kind == Kind::Relationship => {}
                    None => {
                        return Err(BackendError::Refused(format!(
                            "verification failed: memory {} is not on the primary",
                            row.text(0)
                        )));
                    }
                }
            }
        }
    }
    let differing = |k: Kind| conflicts.iter().filter(|c| c.kind == k.as_str()).count() as u64;
    Ok(MigrationReport {
        memories,
        memories_already_there: memories_already_there - differing(Kind::Node),
        relationships: relationships_copied,
        relationships_already_there: relationships_already_there - differing(Kind::Relationship),
        id_checksum: want,
        conflicts,
    })
}

async fn rows(conn: &Connection, sql: &str) -> Result<Vec<Record>> {
    let rows = conn.query(sql, ()).await.doing("reading the local file")?;
    all_rows(rows, "reading the local file").await
}

/// Inserts rows that are not there yet; returns (inserted, already there).
async fn insert_all(
    remote: &Connection,
    table: &str,
    columns: &str,
    rows: &[Record],
) -> Result<(u64, u64)> {
    let width = columns.split(',').count();
    let marks = vec!["?"; width].join(", ");
    let sql = format!("INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})");
    let mut inserted = 0;
    for batch in rows.chunks(BATCH) {
        let tx = remote
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .await
            .doing("copying to the primary")?;
        for row in batch {
            let params: Vec<Value> = (0..width).map(|i| row.value(i).clone()).collect();
            inserted += tx
                .execute(&sql, params)
                .await
                .doing("copying to the primary")?;
        }
        tx.commit().await.doing("copying to the primary")?;
    }
    Ok((inserted, rows.len() as u64 - inserted))
}

fn checksum(sorted_ids: &[String]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for id in sorted_ids {
        for byte in id.bytes().chain(std::iter::once(b'\n')) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

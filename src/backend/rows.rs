//! Reading memory and relationship rows: one memory's properties, decoding rows into
//! memories and relationships. Every part of the backend that reads them shares these.

use libsql::{Connection, Value};

use super::codec::{self, RelationshipRow as RelationshipColumns};
use super::error::{BackendError, DbContext, Result};
use super::{Record, all_rows, first_row};
use crate::model::{Memory, Relationship};

/// Reads the raw properties of a memory, or says it does not exist.
pub(crate) async fn load_properties(conn: &Connection, id: &str) -> Result<String> {
    match first_row(
        conn,
        "SELECT properties FROM nodes WHERE id = ?1 AND label = 'Memory'",
        libsql::params![id],
        "reading a memory",
    )
    .await?
    {
        Some(row) => Ok(row.text(0)),
        None => Err(BackendError::NotFound {
            what: "Memory",
            id: id.to_string(),
        }),
    }
}

pub(crate) async fn load_memory(conn: &Connection, id: &str) -> Result<Memory> {
    let properties = load_properties(conn, id).await?;
    decode(id, &properties)
}

pub(crate) fn decode(id: &str, properties: &str) -> Result<Memory> {
    codec::decode_memory(id, properties).map_err(|source| BackendError::CorruptRow {
        what: "memory",
        id: id.to_string(),
        source,
    })
}

/// Runs a query whose first two columns are `id, properties` and decodes each row.
pub(crate) async fn query_memories(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
) -> Result<Vec<Memory>> {
    let rows = conn.query(sql, params).await.doing("reading memories")?;
    all_rows(rows, "reading memories")
        .await?
        .iter()
        .map(|row| decode(&row.text(0), &row.text(1)))
        .collect()
}

/// The columns `relationship_from_row` expects, prefixed with `r.`.
pub(crate) const RELATIONSHIP_COLUMNS: &str =
    "r.id, r.from_id, r.to_id, r.rel_type, r.properties, r.valid_from, r.valid_until";

/// Decodes the seven [`RELATIONSHIP_COLUMNS`] starting at `at`.
pub(crate) fn relationship_from_row(row: &Record, at: usize) -> Result<Relationship> {
    Ok(codec::decode_relationship(RelationshipColumns {
        id: row.text(at),
        from_id: row.text(at + 1),
        to_id: row.text(at + 2),
        rel_type: row.text(at + 3),
        properties: row.text(at + 4),
        valid_from: row.opt_text(at + 5),
        valid_until: row.opt_text(at + 6),
    }))
}

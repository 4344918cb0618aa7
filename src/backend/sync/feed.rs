//! The rows sync moves and the feed that says which ones changed (`memorygraph_feed`, made
//! by the schema's triggers). Sync copies whole rows of `nodes` and `relationships`, never
//! operations: what a row holds on one side is written as it is on the other, so anything
//! that writes the file — a tool, an import, MemoryGraph itself — is synced the same way.

use std::collections::HashMap;

use libsql::{Connection, Value};

use crate::backend::error::{DbContext, Result};
use crate::backend::{Record, all_rows, scalar_i64};

/// Which table a synced row lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Node,
    Relationship,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Relationship => "relationship",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "node" => Some(Kind::Node),
            "relationship" => Some(Kind::Relationship),
            _ => None,
        }
    }

    pub fn table(self) -> &'static str {
        match self {
            Kind::Node => "nodes",
            Kind::Relationship => "relationships",
        }
    }

    /// Every column, `id` first: a row is copied whole.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Node => &["id", "label", "properties", "created_at", "updated_at"],
            Kind::Relationship => &[
                "id",
                "from_id",
                "to_id",
                "rel_type",
                "properties",
                "created_at",
                "valid_from",
                "valid_until",
                "recorded_at",
                "invalidated_by",
            ],
        }
    }
}

/// One row's columns in [`Kind::columns`] order.
pub type Columns = Vec<Value>;

/// A changed row named by the feed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Changed {
    pub kind: Kind,
    pub id: String,
}

/// Raw feed entries past `after`, oldest first, at most `limit`: (seq, kind, id); and the
/// last seq read.
pub async fn entries_after(
    conn: &Connection,
    after: i64,
    limit: i64,
) -> Result<(Vec<(i64, Kind, String)>, Option<i64>)> {
    let rows = conn
        .query(
            "SELECT seq, kind, row_id FROM memorygraph_feed WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            libsql::params![after, limit],
        )
        .await
        .doing("reading the change feed")?;
    let rows = all_rows(rows, "reading the change feed").await?;
    let last = rows.last().map(|r| r.int(0));
    Ok((
        rows.iter()
            .filter_map(|r| Kind::parse(r.str(1)).map(|k| (r.int(0), k, r.text(2))))
            .collect(),
        last,
    ))
}

/// The rows named by feed entries, once each, in the order they first changed (a memory
/// before the links made to it), leaving out entries whose seq `skip` says.
pub fn distinct(entries: &[(i64, Kind, String)], skip: impl Fn(i64) -> bool) -> Vec<Changed> {
    let mut seen = std::collections::HashSet::new();
    entries
        .iter()
        .filter(|(seq, _, _)| !skip(*seq))
        .map(|(_, kind, id)| Changed {
            kind: *kind,
            id: id.clone(),
        })
        .filter(|c| seen.insert(c.clone()))
        .collect()
}

/// The distinct rows named by feed entries past `after` (see [`distinct`]), and the last
/// seq read. At most `limit` entries are read per call.
pub async fn changed_since(
    conn: &Connection,
    after: i64,
    limit: i64,
) -> Result<(Vec<Changed>, Option<i64>)> {
    let (entries, last) = entries_after(conn, after, limit).await?;
    Ok((distinct(&entries, |_| false), last))
}

/// The current version of each changed row (`None`: not there), in the order given.
pub async fn current_rows(
    conn: &Connection,
    changed: &[Changed],
) -> Result<Vec<(Changed, Option<Columns>)>> {
    let mut found = HashMap::new();
    for kind in [Kind::Node, Kind::Relationship] {
        let ids: Vec<&str> = changed
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.id.as_str())
            .collect();
        found.insert(kind, read_rows(conn, kind, &ids).await?);
    }
    Ok(changed
        .iter()
        .map(|c| {
            let row = found.get_mut(&c.kind).and_then(|rows| rows.remove(&c.id));
            (c.clone(), row)
        })
        .collect())
}

/// The feed's newest seq (0 when empty).
pub async fn last_seq(conn: &Connection) -> Result<i64> {
    scalar_i64(
        conn,
        "SELECT coalesce(max(seq), 0) FROM memorygraph_feed",
        vec![],
        "reading the change feed",
    )
    .await
}

/// How many feed entries follow `after`.
pub async fn count_after(conn: &Connection, after: i64) -> Result<i64> {
    scalar_i64(
        conn,
        "SELECT count(*) FROM memorygraph_feed WHERE seq > ?1",
        vec![Value::from(after)],
        "counting changes",
    )
    .await
}

/// Reads rows by id, whole; absent ids are absent from the map.
pub async fn read_rows(
    conn: &Connection,
    kind: Kind,
    ids: &[&str],
) -> Result<HashMap<String, Columns>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(200) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let params: Vec<Value> = chunk.iter().map(|id| Value::from(id.to_string())).collect();
        let rows = conn
            .query(
                &format!(
                    "SELECT {} FROM {} WHERE id IN ({marks})",
                    kind.columns().join(", "),
                    kind.table()
                ),
                params,
            )
            .await
            .doing("reading rows to sync")?;
        for r in all_rows(rows, "reading rows to sync").await? {
            out.insert(r.text(0), columns_of(&r, kind));
        }
    }
    Ok(out)
}

fn columns_of(r: &Record, kind: Kind) -> Columns {
    (0..kind.columns().len())
        .map(|i| r.value(i).clone())
        .collect()
}

/// Writes a row as given: inserted, or its columns replaced in place (an update, so the
/// row keeps its rowid and nothing cascades). A relationship whose memories are not both
/// there is not written; returns whether the row was written.
pub async fn put_row(conn: &Connection, kind: Kind, row: &Columns) -> Result<bool> {
    let n = conn
        .execute(&put_sql(kind), row.clone())
        .await
        .doing("writing a synced row")?;
    Ok(n > 0)
}

/// The statement of [`put_row`], with `?N` parameters.
fn put_sql(kind: Kind) -> String {
    let columns = kind.columns();
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    upsert(kind, &marks)
}

/// An upsert of one row whose values are `values` (parameters or literals).
fn upsert(kind: Kind, values: &[String]) -> String {
    let columns = kind.columns();
    let set: Vec<String> = columns[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let guard = match kind {
        Kind::Node => "true".to_string(),
        Kind::Relationship => format!(
            "EXISTS (SELECT 1 FROM nodes WHERE id = {}) AND EXISTS (SELECT 1 FROM nodes WHERE id = {})",
            values[1], values[2]
        ),
    };
    format!(
        "INSERT INTO {table} ({cols}) SELECT {vals} WHERE {guard} ON CONFLICT(id) DO UPDATE SET {set}",
        table = kind.table(),
        cols = columns.join(", "),
        vals = values.join(", "),
        set = set.join(", ")
    )
}

/// Removes a row; a memory goes with every relationship that touches it (in that order, so
/// no foreign key is ever left dangling).
pub async fn remove_row(conn: &Connection, kind: Kind, id: &str) -> Result<()> {
    for sql in remove_sql(kind, &sql_text(id)) {
        conn.execute(&sql, ())
            .await
            .doing("removing a synced row")?;
    }
    Ok(())
}

fn remove_sql(kind: Kind, id: &str) -> Vec<String> {
    match kind {
        Kind::Node => vec![
            format!("DELETE FROM relationships WHERE from_id = {id} OR to_id = {id}"),
            format!("DELETE FROM nodes WHERE id = {id}"),
        ],
        Kind::Relationship => vec![format!("DELETE FROM relationships WHERE id = {id}")],
    }
}

/// The statements that make the other side hold `row` (or, with `None`, not hold `id`), as
/// SQL text: sent to the primary as one batch, one round trip for many rows.
pub fn statements(kind: Kind, id: &str, row: Option<&Columns>) -> Option<Vec<String>> {
    match row {
        Some(row) => {
            let values: Option<Vec<String>> = row.iter().map(literal).collect();
            Some(vec![upsert(kind, &values?)])
        }
        None => Some(remove_sql(kind, &sql_text(id))),
    }
}

/// A value as an SQL literal; `None` for text SQL cannot hold as a literal (a NUL).
fn literal(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) if f.is_finite() => format!("{f:?}"),
        Value::Real(_) => return None,
        Value::Text(s) if s.contains('\0') => return None,
        Value::Text(s) => sql_text(s),
        Value::Blob(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("X'{hex}'")
        }
    })
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Whether two rows hold the same values.
pub fn same(a: &Columns, b: &Columns) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn file() -> (libsql::Database, Connection) {
        crate::backend::schema::test_database().await
    }

    /// Rows written as literals in one batch read back exactly as they were, quotes and
    /// all; a deleted memory takes its links with it.
    #[tokio::test]
    async fn rows_survive_the_trip_as_literals() {
        let (_a, from) = file().await;
        let (_b, to) = file().await;
        from.execute_batch(
            "INSERT INTO nodes (id, label, properties) VALUES ('m1', 'Memory', '{\"title\":\"it''s \\\"q\\\"\"}'), ('m2', 'Memory', '{}');
             INSERT INTO relationships (id, from_id, to_id, rel_type, properties) VALUES ('r1', 'm1', 'm2', 'SOLVES', '{}');",
        )
        .await
        .unwrap();
        let mut batch = Vec::new();
        for (kind, id) in [
            (Kind::Node, "m1"),
            (Kind::Node, "m2"),
            (Kind::Relationship, "r1"),
        ] {
            let rows = read_rows(&from, kind, &[id]).await.unwrap();
            batch.extend(statements(kind, id, rows.get(id)).unwrap());
        }
        to.execute_batch(&batch.join(";\n")).await.unwrap();
        for kind in [Kind::Node, Kind::Relationship] {
            let ids = ["m1", "m2", "r1"];
            let a = read_rows(&from, kind, &ids).await.unwrap();
            let b = read_rows(&to, kind, &ids).await.unwrap();
            assert_eq!(a.len(), b.len());
            for (id, row) in &a {
                assert!(same(row, &b[id]), "{id}");
            }
        }
        to.execute_batch(&statements(Kind::Node, "m1", None).unwrap().join(";"))
            .await
            .unwrap();
        assert!(
            read_rows(&to, Kind::Relationship, &["r1"])
                .await
                .unwrap()
                .is_empty()
        );
        // A link to a memory that is not there is not written.
        let r1 = read_rows(&from, Kind::Relationship, &["r1"]).await.unwrap();
        assert!(!put_row(&to, Kind::Relationship, &r1["r1"]).await.unwrap());
    }

    /// Every writer's change is in the feed, once per row and in order; a pull's are not.
    #[tokio::test]
    async fn the_feed_lists_changes_but_not_pulled_rows() {
        let (_a, conn) = file().await;
        conn.execute_batch(
            "INSERT INTO nodes (id, label, properties) VALUES ('a', 'Memory', '{}'), ('b', 'Memory', '{}');
             UPDATE nodes SET properties = '{\"x\":1}' WHERE id = 'a';
             INSERT INTO relationships (id, from_id, to_id, rel_type, properties) VALUES ('r', 'a', 'b', 'SOLVES', '{}');
             DELETE FROM nodes WHERE id = 'b';",
        )
        .await
        .unwrap();
        let (changed, last) = changed_since(&conn, 0, 100).await.unwrap();
        let names: Vec<(Kind, &str)> = changed.iter().map(|c| (c.kind, c.id.as_str())).collect();
        assert_eq!(
            names,
            [
                (Kind::Node, "a"),
                (Kind::Node, "b"),
                (Kind::Relationship, "r")
            ]
        );
        let last = last.unwrap();
        conn.execute_batch(
            "BEGIN; UPDATE memorygraph_meta SET value = '1' WHERE key = 'applying_pull';
             INSERT INTO nodes (id, label, properties) VALUES ('c', 'Memory', '{}');
             UPDATE memorygraph_meta SET value = '0' WHERE key = 'applying_pull'; COMMIT;",
        )
        .await
        .unwrap();
        assert_eq!(last_seq(&conn).await.unwrap(), last);
    }
}

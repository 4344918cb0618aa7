//! How reads run: one snapshot for a multi-statement read, and rows read into plain values
//! with the column helpers every query uses.

use libsql::{Connection, Row, Value};

use super::TursoBackend;
use super::error::{DbContext, Result};

/// A consistent view for a multi-statement read: a deferred transaction (one snapshot), in
/// both modes, since replica mode reads the same kind of local file.
pub(crate) struct Reading<'a>(libsql::Transaction, std::marker::PhantomData<&'a ()>);

impl std::ops::Deref for Reading<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl Reading<'_> {
    pub(crate) async fn finish(self) -> Result<()> {
        self.0.commit().await.doing("finishing a read")
    }
}

impl TursoBackend {
    pub(crate) async fn reading<'a>(&self, conn: &'a Connection) -> Result<Reading<'a>> {
        Ok(Reading(
            conn.transaction().await.doing("starting a read")?,
            std::marker::PhantomData,
        ))
    }
}

/// One result row, read out of the statement. libsql's `Row` is a view of the statement's
/// current row and changes when the statement steps, so rows are copied before moving on.
#[derive(Clone)]
pub(crate) struct Record(Vec<Value>);

impl Record {
    pub(super) fn read(row: &Row, doing: &'static str) -> Result<Record> {
        (0..row.column_count())
            .map(|i| row.get_value(i).doing(doing))
            .collect::<Result<Vec<_>>>()
            .map(Record)
    }

    pub(crate) fn value(&self, idx: usize) -> &Value {
        self.0.get(idx).unwrap_or(&Value::Null)
    }

    /// A nullable text column.
    pub(crate) fn opt_text(&self, idx: usize) -> Option<String> {
        match self.value(idx) {
            Value::Null => None,
            Value::Text(s) => Some(s.clone()),
            Value::Integer(i) => Some(i.to_string()),
            Value::Real(f) => Some(f.to_string()),
            Value::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        }
    }

    /// A text column as borrowed text ("" when it is not text).
    pub(crate) fn str(&self, idx: usize) -> &str {
        match self.value(idx) {
            Value::Text(s) => s,
            _ => "",
        }
    }

    pub(crate) fn text(&self, idx: usize) -> String {
        self.opt_text(idx).unwrap_or_default()
    }

    pub(crate) fn int(&self, idx: usize) -> i64 {
        match self.value(idx) {
            Value::Integer(i) => *i,
            Value::Real(f) => *f as i64,
            _ => 0,
        }
    }

    pub(crate) fn real(&self, idx: usize) -> Option<f64> {
        match self.value(idx) {
            Value::Integer(i) => Some(*i as f64),
            Value::Real(f) => Some(*f),
            _ => None,
        }
    }
}

/// Reads every row of a query.
pub(super) async fn all_rows(mut rows: libsql::Rows, doing: &'static str) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.doing(doing)? {
        out.push(Record::read(&row, doing)?);
    }
    Ok(out)
}

/// Runs a query and reads its first row, if any.
pub(super) async fn first_row(
    conn: &Connection,
    sql: &str,
    params: impl libsql::params::IntoParams,
    doing: &'static str,
) -> Result<Option<Record>> {
    let mut rows = conn.query(sql, params).await.doing(doing)?;
    match rows.next().await.doing(doing)? {
        Some(row) => Ok(Some(Record::read(&row, doing)?)),
        None => Ok(None),
    }
}

/// Reads a single integer (a count, a sum).
pub(super) async fn scalar_i64(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
    doing: &'static str,
) -> Result<i64> {
    Ok(first_row(conn, sql, params, doing)
        .await?
        .map(|r| r.int(0))
        .unwrap_or(0))
}

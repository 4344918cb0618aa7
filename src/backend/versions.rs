//! A memory's versions: the chain of `REPLACES` links through it, read whole so that
//! `get_memory` shows where a memory stands — what it replaced and what replaced it.

use libsql::Connection;
use serde::Serialize;

use super::error::{DbContext, Result};
use super::{TursoBackend, all_rows};

/// Most versions listed on either side of a memory.
pub const MOST_VERSIONS: i64 = 10;

/// One version of a memory.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Version {
    pub id: String,
    pub title: String,
    pub created_at: String,
    /// How far from the memory asked for: 0 is that memory, 1 the one that replaced it, -1
    /// the one it replaced.
    pub step: i64,
}

impl TursoBackend {
    /// The versions of a memory, newest first, up to [`MOST_VERSIONS`] on each side; empty
    /// when it neither replaced nor was replaced by another.
    pub async fn versions_of(&self, id: &str) -> Result<Vec<Version>> {
        let conn = self.conn.lock().await;
        chain(&conn, id).await
    }
}

async fn chain(conn: &Connection, id: &str) -> Result<Vec<Version>> {
    let rows = conn
        .query(
            "WITH RECURSIVE
               newer(id, step) AS (
                 SELECT ?1, 0
                 UNION
                 SELECT r.from_id, newer.step + 1 FROM relationships r JOIN newer ON r.to_id = newer.id
                 WHERE r.rel_type = 'REPLACES' AND r.valid_until IS NULL AND newer.step < ?2),
               older(id, step) AS (
                 SELECT ?1, 0
                 UNION
                 SELECT r.to_id, older.step - 1 FROM relationships r JOIN older ON r.from_id = older.id
                 WHERE r.rel_type = 'REPLACES' AND r.valid_until IS NULL AND older.step > -?2),
               steps(id, step) AS (SELECT id, max(step) FROM newer GROUP BY id
                                   UNION ALL
                                   SELECT id, min(step) FROM older
                                   WHERE step < 0 AND id NOT IN (SELECT id FROM newer) GROUP BY id)
             SELECT s.id, coalesce(json_extract(n.properties, '$.title'), ''),
                    coalesce(json_extract(n.properties, '$.created_at'), ''), s.step
             FROM steps s JOIN nodes n ON n.id = s.id
             ORDER BY s.step DESC",
            libsql::params![id, MOST_VERSIONS],
        )
        .await
        .doing("reading a memory's versions")?;
    let versions: Vec<Version> = all_rows(rows, "reading a memory's versions")
        .await?
        .iter()
        .map(|r| Version {
            id: r.text(0),
            title: r.text(1),
            created_at: r.text(2),
            step: r.int(3),
        })
        .collect();
    Ok(if versions.len() > 1 {
        versions
    } else {
        Vec::new()
    })
}

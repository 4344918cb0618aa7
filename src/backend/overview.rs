//! The whole graph at a glance, for the web view's overview: the most recently changed
//! memories (at most a few thousand) and the current relationships between them, with only
//! what a drawing needs.

use serde::Serialize;

use super::error::{DbContext, Result};
use super::{TursoBackend, all_rows};

/// Most memories an overview draws: past this a drawing stops being readable.
pub const OVERVIEW_MAX: u32 = 2_000;

/// A memory as the overview draws it.
#[derive(Debug, Clone, Serialize)]
pub struct OverviewNode {
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub memory_type: String,
}

/// A current relationship between two drawn memories.
#[derive(Debug, Clone, Serialize)]
pub struct OverviewEdge {
    pub id: String,
    pub from_id: String,
    pub to_id: String,
    #[serde(rename = "type")]
    pub rel_type: String,
}

/// The drawn part of the graph, and how much the whole holds.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub nodes: Vec<OverviewNode>,
    pub edges: Vec<OverviewEdge>,
    /// Memories in the database (more than drawn when it holds over the limit).
    pub total_memories: i64,
}

impl TursoBackend {
    /// The `limit` most recently changed memories (at most [`OVERVIEW_MAX`]) and the
    /// current relationships whose two ends are among them, in one read.
    pub async fn overview(&self, limit: u32) -> Result<Overview> {
        let limit = limit.clamp(1, OVERVIEW_MAX);
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        let doing = "reading the overview";
        let total_memories = super::scalar_i64(
            &tx,
            "SELECT count(*) FROM nodes WHERE label = 'Memory'",
            vec![],
            doing,
        )
        .await?;
        // The drawn memories, once as rows and once as the set the links must stay within,
        // from one definition and one snapshot.
        let drawn =
            "SELECT id FROM nodes WHERE label = 'Memory' ORDER BY updated_at DESC, id LIMIT ?1";
        let rows = tx
            .query(
                &format!(
                    "SELECT n.id, coalesce(json_extract(n.properties, '$.title'), ''),
                            coalesce(json_extract(n.properties, '$.type'), 'general')
                     FROM ({drawn}) d JOIN nodes n ON n.id = d.id
                     ORDER BY n.updated_at DESC, n.id"
                ),
                [i64::from(limit)],
            )
            .await
            .doing(doing)?;
        let nodes = all_rows(rows, doing)
            .await?
            .into_iter()
            .map(|r| OverviewNode {
                id: r.text(0),
                title: r.text(1),
                memory_type: r.text(2),
            })
            .collect();
        let rows = tx
            .query(
                &format!(
                    "WITH drawn AS ({drawn})
                     SELECT id, from_id, to_id, rel_type FROM relationships
                     WHERE valid_until IS NULL
                       AND from_id IN (SELECT id FROM drawn) AND to_id IN (SELECT id FROM drawn)"
                ),
                [i64::from(limit)],
            )
            .await
            .doing(doing)?;
        let edges = all_rows(rows, doing)
            .await?
            .into_iter()
            .map(|r| OverviewEdge {
                id: r.text(0),
                from_id: r.text(1),
                to_id: r.text(2),
                rel_type: r.text(3),
            })
            .collect();
        tx.finish().await?;
        Ok(Overview {
            nodes,
            edges,
            total_memories,
        })
    }
}

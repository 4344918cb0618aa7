//! Relationships between memories: creating them (with the cycle rule), walking them, and
//! finding them by what their context says.

use std::collections::HashSet;

use libsql::{Connection, Value};
use serde::Serialize;

use super::error::{BackendError, DbContext, Result};
use super::queue::RelationshipRow;
use super::rows::{RELATIONSHIP_COLUMNS, decode, load_properties, relationship_from_row};
use super::{TursoBackend, all_rows};
use crate::model::time_words::AsOf;
use crate::model::{Memory, NewRelationship, Relationship, RelationshipType};

/// A memory reached by walking the graph, with the link that reached it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RelatedMemory {
    /// Hops from the starting memory (1 = a direct neighbour).
    pub depth: u32,
    /// The strongest current relationship linking this memory to the previous hop.
    pub relationship: Relationship,
    pub memory: Memory,
}

/// Filters for finding relationships by their structured context.
#[derive(Debug, Clone, Default)]
pub struct RelationshipQuery {
    pub scope: Option<String>,
    pub conditions: Vec<String>,
    pub has_evidence: Option<bool>,
    pub evidence: Vec<String>,
    pub components: Vec<String>,
    pub temporal: Option<String>,
    /// Words of the whole context text.
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// The context JSON of a relationship row `r`, or NULL when it is not valid JSON.
const CONTEXT_JSON: &str = "iif(json_valid(json_extract(r.properties, '$.context')), json_extract(r.properties, '$.context'), NULL)";

impl TursoBackend {
    /// Creates a relationship. An identical current link (same ends and type, either
    /// direction for symmetric types) is returned instead of adding a second copy; the
    /// boolean says whether the link is new.
    pub(super) async fn relate_online(
        &self,
        new: &NewRelationship,
        row: &RelationshipRow,
        allow_cycles: bool,
    ) -> Result<(Relationship, bool)> {
        let outcome = self
            .write("starting a relationship", async |tx| {
                for id in [&new.from_id, &new.to_id] {
                    load_properties(tx, id).await?;
                }
                if let Some(existing) = find_same_link(tx, new).await? {
                    return Ok((existing, false));
                }
                if !allow_cycles && would_close_cycle(tx, new).await? {
                    return Err(BackendError::Refused(cycle_refusal(new)));
                }
                row.insert(tx).await?;
                Ok((read_relationship(tx, &row.id).await?, true))
            })
            .await?;
        if outcome.1 {
            self.after_write();
        }
        Ok(outcome)
    }

    /// Walks current relationships out from `id`, both directions, up to `max_depth` hops,
    /// optionally only along some types. Each memory appears once, at its shortest
    /// distance, with its strongest link; ordered by depth, then strength.
    pub async fn related_memories(
        &self,
        id: &str,
        types: &[RelationshipType],
        max_depth: u32,
        as_of: Option<&AsOf>,
    ) -> Result<Vec<RelatedMemory>> {
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        load_properties(&tx, id).await?;
        let related = walk(&tx, id, types, max_depth, as_of).await?;
        tx.finish().await?;
        Ok(related)
    }

    /// Finds current relationships whose extracted context matches every given filter
    /// (every word of a filter occurs, case-insensitively, inside the field's values): one page of them, strongest first, and how many match in all.
    pub async fn search_relationships_by_context(
        &self,
        q: &RelationshipQuery,
    ) -> Result<(Vec<Relationship>, u64)> {
        let mut clauses = vec![
            "r.valid_until IS NULL".to_string(),
            format!("{CONTEXT_JSON} IS NOT NULL"),
        ];
        let mut params: Vec<Value> = Vec::new();
        let bind = |v: String, params: &mut Vec<Value>| {
            params.push(v.into());
            format!("?{}", params.len())
        };
        if let Some(scope) = &q.scope {
            let p = bind(scope.clone(), &mut params);
            clauses.push(format!("json_extract({CONTEXT_JSON}, '$.scope') = {p}"));
        }
        for (field, value) in [("temporal", &q.temporal), ("text", &q.text)] {
            let Some(value) = value else { continue };
            for word in query_words(std::slice::from_ref(value)) {
                let p = bind(word, &mut params);
                clauses.push(format!(
                    "instr(lower(coalesce(json_extract({CONTEXT_JSON}, '$.{field}'), '')), {p}) > 0"
                ));
            }
        }
        match q.has_evidence {
            Some(true) => clauses.push(format!(
                "json_array_length({CONTEXT_JSON}, '$.evidence') > 0"
            )),
            Some(false) => clauses.push(format!(
                "coalesce(json_array_length({CONTEXT_JSON}, '$.evidence'), 0) = 0"
            )),
            None => {}
        }
        for (field, wanted) in [
            ("conditions", &q.conditions),
            ("evidence", &q.evidence),
            ("components", &q.components),
        ] {
            // Every word of every item, each somewhere in the field's values.
            for word in query_words(wanted) {
                let p = bind(word, &mut params);
                clauses.push(format!(
                    "EXISTS (SELECT 1 FROM json_each({CONTEXT_JSON}, '$.{field}') e WHERE instr(lower(e.value), {p}) > 0)"
                ));
            }
        }
        let sql = format!(
            "SELECT {RELATIONSHIP_COLUMNS} FROM relationships r WHERE {}
             ORDER BY json_extract(r.properties, '$.strength') DESC, r.created_at DESC, r.id
             LIMIT {} OFFSET {}",
            clauses.join(" AND "),
            q.limit,
            q.offset
        );
        let count = format!(
            "SELECT count(*) FROM relationships r WHERE {}",
            clauses.join(" AND ")
        );
        let conn = self.conn.lock().await;
        let tx = self.reading(&conn).await?;
        let total =
            super::scalar_i64(&tx, &count, params.clone(), "counting relationships").await?;
        let rows = tx
            .query(&sql, params)
            .await
            .doing("searching relationships")?;
        let found = all_rows(rows, "searching relationships")
            .await?
            .iter()
            .map(|row| relationship_from_row(row, 0))
            .collect::<Result<Vec<_>>>()?;
        tx.finish().await?;
        Ok((found, total.max(0) as u64))
    }

    /// The ids of the memories within `max_depth` hops of `id` (not `id` itself).
    pub(super) async fn neighbourhood(
        &self,
        conn: &Connection,
        id: &str,
        max_depth: u32,
    ) -> Result<Vec<String>> {
        load_properties(conn, id).await?;
        Ok(walk(conn, id, &[], max_depth, None)
            .await?
            .into_iter()
            .map(|r| r.memory.id)
            .collect())
    }
}

/// The words of a filter's items, lower-cased and each once: what must all occur in the
/// extracted values. Words are separated by spaces only, so `v2.1` or `cache-warm` is one.
fn query_words(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in items.iter().flat_map(|i| i.split_whitespace()) {
        let word = word.to_lowercase();
        if !out.contains(&word) {
            out.push(word);
        }
    }
    out
}

/// Why a link is refused as a cycle (the same words online and in offline replay).
pub(super) fn cycle_refusal(new: &NewRelationship) -> String {
    if new.from_id == new.to_id {
        return format!(
            "Cannot create relationship {} → {}: a memory cannot be linked to itself unless MEMORY_ALLOW_CYCLES=true",
            new.from_id, new.to_id
        );
    }
    format!(
        "Cannot create relationship {} → {}: it would create a cycle in the {} relationship graph. \
         Check the chain of {} links first, or allow cycles with MEMORY_ALLOW_CYCLES=true",
        new.from_id, new.to_id, new.rel_type, new.rel_type
    )
}

fn type_filter(types: &[RelationshipType]) -> String {
    if types.is_empty() {
        return String::new();
    }
    let names: Vec<String> = types.iter().map(|t| format!("'{}'", t.as_str())).collect();
    format!(" AND r.rel_type IN ({})", names.join(", "))
}

async fn walk(
    conn: &Connection,
    id: &str,
    types: &[RelationshipType],
    max_depth: u32,
    as_of: Option<&AsOf>,
) -> Result<Vec<RelatedMemory>> {
    // The links that count: current ones, or those valid at `as_of` (bi-temporal).
    // Without `as_of`, `+` keeps the plan off the partial index of current links (below).
    let counts = match as_of {
        None => "+r.valid_until IS NULL".to_string(),
        Some(_) => crate::backend::search::link_counts(as_of),
    };
    let tf = format!("{counts}{}", type_filter(types));
    // The plan is spelled out, because without statistics SQLite guesses wrong and scans
    // every relationship or every memory: `+r.valid_until` keeps it off the partial index
    // of current links (nearly every row), and CROSS JOIN fixes the join order to start
    // from the few nodes reached.
    let sql = format!(
        "WITH RECURSIVE walk(node, depth) AS (
             SELECT ?1, 0
             UNION
             SELECT r.to_id, w.depth + 1 FROM walk w CROSS JOIN relationships r ON r.from_id = w.node
              WHERE w.depth < ?2 AND {tf}
             UNION
             SELECT r.from_id, w.depth + 1 FROM walk w CROSS JOIN relationships r ON r.to_id = w.node
              WHERE w.depth < ?2 AND {tf}
         ),
         reached AS MATERIALIZED (SELECT node, min(depth) AS depth FROM walk GROUP BY node),
         links(depth, rrow, target) AS (
             SELECT re.depth, r.rowid, r.to_id FROM reached prev
               CROSS JOIN relationships r ON r.from_id = prev.node
               CROSS JOIN reached re ON re.node = r.to_id AND re.depth = prev.depth + 1
              WHERE {tf}
             UNION ALL
             SELECT re.depth, r.rowid, r.from_id FROM reached prev
               CROSS JOIN relationships r ON r.to_id = prev.node
               CROSS JOIN reached re ON re.node = r.from_id AND re.depth = prev.depth + 1
              WHERE {tf}
         )
         SELECT l.depth, {RELATIONSHIP_COLUMNS}, l.target, n.properties
           FROM links l
           CROSS JOIN relationships r ON r.rowid = l.rrow
           CROSS JOIN nodes n ON n.id = l.target
          WHERE +n.label = 'Memory'
          ORDER BY l.depth, json_extract(r.properties, '$.strength') DESC, r.created_at, r.id, l.target"
    );
    let rows = conn
        .query(&sql, libsql::params![id, i64::from(max_depth)])
        .await
        .doing("walking relationships")?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for row in all_rows(rows, "walking relationships").await? {
        let target = row.text(8);
        if target == id || !seen.insert(target.clone()) {
            continue;
        }
        let depth = row.int(0) as u32;
        out.push(RelatedMemory {
            depth,
            relationship: relationship_from_row(&row, 1)?,
            memory: decode(&target, &row.text(9))?,
        });
    }
    Ok(out)
}

async fn read_relationship(conn: &Connection, id: &str) -> Result<Relationship> {
    let rows = conn
        .query(
            &format!("SELECT {RELATIONSHIP_COLUMNS} FROM relationships r WHERE r.id = ?1"),
            libsql::params![id],
        )
        .await
        .doing("reading a relationship")?;
    let row = all_rows(rows, "reading a relationship")
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| BackendError::NotFound {
            what: "Relationship",
            id: id.to_string(),
        })?;
    relationship_from_row(&row, 0)
}

pub(super) async fn find_same_link(
    conn: &Connection,
    new: &NewRelationship,
) -> Result<Option<Relationship>> {
    let reverse = if new.rel_type.is_symmetric() {
        " OR (r.from_id = ?2 AND r.to_id = ?1)"
    } else {
        ""
    };
    let rows = conn
        .query(
            &format!(
                "SELECT {RELATIONSHIP_COLUMNS} FROM relationships r
                 WHERE r.rel_type = ?3 AND r.valid_until IS NULL
                   AND ((r.from_id = ?1 AND r.to_id = ?2){reverse}) LIMIT 1"
            ),
            libsql::params![
                new.from_id.as_str(),
                new.to_id.as_str(),
                new.rel_type.as_str()
            ],
        )
        .await
        .doing("looking for an identical relationship")?;
    match all_rows(rows, "looking for an identical relationship")
        .await?
        .first()
    {
        Some(row) => Ok(Some(relationship_from_row(row, 0)?)),
        None => Ok(None),
    }
}

/// A new link from→to closes a cycle when `from` is already reachable from `to` along
/// current links of the same type. Symmetric types read both ways and are never cycles;
/// a link from a memory to itself always is.
pub(super) async fn would_close_cycle(conn: &Connection, new: &NewRelationship) -> Result<bool> {
    if new.from_id == new.to_id {
        return Ok(true);
    }
    if new.rel_type.is_symmetric() {
        return Ok(false);
    }
    let rows = conn
        .query(
            "WITH RECURSIVE reach(node) AS (
                 SELECT ?1
                 UNION
                 SELECT r.to_id FROM reach JOIN relationships r ON r.from_id = reach.node
                  WHERE r.rel_type = ?3 AND r.valid_until IS NULL
             )
             SELECT 1 FROM reach WHERE node = ?2 LIMIT 1",
            libsql::params![
                new.to_id.as_str(),
                new.from_id.as_str(),
                new.rel_type.as_str()
            ],
        )
        .await
        .doing("checking for a cycle")?;
    Ok(!all_rows(rows, "checking for a cycle").await?.is_empty())
}

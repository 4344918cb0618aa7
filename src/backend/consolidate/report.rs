//! The report: clusters of near-duplicates, chains of versions, memories never used and
//! of low importance after some days, and relationships whose ends are gone. It only
//! reads; `apply` acts on the parts the user names.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::backend::error::{DbContext, Result};
use crate::backend::rows::decode;
use crate::backend::{TursoBackend, all_rows};

/// A memory as the report names it.
#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub memory_type: String,
    pub created_at: String,
}

/// A relationship with an end that is not a memory.
#[derive(Debug, Clone, Serialize)]
pub struct DanglingLink {
    pub id: String,
    pub from_id: String,
    pub to_id: String,
    #[serde(rename = "type")]
    pub rel_type: String,
    /// The ends that are missing: `from`, `to` or both.
    pub missing: Vec<&'static str>,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Consolidation {
    /// Groups of current memories that say nearly the same (see `near`), largest first;
    /// superseded memories are left out.
    pub near_duplicates: Vec<Vec<Named>>,
    /// Memories replaced one after another (`REPLACES`), newest first, longest first; a
    /// memory that replaced several (a merge) is followed by each of them.
    pub version_chains: Vec<Vec<Named>>,
    /// Never read or recalled, importance at most the bound, older than the days given;
    /// oldest first.
    pub unused: Vec<Named>,
    pub dangling_relationships: Vec<DanglingLink>,
}

impl TursoBackend {
    /// Builds the report: `days` and `max_importance` bound what counts as unused.
    pub async fn consolidation(&self, days: u32, max_importance: f64) -> Result<Consolidation> {
        let replaces = self.replaces_links().await?;
        let memories = self.all_named().await?;
        let by_id: HashMap<&str, &(Named, crate::model::Memory)> =
            memories.iter().map(|m| (m.0.id.as_str(), m)).collect();
        // A superseded memory is history, listed with its versions: never a duplicate of
        // the memory that replaced it (a merge would otherwise be reported again).
        let replaced: HashSet<&str> = replaces.values().flatten().map(String::as_str).collect();
        let near_duplicates = self.near_groups(&memories, &replaced).await?;

        // Chains of versions: from each memory that replaces another and is not replaced,
        // depth first, so a merged memory lists every memory it replaced.
        let mut version_chains: Vec<Vec<Named>> = Vec::new();
        for head in replaces.keys().filter(|id| !replaced.contains(id.as_str())) {
            let mut chain = Vec::new();
            let mut seen = HashSet::new();
            let mut stack = vec![head];
            while let Some(id) = stack.pop() {
                if !seen.insert(id.as_str()) {
                    continue;
                }
                if let Some(m) = by_id.get(id.as_str()) {
                    chain.push(m.0.clone());
                }
                if let Some(older) = replaces.get(id) {
                    stack.extend(older.iter().rev());
                }
            }
            if chain.len() > 1 {
                version_chains.push(chain);
            }
        }
        version_chains.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].id.cmp(&b[0].id)));

        let conn = self.conn.lock().await;
        let doing = "reading the consolidation report";
        let before =
            crate::model::iso_from(chrono::Utc::now() - chrono::Duration::days(i64::from(days)));
        let rows = conn
            .query(
                "SELECT n.id FROM nodes n LEFT JOIN memory_usage u ON u.memory_id = n.id
                 WHERE n.label = 'Memory'
                   AND coalesce(u.usage_count, 0)
                       + coalesce(json_extract(n.properties, '$.usage_count'), 0) = 0
                   AND coalesce(json_extract(n.properties, '$.importance'), 0.5) <= ?1
                   AND json_extract(n.properties, '$.created_at') < ?2
                 ORDER BY json_extract(n.properties, '$.created_at')",
                libsql::params![max_importance, before],
            )
            .await
            .doing(doing)?;
        let unused = all_rows(rows, doing)
            .await?
            .iter()
            .filter_map(|r| by_id.get(r.str(0)).map(|m| m.0.clone()))
            .collect();

        let rows = conn
            .query(
                "SELECT r.id, r.from_id, r.to_id, r.rel_type,
                        NOT EXISTS (SELECT 1 FROM nodes WHERE id = r.from_id AND label = 'Memory'),
                        NOT EXISTS (SELECT 1 FROM nodes WHERE id = r.to_id AND label = 'Memory')
                 FROM relationships r
                 WHERE NOT EXISTS (SELECT 1 FROM nodes WHERE id = r.from_id AND label = 'Memory')
                    OR NOT EXISTS (SELECT 1 FROM nodes WHERE id = r.to_id AND label = 'Memory')",
                (),
            )
            .await
            .doing(doing)?;
        let dangling_relationships = all_rows(rows, doing)
            .await?
            .iter()
            .map(|r| DanglingLink {
                id: r.text(0),
                from_id: r.text(1),
                to_id: r.text(2),
                rel_type: r.text(3),
                missing: [("from", r.int(4)), ("to", r.int(5))]
                    .into_iter()
                    .filter(|(_, gone)| *gone != 0)
                    .map(|(end, _)| end)
                    .collect(),
            })
            .collect();
        Ok(Consolidation {
            near_duplicates,
            version_chains,
            unused,
            dangling_relationships,
        })
    }

    /// Near-duplicates among the current memories: each one's close ones, joined into
    /// groups (union-find over the memories' places in `memories`), largest first.
    async fn near_groups(
        &self,
        memories: &[(Named, crate::model::Memory)],
        replaced: &HashSet<&str>,
    ) -> Result<Vec<Vec<Named>>> {
        let place: HashMap<&str, usize> = memories
            .iter()
            .enumerate()
            .filter(|(_, m)| !replaced.contains(m.0.id.as_str()))
            .map(|(i, m)| (m.0.id.as_str(), i))
            .collect();
        let mut parent: Vec<usize> = (0..memories.len()).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for (i, (named, memory)) in memories.iter().enumerate() {
            if !place.contains_key(named.id.as_str()) {
                continue;
            }
            for close in self.all_near_duplicates(memory).await? {
                if let Some(&j) = place.get(close.id.as_str()) {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
            }
        }
        let mut groups: HashMap<usize, Vec<Named>> = HashMap::new();
        for (i, (named, _)) in memories.iter().enumerate() {
            if place.contains_key(named.id.as_str()) {
                let r = root(&mut parent, i);
                groups.entry(r).or_default().push(named.clone());
            }
        }
        let mut groups: Vec<Vec<Named>> = groups.into_values().filter(|g| g.len() > 1).collect();
        groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].id.cmp(&b[0].id)));
        Ok(groups)
    }

    /// The current `REPLACES` links: each replacing memory's replaced ones, in the order
    /// the links were made.
    async fn replaces_links(&self) -> Result<HashMap<String, Vec<String>>> {
        let conn = self.conn.lock().await;
        let doing = "reading the versions";
        let rows = conn
            .query(
                "SELECT from_id, to_id FROM relationships
                 WHERE rel_type = 'REPLACES' AND valid_until IS NULL ORDER BY rowid",
                (),
            )
            .await
            .doing(doing)?;
        let mut replaces: HashMap<String, Vec<String>> = HashMap::new();
        for r in all_rows(rows, doing).await? {
            replaces.entry(r.text(0)).or_default().push(r.text(1));
        }
        Ok(replaces)
    }

    /// Every memory, decoded, with how the report names it.
    async fn all_named(&self) -> Result<Vec<(Named, crate::model::Memory)>> {
        let conn = self.conn.lock().await;
        let doing = "reading the memories";
        let rows = conn
            .query(
                "SELECT id, properties FROM nodes WHERE label = 'Memory' ORDER BY rowid",
                (),
            )
            .await
            .doing(doing)?;
        all_rows(rows, doing)
            .await?
            .iter()
            .map(|r| {
                let memory = decode(&r.text(0), &r.text(1))?;
                let named = Named {
                    id: memory.id.clone(),
                    title: memory.title.clone(),
                    memory_type: memory.memory_type.clone(),
                    created_at: memory.created_at.clone(),
                };
                Ok((named, memory))
            })
            .collect()
    }
}

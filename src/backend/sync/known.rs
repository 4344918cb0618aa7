//! What this machine knows while the primary is away: the replica with the offline queue's
//! writes applied on top. Offline writes are checked against it with the same rules the
//! online path checks against the primary (unknown ids, duplicates, identical links,
//! cycles), so a call answers the same whether or not the network is there.

use std::collections::{HashMap, HashSet};

use libsql::Connection;

use super::queue::{RelationshipRow, WriteOp};
use crate::backend::error::{DbContext, Result};
use crate::backend::graph::find_same_link;
use crate::backend::memories::{decode, load_properties};
use crate::backend::{BackendError, TursoBackend, all_rows, codec};
use crate::model::{Memory, MemoryPatch, NewMemory, NewRelationship, Relationship};

/// The replica plus the queue, memory by memory.
pub struct Known {
    /// Every memory the queue touches: its properties after the queued writes (`None`
    /// once deleted).
    touched: HashMap<String, Option<String>>,
    /// Relationships still queued, in order.
    links: Vec<RelationshipRow>,
    /// From the replica, for the memories asked about: their properties (`None`: absent).
    replica: HashMap<String, Option<String>>,
}

/// A memory's properties after one queued write.
pub fn apply_to(properties: Option<String>, op: &WriteOp) -> Option<String> {
    match op {
        WriteOp::Store { properties: p, .. } => Some(p.clone()),
        WriteOp::Update {
            patch, updated_at, ..
        } => properties.and_then(|current| {
            codec::apply_patch(&current, &MemoryPatch::from(patch), updated_at).ok()
        }),
        WriteOp::Delete { .. } => None,
        WriteOp::Relate(_) => properties,
    }
}

impl TursoBackend {
    /// What this machine knows about the memories and links a write names.
    pub(crate) async fn known(&self) -> Result<KnownBuilder<'_>> {
        let mut known = Known {
            touched: HashMap::new(),
            links: Vec::new(),
            replica: HashMap::new(),
        };
        if let Some(replica) = &self.replica {
            for (_, op) in replica.queue.pending().await? {
                match &op {
                    WriteOp::Relate(row) => known.links.push(row.clone()),
                    WriteOp::Store { id, supersedes, .. } => {
                        known.touched.insert(id.clone(), apply_to(None, &op));
                        known.links.extend(supersedes.iter().cloned());
                    }
                    WriteOp::Update { id, .. } | WriteOp::Delete { id, .. } => {
                        let before = match known.touched.remove(id) {
                            Some(p) => p,
                            None => replica_properties(&*self.conn.lock().await, id).await?,
                        };
                        known.touched.insert(id.clone(), apply_to(before, &op));
                    }
                }
            }
        }
        Ok(KnownBuilder {
            backend: self,
            known,
        })
    }
}

async fn replica_properties(conn: &Connection, id: &str) -> Result<Option<String>> {
    match load_properties(conn, id).await {
        Ok(p) => Ok(Some(p)),
        Err(BackendError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Gathers from the replica what a check needs, then answers it.
pub struct KnownBuilder<'a> {
    backend: &'a TursoBackend,
    known: Known,
}

impl KnownBuilder<'_> {
    /// The memory's properties as this machine knows them.
    pub async fn properties(&mut self, id: &str) -> Result<Option<String>> {
        if let Some(p) = self.known.touched.get(id) {
            return Ok(p.clone());
        }
        if !self.known.replica.contains_key(id) {
            let p = replica_properties(&*self.backend.conn.lock().await, id).await?;
            self.known.replica.insert(id.to_string(), p);
        }
        Ok(self.known.replica[id].clone())
    }

    pub async fn has(&mut self, id: &str) -> Result<bool> {
        Ok(self.properties(id).await?.is_some())
    }

    fn deleted(&self, id: &str) -> bool {
        matches!(self.known.touched.get(id), Some(None))
    }

    /// A memory identical in type, title and content, as `store_memory` checks online.
    pub async fn duplicate_of(&mut self, new: &NewMemory) -> Result<Option<Memory>> {
        let same = |m: &Memory| {
            m.memory_type == new.memory_type.as_str()
                && m.title == new.title
                && m.content == new.content
        };
        let in_replica = self
            .backend
            .find_duplicate(&*self.backend.conn.lock().await, new)
            .await?;
        if let Some(m) = in_replica
            && let Some(p) = self.properties(&m.id).await?
        {
            let current = decode(&m.id, &p)?;
            if same(&current) {
                return Ok(Some(current));
            }
        }
        let queued: Vec<(String, String)> = self
            .known
            .touched
            .iter()
            .filter_map(|(id, p)| p.as_ref().map(|p| (id.clone(), p.clone())))
            .collect();
        for (id, p) in queued {
            let m = decode(&id, &p)?;
            if same(&m) {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// How many relationships a delete of `id` removes.
    pub async fn links_touching(&mut self, id: &str) -> Result<u64> {
        let rows = {
            let conn = self.backend.conn.lock().await;
            let rows = conn
                .query(
                    "SELECT from_id, to_id FROM relationships WHERE from_id = ?1 OR to_id = ?1",
                    libsql::params![id],
                )
                .await
                .doing("counting relationships")?;
            all_rows(rows, "counting relationships").await?
        };
        let ends: Vec<(String, String)> = rows.iter().map(|r| (r.text(0), r.text(1))).collect();
        let mut count = ends
            .iter()
            .filter(|(a, b)| !self.deleted(a) && !self.deleted(b))
            .count();
        count += self
            .known
            .links
            .iter()
            .filter(|r| r.from_id == id || r.to_id == id)
            .filter(|r| !self.deleted(&r.from_id) && !self.deleted(&r.to_id))
            .count();
        Ok(count as u64)
    }

    /// An identical current link (either direction for symmetric types).
    pub async fn same_link(&mut self, new: &NewRelationship) -> Result<Option<Relationship>> {
        let in_replica = find_same_link(&*self.backend.conn.lock().await, new).await?;
        if let Some(r) = in_replica
            && !self.deleted(&r.from_id)
            && !self.deleted(&r.to_id)
        {
            return Ok(Some(r));
        }
        let rel_type = new.rel_type.as_str();
        let symmetric = new.rel_type.is_symmetric();
        Ok(self
            .known
            .links
            .iter()
            .filter(|r| r.rel_type == rel_type)
            .filter(|r| !self.deleted(&r.from_id) && !self.deleted(&r.to_id))
            .find(|r| {
                (r.from_id == new.from_id && r.to_id == new.to_id)
                    || (symmetric && r.from_id == new.to_id && r.to_id == new.from_id)
            })
            .map(RelationshipRow::relationship))
    }

    /// Whether the link closes a cycle among current links of its type, as online.
    pub async fn would_close_cycle(&mut self, new: &NewRelationship) -> Result<bool> {
        if new.from_id == new.to_id {
            return Ok(true);
        }
        if new.rel_type.is_symmetric() {
            return Ok(false);
        }
        let rows = {
            let conn = self.backend.conn.lock().await;
            let rows = conn
                .query(
                    "SELECT from_id, to_id FROM relationships WHERE rel_type = ?1 AND valid_until IS NULL",
                    libsql::params![new.rel_type.as_str()],
                )
                .await
                .doing("checking for a cycle")?;
            all_rows(rows, "checking for a cycle").await?
        };
        let edges: Vec<(String, String)> = rows.iter().map(|r| (r.text(0), r.text(1))).collect();
        let queued = self
            .known
            .links
            .iter()
            .filter(|r| r.rel_type == new.rel_type.as_str())
            .map(|r| (r.from_id.clone(), r.to_id.clone()));
        let mut next: HashMap<String, Vec<String>> = HashMap::new();
        for (a, b) in edges.into_iter().chain(queued) {
            if !self.deleted(&a) && !self.deleted(&b) {
                next.entry(a).or_default().push(b);
            }
        }
        let mut seen = HashSet::new();
        let mut todo = vec![new.to_id.clone()];
        while let Some(node) = todo.pop() {
            if node == new.from_id {
                return Ok(true);
            }
            if seen.insert(node.clone())
                && let Some(out) = next.get(&node)
            {
                todo.extend(out.iter().cloned());
            }
        }
        Ok(false)
    }
}

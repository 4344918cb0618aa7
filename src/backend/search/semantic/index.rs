//! The in-memory copy of the vectors that semantic search scans instead of reading every
//! vector from the database for every query.
//!
//! Each vector is held as a one-bit code ([`codes`]): 48 bytes and two numbers, from which a
//! query gets an estimate of its cosine and a bound on the estimate's error. A scan over the
//! copy picks the candidates with the best upper bounds (estimate plus error); they are
//! checked in the database in chunks, best first: one query per chunk applies the request's
//! filters, gives the exact cosine (the same `vector_distance_cos` the search used before
//! this copy existed) and confirms that each row is still the memory the copy thinks it is.
//! Checking stops when no candidate left can beat the k-th exact cosine found, so the answer
//! is what the full scan in SQL returns, as long as the bounds hold (see [`codes::CONFIDENCE`])
//! and the candidates checked stay within [`CHECK_LIMIT`] (only above that many vectors, on
//! vectors without a clear nearest few, may the answer differ; docs/performance.md gives the
//! measured difference at a million).
//!
//! The scan runs on the thread that embeds the query, before the search takes the
//! connection: the connection is held for the checks only. What changed in the database
//! since the copy the scan saw is read from the change log and checked too.
//!
//! The copy follows the database through `memory_vector_log` and the `vector_changes`
//! counter (schema.rs), which triggers keep for every writer: this process, another process
//! on the same file, or the primary whose changes a replica pulls. Before each search the
//! counter is read (one indexed row); when it moved, only the log rows past the count seen
//! are read. A counter that went back (a replaced file) reloads everything.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use libsql::{Connection, Value};

use super::codes::{self, Codes};
use crate::backend::error::{DbContext, Result};
use crate::backend::scalar_i64;
use crate::backend::search::embed::DIMENSIONS;

/// Little-endian f32s, the layout of an `F32_BLOB`.
pub fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Vectors the mean is taken over when the copy loads (the first ones read).
const MEAN_SAMPLE: usize = 4096;

/// A memory found by its vector.
#[derive(Debug, Clone)]
pub struct Near {
    pub rid: i64,
    pub similarity: f64,
}

/// The copy, shared by every search of a process.
#[derive(Default)]
pub struct VectorIndex {
    pub(super) inner: tokio::sync::Mutex<Inner>,
}

pub(super) struct Inner {
    /// The change count the copy reflects; `None` before the first load or after a mismatch.
    pub(super) seen: Option<i64>,
    /// Per slot: the memory's row in `nodes`, a hash of its id (to find its slot when it
    /// changes, and to confirm a row is still that memory), and its code.
    pub(super) rids: Vec<i64>,
    pub(super) keys: Vec<u64>,
    slot_of: HashMap<u64, u32>,
    pub(super) codes: Codes,
    /// How many vectors the codes' mean was taken over.
    mean_of: usize,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            seen: None,
            rids: Vec::new(),
            keys: Vec::new(),
            slot_of: HashMap::new(),
            codes: Codes::new(&[0.0; DIMENSIONS]),
            mean_of: 0,
        }
    }
}

/// What [`VectorIndex::stats`] reports (for the benchmark).
#[cfg(feature = "bench")]
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexStats {
    pub vectors: usize,
    /// Bytes held for the vectors and their bookkeeping.
    pub bytes: usize,
}

/// The hash that stands for a memory's id in the copy: 8 bytes instead of a 36-character
/// string and its copy in the map. Two ids of one database share a hash with a chance of
/// about one in 10^7 at a million memories; one of the two is then missing from the copy.
pub(super) fn key_of(id: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// A vector scaled to length 1, or `None` for a zero (or malformed) one.
pub(super) fn unit(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    (norm > 0.0 && norm.is_finite() && v.len() == DIMENSIONS)
        .then(|| v.iter().map(|x| (*x as f64 / norm) as f32).collect())
}

/// A blob of little-endian f32s (an `F32_BLOB(384)`), as a vector of the right length.
pub(super) fn from_blob(value: &Value) -> Option<Vec<f32>> {
    match value {
        Value::Blob(b) if b.len() == DIMENSIONS * 4 => Some(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        _ => None,
    }
}

/// One row of the vectors read: the memory's id, its row in `nodes` and its vector, or
/// `None` for a memory that has no vector (or is gone).
type VectorRow = (String, Option<(i64, Vec<f32>)>);

async fn next_vector(rows: &mut libsql::Rows) -> Result<Option<VectorRow>> {
    const DOING: &str = "reading vectors";
    while let Some(row) = rows.next().await.doing(DOING)? {
        let id = match row.get_value(0).doing(DOING)? {
            Value::Text(s) => s,
            _ => continue,
        };
        let rid = match row.get_value(1).doing(DOING)? {
            Value::Integer(r) => Some(r),
            _ => None,
        };
        let vector = from_blob(&row.get_value(2).doing(DOING)?).and_then(|v| unit(&v));
        return Ok(Some((id, rid.zip(vector))));
    }
    Ok(None)
}

/// The room made past `n` slots: a sixteenth of them and 1,024 more.
fn headroom(n: usize) -> usize {
    n / 16 + 1024
}

impl Inner {
    pub(super) fn len(&self) -> usize {
        self.rids.len()
    }

    pub(super) fn put(&mut self, id: &str, rid: i64, v: &[f32]) {
        let key = key_of(id);
        match self.slot_of.get(&key) {
            Some(&slot) => {
                self.rids[slot as usize] = rid;
                self.codes.set(slot as usize, v);
            }
            None => {
                if self.rids.len() == self.rids.capacity() {
                    self.make_room(headroom(self.rids.len()));
                }
                self.slot_of.insert(key, self.rids.len() as u32);
                self.rids.push(rid);
                self.keys.push(key);
                self.codes.push(v);
            }
        }
    }

    /// Makes room for `more` slots at once. Growing by doubling would copy, and at a million
    /// hold half as much again, up to twice the copy, for a while.
    fn make_room(&mut self, more: usize) {
        self.rids.reserve_exact(more);
        self.keys.reserve_exact(more);
        self.slot_of.reserve(more);
        self.codes.reserve(more);
    }

    fn remove(&mut self, id: &str) {
        let Some(slot) = self.slot_of.remove(&key_of(id)) else {
            return;
        };
        let slot = slot as usize;
        let last = self.len() - 1;
        self.rids.swap_remove(slot);
        self.keys.swap_remove(slot);
        self.codes.swap_remove(slot);
        if slot != last {
            self.slot_of.insert(self.keys[slot], slot as u32);
        }
    }

    /// Reads every vector into a new copy: the first [`MEAN_SAMPLE`] give the mean the codes
    /// are taken against.
    async fn load(&mut self, mut rows: libsql::Rows, expected: usize) -> Result<()> {
        let mut first: Vec<(String, i64, Vec<f32>)> = Vec::new();
        while first.len() < MEAN_SAMPLE {
            match next_vector(&mut rows).await? {
                Some((id, Some((rid, v)))) => first.push((id, rid, v)),
                Some(_) => {}
                None => break,
            }
        }
        *self = Inner {
            codes: Codes::new(&codes::mean(first.iter().map(|f| f.2.as_slice()))),
            mean_of: first.len(),
            ..Inner::default()
        };
        // Room for all of them at once, and some more for what comes next.
        self.make_room(expected + headroom(expected));
        for (id, rid, v) in &first {
            self.put(id, *rid, v);
        }
        drop(first);
        while let Some(row) = next_vector(&mut rows).await? {
            if let (id, Some((rid, v))) = row {
                self.put(&id, rid, &v);
            }
        }
        Ok(())
    }

    /// Brings the copy up to the database's state as `conn` sees it.
    pub(super) async fn refresh(&mut self, conn: &Connection) -> Result<()> {
        // The counter first: a change landing between the two reads is read again next time.
        let (now, floor) = changes(conn).await?;
        // A mean taken over few vectors is taken again once there are many more.
        let stale_mean = self.mean_of < MEAN_SAMPLE && self.len() > 4 * self.mean_of.max(256);
        match (self.seen, now) {
            (Some(seen), Some(now)) if seen == now && !stale_mean => return Ok(()),
            // Past the floor the log still names every change since `seen`; below it,
            // compaction may have dropped a removal this copy has not seen.
            (Some(seen), Some(now)) if now > seen && seen >= floor && !stale_mean => {
                let mut rows = conn
                    .query(
                        "SELECT l.memory_id, n.rowid, v.embedding FROM memory_vector_log l
                         LEFT JOIN memory_vectors v ON v.memory_id = l.memory_id
                         LEFT JOIN nodes n ON n.id = l.memory_id AND n.label = 'Memory'
                         WHERE l.change > ?1",
                        libsql::params![seen],
                    )
                    .await
                    .doing("reading changed vectors")?;
                while let Some((id, row)) = next_vector(&mut rows).await? {
                    match row {
                        Some((rid, v)) => self.put(&id, rid, &v),
                        None => self.remove(&id),
                    }
                }
            }
            _ => {
                let started = std::time::Instant::now();
                let expected = scalar_i64(
                    conn,
                    "SELECT count(*) FROM memory_vectors",
                    vec![],
                    "counting vectors",
                )
                .await?;
                let rows = conn
                    .query(
                        "SELECT v.memory_id, n.rowid, v.embedding FROM memory_vectors v
                         JOIN nodes n ON n.id = v.memory_id WHERE n.label = 'Memory'",
                        (),
                    )
                    .await
                    .doing("reading vectors")?;
                self.load(rows, expected.max(0) as usize).await?;
                tracing::debug!(
                    "loaded the in-memory copy of the vectors: {} in {} ms (change count {:?} → {now:?})",
                    self.len(),
                    started.elapsed().as_millis(),
                    self.seen
                );
            }
        }
        self.seen = now;
        Ok(())
    }
}

/// The vectors' change count (`None` where the file has no counter) and the log's floor: the
/// count up to which [`compact_log`] may have dropped removals (0 when it never ran).
async fn changes(conn: &Connection) -> Result<(Option<i64>, i64)> {
    const DOING: &str = "reading the vector change count";
    let mut rows = conn
        .query(
            "SELECT key, CAST(value AS INTEGER) FROM memorygraph_meta
             WHERE key IN ('vector_changes', 'vector_log_floor')",
            (),
        )
        .await
        .doing(DOING)?;
    let (mut now, mut floor) = (None, 0);
    while let Some(row) = rows.next().await.doing(DOING)? {
        let value = match row.get_value(1).doing(DOING)? {
            Value::Integer(n) => Some(n),
            _ => None,
        };
        match row.get_value(0).doing(DOING)? {
            Value::Text(key) if key == "vector_changes" => now = value,
            _ => floor = value.unwrap_or(0),
        }
    }
    Ok((now, floor))
}

/// Removals kept in `memory_vector_log` before [`compact_log`] drops them.
pub const LOG_REMOVALS_KEPT: i64 = 1024;

/// Keeps `memory_vector_log` from growing with every memory ever embedded: once more than
/// [`LOG_REMOVALS_KEPT`] of its rows only record a removal, they are dropped and the
/// `vector_log_floor` is raised to the current count, so a process whose copy is older than
/// that reloads it in full instead of missing a removal. Run inside a write transaction;
/// returns how many rows went.
pub async fn compact_log(tx: &Connection) -> Result<u64> {
    const DOING: &str = "compacting the vector change log";
    let removals = scalar_i64(
        tx,
        "SELECT count(*) FROM memory_vector_log WHERE present = 0",
        vec![],
        DOING,
    )
    .await?;
    if removals <= LOG_REMOVALS_KEPT {
        return Ok(0);
    }
    tx.execute(
        "INSERT INTO memorygraph_meta (key, value)
         SELECT 'vector_log_floor', value FROM memorygraph_meta WHERE key = 'vector_changes'
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (),
    )
    .await
    .doing(DOING)?;
    tx.execute("DELETE FROM memory_vector_log WHERE present = 0", ())
        .await
        .doing(DOING)
}

impl VectorIndex {
    /// Vectors held and the memory they take (for the benchmark).
    #[cfg(feature = "bench")]
    pub async fn stats(&self) -> IndexStats {
        let inner = self.inner.lock().await;
        IndexStats {
            vectors: inner.len(),
            bytes: inner.codes.bytes()
                + (inner.rids.capacity() + inner.keys.capacity()) * 8
                // A hash map's entry (8 + 4 bytes, padded) and control byte, at its load.
                + inner.slot_of.capacity() * 17,
        }
    }

    /// Brings the copy up to date (the searches do it themselves; this is for loading it).
    pub async fn refresh(&self, conn: &Connection) -> Result<()> {
        self.inner.lock().await.refresh(conn).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A unit vector `by` away from `v`, towards the pseudo-random one of `seed`.
    pub(crate) fn near(v: &[f32], seed: u64, by: f32) -> Vec<f32> {
        let other = pseudo_unit(seed);
        let mixed: Vec<f32> = v.iter().zip(&other).map(|(a, b)| a + by * b).collect();
        unit(&mixed).unwrap()
    }

    pub(crate) fn pseudo_unit(seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        let v: Vec<f32> = (0..DIMENSIONS)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f32 / (1u64 << 53) as f32 - 0.5
            })
            .collect();
        unit(&v).unwrap()
    }

    fn held(inner: &Inner) -> Vec<u64> {
        let mut keys = inner.keys.clone();
        keys.sort();
        keys
    }

    fn keys(ids: &[String]) -> Vec<u64> {
        let mut keys: Vec<u64> = ids.iter().map(|id| key_of(id)).collect();
        keys.sort();
        keys
    }

    /// Compaction drops the log's removals; a copy older than that must still lose the
    /// vectors removed before it, and a copy made after it must keep following the log.
    #[tokio::test]
    async fn a_compacted_log_still_removes_what_an_older_copy_holds() {
        let (_db, conn) = crate::backend::schema::test_database().await;
        let n = LOG_REMOVALS_KEPT as u64 + 10;
        for i in 0..n + 2 {
            conn.execute(
                "INSERT INTO nodes (id, label, properties) VALUES (?1, 'Memory', '{}')",
                libsql::params![format!("m{i}")],
            )
            .await
            .unwrap();
            let blob = to_blob(&pseudo_unit(i + 1));
            conn.execute(
                "INSERT INTO memory_vectors (memory_id, embedding) VALUES (?1, ?2)",
                libsql::params![format!("m{i}"), blob],
            )
            .await
            .unwrap();
        }
        let mut older = Inner::default();
        older.refresh(&conn).await.unwrap();
        assert_eq!(older.len() as u64, n + 2);
        conn.execute(
            "DELETE FROM memory_vectors WHERE CAST(substr(memory_id, 2) AS INTEGER) < ?1",
            libsql::params![n as i64],
        )
        .await
        .unwrap();
        let log_rows = |conn: Connection| async move {
            scalar_i64(&conn, "SELECT count(*) FROM memory_vector_log", vec![], "t")
                .await
                .unwrap()
        };
        assert_eq!(log_rows(conn.clone()).await as u64, n + 2);
        assert_eq!(compact_log(&conn).await.unwrap(), n);
        assert_eq!(log_rows(conn.clone()).await, 2);
        // Nothing more to drop: the second run leaves the log alone.
        assert_eq!(compact_log(&conn).await.unwrap(), 0);

        older.refresh(&conn).await.unwrap();
        assert_eq!(
            held(&older),
            keys(&[format!("m{n}"), format!("m{}", n + 1)])
        );

        let mut newer = Inner::default();
        newer.refresh(&conn).await.unwrap();
        conn.execute(
            "DELETE FROM memory_vectors WHERE memory_id = ?1",
            libsql::params![format!("m{n}")],
        )
        .await
        .unwrap();
        newer.refresh(&conn).await.unwrap();
        assert_eq!(held(&newer), keys(&[format!("m{}", n + 1)]));
    }

    #[test]
    fn removing_keeps_every_other_slot_right() {
        let mut inner = Inner::default();
        for i in 0..10u64 {
            inner.put(&format!("m{i}"), i as i64, &pseudo_unit(i + 1));
        }
        inner.remove("m3");
        inner.remove("m9");
        inner.remove("nothing");
        inner.put("m4", 44, &pseudo_unit(500));
        assert_eq!(inner.len(), 8);
        assert_eq!(inner.codes.len(), 8);
        for (key, &slot) in &inner.slot_of {
            assert_eq!(inner.keys[slot as usize], *key);
        }
        let q = inner.codes.prepare(&pseudo_unit(500));
        let best = (0..8)
            .max_by(|&a, &b| {
                let (ea, eb) = (inner.codes.estimate(&q, a).0, inner.codes.estimate(&q, b).0);
                ea.total_cmp(&eb)
            })
            .unwrap();
        assert_eq!(inner.keys[best], key_of("m4"));
        assert_eq!(inner.rids[best], 44);
    }
}

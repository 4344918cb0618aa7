//! The in-memory copy of the vectors that semantic search scans instead of reading every
//! vector from the database for every query.
//!
//! Each vector is kept scaled to length 1 and quantised to one signed byte per number, with
//! its scale and how far the quantised vector is from the real one (`error`, its Euclidean
//! distance). For a query `q` of length 1, the quantised score `s` of a vector `x` is then
//! within `error` of the cosine (|q·x − q·x̂| ≤ |q|·|x − x̂|), so a vector whose score plus
//! its error is below the k-th best exact cosine found can be skipped without changing the
//! answer. Candidates are taken in order of that upper bound and checked in the database in
//! chunks: one query per chunk applies the request's filters, gives the exact cosine (the
//! same `vector_distance_cos` the search used before this copy existed) and confirms that
//! each row is still the memory the copy thinks it is. The answer is therefore exactly what
//! the full scan in SQL returned, at 384 bytes of memory per vector instead of 1,536.
//!
//! The copy follows the database through `memory_vector_log` and the `vector_changes`
//! counter (schema.rs), which triggers keep for every writer: this process, another process
//! on the same file, or the primary whose changes a replica pulls. Before each search the
//! counter is read (one indexed row); when it moved, only the log rows past the count seen
//! are read. A counter that went back (a replaced file) reloads everything.

use std::collections::HashMap;

use libsql::{Connection, Value};

use crate::backend::error::{DbContext, Result};
use crate::backend::scalar_i64;
use crate::backend::search::SearchRequest;
use crate::backend::search::embed::DIMENSIONS;
use crate::backend::search::filters::filter_sql;

/// Little-endian f32s, the layout of an `F32_BLOB`.
pub fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Slack added to every bound for the rounding of f32 arithmetic (the database's cosine and
/// ours): far above it, far below any gap that decides a ranking.
const SLACK: f32 = 1e-4;
/// Candidates checked in the database in the first chunk, beyond twice the number wanted;
/// each later chunk is four times larger.
const FIRST_CHUNK: usize = 32;
/// With filters, a chunk is at least this large: most candidates may fail them.
const FILTERED_CHUNK: usize = 512;

/// A memory found by its vector.
#[derive(Debug, Clone)]
pub struct Near {
    pub rid: i64,
    pub similarity: f64,
}

/// The copy, shared by every search of a process.
#[derive(Default)]
pub struct VectorIndex {
    inner: tokio::sync::Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The change count the copy reflects; `None` before the first load or after a mismatch.
    seen: Option<i64>,
    /// Per slot: the memory's id, its row in `nodes`, its quantised vector, scale and error.
    ids: Vec<String>,
    rids: Vec<i64>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    errors: Vec<f32>,
    slot_of: HashMap<String, usize>,
}

/// What [`VectorIndex::stats`] reports (for the benchmark).
#[cfg(feature = "bench")]
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexStats {
    pub vectors: usize,
    /// Bytes held for the vectors and their bookkeeping (ids included).
    pub bytes: usize,
}

/// A vector scaled to length 1, or `None` for a zero (or malformed) one.
fn unit(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| v.iter().map(|x| (*x as f64 / norm) as f32).collect())
}

/// Quantises a unit vector into `out`; returns its scale and its error.
fn quantise(v: &[f32], out: &mut [i8]) -> (f32, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        out.fill(0);
        return (0.0, 0.0);
    }
    let scale = max / 127.0;
    let mut error = 0f64;
    for (o, x) in out.iter_mut().zip(v) {
        let c = (x / scale).round().clamp(-127.0, 127.0);
        *o = c as i8;
        let d = (*x - c * scale) as f64;
        error += d * d;
    }
    (scale, error.sqrt() as f32)
}

/// `Σ q·c` over one quantised vector, in 16 independent lanes so the compiler can use SIMD
/// (a single running sum cannot be reordered).
fn dot(q: &[f32], codes: &[i8]) -> f32 {
    let mut lanes = [0f32; 16];
    for (qc, cc) in q.chunks_exact(16).zip(codes.chunks_exact(16)) {
        for i in 0..16 {
            lanes[i] += qc[i] * cc[i] as f32;
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    let tail = q.len() - q.len() % 16;
    for i in tail..q.len() {
        sum += q[i] * codes[i] as f32;
    }
    sum
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

impl Inner {
    fn clear(&mut self) {
        *self = Inner::default();
    }

    fn put(&mut self, id: String, rid: i64, vector: &[f32]) {
        let Some(v) = unit(vector) else {
            self.remove(&id);
            return;
        };
        let slot = match self.slot_of.get(&id) {
            Some(&s) => s,
            None => {
                let s = self.ids.len();
                self.ids.push(id.clone());
                self.rids.push(rid);
                self.codes.resize(self.codes.len() + DIMENSIONS, 0);
                self.scales.push(0.0);
                self.errors.push(0.0);
                self.slot_of.insert(id, s);
                s
            }
        };
        self.rids[slot] = rid;
        let (scale, error) = quantise(
            &v,
            &mut self.codes[slot * DIMENSIONS..(slot + 1) * DIMENSIONS],
        );
        self.scales[slot] = scale;
        self.errors[slot] = error;
    }

    fn remove(&mut self, id: &str) {
        let Some(slot) = self.slot_of.remove(id) else {
            return;
        };
        let last = self.ids.len() - 1;
        if slot != last {
            self.ids.swap(slot, last);
            self.rids.swap(slot, last);
            self.scales.swap(slot, last);
            self.errors.swap(slot, last);
            let (head, tail) = self.codes.split_at_mut(last * DIMENSIONS);
            head[slot * DIMENSIONS..(slot + 1) * DIMENSIONS].copy_from_slice(&tail[..DIMENSIONS]);
            self.slot_of.insert(self.ids[slot].clone(), slot);
        }
        self.ids.pop();
        self.rids.pop();
        self.scales.pop();
        self.errors.pop();
        self.codes.truncate(last * DIMENSIONS);
    }

    /// Reads (id, rid, blob) rows into the copy; a row without a vector or a memory removes it.
    async fn apply(&mut self, mut rows: libsql::Rows) -> Result<usize> {
        const DOING: &str = "reading vectors";
        let mut n = 0;
        while let Some(row) = rows.next().await.doing(DOING)? {
            let id = match row.get_value(0).doing(DOING)? {
                Value::Text(s) => s,
                _ => continue,
            };
            let rid = match row.get_value(1).doing(DOING)? {
                Value::Integer(r) => Some(r),
                _ => None,
            };
            match (rid, from_blob(&row.get_value(2).doing(DOING)?)) {
                (Some(rid), Some(v)) => self.put(id, rid, &v),
                _ => self.remove(&id),
            }
            n += 1;
        }
        Ok(n)
    }

    /// Brings the copy up to the database's state as `conn` sees it.
    async fn refresh(&mut self, conn: &Connection) -> Result<()> {
        // The counter first: a change landing between the two reads is read again next time.
        let (now, floor) = changes(conn).await?;
        match (self.seen, now) {
            (Some(seen), Some(now)) if seen == now => return Ok(()),
            // Past the floor the log still names every change since `seen`; below it,
            // compaction may have dropped a removal this copy has not seen.
            (Some(seen), Some(now)) if now > seen && seen >= floor => {
                let rows = conn
                    .query(
                        "SELECT l.memory_id, n.rowid, v.embedding FROM memory_vector_log l
                         LEFT JOIN memory_vectors v ON v.memory_id = l.memory_id
                         LEFT JOIN nodes n ON n.id = l.memory_id AND n.label = 'Memory'
                         WHERE l.change > ?1",
                        libsql::params![seen],
                    )
                    .await
                    .doing("reading changed vectors")?;
                self.apply(rows).await?;
            }
            _ => {
                self.clear();
                let rows = conn
                    .query(
                        "SELECT v.memory_id, n.rowid, v.embedding FROM memory_vectors v
                         JOIN nodes n ON n.id = v.memory_id WHERE n.label = 'Memory'",
                        (),
                    )
                    .await
                    .doing("reading vectors")?;
                self.apply(rows).await?;
                // Growing by doubling may have left up to half of it unused.
                self.codes.shrink_to_fit();
            }
        }
        self.seen = now;
        Ok(())
    }

    /// The quantised score of every slot, and its bound (score plus error plus slack).
    fn scores(&self, q: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut score = Vec::with_capacity(self.ids.len());
        let mut bound = Vec::with_capacity(self.ids.len());
        for (slot, codes) in self.codes.chunks_exact(DIMENSIONS).enumerate() {
            let s = self.scales[slot] * dot(q, codes);
            score.push(s);
            bound.push(s + self.errors[slot] + SLACK);
        }
        (score, bound)
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

/// A chunk's rows as the database has them now: (rid, id, exact cosine), for the memories
/// among `rids` that pass the request's filters (and, with `floor`, are at least that similar).
pub(super) async fn check(
    conn: &Connection,
    req: &SearchRequest,
    query: &[f32],
    rids: &[i64],
    floor: Option<f64>,
) -> Result<Vec<(i64, String, f64)>> {
    if rids.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(rids).unwrap_or_else(|_| "[]".into());
    let mut params = vec![Value::from(to_blob(query)), Value::from(list)];
    let floor_sql = match floor {
        Some(f) => {
            params.push(Value::from(f));
            format!(
                " AND 1.0 - vector_distance_cos(v.embedding, ?1) >= ?{}",
                params.len()
            )
        }
        None => String::new(),
    };
    let filters = filter_sql(req, &mut params);
    let rows = conn
        .query(
            &format!(
                "SELECT n.rowid, n.id, 1.0 - vector_distance_cos(v.embedding, ?1)
                 FROM nodes n JOIN memory_vectors v ON v.memory_id = n.id
                 WHERE n.rowid IN (SELECT value FROM json_each(?2)) AND n.label = 'Memory'{floor_sql}{filters}"
            ),
            params,
        )
        .await
        .doing("checking the nearest vectors")?;
    let mut rows_out = Vec::with_capacity(rids.len());
    let mut rows = rows;
    while let Some(row) = rows.next().await.doing("checking the nearest vectors")? {
        let rid = match row.get_value(0).doing("checking the nearest vectors")? {
            Value::Integer(r) => r,
            _ => continue,
        };
        let id = match row.get_value(1).doing("checking the nearest vectors")? {
            Value::Text(s) => s,
            _ => continue,
        };
        let sim = match row.get_value(2).doing("checking the nearest vectors")? {
            Value::Real(f) => f,
            Value::Integer(i) => i as f64,
            _ => continue,
        };
        rows_out.push((rid, id, sim));
    }
    Ok(rows_out)
}

impl VectorIndex {
    /// Vectors held and the memory they take (for the benchmark).
    #[cfg(feature = "bench")]
    pub async fn stats(&self) -> IndexStats {
        let inner = self.inner.lock().await;
        IndexStats {
            vectors: inner.ids.len(),
            bytes: inner.codes.capacity()
                + inner.rids.capacity() * 8
                + (inner.scales.capacity() + inner.errors.capacity()) * 4
                + inner.ids.iter().map(|s| s.capacity() + 24).sum::<usize>() * 2
                + inner.slot_of.capacity() * 8,
        }
    }

    /// Brings the copy up to date (the searches do it themselves; this is for measuring).
    pub async fn refresh(&self, conn: &Connection) -> Result<()> {
        self.inner.lock().await.refresh(conn).await
    }

    /// The memories whose vectors are nearest `query` among those passing the request's
    /// filters (and, with `floor`, at least that similar), best first (ties by rid), at most
    /// `k`: exactly what an exact cosine scan in SQL returns.
    pub async fn nearest(
        &self,
        conn: &Connection,
        req: &SearchRequest,
        query: &[f32],
        k: usize,
        floor: Option<f64>,
    ) -> Result<Vec<Near>> {
        let mut inner = self.inner.lock().await;
        for attempt in 0..2 {
            inner.refresh(conn).await?;
            match nearest_in(&inner, conn, req, query, k, floor).await? {
                Some(found) => return Ok(found),
                // The copy named a row that is another memory now (the file was rebuilt
                // under it): reload it whole and search again.
                None if attempt == 0 => inner.seen = None,
                None => break,
            }
        }
        inner.seen = None;
        Ok(Vec::new())
    }

    /// How many memories passing the filters have a vector at least `floor` similar to `query`.
    pub async fn count_near(
        &self,
        conn: &Connection,
        req: &SearchRequest,
        query: &[f32],
        floor: f64,
    ) -> Result<i64> {
        let mut inner = self.inner.lock().await;
        inner.refresh(conn).await?;
        let Some(q) = unit(query) else {
            return Ok(0);
        };
        let (score, bound) = inner.scores(&q);
        let mut sure = Vec::new();
        let mut unsure = Vec::new();
        for slot in 0..inner.ids.len() {
            let low = score[slot] - inner.errors[slot] - SLACK;
            if low as f64 >= floor {
                sure.push(inner.rids[slot]);
            } else if bound[slot] as f64 >= floor {
                unsure.push(inner.rids[slot]);
            }
        }
        let unfiltered = filter_sql(req, &mut Vec::new()).is_empty();
        let sure = if unfiltered {
            sure.len() as i64
        } else {
            let mut params = vec![Value::from(
                serde_json::to_string(&sure).unwrap_or_default(),
            )];
            let filters = filter_sql(req, &mut params);
            scalar_i64(
                conn,
                &format!(
                    "SELECT count(*) FROM nodes n WHERE n.rowid IN (SELECT value FROM json_each(?1))
                     AND n.label = 'Memory'{filters}"
                ),
                params,
                "counting near vectors",
            )
            .await?
        };
        let unsure = check(conn, req, query, &unsure, Some(floor)).await?.len() as i64;
        Ok(sure + unsure)
    }
}

/// The search over an up-to-date copy; `None` when the database disagrees with the copy.
async fn nearest_in(
    inner: &Inner,
    conn: &Connection,
    req: &SearchRequest,
    query: &[f32],
    k: usize,
    floor: Option<f64>,
) -> Result<Option<Vec<Near>>> {
    let n = inner.ids.len();
    if k == 0 || n == 0 {
        return Ok(Some(Vec::new()));
    }
    let Some(q) = unit(query) else {
        return Ok(Some(Vec::new()));
    };
    let (_, bound) = inner.scores(&q);
    let mut order: Vec<u32> = (0..n as u32).collect();
    let filtered = !filter_sql(req, &mut Vec::new()).is_empty();
    let mut chunk = if filtered {
        (4 * k).max(FILTERED_CHUNK)
    } else {
        2 * k + FIRST_CHUNK
    };
    let by_bound = |a: &u32, b: &u32| bound[*b as usize].total_cmp(&bound[*a as usize]);
    let mut found: Vec<Near> = Vec::new();
    let mut at = 0;
    let below_floor = |b: f32| floor.is_some_and(|f| (b as f64) < f);
    while at < n {
        let end = (at + chunk).min(n);
        // Only the next chunk needs to be in order: select it, then sort it.
        if end < n {
            order[at..].select_nth_unstable_by(end - at - 1, by_bound);
        }
        order[at..end].sort_unstable_by(by_bound);
        let slots = &order[at..end];
        let rids: Vec<i64> = slots.iter().map(|&s| inner.rids[s as usize]).collect();
        let slot_of: HashMap<i64, u32> = rids.iter().copied().zip(slots.iter().copied()).collect();
        for (rid, id, sim) in check(conn, req, query, &rids, floor).await? {
            if slot_of
                .get(&rid)
                .is_none_or(|&s| inner.ids[s as usize] != id)
            {
                return Ok(None);
            }
            found.push(Near {
                rid,
                similarity: sim,
            });
        }
        at = end;
        chunk *= 4;
        // The best any remaining candidate can be.
        let next = order[at..]
            .iter()
            .map(|&s| bound[s as usize])
            .fold(f32::NEG_INFINITY, f32::max);
        // Nothing left reaches the floor.
        if below_floor(next) {
            break;
        }
        if found.len() >= k {
            found.sort_by(|a, b| {
                b.similarity
                    .total_cmp(&a.similarity)
                    .then(a.rid.cmp(&b.rid))
            });
            found.truncate(k);
            // Nothing left can beat the k-th: every remaining bound is below it.
            let kth = found[k - 1].similarity;
            if (next as f64) < kth {
                break;
            }
        }
    }
    found.sort_by(|a, b| {
        b.similarity
            .total_cmp(&a.similarity)
            .then(a.rid.cmp(&b.rid))
    });
    found.truncate(k);
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_unit(seed: u64) -> Vec<f32> {
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

    #[test]
    fn quantised_scores_stay_within_their_error() {
        let q = pseudo_unit(99);
        let mut inner = Inner::default();
        for i in 0..200u64 {
            inner.put(format!("m{i}"), i as i64, &pseudo_unit(i + 1));
        }
        let (score, bound) = inner.scores(&q);
        for i in 0..200usize {
            let exact: f32 = crate::backend::search::embed::cosine(&q, &pseudo_unit(i as u64 + 1));
            let slot = inner.slot_of[&format!("m{i}")];
            assert!(exact <= bound[slot], "{exact} > {}", bound[slot]);
            assert!(exact >= score[slot] - inner.errors[slot] - SLACK);
            assert!(inner.errors[slot] < 0.02, "error {}", inner.errors[slot]);
        }
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
        assert_eq!(older.ids.len() as u64, n + 2);
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
        let mut left: Vec<&String> = older.ids.iter().collect();
        left.sort();
        assert_eq!(left, [&format!("m{n}"), &format!("m{}", n + 1)]);

        let mut newer = Inner::default();
        newer.refresh(&conn).await.unwrap();
        conn.execute(
            "DELETE FROM memory_vectors WHERE memory_id = ?1",
            libsql::params![format!("m{n}")],
        )
        .await
        .unwrap();
        newer.refresh(&conn).await.unwrap();
        assert_eq!(newer.ids, [format!("m{}", n + 1)]);
    }

    #[test]
    fn removing_keeps_every_other_slot_right() {
        let mut inner = Inner::default();
        for i in 0..10u64 {
            inner.put(format!("m{i}"), i as i64, &pseudo_unit(i + 1));
        }
        inner.remove("m3");
        inner.remove("m9");
        inner.remove("nothing");
        inner.put("m4".into(), 44, &pseudo_unit(500));
        assert_eq!(inner.ids.len(), 8);
        assert_eq!(inner.codes.len(), 8 * DIMENSIONS);
        for (id, &slot) in &inner.slot_of {
            assert_eq!(&inner.ids[slot], id);
        }
        let q = pseudo_unit(500);
        let (score, _) = inner.scores(&q);
        let best = (0..8)
            .max_by(|&a, &b| score[a].total_cmp(&score[b]))
            .unwrap();
        assert_eq!(inner.ids[best], "m4");
        assert_eq!(inner.rids[best], 44);
    }
}

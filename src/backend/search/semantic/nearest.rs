//! The database's side of semantic search: the candidates a scan picked are checked in
//! chunks, best first, with the exact cosine and the request's filters, until no candidate
//! left can change the answer.

use std::collections::{HashMap, HashSet};

use libsql::{Connection, Value};

use super::index::{Inner, Near, VectorIndex, key_of, to_blob};
use super::scan::{PICKS, Pick, Scan};
use crate::backend::error::{DbContext, Result};
use crate::backend::scalar_i64;
use crate::backend::search::filters::{filter_sql, indexed_only};
use crate::backend::search::{SEMANTIC_FLOOR, SearchRequest, Total};

/// Candidates checked in the database in the first chunk, beyond twice the number wanted;
/// each later chunk is four times larger.
const FIRST_CHUNK: usize = 32;
/// With filters, a chunk is at least this large: most candidates may fail them.
const FILTERED_CHUNK: usize = 512;
/// Without filters, the most candidates one search checks (each costs a few microseconds
/// in the database). Only when the bounds of more than this many vectors reach the k-th
/// exact cosine, on a very large copy of vectors without a clear nearest few, does the
/// answer stop at what these gave.
pub const CHECK_LIMIT: usize = 1024;
/// Filters answered by indexes that this many memories pass or fewer are searched by
/// checking every one of them: exact, and quick however few of the nearest vectors pass.
const FEW_PASSING: usize = 2048;
/// Vectors changed since a scan that are checked one by one; more, and the copy is scanned
/// again instead.
const CHANGES_CHECKED: usize = 256;

/// The memories whose vectors changed past a change count: their rows and ids. CROSS JOIN
/// keeps the log outside: from `nodes`, SQLite looked every memory up in the log (9 s at a
/// million).
const CHANGED_SINCE: &str = "SELECT n.rowid, l.memory_id FROM memory_vector_log l
     CROSS JOIN nodes n ON n.id = l.memory_id AND n.label = 'Memory'
     WHERE l.change > ?1 AND l.present = 1 LIMIT ?2";

/// A chunk's rows as the database has them now: (rid, id, exact cosine), for the memories
/// among `rids` that pass the request's filters (and, with `floor`, are at least that similar).
pub(super) async fn check(
    conn: &Connection,
    req: &SearchRequest,
    query: &[f32],
    rids: &[i64],
    floor: Option<f64>,
) -> Result<Vec<(i64, String, f64)>> {
    const DOING: &str = "checking the nearest vectors";
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
    let mut rows = conn
        .query(
            &format!(
                "SELECT n.rowid, n.id, 1.0 - vector_distance_cos(v.embedding, ?1)
                 FROM nodes n JOIN memory_vectors v ON v.memory_id = n.id
                 WHERE n.rowid IN (SELECT value FROM json_each(?2)) AND n.label = 'Memory'{floor_sql}{filters}"
            ),
            params,
        )
        .await
        .doing(DOING)?;
    let mut out = Vec::with_capacity(rids.len());
    while let Some(row) = rows.next().await.doing(DOING)? {
        let (Value::Integer(rid), Value::Text(id)) = (
            row.get_value(0).doing(DOING)?,
            row.get_value(1).doing(DOING)?,
        ) else {
            continue;
        };
        let sim = match row.get_value(2).doing(DOING)? {
            Value::Real(f) => f,
            Value::Integer(i) => i as f64,
            _ => continue,
        };
        out.push((rid, id, sim));
    }
    Ok(out)
}

/// When only indexes answer the request's filters and at most [`FEW_PASSING`] memories pass
/// them: every one of those with a vector (and, with `floor`, at least that similar), checked
/// exactly, best first. `None` otherwise (or without filters): the copy is searched.
async fn few_near(
    conn: &Connection,
    req: &SearchRequest,
    query: &[f32],
    floor: Option<f64>,
) -> Result<Option<Vec<Near>>> {
    const DOING: &str = "listing the memories the filters pass";
    let mut params = Vec::new();
    let filters = filter_sql(req, &mut params);
    if filters.is_empty() || !indexed_only(req) {
        return Ok(None);
    }
    let mut rows = conn
        .query(
            &format!(
                "SELECT n.rowid FROM nodes n WHERE n.label = 'Memory'{filters} LIMIT {}",
                FEW_PASSING + 1
            ),
            params,
        )
        .await
        .doing(DOING)?;
    let mut rids = Vec::new();
    while let Some(row) = rows.next().await.doing(DOING)? {
        if let Value::Integer(rid) = row.get_value(0).doing(DOING)? {
            rids.push(rid);
        }
    }
    if rids.len() > FEW_PASSING {
        return Ok(None);
    }
    let mut found: Vec<Near> = check(conn, req, query, &rids, floor)
        .await?
        .into_iter()
        .map(|(rid, _, similarity)| Near { rid, similarity })
        .collect();
    best_first(&mut found, usize::MAX);
    Ok(Some(found))
}

/// The candidates to check for `query` against the copy as it is now (refreshed): the
/// scan's picks, with the memories whose vectors changed since the copy it scanned put
/// first; or a new scan when the scan is missing, from another copy, or too far behind.
async fn candidates(
    inner: &Inner,
    conn: &Connection,
    query: &[f32],
    scan: Option<&Scan>,
) -> Result<Scan> {
    let now = inner.seen.unwrap_or(i64::MIN);
    let rescan = || inner.scan(query, PICKS).unwrap_or_else(|| Scan::empty(now));
    let Some(scan) = scan.filter(|s| s.seen <= now) else {
        return Ok(rescan());
    };
    if scan.seen == now {
        return Ok(scan.clone());
    }
    const DOING: &str = "reading changed vectors";
    let mut rows = conn
        .query(
            CHANGED_SINCE,
            libsql::params![scan.seen, CHANGES_CHECKED as i64 + 1],
        )
        .await
        .doing(DOING)?;
    let mut changed = Vec::new();
    while let Some(row) = rows.next().await.doing(DOING)? {
        if let (Value::Integer(rid), Value::Text(id)) = (
            row.get_value(0).doing(DOING)?,
            row.get_value(1).doing(DOING)?,
        ) {
            // Nothing known of it: it is checked first, and never counted unchecked.
            changed.push(Pick {
                rid,
                key: key_of(&id),
                estimate: 0.0,
                error: f32::INFINITY,
            });
        }
    }
    if changed.len() > CHANGES_CHECKED {
        return Ok(rescan());
    }
    let moved: HashSet<i64> = changed.iter().map(|p| p.rid).collect();
    changed.extend(scan.picks.iter().filter(|p| !moved.contains(&p.rid)));
    Ok(Scan {
        seen: now,
        picks: changed,
        rest: scan.rest,
        rest_above_floor: scan.rest_above_floor,
    })
}

/// Whether the request narrows the memories searched (its filters make SQL).
fn has_filters(req: &SearchRequest) -> bool {
    !filter_sql(req, &mut Vec::new()).is_empty()
}

fn best_first(found: &mut Vec<Near>, k: usize) {
    found.sort_by(|a, b| {
        b.similarity
            .total_cmp(&a.similarity)
            .then(a.rid.cmp(&b.rid))
    });
    found.truncate(k);
}

/// The search over an up-to-date copy; `None` when the database disagrees with the copy.
async fn nearest_in(
    inner: &Inner,
    conn: &Connection,
    req: &SearchRequest,
    query: &[f32],
    scan: Option<&Scan>,
    k: usize,
    floor: Option<f64>,
) -> Result<Option<Vec<Near>>> {
    if k == 0 || inner.len() == 0 {
        return Ok(Some(Vec::new()));
    }
    let filtered = has_filters(req);
    let mut scan = candidates(inner, conn, query, scan).await?;
    let mut chunk = if filtered {
        (4 * k).max(FILTERED_CHUNK)
    } else {
        2 * k + FIRST_CHUNK
    };
    let limit = if filtered {
        usize::MAX
    } else {
        CHECK_LIMIT.max(2 * k + FIRST_CHUNK)
    };
    let below_floor = |b: f32| floor.is_some_and(|f| (b as f64) < f);
    let mut found: Vec<Near> = Vec::new();
    let mut checked: HashSet<i64> = HashSet::new();
    let mut at = 0;
    loop {
        if at >= scan.picks.len() {
            // Every pick is checked; those left out may still count when filters turned
            // most picks away: scan again for all of them, skipping what was checked.
            let wanting = found.len() < k || (scan.rest as f64) >= found[k - 1].similarity;
            if !filtered || scan.rest == f32::NEG_INFINITY || below_floor(scan.rest) || !wanting {
                break;
            }
            // Only what can still reach the floor and beat the k-th found is wanted.
            let kth = found.get(k - 1).map_or(f64::NEG_INFINITY, |n| n.similarity);
            let bar = floor.unwrap_or(f64::NEG_INFINITY).max(kth) as f32;
            let mut all = inner.scan_above(query, bar).unwrap_or(scan);
            all.picks.retain(|p| !checked.contains(&p.rid));
            scan = all;
            at = 0;
            continue;
        }
        let end = (at + chunk)
            .min(scan.picks.len())
            .min(limit.saturating_sub(checked.len()) + at);
        if end == at {
            break;
        }
        let picks = &scan.picks[at..end];
        let rids: Vec<i64> = picks.iter().map(|p| p.rid).collect();
        let key_of_rid: HashMap<i64, u64> = picks.iter().map(|p| (p.rid, p.key)).collect();
        checked.extend(&rids);
        for (rid, id, sim) in check(conn, req, query, &rids, floor).await? {
            if key_of_rid.get(&rid) != Some(&key_of(&id)) {
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
        let next = scan
            .picks
            .get(at)
            .map_or(scan.rest, |p| p.high().max(scan.rest));
        if below_floor(next) {
            break;
        }
        if found.len() >= k {
            best_first(&mut found, k);
            // Nothing left can beat the k-th: every remaining bound is below it.
            if (next as f64) < found[k - 1].similarity {
                break;
            }
        }
    }
    best_first(&mut found, k);
    Ok(Some(found))
}

/// [`VectorIndex::nearest`] through the copy, which the caller holds.
async fn nearest_through(
    inner: &mut Inner,
    conn: &Connection,
    req: &SearchRequest,
    query: &[f32],
    scan: Option<&Scan>,
    k: usize,
    floor: Option<f64>,
) -> Result<Vec<Near>> {
    let mut scan = scan;
    for attempt in 0..2 {
        inner.refresh(conn).await?;
        match nearest_in(inner, conn, req, query, scan, k, floor).await? {
            Some(found) => return Ok(found),
            // The copy named a row that is another memory now (the file was rebuilt
            // under it): reload it whole and search again.
            None if attempt == 0 => {
                inner.seen = None;
                scan = None;
            }
            None => break,
        }
    }
    inner.seen = None;
    Ok(Vec::new())
}

/// How many memories passing the filters have a vector at least `floor` similar to `query`,
/// through the copy (refreshed), which the caller holds. Those beyond the scan's picks are
/// counted by their estimate without filters (only when more than [`PICKS`] vectors come
/// near the floor); with filters they are not counted, and the count is a lower bound when
/// any of them could reach the floor.
async fn count_through(
    inner: &mut Inner,
    conn: &Connection,
    req: &SearchRequest,
    query: &[f32],
    scan: Option<&Scan>,
    floor: f64,
) -> Result<Total> {
    if inner.seen.is_none() {
        inner.refresh(conn).await?;
    }
    let inner = &*inner;
    let scan = candidates(inner, conn, query, scan).await?;
    let (sure, unsure): (Vec<&Pick>, Vec<&Pick>) = scan
        .picks
        .iter()
        .filter(|p| p.high() as f64 >= floor)
        .partition(|p| p.low() as f64 >= floor);
    let sure: Vec<i64> = sure.iter().map(|p| p.rid).collect();
    let unsure: Vec<i64> = unsure.iter().map(|p| p.rid).collect();
    let unfiltered = !has_filters(req);
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
    let beyond = if unfiltered && floor == SEMANTIC_FLOOR {
        scan.rest_above_floor as i64
    } else {
        0
    };
    let count = sure + unsure + beyond;
    // With filters, a vector left out of the picks may pass them and reach the floor.
    let uncounted = !unfiltered && scan.rest as f64 >= floor;
    Ok(if uncounted {
        Total::at_least(count)
    } else {
        Total::exact(count)
    })
}

impl VectorIndex {
    /// The memories whose vectors are nearest `query` among those passing the request's
    /// filters (and, with `floor`, at least that similar), best first (ties by rid), at most
    /// `k`, from the candidates of `scan` (made before, without the connection) or of a scan
    /// made here.
    pub async fn nearest(
        &self,
        conn: &Connection,
        req: &SearchRequest,
        query: &[f32],
        scan: Option<&Scan>,
        k: usize,
        floor: Option<f64>,
    ) -> Result<Vec<Near>> {
        if let Some(mut all) = few_near(conn, req, query, floor).await? {
            all.truncate(k);
            return Ok(all);
        }
        let mut inner = self.inner.lock().await;
        nearest_through(&mut inner, conn, req, query, scan, k, floor).await
    }

    /// [`VectorIndex::nearest`] at least `floor` similar, with how many memories passing the
    /// filters are (exactly, or at least), from one hold of the copy.
    pub async fn nearest_counted(
        &self,
        conn: &Connection,
        req: &SearchRequest,
        query: &[f32],
        scan: Option<&Scan>,
        k: usize,
        floor: f64,
    ) -> Result<(Vec<Near>, Total)> {
        if let Some(mut all) = few_near(conn, req, query, Some(floor)).await? {
            let total = Total::exact(all.len() as i64);
            all.truncate(k);
            return Ok((all, total));
        }
        let mut inner = self.inner.lock().await;
        let found = nearest_through(&mut inner, conn, req, query, scan, k, Some(floor)).await?;
        let total = count_through(&mut inner, conn, req, query, scan, floor).await?;
        Ok((found, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::search::semantic::index::tests::{near, pseudo_unit};

    async fn insert(conn: &Connection, i: u64, v: &[f32]) {
        conn.execute(
            "INSERT OR IGNORE INTO nodes (id, label, properties) VALUES (?1, 'Memory', '{}')",
            libsql::params![format!("m{i}")],
        )
        .await
        .unwrap();
        conn.execute(
            "INSERT OR REPLACE INTO memory_vectors (memory_id, embedding) VALUES (?1, ?2)",
            libsql::params![format!("m{i}"), to_blob(v)],
        )
        .await
        .unwrap();
    }

    async fn exact(conn: &Connection, q: &[f32], k: usize) -> Vec<i64> {
        let mut rows = conn
            .query(
                "SELECT n.rowid FROM memory_vectors v JOIN nodes n ON n.id = v.memory_id
                 ORDER BY vector_distance_cos(v.embedding, ?1), n.rowid LIMIT ?2",
                libsql::params![to_blob(q), k as i64],
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            out.push(row.get::<i64>(0).unwrap());
        }
        out
    }

    /// The changes since a scan are read from the log's change index, whatever the planner
    /// thinks of the two tables' sizes.
    #[tokio::test]
    async fn the_changes_since_a_scan_are_read_from_the_log_outward() {
        let (_db, conn) = crate::backend::schema::test_database().await;
        let mut rows = conn
            .query(
                &format!("EXPLAIN QUERY PLAN {CHANGED_SINCE}"),
                libsql::params![0, 10],
            )
            .await
            .unwrap();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            steps.push(row.get::<String>(3).unwrap());
        }
        assert!(
            steps[0].contains("l USING INDEX idx_memory_vector_log_change"),
            "{steps:?}"
        );
    }

    /// Groups of vectors around a few centres, as memories on a few subjects are: the
    /// answer through the codes is the exact scan's, with a scan made before the latest
    /// writes as well as with one made now.
    #[tokio::test]
    async fn the_answer_is_the_exact_scans_even_from_a_scan_made_before_the_last_writes() {
        let (_db, conn) = crate::backend::schema::test_database().await;
        let centres: Vec<Vec<f32>> = (0..30).map(|c| pseudo_unit(10_000 + c)).collect();
        let n = 3_000u64;
        for i in 0..n {
            insert(&conn, i, &near(&centres[(i % 30) as usize], i + 1, 0.9)).await;
        }
        let index = VectorIndex::default();
        index.refresh(&conn).await.unwrap();
        let req = SearchRequest::new("", 10);
        for q in 0..12u64 {
            let query = near(&centres[(q * 7 % 30) as usize], 50_000 + q, 0.6);
            let scan = index.scan_blocking_for_tests(&query);
            for k in [1, 10, 100] {
                let found: Vec<i64> = index
                    .nearest(&conn, &req, &query, scan.as_ref(), k, None)
                    .await
                    .unwrap()
                    .iter()
                    .map(|n| n.rid)
                    .collect();
                assert_eq!(found, exact(&conn, &query, k).await, "query {q}, k {k}");
            }
        }

        // Written after the scan: a vector equal to the query, and one moved onto it.
        let query = near(&centres[3], 77, 0.6);
        let stale = index.scan_blocking_for_tests(&query);
        insert(&conn, n, &query).await;
        insert(&conn, 5, &near(&query, 78, 0.01)).await;
        let found = index
            .nearest(&conn, &req, &query, stale.as_ref(), 10, None)
            .await
            .unwrap();
        let rids: Vec<i64> = found.iter().map(|n| n.rid).collect();
        assert_eq!(rids, exact(&conn, &query, 10).await);
        assert!((found[0].similarity - 1.0).abs() < 1e-4);
        // Counting: the changed ones are checked, never taken on trust.
        let floor = 0.5;
        let counted = index
            .nearest_counted(&conn, &req, &query, stale.as_ref(), 10, floor)
            .await
            .unwrap()
            .1;
        let mut rows = conn
            .query(
                "SELECT count(*) FROM memory_vectors WHERE 1.0 - vector_distance_cos(embedding, ?1) >= ?2",
                libsql::params![to_blob(&query), floor],
            )
            .await
            .unwrap();
        let want = rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap();
        assert_eq!(counted, Total::exact(want));
    }
}

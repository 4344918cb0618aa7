//! Versions in a ranking. A memory superseded by another (a current `REPLACES` link from the
//! new one to the old) is history, not noise: when both match a query, the old one is shown
//! directly after the one that replaced it (and its own older versions after it), marked
//! with its successor; when only the old one matches, it keeps the place its score gives it.
//! Either way it is never pushed below every other match.

use std::collections::{HashMap, HashSet};

use libsql::Connection;

use crate::backend::error::{DbContext, Result};
use crate::backend::{all_rows, scalar_i64};
use crate::model::time_words::AsOf;

/// The superseding memory of each superseded one among `rids` (row ids both).
pub async fn successors(
    conn: &Connection,
    rids: &[i64],
    as_of: Option<&AsOf>,
) -> Result<HashMap<i64, i64>> {
    let mut out = HashMap::new();
    if rids.is_empty() || !any_superseded(conn).await? {
        return Ok(out);
    }
    let counts = super::filters::link_counts(as_of);
    for ids in super::rid_lists(rids) {
        let rows = conn
            .query(
                &format!(
                    "SELECT old.rowid, new.rowid
                     FROM nodes old
                     JOIN relationships r ON r.to_id = old.id AND r.rel_type = 'REPLACES' AND {counts}
                     JOIN nodes new ON new.id = r.from_id
                     WHERE old.rowid IN ({ids})"
                ),
                (),
            )
            .await
            .doing("looking for superseded memories")?;
        for r in all_rows(rows, "looking for superseded memories").await? {
            out.entry(r.int(0)).or_insert(r.int(1));
        }
    }
    Ok(out)
}

/// Whether any memory was ever superseded: the common case is none, which spares the
/// lookup.
async fn any_superseded(conn: &Connection) -> Result<bool> {
    Ok(scalar_i64(
        conn,
        "SELECT count(*) FROM (SELECT 1 FROM relationships WHERE rel_type = 'REPLACES' LIMIT 1)",
        vec![],
        "looking for superseded memories",
    )
    .await?
        > 0)
}

/// `items` in their order, except that each one whose successor is among them comes
/// directly after that successor (several after one successor in their own order, each
/// followed by its own older versions).
pub fn after_successors<T>(
    items: Vec<T>,
    rid: impl Fn(&T) -> i64,
    successor: &HashMap<i64, i64>,
) -> Vec<T> {
    if successor.is_empty() {
        return items;
    }
    let present: HashSet<i64> = items.iter().map(&rid).collect();
    let follows = |r: i64| successor.get(&r).copied().filter(|s| present.contains(s));
    let mut older: HashMap<i64, Vec<usize>> = HashMap::new();
    for (at, item) in items.iter().enumerate() {
        if let Some(newer) = follows(rid(item)) {
            older.entry(newer).or_default().push(at);
        }
    }
    let mut order = Vec::with_capacity(items.len());
    let mut placed = vec![false; items.len()];
    for at in 0..items.len() {
        if follows(rid(&items[at])).is_none() {
            place(at, &items, &rid, &older, &mut placed, &mut order);
        }
    }
    // Versions that supersede each other in a circle have no head: they keep their order.
    for at in 0..items.len() {
        if !placed[at] {
            place(at, &items, &rid, &older, &mut placed, &mut order);
        }
    }
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|at| slots[at].take().expect("each placed once"))
        .collect()
}

/// Places one item, then its older versions, depth first.
fn place<T>(
    at: usize,
    items: &[T],
    rid: &impl Fn(&T) -> i64,
    older: &HashMap<i64, Vec<usize>>,
    placed: &mut [bool],
    order: &mut Vec<usize>,
) {
    let mut stack = vec![at];
    while let Some(at) = stack.pop() {
        if std::mem::replace(&mut placed[at], true) {
            continue;
        }
        order.push(at);
        if let Some(list) = older.get(&rid(&items[at])) {
            stack.extend(list.iter().rev());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arranged(items: &[i64], links: &[(i64, i64)]) -> Vec<i64> {
        let successor: HashMap<i64, i64> = links.iter().copied().collect();
        after_successors(items.to_vec(), |r| *r, &successor)
    }

    #[test]
    fn an_old_version_follows_its_successor_wherever_each_ranked() {
        // 9 replaced 3; 3 ranked first, 9 fourth.
        assert_eq!(arranged(&[3, 1, 2, 9, 4], &[(3, 9)]), [1, 2, 9, 3, 4]);
        // The successor first already: nothing moves.
        assert_eq!(arranged(&[9, 3, 1], &[(3, 9)]), [9, 3, 1]);
    }

    #[test]
    fn a_chain_of_versions_stays_in_order_newest_first() {
        // 5 replaced 4, which replaced 3.
        assert_eq!(
            arranged(&[3, 1, 4, 5, 2], &[(3, 4), (4, 5)]),
            [1, 5, 4, 3, 2]
        );
        // Two old versions of one memory keep their own order after it.
        assert_eq!(arranged(&[7, 8, 1, 6], &[(7, 6), (8, 6)]), [1, 6, 7, 8]);
    }

    #[test]
    fn an_old_version_whose_successor_did_not_match_keeps_its_place() {
        assert_eq!(arranged(&[1, 3, 2], &[(3, 99)]), [1, 3, 2]);
    }

    #[test]
    fn versions_in_a_circle_are_all_kept() {
        assert_eq!(arranged(&[1, 2, 3], &[(1, 2), (2, 1)]), [3, 1, 2]);
    }
}

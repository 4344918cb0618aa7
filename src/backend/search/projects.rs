//! Projects in a search ([`crate::model::project`]). Scoped to a project, a search sees that
//! project's memories and the shared ones (a filter beside the others). Favouring it, a
//! search sees every memory, and the matches from other projects come after the current
//! project's and the shared ones, each part in its own order: a user with one project, or
//! none, gets exactly the ranking they had.

use std::collections::HashSet;

use libsql::{Connection, Value};

use crate::backend::error::{DbContext, Result};
use crate::backend::{all_rows, scalar_i64};
use crate::model::project::ProjectFocus;

/// A memory's project, as stored (MemoryGraph's flattened `context.project_path`).
const PROJECT: &str = "json_extract(n.properties, '$.context_project_path')";

/// The SQL condition "memory `n` belongs to the project in `?{at}`": no project, the same
/// folder, or a folder inside it. The comparisons are ranges of the project index.
pub fn belongs_sql(at: usize) -> String {
    format!(
        "({PROJECT} IS NULL OR {PROJECT} = '' OR {PROJECT} = ?{at}
          OR ({PROJECT} >= ?{at} || '/' AND {PROJECT} < ?{at} || '0'))"
    )
}

/// Among `rids`, the memories of other projects than the focus's.
pub async fn of_other_projects(
    conn: &Connection,
    rids: &[i64],
    focus: &ProjectFocus,
) -> Result<HashSet<i64>> {
    let mut out = HashSet::new();
    if rids.is_empty() || !any_other_project(conn, focus).await? {
        return Ok(out);
    }
    let belongs = belongs_sql(1);
    for ids in super::rid_lists(rids) {
        let rows = conn
            .query(
                &format!("SELECT n.rowid FROM nodes n WHERE n.rowid IN ({ids}) AND NOT {belongs}"),
                vec![Value::from(focus.path.clone())],
            )
            .await
            .doing("looking for other projects' memories")?;
        for r in all_rows(rows, "looking for other projects' memories").await? {
            out.insert(r.int(0));
        }
    }
    Ok(out)
}

/// Whether any memory belongs to another project: the common case is none, which spares
/// the lookup. Three ranges of the project index (below the project, between it and its
/// folders, after them), each stopping at the first memory: a user whose memories are all
/// in one project pays three seeks, not a read of every memory.
async fn any_other_project(conn: &Connection, focus: &ProjectFocus) -> Result<bool> {
    let range = |condition: &str| {
        format!("EXISTS (SELECT 1 FROM nodes n WHERE n.label = 'Memory' AND {condition} LIMIT 1)")
    };
    Ok(scalar_i64(
        conn,
        &format!(
            "SELECT {} OR {} OR {}",
            range(&format!("{PROJECT} > '' AND {PROJECT} < ?1")),
            range(&format!("{PROJECT} > ?1 AND {PROJECT} < ?1 || '/'")),
            range(&format!("{PROJECT} >= ?1 || '0'")),
        ),
        vec![Value::from(focus.path.clone())],
        "looking for other projects' memories",
    )
    .await?
        > 0)
}

/// `items` with those of other projects moved after the rest, each part in its order.
pub fn favoured<T>(items: Vec<T>, rid: impl Fn(&T) -> i64, others: &HashSet<i64>) -> Vec<T> {
    if others.is_empty() {
        return items;
    }
    let (mut own, theirs): (Vec<T>, Vec<T>) = items
        .into_iter()
        .partition(|item| !others.contains(&rid(item)));
    own.extend(theirs);
    own
}

/// Puts the current project's matches first when the request favours a project.
pub async fn favour<T>(
    conn: &Connection,
    focus: Option<&ProjectFocus>,
    items: Vec<T>,
    rid: impl Fn(&T) -> i64,
) -> Result<Vec<T>> {
    let Some(focus) = focus.filter(|f| !f.only) else {
        return Ok(items);
    };
    let rids: Vec<i64> = items.iter().map(&rid).collect();
    let others = of_other_projects(conn, &rids, focus).await?;
    Ok(favoured(items, rid, &others))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_projects_follow_in_their_order() {
        let others: HashSet<i64> = [2, 4].into();
        assert_eq!(favoured(vec![4, 1, 2, 3], |r| *r, &others), [1, 3, 4, 2]);
        assert_eq!(favoured(vec![1, 3], |r| *r, &HashSet::new()), [1, 3]);
    }
}

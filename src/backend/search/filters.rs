//! The SQL for a search's filters, shared by search, recall and listings. Every filter runs
//! in SQL next to the text match, so totals and pages are exact.

use libsql::Value;

use super::SearchRequest;
use crate::model::time_words::AsOf;

/// When a relationship `r` counts: while current, or, as of an instant, when it was valid
/// then (from `valid_from`, or its creation, until `valid_until`).
pub fn link_counts(as_of: Option<&AsOf>) -> String {
    match as_of {
        None => "r.valid_until IS NULL".to_string(),
        Some(t) => {
            let t = t.sql();
            format!(
                "julianday(coalesce(r.valid_from, r.created_at)) <= {t} \
                 AND (r.valid_until IS NULL OR julianday(r.valid_until) > {t})"
            )
        }
    }
}

/// The memory that supersedes a memory `n` (a `REPLACES` link pointing at it that counts,
/// see [`link_counts`]), or NULL.
pub fn superseded_by(as_of: Option<&AsOf>) -> String {
    format!(
        "(SELECT r.from_id FROM relationships r
          WHERE r.to_id = n.id AND r.rel_type = 'REPLACES' AND {} LIMIT 1)",
        link_counts(as_of)
    )
}

/// Whether every filter of the request is answered by an index (type, tags, project, ids):
/// the memories passing them can be listed without reading any memory's JSON.
pub fn indexed_only(req: &SearchRequest) -> bool {
    req.min_importance.is_none()
        && req.created_after.is_none()
        && req.created_before.is_none()
        && req.relationship_types.is_empty()
        && req.literal.is_empty()
}

/// The conditions for a request's filters, each starting with ` AND `; their values are
/// appended to `params` and numbered after the ones already there.
pub fn filter_sql(req: &SearchRequest, params: &mut Vec<Value>) -> String {
    let mut sql = String::new();
    let placeholders = |values: Vec<String>, params: &mut Vec<Value>| {
        values
            .into_iter()
            .map(|v| {
                params.push(v.into());
                format!("?{}", params.len())
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !req.memory_types.is_empty() {
        let list = placeholders(
            req.memory_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            params,
        );
        sql.push_str(&format!(
            " AND json_extract(n.properties, '$.type') IN ({list})"
        ));
    }
    if !req.tags.is_empty() {
        // From the tag index (schema step 12): the memories holding the tags, not every
        // memory's JSON. A memory holds each tag once there, so counting rows counts tags.
        let wanted = req.tags.len();
        let list = placeholders(req.tags.clone(), params);
        let holding = format!("SELECT rid FROM memory_tags WHERE tag IN ({list})");
        if req.all_tags {
            sql.push_str(&format!(
                " AND n.rowid IN ({holding} GROUP BY rid HAVING count(*) = {wanted})"
            ));
        } else {
            sql.push_str(&format!(" AND n.rowid IN ({holding})"));
        }
    }
    if let Some(project) = &req.project_path {
        let p = placeholders(vec![project.clone()], params);
        sql.push_str(&format!(
            " AND json_extract(n.properties, '$.context_project_path') = {p}"
        ));
    }
    if let Some(focus) = req.project.as_ref().filter(|f| f.only) {
        params.push(focus.path.clone().into());
        sql.push_str(&format!(
            " AND {}",
            super::projects::belongs_sql(params.len())
        ));
    }
    if let Some(min) = req.min_importance {
        params.push(min.into());
        sql.push_str(&format!(
            " AND coalesce(json_extract(n.properties, '$.importance'), 0.5) >= ?{}",
            params.len()
        ));
    }
    if let Some(after) = &req.created_after {
        let p = placeholders(vec![after.clone()], params);
        sql.push_str(&format!(
            " AND julianday(json_extract(n.properties, '$.created_at')) >= julianday({p})"
        ));
    }
    if let Some(as_of) = &req.as_of {
        sql.push_str(&format!(
            " AND julianday(json_extract(n.properties, '$.created_at')) <= {}",
            as_of.sql()
        ));
    }
    if let Some(before) = &req.created_before {
        let p = placeholders(vec![before.clone()], params);
        sql.push_str(&format!(
            " AND julianday(json_extract(n.properties, '$.created_at')) < julianday({p})"
        ));
    }
    if !req.relationship_types.is_empty() {
        let list = placeholders(
            req.relationship_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            params,
        );
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM relationships r WHERE (r.from_id = n.id OR r.to_id = n.id)
                 AND +r.valid_until IS NULL AND r.rel_type IN ({list}))"
        ));
    }
    for piece in &req.literal {
        params.push(piece.to_lowercase().into());
        sql.push_str(&format!(
            " AND instr(lower(coalesce(json_extract(n.properties, '$.title'), '') || ' ' ||
                              coalesce(json_extract(n.properties, '$.summary'), '') || ' ' ||
                              coalesce(json_extract(n.properties, '$.tags'), '') || ' ' ||
                              coalesce(json_extract(n.properties, '$.content'), '')), ?{}) > 0",
            params.len()
        ));
    }
    if let Some(ids) = &req.within {
        if ids.is_empty() {
            sql.push_str(" AND 0");
        } else {
            let list = placeholders(ids.clone(), params);
            sql.push_str(&format!(" AND n.id IN ({list})"));
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    use libsql::Connection;

    use super::*;
    use crate::backend::schema::{migrate, test_database};

    /// Numbers from a fixed seed.
    fn stream(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut s = seed | 1;
        move |below| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s % below
        }
    }

    async fn pairs(conn: &Connection, sql: &str) -> Vec<(String, i64)> {
        let mut rows = conn.query(sql, ()).await.unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            out.push((row.get::<String>(0).unwrap(), row.get::<i64>(1).unwrap()));
        }
        out
    }

    /// What the tag index holds, and what it should: each memory's tags read from its JSON
    /// as the tag filter read them before the index.
    async fn held_and_meant(conn: &Connection) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
        let held = pairs(conn, "SELECT tag, rid FROM memory_tags ORDER BY 1, 2").await;
        let meant = pairs(
            conn,
            "SELECT DISTINCT lower(trim(t.value)), n.rowid FROM nodes n, json_each(n.properties, '$.tags') t
             WHERE n.label = 'Memory' AND t.value IS NOT NULL ORDER BY 1, 2",
        )
        .await;
        (held, meant)
    }

    /// Properties with tags drawn from a pool that differ in case, spaces, repeats and
    /// kinds (a number, a null, a nested list), or with no tags at all.
    fn properties(next: &mut impl FnMut(u64) -> u64) -> String {
        const POOL: [&str; 9] = [
            r#""cache""#,
            r#"" Cache ""#,
            r#""CACHE""#,
            r#""db""#,
            r#""deploy""#,
            r#""rare one""#,
            "5",
            "null",
            r#"["nested"]"#,
        ];
        if next(7) == 0 {
            return r#"{"type": "general", "title": "t", "content": "c"}"#.into();
        }
        let tags: Vec<&str> = (0..next(5)).map(|_| POOL[next(9) as usize]).collect();
        format!(
            r#"{{"type": "general", "title": "t", "content": "c", "tags": [{}]}}"#,
            tags.join(", ")
        )
    }

    /// The index is built for the memories a file already holds, then follows inserts,
    /// updates of tags and of labels, and deletes, in a random order; filters on any and on
    /// all of some tags select what the JSON says they should.
    #[tokio::test]
    async fn the_tag_index_follows_every_write_and_filters_as_the_json_does() {
        let (_db, conn) = test_database().await;
        // A file from before the index: its memories are indexed by the upgrade.
        conn.execute_batch(
            "DROP TRIGGER memory_tags_after_insert; DROP TRIGGER memory_tags_after_delete;
             DROP TRIGGER memory_tags_after_update; DROP TABLE memory_tags;
             PRAGMA user_version = 11;",
        )
        .await
        .unwrap();
        let mut next = stream(12);
        for i in 0..200 {
            conn.execute(
                "INSERT INTO nodes (id, label, properties) VALUES (?1, 'Memory', ?2)",
                libsql::params![format!("m{i}"), properties(&mut next)],
            )
            .await
            .unwrap();
        }
        migrate(&conn).await.unwrap();
        let (held, meant) = held_and_meant(&conn).await;
        assert!(held.len() > 200, "{} tags", held.len());
        assert_eq!(held, meant);

        for step in 0..600 {
            let id = format!("m{}", next(260));
            let sql = match next(5) {
                0 => {
                    "INSERT OR IGNORE INTO nodes (id, label, properties) VALUES (?1, 'Memory', ?2)"
                }
                1 | 2 => "UPDATE nodes SET properties = ?2 WHERE id = ?1",
                3 => {
                    "UPDATE nodes SET label = CASE label WHEN 'Memory' THEN 'Entity' ELSE 'Memory' END, properties = ?2 WHERE id = ?1"
                }
                _ => "DELETE FROM nodes WHERE id = ?1 AND ?2 IS NOT NULL",
            };
            conn.execute(sql, libsql::params![id, properties(&mut next)])
                .await
                .unwrap();
            if step % 50 == 49 {
                let (held, meant) = held_and_meant(&conn).await;
                assert_eq!(held, meant, "after step {step}");
            }
        }

        let tag_sets: [&[&str]; 4] = [
            &["cache"],
            &["cache", "db"],
            &["rare one"],
            &["5", "missing"],
        ];
        for tags in tag_sets {
            for all_tags in [false, true] {
                let mut req = SearchRequest::new("", 10);
                req.tags = tags.iter().map(|t| t.to_string()).collect();
                req.all_tags = all_tags;
                let mut params = Vec::new();
                let filters = filter_sql(&req, &mut params);
                let mut rows = conn
                    .query(
                        &format!(
                            "SELECT n.rowid FROM nodes n WHERE n.label = 'Memory'{filters} ORDER BY 1"
                        ),
                        params,
                    )
                    .await
                    .unwrap();
                let mut got = Vec::new();
                while let Some(row) = rows.next().await.unwrap() {
                    got.push(row.get::<i64>(0).unwrap());
                }
                let list = tags
                    .iter()
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let holding = format!(
                    "(SELECT count(DISTINCT lower(trim(t.value))) FROM json_each(n.properties, '$.tags') t
                      WHERE lower(trim(t.value)) IN ({list}))"
                );
                let test = if all_tags {
                    format!("{holding} = {}", tags.len())
                } else {
                    format!("{holding} > 0")
                };
                let mut rows = conn
                    .query(
                        &format!("SELECT n.rowid FROM nodes n WHERE n.label = 'Memory' AND {test} ORDER BY 1"),
                        (),
                    )
                    .await
                    .unwrap();
                let mut want = Vec::new();
                while let Some(row) = rows.next().await.unwrap() {
                    want.push(row.get::<i64>(0).unwrap());
                }
                assert_eq!(got, want, "{tags:?}, all: {all_tags}");
                if tags == ["cache"] {
                    assert!(!want.is_empty());
                }
            }
        }
    }
}

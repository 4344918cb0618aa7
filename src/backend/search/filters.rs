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

/// Whether every filter of the request is answered by an index (type, project, ids): the
/// memories passing them can be listed without reading any memory's JSON.
pub fn indexed_only(req: &SearchRequest) -> bool {
    req.tags.is_empty()
        && req.min_importance.is_none()
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
        let wanted = req.tags.len();
        let list = placeholders(req.tags.clone(), params);
        let matching = format!(
            "(SELECT count(DISTINCT lower(trim(t.value))) FROM json_each(n.properties, '$.tags') t
               WHERE lower(trim(t.value)) IN ({list}))"
        );
        if req.all_tags {
            sql.push_str(&format!(" AND {matching} = {wanted}"));
        } else {
            sql.push_str(&format!(" AND {matching} > 0"));
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

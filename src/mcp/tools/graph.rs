//! create_relationship, get_related_memories, search_relationships_by_context.

use rmcp::handler::server::common::schema_for_output;
use rmcp::{tool, tool_router};

use crate::backend::RelationshipQuery;
use crate::mcp::MemoryServer;
use crate::mcp::args::Parameters;
use crate::mcp::output::{
    CreateRelationshipOutput, MemoryBrief, RelatedOutput, RelatedResult, RelationshipsOutput,
};
use crate::mcp::params::{
    CreateRelationshipParams, GetRelatedMemoriesParams, SearchRelationshipsByContextParams,
    bounded, memory_id, short_list, short_text,
};
use crate::mcp::render::{
    ToolResult, backend_failure, brief_line, cut_note, fit_page, list_budget, reply,
};
use crate::model::{
    InvalidInput, NewRelationship, RelationshipContext, RelationshipType, check_unit_interval,
    limits,
};

#[tool_router(router = graph_tools, vis = "pub(in crate::mcp)")]
impl MemoryServer {
    /// Link two memories with a typed relationship (e.g. a fix SOLVES a problem, an error
    /// CAUSES another). Strength and confidence default per type.
    #[tool(
        name = "create_relationship",
        title = "Link two memories",
        output_schema = schema_for_output::<CreateRelationshipOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn create_relationship(
        &self,
        Parameters(p): Parameters<CreateRelationshipParams>,
    ) -> ToolResult {
        memory_id("from_memory_id", &p.from_memory_id)?;
        memory_id("to_memory_id", &p.to_memory_id)?;
        let new = new_relationship(&p).map_err(|e| e.to_string())?;
        if !p.allow_secrets.unwrap_or(false)
            && let Some(context) = &new.context
        {
            crate::model::refuse_secrets([("context", context.text.as_str())])
                .map_err(|e| e.to_string())?;
        }
        match self
            .backend
            .create_relationship_with(new, self.settings.allow_cycles)
            .await
        {
            Ok(written) => {
                let (relationship, created) = written.value;
                let verb = if created {
                    "Created"
                } else {
                    "Already exists:"
                };
                reply(
                    format!(
                        "{verb} relationship {} {} → {} (strength {}, confidence {}) id={}",
                        relationship.rel_type,
                        relationship.from_id,
                        relationship.to_id,
                        relationship.strength,
                        relationship.confidence,
                        relationship.id
                    ) + super::memories::queued_note(written.queued),
                    &CreateRelationshipOutput {
                        relationship_id: relationship.id.clone(),
                        created,
                        queued: written.queued,
                        relationship,
                    },
                )
            }
            Err(e) => Err(backend_failure(e)),
        }
    }

    /// Memories linked to a memory, following relationships in both directions up to
    /// max_depth hops (default 2), nearest and strongest first.
    #[tool(
        name = "get_related_memories",
        title = "Related memories",
        output_schema = schema_for_output::<RelatedOutput>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn get_related_memories(
        &self,
        Parameters(p): Parameters<GetRelatedMemoriesParams>,
    ) -> ToolResult {
        memory_id("memory_id", &p.memory_id)?;
        short_list(
            "relationship_types",
            p.relationship_types.as_deref(),
            limits::QUERY_LIST_MAX_ITEMS,
            limits::QUERY_ITEM_MAX_CHARS,
        )?;
        let depth = bounded("max_depth", p.max_depth, 2, 1, i64::from(limits::MAX_DEPTH))?;
        let limit = bounded("limit", p.limit, 50, 1, 1000)? as usize;
        let offset = bounded("offset", p.offset, 0, 0, 1_000_000)? as usize;
        let types: Vec<RelationshipType> = p
            .relationship_types
            .iter()
            .flatten()
            .map(|t| RelationshipType::parse_field("relationship_types", t))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let as_of = super::search::as_of(p.as_of.as_deref())?;
        let related = self
            .backend
            .related_memories(&p.memory_id, &types, depth, as_of.as_ref())
            .await
            .map_err(backend_failure)?;
        let total = related.len() as u64;
        let mut results: Vec<RelatedResult> = related
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|r| RelatedResult {
                depth: r.depth,
                memory: MemoryBrief::from(&r.memory),
                relationship: r.relationship,
            })
            .collect();
        let line = |r: &RelatedResult| {
            let link = &r.relationship;
            format!(
                "- depth {}: {}\n  via {} {} → {} (strength {})",
                r.depth,
                brief_line(&r.memory),
                link.from_id,
                link.rel_type,
                link.to_id,
                link.strength
            )
        };
        let kept = fit_page(
            &results,
            line,
            list_budget(self.settings.max_response_chars),
        );
        let note = (kept < results.len()).then(|| cut_note(kept, offset as u32, &total));
        results.truncate(kept);
        let end = (offset + results.len()) as u64;
        let has_more = end < total;
        let next_offset = has_more.then_some(end as u32);
        let mut text = format!(
            "{total} memor{} related to {} within {depth} hop(s) (showing {}–{end}):\n",
            if total == 1 { "y" } else { "ies" },
            p.memory_id,
            if results.is_empty() { 0 } else { offset + 1 },
        );
        for r in &results {
            text.push_str(&line(r));
            text.push('\n');
        }
        if let Some(n) = &note {
            text.push_str(n);
        } else if let Some(next) = next_offset {
            text.push_str(&format!("More: call again with offset={next}.\n"));
        }
        reply(
            text,
            &RelatedOutput {
                memory_id: p.memory_id.clone(),
                max_depth: depth,
                related: results,
                total,
                offset: offset as u32,
                limit: limit as u32,
                has_more,
                next_offset,
                note,
            },
        )
    }

    /// Find relationships by what their context says: scope (partial, full,
    /// conditional), conditions, evidence, components, time, or words of the whole text.
    /// Every given filter must match, and every word of a filter.
    #[tool(
        name = "search_relationships_by_context",
        title = "Search relationships by context",
        output_schema = schema_for_output::<RelationshipsOutput>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn search_relationships_by_context(
        &self,
        Parameters(p): Parameters<SearchRelationshipsByContextParams>,
    ) -> ToolResult {
        let limit = bounded("limit", p.limit, 20, 1, 100)?;
        let offset = bounded("offset", p.offset, 0, 0, 1_000_000)?;
        for (field, list) in [
            ("conditions", &p.conditions),
            ("evidence", &p.evidence),
            ("components", &p.components),
        ] {
            short_list(
                field,
                list.as_deref(),
                limits::QUERY_LIST_MAX_ITEMS,
                limits::QUERY_ITEM_MAX_CHARS,
            )?;
        }
        for (field, value) in [("temporal", &p.temporal), ("text", &p.text)] {
            short_text(
                field,
                value.as_deref().unwrap_or(""),
                limits::QUERY_ITEM_MAX_CHARS,
            )?;
        }
        let query = RelationshipQuery {
            scope: p.scope.map(|s| s.as_str().to_string()),
            conditions: p.conditions.clone().unwrap_or_default(),
            has_evidence: p.has_evidence,
            evidence: p.evidence.clone().unwrap_or_default(),
            components: p.components.clone().unwrap_or_default(),
            temporal: p.temporal.clone(),
            text: p.text.clone(),
            limit,
            offset,
        };
        let (mut found, total) = self
            .backend
            .search_relationships_by_context(&query)
            .await
            .map_err(backend_failure)?;
        let line = |r: &crate::model::Relationship| {
            format!(
                "- {} {} → {}: {}",
                r.rel_type,
                r.from_id,
                r.to_id,
                r.context.as_ref().map(|c| c.text.as_str()).unwrap_or("")
            )
        };
        let kept = fit_page(&found, line, list_budget(self.settings.max_response_chars));
        let note = (kept < found.len()).then(|| cut_note(kept, offset, &total));
        found.truncate(kept);
        let end = u64::from(offset) + found.len() as u64;
        let has_more = end < total;
        let next_offset = has_more.then_some(end as u32);
        let mut text = format!("{total} relationship(s) match:\n");
        for r in &found {
            text.push_str(&line(r));
            text.push('\n');
        }
        if let Some(n) = &note {
            text.push_str(n);
        } else if let Some(next) = next_offset {
            text.push_str(&format!("More: call again with offset={next}.\n"));
        }
        reply(
            text,
            &RelationshipsOutput {
                relationships: found,
                total,
                offset,
                limit,
                has_more,
                next_offset,
                note,
            },
        )
    }
}

fn new_relationship(p: &CreateRelationshipParams) -> Result<NewRelationship, InvalidInput> {
    let rel_type = RelationshipType::parse_field("relationship_type", &p.relationship_type)?;
    let strength = check_unit_interval(
        "strength",
        p.strength.unwrap_or(rel_type.default_strength()),
    )?;
    let confidence = check_unit_interval(
        "confidence",
        p.confidence.unwrap_or(rel_type.default_confidence()),
    )?;
    let context = match p
        .context
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(text) if text.chars().count() > limits::RELATIONSHIP_CONTEXT_MAX_CHARS => {
            return Err(InvalidInput::new(
                "context",
                format!(
                    "must be at most {} characters",
                    limits::RELATIONSHIP_CONTEXT_MAX_CHARS
                ),
            ));
        }
        Some(text) => Some(RelationshipContext::from_text(text)),
        None => None,
    };
    for (field, id) in [
        ("from_memory_id", &p.from_memory_id),
        ("to_memory_id", &p.to_memory_id),
    ] {
        if id.trim().is_empty() {
            return Err(InvalidInput::new(field, "must not be empty"));
        }
    }
    Ok(NewRelationship {
        from_id: p.from_memory_id.trim().to_string(),
        to_id: p.to_memory_id.trim().to_string(),
        rel_type,
        strength,
        confidence,
        context,
    })
}

//! search_memories, recall_memories, contextual_search.

use rmcp::handler::server::common::schema_for_output;
use rmcp::{tool, tool_router};

use crate::mcp::project::Client;

use crate::backend::{SearchHit, SearchPage, SearchRequest, Tolerance};
use crate::mcp::MemoryServer;
use crate::mcp::args::Parameters;
use crate::mcp::output::{MemoryBrief, ProjectReading, SearchOutput, SearchResult, TimeReading};
use crate::mcp::params::{
    ContextualSearchParams, ProjectScopeParam, RecallMemoriesParams, SearchMemoriesParams, bounded,
    few_items, memory_id, short_list, short_text,
};
use crate::mcp::render::{
    ToolResult, backend_failure, brief_line, cut_note, fit, fit_page, list_budget, reply,
};
use crate::model::project::ProjectFocus;
use crate::model::time_words::{AsOf, DayEdge, TimeRange};
use crate::model::{RelationshipType, limits, normalise_tags};

/// Largest `offset` accepted; deeper pages are never useful to a model.
const MAX_OFFSET: i64 = 1_000_000;

#[tool_router(router = search_tools, vis = "pub(in crate::mcp)")]
impl MemoryServer {
    /// Find memories by words (ranked by relevance: title first, then summary and tags,
    /// then content) and filters (types, tags, project, importance). Without words, lists
    /// memories by importance. Paged with limit/offset.
    #[tool(
        name = "search_memories",
        title = "Search memories",
        output_schema = schema_for_output::<SearchOutput>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn search_memories(
        &self,
        client: Client,
        Parameters(p): Parameters<SearchMemoriesParams>,
    ) -> ToolResult {
        let (mut request, time) = search_request(&p)?;
        let project = self.project_focus(&client, p.scope, &mut request).await?;
        match self.backend.search(&request).await {
            Ok(page) => self.render_page("Found", page, time, project),
            Err(e) => Err(backend_failure(e)),
        }
    }

    /// Recall what is known about a topic, described in natural language: the most
    /// relevant memories with a short excerpt each.
    #[tool(
        name = "recall_memories",
        title = "Recall memories",
        output_schema = schema_for_output::<SearchOutput>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn recall_memories(
        &self,
        client: Client,
        Parameters(p): Parameters<RecallMemoriesParams>,
    ) -> ToolResult {
        let limit = bounded("limit", p.limit, 20, 1, 1000)?;
        let offset = bounded("offset", p.offset, 0, 0, MAX_OFFSET)?;
        let query = p.query.as_deref().unwrap_or("");
        short_text("query", query, limits::QUERY_MAX_CHARS)?;
        short_text(
            "project_path",
            p.project_path.as_deref().unwrap_or(""),
            limits::CONTEXT_FIELD_MAX_CHARS,
        )?;
        few_items(
            "memory_types",
            p.memory_types.as_deref(),
            limits::QUERY_LIST_MAX_ITEMS,
        )?;
        let (query, range) = time_in(query);
        let mut request = SearchRequest::new(&query, limit);
        request.offset = offset;
        request.memory_types = p.memory_types.clone().unwrap_or_default();
        request.project_path = p.project_path.clone();
        request.as_of = as_of(p.as_of.as_deref())?;
        let time = apply_time(&mut request, range);
        let project = self.project_focus(&client, p.scope, &mut request).await?;
        match self.backend.recall(&request).await {
            Ok(page) => self.render_page("Recalled", page, time, project),
            Err(e) => Err(backend_failure(e)),
        }
    }

    /// Search only among the memories linked to one memory (within max_depth hops).
    #[tool(
        name = "contextual_search",
        title = "Search around a memory",
        output_schema = schema_for_output::<SearchOutput>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn contextual_search(
        &self,
        Parameters(p): Parameters<ContextualSearchParams>,
    ) -> ToolResult {
        memory_id("memory_id", &p.memory_id)?;
        short_text("query", &p.query, limits::QUERY_MAX_CHARS)?;
        let depth = bounded("max_depth", p.max_depth, 2, 1, 5)?;
        let limit = bounded("limit", p.limit, 50, 1, 1000)?;
        let offset = bounded("offset", p.offset, 0, 0, MAX_OFFSET)?;
        let mut request = SearchRequest::new(&p.query, limit);
        request.offset = offset;
        match self
            .backend
            .contextual_search(&p.memory_id, request, depth)
            .await
        {
            Ok(page) => self.render_page("Found", page, None, None),
            Err(e) => Err(backend_failure(e)),
        }
    }
}

impl MemoryServer {
    /// Sets how a search weighs the session's project, and says how for the answer. An
    /// explicit `project_path` filter, or `scope: all`, leaves every memory alike.
    async fn project_focus(
        &self,
        client: &Client,
        scope: Option<ProjectScopeParam>,
        request: &mut SearchRequest,
    ) -> Result<Option<ProjectReading>, String> {
        if scope == Some(ProjectScopeParam::All) || request.project_path.is_some() {
            return Ok(None);
        }
        let only = scope == Some(ProjectScopeParam::Project);
        let Some(project) = self.project.current(client).await else {
            if only {
                return Err("`scope: project` needs the session's project, and there is none: the client lists no \
                     roots and the server's working directory is in no repository. Use `project_path` to name one, \
                     or leave `scope` out"
                    .to_string());
            }
            return Ok(None);
        };
        request.project = Some(ProjectFocus {
            path: project.path.clone(),
            only,
        });
        Ok(Some(ProjectReading {
            path: project.path,
            source: project.source,
            scope: Some(if only { "only" } else { "favoured" }),
        }))
    }

    /// Renders a page of hits, cut to the answer size limit with a note saying how to go on.
    /// Recall's neighbours follow in a list of their own, for the hits shown.
    fn render_page(
        &self,
        verb: &str,
        page: SearchPage,
        time: Option<TimeReading>,
        project: Option<ProjectReading>,
    ) -> ToolResult {
        let results: Vec<SearchResult> = page.hits.iter().map(result_of).collect();
        let line = |r: &SearchResult| {
            let mut line = format!("- {}", brief_line(&r.memory));
            if let Some(by) = &r.superseded_by {
                line.push_str(&format!(" [superseded by {by}]"));
            }
            match r.matched {
                Some(crate::backend::MatchedBy::Semantic) => line.push_str(" [by meaning]"),
                Some(crate::backend::MatchedBy::Both) => line.push_str(" [by words and meaning]"),
                _ => {}
            }
            if let Some(n) = &r.related_to {
                line.push_str(&format!(
                    " [linked: {} with {}]",
                    n.relationship_type, n.memory_id
                ));
            }
            if let Some(s) = &r.snippet {
                line.push_str(&format!("\n  {s}"));
            }
            if !r.near_duplicates.is_empty() {
                let others: Vec<String> = r
                    .near_duplicates
                    .iter()
                    .map(|f| format!("{} ({})", f.title, f.id))
                    .collect();
                line.push_str(&format!(
                    "\n  also stored, nearly the same: {}",
                    others.join("; ")
                ));
            }
            line
        };
        let budget = list_budget(self.settings.max_response_chars);
        let kept = fit_page(&results, line, budget);
        let mut output = SearchOutput {
            total: page.total,
            total_exact: page.total_exact,
            offset: page.offset,
            limit: page.limit,
            has_more: page.has_more,
            next_offset: page.next_offset,
            note: None,
            model_note: page.model_note.clone(),
            corrections: page.corrections.clone(),
            unmatched: page.unmatched.clone(),
            results,
            neighbours: Vec::new(),
            time,
            project,
        };
        if kept < output.results.len() {
            output.results.truncate(kept);
            output.has_more = true;
            output.next_offset = Some(page.offset + kept as u32);
            output.note = Some(cut_note(
                kept,
                page.offset,
                &counted(page.total, page.total_exact),
            ));
        }
        let shown: Vec<&str> = output
            .results
            .iter()
            .map(|r| r.memory.id.as_str())
            .collect();
        let neighbours: Vec<SearchResult> = page
            .neighbours
            .iter()
            .filter(|n| {
                n.related_to
                    .as_ref()
                    .is_some_and(|r| shown.contains(&r.memory_id.as_str()))
            })
            .map(result_of)
            .collect();
        let spent: usize = output
            .results
            .iter()
            .map(|r| serde_json::to_string(r).map(|j| j.len()).unwrap_or(0) + line(r).len() + 2)
            .sum();
        let room = budget.saturating_sub(spent);
        let kept_neighbours = fit(&neighbours, line, room);
        output.neighbours = neighbours.into_iter().take(kept_neighbours).collect();
        let mut text = format!(
            "{verb} {} memor{} (showing {}–{}):\n",
            counted(output.total, output.total_exact),
            if output.total == 1 { "y" } else { "ies" },
            if output.results.is_empty() {
                0
            } else {
                output.offset + 1
            },
            output.offset as usize + output.results.len()
        );
        if let Some(note) = &output.model_note {
            text.push_str(&format!("({note})\n"));
        }
        if let Some(t) = &output.time {
            let how = if t.applied {
                "memories created then"
            } else {
                "not applied: created_after or created_before was given"
            };
            text.push_str(&format!(
                "(read \"{}\" as {}: {how})\n",
                t.phrase, t.reading
            ));
        }
        if let Some(p) = &output.project {
            let how = if p.scope == Some("only") {
                "only its memories and the shared ones"
            } else {
                "its memories and the shared ones first"
            };
            text.push_str(&format!("(project {}: {how})\n", p.path));
        }
        for c in &output.corrections {
            text.push_str(&format!(
                "(no match for \"{}\"; searched for \"{}…\" instead)\n",
                c.from, c.to
            ));
        }
        for w in &output.unmatched {
            text.push_str(&format!(
                "(no match for \"{w}\", and no indexed word close enough to correct it to)\n"
            ));
        }
        for r in &output.results {
            text.push_str(&line(r));
            text.push('\n');
        }
        if !output.neighbours.is_empty() {
            text.push_str("Linked to these results (not counted above):\n");
            for r in &output.neighbours {
                text.push_str(&line(r));
                text.push('\n');
            }
        }
        if let Some(note) = &output.note {
            text.push_str(note);
            text.push('\n');
        } else if let Some(next) = output.next_offset {
            text.push_str(&format!("More results: call again with offset={next}.\n"));
        }
        reply(text, &output)
    }
}

/// One hit as a result, as every search tool shows it.
fn result_of(h: &SearchHit) -> SearchResult {
    SearchResult {
        memory: MemoryBrief::from(&h.memory),
        relevance: h.relevance.map(significant),
        score: h.score,
        snippet: h.snippet.clone(),
        superseded_by: h.superseded_by.clone(),
        related_to: h.related_to.clone(),
        matched: h.matched,
        // Only a hit found by its meaning has a similarity worth showing (at least the
        // floor); a match by words alone may be unrelated in meaning.
        similarity: h
            .similarity
            .filter(|_| h.matched != Some(crate::backend::MatchedBy::Lexical)),
        near_duplicates: h.folded.clone(),
    }
}

/// The search mode used when a call names none: hybrid once the model is loaded.
pub(crate) fn default_mode_name(backend: &crate::backend::TursoBackend) -> &'static str {
    if backend.semantic_ready() {
        crate::backend::DEFAULT_SEARCH_MODE.as_str()
    } else {
        "lexical"
    }
}

/// A relevance to three significant digits: BM25 gives a word found in most memories a
/// tiny weight, which must not round to 0 when it is the only match.
fn significant(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(2 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// A time expression in a free query ([`crate::model::time_words`], in this machine's time
/// zone): the words left to search, and the range.
fn time_in(query: &str) -> (String, Option<TimeRange>) {
    match crate::model::time_words::read(query, &chrono::Local::now()) {
        Some((range, rest)) => (rest, Some(range)),
        None => (query.to_string(), None),
    }
}

/// The range filters when the memories were created, unless explicit dates were given
/// (they win); the answer says how the expression was read.
fn apply_time(request: &mut SearchRequest, range: Option<TimeRange>) -> Option<TimeReading> {
    let range = range?;
    let applied = request.created_after.is_none() && request.created_before.is_none();
    let created_after = range.from.map(crate::model::iso_from);
    let created_before = range.until.map(crate::model::iso_from);
    if applied {
        request.created_after = created_after.clone();
        request.created_before = created_before.clone();
    }
    Some(TimeReading {
        phrase: range.phrase,
        reading: range.reading,
        created_after,
        created_before,
        applied,
    })
}

fn search_request(
    p: &SearchMemoriesParams,
) -> Result<(SearchRequest, Option<TimeReading>), String> {
    let limit = bounded("limit", p.limit, 50, 1, 1000)?;
    let offset = bounded("offset", p.offset, 0, 0, MAX_OFFSET)?;
    short_text(
        "query",
        p.query.as_deref().unwrap_or(""),
        limits::QUERY_MAX_CHARS,
    )?;
    short_list(
        "terms",
        p.terms.as_deref(),
        limits::QUERY_LIST_MAX_ITEMS,
        limits::QUERY_ITEM_MAX_CHARS,
    )?;
    short_list(
        "tags",
        p.tags.as_deref(),
        limits::QUERY_LIST_MAX_ITEMS,
        limits::TAG_MAX_CHARS,
    )?;
    short_list(
        "relationship_filter",
        p.relationship_filter.as_deref(),
        limits::QUERY_LIST_MAX_ITEMS,
        limits::QUERY_ITEM_MAX_CHARS,
    )?;
    few_items(
        "memory_types",
        p.memory_types.as_deref(),
        limits::QUERY_LIST_MAX_ITEMS,
    )?;
    for (field, value) in [
        ("project_path", &p.project_path),
        ("created_after", &p.created_after),
        ("created_before", &p.created_before),
    ] {
        let max = if field == "project_path" {
            limits::CONTEXT_FIELD_MAX_CHARS
        } else {
            limits::QUERY_ITEM_MAX_CHARS
        };
        short_text(field, value.as_deref().unwrap_or(""), max)?;
    }
    if let Some(min) = p.min_importance {
        crate::model::check_unit_interval("min_importance", min).map_err(|e| e.to_string())?;
    }
    // `terms` wins over `query`, as in MemoryGraph; each term is one word or phrase.
    let text = match &p.terms {
        Some(terms) if !terms.is_empty() => terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', " ")))
            .collect::<Vec<_>>()
            .join(" "),
        _ => p.query.clone().unwrap_or_default(),
    };
    // Listed `terms` are words to find as given; a free `query` may say when.
    let (text, range) = if p.terms.as_ref().is_some_and(|t| !t.is_empty()) {
        (text, None)
    } else {
        time_in(&text)
    };
    let mut request = SearchRequest::new(&text, limit);
    request.offset = offset;
    request.match_mode = p.match_mode.map(Into::into);
    request.tolerance = p
        .search_tolerance
        .map(Into::into)
        .unwrap_or(Tolerance::Normal);
    request.memory_types = p.memory_types.clone().unwrap_or_default();
    request.tags =
        normalise_tags(p.tags.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
    request.project_path = p.project_path.clone();
    request.min_importance = p.min_importance;
    request.all_tags = matches!(p.tag_match, Some(crate::mcp::params::MatchModeParam::All));
    request.created_after = p
        .created_after
        .as_deref()
        .map(|d| instant("created_after", d))
        .transpose()?;
    request.created_before = p
        .created_before
        .as_deref()
        .map(|d| instant("created_before", d))
        .transpose()?;
    request.as_of = as_of(p.as_of.as_deref())?;
    request.mode = p.mode;
    request.relationship_types = p
        .relationship_filter
        .iter()
        .flatten()
        .map(|t| RelationshipType::parse_field("relationship_filter", t))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let time = apply_time(&mut request, range);
    Ok((request, time))
}

/// Reads `as_of`: an ISO 8601 date-time, or a date meaning the end of that day.
pub(in crate::mcp) fn as_of(raw: Option<&str>) -> Result<Option<AsOf>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    short_text("as_of", raw, limits::QUERY_ITEM_MAX_CHARS)?;
    AsOf::parse(raw).map(Some).ok_or_else(|| {
        format!(
            "Invalid `as_of`: expected an ISO 8601 date (2026-01-31, meaning its end) or date-time (2026-01-31T12:00:00Z), got {}",
            crate::model::quote(raw)
        )
    })
}

/// Reads an ISO 8601 date (`2026-01-31`, its start) or date-time as an instant SQLite
/// compares correctly with stored timestamps.
fn instant(field: &str, raw: &str) -> Result<String, String> {
    crate::model::time_words::instant(raw, DayEdge::Start).ok_or_else(|| {
        format!(
            "Invalid `{field}`: expected an ISO 8601 date (2026-01-31) or date-time (2026-01-31T12:00:00Z), got {}",
            crate::model::quote(raw.trim())
        )
    })
}

/// A total as said in text: "at least" when it is a lower bound.
fn counted(total: u64, exact: bool) -> String {
    if exact {
        total.to_string()
    } else {
        format!("at least {total}")
    }
}

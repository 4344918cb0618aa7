//! store_memory, get_memory, update_memory, delete_memory.

use rmcp::handler::server::common::schema_for_output;
use rmcp::{tool, tool_router};

use crate::mcp::project::Client;

use crate::backend::{Closeness, NearDuplicate};
use crate::config::NearDuplicates;
use crate::mcp::MemoryServer;
use crate::mcp::args::Parameters;
use crate::mcp::output::{
    DeleteMemoryOutput, GetMemoryOutput, MemoryBrief, ProjectReading, StoreMemoryOutput,
    UpdateMemoryOutput,
};
use crate::mcp::params::{
    DeleteMemoryParams, GetMemoryParams, StoreMemoryParams, UpdateMemoryParams, bounded, memory_id,
    short_text,
};
use crate::mcp::render::{ToolResult, backend_failure, relationship_line, reply};
use crate::model::limits;
use crate::model::project::{ProjectSource, normalise};
use crate::model::{
    Memory, MemoryContext, MemoryPatch, NewMemory, NewRelationship, RelationshipType, now_iso,
};

/// Says that a write waits on this machine for the primary.
pub(in crate::mcp) fn queued_note(queued: bool) -> &'static str {
    if queued {
        " — kept on this machine: the primary is out of reach now; it gets this change once it is back"
    } else {
        ""
    }
}

/// Sets a new memory's project, creating its context as MemoryGraph would for one that
/// named only `project_path`.
fn in_project(context: &mut Option<MemoryContext>, path: String) {
    match context {
        Some(c) => c.project_path = Some(path),
        None => {
            let mut only = serde_json::Map::new();
            only.insert("project_path".into(), path.into());
            *context = MemoryContext::from_input(&only, &now_iso()).ok();
        }
    }
}

/// Most relationships listed in one answer; `relationships_offset` pages through more.
const MAX_LISTED_RELATIONSHIPS: usize = 20;

/// Room kept in a `get_memory` answer for the lines that say how to read on (at most
/// ≈180 characters of text, ≈70 of JSON).
const ANSWER_MARGIN: usize = 200;

/// The text and structured sizes of an answer, in characters.
fn sizes(out: &GetMemoryOutput) -> (usize, usize) {
    let text = render_memory(out).chars().count();
    let json = serde_json::to_string(out)
        .map(|s| s.chars().count())
        .unwrap_or(0);
    (text, json)
}

/// How many characters a character takes in a JSON string.
fn json_chars(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if u32::from(c) < 0x20 => 6,
        _ => 1,
    }
}

/// The text answer for one memory.
fn render_memory(out: &GetMemoryOutput) -> String {
    let memory = &out.memory;
    let mut text = format!(
        "# {}\nid: {}\ntype: {}\nimportance: {}  confidence: {}  used: {} time(s)\ncreated: {}  updated: {}\n",
        memory.title,
        memory.id,
        memory.memory_type,
        memory.importance,
        memory.confidence,
        memory.usage_count,
        memory.created_at,
        memory.updated_at
    );
    if !memory.tags.is_empty() {
        text.push_str(&format!("tags: {}\n", memory.tags.join(", ")));
    }
    if let Some(project) = memory.project_path() {
        text.push_str(&format!("project: {project}\n"));
    }
    if let Some(summary) = &memory.summary {
        text.push_str(&format!("\nSummary: {summary}\n"));
    }
    text.push_str(&format!("\n{}\n", memory.content));
    if let Some(next) = out.content_next_offset {
        text.push_str(&format!(
            "\n[content cut at character {next} of {}: call get_memory with content_offset={next} for the rest]\n",
            out.content_length
        ));
    }
    if !out.relationships.is_empty() {
        text.push_str(&format!(
            "\nRelationships ({}–{} of {}):\n",
            out.relationships_offset + 1,
            out.relationships_offset + out.relationships.len(),
            out.relationships_total
        ));
        for r in &out.relationships {
            text.push_str(&format!("- {}\n", relationship_line(r, &memory.id)));
        }
    }
    if let Some(next) = out.relationships_next_offset {
        text.push_str(&format!(
            "[more relationships: call get_memory with relationships_offset={next}]\n"
        ));
    }
    if !out.versions.is_empty() {
        text.push_str("\nVersions, newest first:\n");
        for v in &out.versions {
            let this = if v.step == 0 { "  <- this one" } else { "" };
            text.push_str(&format!(
                "- {} ({}, {}){this}\n",
                v.title, v.id, v.created_at
            ));
        }
    }
    text
}

impl MemoryServer {
    /// Puts a new memory in its project: the one the call names (`project`, or the
    /// context's `project_path`), else the session's. `project: ""` keeps it shared. Gives
    /// where the project came from.
    async fn project_of_store(
        &self,
        client: &Client,
        p: &StoreMemoryParams,
        context: &mut Option<MemoryContext>,
    ) -> Result<ProjectSource, String> {
        let named = context.as_ref().and_then(|c| c.project_path.clone());
        if let Some(project) = &p.project {
            short_text("project", project, limits::CONTEXT_FIELD_MAX_CHARS)?;
            if named
                .as_ref()
                .is_some_and(|n| normalise(n) != normalise(project))
            {
                return Err(format!(
                    "`project` ({}) and `context.project_path` ({}) name different projects: give one",
                    crate::model::quote(project),
                    crate::model::quote(named.as_deref().unwrap_or_default())
                ));
            }
            if !project.trim().is_empty() {
                in_project(context, normalise(project));
            }
            return Ok(ProjectSource::Argument);
        }
        if named.is_some() {
            return Ok(ProjectSource::Argument);
        }
        match self.project.current(client).await {
            Some(project) => {
                in_project(context, project.path);
                Ok(project.source)
            }
            None => Ok(ProjectSource::Argument),
        }
    }

    /// The memories a new one nearly repeats, leaving out the one it replaces; linked to it
    /// with SIMILAR_TO when the session says so. Advice only: a failure to look or to link
    /// is logged, and the store stands.
    async fn close_to(&self, memory: &Memory, replaces: Option<&str>) -> Vec<NearDuplicate> {
        if self.settings.near_duplicates == NearDuplicates::Off {
            return Vec::new();
        }
        let close: Vec<NearDuplicate> = match self.backend.near_duplicates(memory).await {
            Ok(close) => close
                .into_iter()
                .filter(|c| Some(c.id.as_str()) != replaces)
                .collect(),
            Err(e) => {
                tracing::warn!("looking for memories close to {} failed: {e}", memory.id);
                return Vec::new();
            }
        };
        if self.settings.near_duplicates == NearDuplicates::Link {
            for c in &close {
                let link = NewRelationship::plain(&memory.id, &c.id, RelationshipType::SimilarTo);
                if let Err(e) = self
                    .backend
                    .create_relationship_with(link, self.settings.allow_cycles)
                    .await
                {
                    tracing::warn!(
                        "linking {} to its near-duplicate {} failed: {e}",
                        memory.id,
                        c.id
                    );
                }
            }
        }
        close
    }
}

#[tool_router(router = memory_tools, vis = "pub(in crate::mcp)")]
impl MemoryServer {
    /// Store a new memory: a fix that worked, an error and its cause, a pattern, a
    /// decision, a command. Returns its id.
    #[tool(
        name = "store_memory",
        title = "Store a memory",
        output_schema = schema_for_output::<StoreMemoryOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    pub async fn store_memory(
        &self,
        client: Client,
        Parameters(p): Parameters<StoreMemoryParams>,
    ) -> ToolResult {
        if let Some(old) = &p.supersedes {
            memory_id("supersedes", old)?;
        }
        let mut context = p
            .context
            .as_ref()
            .map(|c| MemoryContext::from_input(c, &now_iso()))
            .transpose()
            .map_err(|e| e.to_string())?;
        let source = self.project_of_store(&client, &p, &mut context).await?;
        let new = NewMemory::validate(
            &p.memory_type,
            &p.title,
            &p.content,
            p.summary.as_deref(),
            p.tags.as_deref(),
            p.importance,
            context,
        )
        .map_err(|e| e.to_string())?;
        if !p.allow_secrets.unwrap_or(false) {
            new.refuse_secrets().map_err(|e| e.to_string())?;
        }
        let stored = self
            .backend
            .store_memory(new, p.supersedes.as_deref())
            .await
            .map_err(backend_failure)?;
        let m = &stored.memory;
        let text = if stored.queued {
            format!(
                "Stored memory {} ({}): {}{}",
                m.id,
                m.memory_type,
                m.title,
                queued_note(true)
            )
        } else if stored.duplicate {
            let replaces = p
                .supersedes
                .as_deref()
                .filter(|old| *old != m.id)
                .map(|old| format!("; it replaces {old}"))
                .unwrap_or_default();
            format!(
                "Already stored as memory {} ({}): {} — no second copy was written{replaces}",
                m.id, m.memory_type, m.title
            )
        } else if let Some(old) = &p.supersedes {
            format!(
                "Stored memory {} ({}): {}; it replaces {old}",
                m.id, m.memory_type, m.title
            )
        } else {
            format!("Stored memory {} ({}): {}", m.id, m.memory_type, m.title)
        };
        let similar = if stored.duplicate {
            Vec::new()
        } else {
            self.close_to(m, p.supersedes.as_deref()).await
        };
        let mut text = text;
        if !similar.is_empty() {
            let linked = self.settings.near_duplicates == NearDuplicates::Link;
            text.push_str(if linked {
                "\nNearly the same as what is stored already (linked with SIMILAR_TO):"
            } else {
                "\nNearly the same as what is stored already:"
            });
            for s in &similar {
                let how = match s.by {
                    Closeness::Words => {
                        format!("{}% of words in common", (s.similarity * 100.0).round())
                    }
                    Closeness::Meaning => {
                        format!("the same in other words, similarity {}", s.similarity)
                    }
                };
                text.push_str(&format!("\n- {} ({}, {how})", s.title, s.id));
            }
            text.push_str(
                "\nIf it is the same lesson, keep one: update_memory the older, or store again with supersedes set to it.",
            );
        }
        reply(
            text,
            &StoreMemoryOutput {
                memory_id: m.id.clone(),
                duplicate: stored.duplicate,
                queued: stored.queued,
                supersedes: p.supersedes.clone().filter(|old| *old != m.id),
                memory: MemoryBrief::from(m),
                similar,
                project: m.project_path().map(|path| ProjectReading {
                    path: path.to_string(),
                    source,
                    scope: None,
                }),
            },
        )
    }

    /// Read one memory in full, with its relationships unless include_relationships is
    /// false.
    #[tool(
        name = "get_memory",
        title = "Read a memory",
        output_schema = schema_for_output::<GetMemoryOutput>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn get_memory(&self, Parameters(p): Parameters<GetMemoryParams>) -> ToolResult {
        memory_id("memory_id", &p.memory_id)?;
        // Relationships come with the first part of the content, or when a page of them is
        // asked for: reading on through a long content does not list them again.
        let with_relationships = p.include_relationships.unwrap_or(true)
            && (p.content_offset.unwrap_or(0) == 0 || p.relationships_offset.is_some());
        let offset = bounded(
            "content_offset",
            p.content_offset,
            0,
            0,
            i64::from(u32::MAX),
        )? as usize;
        let rel_offset = bounded(
            "relationships_offset",
            p.relationships_offset,
            0,
            0,
            i64::from(u32::MAX),
        )? as usize;
        let (mut memory, relationships) = self
            .backend
            .get_memory(&p.memory_id, with_relationships)
            .await
            .map_err(backend_failure)?;
        let content: Vec<char> = memory.content.chars().collect();
        let content_length = content.len();
        if offset > content_length {
            return Err(format!(
                "Invalid `content_offset`: the content has {content_length} characters, got {offset}"
            ));
        }
        let relationships_total = relationships.len();
        if rel_offset > relationships_total {
            return Err(format!(
                "Invalid `relationships_offset`: the memory has {relationships_total} current relationship(s), got {rel_offset}"
            ));
        }
        let versions = if offset == 0 {
            self.backend
                .versions_of(&p.memory_id)
                .await
                .map_err(backend_failure)?
        } else {
            Vec::new()
        };
        memory.content = String::new();
        let mut output = GetMemoryOutput {
            memory,
            content_length,
            content_offset: offset,
            content_next_offset: None,
            relationships: Vec::new(),
            relationships_total,
            relationships_offset: rel_offset,
            relationships_next_offset: None,
            versions,
        };
        // The text and the structured answer each stay within the limit: measure both
        // without content or relationships, give relationships up to a quarter of the room
        // (at least one, so paging them always moves on), and the content the rest.
        let limit = self.settings.max_response_chars;
        let (mut text_fixed, mut json_fixed) = sizes(&output);
        // A memory whose other fields crowd out its content (50 long tags, a large context,
        // at a small limit) has them cut to a third of the limit, so every call carries a
        // fair part of the content.
        let crowded = |fixed: usize| fixed + ANSWER_MARGIN > limit * 3 / 4;
        if (crowded(text_fixed) || crowded(json_fixed))
            && let Some(memory) = crate::mcp::limit::squeeze(&output.memory, limit / 3)
        {
            output.memory = memory;
            (text_fixed, json_fixed) = sizes(&output);
        }
        let room = |fixed: usize| limit.saturating_sub(fixed + ANSWER_MARGIN);
        let (mut text_room, mut json_room) = (room(text_fixed), room(json_fixed));
        let share = (limit / 4).min(text_room).min(json_room);
        let (mut text_used, mut json_used) = (0, 0);
        for r in relationships.into_iter().skip(rel_offset) {
            let text = relationship_line(&r, &output.memory.id).chars().count() + 3;
            let json = serde_json::to_string(&r)
                .map(|j| j.chars().count())
                .unwrap_or(0)
                + 1;
            let fits = text_used + text <= share && json_used + json <= share;
            if output.relationships.len() == MAX_LISTED_RELATIONSHIPS
                || (!output.relationships.is_empty() && !fits)
            {
                break;
            }
            text_used += text;
            json_used += json;
            output.relationships.push(r);
        }
        let listed = rel_offset + output.relationships.len();
        output.relationships_next_offset = (listed < relationships_total).then_some(listed);
        text_room = text_room.saturating_sub(text_used);
        json_room = json_room.saturating_sub(json_used);
        // Content by characters, each costed as written: once in the text, and in the JSON
        // as serde escapes it. At least one character, so reading always moves on.
        let mut end = offset;
        let (mut text_used, mut json_used) = (0, 0);
        for c in &content[offset..] {
            text_used += 1;
            json_used += json_chars(*c);
            if end > offset && (text_used > text_room || json_used > json_room) {
                break;
            }
            end += 1;
        }
        output.memory.content = content[offset..end].iter().collect();
        output.content_next_offset = (end < content_length).then_some(end);
        reply(render_memory(&output), &output)
    }

    /// Change some fields of a memory (title, content, summary, tags, importance); the
    /// others stay as they are.
    #[tool(
        name = "update_memory",
        title = "Update a memory",
        output_schema = schema_for_output::<UpdateMemoryOutput>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn update_memory(&self, Parameters(p): Parameters<UpdateMemoryParams>) -> ToolResult {
        memory_id("memory_id", &p.memory_id)?;
        let mut patch = MemoryPatch::validate(
            p.title.as_deref(),
            p.content.as_deref(),
            p.summary.as_deref(),
            p.tags.as_deref(),
            p.importance,
        )
        .map_err(|e| e.to_string())?;
        if p.summary.is_some() && patch.summary.is_none() {
            patch.summary = Some(None);
        }
        if patch.is_empty() {
            return Err(String::from(
                "Nothing to update: give at least one of title, content, summary, tags, importance",
            ));
        }
        if !p.allow_secrets.unwrap_or(false) {
            patch.refuse_secrets().map_err(|e| e.to_string())?;
        }
        let updated_fields: Vec<String> = [
            ("title", patch.title.is_some()),
            ("content", patch.content.is_some()),
            ("summary", patch.summary.is_some()),
            ("tags", patch.tags.is_some()),
            ("importance", patch.importance.is_some()),
        ]
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name.to_string())
        .collect();
        let written = self
            .backend
            .update_memory(&p.memory_id, &patch)
            .await
            .map_err(backend_failure)?;
        let memory = written.value;
        reply(
            format!(
                "Updated {} of memory {}: {}{}",
                updated_fields.join(", "),
                memory.id,
                memory.title,
                queued_note(written.queued)
            ),
            &UpdateMemoryOutput {
                memory_id: memory.id.clone(),
                updated_fields,
                queued: written.queued,
                memory: MemoryBrief::from(&memory),
            },
        )
    }

    /// Delete a memory and all of its relationships. Cannot be undone.
    #[tool(
        name = "delete_memory",
        title = "Delete a memory",
        output_schema = schema_for_output::<DeleteMemoryOutput>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    pub async fn delete_memory(&self, Parameters(p): Parameters<DeleteMemoryParams>) -> ToolResult {
        memory_id("memory_id", &p.memory_id)?;
        let written = self
            .backend
            .delete_memory(&p.memory_id)
            .await
            .map_err(backend_failure)?;
        deleted(&p.memory_id, written.value, written.queued)
    }
}

/// The answer to a delete that happened: also given to a resent delete whose first answer
/// was lost with the owner that applied it.
pub(in crate::mcp) fn deleted(id: &str, relationships_removed: u64, queued: bool) -> ToolResult {
    reply(
        format!(
            "Deleted memory {id} and {relationships_removed} relationship(s){}",
            queued_note(queued)
        ),
        &DeleteMemoryOutput {
            memory_id: id.to_string(),
            deleted: true,
            queued,
            relationships_removed,
        },
    )
}

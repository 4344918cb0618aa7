//! store_memory, get_memory, update_memory, delete_memory.

use rmcp::handler::server::common::schema_for_output;
use rmcp::{tool, tool_router};

use crate::mcp::MemoryServer;
use crate::mcp::args::Parameters;
use crate::mcp::output::{
    DeleteMemoryOutput, GetMemoryOutput, MemoryBrief, StoreMemoryOutput, UpdateMemoryOutput,
};
use crate::mcp::params::{
    DeleteMemoryParams, GetMemoryParams, StoreMemoryParams, UpdateMemoryParams, bounded,
};
use crate::mcp::render::{ToolResult, backend_failure, relationship_line, reply};
use crate::model::{MemoryContext, MemoryPatch, NewMemory, now_iso};

/// Says that a write waits in the offline queue.
pub(in crate::mcp) fn queued_note(queued: bool) -> &'static str {
    if queued {
        " — queued: the primary is unreachable; it is written there, in order, as soon as it is back"
    } else {
        ""
    }
}

/// Most relationships listed with a memory; the graph tools page through more.
const MAX_LISTED_RELATIONSHIPS: usize = 50;

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
        text.push_str("\nRelationships:\n");
        for r in &out.relationships {
            text.push_str(&format!("- {}\n", relationship_line(r, &memory.id)));
        }
    }
    text
}

#[tool_router(router = memory_tools, vis = "pub(in crate::mcp)")]
impl MemoryServer {
    /// Store a new memory: a fix that worked, an error and its cause, a pattern, a
    /// decision, a command. Returns its id.
    #[tool(
        name = "store_memory",
        output_schema = schema_for_output::<StoreMemoryOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    pub async fn store_memory(&self, Parameters(p): Parameters<StoreMemoryParams>) -> ToolResult {
        let context = p
            .context
            .as_ref()
            .map(|c| MemoryContext::from_input(c, &now_iso()))
            .transpose()
            .map_err(|e| e.to_string())?;
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
            format!(
                "Already stored as memory {} ({}): {} — nothing new was written",
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
        reply(
            text,
            &StoreMemoryOutput {
                memory_id: m.id.clone(),
                duplicate: stored.duplicate,
                queued: stored.queued,
                supersedes: p.supersedes.clone().filter(|_| !stored.duplicate),
                memory: MemoryBrief::from(m),
            },
        )
    }

    /// Read one memory in full, with its relationships unless include_relationships is
    /// false.
    #[tool(
        name = "get_memory",
        output_schema = schema_for_output::<GetMemoryOutput>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn get_memory(&self, Parameters(p): Parameters<GetMemoryParams>) -> ToolResult {
        let with_relationships = p.include_relationships.unwrap_or(true);
        let offset = bounded(
            "content_offset",
            p.content_offset,
            0,
            0,
            i64::from(u32::MAX),
        )? as usize;
        let (mut memory, mut relationships) = self
            .backend
            .get_memory(&p.memory_id, with_relationships)
            .await
            .map_err(backend_failure)?;
        relationships.truncate(MAX_LISTED_RELATIONSHIPS);
        let content: Vec<char> = memory.content.chars().collect();
        let content_length = content.len();
        if offset > content_length {
            return Err(format!(
                "Invalid `content_offset`: the content has {content_length} characters, got {offset}"
            ));
        }
        // The content appears twice (text and structured content); everything else once.
        memory.content = String::new();
        let mut output = GetMemoryOutput {
            memory,
            content_length,
            content_offset: offset,
            content_next_offset: None,
            relationships,
        };
        let fixed = render_memory(&output).len()
            + serde_json::to_string(&output).map(|s| s.len()).unwrap_or(0);
        let room = self.settings.max_response_chars.saturating_sub(fixed + 600) / 2;
        let mut end = content_length;
        let mut used = 0;
        for (i, c) in content.iter().enumerate().skip(offset) {
            used += c.len_utf8() + usize::from(!c.is_ascii()) * 4;
            if used > room {
                end = i;
                break;
            }
        }
        output.memory.content = content[offset..end].iter().collect();
        output.content_next_offset = (end < content_length).then_some(end);
        reply(render_memory(&output), &output)
    }

    /// Change some fields of a memory (title, content, summary, tags, importance); the
    /// others stay as they are.
    #[tool(
        name = "update_memory",
        output_schema = schema_for_output::<UpdateMemoryOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn update_memory(&self, Parameters(p): Parameters<UpdateMemoryParams>) -> ToolResult {
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
        output_schema = schema_for_output::<DeleteMemoryOutput>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    pub async fn delete_memory(&self, Parameters(p): Parameters<DeleteMemoryParams>) -> ToolResult {
        let written = self
            .backend
            .delete_memory(&p.memory_id)
            .await
            .map_err(backend_failure)?;
        reply(
            format!(
                "Deleted memory {} and {} relationship(s){}",
                p.memory_id,
                written.value,
                queued_note(written.queued)
            ),
            &DeleteMemoryOutput {
                memory_id: p.memory_id.clone(),
                deleted: true,
                queued: written.queued,
                relationships_removed: written.value,
            },
        )
    }
}

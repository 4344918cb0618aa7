//! get_recent_activity, get_memory_statistics, health, sync.

use rmcp::handler::server::common::schema_for_output;
use rmcp::{tool, tool_router};

use crate::mcp::MemoryServer;
use crate::mcp::args::Parameters;
use crate::mcp::output::{
    HealthOutput, MemoryBrief, RecentActivityOutput, StatisticsOutput, SyncOutput,
};
use crate::mcp::params::{GetRecentActivityParams, NoParams, bounded, short_text};
use crate::mcp::render::{ToolResult, backend_failure, brief_line, list_budget, reply};
use crate::model::limits;

/// How long the `sync` tool waits for the primary.
const SYNC_WAIT: std::time::Duration = crate::backend::PULL_WAIT;

/// The libsql crate this binary was built with (tests/docs.rs checks it against Cargo.lock).
pub const LIBSQL_CRATE_VERSION: &str = "0.10.0";

#[tool_router(router = status_tools, vis = "pub(in crate::mcp)")]
impl MemoryServer {
    /// What happened recently: counts by type, the newest memories and the problems not
    /// yet solved, over the last `days` days (default 7), optionally for one project.
    #[tool(
        name = "get_recent_activity",
        title = "Recent activity",
        output_schema = schema_for_output::<RecentActivityOutput>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn get_recent_activity(
        &self,
        Parameters(p): Parameters<GetRecentActivityParams>,
    ) -> ToolResult {
        let days = bounded("days", p.days, 7, 1, 365)?;
        let offset = bounded("offset", p.offset, 0, 0, 1_000_000)?;
        short_text(
            "project",
            p.project.as_deref().unwrap_or(""),
            limits::CONTEXT_FIELD_MAX_CHARS,
        )?;
        let project = p
            .project
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let a = self
            .backend
            .recent_activity(days, project, offset)
            .await
            .map_err(backend_failure)?;
        let recent: Vec<MemoryBrief> = a.recent_memories.iter().map(MemoryBrief::from).collect();
        let unresolved: Vec<MemoryBrief> = a
            .unresolved_problems
            .iter()
            .map(MemoryBrief::from)
            .collect();
        let line = |m: &MemoryBrief| format!("- {}", brief_line(m));
        // One page covers the same places in both lists, so the two are cut alike: the
        // longest common length whose items fit the budget together.
        let budget = list_budget(self.settings.max_response_chars);
        let fetched = recent.len().max(unresolved.len());
        let mut shown = 0;
        let mut used = 0;
        for i in 0..fetched {
            let cost: usize = [recent.get(i), unresolved.get(i)]
                .into_iter()
                .flatten()
                .map(|m| serde_json::to_string(m).map(|j| j.len()).unwrap_or(0) + line(m).len() + 2)
                .sum();
            // At least one place, so that paging moves on.
            if used + cost > budget && i > 0 {
                break;
            }
            used += cost;
            shown = i + 1;
        }
        let end = i64::from(offset) + shown as i64;
        let has_more = end < a.total_count || end < a.unresolved_total;
        let note = (shown < fetched).then(|| {
            format!(
                "Cut to {shown} of each list to stay within the answer size limit; call again with offset={end} for the next ones."
            )
        });
        let out = RecentActivityOutput {
            days: a.days,
            project: a.project,
            total_count: a.total_count,
            memories_by_type: a.memories_by_type,
            recent_memories: recent.into_iter().take(shown).collect(),
            unresolved_problems: unresolved.into_iter().take(shown).collect(),
            unresolved_total: a.unresolved_total,
            offset,
            has_more,
            next_offset: has_more.then_some(end as u32),
            note,
        };
        let mut text = format!("{} memories in the last {days} day(s)", out.total_count);
        if let Some(project) = &out.project {
            text.push_str(&format!(" for {project}"));
        }
        text.push('\n');
        for (t, n) in &out.memories_by_type {
            text.push_str(&format!("- {t}: {n}\n"));
        }
        for (heading, list, total) in [
            ("Newest", &out.recent_memories, out.total_count),
            (
                "Unresolved problems",
                &out.unresolved_problems,
                out.unresolved_total,
            ),
        ] {
            if list.is_empty() {
                continue;
            }
            text.push_str(&format!(
                "{heading} ({}–{} of {total}):\n",
                offset + 1,
                offset as usize + list.len()
            ));
            for m in list {
                text.push_str(&line(m));
                text.push('\n');
            }
        }
        if let Some(note) = &out.note {
            text.push_str(note);
            text.push('\n');
        } else if let Some(next) = out.next_offset {
            text.push_str(&format!("More: call again with offset={next}.\n"));
        }
        reply(text, &out)
    }

    /// Counts of memories and relationships by type, and average importance.
    #[tool(
        name = "get_memory_statistics",
        title = "Memory statistics",
        output_schema = schema_for_output::<StatisticsOutput>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn get_memory_statistics(&self, Parameters(_): Parameters<NoParams>) -> ToolResult {
        match self.backend.statistics().await {
            Ok(s) => {
                let mut text = format!("Total memories: {}\n", s.total_memories);
                for (t, n) in &s.memories_by_type {
                    text.push_str(&format!("- {t}: {n}\n"));
                }
                text.push_str(&format!("Total relationships: {}\n", s.total_relationships));
                for (c, n) in &s.relationships_by_category {
                    text.push_str(&format!("- {c}: {n}\n"));
                }
                if let Some(avg) = s.average_importance {
                    text.push_str(&format!("Average importance: {avg:.2}\n"));
                }
                if let Some(avg) = s.average_confidence {
                    text.push_str(&format!("Average confidence: {avg:.2}\n"));
                }
                reply(text, &StatisticsOutput { statistics: s })
            }
            Err(e) => Err(backend_failure(e)),
        }
    }

    /// Is the memory store working? Mode, database file, sizes, counts, versions; in replica
    /// mode also the last sync (primary, time, duration, frame, failures, last error) and the
    /// changes waiting for the primary, conflicts and set-aside writes.
    #[tool(
        name = "health",
        title = "Health",
        output_schema = schema_for_output::<HealthOutput>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn health(&self, Parameters(_): Parameters<NoParams>) -> ToolResult {
        match self.backend.health().await {
            Ok(db) => {
                let out = HealthOutput {
                    status: "ok".into(),
                    server_name: env!("CARGO_PKG_NAME").into(),
                    server_version: env!("CARGO_PKG_VERSION").into(),
                    server_pid: std::process::id(),
                    backend: "turso".into(),
                    mode: self.settings.mode.into(),
                    mode_reason: self.settings.mode_reason.clone(),
                    tool_profile: self.settings.profile.as_str().into(),
                    libsql_crate_version: LIBSQL_CRATE_VERSION.into(),
                    database: db,
                    sync: self.backend.sync_status().await,
                    queue: self.backlog().await?,
                    semantic: self
                        .backend
                        .semantic_health(crate::mcp::tools::search::default_mode_name(
                            &self.backend,
                        ))
                        .await
                        .map_err(backend_failure)?,
                };
                let text = format!(
                    "ok: {} {} in {} mode ({}); {} memories, {} relationships; database {} ({} bytes, schema v{}, durability {}); SQLite {}, libsql crate {}",
                    out.server_name,
                    out.server_version,
                    out.mode,
                    out.mode_reason,
                    out.database.memories,
                    out.database.relationships,
                    out.database.database_path,
                    out.database.database_bytes,
                    out.database.schema_version,
                    out.database.durability,
                    out.database.sqlite_version,
                    out.libsql_crate_version
                );
                let mut text = text;
                let s = &out.semantic;
                if s.enabled {
                    text.push_str(&format!(
                        "; semantic recall on ({}, loaded in {} ms, its vectors in {} ms): {} memories with a vector, {} waiting; search_memories defaults to {}",
                        s.model.as_deref().unwrap_or(""),
                        s.load_ms.unwrap_or(0),
                        s.vectors_load_ms.unwrap_or(0),
                        s.vectors,
                        s.pending,
                        s.default_search_mode
                    ));
                } else if s.state == "loading" {
                    text.push_str(&format!(
                        "; semantic recall loading ({}): recall and search that need it wait for it, up to {} s",
                        s.model.as_deref().unwrap_or(""),
                        crate::backend::MODEL_WAIT.as_secs()
                    ));
                } else {
                    text.push_str(&format!(
                        "; semantic recall {}: recall is lexical only; to turn it on: {}",
                        s.state,
                        s.how_to_enable.as_deref().unwrap_or("")
                    ));
                }
                if let Some(sync) = &out.sync {
                    text.push_str(&format!(
                        "; primary {} {}, last sync {} ({} ms), frame {}, {} failure(s) in a row{}",
                        sync.primary_url,
                        if sync.online {
                            "reachable"
                        } else {
                            "unreachable"
                        },
                        sync.last_success_at.as_deref().unwrap_or("never"),
                        sync.last_duration_ms.unwrap_or(0.0),
                        sync.frame_no
                            .map(|f| f.to_string())
                            .unwrap_or_else(|| "none".into()),
                        sync.consecutive_failures,
                        sync.last_error
                            .as_deref()
                            .map(|e| format!(", last error: {e}"))
                            .unwrap_or_default()
                    ));
                    if !sync.owner {
                        text.push_str("; another memorygraph process on this database syncs it");
                    }
                    if !sync.first_sync_done {
                        text.push_str(
                            "; the first sync has not happened yet: answers hold only what this machine has",
                        );
                    }
                    if let Some(q) = &out.queue {
                        text.push_str(&format!("; {}", backlog_sentence(q)));
                    }
                    if let Some(diverged) = &sync.diverged {
                        text.push_str(&format!("; DIVERGED: {diverged}"));
                    }
                }
                reply(text, &out)
            }
            Err(e) => Err(backend_failure(e)),
        }
    }

    /// Sync with the primary database (replica mode). In local mode there is nothing to
    /// sync and this says so.
    #[tool(
        name = "sync",
        title = "Sync with the primary",
        output_schema = schema_for_output::<SyncOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    pub async fn sync(&self, Parameters(_): Parameters<NoParams>) -> ToolResult {
        let before = self.backend.sync_status().await.unwrap_or_default();
        let status = match self.backend.sync_now(SYNC_WAIT).await {
            Ok(Some(status)) => status,
            Ok(None) => {
                let message = "Local mode: this memory lives only in the local file, so there is nothing to sync. \
                               Set TURSO_DATABASE_URL to share it between machines through a libsql primary.";
                return reply(
                    message.to_string(),
                    &SyncOutput {
                        mode: self.settings.mode.into(),
                        synced: false,
                        message: message.into(),
                        status: None,
                        queue: None,
                    },
                );
            }
            Err(e) => {
                let status = self.backend.sync_status().await.unwrap_or_default();
                let backlog = self
                    .backlog()
                    .await?
                    .map(|q| backlog_sentence(&q))
                    .unwrap_or_default();
                let why = if status.owner {
                    format!(
                        "Sync failed ({} failure(s) in a row): {}",
                        status.consecutive_failures,
                        status.last_error.unwrap_or_else(|| e.to_string())
                    )
                } else {
                    e.to_string()
                };
                return Err(format!(
                    "{why}. Every tool keeps working on this machine's copy; {backlog}; syncing retries in the background."
                ));
            }
        };
        let queue = self.backlog().await?;
        let mut message = format!(
            "Synced with {} in {} ms: {} change(s) pushed, {} row(s) from other devices copied here.",
            status.primary_url,
            status.last_duration_ms.unwrap_or(0.0),
            status
                .replayed_writes
                .saturating_sub(before.replayed_writes),
            status.pulled_rows.saturating_sub(before.pulled_rows),
        );
        if let Some(q) = &queue {
            message.push_str(&format!(" {}.", backlog_sentence(q)));
            for c in &q.recent_conflicts {
                message.push_str(&format!("\n{:?} {}: {}", c.issue, c.seq, c.reason));
            }
        }
        reply(
            message.clone(),
            &SyncOutput {
                mode: self.settings.mode.into(),
                synced: true,
                message,
                status: Some(status),
                queue,
            },
        )
    }
}

impl MemoryServer {
    /// What waits for the primary, in replica mode.
    async fn backlog(&self) -> Result<Option<crate::backend::Backlog>, String> {
        self.backend.sync_backlog(5).await.map_err(backend_failure)
    }
}

/// One sentence on the backlog: waiting changes (and the oldest), conflicts, set aside.
pub(crate) fn backlog_sentence(q: &crate::backend::Backlog) -> String {
    let mut s = format!("{} change(s) wait for the primary", q.queued_writes);
    if let Some(at) = &q.oldest_queued_at {
        s.push_str(&format!(" (the oldest from {at})"));
    }
    s.push_str(&format!(
        ", {} conflict(s) recorded, {} write(s) set aside",
        q.conflicts, q.set_aside
    ));
    s
}

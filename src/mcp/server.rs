//! The MCP server handler: identity, capabilities and the tool set of the chosen profile.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, Implementation, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};

use super::args::RMCP_ARGUMENT_ERROR;
use super::schema::{Side, make_portable};

use crate::backend::{RecordedCall, TursoBackend};
use crate::config::ToolProfile;
use serde_json::Value;

/// The tools only the extended profile offers.
pub const EXTENDED_ONLY: [&str; 3] = [
    "get_memory_statistics",
    "search_relationships_by_context",
    "contextual_search",
];

/// What the tools need to know besides the backend.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub profile: ToolProfile,
    pub max_response_chars: usize,
    pub mode: &'static str,
    pub mode_reason: String,
    /// MEMORY_ALLOW_CYCLES: whether a relationship may close a cycle.
    pub allow_cycles: bool,
    /// MEMORY_NEAR_DUPLICATES: what a store does about a near-duplicate.
    pub near_duplicates: crate::config::NearDuplicates,
    /// The project of the working directory of the process the client started (see
    /// [`super::project`]).
    pub project: Option<String>,
}

#[derive(Clone)]
pub struct MemoryServer {
    pub(super) backend: Arc<TursoBackend>,
    pub(super) settings: Arc<ServerSettings>,
    pub(super) project: super::project::SessionProject,
    tool_router: ToolRouter<Self>,
}

impl MemoryServer {
    pub fn new(backend: Arc<TursoBackend>, settings: ServerSettings) -> Self {
        let mut tool_router = Self::memory_tools();
        tool_router.merge(Self::search_tools());
        tool_router.merge(Self::graph_tools());
        tool_router.merge(Self::status_tools());
        if settings.profile == ToolProfile::Core {
            for name in EXTENDED_ONLY {
                tool_router.remove_route(name);
            }
        }
        for route in tool_router.map.values_mut() {
            polish(&mut route.attr);
        }
        MemoryServer {
            backend,
            project: super::project::SessionProject::new(settings.project.clone()),
            settings: Arc::new(settings),
            tool_router,
        }
    }
}

const INSTRUCTIONS: &str = "Long-term memory. Before starting work, recall_memories or search_memories for the task \
at hand. After solving a problem, fixing an error or making a decision, store_memory it (type, short title, content) \
and link related memories with create_relationship (e.g. a fix SOLVES a problem). Results are paged: pass next_offset \
as offset for more.";

/// Tools that only read: while a new replica has not synced once, their answers come from
/// an empty stand-in and say so.
const READS: [&str; 8] = [
    "get_memory",
    "search_memories",
    "recall_memories",
    "get_related_memories",
    "get_recent_activity",
    "get_memory_statistics",
    "search_relationships_by_context",
    "contextual_search",
];

/// Tools that change memories: a forwarded call to one carries a key, and its answer is
/// recorded under it (see [`CALL_KEY`]).
const WRITES: [&str; 4] = [
    "store_memory",
    "update_memory",
    "delete_memory",
    "create_relationship",
];

/// Where a process that forwards calls to the database's owner puts a call's key (in the
/// request's `_meta`). The owner records a write's answer under it, so a call resent after
/// an owner went away is answered, not applied twice.
pub const CALL_KEY: &str = "memorygraph/call";

/// Whether a tool only reads memories (its answers carry the first-sync note).
pub fn is_read(tool: &str) -> bool {
    READS.contains(&tool)
}

pub const FIRST_SYNC_NOTE: &str = "Note: this database has not synced with its primary yet (the primary has been unreachable since replica mode began here), so this answer only knows what this machine holds; the rest arrives with the first sync.";

/// Longest tool error text, in characters: an error says what was wrong in a sentence or two.
pub const ERROR_MAX_CHARS: usize = 1_000;

/// Readies a tool's published description for every client: one paragraph (doc comments
/// break lines mid-sentence), a title, a title in the annotations for older clients, and
/// schemas without the constructs strict validators warn about.
fn polish(tool: &mut Tool) {
    if let Some(description) = &tool.description {
        let joined = description.split_whitespace().collect::<Vec<_>>().join(" ");
        tool.description = Some(joined.into());
    }
    if let (Some(title), Some(annotations)) = (&tool.title, tool.annotations.as_mut()) {
        annotations.title.get_or_insert_with(|| title.clone());
    }
    make_portable(
        std::sync::Arc::make_mut(&mut tool.input_schema),
        Side::Input,
    );
    if let Some(output) = tool.output_schema.as_mut() {
        make_portable(std::sync::Arc::make_mut(output), Side::Output);
    }
}

/// Gives every tool error the same shape: rmcp's marker for argument errors removed, a
/// capital first letter, and no more than [`ERROR_MAX_CHARS`].
fn tidy_error(text: &str) -> String {
    let text = text
        .strip_prefix(RMCP_ARGUMENT_ERROR)
        .unwrap_or(text)
        .trim();
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "The tool failed".to_string(),
    };
    let count = out.chars().count();
    if count > ERROR_MAX_CHARS {
        out = out.chars().take(ERROR_MAX_CHARS - 40).collect();
        out.push_str(&format!("… (error cut from {count} characters)"));
    }
    out
}

impl MemoryServer {
    /// The answer a keyed write got before, if the database recorded one.
    async fn recorded_answer(&self, key: Option<&str>) -> Option<RecordedCall> {
        match self.backend.recorded_call(key?).await {
            Ok(recorded) => recorded,
            Err(e) => {
                tracing::warn!("reading a recorded call failed: {e}");
                None
            }
        }
    }

    /// The answer to a resent delete that an owner applied before it went away, built from
    /// what the delete noted (the relationships it removed).
    async fn applied_delete(
        &self,
        request: &CallToolRequestParams,
        outcome: &Value,
    ) -> CallToolResult {
        let id = request
            .arguments
            .as_ref()
            .and_then(|arguments| arguments.get("memory_id"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let queued = self.backend.waits_for_primary().await;
        super::tools::memories::deleted(id, outcome.as_u64().unwrap_or(0), queued)
            .expect("a delete's answer is plain data")
    }

    /// Keeps a keyed write's answer, so a resent call gets it again.
    async fn record_answer(&self, key: &str, tool: &str, answer: &CallToolResult) {
        let Ok(text) = serde_json::to_string(answer) else {
            return;
        };
        if let Err(e) = self.backend.record_call(key, tool, &text).await {
            tracing::warn!("recording a call's answer failed: {e}");
        }
    }
}

/// Who this server is and what it offers, the same whichever transport a client came by.
pub fn server_config() -> ServerConfig {
    ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        .with_server_info(Implementation::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(INSTRUCTIONS)
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for MemoryServer {
    /// Runs a tool. An unknown tool is a protocol error naming it (MCP: -32602); every
    /// answer is held to the size limit ([`super::limit`]) and every tool error is tidied by
    /// [`tidy_error`].
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.tool_router.get(&request.name).is_none() {
            return Err(ErrorData::invalid_params(
                format!(
                    "Unknown tool {}: tools/list names the tools this server offers",
                    crate::model::quote(&request.name)
                ),
                None,
            ));
        }
        let read_only = is_read(&request.name);
        // rmcp moves a request's `_meta` into the context; a caller may also build the
        // parameters with it.
        let key = request
            .meta
            .as_ref()
            .and_then(|meta| meta.0.0.get(CALL_KEY))
            .or_else(|| context.meta.0.0.get(CALL_KEY))
            .and_then(|key| key.as_str())
            .filter(|_| WRITES.contains(&request.name.as_ref()))
            .map(str::to_owned);
        let tool = request.name.to_string();
        match self.recorded_answer(key.as_deref()).await {
            Some(RecordedCall::Answer(answer)) => {
                if let Ok(answer) = serde_json::from_str(&answer) {
                    return Ok(CallToolResponse::Complete(answer));
                }
            }
            // Applied by an owner that went away before it kept the answer. A delete is
            // answered from what it noted; the other writes give the same result when run
            // again (a store finds its memory, an update and a link are already there).
            Some(RecordedCall::Applied(outcome)) if tool == "delete_memory" => {
                let answer = self.applied_delete(&request, &outcome).await;
                self.record_answer(key.as_deref().unwrap_or_default(), &tool, &answer)
                    .await;
                return Ok(CallToolResponse::Complete(answer));
            }
            _ => {}
        }
        let call = ToolCallContext::new(self, request, context);
        let keyed_call = key.clone().map(|key| (key, tool.clone()));
        let mut response = crate::backend::keyed(keyed_call, self.tool_router.call(call)).await?;
        if read_only
            && let CallToolResponse::Complete(result) = &mut response
            && result.is_error != Some(true)
            && self
                .backend
                .sync_status()
                .await
                .is_some_and(|s| !s.first_sync_done)
        {
            result.content.push(ContentBlock::text(FIRST_SYNC_NOTE));
        }
        if let CallToolResponse::Complete(result) = &mut response {
            super::limit::bound(result, self.settings.max_response_chars);
        }
        if let CallToolResponse::Complete(result) = &mut response
            && result.is_error == Some(true)
        {
            for block in result.content.iter_mut() {
                if let Some(text) = block.as_text() {
                    *block = ContentBlock::text(tidy_error(&text.text));
                }
            }
        }
        if let (Some(key), CallToolResponse::Complete(result)) = (&key, &response)
            && result.is_error != Some(true)
        {
            self.record_answer(key, &tool, result).await;
        }
        Ok(response)
    }

    fn get_info(&self) -> ServerConfig {
        server_config()
    }

    /// Asks a client that offers roots for them, to know the session's project.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.project.ask(&context.peer, false);
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        self.project.ask(&context.peer, true);
    }

    /// Requests that are not tools, for the web view ([`super::web_methods`]).
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let params = request.params.unwrap_or_default();
        super::web_methods::answer(&self.backend, &request.method, params)
            .await
            .map(CustomResult::new)
    }
}

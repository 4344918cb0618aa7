//! The MCP server handler: identity, capabilities and the tool set of the chosen profile.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool_handler};

use crate::backend::TursoBackend;
use crate::config::ToolProfile;

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
}

#[derive(Clone)]
pub struct MemoryServer {
    pub(super) backend: Arc<TursoBackend>,
    pub(super) settings: Arc<ServerSettings>,
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
        MemoryServer {
            backend,
            settings: Arc::new(settings),
            tool_router,
        }
    }
}

const INSTRUCTIONS: &str = "Long-term memory. Before starting work, recall_memories or search_memories for the task \
at hand. After solving a problem, fixing an error or making a decision, store_memory it (type, short title, content) \
and link related memories with create_relationship (e.g. a fix SOLVES a problem). Results are paged: pass next_offset \
as offset for more.";

#[tool_handler(router = self.tool_router)]
impl ServerHandler for MemoryServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }
}

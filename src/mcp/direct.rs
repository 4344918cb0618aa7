//! Calling a tool in-process, without a client. The command line answers through this, so
//! `memorygraph search` and the `search_memories` tool check the same rules and give the
//! same structured answer.

use serde_json::Value;

use super::MemoryServer;
use super::args::{Parameters, parse};
use super::project::Client;
use super::render::ToolResult;

impl MemoryServer {
    /// Runs the named tool with JSON arguments, as a `tools/call` would (whatever the
    /// tool profile). An unknown name is an error.
    pub async fn call_tool_directly(&self, name: &str, arguments: Value) -> ToolResult {
        let mut result = self.route(name, arguments).await?;
        super::limit::bound(&mut result, self.settings.max_response_chars);
        Ok(result)
    }

    async fn route(&self, name: &str, arguments: Value) -> ToolResult {
        match name {
            "store_memory" => {
                self.store_memory(Client(None), Parameters(parse(arguments)?))
                    .await
            }
            "get_memory" => self.get_memory(Parameters(parse(arguments)?)).await,
            "update_memory" => self.update_memory(Parameters(parse(arguments)?)).await,
            "delete_memory" => self.delete_memory(Parameters(parse(arguments)?)).await,
            "search_memories" => {
                self.search_memories(Client(None), Parameters(parse(arguments)?))
                    .await
            }
            "recall_memories" => {
                self.recall_memories(Client(None), Parameters(parse(arguments)?))
                    .await
            }
            "contextual_search" => self.contextual_search(Parameters(parse(arguments)?)).await,
            "create_relationship" => {
                self.create_relationship(Parameters(parse(arguments)?))
                    .await
            }
            "get_related_memories" => {
                self.get_related_memories(Parameters(parse(arguments)?))
                    .await
            }
            "search_relationships_by_context" => {
                self.search_relationships_by_context(Parameters(parse(arguments)?))
                    .await
            }
            "get_recent_activity" => {
                self.get_recent_activity(Parameters(parse(arguments)?))
                    .await
            }
            "get_memory_statistics" => {
                self.get_memory_statistics(Parameters(parse(arguments)?))
                    .await
            }
            "health" => self.health(Parameters(parse(arguments)?)).await,
            "sync" => self.sync(Parameters(parse(arguments)?)).await,
            other => Err(format!("Unknown tool {}", crate::model::quote(other))),
        }
    }
}

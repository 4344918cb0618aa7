//! The MCP handler of an HTTP session: every request goes to the database's owner, so an
//! HTTP client gets the answers a stdio client gets, from the one process that holds the
//! database.
//!
//! The owner answers in the shape of the 2025 handshake era, without `resultType`. The
//! 2026-07-28 revision requires it on every result, and rmcp's handler only removes it
//! for older peers, so each answer is marked complete here: an HTTP client of either era
//! then gets the shape its revision asks for.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ListToolsResult,
    PaginatedRequestParams, ResultType, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::mcp::CALL_KEY;
use crate::owner::client::OwnerCalls;

#[derive(Clone)]
pub struct Forwarder {
    pub calls: Arc<OwnerCalls>,
}

fn unreadable(e: serde_json::Error) -> ErrorData {
    ErrorData::internal_error(format!("reading the owner's answer: {e}"), None)
}

impl ServerHandler for Forwarder {
    fn get_info(&self) -> ServerConfig {
        crate::mcp::server_config()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let params = serde_json::to_value(request).map_err(unreadable)?;
        let params = if params.is_null() { json!({}) } else { params };
        let answer = self.calls.request("tools/list", params).await?;
        let mut result: ListToolsResult = serde_json::from_value(answer).map_err(unreadable)?;
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let mut params = serde_json::to_value(&request).map_err(unreadable)?;
        // A client's own call key (a retrying client) is kept; otherwise the link adds one.
        if let Some(key) = context.meta.0.0.get(CALL_KEY) {
            params["_meta"] = json!({ CALL_KEY: key });
        }
        let answer: Value = self.calls.request("tools/call", params).await?;
        let mut result: CallToolResult = serde_json::from_value(answer).map_err(unreadable)?;
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(CallToolResponse::Complete(result))
    }
}

//! One tool call sent to the database's owner, for a CLI command beside a running server:
//! the command gets the answer the owner's tools give, and opens nothing itself.

use anyhow::{Context, Result, anyhow};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::Place;
use super::link::{self, Takeover};
use crate::config::Config;

/// Calls a tool through the owner. `None` when no process owns the database (the command
/// then opens the file itself); the outer error is a failure to reach the owner, the inner
/// one the tool's own error text.
pub async fn call_tool(
    config: &Config,
    name: &str,
    arguments: Value,
) -> Result<Option<std::result::Result<CallToolResult, String>>> {
    let place = Place::of(&config.database_path)?;
    if tokio::net::UnixStream::connect(&place.socket)
        .await
        .is_err()
    {
        return Ok(None);
    }
    let (_stop, stopped) = watch::channel(false);
    let mut link = link::open(config.clone(), place, Takeover::Never, stopped);
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "memorygraph-cli", "version": env!("CARGO_PKG_VERSION")}
        }}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": name, "arguments": arguments
        }}),
    ];
    for message in messages {
        let _ = link.to_owner.send(message.to_string().into_bytes());
    }
    drop(link.to_owner);
    let mut answer = None;
    while let Some(line) = link.from_owner.recv().await {
        let message: Value = serde_json::from_slice(&line).context("reading the owner's answer")?;
        if message.get("id") == Some(&json!(2)) {
            answer = Some(message);
        } else if message.get("id") == Some(&json!(1))
            && let Some(error) = message.get("error")
        {
            return Err(anyhow!("the database's owner refused the session: {error}"));
        }
    }
    let _ = link.task.await;
    let answer =
        answer.ok_or_else(|| anyhow!("the database's owner went away without answering"))?;
    if let Some(error) = answer.get("error") {
        let text = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the call failed");
        return Ok(Some(Err(text.to_string())));
    }
    let result: CallToolResult =
        serde_json::from_value(answer["result"].clone()).context("reading the owner's answer")?;
    if result.is_error == Some(true) {
        let text = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        return Ok(Some(Err(text)));
    }
    Ok(Some(Ok(result)))
}

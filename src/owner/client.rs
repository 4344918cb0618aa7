//! Calls sent to the database's owner by a process that is not a stdio relay: a CLI
//! command beside a running server, and the HTTP server's sessions. Each call is one
//! JSON-RPC request over a [`Link`](super::link), which survives the owner.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, anyhow};
use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ErrorCode};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::Place;
use super::link::{self, Takeover};
use crate::config::Config;

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// A session with the database's owner, shared by concurrent callers.
pub struct OwnerCalls {
    to_owner: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next: AtomicU64,
    _stop: watch::Sender<bool>,
    link: JoinHandle<Result<()>>,
}

impl OwnerCalls {
    /// Opens a session with the owner (becoming it, when allowed and there is none).
    pub async fn open(
        config: &Config,
        place: Place,
        takeover: Takeover,
        client: &str,
    ) -> Result<OwnerCalls> {
        let (stop, stopped) = watch::channel(false);
        let link = link::open(config.clone(), place, takeover, stopped);
        let pending: Pending = Arc::default();
        tokio::spawn(route(link.from_owner, pending.clone()));
        let calls = OwnerCalls {
            to_owner: link.to_owner,
            pending,
            next: AtomicU64::new(0),
            _stop: stop,
            link: link.task,
        };
        calls
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": client, "version": env!("CARGO_PKG_VERSION")}
                }),
            )
            .await
            .map_err(|e| anyhow!("the database's owner refused the session: {}", e.message))?;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let _ = calls.to_owner.send(initialized.to_string().into_bytes());
        Ok(calls)
    }

    /// Sends one request and waits for its answer: the result, or the JSON-RPC error.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ErrorData> {
        let id = format!("call-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (answer, answered) = oneshot::channel();
        self.pending.lock().await.insert(id_key(&id), answer);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if self
            .to_owner
            .send(message.to_string().into_bytes())
            .is_err()
        {
            self.pending.lock().await.remove(&id_key(&id));
            return Err(gone());
        }
        let answer = answered.await.map_err(|_| gone())?;
        match answer.get("error") {
            Some(error) => Err(ErrorData::new(
                ErrorCode(error.get("code").and_then(Value::as_i64).unwrap_or(-32603) as i32),
                error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the call failed")
                    .to_string(),
                error.get("data").cloned(),
            )),
            None => Ok(answer.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    /// Ends the session; a database this process took over is closed.
    pub async fn close(self) {
        drop(self.to_owner);
        let _ = self.link.await;
    }
}

fn id_key(id: &str) -> String {
    Value::String(id.to_string()).to_string()
}

fn gone() -> ErrorData {
    ErrorData::internal_error("no memorygraph process serves this database any more", None)
}

/// Hands each answer to the call waiting for it.
async fn route(mut from_owner: mpsc::UnboundedReceiver<Vec<u8>>, pending: Pending) {
    while let Some(line) = from_owner.recv().await {
        let Ok(message) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if message.get("method").is_some() {
            continue;
        }
        if let Some(id) = message.get("id")
            && let Some(waiting) = pending.lock().await.remove(&id.to_string())
        {
            let _ = waiting.send(message);
        }
    }
    // The link ended: every call still waiting learns it.
    pending.lock().await.clear();
}

/// Calls a tool through the owner, for a CLI command. `None` when no process owns the
/// database (the command then opens the file itself); the outer error is a failure to
/// reach the owner, the inner one the tool's own error text.
pub async fn call_tool(
    config: &Config,
    name: &str,
    arguments: Value,
) -> Result<Option<std::result::Result<CallToolResult, String>>> {
    let place = Place::of(&config.database_path)?;
    if super::connect(&place).await.is_none() {
        return Ok(None);
    }
    // A command may run any tool, whatever the tool profile the windows were given.
    let mut config = config.clone();
    config.profile = crate::config::ToolProfile::Extended;
    let calls = OwnerCalls::open(&config, place, Takeover::Never, "memorygraph-cli").await?;
    let answer = calls
        .request("tools/call", json!({"name": name, "arguments": arguments}))
        .await;
    calls.close().await;
    let result = match answer {
        Ok(result) => result,
        Err(error) => return Ok(Some(Err(error.message.to_string()))),
    };
    let result: CallToolResult =
        serde_json::from_value(result).context("reading the owner's answer")?;
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

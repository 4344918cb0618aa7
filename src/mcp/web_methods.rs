//! The owner's requests that are not tools, for the web view: settling replica mode's
//! conflicts, ending a relationship, and the change count the pages poll. Not offered as
//! tools, so an assistant's tool list stays MemoryGraph's and settling conflicts stays the
//! user's business.

use rmcp::ErrorData;
use rmcp::model::ErrorCode;
use serde_json::{Value, json};

use crate::backend::{BackendError, TursoBackend, Which};

/// Lists replica mode's conflicts and set-aside writes, or settles one: `{"action":
/// "list"}`, `{"action": "retry"|"discard", "seq": N}` (retry keeps this machine's version,
/// discard the primary's).
pub const CONFLICTS_METHOD: &str = "memorygraph/conflicts";
/// Removes a relationship by ending it (see [`TursoBackend::end_relationship`]):
/// `{"relationship_id": ID}`.
pub const END_RELATIONSHIP_METHOD: &str = "memorygraph/end_relationship";
/// The database's change count: `{"changes": N}`.
pub const CHANGES_METHOD: &str = "memorygraph/changes";

/// Answers one of these requests.
pub async fn answer(
    backend: &TursoBackend,
    method: &str,
    params: Value,
) -> Result<Value, ErrorData> {
    match method {
        CONFLICTS_METHOD => conflicts(backend, &params).await,
        END_RELATIONSHIP_METHOD => end_relationship(backend, &params).await,
        CHANGES_METHOD => Ok(json!({"changes": backend.changes().await.map_err(failed)?})),
        _ => Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("unknown method {method}"),
            None,
        )),
    }
}

fn failed(e: BackendError) -> ErrorData {
    ErrorData::invalid_request(e.to_string(), None)
}

async fn conflicts(backend: &TursoBackend, params: &Value) -> Result<Value, ErrorData> {
    let seq = || {
        params["seq"].as_i64().map(Which::One).ok_or_else(|| {
            ErrorData::invalid_params("retry and discard need the entry's `seq`", None)
        })
    };
    Ok(match params["action"].as_str() {
        Some("list") => json!({"issues": backend.sync_issues(100).await.map_err(failed)?}),
        Some("retry") => json!({"entries": backend.retry_issues(seq()?).await.map_err(failed)?}),
        Some("discard") => {
            json!({"entries": backend.discard_issues(seq()?).await.map_err(failed)?})
        }
        _ => {
            return Err(ErrorData::invalid_params(
                "`action` is list, retry or discard",
                None,
            ));
        }
    })
}

async fn end_relationship(backend: &TursoBackend, params: &Value) -> Result<Value, ErrorData> {
    let id = params["relationship_id"].as_str().ok_or_else(|| {
        ErrorData::invalid_params("`relationship_id` names the relationship to end", None)
    })?;
    let ended = backend.end_relationship(id).await.map_err(failed)?;
    if !ended.value {
        return Err(ErrorData::invalid_params(
            format!("no current relationship has the id {id}"),
            None,
        ));
    }
    Ok(json!({"ended": true, "queued": ended.queued}))
}

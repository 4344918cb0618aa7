//! The owner's requests that are not tools, for the web view: settling replica mode's
//! conflicts, ending a relationship, and the change count the pages poll. Not offered as
//! tools, so an assistant's tool list stays MemoryGraph's and settling conflicts stays the
//! user's business.

use rmcp::ErrorData;
use rmcp::model::ErrorCode;
use serde_json::{Value, json};

use crate::backend::{BackendError, ImportOptions, OVERVIEW_MAX, TursoBackend, Which};
use crate::exchange::files::{self, ExportFormat, ImportFormat};

/// Lists replica mode's conflicts and set-aside writes, or settles one: `{"action":
/// "list"}`, `{"action": "retry"|"discard", "seq": N}` (retry keeps this machine's version,
/// discard the primary's).
pub const CONFLICTS_METHOD: &str = "memorygraph/conflicts";
/// Removes a relationship by ending it (see [`TursoBackend::end_relationship`]):
/// `{"relationship_id": ID}`.
pub const END_RELATIONSHIP_METHOD: &str = "memorygraph/end_relationship";
/// The database's change count: `{"changes": N}`.
pub const CHANGES_METHOD: &str = "memorygraph/changes";
/// The whole graph at a glance: `{"limit": N}` (at most [`OVERVIEW_MAX`]) answers the most
/// recently changed memories and the current relationships between them.
pub const OVERVIEW_METHOD: &str = "memorygraph/overview";
/// Writes a whole export to a private file next to the database and answers its path:
/// `{"format": "json"|"markdown"|"dot"|"mermaid"}`. The one who asked reads the file and
/// removes it (answers over the owner's channel are bounded; exports are not).
pub const EXPORT_METHOD: &str = "memorygraph/export";
/// Imports a file the caller put on this machine: `{"path": P, "format"?: "json"|"jsonl",
/// "skip_duplicates"?, "dry_run"?, "allow_secrets"?}`; answers the import's report.
pub const IMPORT_METHOD: &str = "memorygraph/import";

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
        OVERVIEW_METHOD => {
            let limit = params["limit"].as_u64().unwrap_or(u64::from(OVERVIEW_MAX));
            let limit = u32::try_from(limit).unwrap_or(OVERVIEW_MAX);
            let overview = backend.overview(limit).await.map_err(failed)?;
            Ok(serde_json::to_value(overview).expect("plain data"))
        }
        EXPORT_METHOD => export(backend, &params).await,
        IMPORT_METHOD => import(backend, &params).await,
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

/// A refusal carrying a sentence (and its causes) for the caller.
fn refused(e: anyhow::Error) -> ErrorData {
    ErrorData::invalid_params(format!("{e:#}"), None)
}

async fn export(backend: &TursoBackend, params: &Value) -> Result<Value, ErrorData> {
    let format =
        ExportFormat::named(params["format"].as_str().unwrap_or("json")).map_err(refused)?;
    let everything = backend.read_everything().await.map_err(failed)?;
    let (text, memories, relationships) =
        files::one_file(&everything, format, &crate::model::now_iso()).map_err(refused)?;
    let path = files::hand_over_path(backend.path(), "export").map_err(refused)?;
    files::write_private(&path, &text).map_err(refused)?;
    Ok(json!({
        "path": path,
        "file_name": format.file_name(),
        "memories": memories,
        "relationships": relationships,
    }))
}

async fn import(backend: &TursoBackend, params: &Value) -> Result<Value, ErrorData> {
    let path = params["path"]
        .as_str()
        .ok_or_else(|| ErrorData::invalid_params("`path` names the file to import", None))?;
    let format = match params["format"].as_str() {
        None | Some("") => None,
        Some(name) => Some(ImportFormat::named(name).map_err(refused)?),
    };
    let flag = |name: &str| params[name].as_bool().unwrap_or(false);
    let text = std::fs::read_to_string(path)
        .map_err(|e| refused(anyhow::anyhow!("reading the file to import: {e}")))?;
    let parsed = files::parse(&text, format).map_err(refused)?;
    if !flag("allow_secrets") {
        files::refuse_secrets(&parsed.batch, "allow secrets").map_err(refused)?;
    }
    let options = ImportOptions {
        skip_duplicates: flag("skip_duplicates"),
        dry_run: flag("dry_run"),
    };
    let mut report = backend
        .import(&parsed.batch, options, &|_| {})
        .await
        .map_err(failed)?;
    files::count_dangling(&mut report, parsed.dangling);
    Ok(serde_json::to_value(report).expect("plain data"))
}

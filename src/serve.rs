//! Running the server: open the store, speak MCP on stdio until the client leaves or a
//! signal arrives, then close the database cleanly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rmcp::ServiceExt;

use crate::backend::{
    LocalCopy, TursoBackend, copy_to_primary, redact_url, resync as backend_resync,
};
use crate::config::Config;
use crate::mcp::transport::line_transport;
use crate::mcp::{MemoryServer, ServerSettings};
use crate::open::{close, open_backend, primary_of, shutdown_signal};

/// Serves MCP on stdin/stdout. The first process on a database owns it and serves the
/// others through its socket; a later one forwards its client's messages to the owner
/// (see [`crate::owner`]).
pub async fn run(config: Config) -> Result<()> {
    #[cfg(unix)]
    {
        let place = crate::owner::Place::of(&config.database_path)?;
        let Some(ownership) = crate::owner::try_own(&place)? else {
            return crate::owner::relay::run(config, place).await;
        };
        let mut hosted = crate::owner::host::Hosted::start(&config, ownership, false).await?;
        log_start(&config, &hosted.settings);
        let backend = hosted.backend.clone();
        let settings = hosted.settings.clone();
        let ended = stdio_session(backend, settings, || hosted.start_embedding()).await;
        let closed = hosted.shut_down().await;
        ended.and(closed)
    }
    #[cfg(not(unix))]
    {
        let backend = Arc::new(open_backend(&config).await?);
        backend.expect_model();
        let settings = server_settings(&config);
        log_start(&config, &settings);
        // With MEMORY_TURSO_AUTO_SYNC=false nothing syncs on its own: no task after writes or
        // every interval (and the backend skips the syncs at start and at shutdown).
        let sync_task = config
            .auto_sync
            .then(|| tokio::spawn(backend.clone().keep_in_sync(Some(config.sync_interval))));
        let mut embedding = None;
        let ended = stdio_session(backend.clone(), settings, || {
            embedding = Some(tokio::spawn(backend.clone().embedding_worker()));
        })
        .await;
        for task in [sync_task, embedding].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        ended.and(close(backend).await)
    }
}

fn log_start(config: &Config, settings: &ServerSettings) {
    tracing::info!(
        path = %config.database_path.display(),
        profile = config.profile.as_str(),
        "memorygraph {} serving MCP on stdio in {} mode ({})",
        env!("CARGO_PKG_VERSION"),
        settings.mode,
        settings.mode_reason
    );
}

/// One MCP session on stdin/stdout, until the client leaves or a signal arrives.
/// `handshake_done` runs once the session began: semantic recall's model loads only then,
/// so `initialize` is answered as fast as without it (a call that needs the model meanwhile
/// waits for it: see [`TursoBackend::expect_model`]).
async fn stdio_session(
    backend: Arc<TursoBackend>,
    settings: ServerSettings,
    handshake_done: impl FnOnce(),
) -> Result<()> {
    let server = MemoryServer::new(backend, settings);
    let (read, write) = rmcp::transport::stdio_pipes();
    let (transport, writer) = line_transport(read, write);
    let running = match server.serve(transport).await {
        Ok(running) => running,
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => {
            // The client left before choosing a lifecycle: a `server/discover` probe (or a
            // ping) and nothing else is a complete session. Its answers are already queued.
            tracing::debug!("the client closed stdin before a session began");
            let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
            return Ok(());
        }
        Err(e) => return Err(e).context("starting the MCP session"),
    };
    handshake_done();
    let cancel = running.cancellation_token();
    let stop = tokio::spawn(async move {
        let reason = shutdown_signal().await;
        tracing::info!("{reason}: shutting down");
        cancel.cancel();
    });
    let ended = running.waiting().await;
    stop.abort();
    match ended {
        Ok(reason) => tracing::debug!("MCP session ended: {reason:?}"),
        Err(e) => tracing::warn!("MCP session ended with an error: {e}"),
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    Ok(())
}

/// Rebuilds the search index of the configured database.
pub async fn reindex(config: Config) -> Result<()> {
    let backend = Arc::new(open_backend(&config).await?);
    backend
        .reindex()
        .await
        .context("rebuilding the full-text index")?;
    eprintln!(
        "memorygraph: full-text index rebuilt for {}",
        config.database_path.display()
    );
    close(backend).await
}

/// Syncs the replica once and says how it went (exit code 1 when it failed).
pub async fn sync(config: Config) -> Result<()> {
    if config.database_url.is_none() {
        bail!(
            "nothing to sync: TURSO_DATABASE_URL is not set, so {} is a local database",
            config.database_path.display()
        );
    }
    let backend = Arc::new(open_backend(&config).await?);
    let before = backend.sync_status().await.unwrap_or_default();
    let outcome = backend.sync_now(Duration::from_secs(10)).await;
    let backlog = backend
        .sync_backlog(5)
        .await
        .context("reading what waits for the primary")?;
    let status = backend.sync_status().await.unwrap_or_default();
    close(backend).await?;
    let backlog = backlog
        .map(|q| crate::mcp::backlog_sentence(&q))
        .unwrap_or_default();
    match outcome {
        Ok(_) => {
            println!(
                "Synced {} with {} in {} ms: {} change(s) pushed, {} row(s) from other devices copied here; {backlog}.",
                config.database_path.display(),
                status.primary_url,
                status.last_duration_ms.unwrap_or(0.0),
                status
                    .replayed_writes
                    .saturating_sub(before.replayed_writes),
                status.pulled_rows.saturating_sub(before.pulled_rows),
            );
            Ok(())
        }
        Err(e) if !status.owner => bail!("{e}; {backlog}"),
        Err(_) => bail!(
            "sync with {} failed: {}; {backlog}",
            status.primary_url,
            status.last_error.unwrap_or_else(|| "unknown error".into())
        ),
    }
}

/// Copies a local file into the primary and creates a fresh replica of it. The command line
/// has checked the direction, the primary and the two paths.
pub async fn migrate(config: Config, from: &std::path::Path) -> Result<()> {
    let Some(url) = &config.database_url else {
        bail!("TURSO_DATABASE_URL (--database-url) must name the primary to migrate into");
    };
    let primary = primary_of(&config).expect("TURSO_DATABASE_URL is set");
    let report = copy_to_primary(from, &primary)
        .await
        .with_context(|| format!("copying {} into {}", from.display(), redact_url(url)))?;
    let verified = if report.conflicts.is_empty() {
        format!("every memory verified (id checksum {})", report.id_checksum)
    } else {
        format!(
            "{} row(s) differ on the primary: conflicts, the primary's version kept",
            report.conflicts.len()
        )
    };
    println!(
        "Copied {} memories ({} already there) and {} relationships ({} already there) from {} into {}; {verified}.",
        report.memories,
        report.memories_already_there,
        report.relationships,
        report.relationships_already_there,
        from.display(),
        redact_url(url),
    );
    for c in &report.conflicts {
        println!(
            "Conflict: {} {} differs.\n  in the file: {}\n  on the primary: {}",
            c.kind, c.id, c.in_file, c.on_primary
        );
    }
    let backend = Arc::new(open_backend(&config).await?);
    // Opening never waits for the primary: this first sync fills the working file.
    backend
        .sync_now(Duration::from_secs(10))
        .await
        .context("the first sync of the working file")?;
    let health = backend.health().await.context("reading the new replica")?;
    println!(
        "The replica {} holds {} memories and {} relationships. {} was not changed.",
        config.database_path.display(),
        health.memories,
        health.relationships,
        from.display()
    );
    close(backend).await
}

/// Removes the replica and compares every row with the primary under the chosen policy,
/// then reports what the comparison did.
pub async fn resync(config: Config, local: LocalCopy) -> Result<()> {
    let Some(primary) = primary_of(&config) else {
        bail!(
            "nothing to resync: TURSO_DATABASE_URL is not set, so {} is a local database",
            config.database_path.display()
        );
    };
    let prepared = backend_resync(&config.database_path, local)
        .await
        .context("preparing the resync")?;
    if prepared.removed_replica {
        println!(
            "Removed the replica of {} (a copy of the primary; every memory of this machine is in the working file); it is rebuilt from the primary now.",
            config.database_path.display()
        );
    }
    let backend = Arc::new(open_backend(&config).await?);
    let outcome = backend.sync_now(Duration::from_secs(10)).await;
    let health = backend.health().await.context("reading the database")?;
    let status = backend.sync_status().await.unwrap_or_default();
    let backlog = backend.sync_backlog(0).await.ok().flatten();
    close(backend).await?;
    let waiting = backlog.map(|q| q.queued_writes).unwrap_or(0);
    match outcome {
        Ok(_) => {
            if let Some(c) = status.last_comparison {
                println!(
                    "Compared every row with {} ({}): {} identical, {} copied here, {} removed here, {} pushed, {} deleted on the primary, {} conflict(s).",
                    redact_url(&primary.url),
                    prepared.policy.as_str(),
                    c.identical,
                    c.copied_here,
                    c.removed_here,
                    c.to_push,
                    c.to_delete_there,
                    c.conflicts
                );
            }
            println!(
                "{} holds {} memories and {} relationships; {waiting} change(s) still wait for the primary.",
                health.database_path, health.memories, health.relationships
            );
            Ok(())
        }
        Err(e) => bail!(
            "the replica was removed, but the sync that compares the rows failed: {e}; the next sync compares them. \
             {waiting} change(s) wait for the primary"
        ),
    }
}

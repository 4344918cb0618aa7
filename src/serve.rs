//! Running the server: open the store, speak MCP on stdio until the client leaves or a
//! signal arrives, then close the database cleanly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rmcp::ServiceExt;

use crate::backend::{
    BackendOptions, LocalCopy, Primary, TursoBackend, copy_to_primary, redact_url,
    resync as backend_resync,
};
use crate::config::Config;
use crate::mcp::transport::line_transport;
use crate::mcp::{MemoryServer, ServerSettings};

pub(crate) async fn open_backend(config: &Config) -> Result<TursoBackend> {
    TursoBackend::open(BackendOptions {
        path: config.database_path.clone(),
        allow_cycles: config.allow_cycles,
        primary: primary_of(config),
        durability: config.durability,
        auto_sync: config.auto_sync,
    })
    .await
    .with_context(|| {
        format!(
            "cannot open the database {} (from {})",
            config.database_path.display(),
            config.path_source
        )
    })
}

/// The primary named by the configuration, in replica mode.
fn primary_of(config: &Config) -> Option<Primary> {
    config.database_url.as_ref().map(|url| Primary {
        url: url.clone(),
        token: config.auth_token.as_ref().map(|t| t.expose().to_string()),
    })
}

/// What the tools need from the configuration: profile, answer size, and the mode with the
/// reason for it, as `health` reports them. The server and the command line build their
/// tools from this one place.
pub(crate) fn server_settings(config: &Config) -> ServerSettings {
    let (mode, mode_reason) = match &config.database_url {
        Some(url) => (
            "replica",
            format!(
                "TURSO_DATABASE_URL is set: an embedded replica of {} in the file from {}",
                redact_url(url),
                config.path_source
            ),
        ),
        None if config.sqlite_backend => (
            "local",
            format!(
                "MEMORY_BACKEND is sqlite, or unset with MEMORY_SQLITE_PATH set as MemoryGraph reads it (a local file; TURSO_DATABASE_URL is not used); database file from {}",
                config.path_source
            ),
        ),
        None => (
            "local",
            format!(
                "TURSO_DATABASE_URL is not set; database file from {}",
                config.path_source
            ),
        ),
    };
    ServerSettings {
        profile: config.profile,
        max_response_chars: config.max_response_chars,
        mode,
        mode_reason,
    }
}

/// Serves MCP on stdin/stdout.
pub async fn run(config: Config) -> Result<()> {
    let backend = Arc::new(open_backend(&config).await?);
    let settings = server_settings(&config);
    tracing::info!(
        path = %config.database_path.display(),
        profile = config.profile.as_str(),
        "memorygraph {} serving MCP on stdio in {} mode ({})",
        env!("CARGO_PKG_VERSION"),
        settings.mode,
        settings.mode_reason
    );
    // With MEMORY_TURSO_AUTO_SYNC=false nothing syncs on its own: no task after writes or
    // every interval (and the backend skips the syncs at start and at shutdown).
    let sync_task = config
        .auto_sync
        .then(|| tokio::spawn(backend.clone().keep_in_sync(Some(config.sync_interval))));
    let server = MemoryServer::new(backend.clone(), settings);
    let (read, write) = rmcp::transport::stdio_pipes();
    let (transport, writer) = line_transport(read, write);
    let running = match server.serve(transport).await {
        Ok(running) => running,
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => {
            // The client left before choosing a lifecycle: a `server/discover` probe (or a
            // ping) and nothing else is a complete session. Its answers are already queued.
            tracing::debug!("the client closed stdin before a session began");
            let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
            if let Some(task) = sync_task {
                task.abort();
                let _ = task.await;
            }
            return close(backend).await;
        }
        Err(e) => return Err(e).context("starting the MCP session"),
    };
    // Semantic recall: the model loads only now, after the handshake, so `initialize` is
    // answered as fast as without it; until it is loaded, recall is lexical.
    let embedding = tokio::spawn(backend.clone().embedding_worker());
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
    embedding.abort();
    let _ = embedding.await;
    if let Some(sync_task) = sync_task {
        sync_task.abort();
        let _ = sync_task.await;
    }
    close(backend).await
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
    let outcome = backend.sync_now(Duration::from_secs(10)).await;
    let queue = backend
        .queue_state(5)
        .await
        .context("reading the offline queue")?;
    let status = backend.sync_status().unwrap_or_default();
    close(backend).await?;
    let (queued, conflicts) = queue.map(|(q, c, _)| (q, c)).unwrap_or((0, 0));
    match outcome {
        Ok(_) => {
            println!(
                "Synced {} with {} in {} ms (frame {}); {} queued write(s) replayed, {queued} still queued, {conflicts} conflict(s) recorded.",
                config.database_path.display(),
                status.primary_url,
                status.last_duration_ms.unwrap_or(0.0),
                status
                    .frame_no
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "none".into()),
                status.replayed_writes
            );
            Ok(())
        }
        Err(_) => bail!(
            "sync with {} failed: {}; {queued} write(s) wait in the offline queue",
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
    println!(
        "Copied {} memories ({} already there) and {} relationships ({} already there) from {} into {}; \
         every memory verified (id checksum {}).",
        report.memories,
        report.memories_already_there,
        report.relationships,
        report.relationships_already_there,
        from.display(),
        redact_url(url),
        report.id_checksum
    );
    let backend = Arc::new(open_backend(&config).await?);
    if !config.auto_sync {
        // Opening did not sync; the new replica needs its first pull to hold anything.
        backend
            .sync_now(Duration::from_secs(10))
            .await
            .context("the first sync of the new replica")?;
    }
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

/// Rebuilds the replica from the primary, keeping the queue, then syncs and reports.
pub async fn resync(config: Config, local: LocalCopy) -> Result<()> {
    let Some(primary) = primary_of(&config) else {
        bail!(
            "nothing to resync: TURSO_DATABASE_URL is not set, so {} is a local database",
            config.database_path.display()
        );
    };
    let reports = backend_resync(&config.database_path, &primary, local)
        .await
        .context("rebuilding the replica")?;
    for r in &reports {
        if let Some(p) = &r.pushed {
            println!(
                "Put {} memories ({} already there) and {} relationships ({} already there) from {} on {}.",
                p.memories,
                p.memories_already_there,
                p.relationships,
                p.relationships_already_there,
                r.slot.display(),
                redact_url(&primary.url)
            );
        }
        match &r.moved_to {
            Some(folder) => println!(
                "Moved the old replica files of {} to {}.",
                r.slot.display(),
                folder.display()
            ),
            None => println!("{} had no replica files to move.", r.slot.display()),
        }
    }
    let backend = Arc::new(open_backend(&config).await?);
    let outcome = backend.sync_now(Duration::from_secs(10)).await;
    let health = backend.health().await.context("reading the new replica")?;
    let queue = backend.queue_state(0).await.ok().flatten();
    close(backend).await?;
    let queued = queue.map(|(q, _, _)| q).unwrap_or(0);
    match outcome {
        Ok(_) => {
            println!(
                "The replica {} was rebuilt from {}: {} memories and {} relationships; {queued} queued write(s) left.",
                health.database_path,
                redact_url(&primary.url),
                health.memories,
                health.relationships
            );
            Ok(())
        }
        Err(e) => bail!(
            "the replica files were moved aside, but the first sync failed: {e}; {queued} write(s) wait in the queue. \
             The next start syncs again"
        ),
    }
}

pub(crate) async fn close(backend: Arc<TursoBackend>) -> Result<()> {
    match Arc::try_unwrap(backend) {
        Ok(backend) => backend.close().await.context("closing the database"),
        Err(_) => {
            tracing::warn!(
                "a request was still running at shutdown; the database closes with the process"
            );
            Ok(())
        }
    }
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

//! Opening the database the configuration names, closing it, and the signal that ends a
//! server: shared by the server, the owner of a database, and the command line.

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::backend::{BackendOptions, Primary, TursoBackend, redact_url};
use crate::config::Config;
use crate::mcp::ServerSettings;

/// Opens the database in the mode the configuration gives (local, or replica of a primary).
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
pub(crate) fn primary_of(config: &Config) -> Option<Primary> {
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
                "TURSO_DATABASE_URL is set: the file from {1} syncs with {0} (through an embedded replica beside it)",
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
        allow_cycles: config.allow_cycles,
        near_duplicates: config.near_duplicates,
        project: crate::model::project::of_working_directory(),
    }
}

/// Closes the database once no request holds it any more.
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

pub(crate) async fn shutdown_signal() -> &'static str {
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

//! The owner's side: the database opened once, and every process that forwards to it
//! served as an MCP session over the socket, with the same tools and answers as stdio.

use std::sync::Arc;

use anyhow::{Context, Result};
use rmcp::ServiceExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::Ownership;
use super::hello::{DatabaseSettings, Hello, admit, database_settings};

/// How long a connecting process has to say hello.
const HELLO_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
use crate::backend::TursoBackend;
use crate::config::Config;
use crate::mcp::transport::line_transport;
use crate::mcp::{MemoryServer, ServerSettings};
use crate::open::{close, open_backend, server_settings};

/// A database this process owns: the backend, its background tasks and the socket.
pub struct Hosted {
    pub backend: Arc<TursoBackend>,
    pub settings: ServerSettings,
    stop: watch::Sender<bool>,
    listener: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    ownership: Ownership,
}

impl Hosted {
    /// Opens the database and listens for the other processes. `embed_now` starts loading
    /// the model at once; a stdio owner starts it after its own handshake instead, so
    /// `initialize` is answered first.
    pub async fn start(
        config: &Config,
        mut ownership: Ownership,
        embed_now: bool,
    ) -> Result<Hosted> {
        let backend = Arc::new(open_backend(config).await?);
        // Before any session can ask: a call that needs the model waits for it from here.
        backend.expect_model();
        let settings = server_settings(config);
        let socket = &ownership.place.socket;
        // Only the lock holder gets here: a socket file left is a dead owner's.
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)
            .with_context(|| format!("listening on {}", socket.display()))?;
        ownership
            .announce(None)
            .with_context(|| format!("writing {}", ownership.place.lock.display()))?;
        let (stop, stopped) = watch::channel(false);
        let own = (database_settings(config), settings.clone());
        let listener = tokio::spawn(accept(listener, backend.clone(), own, stopped));
        // With MEMORY_TURSO_AUTO_SYNC=false nothing syncs on its own.
        let background = config
            .auto_sync
            .then(|| tokio::spawn(backend.clone().keep_in_sync(Some(config.sync_interval))))
            .into_iter()
            .collect();
        let mut hosted = Hosted {
            backend,
            settings,
            stop,
            listener,
            background,
            ownership,
        };
        if embed_now {
            hosted.start_embedding();
        }
        tracing::info!(
            socket = %hosted.ownership.place.socket.display(),
            "this process owns {}; other memorygraph processes on it go through its socket",
            hosted.ownership.place.database.display()
        );
        Ok(hosted)
    }

    /// Loads the model and keeps the vectors up to date, in the background.
    pub fn start_embedding(&mut self) {
        self.background
            .push(tokio::spawn(self.backend.clone().embedding_worker()));
    }

    /// Ends every session, stops the background tasks and closes the database.
    pub async fn shut_down(self) -> Result<()> {
        let _ = self.stop.send(true);
        let _ = self.listener.await;
        for task in self.background {
            task.abort();
            let _ = task.await;
        }
        let _ = std::fs::remove_file(&self.ownership.place.socket);
        let result = close(self.backend).await;
        drop(self.ownership);
        result
    }
}

async fn accept(
    listener: UnixListener,
    backend: Arc<TursoBackend>,
    own: (DatabaseSettings, ServerSettings),
    mut stopped: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    sessions.spawn(session(backend.clone(), own.clone(), stream, stopped.clone()));
                }
                Err(e) => {
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stopped.changed() => break,
        }
    }
    // Each session ends its loop on the same signal; a session stuck in a call is cut.
    let ended = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(2), ended)
        .await
        .is_err()
    {
        sessions.shutdown().await;
    }
}

/// One forwarding process's MCP session, until it disconnects or the owner stops.
async fn session(
    backend: Arc<TursoBackend>,
    own: (DatabaseSettings, ServerSettings),
    stream: UnixStream,
    mut stopped: watch::Receiver<bool>,
) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut first = Vec::new();
    let hello = tokio::time::timeout(HELLO_WAIT, read.read_until(b'\n', &mut first)).await;
    let admitted = match hello {
        Ok(Ok(n)) if n > 0 => serde_json::from_slice::<Hello>(&first)
            .map_err(|e| format!("the first line is not a memorygraph hello: {e}"))
            .and_then(|hello| admit(&own.0, &own.1, &hello)),
        _ => Err("no hello within the wait".to_string()),
    };
    let reply = match &admitted {
        Ok(_) => json!({"memorygraph/welcome": {"pid": std::process::id()}}),
        Err(why) => json!({"memorygraph/refused": why}),
    };
    let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
    let Ok(settings) = admitted else {
        return;
    };
    let server = MemoryServer::new(backend, settings);
    let (transport, writer) = line_transport(read, write);
    let running = tokio::select! {
        running = server.serve(transport) => running,
        _ = stopped.changed() => return,
    };
    match running {
        Ok(running) => {
            let cancel = running.cancellation_token();
            let stop = tokio::spawn(async move {
                let _ = stopped.changed().await;
                cancel.cancel();
            });
            let _ = running.waiting().await;
            stop.abort();
        }
        Err(e) => tracing::debug!("a forwarded session ended before it began: {e}"),
    }
    let _ = writer.await;
}

//! MCP over Streamable HTTP (`memorygraph serve --http`), through rmcp's server transport,
//! for clients that are not local stdio processes: another machine, a container, an editor
//! that speaks HTTP. Secure by default:
//! - every request carries the bearer token ([`token`]), compared in constant time, with
//!   failures slowed down; the header is removed before anything else sees the request;
//! - a browser `Origin` other than this server's own is refused (DNS rebinding), and the
//!   `Host` must be a loopback name unless a wider bind was asked for;
//! - binding anything but loopback needs `--allow-remote`;
//! - bodies, header sizes, sessions and idle sessions are bounded.
//!
//! Every session's calls go to the database's owner ([`crate::owner`]), which may be this
//! process or another. The same server serves the web view at `/` ([`ui`]).

pub mod address;
mod forward;
pub mod guard;
mod tls;
pub mod token;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper1::body::Incoming;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tower_service::Service;

use crate::config::Config;
use crate::owner::client::OwnerCalls;
use crate::owner::link::Takeover;
use forward::Forwarder;
use guard::{Body, Throttle, refuse};

/// The address `serve --http` binds without one given.
pub const DEFAULT_ADDRESS: &str = crate::config::DEFAULT_HTTP_ADDRESS;
/// Where MCP is served.
pub const MCP_PATH: &str = "/mcp";
/// Most MCP sessions open at once.
pub const MAX_SESSIONS: usize = 64;
/// A session without a request for this long is closed.
pub const IDLE_SESSION: Duration = Duration::from_secs(30 * 60);
/// Most bytes of request line and headers.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How `serve --http` was asked to listen.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub address: SocketAddr,
    /// Binding a non-loopback address was asked for explicitly.
    pub allow_remote: bool,
    /// Browser origins allowed besides this server's own.
    pub allowed_origins: Vec<String>,
    /// HTTPS: the certificate chain and private key (PEM files).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Once listening, a one-time login link to the web view is given to this (`memorygraph
    /// ui` prints it and opens a browser on it).
    pub ui_link: Option<fn(&str)>,
}

struct Shared {
    mcp: StreamableHttpService<Forwarder, LocalSessionManager>,
    sessions: Arc<LocalSessionManager>,
    database: std::path::PathBuf,
    port: u16,
    allowed_origins: Vec<String>,
    throttle: Throttle,
    ui: ui::Ui,
}

/// Checks the options against the rules before anything is opened.
pub fn check(options: &HttpOptions, config: &Config) -> Result<()> {
    if !options.address.ip().is_loopback() && !options.allow_remote {
        bail!(
            "{} is not a loopback address: other machines could reach this memory. Bind 127.0.0.1, \
             or pass --allow-remote (every request still needs the token; put HTTPS in front, see docs/clients.md)",
            options.address
        );
    }
    if let Some((cert, key)) = &options.tls {
        tls::acceptor(cert, key)?;
    }
    token::current(&config.database_path).context("preparing the HTTP token")?;
    Ok(())
}

/// Serves MCP over HTTP until `stop` resolves.
pub async fn serve(
    config: Config,
    options: HttpOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    check(&options, &config)?;
    let listener = TcpListener::bind(options.address)
        .await
        .with_context(|| format!("listening on {}", options.address))?;
    let address = listener.local_addr()?;
    let tls = match &options.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let place = crate::owner::Place::of(&config.database_path)?;
    let calls =
        Arc::new(OwnerCalls::open(&config, place, Takeover::Allowed, "memorygraph-http").await?);
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(IDLE_SESSION);
    let sessions = Arc::new(sessions);
    let mut mcp_config = StreamableHttpServerConfig::default();
    if !address.ip().is_loopback() {
        // Clients name this machine as they reach it; the token guards every request.
        mcp_config = mcp_config.disable_allowed_hosts();
    }
    let forwarder = Forwarder {
        calls: calls.clone(),
    };
    let mcp =
        StreamableHttpService::new(move || Ok(forwarder.clone()), sessions.clone(), mcp_config);
    let shared = Arc::new(Shared {
        mcp,
        sessions,
        database: config.database_path.clone(),
        port: address.port(),
        allowed_origins: options.allowed_origins.clone(),
        throttle: Throttle::default(),
        ui: ui::Ui::new(
            &config,
            tls.is_some(),
            address.port(),
            address.ip().is_loopback(),
        ),
    });
    let base = format!("{scheme}://{address}");
    let _recorded = address::record(&config.database_path, &base);
    tracing::info!(
        "serving MCP over HTTP at {scheme}://{address}{MCP_PATH} (token: `memorygraph token show`)"
    );
    eprintln!("memorygraph: MCP over HTTP at {base}{MCP_PATH} (the web view at {base}/)");
    if let Some(give) = options.ui_link {
        give(&format!("{base}{}", shared.ui.new_login_path()));
    }
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting an HTTP connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // An answer goes out in several writes (headers, event chunks): without this, the
        // client's delayed acknowledgement holds the last one back ~40 ms.
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper1::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(shared, peer, request).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http1().max_buf_size(MAX_HEADER_BYTES);
            let served = match tls {
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => {
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Err(e) => {
                        tracing::debug!("TLS handshake with {peer} failed: {e}");
                        return;
                    }
                },
            };
            if let Err(e) = served {
                tracing::debug!("HTTP connection from {peer} ended: {e}");
            }
        });
    }
    drop(shared);
    if let Ok(calls) = Arc::try_unwrap(calls) {
        calls.close().await;
    }
    Ok(())
}

async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Body> {
    let path = request.uri().path();
    if path != MCP_PATH && path != ui::LINK_PATH {
        if ui::is_ui_path(path) {
            return shared.ui.handle(request).await;
        }
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("nothing here: MCP is served at {MCP_PATH}, the web view at /"),
        );
    }
    if !guard::origin_allowed(
        request.headers().get(header::ORIGIN),
        shared.port,
        &shared.allowed_origins,
    ) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this Origin may not call this server (browser pages of other sites are refused; --allow-origin adds one)",
        );
    }
    let token = match token::current(&shared.database) {
        Ok(token) => token,
        Err(e) => {
            tracing::error!("reading the HTTP token failed: {e:#}");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server cannot read its token",
            );
        }
    };
    if !guard::bearer_matches(&request, &token) {
        tokio::time::sleep(shared.throttle.failed(peer.ip())).await;
        return refuse(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required (Authorization: Bearer <token>; `memorygraph token show` prints it)",
        );
    }
    shared.throttle.succeeded(peer.ip());
    if request.uri().path() == ui::LINK_PATH {
        if request.method() != http::Method::POST {
            return refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "ask for a login link with POST",
            );
        }
        return shared.ui.link_answer();
    }
    let mut request = request;
    request.headers_mut().remove(header::AUTHORIZATION);
    let opens_session =
        request.method() == http::Method::POST && !request.headers().contains_key("mcp-session-id");
    if opens_session && shared.sessions.sessions.read().await.len() >= MAX_SESSIONS {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "{MAX_SESSIONS} sessions are open, the most this server keeps; close one (DELETE) or wait until idle ones expire"
            ),
        );
    }
    let request = match guard::bounded_body(request).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let mut mcp = shared.mcp.clone();
    match mcp.call(request).await {
        Ok(response) => response.map(|body| body.boxed()),
        Err(never) => match never {},
    }
}

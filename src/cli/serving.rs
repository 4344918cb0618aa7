//! `serve` with its ways to be reached (stdio, HTTP, neither), and `token` for the HTTP
//! server's bearer token.

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::open;
use crate::serve;

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Also serve MCP over Streamable HTTP at ADDR (default 127.0.0.1:7373), path /mcp.
    /// Every request needs the bearer token (`memorygraph token show`). Without --stdio
    /// nothing is read from stdin.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = crate::config::DEFAULT_HTTP_ADDRESS)]
    pub http: Option<String>,
    /// With --http: serve a stdio client as well.
    #[arg(long, requires = "http")]
    pub stdio: bool,
    /// Serve no client of its own: hold the database for the other windows and commands
    /// (what the service runs), until stopped.
    #[arg(long, conflicts_with_all = ["http", "stdio"])]
    pub no_stdio: bool,
    /// With --http: allow binding an address other than loopback (other machines can then
    /// reach the server; the token is still required).
    #[arg(long, requires = "http")]
    pub allow_remote: bool,
    /// With --http: a browser origin allowed to call besides the server's own (for
    /// example https://app.example); repeatable.
    #[arg(long, value_name = "ORIGIN", requires = "http")]
    pub allow_origin: Vec<String>,
    /// With --http: serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires_all = ["http", "tls_key"])]
    pub tls_cert: Option<std::path::PathBuf>,
    /// With --http: the private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["http", "tls_cert"])]
    pub tls_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print the bearer token HTTP clients send (made on first use, kept in
    /// `<database file>.http-token`, readable by this user only).
    Show,
    /// Replace the token with a new one and print it; the old one stops working at once.
    Rotate,
}

/// What `serve --http`, `--no-stdio`, `token` and `ui` answer where there is no owner's
/// socket (not Unix): each process opens the database itself there.
#[cfg(not(unix))]
pub const UNIX_ONLY: &str = "serving over HTTP, holding the database for others, the HTTP token and the web view need a Unix system in this version";

#[cfg(not(unix))]
pub async fn run(config: Config, args: ServeArgs) -> Result<()> {
    if args.http.is_some() || args.no_stdio {
        return Err(super::UsageError(UNIX_ONLY.into()).into());
    }
    serve::run(config).await
}

#[cfg(unix)]
pub async fn run(config: Config, args: ServeArgs) -> Result<()> {
    let Some(address) = &args.http else {
        if args.no_stdio {
            return hold(config).await;
        }
        return serve::run(config).await;
    };
    let options = crate::http::HttpOptions {
        address: address.parse().map_err(|e| {
            super::UsageError(format!(
                "--http {address:?} is not an address like 127.0.0.1:7373: {e}"
            ))
        })?,
        allow_remote: args.allow_remote,
        allowed_origins: args.allow_origin.clone(),
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        ui_link: None,
    };
    crate::http::check(&options, &config).map_err(|e| super::UsageError(format!("{e:#}")))?;
    if args.stdio {
        let http = tokio::spawn(crate::http::serve(
            config.clone(),
            options,
            std::future::pending(),
        ));
        let stdio = serve::run(config).await;
        http.abort();
        return stdio;
    }
    crate::http::serve(config, options, async {
        let reason = open::shutdown_signal().await;
        tracing::info!("{reason}: shutting down");
    })
    .await
}

#[cfg(unix)]
/// Holds the database for the others until a signal: owns it now, or takes over when the
/// current owner leaves.
async fn hold(config: Config) -> Result<()> {
    let place = crate::owner::Place::of(&config.database_path)?;
    let calls = crate::owner::client::OwnerCalls::open(
        &config,
        place,
        crate::owner::link::Takeover::Allowed,
        "memorygraph-service",
    )
    .await?;
    let reason = open::shutdown_signal().await;
    tracing::info!("{reason}: shutting down");
    calls.close().await;
    Ok(())
}

#[cfg(not(unix))]
pub fn token(_: Config, _: TokenCommand) -> Result<()> {
    Err(super::UsageError(UNIX_ONLY.into()).into())
}

#[cfg(unix)]
pub fn token(config: Config, command: TokenCommand) -> Result<()> {
    let token = match command {
        TokenCommand::Show => crate::http::token::current(&config.database_path),
        TokenCommand::Rotate => crate::http::token::rotate(&config.database_path),
    }
    .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    println!("{token}");
    Ok(())
}

//! `memorygraph ui`: opens the web view in a browser, logged in through a one-time link.
//! When a `serve --http` already runs for the database, it is asked for the link (with the
//! bearer token, which only this user can read); otherwise this command serves the pages
//! itself until it is stopped.

use anyhow::Result;
#[cfg(unix)]
use anyhow::{Context, bail};
#[cfg(unix)]
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;

#[derive(clap::Args, Debug, Default)]
pub struct UiArgs {
    /// Print the login link instead of opening a browser (for scripts and remote shells).
    #[arg(long)]
    pub no_browser: bool,
    /// Where to serve when no server runs for this database yet [default: 127.0.0.1:7373,
    /// or a free port when that one is taken].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
}

#[cfg(not(unix))]
pub async fn run(_: Config, _: UiArgs) -> Result<()> {
    Err(super::UsageError(super::serving::UNIX_ONLY.into()).into())
}

#[cfg(unix)]
pub async fn run(config: Config, args: UiArgs) -> Result<()> {
    let give: fn(&str) = if args.no_browser { print } else { open };
    if let Some(base) = crate::http::address::running(&config.database_path) {
        let token = crate::http::token::current(&config.database_path)?;
        let path = ask_link(&base, &token)
            .await
            .with_context(|| format!("asking the server at {base} for a login link"))?;
        give(&format!("{base}{path}"));
        return Ok(());
    }
    let address = match &args.http {
        Some(address) => address.parse().map_err(|e| {
            super::UsageError(format!(
                "--http {address:?} is not an address like 127.0.0.1:7373: {e}"
            ))
        })?,
        None => free_default(),
    };
    let options = crate::http::HttpOptions {
        address,
        allow_remote: false,
        allowed_origins: Vec::new(),
        tls: None,
        ui_link: Some(give),
    };
    crate::http::check(&options, &config).map_err(|e| super::UsageError(format!("{e:#}")))?;
    eprintln!("memorygraph: serving the web view until this command is stopped (Ctrl-C)");
    crate::http::serve(config, options, async {
        let reason = crate::open::shutdown_signal().await;
        tracing::info!("{reason}: shutting down");
    })
    .await
}

#[cfg(unix)]
/// The default address, or a free loopback port when something else holds it.
fn free_default() -> std::net::SocketAddr {
    let default: std::net::SocketAddr = crate::http::DEFAULT_ADDRESS.parse().expect("an address");
    match std::net::TcpListener::bind(default) {
        Ok(_) => default,
        Err(_) => "127.0.0.1:0".parse().expect("an address"),
    }
}

#[cfg(unix)]
fn print(url: &str) {
    println!("{url}");
}

#[cfg(unix)]
/// Opens the default browser on the link; prints it when no browser can be started.
fn open(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let started = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match started {
        Ok(_) => eprintln!("memorygraph: opened the web view in your browser"),
        Err(e) => {
            eprintln!("memorygraph: could not start a browser ({opener}: {e}); open this link:");
            println!("{url}");
        }
    }
}

#[cfg(unix)]
/// `POST /ui/link` on a running plain-HTTP server; the login path it answers.
async fn ask_link(base: &str, token: &str) -> Result<String> {
    let Some(host) = base.strip_prefix("http://") else {
        bail!(
            "it serves HTTPS; open {base}/ and log in with a link from `memorygraph ui` run where no server runs, or stop that server"
        );
    };
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        crate::http::ui::LINK_PATH
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if !head.starts_with("HTTP/1.1 200") {
        bail!("it answered {}", head.lines().next().unwrap_or("nothing"));
    }
    let body: serde_json::Value = serde_json::from_str(body).context("reading its answer")?;
    body["path"]
        .as_str()
        .map(str::to_string)
        .context("its answer holds no link")
}

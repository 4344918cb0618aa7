//! memorygraph: long-term memory for AI assistants, as an MCP server over stdio.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use memorygraph::config::{Config, Settings};
use memorygraph::serve;

#[derive(Debug, Parser)]
#[command(name = "memorygraph", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    settings: Settings,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the MCP server on stdin/stdout (the default).
    Serve,
    /// Rebuild the full-text search index from the stored memories.
    Reindex,
    /// Replica mode: replay queued writes and pull from the primary now, then report.
    Sync,
    /// Copy a local database file into the primary named by TURSO_DATABASE_URL, verify
    /// the copy, and create a fresh replica at MEMORY_TURSO_PATH. The local file is only
    /// read. Running it again skips what the primary already has.
    Migrate {
        /// Move from a local file to replica mode (the one direction that needs copying;
        /// a replica file opens in local mode as it is).
        #[arg(long)]
        to_replica: bool,
        /// The local database file to copy.
        #[arg(long, value_name = "FILE")]
        from: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from);
    let config = match Config::from_settings(&cli.settings, home.as_deref())
        .and_then(|c| c.prepare_database_folder().map(|()| c))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("memorygraph: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.log_level);
    // One thread: requests are short and the database is one connection, so a second
    // thread would only add hand-offs between threads to every request.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("memorygraph: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve::run(config).await,
            Command::Reindex => serve::reindex(config).await,
            Command::Sync => serve::sync(config).await,
            Command::Migrate { to_replica, from } => {
                serve::migrate(config, to_replica, &from).await
            }
        }
    });
    // A blocked read of stdin must not keep the process alive once we are done.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memorygraph: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr only: stdout carries JSON-RPC. Libraries speak at `warn` (libsql's
/// chatty timing warnings only from `debug` on), never louder than our own level.
fn init_logging(level: &str) {
    let libraries = match level {
        "off" | "error" => level,
        "debug" | "trace" => "warn",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "{},rmcp={},memorygraph={level}",
        libraries,
        if level == "off" || level == "error" {
            level
        } else {
            "warn"
        }
    ));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}

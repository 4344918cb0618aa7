//! The command line: `serve` (the default) for MCP clients, and commands for people and
//! scripts that read and write the same memory from a shell.
//!
//! Data flows one way: a command calls a tool in-process (so answers and checks are the
//! tools' own) or the backend, never SQL. Human-readable output by default, `--json` for
//! scripts. Exit codes: 0 success, 1 the command failed (not found, refused, database
//! error), 2 the command line or configuration is wrong.

mod conflicts;
mod consolidate;
mod exchange;
mod model;
mod progress;
mod service;
mod serving;
mod tools;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Settings};
use crate::serve;

/// Whether a server owns the configured database (its commands then go through it).
#[cfg(unix)]
fn owner_running(config: &Config) -> bool {
    crate::owner::Place::of(&config.database_path)
        .ok()
        .and_then(|place| crate::owner::running_owner(&place))
        .is_some()
}

#[cfg(not(unix))]
fn owner_running(_: &Config) -> bool {
    false
}

/// Shown under `--help`: what scripts may rely on.
const EXIT_CODES: &str = "Exit codes: 0 success; 1 the command failed (a memory not found, a refused write, \
a database or network error); 2 wrong usage or configuration (unknown flag, bad value, invalid setting).";

#[derive(Debug, Parser)]
#[command(name = "memorygraph", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    settings: Settings,

    /// Print the answer as JSON (the structured answer the matching MCP tool returns).
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the MCP server on stdin/stdout (the default); with --http, over Streamable
    /// HTTP. The first server on a database owns it; later ones, and commands, go through it.
    Serve(serving::ServeArgs),
    /// Store a memory (what the store_memory tool does).
    Store(tools::StoreArgs),
    /// Show one memory in full, with its relationships (get_memory).
    Get(tools::GetArgs),
    /// Find memories by words and filters, most relevant first (search_memories).
    Search(tools::SearchArgs),
    /// Recall memories for a question: relevance blended with importance and recency
    /// (recall_memories).
    Recall(tools::RecallArgs),
    /// Memories linked to one memory, nearest first (get_related_memories).
    Related(tools::RelatedArgs),
    /// Counts of memories and relationships by type (get_memory_statistics).
    Stats,
    /// The database's state: mode, file, counts, schema, sync (health).
    Health,
    /// Replica mode: push this machine's changes and copy the other devices' now, then
    /// report.
    Sync,
    /// Write every memory and relationship to a file: MemoryGraph's JSON export, Markdown
    /// (one file per memory) or a picture of the graph (Graphviz DOT, Mermaid).
    Export(exchange::ExportArgs),
    /// Read memories and relationships from MemoryGraph's JSON export or the reference
    /// memory server's JSON Lines file. All or nothing: a failed import writes nothing.
    Import(exchange::ImportArgs),
    /// Copy a local database file into the primary named by TURSO_DATABASE_URL, verify
    /// the copy, then sync the database file (MEMORY_TURSO_PATH). The local file is only
    /// read. Running it again skips what the primary already has.
    Migrate {
        /// Move from a local file to replica mode (a replica's database file opens in
        /// local mode as it is).
        #[arg(long)]
        to_replica: bool,
        /// The local database file to copy.
        #[arg(long, value_name = "FILE")]
        from: std::path::PathBuf,
    },
    /// Rebuild the full-text search index from the stored memories; with --embeddings,
    /// give every memory without a vector its vector (semantic recall).
    Reindex {
        /// Embed every memory that has no vector yet, with a progress bar, instead of
        /// rebuilding the full-text index.
        #[arg(long)]
        embeddings: bool,
    },
    /// The model for semantic recall (all-MiniLM-L6-v2): install it, or see its state.
    #[command(subcommand)]
    Model(ModelCommand),
    /// The server as a service of the user's session (a systemd user unit on Linux, a
    /// launchd agent on macOS): it owns the database from login on, and every window and
    /// command forwards to it.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Remove what earlier versions left beside the database file and this one no longer
    /// uses: the folders an old `resync` moved replicas into (`<file>.before-resync-*`).
    Cleanup,
    /// Report what could be merged, retired or mended, without an LLM: groups of
    /// near-duplicates, chains of versions, old memories never used, relationships whose
    /// ends are gone. With --apply, merges, archives or removes them after writing a backup
    /// that --undo puts back.
    Consolidate(consolidate::ConsolidateArgs),
    /// Replica mode: the rows that could not be synced as they were (conflicts, set-aside
    /// writes): list them, retry or discard each, or clear the log.
    #[command(subcommand)]
    Conflicts(conflicts::ConflictsCommand),
    /// The bearer token of `serve --http`: show it, or rotate it.
    #[command(subcommand)]
    Token(serving::TokenCommand),
    /// Open the web view in a browser, logged in through a one-time link: find, read, mend
    /// and see the memory. Asks the running `serve --http` for the link, or serves the
    /// pages itself until stopped.
    Ui(ui::UiArgs),
    /// Replica mode: remove the replica (a copy of the primary, for a damaged one or a
    /// primary that was reset, replaced or restored) and compare every row of the database
    /// file with the primary at once. Changes made here since the last push are kept.
    Resync {
        /// The primary's history no longer matches: this file wins, its deletes included;
        /// rows the primary got after this file's last sync are kept.
        #[arg(long, conflicts_with = "discard_local")]
        push_local: bool,
        /// The primary's history no longer matches: the primary wins, changes made here
        /// are dropped.
        #[arg(long)]
        discard_local: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Put the model's weights and tokenizer in the data folder (beside the database) and
    /// record the model in the database. Downloads from the model's hub over HTTPS unless
    /// --from names a local copy; the weights' SHA-256 is checked either way.
    Install(model::InstallArgs),
    /// Whether semantic recall is on, and how many memories have a vector.
    Status,
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Write the service, running this binary's `serve --no-stdio` with the settings in
    /// effect here, and start it now and at every login (where the service manager cannot be
    /// reached: print the command that starts it).
    Install(service::InstallArgs),
    /// Stop the service and remove its files; says so when there is nothing to remove.
    Uninstall,
    /// Whether the service is installed and running, and which process owns the database.
    Status,
}

/// A mistake on the command line found after parsing; exits with code 2 like clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses the command line, runs the command, and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = crate::config::home_folder(|name| std::env::var_os(name));
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
    let json = cli.json;
    let command = cli.command.unwrap_or(Command::Serve(Default::default()));
    let result = runtime.block_on(run(command, &cli.settings, config, json));
    // A blocked read of stdin must not keep the process alive once we are done.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<UsageError>().is_some() => {
            eprintln!("memorygraph: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("memorygraph: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    command: Command,
    settings: &Settings,
    config: Config,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serving::run(config, args).await,
        Command::Token(command) => serving::token(config, command),
        Command::Ui(args) => ui::run(config, args).await,
        Command::Store(args) => tools::store(config, args, json).await,
        Command::Get(args) => tools::get(config, args, json).await,
        Command::Search(args) => tools::search(config, args, json).await,
        Command::Recall(args) => tools::recall(config, args, json).await,
        Command::Related(args) => tools::related(config, args, json).await,
        Command::Stats => tools::simple(config, "get_memory_statistics", json).await,
        Command::Health => tools::simple(config, "health", json).await,
        Command::Sync if json || owner_running(&config) => tools::sync_tool(config, json).await,
        Command::Sync => serve::sync(config).await,
        Command::Conflicts(command) => conflicts::run(config, command, json).await,
        Command::Consolidate(args) => consolidate::run(config, args, json).await,
        Command::Cleanup => {
            let removed = crate::backend::remove_moved_aside(&config.database_path)?;
            if json {
                let list: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
                println!("{}", serde_json::json!({ "removed": list }));
            } else if removed.is_empty() {
                println!(
                    "Nothing to remove beside {}.",
                    config.database_path.display()
                );
            } else {
                for folder in &removed {
                    println!("Removed {}", folder.display());
                }
            }
            Ok(())
        }
        Command::Export(args) => exchange::export(config, args, json).await,
        Command::Import(args) => exchange::import(config, args, json).await,
        Command::Migrate { to_replica, from } => {
            check_migrate(&config, to_replica, &from)?;
            let spinner = progress::spinner("copying into the primary");
            let done = serve::migrate(config, &from).await;
            spinner.finish_and_clear();
            done
        }
        Command::Resync {
            push_local,
            discard_local,
        } => {
            let local = match (push_local, discard_local) {
                (true, _) => crate::backend::LocalCopy::Push,
                (_, true) => crate::backend::LocalCopy::Discard,
                _ => crate::backend::LocalCopy::Rebuild,
            };
            let spinner = progress::spinner("rebuilding the replica");
            let done = serve::resync(config, local).await;
            spinner.finish_and_clear();
            done
        }
        Command::Model(ModelCommand::Install(args)) => model::install(config, args).await,
        Command::Model(ModelCommand::Status) => model::status(config, json).await,
        Command::Service(command) => service::run(command, settings, config, json).await,
        Command::Reindex { embeddings: true } => model::reindex_embeddings(config).await,
        Command::Reindex { embeddings: false } => {
            let spinner = progress::spinner("rebuilding the full-text index");
            let done = serve::reindex(config).await;
            spinner.finish_and_clear();
            done
        }
    }
}

/// What `migrate` needs before it copies anything: a direction, a primary, and a replica
/// file other than the one it reads. Each missing piece is a mistake of usage (exit 2).
fn check_migrate(config: &Config, to_replica: bool, from: &std::path::Path) -> anyhow::Result<()> {
    if !to_replica {
        return Err(UsageError(
            "migrate needs --to-replica, the one direction there is (a replica file opens in local mode as it is): \
             `memorygraph migrate --to-replica --from FILE`"
                .into(),
        )
        .into());
    }
    if config.database_url.is_none() {
        let why = if config.sqlite_backend {
            "MEMORY_BACKEND is sqlite, which keeps to a local file: unset it and set TURSO_DATABASE_URL (--database-url)"
        } else {
            "set TURSO_DATABASE_URL (--database-url)"
        };
        return Err(UsageError(format!(
            "migrate --to-replica needs the primary to copy into: {why}"
        ))
        .into());
    }
    let same_file = match (from.canonicalize(), config.database_path.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same_file {
        return Err(UsageError(format!(
            "{} is both the file to copy and the database file (from {}), where the replica goes; \
             move the local file aside (or set MEMORY_TURSO_PATH to a new file) and pass the old one with --from",
            from.display(),
            config.path_source
        ))
        .into());
    }
    Ok(())
}

/// Logs go to stderr only: stdout carries JSON-RPC. Libraries speak at `warn` (libsql's
/// chatty timing warnings only from `debug` on), never louder than our own level.
fn init_logging(level: &str) {
    // `trace` is everything, the libraries' own traces included (HTTP, MCP, libsql); the
    // other levels keep the libraries quiet.
    let libraries = match level {
        "off" | "error" | "trace" => level,
        "debug" => "warn",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "{},rmcp={},memorygraph={level}",
        libraries,
        match level {
            "off" | "error" | "trace" => level,
            _ => "warn",
        }
    ));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}

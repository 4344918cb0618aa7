//! `memorygraph conflicts`: the rows replica mode could not sync as they were — conflicts
//! (the primary's version was kept) and set-aside writes (refused for good) — listed, and
//! settled by the user: retry this machine's version, discard it, or clear the log.

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::backend::Which;
use crate::config::Config;
use crate::open::{close, open_backend};

#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// The conflicts and set-aside writes, newest first, with both versions.
    List,
    /// Put this machine's version back, to be pushed at the next sync: a conflict's then
    /// replaces the primary's version; a set-aside write is tried again.
    Retry(Chosen),
    /// Keep the primary's version: a set-aside write's row is copied from the primary at
    /// the next sync. The entry goes.
    Discard(Chosen),
    /// Forget entries without acting on them [entries older than 90 days go by themselves].
    Clear {
        /// Only entries older than this many days.
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u32>,
    },
}

#[derive(Debug, Args)]
pub struct Chosen {
    /// The entry's number (`seq` in `conflicts list`).
    #[arg(
        value_name = "SEQ",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    seq: Option<i64>,
    /// Every entry.
    #[arg(long)]
    all: bool,
}

impl Chosen {
    fn which(&self) -> Which {
        match self.seq {
            Some(seq) if !self.all => Which::One(seq),
            _ => Which::All,
        }
    }
}

pub async fn run(config: Config, command: ConflictsCommand, json: bool) -> Result<()> {
    let backend = Arc::new(open_backend(&config).await?);
    let outcome = act(&backend, command, json).await;
    close(backend).await?;
    outcome
}

async fn act(
    backend: &crate::backend::TursoBackend,
    command: ConflictsCommand,
    json: bool,
) -> Result<()> {
    let (did, n) = match command {
        ConflictsCommand::List => {
            let issues = backend.sync_issues(u32::MAX).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&issues)?);
                return Ok(());
            }
            if issues.is_empty() {
                println!("No conflicts and no set-aside writes.");
            }
            for i in &issues {
                println!(
                    "{} {:?} {} {} ({}): {}",
                    i.seq, i.issue, i.kind, i.row_id, i.detected_at, i.reason
                );
                if let Some(v) = &i.local_version {
                    println!("  here:    {v}");
                }
                if let Some(v) = &i.primary_version {
                    println!("  primary: {v}");
                }
            }
            return Ok(());
        }
        ConflictsCommand::Retry(c) => (
            "put back to be pushed at the next sync",
            backend.retry_issues(c.which()).await.context("retrying")?,
        ),
        ConflictsCommand::Discard(c) => (
            "settled in favour of the primary's version",
            backend
                .discard_issues(c.which())
                .await
                .context("discarding")?,
        ),
        ConflictsCommand::Clear { older_than } => (
            "forgotten",
            backend
                .clear_issues(older_than.map(i64::from))
                .await
                .context("clearing")?,
        ),
    };
    if json {
        println!("{}", serde_json::json!({ "entries": n }));
    } else {
        println!("{n} entr{} {did}.", if n == 1 { "y" } else { "ies" });
    }
    Ok(())
}

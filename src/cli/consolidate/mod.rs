//! `consolidate`: what could be merged, retired or mended, without an LLM (see
//! `backend::consolidate`). Without `--apply` it reads only and prints the report; with
//! it, it acts on the parts named after writing a backup; `--undo` puts things back from
//! that backup.

mod apply;
mod report;
mod undo;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use super::UsageError;
use crate::config::Config;
use crate::open::{close, open_backend};

#[derive(Debug, Args)]
pub struct ConsolidateArgs {
    /// A memory counts as unused when it is older than this many days, has never been read
    /// or recalled, and its importance is at most --max-importance.
    #[arg(long, value_name = "N", default_value_t = 90)]
    days: u32,
    /// The highest importance an unused memory may have, 0–1.
    #[arg(long, value_name = "X", default_value_t = 0.3, value_parser = unit_interval)]
    max_importance: f64,
    /// Act on these parts of the report, after writing a backup of everything they change:
    /// merge each group of near-duplicates into one new memory that replaces the others,
    /// archive the unused memories (kept in the backup, removed from the database), remove
    /// the dangling relationships. Repeat or separate with commas.
    #[arg(long, value_name = "PART", value_enum, value_delimiter = ',')]
    apply: Vec<Part>,
    /// With --apply near-duplicates: merge only these groups, by the number the report
    /// prints. Repeat or separate with commas.
    #[arg(long, value_name = "N", value_delimiter = ',', requires = "apply",
          value_parser = clap::value_parser!(u32).range(1..))]
    group: Vec<u32>,
    /// Where --apply writes its backup, which must not exist yet (mode 0600) [default:
    /// <database file>.consolidate-<time>.json]
    #[arg(long, value_name = "FILE", requires = "apply")]
    backup: Option<PathBuf>,
    /// Undo an apply from the backup it wrote: remove the memories it merged into, put back
    /// what it archived or removed.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["apply", "days", "max_importance"])]
    undo: Option<PathBuf>,
    /// With --apply or --undo: say what would be done, then change nothing and write no
    /// backup.
    #[arg(long)]
    dry_run: bool,
}

/// A part of the report that `--apply` acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// Merge each group into one new memory that replaces the others.
    NearDuplicates,
    /// Archive: keep them in the backup, remove them and their relationships.
    Unused,
    /// Remove the relationships whose ends are gone.
    Dangling,
}

fn unit_interval(raw: &str) -> std::result::Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{raw:?} is not a number from 0 to 1")),
    }
}

pub async fn run(config: Config, a: ConsolidateArgs, json: bool) -> Result<()> {
    if let Some(file) = &a.undo {
        return undo::run(config, file, a.dry_run, json).await;
    }
    if !a.apply.is_empty() {
        return apply::run(config, &a, json).await;
    }
    if a.dry_run {
        return Err(UsageError(
            "--dry-run shows what --apply or --undo would do; without them consolidate only reports".into(),
        )
        .into());
    }
    let backend = Arc::new(open_backend(&config).await?);
    let report = backend.consolidation(a.days, a.max_importance).await;
    close(backend).await?;
    let report = report.context("reading the database")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::text(&report, a.days, a.max_importance));
    }
    Ok(())
}

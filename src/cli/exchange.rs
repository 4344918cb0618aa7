//! `export` and `import`: files in and out, with progress on a terminal. The formats are
//! in `crate::exchange`; the reading and writing in the backend.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::UsageError;
use super::progress;
use crate::backend::{ImportOptions, ImportReport};
use crate::config::Config;
use crate::exchange::files::{self, ExportFormat, ImportFormat, write_private};
use crate::exchange::{self, ParsedFile, picture};
use crate::model::{limits, now_iso};
use crate::open;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to write.
    #[arg(long, value_enum, default_value = "json")]
    format: ExportFormat,
    /// The file to write (a folder for markdown); standard output when left out.
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Pictures only: draw only the memories of this project.
    #[arg(long, value_name = "PATH")]
    project: Option<String>,
    /// Pictures only: draw only the memories with this tag.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Pictures only: draw only this memory and its neighbourhood (see --depth).
    #[arg(long, value_name = "ID")]
    around: Option<String>,
    /// With --around: how many hops around the memory to draw, 1–5.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        requires = "around",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(limits::MAX_DEPTH))
    )]
    depth: u32,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to read.
    #[arg(long, short, value_name = "FILE")]
    input: PathBuf,
    /// The file's format; guessed from its content when left out.
    #[arg(long, value_enum)]
    format: Option<ImportFormat>,
    /// Keep memories (and relationships) whose id is already in the database and import
    /// the rest. Without it, an id already there stops the import and nothing is written.
    #[arg(long)]
    skip_duplicates: bool,
    /// Check the file and count what would be imported, then write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Import memories and relationships whose text looks like a secret (a private key, an
    /// access key, a token). Without it such a file is refused and nothing is written.
    #[arg(long)]
    allow_secrets: bool,
}

pub async fn export(config: Config, a: ExportArgs, json: bool) -> Result<()> {
    let picture_only = a.project.is_some() || a.tag.is_some() || a.around.is_some();
    let is_picture = matches!(a.format, ExportFormat::Dot | ExportFormat::Mermaid);
    if picture_only && !is_picture {
        return Err(UsageError(
            "--project, --tag and --around choose what a picture shows: use them with --format dot or mermaid"
                .into(),
        )
        .into());
    }
    if a.format == ExportFormat::Markdown && a.output.is_none() {
        return Err(UsageError("--format markdown needs --output FOLDER".into()).into());
    }
    let backend = Arc::new(open::open_backend(&config).await?);
    let reading = progress::spinner("reading the database");
    let everything = backend.read_everything().await;
    reading.finish_and_clear();
    open::close(backend).await?;
    let everything = everything.context("reading the database")?;
    let (memories, relationships) = match a.format {
        ExportFormat::Json => {
            let bar = progress::bar(1, "writing JSON");
            let (text, memories, relationships) =
                files::one_file(&everything, a.format, &now_iso())?;
            write_output(a.output.as_deref(), &text)?;
            bar.finish_and_clear();
            (memories, relationships)
        }
        ExportFormat::Markdown => {
            let dir = a.output.as_deref().expect("checked above");
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the folder {}", dir.display()))?;
            let files = exchange::markdown::render(&everything);
            let bar = progress::bar(files.len() as u64, "writing Markdown");
            for file in &files {
                let path = dir.join(&file.name);
                write_private(&path, &file.text)?;
                bar.inc(1);
            }
            bar.finish_and_clear();
            let current = everything
                .relationships
                .iter()
                .filter(|r| r.is_current())
                .count();
            (files.len(), current)
        }
        ExportFormat::Dot | ExportFormat::Mermaid => {
            let selection = picture::Selection {
                project: a.project,
                tag: a.tag,
                around: a.around.map(|id| (id, a.depth)),
            };
            let (text, memories, relationships) =
                files::drawing(&everything, &selection, a.format)?;
            write_output(a.output.as_deref(), &text)?;
            (memories, relationships)
        }
    };
    let format = a.format.name();
    match (&a.output, json) {
        (Some(path), true) => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "format": format,
                "output": path,
                "memories": memories,
                "relationships": relationships,
            }))?
        ),
        (Some(path), false) => println!(
            "Exported {memories} memories and {relationships} relationships as {format} to {}",
            path.display()
        ),
        // The data went to standard output; the summary must not mix with it.
        (None, _) => eprintln!(
            "memorygraph: exported {memories} memories and {relationships} relationships as {format}"
        ),
    }
    Ok(())
}

fn write_output(path: Option<&Path>, text: &str) -> Result<()> {
    match path {
        Some(path) if path != Path::new("-") => write_private(path, text),
        _ => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("writing to standard output")
        }
    }
}

pub async fn import(config: Config, a: ImportArgs, json: bool) -> Result<()> {
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let parsed: ParsedFile =
        files::parse(&text, a.format).with_context(|| format!("reading {}", a.input.display()))?;
    if !a.allow_secrets {
        files::refuse_secrets(&parsed.batch, "pass --allow-secrets")
            .with_context(|| format!("importing {}", a.input.display()))?;
    }
    let total = (parsed.batch.memories.len() + parsed.batch.relationships.len()) as u64;
    let backend = Arc::new(open::open_backend(&config).await?);
    let bar = progress::bar(total, if a.dry_run { "checking" } else { "importing" });
    let outcome = backend
        .import(
            &parsed.batch,
            ImportOptions {
                skip_duplicates: a.skip_duplicates,
                dry_run: a.dry_run,
            },
            &|done| bar.set_position(done),
        )
        .await;
    bar.finish_and_clear();
    open::close(backend).await?;
    let mut report: ImportReport =
        outcome.with_context(|| format!("importing {}", a.input.display()))?;
    files::count_dangling(&mut report, parsed.dangling);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let verb = if report.dry_run {
        "Would import"
    } else {
        "Imported"
    };
    println!(
        "{verb} {} memories and {} relationships from {}.",
        report.memories_imported,
        report.relationships_imported,
        a.input.display()
    );
    if report.memories_skipped + report.relationships_skipped_existing > 0 {
        println!(
            "Already there, kept as they were: {} memories, {} relationships.",
            report.memories_skipped, report.relationships_skipped_existing
        );
    }
    if report.relationships_skipped_missing_endpoint > 0 {
        println!(
            "Left out {} relationship(s) whose end is not a memory:",
            report.relationships_skipped_missing_endpoint
        );
        for d in &report.missing_endpoints {
            println!("  {d}");
        }
    }
    if report.dry_run {
        println!("Dry run: nothing was written.");
    }
    Ok(())
}

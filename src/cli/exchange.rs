//! `export` and `import`: files in and out, with progress on a terminal. The formats are
//! in `crate::exchange`; the reading and writing in the backend.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::UsageError;
use super::progress;
use crate::backend::{ImportOptions, ImportReport};
use crate::config::Config;
use crate::exchange::{self, ParsedFile, picture};
use crate::model::{limits, now_iso};
use crate::serve;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// MemoryGraph's JSON export (format_version 2.0) with our extra fields.
    Json,
    /// One Markdown file per memory, into the folder given by --output.
    Markdown,
    /// A Graphviz DOT picture of the graph.
    Dot,
    /// A Mermaid flowchart of the graph.
    Mermaid,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// MemoryGraph's JSON export (ours or MemoryGraph's own).
    Json,
    /// The reference MCP memory server's knowledge graph (JSON Lines).
    Jsonl,
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
    let backend = Arc::new(serve::open_backend(&config).await?);
    let reading = progress::spinner("reading the database");
    let everything = backend.read_everything().await;
    reading.finish_and_clear();
    serve::close(backend).await?;
    let everything = everything.context("reading the database")?;
    let (memories, relationships) = match a.format {
        ExportFormat::Json => {
            let bar = progress::bar(1, "writing JSON");
            let doc = exchange::json::export(&everything, &now_iso());
            let mut text = serde_json::to_string_pretty(&doc)?;
            text.push('\n');
            write_output(a.output.as_deref(), &text)?;
            bar.finish_and_clear();
            (everything.memories.len(), everything.relationships.len())
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
            let picture = picture::select(&everything, &selection)?;
            let text = if a.format == ExportFormat::Dot {
                exchange::dot::render(&picture)
            } else {
                exchange::mermaid::render(&picture)
            };
            write_output(a.output.as_deref(), &text)?;
            (picture.memories.len(), picture.relationships.len())
        }
    };
    let format = a
        .format
        .to_possible_value()
        .expect("no skipped formats")
        .get_name()
        .to_string();
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

/// Refuses a file holding text that looks like a secret, as store_memory does, naming the
/// memory or relationship and the field, never the secret.
fn refuse_secrets(batch: &crate::backend::ImportBatch) -> Result<()> {
    for m in &batch.memories {
        m.memory.refuse_secrets().map_err(|e| {
            anyhow::anyhow!(
                "memory {}: {e}. Nothing was imported; pass --allow-secrets to import it anyway",
                crate::model::shorten(&m.id)
            )
        })?;
    }
    for r in &batch.relationships {
        let texts = r.context.iter().map(|c| ("context", c.as_str()));
        crate::model::refuse_secrets(texts).map_err(|e| {
            anyhow::anyhow!(
                "the relationship {} -[{}]-> {}: {e}. Nothing was imported; pass --allow-secrets to import it anyway",
                crate::model::shorten(&r.from_id),
                r.rel_type,
                crate::model::shorten(&r.to_id)
            )
        })?;
    }
    Ok(())
}

/// Writes an export file so that it is never seen half-written and is readable by its
/// owner only: a private temporary file next to it, flushed to disk, then renamed over it.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| -> std::io::Result<()> {
        let mut file = options.open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)?;
        // The rename itself reaches the disk with the folder.
        if let Ok(folder) = std::fs::File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.with_context(|| format!("writing {}", path.display()))
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

/// The reference server's lines start with `{"type":"entity"` or `{"type":"relation"`;
/// an export is one JSON object.
fn guess_format(text: &str) -> ImportFormat {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    match serde_json::from_str::<serde_json::Value>(first) {
        Ok(v)
            if matches!(
                v.get("type").and_then(|t| t.as_str()),
                Some("entity" | "relation")
            ) =>
        {
            ImportFormat::Jsonl
        }
        _ => ImportFormat::Json,
    }
}

pub async fn import(config: Config, a: ImportArgs, json: bool) -> Result<()> {
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let format = a.format.unwrap_or_else(|| guess_format(&text));
    let parsed: ParsedFile = match format {
        ImportFormat::Json => exchange::json::parse(&text),
        ImportFormat::Jsonl => exchange::jsonl::parse(&text),
    }
    .with_context(|| format!("reading {}", a.input.display()))?;
    if !a.allow_secrets {
        refuse_secrets(&parsed.batch)
            .with_context(|| format!("importing {}", a.input.display()))?;
    }
    let total = (parsed.batch.memories.len() + parsed.batch.relationships.len()) as u64;
    let backend = Arc::new(serve::open_backend(&config).await?);
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
    serve::close(backend).await?;
    let mut report: ImportReport =
        outcome.with_context(|| format!("importing {}", a.input.display()))?;
    report.relationships_skipped_missing_endpoint += parsed.dangling.len() as u64;
    for d in parsed.dangling {
        if report.missing_endpoints.len() < 10 {
            report.missing_endpoints.push(d);
        }
    }
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

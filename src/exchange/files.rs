//! Whole files in and out, the same for the command line and the web view: the formats,
//! reading a file for import (guessing its format, refusing secrets), rendering an export
//! as one file, and writing a file no one else can read.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use super::{ParsedFile, json, jsonl, markdown, picture};
use crate::backend::{Everything, ImportBatch, ImportReport};

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

impl ExportFormat {
    /// The format's name, as the command line and the web view spell it.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Markdown => "markdown",
            ExportFormat::Dot => "dot",
            ExportFormat::Mermaid => "mermaid",
        }
    }

    /// The format named `name`, or a sentence listing the formats.
    pub fn named(name: &str) -> Result<ExportFormat> {
        ExportFormat::from_str(name, true)
            .map_err(|_| anyhow::anyhow!("the export formats are json, markdown, dot and mermaid"))
    }

    /// A file name for a whole export in this format.
    pub fn file_name(self) -> &'static str {
        match self {
            ExportFormat::Json => "memories.json",
            ExportFormat::Markdown => "memories.md",
            ExportFormat::Dot => "memories.dot",
            ExportFormat::Mermaid => "memories.mmd",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// MemoryGraph's JSON export (ours or MemoryGraph's own).
    Json,
    /// The reference MCP memory server's knowledge graph (JSON Lines).
    Jsonl,
}

impl ImportFormat {
    /// The format named `name`, or a sentence listing the formats.
    pub fn named(name: &str) -> Result<ImportFormat> {
        ImportFormat::from_str(name, true)
            .map_err(|_| anyhow::anyhow!("the import formats are json and jsonl"))
    }
}

/// The reference server's lines start with `{"type":"entity"` or `{"type":"relation"`;
/// an export is one JSON object.
pub fn guess_format(text: &str) -> ImportFormat {
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

/// Reads a file for import, in `format` or the one its content shows.
pub fn parse(text: &str, format: Option<ImportFormat>) -> Result<ParsedFile> {
    match format.unwrap_or_else(|| guess_format(text)) {
        ImportFormat::Json => json::parse(text),
        ImportFormat::Jsonl => jsonl::parse(text),
    }
}

/// Adds to an import's report the relationships the file reader left out because an end
/// is not in the file (at most ten described).
pub fn count_dangling(report: &mut ImportReport, dangling: Vec<String>) {
    report.relationships_skipped_missing_endpoint += dangling.len() as u64;
    for d in dangling {
        if report.missing_endpoints.len() < 10 {
            report.missing_endpoints.push(d);
        }
    }
}

/// Refuses a file holding text that looks like a secret, as store_memory does, naming the
/// memory or relationship and the field, never the secret; `allow` says how to import it
/// anyway.
pub fn refuse_secrets(batch: &ImportBatch, allow: &str) -> Result<()> {
    for m in &batch.memories {
        m.memory.refuse_secrets().map_err(|e| {
            anyhow::anyhow!(
                "memory {}: {e}. Nothing was imported; {allow} to import it anyway",
                crate::model::shorten(&m.id)
            )
        })?;
    }
    for r in &batch.relationships {
        let texts = r.context.iter().map(|c| ("context", c.as_str()));
        crate::model::refuse_secrets(texts).map_err(|e| {
            anyhow::anyhow!(
                "the relationship {} -[{}]-> {}: {e}. Nothing was imported; {allow} to import it anyway",
                crate::model::shorten(&r.from_id),
                r.rel_type,
                crate::model::shorten(&r.to_id)
            )
        })?;
    }
    Ok(())
}

/// A whole export as one file: Markdown puts every memory's file one after the other.
/// Returns the text and how many memories and relationships it holds.
pub fn one_file(
    all: &Everything,
    format: ExportFormat,
    now: &str,
) -> Result<(String, usize, usize)> {
    Ok(match format {
        ExportFormat::Json => {
            let mut text = serde_json::to_string_pretty(&json::export(all, now))?;
            text.push('\n');
            (text, all.memories.len(), all.relationships.len())
        }
        ExportFormat::Markdown => {
            let files = markdown::render(all);
            let current = all.relationships.iter().filter(|r| r.is_current()).count();
            let text = files
                .iter()
                .map(|f| f.text.as_str())
                .collect::<Vec<_>>()
                .join("\n---\n\n");
            (text, files.len(), current)
        }
        ExportFormat::Dot | ExportFormat::Mermaid => {
            drawing(all, &picture::Selection::default(), format)?
        }
    })
}

/// A picture of the chosen memories (Graphviz DOT for `Dot`, else Mermaid), with how many
/// memories and relationships it draws.
pub fn drawing(
    all: &Everything,
    selection: &picture::Selection,
    format: ExportFormat,
) -> Result<(String, usize, usize)> {
    let picture = picture::select(all, selection)?;
    let text = if format == ExportFormat::Dot {
        super::dot::render(&picture)
    } else {
        super::mermaid::render(&picture)
    };
    Ok((text, picture.memories.len(), picture.relationships.len()))
}

/// Writes a file so that it is never seen half-written and is readable by its owner only:
/// a private temporary file next to it, flushed to disk, then renamed over it.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
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

/// A fresh path next to the database for a file handed between the web view and the
/// database's owner (an upload to import, an export to download); the folder is the
/// database's own, readable by its owner only.
pub fn hand_over_path(database: &Path, what: &str) -> Result<std::path::PathBuf> {
    let Some(dir) = database.parent() else {
        bail!("the database path {} has no folder", database.display());
    };
    let name = format!(
        ".memorygraph-{what}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    Ok(dir.join(name))
}

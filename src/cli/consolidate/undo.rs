//! `consolidate --undo FILE`: puts the database back as it was before the apply that wrote
//! FILE. A file that is not such a backup is a mistake of usage (exit 2): nothing is
//! opened or changed.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::UsageError;
use crate::config::Config;
use crate::exchange::backup;
use crate::open::{close, open_backend};

pub async fn run(config: Config, file: &Path, dry_run: bool, json: bool) -> Result<()> {
    let not_a_backup = |why: String| {
        UsageError(format!(
            "--undo {}: {why}; nothing was changed",
            file.display()
        ))
    };
    let text =
        std::fs::read_to_string(file).map_err(|e| not_a_backup(format!("cannot read it ({e})")))?;
    let backup = backup::parse(&text).map_err(|e| {
        not_a_backup(format!(
            "not a backup written by consolidate --apply: {e:#}"
        ))
    })?;
    let backend = Arc::new(open_backend(&config).await?);
    let outcome = backend
        .undo_consolidation(&backup.batch, &backup.record, dry_run)
        .await;
    close(backend).await?;
    let undone = outcome.with_context(|| format!("undoing {}", file.display()))?;
    if json {
        let mut answer = serde_json::to_value(&undone)?;
        answer["backup"] = json!(file);
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let (did, removed, put) = if dry_run {
        ("Would undo", "would remove", "would put back")
    } else {
        ("Undid", "removed", "put back")
    };
    println!(
        "{did} the consolidation of {} from {}: {removed} {} merged memory(ies); {put} {} memory(ies) and {} relationship(s).",
        backup.record.applied_at,
        file.display(),
        undone.merged_removed.len(),
        undone.memories_restored,
        undone.relationships_restored
    );
    let already = undone.memories_already_there + undone.relationships_already_there;
    if already + undone.merged_already_gone.len() as u64 > 0 {
        println!(
            "Already there, left as they are: {} memory(ies), {} relationship(s); merged memories already gone: {}.",
            undone.memories_already_there,
            undone.relationships_already_there,
            undone.merged_already_gone.len()
        );
    }
    if !undone.relationships_left_out.is_empty() {
        println!(
            "Left out {} relationship(s) whose end is gone since: {}",
            undone.relationships_left_out.len(),
            undone.relationships_left_out.join(", ")
        );
    }
    if dry_run {
        println!("Dry run: nothing was changed.");
    }
    Ok(())
}

//! `consolidate --apply PART…`: the report is read, the parts named are chosen from it,
//! and the backend acts on them after this command has written the backup. Like `import`,
//! it writes to the database file itself, whether or not a server owns the database (the
//! server notices the changes as it notices any other writer's).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::json;

use super::report::line;
use super::{ConsolidateArgs, Part};
use crate::backend::consolidate::{Applied, Named, Selection};
use crate::backend::{Consolidation, TursoBackend};
use crate::cli::UsageError;
use crate::config::Config;
use crate::exchange::{backup, files::write_private};
use crate::open::{close, open_backend};

pub async fn run(config: Config, a: &ConsolidateArgs, json: bool) -> Result<()> {
    if !a.group.is_empty() && !a.apply.contains(&Part::NearDuplicates) {
        return Err(UsageError(
            "--group chooses groups of near-duplicates: use it with --apply near-duplicates".into(),
        )
        .into());
    }
    let path = match &a.backup {
        Some(path) => checked_backup(path)?,
        None => default_backup(&config.database_path)?,
    };
    let backend = Arc::new(open_backend(&config).await?);
    let outcome = apply(&backend, a, &path).await;
    close(backend).await?;
    let Some((report, applied, left)) = outcome? else {
        if json {
            let nothing = json!({
                "dry_run": a.dry_run,
                "backup": null,
                "merged": [],
                "archived": [],
                "relationships_removed": [],
                "unused_left_in_merged_groups": [],
            });
            println!("{}", serde_json::to_string_pretty(&nothing)?);
        } else {
            println!("Nothing to apply: the parts named are empty in the report.");
        }
        return Ok(());
    };
    let backup = (!applied.dry_run).then_some(&path);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary(&report, &applied, &left, backup))?
        );
    } else {
        print!("{}", text(&report, a, &applied, &left, backup));
    }
    Ok(())
}

/// Reads the report, chooses from it, and acts; `None` when there is nothing to do.
async fn apply(
    backend: &TursoBackend,
    a: &ConsolidateArgs,
    path: &Path,
) -> Result<Option<(Consolidation, Applied, Vec<Named>)>> {
    let report = backend
        .consolidation(a.days, a.max_importance)
        .await
        .context("reading the database")?;
    let (selection, left) = choose(&report, a)?;
    if selection.is_empty() {
        return Ok(None);
    }
    let applied = backend
        .apply_consolidation(&selection, a.dry_run, |applied| {
            let text = backup::render(applied).map_err(std::io::Error::other)?;
            write_private(path, &text).map_err(|e| std::io::Error::other(format!("{e:#}")))
        })
        .await
        .context("consolidating")?;
    Ok(Some((report, applied, left)))
}

/// The selection the parts and groups name, and the unused memories left out of it because
/// a group merged now holds them (archiving them would undo the merge's link).
fn choose(report: &Consolidation, a: &ConsolidateArgs) -> Result<(Selection, Vec<Named>)> {
    let mut selection = Selection::default();
    if a.apply.contains(&Part::NearDuplicates) {
        let count = report.near_duplicates.len();
        if let Some(n) = a.group.iter().find(|n| **n as usize > count) {
            return Err(UsageError(format!(
                "--group {n}: the report has {count} group(s) of near-duplicates; nothing was changed"
            ))
            .into());
        }
        for (i, group) in report.near_duplicates.iter().enumerate() {
            if a.group.is_empty() || a.group.contains(&(i as u32 + 1)) {
                selection
                    .merge
                    .push(group.iter().map(|m| m.id.clone()).collect());
            }
        }
    }
    let mut left = Vec::new();
    if a.apply.contains(&Part::Unused) {
        for m in &report.unused {
            if selection.merge.iter().flatten().any(|id| id == &m.id) {
                left.push(m.clone());
            } else {
                selection.archive.push(m.id.clone());
            }
        }
    }
    if a.apply.contains(&Part::Dangling) {
        selection.unlink = report
            .dangling_relationships
            .iter()
            .map(|d| d.id.clone())
            .collect();
    }
    Ok((selection, left))
}

/// A backup path the user gave: its folder must exist and the file must not, so no
/// earlier backup is ever overwritten.
fn checked_backup(path: &Path) -> Result<PathBuf> {
    let folder = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(UsageError(format!(
            "--backup {}: the folder {} does not exist; nothing was changed",
            path.display(),
            folder.display()
        ))
        .into());
    }
    if path.exists() {
        return Err(UsageError(format!(
            "--backup {}: the file exists already (an earlier backup?); name a new file. Nothing was changed",
            path.display()
        ))
        .into());
    }
    Ok(path.to_path_buf())
}

/// `<database file>.consolidate-<time>.json` beside the database, a number added when two
/// applies share a second.
fn default_backup(database: &Path) -> Result<PathBuf> {
    let time = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut name = database.as_os_str().to_owned();
    name.push(format!(".consolidate-{time}"));
    let base = PathBuf::from(name);
    let mut n = 1;
    loop {
        let mut candidate = base.clone().into_os_string();
        if n > 1 {
            candidate.push(format!("-{n}"));
        }
        candidate.push(".json");
        let candidate = PathBuf::from(candidate);
        if !candidate.exists() {
            return Ok(candidate);
        }
        n += 1;
    }
}

/// The number the report gives a merged group.
fn group_number(report: &Consolidation, replaces: &[String]) -> usize {
    report
        .near_duplicates
        .iter()
        .position(|g| g.iter().map(|m| &m.id).eq(replaces.iter()))
        .map_or(0, |i| i + 1)
}

fn archived<'a>(report: &'a Consolidation, applied: &Applied) -> Vec<&'a Named> {
    report
        .unused
        .iter()
        .filter(|m| applied.record.archived.contains(&m.id))
        .collect()
}

/// What was done, for `--json`.
fn summary(
    report: &Consolidation,
    applied: &Applied,
    left: &[Named],
    backup: Option<&PathBuf>,
) -> serde_json::Value {
    let merged: Vec<serde_json::Value> = applied
        .record
        .merged
        .iter()
        .map(|m| {
            json!({
                "group": group_number(report, &m.replaces),
                "id": (!applied.dry_run).then_some(&m.id),
                "title": m.title,
                "replaces": m.replaces,
            })
        })
        .collect();
    json!({
        "dry_run": applied.dry_run,
        "backup": backup,
        "merged": merged,
        "archived": archived(report, applied),
        "relationships_removed": applied.record.removed_relationships,
        "unused_left_in_merged_groups": left,
    })
}

/// What was done, in words.
fn text(
    report: &Consolidation,
    a: &ConsolidateArgs,
    applied: &Applied,
    left: &[Named],
    backup: Option<&PathBuf>,
) -> String {
    let mut out = String::new();
    let (merge, archive, remove) = if applied.dry_run {
        ("Would merge", "Would archive", "Would remove")
    } else {
        ("Merged", "Archived", "Removed")
    };
    if let Some(path) = backup {
        out.push_str(&format!(
            "Backup of everything changed: {}\nUndo with: memorygraph consolidate --undo {}\n",
            path.display(),
            shell_word(&path.display().to_string())
        ));
    }
    for m in &applied.record.merged {
        let into = if applied.dry_run {
            format!("a new memory \"{}\"", m.title)
        } else {
            format!("{} \"{}\"", m.id, m.title)
        };
        out.push_str(&format!(
            "{merge} group {} ({} memories) into {into}, which replaces them.\n",
            group_number(report, &m.replaces),
            m.replaces.len()
        ));
    }
    let archived = archived(report, applied);
    let unlinked: Vec<&String> = report
        .dangling_relationships
        .iter()
        .map(|d| &d.id)
        .filter(|id| {
            a.apply.contains(&Part::Dangling) && applied.record.removed_relationships.contains(id)
        })
        .collect();
    if !archived.is_empty() {
        let theirs = applied.record.removed_relationships.len() - unlinked.len();
        out.push_str(&format!(
            "{archive} {} memory(ies) with {theirs} relationship(s) of theirs (kept in the backup):\n",
            archived.len()
        ));
        archived.iter().for_each(|m| out.push_str(&line(m)));
    }
    if !unlinked.is_empty() {
        out.push_str(&format!(
            "{remove} {} dangling relationship(s): {}\n",
            unlinked.len(),
            unlinked
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !left.is_empty() {
        out.push_str(&format!(
            "Left {} unused memory(ies) in merged groups for a later run:\n",
            left.len()
        ));
        left.iter().for_each(|m| out.push_str(&line(m)));
    }
    if applied.dry_run {
        out.push_str("Dry run: nothing was changed and no backup was written.\n");
    }
    out
}

/// `text` as one word for a POSIX shell, so the printed undo command can be pasted as it is:
/// quoted only when it holds anything but plain path characters.
fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@,=".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn the_undo_command_quotes_a_path_only_when_a_shell_needs_it() {
        assert_eq!(
            shell_word("backups/memory.db.consolidate-1.json"),
            "backups/memory.db.consolidate-1.json"
        );
        assert_eq!(shell_word("my backups/x.json"), "'my backups/x.json'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }
}

//! Rebuilding a replica from the primary (`memorygraph resync`): for a damaged or deleted
//! replica file, and for a replica whose primary was reset or replaced. The replica's own
//! files (the database and libsql's `-wal`, `-shm`, `-client_wal_index` and `-info`) are
//! moved aside into a dated folder, never deleted; the offline queue stays where it is and
//! is replayed by the next sync. With `--push-local` the old copy's memories and
//! relationships are first put on the primary (by id, so nothing is doubled).

use std::path::{Path, PathBuf};

use super::migrate::{MigrationReport, copy_to_primary};
use super::queue::Queue;
use super::replica::{DIVERGED, Primary};
use super::slot::{MAX_SLOTS, claim_exactly, slot_path};
use crate::backend::error::{BackendError, Result};

/// The files libsql keeps for one replica, by suffix.
pub const REPLICA_FILES: [&str; 5] = ["", "-wal", "-shm", "-client_wal_index", "-info"];

/// What to do with the local copy when its primary's history no longer matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalCopy {
    /// Only rebuild (a damaged or deleted replica of a primary that is still the same).
    Rebuild,
    /// Put the local copy's memories and relationships on the primary first.
    Push,
    /// Adopt the primary as it is (the old files are still kept aside).
    Discard,
}

/// What a resync did, slot by slot.
#[derive(Debug, Clone)]
pub struct ResyncReport {
    pub slot: PathBuf,
    /// Where the old files went (none when there were none).
    pub moved_to: Option<PathBuf>,
    pub pushed: Option<MigrationReport>,
    pub queued_writes: i64,
}

/// Resyncs every replica slot of `base` that no running process holds.
pub async fn resync(base: &Path, primary: &Primary, local: LocalCopy) -> Result<Vec<ResyncReport>> {
    let mut reports = Vec::new();
    for number in 1..=MAX_SLOTS {
        let path = slot_path(base, number);
        if number > 1 && !path.exists() && !Queue::path_for(&path).exists() {
            continue;
        }
        let _lock = claim_exactly(&path)?;
        reports.push(resync_slot(&path, primary, local).await?);
    }
    Ok(reports)
}

async fn resync_slot(path: &Path, primary: &Primary, local: LocalCopy) -> Result<ResyncReport> {
    let queue = Queue::open(path).await?;
    if let Some(reason) = queue.state(DIVERGED).await?
        && local == LocalCopy::Rebuild
    {
        return Err(BackendError::Refused(format!(
            "{}: {reason}. Choose with --push-local or --discard-local",
            path.display()
        )));
    }
    let pushed = match local {
        LocalCopy::Push if path.exists() => Some(copy_to_primary(path, primary).await?),
        _ => None,
    };
    let moved_to = move_aside(path)?;
    super::identity::forget_primary(&queue).await?;
    Ok(ResyncReport {
        slot: path.to_path_buf(),
        moved_to,
        pushed,
        queued_writes: queue.len().await?,
    })
}

/// Moves the replica's files into `<replica>.before-resync-<time>/`, names unchanged.
fn move_aside(path: &Path) -> Result<Option<PathBuf>> {
    let present: Vec<PathBuf> = REPLICA_FILES
        .iter()
        .map(|suffix| with_suffix(path, suffix))
        .filter(|p| p.exists())
        .collect();
    if present.is_empty() {
        return Ok(None);
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let folder = with_suffix(path, &format!(".before-resync-{stamp}"));
    let io = |doing: String| move |source| BackendError::Io { doing, source };
    std::fs::create_dir_all(&folder).map_err(io(format!("creating {}", folder.display())))?;
    for file in present {
        let name = file.file_name().expect("a file name");
        std::fs::rename(&file, folder.join(name))
            .map_err(io(format!("moving {} aside", file.display())))?;
    }
    Ok(Some(folder))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

//! `memorygraph resync`: for a damaged or deleted replica file, and for a primary that was
//! reset, replaced or restored from an older copy. The replica is only a copy of the
//! primary (every memory this machine knows is in the working file), so its files are
//! removed, and the next sync makes a new one and compares every row of the working file
//! with the primary, under the policy chosen: rebuild (the same primary: changes made here
//! are pushed, the rest follows the primary), push the local copy (this file wins, its
//! deletes included), or discard it (the primary wins).

use std::path::Path;

use super::engine::replica_path;
use super::layout::{REPLICA_FILES, with_suffix};
use super::owner::claim_exactly;
use super::reconcile::{ASKED, Policy};
use super::state::{self, DIVERGED};
use crate::backend::error::{BackendError, Result};

/// What to do with the local copy when its primary's history no longer matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalCopy {
    /// Only rebuild (a damaged or deleted replica of a primary that is still the same).
    Rebuild,
    /// Put this file's memories and relationships on the primary, changes and deletes too.
    Push,
    /// Adopt the primary as it is.
    Discard,
}

/// What a resync prepared; the sync that follows does the comparison.
#[derive(Debug, Clone)]
pub struct ResyncReport {
    /// Whether replica files were there to remove.
    pub removed_replica: bool,
    pub policy: Policy,
}

/// Removes the replica and asks the next sync for a full comparison. Refused while another
/// process syncs this database.
pub async fn resync(working: &Path, local: LocalCopy) -> Result<ResyncReport> {
    let replica = replica_path(working);
    let _lock = claim_exactly(&replica)?;
    let (_db, conn) = super::layout::open_working(working).await?;
    if let Some(reason) = state::get(&conn, DIVERGED).await?
        && local == LocalCopy::Rebuild
    {
        return Err(BackendError::Refused(format!(
            "{}: {reason}. Choose with --push-local or --discard-local",
            working.display()
        )));
    }
    let policy = match local {
        LocalCopy::Rebuild => Policy::CatchUp,
        LocalCopy::Push => Policy::PushLocal,
        LocalCopy::Discard => Policy::DiscardLocal,
    };
    if local != LocalCopy::Rebuild {
        super::identity::forget_primary(&conn).await?;
    }
    state::set(&conn, ASKED, Some(policy.as_str())).await?;
    let mut removed = false;
    for suffix in REPLICA_FILES {
        let file = with_suffix(&replica, suffix);
        match std::fs::remove_file(&file) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BackendError::Io {
                    doing: format!("removing the replica file {}", file.display()),
                    source,
                });
            }
        }
    }
    Ok(ResyncReport {
        removed_replica: removed,
        policy,
    })
}

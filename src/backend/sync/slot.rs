//! One replica file, one process. libsql corrupts a replica written by two processes at
//! once, and people do run several assistant windows on one machine. So each process
//! claims a *slot*: an exclusive lock on `<replica>.lock` for the configured file, or, when
//! another process holds that one, on the next numbered replica beside it
//! (`<replica>.slot2`, `.slot3`, …), each a full replica with its own offline queue. The
//! lock goes with the process: a crash frees it. Every slot syncs with the same primary,
//! so every process sees the others' writes after a sync.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::backend::error::{BackendError, Result};

/// How many processes may share one configured replica path.
pub const MAX_SLOTS: u32 = 32;

/// A claimed slot: the replica file this process owns while it holds the lock.
#[derive(Debug)]
pub struct Slot {
    _lock: File,
    pub number: u32,
    pub path: PathBuf,
    /// The configured replica path the slots are numbered from.
    pub base: PathBuf,
}

/// The replica file of slot `number` for the configured `base` path.
pub fn slot_path(base: &Path, number: u32) -> PathBuf {
    if number <= 1 {
        return base.to_path_buf();
    }
    let mut p = base.as_os_str().to_owned();
    p.push(format!(".slot{number}"));
    PathBuf::from(p)
}

fn lock_path(replica: &Path) -> PathBuf {
    let mut p = replica.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Claims the first free slot.
pub fn claim(base: &Path) -> Result<Slot> {
    for number in 1..=MAX_SLOTS {
        let path = slot_path(base, number);
        if let Some(lock) = try_lock(&path)? {
            if number > 1 {
                tracing::info!(
                    "another process owns {}; this one uses its own replica {}",
                    base.display(),
                    path.display()
                );
            }
            return Ok(Slot {
                _lock: lock,
                number,
                path,
                base: base.to_path_buf(),
            });
        }
    }
    Err(BackendError::Refused(format!(
        "{MAX_SLOTS} processes already use the replica {}; close some of them",
        base.display()
    )))
}

/// Claims exactly the slot of `replica` (for commands that rebuild it), or says who has it.
pub fn claim_exactly(replica: &Path) -> Result<File> {
    try_lock(replica)?.ok_or_else(|| {
        BackendError::Refused(format!(
            "{} is in use by a running memorygraph (an assistant window or a command); stop it first",
            replica.display()
        ))
    })
}

fn try_lock(replica: &Path) -> Result<Option<File>> {
    let path = lock_path(replica);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| BackendError::Io {
            doing: format!("opening the lock file {}", path.display()),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(BackendError::Io {
            doing: format!("locking {}", path.display()),
            source,
        }),
    }
}

/// The other slots' replica files that exist beside `base` (for draining orphaned queues).
pub fn other_slots(base: &Path, mine: u32) -> Vec<PathBuf> {
    (1..=MAX_SLOTS)
        .filter(|n| *n != mine)
        .map(|n| slot_path(base, n))
        .filter(|p| super::queue::Queue::path_for(p).exists())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_gets_the_next_slot_and_a_freed_slot_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("memory.db");
        let first = claim(&base).unwrap();
        let second = claim(&base).unwrap();
        assert_eq!((first.number, second.number), (1, 2));
        assert_eq!(second.path, dir.path().join("memory.db.slot2"));
        drop(first);
        assert_eq!(claim(&base).unwrap().number, 1);
    }
}

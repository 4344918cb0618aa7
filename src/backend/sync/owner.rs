//! One replica file, one process. libsql corrupts a replica written by two processes at
//! once, and keeps its position in the primary's log in a file it does not lock. So the
//! process that syncs holds an exclusive lock on `<replica>.lock`; every other process on
//! the same database reads and writes the working file only, and takes the lock when the
//! holder is gone. The lock goes with the process: a crash frees it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::backend::error::{BackendError, Result};

fn lock_path(replica: &Path) -> PathBuf {
    let mut p = replica.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Takes the replica's lock, or `None` when another process holds it.
pub fn try_lock(replica: &Path) -> Result<Option<File>> {
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

/// Takes the replica's lock for a command that rebuilds it, or says who has it.
pub fn claim_exactly(replica: &Path) -> Result<File> {
    try_lock(replica)?.ok_or_else(|| {
        BackendError::Refused(format!(
            "{} is in use by a running memorygraph (an assistant window or a command); stop it first",
            replica.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_a_freed_lock_is_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let replica = dir.path().join("memory.db.replica");
        let first = try_lock(&replica).unwrap();
        assert!(first.is_some());
        assert!(try_lock(&replica).unwrap().is_none());
        drop(first);
        assert!(try_lock(&replica).unwrap().is_some());
    }
}

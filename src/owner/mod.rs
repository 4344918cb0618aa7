//! One process per database. The first `memorygraph` to open a database owns it: it holds
//! the database, the replica, the sync loop, the model and the in-memory vectors, and it
//! listens on a socket in a folder only this user can open. Every other `memorygraph` on
//! the same database (another window's stdio server, a CLI command, the HTTP server)
//! sends its calls through that socket, so each database has one of each per machine.
//!
//! The owner holds an exclusive lock on `<file>.owner`; the lock goes with the process, so
//! when the owner exits or is killed, a waiting process takes the lock, opens the database
//! and listens in its place (see [`relay`]).
//!
//! Unix only: on other systems each process opens the database itself, as SQLite allows.

pub mod client;
pub mod hello;
pub mod host;
pub mod link;
pub mod relay;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Where the owner of one database is found: its lock beside the database file, its
/// socket in the user's private runtime folder.
#[derive(Debug, Clone)]
pub struct Place {
    pub database: PathBuf,
    pub lock: PathBuf,
    pub socket: PathBuf,
}

impl Place {
    /// The place of a database file's owner. The socket's name is a hash of the file's
    /// absolute path: two spellings of one file meet at one socket, and the name stays
    /// short (a socket path is limited to about 100 bytes).
    pub fn of(database: &Path) -> Result<Place> {
        let absolute = absolute(database)
            .with_context(|| format!("resolving the database path {}", database.display()))?;
        let mut lock = absolute.as_os_str().to_owned();
        lock.push(".owner");
        let id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            absolute.as_os_str().as_encoded_bytes(),
        );
        let folder = private_folder()?;
        Ok(Place {
            socket: folder.join(format!("{}.sock", &id.simple().to_string()[..20])),
            lock: PathBuf::from(lock),
            database: absolute,
        })
    }
}

/// The database path made absolute, with its folder's links resolved (the file itself may
/// not exist yet).
fn absolute(database: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(database)?;
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) if parent.exists() => Ok(parent.canonicalize()?.join(name)),
        _ => Ok(absolute),
    }
}

/// `$XDG_RUNTIME_DIR/memorygraph`, or `memorygraph-<uid>` in the temporary folder: made
/// with mode 0700 and refused when another user owns it or others may enter it.
fn private_folder() -> Result<PathBuf> {
    let folder = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) if Path::new(&runtime).is_dir() => Path::new(&runtime).join("memorygraph"),
        _ => std::env::temp_dir().join(format!("memorygraph-{}", user_id())),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&folder) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("creating the socket folder {}", folder.display()));
        }
    }
    let meta = std::fs::symlink_metadata(&folder)
        .with_context(|| format!("reading the socket folder {}", folder.display()))?;
    if !meta.is_dir() || meta.uid() != user_id() || meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "the socket folder {} is not a folder only this user can open (owner uid {}, mode {:o}); \
             remove it, and memorygraph makes it again",
            folder.display(),
            meta.uid(),
            meta.permissions().mode() & 0o777
        );
    }
    Ok(folder)
}

fn user_id() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether a process with this id is running (it may belong to anyone).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// What the owner writes into its lock file, for `service status` and `health`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OwnerInfo {
    pub pid: u32,
    pub version: String,
    pub since: String,
    pub socket: String,
    /// The HTTP address it serves MCP on, when it does.
    pub http: Option<String>,
}

/// The lock of a database, held by its owner for as long as the process lives.
pub struct Ownership {
    file: File,
    pub place: Place,
}

impl Ownership {
    /// Writes what this owner is into the lock file.
    pub fn announce(&mut self, http: Option<String>) -> Result<()> {
        let info = OwnerInfo {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            since: crate::model::now_iso(),
            socket: self.place.socket.display().to_string(),
            http,
        };
        self.file.set_len(0)?;
        let mut text = serde_json::to_vec(&info)?;
        text.push(b'\n');
        (&self.file).write_all(&text)?;
        Ok(())
    }
}

/// Takes ownership of the database, or `None` when another process holds it.
pub fn try_own(place: &Place) -> Result<Option<Ownership>> {
    if let Some(parent) = place.lock.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the folder {}", parent.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&place.lock)
        .with_context(|| format!("opening the lock file {}", place.lock.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(Ownership {
            file,
            place: place.clone(),
        })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", place.lock.display()))
        }
    }
}

/// Connects to the owner's socket: where this process's environment puts it, else where
/// the owner says it listens (a service may see another runtime folder than a shell).
pub async fn connect(place: &Place) -> Option<tokio::net::UnixStream> {
    if let Ok(stream) = tokio::net::UnixStream::connect(&place.socket).await {
        return Some(stream);
    }
    let recorded = PathBuf::from(running_owner(place)?.socket);
    if recorded == place.socket {
        return None;
    }
    tokio::net::UnixStream::connect(recorded).await.ok()
}

/// The running owner of a database, if one holds its lock.
pub fn running_owner(place: &Place) -> Option<OwnerInfo> {
    let file = File::open(&place.lock).ok()?;
    match file.try_lock_shared() {
        Ok(()) => return None,
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(_)) => return None,
    }
    let text = std::fs::read_to_string(&place.lock).ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_at_a_time_and_the_lock_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let place = Place::of(&dir.path().join("memory.db")).unwrap();
        let mut first = try_own(&place).unwrap().expect("the first process owns");
        first.announce(Some("127.0.0.1:1".into())).unwrap();
        assert!(try_own(&place).unwrap().is_none());
        let info = running_owner(&place).expect("a running owner");
        assert_eq!(info.pid, std::process::id());
        assert_eq!(info.http.as_deref(), Some("127.0.0.1:1"));
        drop(first);
        assert!(running_owner(&place).is_none());
        assert!(try_own(&place).unwrap().is_some());
    }

    #[test]
    fn two_spellings_of_one_file_meet_at_one_socket() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        let plain = Place::of(&dir.path().join("a/memory.db")).unwrap();
        let winding = Place::of(&dir.path().join("a/../a/./memory.db")).unwrap();
        assert_eq!(plain.socket, winding.socket);
        assert!(plain.socket.as_os_str().len() < 100);
        let other = Place::of(&dir.path().join("a/other.db")).unwrap();
        assert_ne!(plain.socket, other.socket);
    }
}

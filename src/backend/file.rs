//! The database file itself: its folder, its permissions (owner only), and the settings a
//! connection opens it with (page size, write-ahead log, durability).

use std::path::Path;

use libsql::Connection;

use super::error::{BackendError, DbContext, Result};
use super::{BUSY_TIMEOUT, Durability, first_row, scalar_i64};

pub(super) fn ensure_parent_dir(path: &Path) -> Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| BackendError::Io {
        doing: format!("creating the folder {}", dir.display()),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// A memory file holds private notes: readable by its owner only. SQLite gives the log and
/// shared-memory files the database file's mode, so a new file is created private before
/// SQLite opens it; files made by an older version are tightened here, with their companions.
pub(super) fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in [
            "",
            "-wal",
            "-shm",
            "-info",
            "-client_wal_index",
            ".lock",
            ".queue",
            ".queue-wal",
            ".queue-shm",
        ] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            if let Ok(meta) = std::fs::metadata(&file)
                && meta.is_file()
                && meta.permissions().mode() & 0o077 != 0
            {
                let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
}

/// Creates a missing database file empty (a valid empty database) and private, so that
/// SQLite's own companion files inherit the private mode from the start. True when the file
/// is empty (new, or created empty before), so its page size can still be chosen.
pub(super) fn create_private_file(path: &Path) -> Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(BackendError::Io {
                    doing: format!("creating the database file {}", path.display()),
                    source,
                });
            }
        }
    }
    Ok(std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true))
}

/// The page size of a new file. A memory's row is 0.3–3 KB of JSON: with SQLite's default
/// 4 KiB pages, two rows of just over 2 KB never share a page, and a quarter of the file
/// was unused space in the rows' pages. 16 KiB pages leave under 8 % unused (a file of
/// 10,000 memories: 40.1 → 33.9 MB). Files made before keep their page size.
pub(super) const PAGE_SIZE: u32 = 16384;

/// Sets the page size of a file that has no page yet (SQLite fixes it with the first write).
pub(super) async fn choose_page_size(conn: &Connection) -> Result<()> {
    conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}"))
        .await
        .doing("choosing the page size")?;
    Ok(())
}

/// Switches a file to write-ahead logging (a pragma that answers with a row, so it is
/// read as a query).
pub(super) async fn use_write_ahead_log(conn: &Connection) -> Result<()> {
    first_row(
        conn,
        "PRAGMA journal_mode = WAL",
        (),
        "switching to write-ahead logging",
    )
    .await?;
    Ok(())
}

/// How much write-ahead log accumulates before a checkpoint.
const WAL_BYTES_BETWEEN_CHECKPOINTS: i64 = 32 * 1024 * 1024;

pub(super) async fn configure(conn: &Connection, durability: Durability) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .doing("setting the busy timeout")?;
    use_write_ahead_log(conn).await?;
    // A checkpoint copies each changed page once, however often it changed: every store
    // rewrites the same full-text and index pages, so a longer log (32 MiB) between
    // checkpoints means fewer copies and fsyncs per store.
    let page_size = scalar_i64(
        conn,
        "SELECT page_size FROM pragma_page_size()",
        vec![],
        "reading the page size",
    )
    .await?
    .max(512);
    conn.execute_batch(&format!(
        "{}; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = {};",
        durability.pragma(),
        WAL_BYTES_BETWEEN_CHECKPOINTS / page_size
    ))
    .await
    .doing("setting connection pragmas")?;
    Ok(())
}

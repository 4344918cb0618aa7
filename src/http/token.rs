//! The bearer token every HTTP request must carry. Generated on first use into a file only
//! this user can read (`<database file>.http-token`, mode 0600), or taken from
//! `MEMORYGRAPH_HTTP_TOKEN` for set-ups that hand secrets in through the environment.
//! Read again on every request, so `memorygraph token rotate` takes effect at once.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The variable that, when set, is the token (and no file is written).
pub const TOKEN_VAR: &str = "MEMORYGRAPH_HTTP_TOKEN";

/// Shortest token accepted from the environment.
const MIN_LENGTH: usize = 24;

/// Where the token of a database is kept.
pub fn file_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".http-token");
    PathBuf::from(name)
}

/// The token, from the environment or the file; the file is made on first use.
pub fn current(database: &Path) -> Result<String> {
    if let Some(token) = from_environment()? {
        return Ok(token);
    }
    let file = file_of(database);
    match std::fs::read_to_string(&file) {
        Ok(text) if !text.trim().is_empty() => {
            check_private(&file)?;
            Ok(text.trim().to_string())
        }
        Ok(_) => write_new(&file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_new(&file),
        Err(e) => Err(e).with_context(|| format!("reading the token file {}", file.display())),
    }
}

/// Replaces the token with a new one; the old one stops working at once.
pub fn rotate(database: &Path) -> Result<String> {
    if std::env::var_os(TOKEN_VAR).is_some() {
        bail!("the token comes from {TOKEN_VAR}; change that variable instead");
    }
    write_new(&file_of(database))
}

fn from_environment() -> Result<Option<String>> {
    match std::env::var(TOKEN_VAR) {
        Ok(token) if token.trim().len() >= MIN_LENGTH => Ok(Some(token.trim().to_string())),
        Ok(_) => bail!(
            "{TOKEN_VAR} is set but shorter than {MIN_LENGTH} characters; use a long random value"
        ),
        Err(_) => Ok(None),
    }
}

/// 64 hex digits from the system's random source (two version-4 UUIDs: 244 random bits).
fn generate() -> String {
    format!(
        "mgt_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn write_new(file: &Path) -> Result<String> {
    let token = generate();
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the folder {}", parent.display()))?;
    }
    let fresh = file.with_extension("http-token.new");
    let _ = std::fs::remove_file(&fresh);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&fresh)
        .with_context(|| format!("writing the token file {}", fresh.display()))?;
    out.write_all(format!("{token}\n").as_bytes())?;
    out.sync_all()?;
    std::fs::rename(&fresh, file)
        .with_context(|| format!("writing the token file {}", file.display()))?;
    Ok(token)
}

/// A token file others can read is not a secret any more: refuse it.
fn check_private(file: &Path) -> Result<()> {
    let mode = std::fs::metadata(file)?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "the token file {} can be read by other users (mode {:o}); run `chmod 600` on it, or `memorygraph token rotate`",
            file.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// Compares a presented token with the real one in time that does not depend on where
/// they differ.
pub fn matches(presented: &[u8], real: &[u8]) -> bool {
    let mut difference = presented.len() ^ real.len();
    for (i, byte) in real.iter().enumerate() {
        difference |= usize::from(byte ^ presented.get(i).copied().unwrap_or(0));
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("memory.db");
        let first = current(&db).unwrap();
        assert_eq!(current(&db).unwrap(), first);
        assert!(first.len() >= 64);
        let mode = std::fs::metadata(file_of(&db))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = rotate(&db).unwrap();
        assert_ne!(first, second);
        assert_eq!(current(&db).unwrap(), second);
        std::fs::set_permissions(file_of(&db), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(current(&db).is_err());
    }

    #[test]
    fn comparison() {
        assert!(matches(b"abc", b"abc"));
        assert!(!matches(b"abd", b"abc"));
        assert!(!matches(b"ab", b"abc"));
        assert!(!matches(b"abcd", b"abc"));
        assert!(!matches(b"", b"abc"));
    }
}

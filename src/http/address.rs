//! Where a running `serve --http` can be found: while it serves, `<database file>.http`
//! holds its process id and base URL, so `memorygraph ui` opens the pages of the server
//! already running instead of starting another.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Record {
    pid: u32,
    url: String,
}

fn file_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".http");
    PathBuf::from(name)
}

/// The record of this process's server; removed when dropped.
pub struct Recorded {
    file: PathBuf,
}

/// Records this process as the one serving `url` for `database`. A record that cannot be
/// written only costs `memorygraph ui` finding this server, so it is a warning.
pub fn record(database: &Path, url: &str) -> Recorded {
    let file = file_of(database);
    let record = Record {
        pid: std::process::id(),
        url: url.to_string(),
    };
    let text = serde_json::to_string(&record).expect("plain fields");
    if let Err(e) = std::fs::write(&file, text) {
        tracing::warn!(
            "recording the HTTP address in {} failed: {e}",
            file.display()
        );
    }
    Recorded { file }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|t| serde_json::from_str::<Record>(&t).ok())
            .is_some_and(|r| r.pid == std::process::id());
        if ours {
            let _ = std::fs::remove_file(&self.file);
        }
    }
}

/// The base URL of the server running for `database`, if one is.
pub fn running(database: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file_of(database)).ok()?;
    let record: Record = serde_json::from_str(&text).ok()?;
    crate::owner::alive(record.pid).then_some(record.url)
}

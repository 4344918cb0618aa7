//! What replica mode remembers in the working file itself, so that it changes in the same
//! transactions as the rows it is about: how far this machine has pushed its own changes
//! and pulled the primary's, the primary's identity, and the writes that could not be
//! synced (conflicts and refusals) with both versions, for the user to decide.

use libsql::{Connection, Value};
use serde::Serialize;

use super::feed::{Columns, Kind};
use crate::backend::error::{DbContext, Result};
use crate::backend::{all_rows, first_row};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS memorygraph_sync_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memorygraph_sync_issues (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    issue TEXT NOT NULL,
    kind TEXT NOT NULL,
    row_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    local_version TEXT,
    primary_version TEXT,
    detected_at TEXT NOT NULL
);";

/// State keys.
/// The last seq of this file's own feed that reached the primary (or was set aside).
pub const PUSHED: &str = "pushed_seq";
/// The last seq of the primary's feed copied into this file.
pub const PULLED: &str = "pulled_seq";
/// The primary's `database_id`, once synced.
pub const PRIMARY_ID: &str = "primary_database_id";
/// The primary's change count seen at the last pull (a smaller one means a restored primary).
pub const PRIMARY_CHANGES: &str = "primary_changes";
/// Why syncing stopped, when the primary's history no longer matches.
pub const DIVERGED: &str = "diverged";
/// Ranges of the primary's feed written by this machine's pushes, as JSON `[[from, to], ...]`:
/// a pull skips them (this file holds those rows already, or newer).
pub const OWN_RANGES: &str = "own_ranges";
/// This working file's name in the primary's push log, as JSON `{"id", "place"}`: the place
/// (host and path) it was made for, so that a copy of the file elsewhere gets a name of its
/// own instead of taking another device's pushes for its own.
pub const DEVICE: &str = "device";
/// The last sync's outcome, written by the process that syncs, read by every other.
pub const LAST_SYNC: &str = "last_sync";

/// What kind of problem a row met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// The row changed here and on the primary; the primary's version was kept.
    Conflict,
    /// The primary, or something in front of it, refused the row for good; it waits here,
    /// not pushed, until retried or discarded.
    SetAside,
}

impl IssueKind {
    fn as_str(self) -> &'static str {
        match self {
            IssueKind::Conflict => "conflict",
            IssueKind::SetAside => "set_aside",
        }
    }
}

/// A row that could not be synced as it was.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SyncIssue {
    pub seq: i64,
    pub issue: IssueKind,
    /// `node` (a memory) or `relationship`.
    pub kind: String,
    pub row_id: String,
    pub reason: String,
    /// The row as this machine had it (JSON of its columns), when it had it.
    pub local_version: Option<String>,
    /// The row as the primary had it, when that is what it collided with.
    pub primary_version: Option<String>,
    pub detected_at: String,
}

pub async fn create(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)
        .await
        .doing("creating the sync tables")?;
    Ok(())
}

pub async fn get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(first_row(
        conn,
        "SELECT value FROM memorygraph_sync_state WHERE key = ?1",
        libsql::params![key],
        "reading the sync state",
    )
    .await?
    .map(|r| r.text(0)))
}

pub async fn get_i64(conn: &Connection, key: &str) -> Result<i64> {
    Ok(get(conn, key)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

pub async fn set(conn: &Connection, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => {
            conn.execute(
                "INSERT INTO memorygraph_sync_state (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                libsql::params![key, v],
            )
            .await
        }
        None => {
            conn.execute(
                "DELETE FROM memorygraph_sync_state WHERE key = ?1",
                libsql::params![key],
            )
            .await
        }
    }
    .doing("saving the sync state")?;
    Ok(())
}

/// A row's columns as JSON, for the issue log.
pub fn row_json(kind: Kind, row: &Columns) -> String {
    let mut map = serde_json::Map::new();
    for (name, value) in kind.columns().iter().zip(row) {
        let v = match value {
            Value::Null => serde_json::Value::Null,
            Value::Integer(i) => (*i).into(),
            Value::Real(f) => serde_json::Value::from(*f),
            Value::Text(s) => s.clone().into(),
            Value::Blob(b) => b
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<String>()
                .into(),
        };
        map.insert((*name).to_string(), v);
    }
    serde_json::Value::Object(map).to_string()
}

/// Records a row that could not be synced as it was.
pub async fn record_issue(
    conn: &Connection,
    issue: IssueKind,
    kind: Kind,
    id: &str,
    reason: &str,
    local: Option<&Columns>,
    primary: Option<&Columns>,
) -> Result<()> {
    tracing::warn!(row = id, "{reason}");
    insert_issue(
        conn,
        issue,
        kind.as_str(),
        id,
        reason,
        local.map(|r| row_json(kind, r)),
        primary.map(|r| row_json(kind, r)),
    )
    .await
}

/// Writes an issue whose versions are already text (rows as JSON, or an old queue's
/// operation).
pub async fn insert_issue(
    conn: &Connection,
    issue: IssueKind,
    kind: &str,
    id: &str,
    reason: &str,
    local_version: Option<String>,
    primary_version: Option<String>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO memorygraph_sync_issues (issue, kind, row_id, reason, local_version, primary_version, detected_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        libsql::params![
            issue.as_str(),
            kind,
            id,
            reason,
            local_version,
            primary_version,
            crate::model::now_iso()
        ],
    )
    .await
    .doing("recording a sync issue")?;
    Ok(())
}

/// How many conflicts and how many set-aside writes the log holds (one query).
pub async fn issue_counts(conn: &Connection) -> Result<(i64, i64)> {
    let row = first_row(
        conn,
        "SELECT coalesce(sum(issue = 'conflict'), 0), coalesce(sum(issue = 'set_aside'), 0)
         FROM memorygraph_sync_issues",
        (),
        "counting sync issues",
    )
    .await?;
    Ok(row.map(|r| (r.int(0), r.int(1))).unwrap_or((0, 0)))
}

/// The issue log, newest first, at most `limit`.
pub async fn issues(conn: &Connection, limit: u32) -> Result<Vec<SyncIssue>> {
    let rows = conn
        .query(
            "SELECT seq, issue, kind, row_id, reason, local_version, primary_version, detected_at
             FROM memorygraph_sync_issues ORDER BY seq DESC LIMIT ?1",
            libsql::params![limit],
        )
        .await
        .doing("reading sync issues")?;
    Ok(all_rows(rows, "reading sync issues")
        .await?
        .iter()
        .map(|r| SyncIssue {
            seq: r.int(0),
            issue: if r.str(1) == "set_aside" {
                IssueKind::SetAside
            } else {
                IssueKind::Conflict
            },
            kind: r.text(2),
            row_id: r.text(3),
            reason: r.text(4),
            local_version: r.opt_text(5),
            primary_version: r.opt_text(6),
            detected_at: r.text(7),
        })
        .collect())
}

/// This working file's device id (see [`DEVICE`]), made when first asked for at `place`.
pub async fn device(conn: &Connection, place: &str) -> Result<String> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Device {
        id: String,
        place: String,
    }
    let known: Option<Device> = get(conn, DEVICE)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok());
    if let Some(known) = known
        && known.place == place
        && uuid::Uuid::parse_str(&known.id).is_ok()
    {
        return Ok(known.id);
    }
    let made = Device {
        id: uuid::Uuid::new_v4().to_string(),
        place: place.to_string(),
    };
    let json = serde_json::to_string(&made).expect("plain strings");
    set(conn, DEVICE, Some(&json)).await?;
    Ok(made.id)
}

/// Where a working file is: this host's name and the file's absolute path.
pub fn place_of(path: &std::path::Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("{}:{}", host_name(), path.display())
}

#[cfg(unix)]
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let done = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if done != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(not(unix))]
fn host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_default()
}

/// Ranges of the primary's feed this machine wrote.
pub async fn own_ranges(conn: &Connection) -> Result<Vec<(i64, i64)>> {
    Ok(get(conn, OWN_RANGES)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default())
}

/// Adds a range and drops the ranges a pull has passed.
pub async fn set_own_ranges(conn: &Connection, ranges: &[(i64, i64)], pulled: i64) -> Result<()> {
    let kept: Vec<(i64, i64)> = ranges
        .iter()
        .copied()
        .filter(|(_, to)| *to > pulled)
        .collect();
    let json = serde_json::to_string(&kept).expect("plain numbers");
    set(conn, OWN_RANGES, Some(&json)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file keeps its device id where it is; a copy found elsewhere gets its own, so it
    /// never takes the original's pushes for its own.
    #[tokio::test]
    async fn a_device_id_belongs_to_one_place() {
        let (_db, conn) = crate::backend::schema::test_database().await;
        create(&conn).await.unwrap();
        let here = device(&conn, "host:/a.db").await.unwrap();
        assert!(uuid::Uuid::parse_str(&here).is_ok());
        assert_eq!(device(&conn, "host:/a.db").await.unwrap(), here);
        let there = device(&conn, "other:/a.db").await.unwrap();
        assert_ne!(there, here);
        assert_eq!(device(&conn, "other:/a.db").await.unwrap(), there);
        // A damaged id is replaced, not sent to the primary.
        set(
            &conn,
            DEVICE,
            Some(r#"{"id": "x'; DROP", "place": "other:/a.db"}"#),
        )
        .await
        .unwrap();
        let mended = device(&conn, "other:/a.db").await.unwrap();
        assert!(uuid::Uuid::parse_str(&mended).is_ok());
    }
}

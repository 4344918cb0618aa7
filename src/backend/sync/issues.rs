//! Settling the rows sync could not apply as they were (conflicts and set-aside writes), by
//! the user's choice, from any process on the database: retry puts this machine's version
//! back as a change to push; discard keeps the primary's version; clear forgets without
//! acting. Issues older than [`KEPT_DAYS`] are forgotten at each sync.

use libsql::Value;

use super::feed::{self, Kind};
use super::pull::{drop_unpushed, pulling};
use super::replica::Replica;
use super::state::{self, IssueKind, SyncIssue};
use crate::backend::TursoBackend;
use crate::backend::error::{BackendError, DbContext, Result};

/// How long the issue log keeps an entry nobody settled.
pub const KEPT_DAYS: i64 = 90;

/// Rows whose primary version a sync should copy here (discarded set-aside writes), as JSON
/// `[[kind, id], ...]`.
const ADOPT: &str = "adopt";

/// Which issues a command acts on.
#[derive(Debug, Clone, Copy)]
pub enum Which {
    One(i64),
    All,
}

impl TursoBackend {
    /// The issue log, newest first.
    pub async fn sync_issues(&self, limit: u32) -> Result<Vec<SyncIssue>> {
        self.replica_mode()?;
        let conn = self.conn.lock().await;
        state::issues(&conn, limit).await
    }

    /// Puts this machine's version of each chosen row back into the working file as a
    /// change, so the next sync pushes it; the issues go. Returns how many.
    pub async fn retry_issues(&self, which: Which) -> Result<u64> {
        let issues = self.chosen(which).await?;
        let conn = self.conn.lock().await;
        let done = crate::backend::in_write(&conn, "retrying sync issues", async |tx| {
            for issue in &issues {
                let kind = Kind::parse(&issue.kind).ok_or_else(|| unknown_kind(issue))?;
                match &issue.local_version {
                    Some(json) => {
                        let row = columns_from_json(kind, json).ok_or_else(|| {
                            BackendError::Refused(format!(
                                "issue {} holds a change in the form of an earlier version, which cannot be replayed; \
                                 make the change again by hand, then `memorygraph conflicts clear`",
                                issue.seq
                            ))
                        })?;
                        if !feed::put_row(tx, kind, &row).await? {
                            return Err(BackendError::Refused(format!(
                                "issue {}: relationship {} links a memory that is no longer here",
                                issue.seq, issue.row_id
                            )));
                        }
                    }
                    None => feed::remove_row(tx, kind, &issue.row_id).await?,
                }
                forget(tx, issue.seq).await?;
            }
            Ok(issues.len() as u64)
        })
        .await?;
        drop(conn);
        self.after_write();
        Ok(done)
    }

    /// Keeps the primary's version of each chosen row: a set-aside write's row is copied
    /// from the primary at the next sync; a conflict's already is. The issues go.
    pub async fn discard_issues(&self, which: Which) -> Result<u64> {
        let issues = self.chosen(which).await?;
        let conn = self.conn.lock().await;
        let done = crate::backend::in_write(&conn, "discarding sync issues", async |tx| {
            let mut adopt: Vec<(String, String)> = state::get(tx, ADOPT)
                .await?
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default();
            for issue in &issues {
                if issue.issue == IssueKind::SetAside {
                    adopt.push((issue.kind.clone(), issue.row_id.clone()));
                }
                forget(tx, issue.seq).await?;
            }
            let json = serde_json::to_string(&adopt).expect("plain strings");
            state::set(tx, ADOPT, Some(&json)).await?;
            Ok(issues.len() as u64)
        })
        .await?;
        drop(conn);
        self.after_write();
        Ok(done)
    }

    /// Forgets issues (all, or those older than `days`) without acting on them.
    pub async fn clear_issues(&self, older_than_days: Option<i64>) -> Result<u64> {
        self.replica_mode()?;
        let conn = self.conn.lock().await;
        clear_older(&conn, older_than_days).await
    }

    /// During a sync: copies the primary's version of discarded set-aside rows here, and
    /// forgets issues past the retention.
    pub(crate) async fn settle_issues(&self, replica: &Replica) -> Result<()> {
        let adopt: Vec<(String, String)> = {
            let conn = self.conn.lock().await;
            clear_older(&conn, Some(KEPT_DAYS)).await?;
            state::get(&conn, ADOPT)
                .await?
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default()
        };
        if adopt.is_empty() {
            return Ok(());
        }
        let mut theirs = Vec::new();
        {
            let rconn = replica.conn.lock().await;
            for (kind, id) in &adopt {
                let Some(kind) = Kind::parse(kind) else {
                    continue;
                };
                let row = feed::read_rows(&rconn, kind, &[id.as_str()]).await?;
                theirs.push((kind, id.clone(), row.get(id).cloned()));
            }
        }
        let conn = self.conn.lock().await;
        crate::backend::in_write(&conn, "keeping the primary's versions", async |tx| {
            pulling(tx, true).await?;
            let pushed = state::get_i64(tx, state::PUSHED).await?;
            for (kind, id, row) in &theirs {
                let c = feed::Changed {
                    kind: *kind,
                    id: id.clone(),
                };
                drop_unpushed(tx, &c, pushed).await?;
                match row {
                    Some(row) => {
                        feed::put_row(tx, *kind, row).await?;
                    }
                    None => feed::remove_row(tx, *kind, id).await?,
                }
            }
            state::set(tx, ADOPT, None).await?;
            pulling(tx, false).await
        })
        .await
    }

    async fn chosen(&self, which: Which) -> Result<Vec<SyncIssue>> {
        self.replica_mode()?;
        let all = {
            let conn = self.conn.lock().await;
            state::issues(&conn, u32::MAX).await?
        };
        match which {
            Which::All => Ok(all),
            Which::One(seq) => match all.into_iter().find(|i| i.seq == seq) {
                Some(issue) => Ok(vec![issue]),
                None => Err(BackendError::NotFound {
                    what: "Sync issue",
                    id: seq.to_string(),
                }),
            },
        }
    }

    fn replica_mode(&self) -> Result<()> {
        if self.sync.is_none() {
            return Err(BackendError::Refused(
                "there are no sync issues in local mode: TURSO_DATABASE_URL is not set".into(),
            ));
        }
        Ok(())
    }
}

async fn forget(tx: &libsql::Connection, seq: i64) -> Result<()> {
    tx.execute(
        "DELETE FROM memorygraph_sync_issues WHERE seq = ?1",
        libsql::params![seq],
    )
    .await
    .doing("forgetting a sync issue")?;
    Ok(())
}

async fn clear_older(conn: &libsql::Connection, days: Option<i64>) -> Result<u64> {
    // `detected_at` is ISO 8601, which julianday() reads with its offset.
    let cut = match days {
        Some(days) => format!("-{days} days"),
        None => "+1000 years".to_string(),
    };
    conn.execute(
        "DELETE FROM memorygraph_sync_issues WHERE julianday(detected_at) < julianday('now', ?1)",
        libsql::params![cut],
    )
    .await
    .doing("forgetting sync issues")
}

fn unknown_kind(issue: &SyncIssue) -> BackendError {
    BackendError::Refused(format!(
        "issue {} is about a {:?}, which this version does not know",
        issue.seq, issue.kind
    ))
}

/// A row from its issue-log JSON (see `state::row_json`); `None` for another form.
fn columns_from_json(kind: Kind, json: &str) -> Option<feed::Columns> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).ok()?;
    kind.columns()
        .iter()
        .map(|name| {
            Some(match map.get(*name)? {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::String(s) => Value::Text(s.clone()),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Integer(i),
                    None => Value::Real(n.as_f64()?),
                },
                _ => return None,
            })
        })
        .collect()
}

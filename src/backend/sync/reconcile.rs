//! Comparing every row with the primary, when the feeds cannot say what changed: at the
//! first sync of a working file with a primary (a new device, or a local file that becomes
//! a replica), when this file has not pulled for so long that the primary pruned the feed
//! entries it had not read yet, and when `memorygraph resync` asks for it.
//!
//! What settles a row that differs is a [`Policy`]; every comparison reports what it did.

use libsql::Connection;

use super::feed::{self, Changed, Kind};
use super::pull::{drop_unpushed, pulling, unpushed};
use super::replica::{Reconciled, Replica};
use super::state::{self, IssueKind};
use crate::backend::error::{DbContext, Result};
use crate::backend::{TursoBackend, all_rows, first_row};

/// Rows compared per transaction.
const CHUNK: usize = 500;

/// Marks that a full comparison was done with the current primary.
pub const RECONCILED: &str = "reconciled_at";
/// A comparison asked for by `memorygraph resync`: `push_local`, `discard_local` or `rebuild`.
pub const ASKED: &str = "reconcile";
/// When this file last synced successfully (ISO time): rows the primary has, this file
/// lacks, and that were created before it were deleted here.
pub const SYNCED_AT: &str = "synced_at";

/// How to settle a row that differs between this file and the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// First sync of this file with this primary: only here → push; only there → copy;
    /// both, different → conflict, the primary's kept.
    Fresh,
    /// Same primary, but the feeds cannot be trusted (pruned, or a rebuilt replica): rows
    /// changed here since the last push are pushed; every other row follows the primary.
    CatchUp,
    /// `resync --push-local`: this file wins. Only here or different → push; only there →
    /// deleted there when it is older than this file's last sync (it was deleted here),
    /// copied here when newer (another device made it since).
    PushLocal,
    /// `resync --discard-local`: the primary wins, changes made here are dropped.
    DiscardLocal,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Fresh => "fresh",
            Policy::CatchUp => "rebuild",
            Policy::PushLocal => "push_local",
            Policy::DiscardLocal => "discard_local",
        }
    }

    fn parse(s: &str) -> Option<Policy> {
        match s {
            "fresh" => Some(Policy::Fresh),
            "rebuild" => Some(Policy::CatchUp),
            "push_local" => Some(Policy::PushLocal),
            "discard_local" => Some(Policy::DiscardLocal),
            _ => None,
        }
    }
}

impl TursoBackend {
    /// Compares every row when the feeds cannot be trusted to name every change: the
    /// first sync, a pruned feed, or a comparison `memorygraph resync` asked for.
    pub(crate) async fn reconcile_once(&self, replica: &Replica) -> Result<Option<Reconciled>> {
        let (done, pulled, asked, synced_at) = {
            let conn = self.conn.lock().await;
            (
                state::get(&conn, RECONCILED).await?,
                state::get_i64(&conn, state::PULLED).await?,
                state::get(&conn, ASKED)
                    .await?
                    .and_then(|a| Policy::parse(&a)),
                state::get(&conn, SYNCED_AT).await?,
            )
        };
        let (floor, last) = {
            let rconn = replica.conn.lock().await;
            (feed_floor(&rconn).await?, feed::last_seq(&rconn).await?)
        };
        let policy = match (asked, done) {
            (Some(p), _) => p,
            (None, None) => Policy::Fresh,
            (None, Some(_)) if pulled < floor => Policy::CatchUp,
            (None, Some(_)) => return Ok(None),
        };
        tracing::info!("comparing every row with the primary ({})", policy.as_str());
        let mut report = Reconciled::default();
        if matches!(policy, Policy::Fresh | Policy::DiscardLocal) {
            // Everything this file changed before is decided by the comparison.
            let conn = self.conn.lock().await;
            let mine = feed::last_seq(&conn).await?;
            state::set(&conn, state::PUSHED, Some(&mine.to_string())).await?;
        }
        for kind in [Kind::Node, Kind::Relationship] {
            let mut ids = {
                let rconn = replica.conn.lock().await;
                all_ids(&rconn, kind).await?
            };
            {
                let conn = self.conn.lock().await;
                ids.extend(all_ids(&conn, kind).await?);
            }
            ids.sort();
            ids.dedup();
            for chunk in ids.chunks(CHUNK) {
                self.compare_chunk(
                    replica,
                    kind,
                    chunk,
                    policy,
                    synced_at.as_deref(),
                    &mut report,
                )
                .await?;
            }
        }
        let conn = self.conn.lock().await;
        state::set(&conn, state::PULLED, Some(&last.to_string())).await?;
        state::set(&conn, state::OWN_RANGES, None).await?;
        state::set(&conn, RECONCILED, Some(&crate::model::now_iso())).await?;
        state::set(&conn, ASKED, None).await?;
        Ok(Some(report))
    }

    async fn compare_chunk(
        &self,
        replica: &Replica,
        kind: Kind,
        ids: &[String],
        policy: Policy,
        synced_at: Option<&str>,
        report: &mut Reconciled,
    ) -> Result<()> {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let theirs = {
            let rconn = replica.conn.lock().await;
            feed::read_rows(&rconn, kind, &refs).await?
        };
        let conn = self.conn.lock().await;
        crate::backend::in_write(&conn, "comparing rows with the primary", async |tx| {
            pulling(tx, true).await?;
            let pushed = state::get_i64(tx, state::PUSHED).await?;
            let mine = feed::read_rows(tx, kind, &refs).await?;
            for id in ids {
                let c = Changed {
                    kind,
                    id: id.clone(),
                };
                let (m, t) = (mine.get(id), theirs.get(id));
                if let (Some(a), Some(b)) = (m, t)
                    && feed::same(a, b)
                {
                    drop_unpushed(tx, &c, pushed).await?;
                    report.identical += 1;
                    continue;
                }
                if m.is_none() && t.is_none() {
                    continue;
                }
                let changed_here = policy == Policy::CatchUp && unpushed(tx, &c, pushed).await?;
                let push = match (policy, m, t) {
                    (Policy::CatchUp, _, _) if changed_here => continue,
                    (Policy::Fresh | Policy::PushLocal, Some(_), None) => true,
                    (Policy::PushLocal, Some(_), Some(_)) => true,
                    (Policy::PushLocal, None, Some(b)) => created_before(kind, b, synced_at),
                    (Policy::Fresh, Some(a), Some(b)) => {
                        state::record_issue(
                            tx,
                            IssueKind::Conflict,
                            kind,
                            id,
                            &format!(
                                "{} {id} differs here and on the primary, whose version is kept",
                                kind.as_str()
                            ),
                            Some(a),
                            Some(b),
                        )
                        .await?;
                        report.conflicts += 1;
                        false
                    }
                    _ => false,
                };
                if push {
                    tx.execute(
                        "INSERT INTO memorygraph_feed (kind, row_id) VALUES (?1, ?2)",
                        libsql::params![kind.as_str(), id.as_str()],
                    )
                    .await
                    .doing("marking a row to push")?;
                    if m.is_some() {
                        report.to_push += 1;
                    } else {
                        report.to_delete_there += 1;
                    }
                    continue;
                }
                drop_unpushed(tx, &c, pushed).await?;
                match t {
                    Some(b) => {
                        feed::put_row(tx, kind, b).await?;
                        report.copied_here += 1;
                    }
                    None => {
                        feed::remove_row(tx, kind, id).await?;
                        report.removed_here += 1;
                    }
                }
            }
            pulling(tx, false).await
        })
        .await
    }
}

/// Whether a row was created before this file's last sync (so this file knew it, and its
/// absence here is a delete). The row's own ISO time is used (a memory's `created_at` in
/// its properties, a relationship's `recorded_at`), not the second-precision column: a row
/// made in the same second as the last sync must not count as known. Rows without a
/// readable time count as known.
fn created_before(kind: Kind, row: &feed::Columns, synced_at: Option<&str>) -> bool {
    let Some(synced) = synced_at.and_then(parse_time) else {
        return false;
    };
    let text = |name: &str| {
        let i = kind.columns().iter().position(|c| *c == name)?;
        match &row[i] {
            libsql::Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    };
    let created = match kind {
        Kind::Node => text("properties").and_then(|p| {
            serde_json::from_str::<serde_json::Value>(&p)
                .ok()?
                .get("created_at")?
                .as_str()
                .map(str::to_string)
        }),
        Kind::Relationship => text("recorded_at"),
    };
    match created.as_deref().and_then(parse_time) {
        Some(created) => created < synced,
        None => true,
    }
}

fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(t).ok()
}

/// How far the primary has pruned its feed: a file that pulled less must compare rows.
pub(super) async fn feed_floor(replica_conn: &Connection) -> Result<i64> {
    Ok(first_row(
        replica_conn,
        "SELECT CAST(value AS INTEGER) FROM memorygraph_meta WHERE key = 'feed_floor'",
        (),
        "reading the primary's feed floor",
    )
    .await?
    .map(|r| r.int(0))
    .unwrap_or(0))
}

async fn all_ids(conn: &Connection, kind: Kind) -> Result<Vec<String>> {
    let rows = conn
        .query(&format!("SELECT id FROM {} ORDER BY id", kind.table()), ())
        .await
        .doing("listing rows to compare")?;
    Ok(all_rows(rows, "listing rows to compare")
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect())
}

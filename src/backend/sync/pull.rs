//! Pulling: the embedded replica brings the primary's pages (libsql's replication), then the
//! rows the primary's feed names are copied from the replica into the working file, in the
//! order they changed. A row this machine changed and has not pushed yet is not
//! overwritten: if the primary's version differs, that is a conflict, recorded with both
//! versions, and the primary's is kept (as every device then agrees); if both are the same,
//! there is nothing left to push.

use libsql::Connection;

use super::feed::{self, Changed, Kind};
use super::replica::Replica;
use super::state::{self, IssueKind};
use crate::backend::error::{DbContext, Result};
use crate::backend::{TursoBackend, all_rows};

/// Feed entries read per round; each round is one transaction on the working file.
const ROUND: i64 = 1000;

/// What a pull copied.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pulled {
    pub rows: u64,
    pub conflicts: u64,
}

impl TursoBackend {
    /// Copies what the replica holds past the last pulled seq into the working file.
    pub(crate) async fn apply_pulled(&self, replica: &Replica) -> Result<Pulled> {
        let mut total = Pulled::default();
        loop {
            let pulled = {
                let conn = self.conn.lock().await;
                state::get_i64(&conn, state::PULLED).await?
            };
            let (entries, last) = {
                let rconn = replica.conn.lock().await;
                feed::entries_after(&rconn, pulled, ROUND).await?
            };
            let Some(last) = last else {
                return Ok(total);
            };
            let (mut own, device) = {
                let conn = self.conn.lock().await;
                (
                    state::own_ranges(&conn).await?,
                    self.device_id(&conn).await?,
                )
            };
            // And the ranges the primary's push log names as this file's: a push whose
            // process died before it recorded the push here is still this file's own.
            {
                let rconn = replica.conn.lock().await;
                own.extend(super::push::logged_ranges(&rconn, &device, pulled).await?);
            }
            // Entries this machine's pushes wrote: this file holds those rows, or newer.
            let changed = feed::distinct(&entries, |seq| {
                own.iter().any(|(from, to)| (*from..=*to).contains(&seq))
            });
            let round = self.apply_round(replica, &changed, last, &own).await?;
            total.rows += round.rows;
            total.conflicts += round.conflicts;
        }
    }

    /// One round: the rows' current versions from the replica, written into the working
    /// file in one transaction that also moves the pulled seq.
    async fn apply_round(
        &self,
        replica: &Replica,
        changed: &[Changed],
        last: i64,
        own: &[(i64, i64)],
    ) -> Result<Pulled> {
        let remote = {
            let rconn = replica.conn.lock().await;
            feed::current_rows(&rconn, changed).await?
        };
        let conn = self.conn.lock().await;
        let out = crate::backend::in_write(&conn, "copying pulled rows", async |tx| {
            pulling(tx, true).await?;
            let mut done = Pulled::default();
            let pushed = state::get_i64(tx, state::PUSHED).await?;
            for (c, theirs) in &remote {
                done.conflicts += u64::from(copy_row(tx, c, theirs.as_ref(), pushed).await?);
                done.rows += 1;
            }
            state::set(tx, state::PULLED, Some(&last.to_string())).await?;
            state::set_own_ranges(tx, own, last).await?;
            pulling(tx, false).await?;
            Ok(done)
        })
        .await?;
        drop(conn);
        if out.rows > 0 {
            self.after_write();
        }
        Ok(out)
    }
}

/// Writes the primary's version of one row into the working file, unless this machine has
/// changed the row since it last pushed; returns whether that made a conflict.
async fn copy_row(
    tx: &Connection,
    c: &Changed,
    theirs: Option<&feed::Columns>,
    pushed: i64,
) -> Result<bool> {
    let mine = feed::read_rows(tx, c.kind, &[c.id.as_str()]).await?;
    let mine = mine.get(&c.id);
    let mut conflict = false;
    if unpushed(tx, c, pushed).await? {
        let same = match (mine, theirs) {
            (Some(a), Some(b)) => feed::same(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            state::record_issue(
                tx,
                IssueKind::Conflict,
                c.kind,
                &c.id,
                &match (mine, theirs) {
                    (None, _) => format!(
                        "{} {} was deleted here but changed on the primary before the delete reached it; the primary's version is kept",
                        what(c.kind),
                        c.id
                    ),
                    (_, None) => format!(
                        "{} {} was changed here but deleted on the primary before the change reached it; it stays deleted",
                        what(c.kind),
                        c.id
                    ),
                    _ => format!(
                        "{} {} changed here and on the primary before this change reached it; the primary's version is kept",
                        what(c.kind),
                        c.id
                    ),
                },
                mine,
                theirs,
            )
            .await?;
            conflict = true;
        }
        drop_unpushed(tx, c, pushed).await?;
        if same {
            return Ok(false);
        }
    }
    match theirs {
        Some(row) => {
            if !feed::put_row(tx, c.kind, row).await? {
                tracing::debug!(
                    row = c.id,
                    "a pulled link to a memory not here was left out"
                );
            }
        }
        None => {
            if c.kind == Kind::Node {
                record_lost_links(tx, &c.id, pushed).await?;
            }
            feed::remove_row(tx, c.kind, &c.id).await?;
        }
    }
    Ok(conflict)
}

/// Links made here to a memory another device deleted go with it: say so.
async fn record_lost_links(tx: &Connection, node: &str, pushed: i64) -> Result<()> {
    let rows = tx
        .query(
            "SELECT r.id FROM relationships r
             WHERE (r.from_id = ?1 OR r.to_id = ?1)
               AND EXISTS (SELECT 1 FROM memorygraph_feed f
                           WHERE f.kind = 'relationship' AND f.row_id = r.id AND f.seq > ?2)",
            libsql::params![node, pushed],
        )
        .await
        .doing("reading links made here")?;
    for r in all_rows(rows, "reading links made here").await? {
        let id = r.text(0);
        let link = Changed {
            kind: Kind::Relationship,
            id: id.clone(),
        };
        let mine = feed::read_rows(tx, Kind::Relationship, &[id.as_str()]).await?;
        state::record_issue(
            tx,
            IssueKind::Conflict,
            Kind::Relationship,
            &id,
            &format!(
                "relationship {id} was made here to memory {node}, which was deleted on the primary meanwhile; it is removed with it"
            ),
            mine.get(&id),
            None,
        )
        .await?;
        drop_unpushed(tx, &link, pushed).await?;
    }
    Ok(())
}

fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Node => "memory",
        Kind::Relationship => "relationship",
    }
}

/// Whether the working file changed this row after its last push.
pub(super) async fn unpushed(tx: &Connection, c: &Changed, pushed: i64) -> Result<bool> {
    Ok(crate::backend::first_row(
        tx,
        "SELECT 1 FROM memorygraph_feed WHERE row_id = ?1 AND kind = ?2 AND seq > ?3 LIMIT 1",
        libsql::params![c.id.as_str(), c.kind.as_str(), pushed],
        "reading the change feed",
    )
    .await?
    .is_some())
}

/// Forgets this machine's unpushed changes of a row (they were the primary's already, or
/// lost to its version and are in the issue log).
pub(super) async fn drop_unpushed(tx: &Connection, c: &Changed, pushed: i64) -> Result<()> {
    tx.execute(
        "DELETE FROM memorygraph_feed WHERE row_id = ?1 AND kind = ?2 AND seq > ?3",
        libsql::params![c.id.as_str(), c.kind.as_str(), pushed],
    )
    .await
    .doing("updating the change feed")?;
    Ok(())
}

/// Marks the transaction as a pull, so the feed's triggers leave its writes out.
pub(super) async fn pulling(tx: &Connection, on: bool) -> Result<()> {
    tx.execute(
        "UPDATE memorygraph_meta SET value = ?1 WHERE key = 'applying_pull'",
        libsql::params![if on { "1" } else { "0" }],
    )
    .await
    .doing("marking a pull")?;
    Ok(())
}

//! Pushing: the rows this machine changed (its own feed past the pushed seq) are written on
//! the primary as they are now, many rows per request, in one transaction that first makes
//! sure the primary is still the database this file syncs with and that no other device
//! changed those rows since the last pull (if one did, a pull runs first and decides). A
//! push that the primary, or something in front of it, refuses for good is retried row by
//! row: the refused row is set aside with its reason and the others go on.

use std::time::{Duration, Instant};

use libsql::{Connection, TransactionBehavior, Value};

use super::feed::{self, Changed};
use super::replica::{Failure, Replica, classify};
use super::state::{self, IssueKind};
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::{TursoBackend, all_rows, first_row};

/// Feed entries pushed per request.
const BATCH: i64 = 400;

/// How long one push request may take before it counts as unanswered. Generous: nobody
/// waits for it, and a slow link must still make progress.
pub const PUSH_WAIT: Duration = Duration::from_secs(60);

/// What a push did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pushed {
    pub rows: u64,
    pub set_aside: u64,
    /// Another device changed some of the rows since the last pull: pull, then push again.
    pub needs_pull: bool,
}

/// One batch, read from the working file.
struct Batch {
    rows: Vec<(Changed, Option<feed::Columns>)>,
    last: i64,
}

impl TursoBackend {
    /// Pushes everything unpushed, batch after batch; stops early when a pull must come
    /// first.
    pub(crate) async fn push_local(&self, replica: &Replica) -> Result<Pushed> {
        let mut total = Pushed::default();
        loop {
            let Some(batch) = self.next_batch().await? else {
                return Ok(total);
            };
            let outcome = self.push_batch(replica, &batch.rows).await;
            match outcome {
                Ok(Some(range)) => {
                    self.pushed_through(batch.last, Some(range)).await?;
                    total.rows += batch.rows.len() as u64;
                    replica.count_pushed(batch.rows.len() as u64, false);
                }
                Ok(None) => {
                    total.needs_pull = true;
                    return Ok(total);
                }
                Err(e) if classify(&e) == Failure::Unreachable => return Err(e),
                Err(e) => {
                    tracing::debug!("a push was refused, trying its rows one by one: {e}");
                    let one = self.push_one_by_one(replica, &batch).await?;
                    total.rows += one.rows;
                    total.set_aside += one.set_aside;
                    if one.needs_pull {
                        total.needs_pull = true;
                        return Ok(total);
                    }
                }
            }
        }
    }

    /// The next rows to push: this file's feed past the pushed seq, each row once, as it
    /// is now (`None`: deleted).
    async fn next_batch(&self) -> Result<Option<Batch>> {
        let conn = self.conn.lock().await;
        let pushed = state::get_i64(&conn, state::PUSHED).await?;
        let (changed, last) = feed::changed_since(&conn, pushed, BATCH).await?;
        let Some(last) = last else {
            return Ok(None);
        };
        let rows = feed::current_rows(&conn, &changed).await?;
        Ok(Some(Batch { rows, last }))
    }

    /// Moves the pushed seq and remembers the primary's feed range the push wrote.
    async fn pushed_through(&self, last: i64, range: Option<(i64, i64)>) -> Result<()> {
        let conn = self.conn.lock().await;
        crate::backend::in_write(&conn, "recording a push", async |tx| {
            state::set(tx, state::PUSHED, Some(&last.to_string())).await?;
            if let Some(range) = range {
                let mut ranges = state::own_ranges(tx).await?;
                ranges.push(range);
                let pulled = state::get_i64(tx, state::PULLED).await?;
                state::set_own_ranges(tx, &ranges, pulled).await?;
            }
            Ok(())
        })
        .await
    }

    /// Writes rows on the primary in one transaction. `Ok(None)`: another device changed
    /// one of them since the last pull, nothing was written. `Ok(Some(range))`: written;
    /// the primary's feed seqs the write made.
    async fn push_batch(
        &self,
        replica: &Replica,
        rows: &[(Changed, Option<feed::Columns>)],
    ) -> Result<Option<(i64, i64)>> {
        let (pulled, own, expected_id, device) = self.push_state().await?;
        let ids: Vec<&str> = rows.iter().map(|(c, _)| c.id.as_str()).collect();
        let started = Instant::now();
        let conn = replica
            .remote
            .connect()
            .doing("connecting to the primary")?;
        let work = async {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .await
                .doing("starting a push")?;
            let outcome = async {
                let mut own = own;
                own.extend(logged_ranges(&tx, &device, pulled).await?);
                let before = guard(&tx, &ids, pulled, &own, expected_id.as_deref()).await?;
                let Some(before) = before else {
                    return Ok(None);
                };
                write_rows(&tx, rows).await?;
                let after = last_seq(&tx).await?;
                log_push(&tx, &device, (before + 1, after), pulled).await?;
                Ok(Some((before + 1, after)))
            }
            .await;
            crate::backend::end_write(tx, outcome, "pushing rows").await
        };
        let outcome = match tokio::time::timeout(PUSH_WAIT, work).await {
            Ok(outcome) => outcome,
            Err(_) => Err(BackendError::Unreachable(format!(
                "the primary did not answer a push within {} s",
                PUSH_WAIT.as_secs()
            ))),
        };
        replica.record(
            started,
            outcome
                .as_ref()
                .map(|_| None)
                .map_err(|e| replica.describe(e)),
        );
        outcome
    }

    /// After a refusal: each row alone. A row the primary refuses as a statement is set
    /// aside at once; a row refused by its token or by something in front of the primary
    /// is set aside only when other rows of the push went through (so the refusal is about
    /// that row), else the whole push waits and is retried like an unreachable primary.
    async fn push_one_by_one(&self, replica: &Replica, batch: &Batch) -> Result<Pushed> {
        let mut done = Pushed::default();
        let mut held = Vec::new();
        for (c, row) in &batch.rows {
            match self
                .push_batch(replica, std::slice::from_ref(&(c.clone(), row.clone())))
                .await
            {
                Ok(Some(range)) => {
                    self.remember_range(range).await?;
                    done.rows += 1;
                    replica.count_pushed(1, false);
                }
                Ok(None) => {
                    done.needs_pull = true;
                    return Ok(done);
                }
                Err(e) => match classify(&e) {
                    Failure::Unreachable => return Err(e),
                    Failure::Statement => {
                        self.set_aside(replica, c, row.as_ref(), &e).await?;
                        done.set_aside += 1;
                    }
                    Failure::Token | Failure::Refused => held.push((c, row, e)),
                },
            }
        }
        if done.rows == 0 && !held.is_empty() {
            let (_, _, e) = held.swap_remove(0);
            return Err(e);
        }
        for (c, row, e) in &held {
            self.set_aside(replica, c, row.as_ref(), e).await?;
            done.set_aside += 1;
        }
        self.pushed_through(batch.last, None).await?;
        Ok(done)
    }

    async fn set_aside(
        &self,
        replica: &Replica,
        c: &Changed,
        row: Option<&feed::Columns>,
        e: &BackendError,
    ) -> Result<()> {
        let reason = format!(
            "this change was refused and would be again, while other changes went through: {}",
            replica.describe(e)
        );
        let conn = self.conn.lock().await;
        state::record_issue(
            &conn,
            IssueKind::SetAside,
            c.kind,
            &c.id,
            &reason,
            row,
            None,
        )
        .await?;
        replica.count_pushed(1, true);
        Ok(())
    }

    async fn remember_range(&self, range: (i64, i64)) -> Result<()> {
        let conn = self.conn.lock().await;
        let mut ranges = state::own_ranges(&conn).await?;
        ranges.push(range);
        let pulled = state::get_i64(&conn, state::PULLED).await?;
        state::set_own_ranges(&conn, &ranges, pulled).await
    }

    /// What a push checks on the primary: the last pulled seq, the feed ranges this machine
    /// wrote, the primary's id, and this file's name in the push log.
    async fn push_state(&self) -> Result<(i64, Vec<(i64, i64)>, Option<String>, String)> {
        let conn = self.conn.lock().await;
        Ok((
            state::get_i64(&conn, state::PULLED).await?,
            state::own_ranges(&conn).await?,
            state::get(&conn, state::PRIMARY_ID).await?,
            self.device_id(&conn).await?,
        ))
    }

    /// This working file's name in the primary's push log.
    pub(super) async fn device_id(&self, conn: &Connection) -> Result<String> {
        state::device(conn, &state::place_of(&self.path)).await
    }

    /// Rows still to push (feed entries past the pushed seq).
    pub async fn unpushed_count(&self) -> Result<i64> {
        let conn = self.conn.lock().await;
        let pushed = state::get_i64(&conn, state::PUSHED).await?;
        feed::count_after(&conn, pushed).await
    }
}

/// Writes rows on the primary in order: as SQL text, many statements per request, and a row
/// whose text SQL cannot hold as a literal (a NUL) alone with parameters, in its place.
pub(super) async fn write_rows(
    tx: &Connection,
    rows: &[(Changed, Option<feed::Columns>)],
) -> Result<()> {
    let mut statements: Vec<String> = Vec::new();
    for (c, row) in rows {
        if let Some(s) = feed::statements(c.kind, &c.id, row.as_ref()) {
            statements.extend(s);
            continue;
        }
        flush(tx, &mut statements).await?;
        match row {
            Some(row) => {
                feed::put_row(tx, c.kind, row).await?;
            }
            None => feed::remove_row(tx, c.kind, &c.id).await?,
        }
    }
    flush(tx, &mut statements).await
}

async fn flush(tx: &Connection, statements: &mut Vec<String>) -> Result<()> {
    if !statements.is_empty() {
        tx.execute_batch(&statements.join(";\n"))
            .await
            .doing("pushing rows")?;
        statements.clear();
    }
    Ok(())
}

/// Inside the push transaction: is the primary the database this file syncs with, and has
/// no other device changed these rows since the last pull? `Some(last seq)` when the push
/// may go ahead.
async fn guard(
    tx: &Connection,
    ids: &[&str],
    pulled: i64,
    own: &[(i64, i64)],
    expected_id: Option<&str>,
) -> Result<Option<i64>> {
    let id = first_row(
        tx,
        "SELECT value FROM memorygraph_meta WHERE key = 'database_id'",
        (),
        "checking the primary before a push",
    )
    .await?
    .map(|r| r.text(0));
    if let Some(expected) = expected_id
        && id.as_deref() != Some(expected)
    {
        return Err(BackendError::Diverged(
            "the primary is no longer the database this file syncs with".into(),
        ));
    }
    let mut changed_elsewhere = false;
    for chunk in ids.chunks(200) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut params: Vec<Value> = vec![Value::from(pulled)];
        params.extend(chunk.iter().map(|id| Value::from(id.to_string())));
        let rows = tx
            .query(
                &format!("SELECT seq FROM memorygraph_feed WHERE seq > ?1 AND row_id IN ({marks})"),
                params,
            )
            .await
            .doing("checking the primary before a push")?;
        for r in all_rows(rows, "checking the primary before a push").await? {
            let seq = r.int(0);
            if !own.iter().any(|(from, to)| (*from..=*to).contains(&seq)) {
                changed_elsewhere = true;
            }
        }
    }
    if changed_elsewhere {
        return Ok(None);
    }
    Ok(Some(last_seq(tx).await?))
}

/// Records in the push's own transaction which range of the primary's feed this device
/// wrote, and forgets its ranges a pull has passed: one request, with the values written
/// in (the device id is a uuid, [`state::device`] checks it; the rest are numbers).
async fn log_push(tx: &Connection, device: &str, range: (i64, i64), pulled: i64) -> Result<()> {
    tx.execute_batch(&format!(
        "DELETE FROM memorygraph_pushes WHERE device = '{device}' AND last_seq <= {pulled};
         INSERT INTO memorygraph_pushes (device, first_seq, last_seq) VALUES ('{device}', {}, {})",
        range.0, range.1
    ))
    .await
    .doing("recording a push")?;
    Ok(())
}

/// The ranges of the primary's feed past `after` that the push log says `device` wrote: on
/// the primary inside a push, or on the replica before a pull. A primary from before the
/// log has none.
pub(super) async fn logged_ranges(
    conn: &Connection,
    device: &str,
    after: i64,
) -> Result<Vec<(i64, i64)>> {
    let rows = match conn
        .query(
            "SELECT first_seq, last_seq FROM memorygraph_pushes WHERE device = ?1 AND last_seq > ?2",
            libsql::params![device, after],
        )
        .await
        .doing("reading the push log")
    {
        Ok(rows) => rows,
        Err(e) if super::replica::is_missing_tables(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(all_rows(rows, "reading the push log")
        .await?
        .iter()
        .map(|r| (r.int(0), r.int(1)))
        .collect())
}

async fn last_seq(tx: &Connection) -> Result<i64> {
    Ok(first_row(
        tx,
        "SELECT coalesce(max(seq), 0) FROM memorygraph_feed",
        (),
        "reading the primary's change feed",
    )
    .await?
    .map(|r| r.int(0))
    .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sync::feed::Kind;

    /// A row SQL cannot hold as a literal (here an infinite time, which another program
    /// could write) is written with parameters in its place, and the rows around it are
    /// written too (they once were not).
    #[tokio::test]
    async fn a_row_with_a_nul_is_written_in_its_place_and_the_others_too() {
        let (_from_db, from) = crate::backend::schema::test_database().await;
        let (_to_db, to) = crate::backend::schema::test_database().await;
        from.execute(
            "INSERT INTO nodes (id, label, properties, created_at) VALUES ('a', 'Memory', '{}', 9e999), ('b', 'Memory', '{}', ?1)",
            libsql::params!["2026-12-04 10:00:00"],
        )
        .await
        .unwrap();
        from.execute_batch(
            "INSERT INTO relationships (id, from_id, to_id, rel_type, properties) VALUES ('r', 'a', 'b', 'SOLVES', '{}')",
        )
        .await
        .unwrap();
        let changed = [
            ("a", Kind::Node),
            ("b", Kind::Node),
            ("r", Kind::Relationship),
        ]
        .map(|(id, kind)| Changed {
            kind,
            id: id.to_string(),
        });
        let rows = feed::current_rows(&from, &changed).await.unwrap();
        assert!(feed::statements(Kind::Node, "a", rows[0].1.as_ref()).is_none());
        write_rows(&to, &rows).await.unwrap();
        for (c, row) in &rows {
            let there = feed::read_rows(&to, c.kind, &[c.id.as_str()])
                .await
                .unwrap();
            assert!(feed::same(row.as_ref().unwrap(), &there[&c.id]), "{}", c.id);
        }
    }
}

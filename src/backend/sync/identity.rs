//! Is the primary still the database this replica came from? A primary that was reset,
//! replaced or restored hands a replica a different history, and libsql would replace the
//! local copy with it at the next pull, silently. So every database gets a random id when
//! its schema is created (in `memorygraph_meta`), the working file remembers the id it
//! synced with and the primary's change count then (in its sync state), and both are
//! compared before anything is pulled.

use std::time::Duration;

use super::replica::{Replica, is_missing_tables, redact_url};
use super::state::{self, DIVERGED, PRIMARY_CHANGES, PRIMARY_ID};
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::{TursoBackend, first_row};

/// What the primary says about itself.
#[derive(Debug, PartialEq)]
enum Identity {
    /// No memorygraph tables at all: an empty (reset or new) primary.
    NoTables,
    /// Tables from before the id existed.
    NoId,
    /// The id and how many changes the primary's history holds.
    Id(String, i64),
}

/// Reads the id and the change count (in one statement, one round trip).
const IDENTITY_QUERY: &str =
    "SELECT (SELECT value FROM memorygraph_meta WHERE key = 'database_id'),
        (SELECT CAST(value AS INTEGER) FROM memorygraph_meta WHERE key = 'changes')";

/// What to tell the user to run when the histories part.
pub const RESYNC_HINT: &str = "syncing is stopped and this machine's memories are kept as they are; run `memorygraph resync --push-local` \
     to put this copy's memories and relationships on the primary, or `memorygraph resync --discard-local` to adopt the primary as it is";

impl TursoBackend {
    /// Compares the primary's id with the one this replica remembers, before a pull. On a
    /// mismatch the replica is marked diverged (durably) and the error says what happened.
    pub(crate) async fn check_primary(&self, replica: &Replica, wait: Duration) -> Result<()> {
        if let Some(reason) = replica.diverged() {
            return Err(BackendError::Diverged(reason));
        }
        let wait = wait.min(super::replica::IDENTITY_WAIT);
        let seen = match tokio::time::timeout(wait, identity(replica)).await {
            Ok(seen) => seen?,
            Err(_) => {
                return Err(BackendError::Unreachable(format!(
                    "the primary did not answer within {} s",
                    wait.as_secs_f64()
                )));
            }
        };
        let (expected, local_changes, local_memories) = {
            let conn = self.conn.lock().await;
            (
                state::get(&conn, PRIMARY_ID).await?,
                state::get_i64(&conn, PRIMARY_CHANGES).await?,
                crate::backend::scalar_i64(
                    &conn,
                    "SELECT count(*) FROM nodes",
                    vec![],
                    "counting memories",
                )
                .await?,
            )
        };
        let url = redact_url(&replica.primary.url);
        let reason = match (&seen, &expected) {
            (Identity::Id(id, changes), Some(known)) if id == known && *changes < local_changes => {
                Some(format!(
                    "the primary {url} is behind this replica ({changes} changes where this replica has seen {local_changes}): \
                     it was restored from an older copy"
                ))
            }
            (Identity::Id(id, _), Some(known)) if id != known => Some(format!(
                "the primary {url} is no longer the database this replica came from (its id changed from {known} to {id}: \
                 it was reset, replaced or restored)"
            )),
            (Identity::NoTables, Some(_)) => Some(format!(
                "the primary {url} has lost its memorygraph tables (it was reset or replaced)"
            )),
            (Identity::NoTables, None) if local_memories > 0 && self.synced_once().await? => {
                Some(format!(
                    "the primary {url} has no memorygraph tables but this file was synced with a primary before (the primary was reset or replaced)"
                ))
            }
            (Identity::NoId, Some(_)) => Some(format!(
                "the primary {url} is no longer the database this replica came from (it has no id where it had one: \
                 it was replaced or restored from an old copy)"
            )),
            _ => None,
        };
        match reason {
            Some(reason) => {
                let reason = format!("{reason}; {RESYNC_HINT}");
                replica.mark_diverged(&reason);
                let conn = self.conn.lock().await;
                state::set(&conn, DIVERGED, Some(&reason)).await?;
                Err(BackendError::Diverged(reason))
            }
            None => Ok(()),
        }
    }

    /// After a good sync: remember the primary's id and change count, so a reset or
    /// restored primary is noticed before the next pull.
    pub(crate) async fn remember_primary(&self, replica: &Replica) -> Result<()> {
        let row = {
            let rconn = replica.conn.lock().await;
            first_row(&rconn, IDENTITY_QUERY, (), "reading the primary's id").await?
        };
        let Some(row) = row.filter(|r| r.opt_text(0).is_some()) else {
            return Ok(());
        };
        let conn = self.conn.lock().await;
        if state::get(&conn, PRIMARY_ID).await?.is_none() {
            tracing::info!("this file syncs with the database {}", row.text(0));
            state::set(&conn, PRIMARY_ID, Some(&row.text(0))).await?;
        }
        state::set(&conn, PRIMARY_CHANGES, Some(&row.int(1).to_string())).await
    }
}

/// Forgets the divergence and the old primary (after `memorygraph resync`): the next sync
/// compares every row with the primary as it is now.
pub async fn forget_primary(conn: &libsql::Connection) -> Result<()> {
    for key in [
        DIVERGED,
        PRIMARY_ID,
        PRIMARY_CHANGES,
        state::PULLED,
        state::OWN_RANGES,
        super::reconcile::RECONCILED,
    ] {
        state::set(conn, key, None).await?;
    }
    Ok(())
}

/// Asks the primary for its id: one round trip when it has one.
async fn identity(replica: &Replica) -> Result<Identity> {
    let conn = replica
        .remote
        .connect()
        .doing("connecting to the primary")?;
    let asked = first_row(&conn, IDENTITY_QUERY, (), "asking the primary for its id").await;
    match asked {
        Ok(Some(row)) if row.opt_text(0).is_some() => Ok(Identity::Id(row.text(0), row.int(1))),
        Ok(_) => Ok(Identity::NoId),
        Err(e) if is_missing_tables(&e) => {
            let nodes = first_row(
                &conn,
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'nodes'",
                (),
                "asking the primary for its tables",
            )
            .await?;
            Ok(if nodes.is_some() {
                Identity::NoId
            } else {
                Identity::NoTables
            })
        }
        Err(e) => Err(e),
    }
}

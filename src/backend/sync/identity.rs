//! Is the primary still the database this replica came from? A primary that was reset,
//! replaced or restored hands a replica a different history, and libsql would replace the
//! local copy with it at the next pull, silently. So every database gets a random id when
//! its schema is created (in `memorygraph_meta`), the replica remembers the id it synced
//! with (in its queue file), and the id is compared before anything is pulled.

use std::time::Duration;

use super::replica::{DIVERGED, PRIMARY_ID, Replica, is_missing_tables, redact_url};
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::{TursoBackend, first_row, scalar_i64};

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
pub const RESYNC_HINT: &str = "syncing is stopped and the local copy and offline queue are kept; run `memorygraph resync --push-local` \
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
        let expected = match replica.queue.state(PRIMARY_ID).await? {
            Some(id) => Some(id),
            None => self.local_identity(replica).await,
        };
        let url = redact_url(&replica.primary.url);
        let local_changes = self.local_changes(replica).await;
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
            (Identity::NoTables, None) if self.local_memories(replica).await > 0 => Some(format!(
                "the primary {url} has no memorygraph tables but this replica holds memories (the primary was reset or replaced)"
            )),
            (Identity::NoId, Some(_)) => Some(format!(
                "the primary {url} is no longer the database this replica came from (it has no id where it had one: \
                 it was replaced or restored from an old copy)"
            )),
            _ => None,
        };
        match reason {
            Some(reason) => {
                let reason = format!("{reason}; {RESYNC_HINT}");
                replica.mark_diverged(&reason).await?;
                Err(BackendError::Diverged(reason))
            }
            None => Ok(()),
        }
    }

    /// After a good sync: remember the primary's id, so a later change is noticed.
    pub(crate) async fn remember_primary(&self, replica: &Replica) -> Result<()> {
        if replica.queue.state(PRIMARY_ID).await?.is_some() {
            return Ok(());
        }
        if let Some(id) = self.local_identity(replica).await {
            tracing::info!("this replica syncs with the database {id}");
            replica.queue.set_state(PRIMARY_ID, Some(&id)).await?;
        }
        Ok(())
    }

    /// The id in the local copy, if it has one.
    async fn local_identity(&self, replica: &Replica) -> Option<String> {
        if !replica.is_ready() {
            return None;
        }
        let conn = self.conn.lock().await;
        first_row(
            &conn,
            "SELECT value FROM memorygraph_meta WHERE key = 'database_id'",
            (),
            "reading the database id",
        )
        .await
        .ok()
        .flatten()
        .map(|r| r.text(0))
    }

    /// How many changes the local copy has seen (0 before the count existed).
    pub(crate) async fn local_changes(&self, replica: &Replica) -> i64 {
        if !replica.is_ready() {
            return 0;
        }
        let conn = self.conn.lock().await;
        first_row(&conn, IDENTITY_QUERY, (), "reading the change count")
            .await
            .ok()
            .flatten()
            .map(|r| r.int(1))
            .unwrap_or(0)
    }

    async fn local_memories(&self, replica: &Replica) -> i64 {
        if !replica.is_ready() {
            return 0;
        }
        let conn = self.conn.lock().await;
        scalar_i64(
            &conn,
            "SELECT count(*) FROM nodes",
            vec![],
            "counting memories",
        )
        .await
        .unwrap_or(0)
    }
}

/// Forgets the divergence and the old primary's id (after `memorygraph resync`).
pub async fn forget_primary(queue: &super::queue::Queue) -> Result<()> {
    queue.set_state(DIVERGED, None).await?;
    queue.set_state(PRIMARY_ID, None).await
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

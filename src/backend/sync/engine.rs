//! Opening a replica and syncing it. A sync, in order: check that the primary is still the
//! database this replica came from, pull, make sure the schema is there, replay the
//! offline queue, and pull again if anything was replayed. Start-up does only the first
//! two, within [`CONNECT_WAIT`], so `initialize` never waits for the network or the queue.

use std::time::{Duration, Instant};

use libsql::Connection;
use tokio::sync::Mutex;

use super::queue::Queue;
use super::replica::{self, CONNECT_WAIT, DIVERGED, Primary, Replica};
use super::slot;
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::{BackendOptions, TursoBackend, schema};

impl TursoBackend {
    /// Opens replica mode: claims a slot (a replica file no other process writes), opens
    /// it and its queue, and syncs once, briefly. A replica that has never synced serves
    /// from an empty in-memory stand-in until its first sync brings the schema.
    pub(crate) async fn open_replica(options: BackendOptions, primary: Primary) -> Result<Self> {
        let slot = slot::claim(&options.path)?;
        let db = replica::open(&slot.path, &primary).await?;
        let conn = {
            let replica_conn = db.connect().doing("connecting to the replica")?;
            replica_conn
                .busy_timeout(crate::backend::BUSY_TIMEOUT)
                .doing("setting the busy timeout")?;
            replica_conn
        };
        let ready = schema::version(&conn).await.unwrap_or(0) > 0;
        let queue = Queue::open(&slot.path).await?;
        let diverged = queue.state(DIVERGED).await?;
        let remote = replica::remote(&primary).await?;
        let (conn, stand_in) = if ready {
            (conn, None)
        } else {
            let (db, conn) = empty_stand_in().await?;
            (conn, Some(db))
        };
        let backend = TursoBackend {
            kept: Default::default(),
            _db: stand_in,
            conn: Mutex::new(conn),
            path: slot.path.clone(),
            allow_cycles: options.allow_cycles,
            durability: options.durability,
            auto_sync: options.auto_sync,
            replica: Some(Replica::new(db, remote, primary, queue, ready, diverged)),
            written: tokio::sync::Notify::new(),
            writes: Default::default(),
            vocabulary: Default::default(),
            frequencies: Default::default(),
            pending_uses: Default::default(),
            semantic: Default::default(),
            slot: Some(slot),
        };
        let replica = backend.replica.as_ref().expect("replica mode");
        let deadline = Instant::now() + CONNECT_WAIT;
        replica::check_credentials(&replica.primary, CONNECT_WAIT).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        if !backend.auto_sync {
            tracing::info!("automatic sync is off: only the sync tool or command syncs");
        } else if left.is_zero() {
            tracing::warn!("the primary is not reachable yet; serving the local replica");
        } else if let Err(e) = backend.sync_with(left, false).await {
            tracing::warn!(
                "serving the local replica; the first sync did not complete: {}",
                replica.describe(&e)
            );
        }
        Ok(backend)
    }

    /// Replica mode: syncs now (see the module notes), at most `wait` per contact with the
    /// primary. Syncs never overlap. Local mode: nothing to do.
    pub async fn sync_now(&self, wait: Duration) -> Result<Option<replica::SyncStatus>> {
        self.sync_with(wait, true).await
    }

    async fn sync_with(&self, wait: Duration, replay: bool) -> Result<Option<replica::SyncStatus>> {
        let Some(replica) = &self.replica else {
            return Ok(None);
        };
        let _one_at_a_time = replica.lock.lock().await;
        let started = Instant::now();
        let outcome = self.sync_steps(replica, wait, replay).await;
        replica.record_sync(
            started,
            outcome
                .as_ref()
                .map(|(frame, _)| *frame)
                .map_err(|e| replica.describe(e)),
        );
        outcome.map(|_| Some(replica.status()))
    }

    async fn sync_steps(
        &self,
        replica: &Replica,
        wait: Duration,
        replay: bool,
    ) -> Result<(Option<u64>, super::offline::ReplayReport)> {
        self.check_primary(replica, wait).await?;
        let mut frame = replica.pull(wait).await?;
        self.ensure_schema(replica, wait).await?;
        let mut report = super::offline::ReplayReport::default();
        if replay {
            report = self.replay().await?;
            if report.applied > 0 {
                frame = replica.pull(wait).await?.or(frame);
            }
            // Only now does the replica hold what was replayed.
            replica.queue.forget_applied().await?;
            let orphaned = self.replay_other_slots(replica).await?;
            if orphaned.applied > 0 {
                frame = replica.pull(wait).await?.or(frame);
            }
            report.applied += orphaned.applied;
            report.conflicts += orphaned.conflicts;
            if replica.queue.is_empty().await? {
                self.flush_uses_to_primary().await;
            }
        }
        Ok((frame, report))
    }

    /// Brings the schema up to date if it is behind (a new primary, or a primary that was
    /// away at start), and swaps the empty stand-in for the replica once it has the schema.
    async fn ensure_schema(&self, replica: &Replica, wait: Duration) -> Result<()> {
        let real = if replica.is_ready() {
            None
        } else {
            Some(replica.fresh_connection()?)
        };
        let mut guard = self.conn.lock().await;
        let conn: &Connection = real.as_ref().unwrap_or(&guard);
        if schema::version(conn).await? < schema::SCHEMA_VERSION {
            match tokio::time::timeout(wait * 4, schema::migrate(conn)).await {
                Ok(outcome) => outcome?,
                Err(_) => {
                    return Err(BackendError::Unreachable(
                        "the schema upgrade timed out".into(),
                    ));
                }
            }
            // The upgrade was written on the primary; bring it here.
            drop(guard);
            replica.pull(wait).await?;
            guard = self.conn.lock().await;
        }
        if let Some(real) = real {
            *guard = real;
            replica.set_ready();
            tracing::info!("the replica holds the schema now: first sync done");
        }
        drop(guard);
        self.remember_primary(replica).await
    }

    /// Replays the queues of other slots that no process holds now (a second window that
    /// was closed with writes still queued), so they reach the primary without waiting for
    /// a process to take that slot again. Only queues of this same primary are touched.
    async fn replay_other_slots(&self, replica: &Replica) -> Result<super::offline::ReplayReport> {
        let mut total = super::offline::ReplayReport::default();
        let (Some(mine), Some(base)) = (&self.slot, self.slot.as_ref().map(|s| s.base.clone()))
        else {
            return Ok(total);
        };
        let ours = replica.queue.state(replica::PRIMARY_ID).await?;
        for path in slot::other_slots(&base, mine.number) {
            let Ok(_lock) = slot::claim_exactly(&path) else {
                continue;
            };
            let queue = Queue::open(&path).await?;
            let theirs = queue.state(replica::PRIMARY_ID).await?;
            if queue.is_empty().await?
                || queue.state(DIVERGED).await?.is_some()
                || (theirs.is_some() && theirs != ours)
            {
                continue;
            }
            tracing::info!("replaying the writes {} left queued", path.display());
            let report = self.replay_queue(&queue, false).await?;
            total.applied += report.applied;
            total.conflicts += report.conflicts;
        }
        Ok(total)
    }

    /// After a write went to the primary: check the primary and pull, so the next read
    /// sees the write. A failure is only logged (the write itself is on the primary).
    pub(crate) async fn pull_after_write(&self) {
        self.pull_after(true).await
    }

    /// After a write whose own statement checked the primary's identity: pull.
    pub(crate) async fn pull_after_checked_write(&self) {
        self.pull_after(false).await
    }

    async fn pull_after(&self, check: bool) {
        let Some(replica) = &self.replica else {
            return;
        };
        // A sync under way normally ends within milliseconds; behind a slow one, the
        // write does not wait but leaves the pull to the sync task.
        let Ok(_one_at_a_time) =
            tokio::time::timeout(Duration::from_secs(1), replica.lock.lock()).await
        else {
            self.written.notify_one();
            return;
        };
        let outcome = async {
            if check {
                self.check_primary(replica, replica::PULL_WAIT).await?;
            }
            replica.pull(replica::PULL_WAIT).await
        }
        .await;
        if let Err(e) = outcome {
            tracing::debug!("pull after a write failed: {}", replica.describe(&e));
            self.written.notify_one();
        }
    }
}

/// An empty database with the schema, in memory: what a replica that has never synced
/// reads from.
async fn empty_stand_in() -> Result<(libsql::Database, Connection)> {
    let db = libsql::Builder::new_local(":memory:")
        .build()
        .await
        .doing("creating the empty stand-in")?;
    let conn = db.connect().doing("creating the empty stand-in")?;
    schema::migrate(&conn).await?;
    Ok((db, conn))
}

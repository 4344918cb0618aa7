//! Becoming the owner and syncing. A sync, in order: check that the primary is still the
//! database this file syncs with, pull its pages into the replica, make sure it has the
//! schema, copy what other devices changed into the working file, push what this machine
//! changed, and pull again when the push had to wait for one. Nothing here runs on a tool
//! call's path: tools read and write the working file only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::replica::{self, Primary, Replica, SyncStatus};
use super::state;
use crate::backend::error::{BackendError, DbContext, Result};
use crate::backend::{TursoBackend, schema};

/// How long the primary's change feed keeps an entry.
pub const FEED_KEPT_DAYS: i64 = 30;

/// The day this file last pruned the primary's feed.
const FEED_PRUNED_ON: &str = "feed_pruned_on";

/// Replica mode's link to the primary.
pub struct SyncLink {
    pub primary: Primary,
    /// The embedded replica beside the working file.
    pub replica_path: PathBuf,
    /// Set once this process owns the replica; it then syncs until it ends.
    owned: OnceCell<Owned>,
}

struct Owned {
    replica: Arc<Replica>,
    _lock: std::fs::File,
}

/// The replica file that goes with a working file.
pub fn replica_path(working: &Path) -> PathBuf {
    let mut p = working.as_os_str().to_owned();
    p.push(".replica");
    PathBuf::from(p)
}

impl TursoBackend {
    /// Replica mode on an open working file: the sync tables, and the replica if no other
    /// process owns it. Never waits for the network.
    pub(crate) async fn start_replica_mode(&mut self, primary: Primary) -> Result<()> {
        {
            let conn = self.conn.lock().await;
            state::create(&conn).await?;
        }
        self.sync = Some(SyncLink {
            primary,
            replica_path: replica_path(&self.path),
            owned: OnceCell::new(),
        });
        if !self.auto_sync {
            tracing::info!("automatic sync is off: only the sync tool or command syncs");
        }
        // A file that has never synced holds nothing of the primary yet: its first start
        // waits briefly for the primary's rows (pulling only; pushing is left to the
        // background), so a new device does not answer from an empty file.
        if self.auto_sync
            && self.try_to_own().await?
            && !self.synced_once().await?
            && let Err(e) = self.sync_with(replica::CONNECT_WAIT, false).await
        {
            tracing::warn!(
                "the first sync did not complete; answers hold only this machine's memories until it does: {e}"
            );
        }
        Ok(())
    }

    /// Takes the replica when no other process holds it; true when this process owns it
    /// (now or before).
    pub(crate) async fn try_to_own(&self) -> Result<bool> {
        let Some(link) = &self.sync else {
            return Ok(false);
        };
        if link.owned.initialized() {
            return Ok(true);
        }
        let Some(lock) = super::owner::try_lock(&link.replica_path)? else {
            return Ok(false);
        };
        let db = replica::open(&link.replica_path, &link.primary).await?;
        let remote = replica::remote(&link.primary).await?;
        let conn = db.connect().doing("connecting to the replica")?;
        conn.busy_timeout(crate::backend::BUSY_TIMEOUT)
            .doing("setting the busy timeout")?;
        let diverged = {
            let c = self.conn.lock().await;
            state::get(&c, state::DIVERGED).await?
        };
        let replica = Replica::new(db, conn, remote, link.primary.clone(), diverged);
        if self.synced_once().await? {
            replica.set_synced_once();
        }
        // What the last syncing process recorded stays true until this one syncs.
        let last: Option<SyncStatus> = {
            let c = self.conn.lock().await;
            state::get(&c, state::LAST_SYNC)
                .await?
                .and_then(|s| serde_json::from_str(&s).ok())
        };
        if let Some(last) = last {
            replica.carry_over(&last);
        }
        let _ = link.owned.set(Owned {
            replica: Arc::new(replica),
            _lock: lock,
        });
        tracing::info!(
            "this process syncs {} with the primary",
            self.path.display()
        );
        Ok(true)
    }

    /// Whether this process owns the replica (and so syncs).
    pub fn owns_replica(&self) -> bool {
        self.sync.as_ref().is_some_and(|l| l.owned.initialized())
    }

    pub(crate) fn replica(&self) -> Option<Arc<Replica>> {
        self.sync
            .as_ref()
            .and_then(|l| l.owned.get())
            .map(|o| o.replica.clone())
    }

    /// The sync state, in replica mode: this process's own when it syncs, else what the
    /// syncing process last wrote in the working file.
    pub async fn sync_status(&self) -> Option<SyncStatus> {
        let link = self.sync.as_ref()?;
        if let Some(replica) = self.replica() {
            return Some(replica.status());
        }
        let conn = self.conn.lock().await;
        let mut status: SyncStatus = state::get(&conn, state::LAST_SYNC)
            .await
            .ok()
            .flatten()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        status.primary_url = replica::redact_url(&link.primary.url);
        status.owner = false;
        drop(conn);
        status.first_sync_done = self.synced_once().await.unwrap_or(false);
        Some(status)
    }

    /// Whether this file has been compared with its primary once (so it holds what the
    /// primary held then).
    pub(crate) async fn synced_once(&self) -> Result<bool> {
        let conn = self.conn.lock().await;
        Ok(state::get(&conn, super::reconcile::RECONCILED)
            .await?
            .is_some())
    }

    /// Replica mode: syncs now, each contact with the primary waiting at most `wait`. Only
    /// the owner syncs: another process takes over first if the owner is gone, else says
    /// who syncs. Local mode: nothing to do.
    pub async fn sync_now(&self, wait: Duration) -> Result<Option<SyncStatus>> {
        self.sync_with(wait, true).await
    }

    async fn sync_with(&self, wait: Duration, push: bool) -> Result<Option<SyncStatus>> {
        if self.sync.is_none() {
            return Ok(None);
        }
        if !self.try_to_own().await? {
            return Err(BackendError::Refused(
                "another memorygraph process on this database syncs it; its last sync is in `health`".into(),
            ));
        }
        let replica = self.replica().expect("owned");
        let _one_at_a_time = replica.lock.lock().await;
        let started = Instant::now();
        let outcome = self.sync_steps(&replica, wait, push).await;
        replica.record_sync(
            started,
            outcome
                .as_ref()
                .map(|frame| *frame)
                .map_err(|e| replica.describe(e)),
        );
        let status = replica.status();
        self.publish_status(&status).await;
        outcome.map(|_| Some(status))
    }

    /// Writes the sync state into the working file for the other processes' `health`.
    async fn publish_status(&self, status: &SyncStatus) {
        let json = serde_json::to_string(status).unwrap_or_default();
        let conn = self.conn.lock().await;
        if let Err(e) = state::set(&conn, state::LAST_SYNC, Some(&json)).await {
            tracing::debug!("could not record the sync state: {e}");
        }
    }

    async fn sync_steps(
        &self,
        replica: &Replica,
        wait: Duration,
        push: bool,
    ) -> Result<Option<u64>> {
        self.check_primary(replica, wait).await?;
        let mut frame = replica.pull(wait).await?;
        if self.ensure_schema(replica, wait).await? {
            frame = replica.pull(wait).await?.or(frame);
        }
        if let Some(report) = self.reconcile_once(replica).await? {
            replica.record_reconciled(report);
        }
        replica.set_synced_once();
        let pulled = self.apply_pulled(replica).await?;
        replica.count_pulled(pulled.rows, pulled.conflicts);
        self.settle_issues(replica).await?;
        for _ in 0..if push { 4 } else { 0 } {
            let pushed = self.push_local(replica).await?;
            if !pushed.needs_pull && pushed.rows == 0 {
                break;
            }
            frame = replica.pull(wait).await?.or(frame);
            let pulled = self.apply_pulled(replica).await?;
            replica.count_pulled(pulled.rows, pulled.conflicts);
            if !pushed.needs_pull {
                break;
            }
        }
        self.remember_primary(replica).await?;
        self.prune_feed().await?;
        self.prune_primary_feed(replica).await;
        let conn = self.conn.lock().await;
        state::set(
            &conn,
            super::reconcile::SYNCED_AT,
            Some(&crate::model::now_iso()),
        )
        .await?;
        Ok(frame)
    }

    /// Replica mode: what waits to reach the primary and what could not be synced.
    pub async fn sync_backlog(&self, issues_shown: u32) -> Result<Option<Backlog>> {
        if self.sync.is_none() {
            return Ok(None);
        }
        let conn = self.conn.lock().await;
        let pushed = state::get_i64(&conn, state::PUSHED).await?;
        let waiting = super::feed::count_after(&conn, pushed).await?;
        let oldest_waiting_at = crate::backend::first_row(
            &conn,
            "SELECT at FROM memorygraph_feed WHERE seq > ?1 ORDER BY seq LIMIT 1",
            libsql::params![pushed],
            "reading the change feed",
        )
        .await?
        .map(|r| r.text(0));
        let (conflicts, set_aside) = state::issue_counts(&conn).await?;
        Ok(Some(Backlog {
            queued_writes: waiting,
            oldest_queued_at: oldest_waiting_at,
            conflicts,
            set_aside,
            recent_conflicts: state::issues(&conn, issues_shown).await?,
        }))
    }
}

/// Replica mode's backlog, for `health` and `sync`.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Backlog {
    /// Changes made here that have not reached the primary yet.
    pub queued_writes: i64,
    /// When the oldest of them was made.
    pub oldest_queued_at: Option<String>,
    /// Rows that changed here and on the primary, where the primary's version was kept.
    pub conflicts: i64,
    /// Rows the primary refused for good; kept here, not pushed, until retried or discarded.
    pub set_aside: i64,
    /// The latest of both, newest first.
    pub recent_conflicts: Vec<state::SyncIssue>,
}

impl TursoBackend {
    /// Gives the primary this build's schema (with the change feed) when it is behind, on
    /// the primary itself; true when it did (the replica must pull it).
    async fn ensure_schema(&self, replica: &Replica, wait: Duration) -> Result<bool> {
        let version = {
            let conn = replica.conn.lock().await;
            schema::version(&conn).await.unwrap_or(0)
        };
        if version >= schema::SCHEMA_VERSION {
            return Ok(false);
        }
        let conn = replica
            .remote
            .connect()
            .doing("connecting to the primary")?;
        match tokio::time::timeout(wait * 4, schema::migrate(&conn)).await {
            Ok(outcome) => outcome?,
            Err(_) => {
                return Err(BackendError::Unreachable(
                    "the schema upgrade on the primary timed out".into(),
                ));
            }
        }
        Ok(true)
    }

    /// Keeps the primary's feed from growing without bound: once a day, entries older
    /// than [`FEED_KEPT_DAYS`] are dropped and `feed_floor` raised past them, so a device
    /// that has not pulled for that long compares every row instead of reading them.
    /// Best effort: a failure waits for the next day.
    async fn prune_primary_feed(&self, replica: &Replica) {
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        {
            let conn = self.conn.lock().await;
            if state::get(&conn, FEED_PRUNED_ON)
                .await
                .ok()
                .flatten()
                .as_deref()
                == Some(today.as_str())
            {
                return;
            }
        }
        let cut = (chrono::Utc::now() - chrono::Duration::days(FEED_KEPT_DAYS))
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let outcome = async {
            let conn = replica
                .remote
                .connect()
                .doing("connecting to the primary")?;
            crate::backend::in_write(&conn, "pruning the primary's change feed", async |tx| {
                let floor = crate::backend::first_row(
                    tx,
                    "SELECT max(seq) FROM memorygraph_feed WHERE at < ?1",
                    libsql::params![cut.as_str()],
                    "pruning the primary's change feed",
                )
                .await?
                .and_then(|r| r.opt_text(0));
                let Some(floor) = floor else {
                    return Ok(0);
                };
                tx.execute(
                    "INSERT INTO memorygraph_meta (key, value) VALUES ('feed_floor', ?1)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    libsql::params![floor],
                )
                .await
                .doing("pruning the primary's change feed")?;
                tx.execute(
                    "DELETE FROM memorygraph_feed WHERE at < ?1",
                    libsql::params![cut.as_str()],
                )
                .await
                .doing("pruning the primary's change feed")
            })
            .await
        }
        .await;
        match outcome {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(
                        "dropped {n} change feed entries older than {FEED_KEPT_DAYS} days from the primary"
                    );
                }
                let conn = self.conn.lock().await;
                let _ = state::set(&conn, FEED_PRUNED_ON, Some(&today)).await;
            }
            Err(e) => tracing::debug!("pruning the primary's change feed failed: {e}"),
        }
    }

    /// Drops feed entries nobody needs any more: in replica mode those already pushed; in
    /// local mode all but the newest thousand (kept for readers such as a web view).
    pub(crate) async fn prune_feed(&self) -> Result<()> {
        let conn = self.conn.lock().await;
        let upto = if self.sync.is_some() {
            state::get_i64(&conn, state::PUSHED).await?
        } else {
            // A file that another process syncs keeps what that one has not pushed.
            let synced = crate::backend::first_row(
                &conn,
                "SELECT 1 FROM sqlite_master WHERE name = 'memorygraph_sync_state'",
                (),
                "reading the file's tables",
            )
            .await?
            .is_some();
            if synced {
                state::get_i64(&conn, state::PUSHED).await?
            } else {
                super::feed::last_seq(&conn).await? - 1000
            }
        };
        conn.execute(
            "DELETE FROM memorygraph_feed WHERE seq <= ?1",
            libsql::params![upto],
        )
        .await
        .doing("pruning the change feed")?;
        Ok(())
    }
}

//! Replica mode: the database file is an embedded replica of a libsql primary (sqld or
//! Turso). Reads are local; writes are delegated to the primary by libsql; `sync` pulls the
//! primary's new frames. This module opens the replica and keeps the truth about syncing:
//! when it last worked, how long it took, what failed.

use std::path::Path;
use std::time::{Duration, Instant};

use libsql::{Database, SyncProtocol};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::backend::error::{BackendError, DbContext, Result};

/// Where the primary is and how to authenticate. The token never leaves this struct
/// except to libsql; `Debug` hides it.
#[derive(Clone)]
pub struct Primary {
    pub url: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for Primary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Primary")
            .field("url", &redact_url(&self.url))
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Primary {
    /// `text` with the token and any credentials in the URL removed, fit to show or log.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        if let Some(token) = self.token.as_deref().filter(|t| !t.is_empty()) {
            text = text.replace(token, "[redacted]");
        }
        text.replace(&self.url, &redact_url(&self.url))
    }
}

/// A URL without credentials: no user or password, no query string (Turso clients accept
/// `?authToken=`), so it can be shown and logged.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}{host}{path}")
}

/// How long start-up waits for the primary, in all, before serving local reads anyway
/// (the credential check and the first pull share it; the queue is never replayed first).
pub const CONNECT_WAIT: Duration = Duration::from_millis(2500);

/// How long a sync waits for one pull before it counts as failed. A pull that takes longer
/// (many frames after a long replay) is not stopped: it goes on in the background and the
/// next sync waits for it. Writes never wait for a pull.
pub const PULL_WAIT: Duration = Duration::from_secs(5);

/// How long the primary may take to say who it is (one small query) before a sync gives up.
pub const IDENTITY_WAIT: Duration = Duration::from_secs(3);

/// How many recent sync durations `health` computes its percentiles over.
const LATENCY_WINDOW: usize = 1024;

/// Opens (creating if needed) the replica file. Uses sync protocol V1, which opens without
/// reaching the primary, so a machine that is offline still starts.
pub async fn open(path: &Path, primary: &Primary) -> Result<Database> {
    libsql::Builder::new_remote_replica(
        path,
        libsql_url(&primary.url),
        primary.token.clone().unwrap_or_default(),
    )
    .sync_protocol(SyncProtocol::V1)
    // Our own pull follows every write, after the check that the primary is still the
    // database this replica came from; libsql's would skip that check.
    .read_your_writes(false)
    .build()
    .await
    .doing("opening the replica")
}

/// A plain remote connection to the primary (HTTP), for questions asked of the primary
/// itself rather than of the replica.
pub async fn remote(primary: &Primary) -> Result<Database> {
    libsql::Builder::new_remote(
        libsql_url(&primary.url),
        primary.token.clone().unwrap_or_default(),
    )
    .build()
    .await
    .doing("connecting to the primary")
}

/// libsql speaks HTTP(S) to the primary; `libsql://` means HTTPS.
pub(super) fn libsql_url(url: &str) -> String {
    match url.strip_prefix("libsql://") {
        Some(rest) => format!("https://{rest}"),
        None => url.to_string(),
    }
}

/// True when the primary answered but refused our credentials (an invalid, expired or
/// rotated token, or a read-only one asked to write): retrying cannot help until the user
/// fixes TURSO_AUTH_TOKEN.
pub fn is_auth_failure(e: &BackendError) -> bool {
    let lower = e.to_string().to_ascii_lowercase();
    AUTH_SIGNS
        .iter()
        .chain(READ_ONLY_SIGNS)
        .any(|sign| lower.contains(sign))
}

/// What the primary says, in one form or another, when it refuses a token.
const AUTH_SIGNS: &[&str] = &["unauthenticated", "autherror", "unauthorized", "jwt"];

/// What it says when a token may read but not write.
const READ_ONLY_SIGNS: &[&str] = &[
    "readonly",
    "read-only",
    "read only",
    "permissiondenied",
    "permission denied",
    "forbidden",
];

/// True when the primary no longer has our tables: it was reset or replaced.
pub fn is_missing_tables(e: &BackendError) -> bool {
    e.to_string().contains("no such table")
}

/// True when an error means the primary could not be reached (as opposed to the primary
/// refusing a statement or our credentials), so the operation may be retried later.
pub fn is_unreachable(e: &BackendError) -> bool {
    if is_auth_failure(e) {
        return false;
    }
    match e {
        BackendError::Database { source, .. } => matches!(
            source,
            libsql::Error::ConnectionFailed(_)
                | libsql::Error::Hrana(_)
                | libsql::Error::WriteDelegation(_)
                | libsql::Error::Replication(_)
                | libsql::Error::Sync(_)
        ),
        BackendError::Unreachable(_) => true,
        _ => false,
    }
}

/// How a push failed, which decides what happens to the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer, a transport error, a timeout, or a status that says "later" (5xx, 408,
    /// 429): retried with backoff.
    Unreachable,
    /// The token was refused (401, 403, or the primary's own word for it): retried, since
    /// every row would meet it, unless other rows of the same push went through.
    Token,
    /// The primary refused this statement (a constraint, an SQL error): this row never
    /// will go.
    Statement,
    /// Something answered, but not in the protocol or with another 4xx (a gateway's page):
    /// this request will not go; set aside when other rows of the push went through.
    Refused,
}

/// Sorts a push's failure. libsql keeps its HTTP client's error type private and reports
/// a status as `status=NNN ...` in its API error, so the status is read from there; every
/// other case is decided from libsql's error variants.
pub fn classify(e: &BackendError) -> Failure {
    if is_auth_failure(e) {
        return Failure::Token;
    }
    let BackendError::Database { source, .. } = e else {
        return match e {
            BackendError::Unreachable(_) => Failure::Unreachable,
            _ => Failure::Statement,
        };
    };
    match source {
        libsql::Error::SqliteFailure(..) => Failure::Statement,
        libsql::Error::Hrana(inner) => {
            let text = inner.to_string();
            if let Some(status) = http_status(&text) {
                return match status {
                    401 | 403 => Failure::Token,
                    408 | 429 | 500..=599 => Failure::Unreachable,
                    _ => Failure::Refused,
                };
            }
            if text.starts_with("http error") || text.starts_with("stream closed") {
                Failure::Unreachable
            } else if text.starts_with("stream error") || text.starts_with("cursor error") {
                // The primary's own answer to the statement (its code says which).
                Failure::Statement
            } else {
                // A reply that is not the protocol (JSON that does not parse, an
                // unexpected response): something else answered.
                Failure::Refused
            }
        }
        libsql::Error::ConnectionFailed(_)
        | libsql::Error::WriteDelegation(_)
        | libsql::Error::Replication(_)
        | libsql::Error::Sync(_) => Failure::Unreachable,
        _ => Failure::Statement,
    }
}

/// The HTTP status in libsql's API error text (`status=403 Forbidden, body=...`).
fn http_status(text: &str) -> Option<u16> {
    let at = text.find("status=")? + "status=".len();
    text.get(at..at + 3)?.parse().ok()
}

/// One sentence naming what went wrong with the primary, never a header dump and never
/// the token. Details go to the debug log.
pub fn explain(e: &BackendError, primary: &Primary) -> String {
    let url = redact_url(&primary.url);
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    tracing::debug!("primary error in full: {}", primary.redact(&text));
    if let BackendError::Diverged(reason) = e {
        return reason.clone();
    }
    let status = match e {
        BackendError::Database {
            source: libsql::Error::Hrana(inner),
            ..
        } => http_status(&inner.to_string()),
        _ => None,
    };
    let page = lower.contains("<html") || lower.contains("<!doctype");
    if let Some(status) = status
        && page
    {
        return format!(
            "something in front of the primary {url} (a proxy or gateway) refused a request with HTTP {status} and a web page instead of the primary's answer"
        );
    }
    if let Some(status) =
        status.filter(|s| (400..500).contains(s) && ![401, 403, 408, 429].contains(s))
    {
        return format!("the primary {url} refused a request with HTTP {status}");
    }
    if classify(e) == Failure::Refused {
        return format!(
            "something answered for the primary {url} but not in its protocol (a proxy or gateway?)"
        );
    }
    if READ_ONLY_SIGNS.iter().any(|s| lower.contains(s)) {
        format!(
            "the primary {url} refused a write: the auth token (TURSO_AUTH_TOKEN) is read-only or lacks permission"
        )
    } else if is_auth_failure(e) {
        format!(
            "the primary {url} refused the auth token (TURSO_AUTH_TOKEN): it is invalid, expired or was rotated"
        )
    } else if is_missing_tables(e) {
        format!("the primary {url} has no memorygraph tables: it was reset or replaced")
    } else if is_unreachable(e) {
        let why = if lower.contains("refused") {
            "connection refused"
        } else if lower.contains("did not answer")
            || lower.contains("timed out")
            || lower.contains("timeout")
        {
            "no answer in time"
        } else {
            "network error"
        };
        format!("the primary {url} is unreachable ({why})")
    } else {
        let first = primary.redact(text.lines().next().unwrap_or(""));
        let cut: String = first.chars().take(200).collect();
        if cut.len() < first.len() {
            format!("{cut}…")
        } else {
            cut
        }
    }
}

/// What `health` and `sync` report about syncing.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SyncStatus {
    /// Whether this process syncs (owns the replica); otherwise another memorygraph process
    /// on the same database does, and these figures are the ones it last recorded.
    pub owner: bool,
    /// The primary, without credentials.
    pub primary_url: String,
    pub last_success_at: Option<String>,
    pub last_duration_ms: Option<f64>,
    /// The replica's position in the primary's log.
    pub frame_no: Option<u64>,
    pub consecutive_failures: u32,
    /// What the last failed contact said, in one sentence; cleared by a good sync.
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    /// Whether the last contact with the primary worked.
    pub online: bool,
    /// False until this file has synced with the primary once (every read and write works
    /// before; other devices' memories arrive with the first sync).
    pub first_sync_done: bool,
    /// Set when the primary's history no longer matches this replica (reset, replaced or
    /// restored): syncing is stopped, the local copy and queue are kept, and this says what
    /// to run.
    pub diverged: Option<String>,
    /// Syncs (queue replay and pull) since start, and how many failed.
    pub syncs: u64,
    pub sync_failures: u64,
    /// Rows this machine changed that were written on the primary since start, and rows
    /// the primary refused for good (set aside).
    pub replayed_writes: u64,
    pub set_aside: u64,
    /// Rows other devices changed that were copied here since start, and conflicts found.
    pub pulled_rows: u64,
    pub replay_conflicts: u64,
    /// The last full comparison with the primary (a first sync, or one `resync` asked for).
    pub last_comparison: Option<Reconciled>,
    /// Duration of successful syncs since start, over the last 1,024.
    pub sync_latency_p50_ms: Option<f64>,
    pub sync_latency_p99_ms: Option<f64>,
}

/// The replica's sync state, shared by tools and the background task. `lock` makes syncs
/// run one at a time.
pub struct Replica {
    pub db: std::sync::Arc<Database>,
    /// A connection to the replica, for reading what was pulled.
    pub conn: Mutex<libsql::Connection>,
    /// A plain HTTP connection to the primary, for its identity.
    pub remote: Database,
    pub primary: Primary,
    pub status: std::sync::Mutex<SyncStatus>,
    pub lock: Mutex<()>,
    /// A pull that outlived its caller's wait, still running: never cancelled, because
    /// libsql leaves a replica malformed when a pull stops halfway.
    pulling:
        Mutex<Option<tokio::task::JoinHandle<libsql::Result<libsql::replication::Replicated>>>>,
    latencies: std::sync::Mutex<std::collections::VecDeque<f64>>,
}

impl Replica {
    pub fn new(
        db: Database,
        conn: libsql::Connection,
        remote: Database,
        primary: Primary,
        diverged: Option<String>,
    ) -> Self {
        let status = SyncStatus {
            owner: true,
            primary_url: redact_url(&primary.url),
            diverged,
            ..Default::default()
        };
        Replica {
            db: std::sync::Arc::new(db),
            conn: Mutex::new(conn),
            remote,
            primary,
            status: std::sync::Mutex::new(status),
            lock: Mutex::new(()),
            pulling: Mutex::new(None),
            latencies: Default::default(),
        }
    }

    pub fn status(&self) -> SyncStatus {
        let mut s = self.status.lock().expect("sync status lock").clone();
        let latencies = self.latencies.lock().expect("latency lock");
        let mut sorted: Vec<f64> = latencies.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * q).round() as usize])
        };
        s.sync_latency_p50_ms = at(0.5);
        s.sync_latency_p99_ms = at(0.99);
        s
    }

    /// The divergence found, if any (syncing is stopped while there is one).
    pub fn diverged(&self) -> Option<String> {
        self.status
            .lock()
            .expect("sync status lock")
            .diverged
            .clone()
    }

    /// Stops syncing (until `memorygraph resync`); the caller keeps the reason in the
    /// working file, so a restart does not sync either.
    pub fn mark_diverged(&self, reason: &str) {
        tracing::error!("{reason}");
        self.status.lock().expect("sync status lock").diverged = Some(reason.to_string());
    }

    /// Pulls new frames from the primary, waiting at most `wait`. Returns the frame
    /// reached. A pull that takes longer goes on in the background (it is never stopped
    /// halfway) and the next pull waits for it first.
    pub async fn pull(&self, wait: Duration) -> Result<Option<u64>> {
        let mut pulling = self.pulling.lock().await;
        let mut task = pulling.take().unwrap_or_else(|| {
            let db = self.db.clone();
            tokio::spawn(async move { db.sync().await })
        });
        match tokio::time::timeout(wait, &mut task).await {
            Ok(Ok(Ok(replicated))) => Ok(replicated.frame_no()),
            Ok(Ok(Err(e))) => Err(BackendError::Database {
                doing: "syncing with the primary",
                source: e,
            }),
            Ok(Err(panicked)) => Err(BackendError::Unreachable(format!(
                "the pull stopped: {panicked}"
            ))),
            Err(_) => {
                *pulling = Some(task);
                Err(BackendError::Unreachable(format!(
                    "the primary did not answer within {} s",
                    wait.as_secs_f64()
                )))
            }
        }
    }

    /// Counts rows pushed (or set aside), as it happens, so a sync that fails later still
    /// counts what it did.
    pub fn count_pushed(&self, rows: u64, set_aside: bool) {
        let mut s = self.status.lock().expect("sync status lock");
        if set_aside {
            s.set_aside += rows;
        } else {
            s.replayed_writes += rows;
        }
    }

    /// Counts rows copied from the primary and the conflicts among them.
    pub fn count_pulled(&self, rows: u64, conflicts: u64) {
        let mut s = self.status.lock().expect("sync status lock");
        s.pulled_rows += rows;
        s.replay_conflicts += conflicts;
    }

    pub fn record_reconciled(&self, report: Reconciled) {
        self.status
            .lock()
            .expect("sync status lock")
            .last_comparison = Some(report);
    }

    /// Takes over the last sync's outcome recorded by an earlier process on this file.
    pub fn carry_over(&self, last: &SyncStatus) {
        let mut s = self.status.lock().expect("sync status lock");
        s.last_success_at = last.last_success_at.clone();
        s.last_duration_ms = last.last_duration_ms;
        s.last_attempt_at = last.last_attempt_at.clone();
        s.last_error = last.last_error.clone();
        s.online = last.online;
        s.frame_no = last.frame_no;
    }

    /// Marks the first sync done.
    pub fn set_synced_once(&self) {
        self.status
            .lock()
            .expect("sync status lock")
            .first_sync_done = true;
    }

    /// Records the result of a whole sync (replay and pull): the figures `health` shows.
    pub fn record_sync(&self, started: Instant, outcome: std::result::Result<Option<u64>, String>) {
        let ms = (started.elapsed().as_secs_f64() * 1e5).round() / 100.0;
        {
            let mut s = self.status.lock().expect("sync status lock");
            s.syncs += 1;
            if outcome.is_err() {
                s.sync_failures += 1;
            }
        }
        if outcome.is_ok() {
            let mut l = self.latencies.lock().expect("latency lock");
            if l.len() == LATENCY_WINDOW {
                l.pop_front();
            }
            l.push_back(ms);
        }
        self.record(started, outcome);
    }

    /// Records the result of any contact with the primary.
    pub fn record(&self, started: Instant, outcome: std::result::Result<Option<u64>, String>) {
        let now = crate::model::now_iso();
        let mut s = self.status.lock().expect("sync status lock");
        s.last_attempt_at = Some(now.clone());
        match outcome {
            Ok(frame_no) => {
                s.last_success_at = Some(now);
                s.last_duration_ms = Some((started.elapsed().as_secs_f64() * 1e5).round() / 100.0);
                if frame_no.is_some() {
                    s.frame_no = frame_no;
                }
                s.consecutive_failures = 0;
                s.last_error = None;
                s.online = true;
            }
            Err(message) => {
                s.consecutive_failures += 1;
                s.last_error = Some(message);
                s.online = false;
            }
        }
    }

    /// An error's one-sentence explanation, with anything secret removed.
    pub fn describe(&self, e: &BackendError) -> String {
        explain(e, &self.primary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_from_the_api_error() {
        assert_eq!(
            http_status("api error: `status=403 Forbidden, body=<html>`"),
            Some(403)
        );
        assert_eq!(http_status("http error: `connection refused`"), None);
        assert_eq!(http_status("status=40"), None);
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("libsql://db-user.turso.io?authToken=abc"),
            "libsql://db-user.turso.io"
        );
        assert_eq!(
            redact_url("https://me:pw@example.com:8080/x?y=1"),
            "https://example.com:8080/x"
        );
        assert_eq!(redact_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        let p = Primary {
            url: "http://u:secret@h".into(),
            token: Some("tok-123".into()),
        };
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("tok-123"),
            "{shown}"
        );
    }
}

/// What a comparison did.
#[derive(
    Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Reconciled {
    /// Rows copied here from the primary.
    pub copied_here: u64,
    /// Rows marked to be written on the primary (new or changed here).
    pub to_push: u64,
    /// Rows marked to be deleted on the primary (deleted here).
    pub to_delete_there: u64,
    /// Rows removed here (deleted on the primary, or discarded).
    pub removed_here: u64,
    /// Rows the same on both sides.
    pub identical: u64,
    /// Rows that differed and were recorded as conflicts.
    pub conflicts: u64,
}

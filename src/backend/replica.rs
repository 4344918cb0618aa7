//! Replica mode: the database file is an embedded replica of a libsql primary (sqld or
//! Turso). Reads are local; writes are delegated to the primary by libsql; `sync` pulls the
//! primary's new frames. This module opens the replica and keeps the truth about syncing:
//! when it last worked, how long it took, what failed.

use std::path::Path;
use std::time::{Duration, Instant};

use libsql::{Database, SyncProtocol};
use serde::Serialize;
use tokio::sync::Mutex;

use super::error::{BackendError, DbContext, Result};

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

/// How long start-up waits for the primary before serving local reads anyway.
pub const CONNECT_WAIT: Duration = Duration::from_secs(3);

/// Opens (creating if needed) the replica file. Uses sync protocol V1, which opens without
/// reaching the primary, so a machine that is offline still starts and serves reads.
pub async fn open(path: &Path, primary: &Primary) -> Result<Database> {
    refuse_local_file(path)?;
    libsql::Builder::new_remote_replica(
        path,
        libsql_url(&primary.url),
        primary.token.clone().unwrap_or_default(),
    )
    .sync_protocol(SyncProtocol::V1)
    .read_your_writes(true)
    .build()
    .await
    .doing("opening the replica")
}

/// Asks the primary one trivial question over HTTP with our token. A refusal of the token
/// stops start-up with a clear message (retrying cannot fix it); an unreachable primary
/// does not (the replica serves reads and the sync task keeps trying).
pub async fn check_credentials(primary: &Primary) -> Result<()> {
    let probe = async {
        let db = libsql::Builder::new_remote(
            libsql_url(&primary.url),
            primary.token.clone().unwrap_or_default(),
        )
        .build()
        .await?;
        let conn = db.connect()?;
        conn.query("SELECT 1", ()).await.map(|_| ())
    };
    match tokio::time::timeout(CONNECT_WAIT, probe).await {
        Ok(Err(e)) => {
            let text = e.to_string();
            let lower = text.to_ascii_lowercase();
            if [
                "401",
                "403",
                "unauthorized",
                "forbidden",
                "autherror",
                "unauthenticated",
                "jwt",
            ]
            .iter()
            .any(|sign| lower.contains(sign))
            {
                return Err(BackendError::Refused(format!(
                    "the primary {} refused the auth token (TURSO_AUTH_TOKEN): {}",
                    redact_url(&primary.url),
                    primary.redact(&text)
                )));
            }
            tracing::debug!(
                "credential check could not reach the primary: {}",
                primary.redact(&text)
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

/// libsql speaks HTTP(S) to the primary; `libsql://` means HTTPS.
pub(super) fn libsql_url(url: &str) -> String {
    match url.strip_prefix("libsql://") {
        Some(rest) => format!("https://{rest}"),
        None => url.to_string(),
    }
}

/// libsql cannot turn an existing local file into a replica ("Can not sync a database
/// without a wal_index"); say what to do instead of failing obscurely later.
fn refuse_local_file(path: &Path) -> Result<()> {
    let mut marker = path.as_os_str().to_owned();
    marker.push("-client_wal_index");
    let has_data = std::fs::metadata(path)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    if has_data && !Path::new(&marker).exists() {
        return Err(BackendError::Refused(format!(
            "{} is a local database, not a replica, and libsql cannot turn it into one. Move it aside, then run \
             `memorygraph migrate --to-replica --from <moved file>` to copy its memories into the primary, \
             or point MEMORY_TURSO_PATH at a new file",
            path.display()
        )));
    }
    Ok(())
}

/// True when the primary answered but refused our credentials: retrying cannot help, the
/// user must fix TURSO_AUTH_TOKEN.
pub fn is_auth_failure(e: &BackendError) -> bool {
    let text = e.to_string();
    [
        "Unauthenticated",
        "PermissionDenied",
        "AuthError",
        "401 Unauthorized",
        "403 Forbidden",
    ]
    .iter()
    .any(|sign| text.contains(sign))
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

/// What `health` and `sync` report about syncing.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct SyncStatus {
    /// The primary, without credentials.
    pub primary_url: String,
    pub last_success_at: Option<String>,
    pub last_duration_ms: Option<f64>,
    /// The replica's position in the primary's log.
    pub frame_no: Option<u64>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    /// Whether the last contact with the primary worked.
    pub online: bool,
}

/// The replica's sync state, shared by tools and the background task. `lock` makes syncs
/// run one at a time.
pub struct Replica {
    pub db: Database,
    pub primary: Primary,
    pub queue: super::queue::Queue,
    pub status: std::sync::Mutex<SyncStatus>,
    pub lock: Mutex<()>,
}

impl Replica {
    pub fn new(db: Database, primary: Primary, queue: super::queue::Queue) -> Self {
        let status = SyncStatus {
            primary_url: redact_url(&primary.url),
            ..Default::default()
        };
        Replica {
            db,
            primary,
            queue,
            status: std::sync::Mutex::new(status),
            lock: Mutex::new(()),
        }
    }

    pub fn status(&self) -> SyncStatus {
        self.status.lock().expect("sync status lock").clone()
    }

    /// Pulls new frames from the primary, at most `wait` long, and records the outcome.
    pub async fn pull(&self, wait: Duration) -> Result<()> {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(wait, self.db.sync()).await {
            Ok(Ok(replicated)) => Ok(replicated.frame_no()),
            Ok(Err(e)) => Err(BackendError::Database {
                doing: "syncing with the primary",
                source: e,
            }),
            Err(_) => Err(BackendError::Unreachable(format!(
                "the primary did not answer within {} s",
                wait.as_secs_f64()
            ))),
        };
        self.record(
            started,
            outcome.as_ref().map(|f| *f).map_err(|e| self.describe(e)),
        );
        outcome.map(|_| ())
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
                s.online = true;
            }
            Err(message) => {
                s.consecutive_failures += 1;
                s.last_error = Some(message);
                s.online = false;
            }
        }
    }

    /// An error's text with anything secret removed.
    pub fn describe(&self, e: &BackendError) -> String {
        self.primary.redact(&e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

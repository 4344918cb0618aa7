//! The background sync of replica mode: pull from the primary after every write, every
//! interval, and again and again with backoff while the primary is away.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::TursoBackend;
use crate::backend::replica::PULL_WAIT;

/// First retry delay after a failed sync; doubles per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How often a process that does not sync checks whether the syncing one is gone, and the
/// syncing one checks for changes other processes wrote into the working file.
const LOOK_AROUND: Duration = Duration::from_secs(1);

impl TursoBackend {
    /// Runs until the task is aborted. `interval` is `None` when automatic sync is off;
    /// then only writes (and failures being retried) wake it.
    pub async fn keep_in_sync(self: Arc<Self>, interval: Option<Duration>) {
        if self.sync.is_none() {
            return;
        }
        let mut failures: u32 = 0;
        // The first round runs at once: whatever waits is pushed in the background while
        // tools answer from the working file.
        let mut next = tokio::time::Instant::now();
        loop {
            let due = tokio::select! {
                _ = tokio::time::sleep_until(next) => true,
                _ = self.written(), if failures == 0 => true,
                _ = tokio::time::sleep(LOOK_AROUND) => false,
            };
            match self.try_to_own().await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::debug!("could not take over syncing: {e}");
                    continue;
                }
            }
            // While the primary is away, retries keep their backoff whatever is written.
            if !due && (failures > 0 || !self.others_wrote().await) {
                continue;
            }
            match self.sync_now(PULL_WAIT).await {
                Ok(_) => {
                    if failures > 0 {
                        tracing::info!(
                            "the primary is reachable again after {failures} failed sync(s)"
                        );
                    }
                    failures = 0;
                    next = tokio::time::Instant::now()
                        + interval.unwrap_or(Duration::from_secs(86_400 * 365));
                }
                Err(crate::backend::BackendError::Diverged(_)) => {
                    // Said once when found; nothing to retry until the user resyncs.
                    failures = 0;
                    next = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = backoff(failures);
                    tracing::warn!(
                        attempt = failures,
                        "sync failed, retrying in about {wait:?}: {e}"
                    );
                    next = tokio::time::Instant::now() + wait;
                }
            }
        }
    }

    /// Whether the working file holds changes not pushed yet (written by any process).
    async fn others_wrote(&self) -> bool {
        matches!(self.unpushed_count().await, Ok(n) if n > 0)
    }
}

/// Exponential backoff with ±20 % jitter, so many machines do not retry in step.
fn backoff(failures: u32) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(6))
        .min(MAX_BACKOFF);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.8 + 0.4 * (f64::from(nanos % 1000) / 1000.0);
    base.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_millis(1200));
        assert!(backoff(3) >= Duration::from_millis(3200));
        assert!(backoff(30) <= Duration::from_secs(72));
    }
}

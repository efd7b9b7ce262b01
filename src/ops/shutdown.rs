//! Graceful shutdown: on the first SIGTERM or SIGINT the engine stops taking new calls (an
//! INVITE gets 503 with Retry-After, `/readyz` answers 503, the callback scheduler stops
//! dialling), lets the live calls run for up to `shutdown.drain_seconds`, sends BYE to those
//! that remain, waits for their flows to end, flushes the store, then stops every engine task
//! through one cancellation token (HTTP finishes the requests in flight) and reports what was
//! drained. A second signal exits at once (handled by the `serve` command).
//!
//! The drain deadline is an operational timeout on the runtime's monotonic timer, like the
//! network timeouts: the injected business clock (frozen in tests) does not drive it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::SharedClock;
use crate::sip::ua::UaHandle;
use crate::store::Store;

/// How often the drain looks whether calls are left.
const POLL: Duration = Duration::from_millis(100);

/// How long flows may take to end after our BYE, and tasks to stop after the cancellation.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The engine's long-lived tasks under one cancellation token.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    /// Cancelled when the engine stops: every task tracked here ends.
    pub token: CancellationToken,
    /// Cancelled when a shutdown starts: the work that creates new calls (callback dialling).
    pub intake: CancellationToken,
    /// Every task spawned through [`Tasks::spawn`].
    pub tracker: TaskTracker,
}

impl Tasks {
    /// A set ending with `token`; `intake` is a child of it.
    pub fn new(token: CancellationToken) -> Self {
        Tasks {
            intake: token.child_token(),
            token,
            tracker: TaskTracker::new(),
        }
    }

    /// Spawns `fut`, tracked, ending when the engine's token is cancelled.
    pub fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.spawn_until(self.token.clone(), fut);
    }

    /// Spawns `fut`, tracked, ending when `token` is cancelled.
    pub fn spawn_until<F>(&self, token: CancellationToken, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = fut => {}
            }
        });
    }

    /// Cancels every task and waits (at most `grace`) for them to end; false on timeout.
    pub async fn stop(&self, grace: Duration) -> bool {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// What a shutdown did, for its closing log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrainReport {
    /// Calls up or being set up when the shutdown started.
    pub calls_at_start: usize,
    /// Calls still up at the end of the drain, which got our BYE (or a final response).
    pub hung_up: usize,
    /// How long the drain lasted.
    pub drained_for: Duration,
    /// The store's queued writes were committed.
    pub store_flushed: bool,
    /// Every task ended within the grace period.
    pub tasks_stopped: bool,
}

/// What the drain acts on.
pub struct Drain<'a> {
    /// The probes: marked draining.
    pub health: &'a super::Health,
    /// The user agent, when SIP runs.
    pub ua: Option<&'a UaHandle>,
    /// The inbound calls' flow tasks.
    pub calls: &'a TaskTracker,
    /// The store to flush.
    pub store: &'a Arc<dyn Store>,
    /// The engine's tasks.
    pub tasks: &'a Tasks,
    /// `shutdown.drain_seconds`.
    pub limit: Duration,
    /// The engine's clock, which times the drain.
    pub clock: &'a SharedClock,
}

impl Drain<'_> {
    /// Runs the shutdown described in the module documentation.
    pub async fn run(self) -> DrainReport {
        let started = self.clock.now();
        self.health.set_draining();
        self.tasks.intake.cancel();
        let mut report = DrainReport::default();
        if let Some(ua) = self.ua {
            ua.drain();
            report.calls_at_start = ua.active_calls().await;
            tracing::info!(
                calls = report.calls_at_start,
                drain_seconds = self.limit.as_secs(),
                "shutdown: new calls refused, waiting for live calls to end"
            );
            let deadline = chrono::TimeDelta::from_std(self.limit)
                .ok()
                .and_then(|limit| started.checked_add_signed(limit))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            let poll = chrono::TimeDelta::from_std(POLL).unwrap_or_default();
            let mut left = report.calls_at_start;
            while left > 0 && self.clock.now() < deadline {
                self.clock
                    .sleep(poll.min(deadline - self.clock.now()))
                    .await;
                left = ua.active_calls().await;
            }
            if left > 0 {
                report.hung_up = ua.hang_up_all().await;
                tracing::info!(
                    calls = report.hung_up,
                    "shutdown: drain time over, hanging up the remaining calls"
                );
            }
        }
        self.calls.close();
        if tokio::time::timeout(STOP_GRACE, self.calls.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: some flows did not end after their call");
        }
        report.drained_for = (self.clock.now() - started).to_std().unwrap_or_default();
        // The store has one writer that commits in order: an empty write returns once every
        // write queued before it is committed.
        report.store_flushed = match self.store.save_documents(Vec::new()).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "shutdown: the store could not be flushed");
                false
            }
        };
        report.tasks_stopped = self.tasks.stop(STOP_GRACE).await;
        if !report.tasks_stopped {
            tracing::warn!("shutdown: some tasks did not stop in time");
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stopping_ends_every_tracked_task() {
        let tasks = Tasks::new(CancellationToken::new());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        });
        assert!(tasks.stop(Duration::from_secs(1)).await);
        // The task's future was dropped, and with it the sender.
        assert!(rx.await.is_err());
    }

    #[tokio::test]
    async fn intake_is_cancelled_with_the_engine() {
        let tasks = Tasks::new(CancellationToken::new());
        tasks.token.cancel();
        assert!(tasks.intake.is_cancelled());
    }
}

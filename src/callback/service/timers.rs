//! The deadlines of callbacks (activation, purge, retry): armed per record, fired by `tick`
//! on the injected clock, and rebuilt by `recover` after a restart.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{CallbackService, QueueEvent, ServiceError};
use crate::callback::model::{CallbackRecord, CallbackState, CallbackType, CompletionReason};
use crate::callback::restart;
use crate::callback::scheduler::{Wake, purge_at};

impl CallbackService {
    /// Reloads every unfinished callback after a restart: its place in the queue, its slot and
    /// its deadlines. Deadlines that passed while the engine was down fire on the next tick.
    ///
    /// A record found in flight was cut by the stop (see README, "Restart rule"): ROUTING goes
    /// back to QUEUED at its old place with the dial counted as a failed attempt (COMPLETED
    /// REDIAL_LIMIT_REACHED if it was the last one allowed); PROCESSING completes as
    /// ENGINE_RESTARTED. A record that cannot be resolved is logged and left as it is.
    pub async fn recover(&self) -> Result<usize, ServiceError> {
        if self.leases.get().is_some() {
            // In a cluster nothing is loaded: callbacks are claimed as they fall due.
            return Ok(0);
        }
        let now = self.clock.now();
        let mut active = self.store.active_callbacks().await?;
        let n = active.len();
        let mut resolved = Vec::new();
        for rec in active.iter_mut() {
            if !matches!(
                rec.state,
                CallbackState::Routing | CallbackState::Processing
            ) {
                continue;
            }
            let mut r = rec.clone();
            match self
                .queue(&r.queue)
                .and_then(|q| Ok(restart::resolve_in_flight(&mut r, &q, now)?))
            {
                Ok(()) => {
                    tracing::warn!(callback = %r.id, from = rec.state.name(), to = ?r.state, "in-flight callback resolved at restart");
                    *rec = r.clone();
                    resolved.push(r);
                }
                Err(e) => {
                    tracing::error!(callback = %rec.id, error = %e, "in-flight callback not resolved at restart")
                }
            }
        }
        if !resolved.is_empty() {
            self.store.save_callbacks(resolved).await?;
        }
        for rec in active {
            if rec.state.is_completed() {
                continue;
            }
            if rec.kind == CallbackType::Scheduled {
                self.slots.force_book(&rec.queue, self.slot_of(&rec));
            }
            self.arm(&rec);
            self.records.insert(rec.id, rec);
        }
        Ok(n)
    }

    /// Sets the deadlines (and queue event) that a record's state calls for.
    pub(super) fn arm(&self, rec: &CallbackRecord) {
        let mut timers = self.timers.lock();
        match rec.state {
            CallbackState::Scheduled => timers.schedule(rec.id, Wake::Activate, rec.desired_time),
            CallbackState::Queued | CallbackState::Routing => {
                if let Some(at) = self.purge_deadline(rec) {
                    timers.schedule(rec.id, Wake::Purge, at);
                }
                if let Some(at) = rec.next_attempt_at {
                    timers.schedule(rec.id, Wake::Retry, at);
                }
                drop(timers);
                if rec.state == CallbackState::Queued && rec.next_attempt_at.is_none() {
                    self.emit(QueueEvent::Enqueue {
                        id: rec.id,
                        queue: rec.queue.clone(),
                        priority: rec.priority,
                        queue_time: rec.queue_time,
                    });
                }
            }
            _ => {}
        }
    }

    /// When a waiting callback is purged if still unserved (from its last entry in the queue).
    pub(crate) fn purge_deadline(&self, rec: &CallbackRecord) -> Option<DateTime<Utc>> {
        let config = self.config();
        let q = config.queue(&rec.queue)?;
        let hours = config.queue_hours(q);
        let since = rec
            .history
            .iter()
            .rev()
            .find(|e| e.to == CallbackState::Queued)
            .map(|e| e.at);
        Some(purge_at(q, &hours, since.unwrap_or(rec.created_at)))
    }

    /// When the queue's business hours next allow a dial at or after `now`: `Some(now)` while
    /// open, the next opening while closed, `None` when they never open again.
    pub(crate) fn next_dial_time(&self, queue: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let config = self.config();
        let q = config.queue(queue)?;
        let hours = config.queue_hours(q);
        if hours.is_open(now) {
            Some(now)
        } else {
            hours.next_open(now)
        }
    }

    /// The earliest pending deadline, for the engine to sleep until.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.timers.lock().next_deadline()
    }

    /// Handles every deadline that has come: activations, retries, purges and push expiries.
    /// One record that cannot be handled is logged and skipped: it never stops the others that
    /// fell due at the same moment (an end-of-day purge with a live call among them).
    pub async fn tick(&self) -> Result<usize, ServiceError> {
        let now = self.clock.now();
        let due = self.timers.lock().pop_due(now);
        let n = due.len();
        for (id, wake, _) in due {
            if let Err(e) = self.wake(id, wake, now).await {
                tracing::warn!(callback = %id, ?wake, error = %e, "deadline not applied; skipped");
            }
        }
        Ok(n)
    }

    /// Applies one deadline to one callback.
    pub(super) async fn wake(
        &self,
        id: Uuid,
        wake: Wake,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        match wake {
            Wake::Activate => {
                self.change(id, |r| {
                    r.transition(
                        CallbackState::Queued,
                        now,
                        "scheduler",
                        "desired time reached",
                    )?;
                    Ok(None)
                })
                .await?;
                if let Some(r) = self.records.get(&id).map(|r| r.clone()) {
                    self.arm(&r);
                }
            }
            Wake::Retry => {
                self.change(id, |r| {
                    r.next_attempt_at = None;
                    Ok(None)
                })
                .await?;
                if let Some(r) = self.records.get(&id).map(|r| r.clone()) {
                    self.arm(&r);
                }
            }
            Wake::Purge => {
                // A callback being dialled or with an agent is not purged: its call decides
                // (a failed dial after the purge time completes as PURGED, see `dialer`). The
                // check runs inside `change`, on the current record.
                let mut in_progress = None;
                let (rec, _) = self
                    .change(id, |r| {
                        if matches!(r.state, CallbackState::Routing | CallbackState::Processing) {
                            in_progress = Some(r.state);
                            return Ok(None);
                        }
                        r.transition(
                            CallbackState::Completed(CompletionReason::Purged),
                            now,
                            "scheduler",
                            "not served before the purge time or the end of the business day",
                        )?;
                        Ok(None)
                    })
                    .await?;
                if let Some(state) = in_progress {
                    tracing::info!(callback = %id, ?state, "not purged: its call is in progress");
                    return Ok(());
                }
                tracing::debug!(callback = %rec.id, "purged");
            }
            Wake::PushExpiry => {
                self.change(id, |r| {
                    r.transition(
                        CallbackState::Completed(CompletionReason::Expired),
                        now,
                        "scheduler",
                        "pushed callback expired",
                    )?;
                    Ok(None)
                })
                .await?;
            }
        }
        Ok(())
    }
}

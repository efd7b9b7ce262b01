//! Push events: which a change raises, where they go, the UPCOMING check and the READY
//! expiry.

use chrono::TimeDelta;
use uuid::Uuid;

use super::CallbackService;
use crate::callback::model::{CallbackRecord, CallbackState, CompletionReason};
use crate::callback::scheduler::Wake;
use crate::config::CallDirection;
use crate::push::{PushEvent, PushHub, PushKind, PushTarget};
use std::sync::Arc;

impl CallbackService {
    /// The push events a change raises, read from the record before and after it: PURGED and
    /// FINAL_ATTEMPT_FAILED on those completions, ATTEMPT_FAILED when a dial failed and the
    /// callback went back to its queue, READY and UPCOMING when they are first marked.
    pub(super) fn raised(&self, before: &CallbackRecord, after: &CallbackRecord) -> Vec<PushEvent> {
        let mut kinds = Vec::new();
        if !before.state.is_completed() {
            match after.state {
                CallbackState::Completed(CompletionReason::Purged) => {
                    kinds.push(PushKind::CallbackPurged)
                }
                CallbackState::Completed(CompletionReason::RedialLimitReached) => {
                    kinds.push(PushKind::CallbackFinalAttemptFailed)
                }
                _ => {}
            }
        }
        if before.state == CallbackState::Routing
            && after.state == CallbackState::Queued
            && after.attempts() > before.attempts()
        {
            kinds.push(PushKind::CallbackAttemptFailed);
        }
        if before.push.ready_at.is_none() && after.push.ready_at.is_some() {
            kinds.push(PushKind::CallbackReady);
        }
        if !before.push.upcoming_done && after.push.upcoming_done && after.push.upcoming_armed {
            kinds.push(PushKind::CallbackUpcoming);
        }
        if kinds.is_empty() {
            return Vec::new();
        }
        let targets = self.targets_for(after);
        let now = self.clock.now();
        kinds
            .into_iter()
            .map(|kind| PushEvent {
                id: Uuid::new_v4(),
                kind,
                callback_id: after.id,
                queue: after.queue.clone(),
                at: now,
                targets: targets.clone(),
                data: event_data(kind, after),
            })
            .collect()
    }

    /// Where a callback's events go: its `pushTargets`, then its queue's webhook.
    pub(super) fn targets_for(&self, rec: &CallbackRecord) -> Vec<PushTarget> {
        let mut targets = rec.push.targets.clone();
        if let Some(url) = self
            .config()
            .queue(&rec.queue)
            .and_then(|q| q.push_webhook_url.clone())
        {
            targets.push(PushTarget {
                channel: "WEBHOOK".into(),
                target: url,
            });
        }
        targets
    }

    /// Tells the notifier at once about events with nowhere to go (the log), and wakes the
    /// outbox worker for the others (it tells the notifier once they are delivered).
    pub(super) async fn announce(&self, events: Vec<PushEvent>) {
        let mut queued = false;
        for e in events {
            if e.targets.is_empty() {
                self.push.notifier.notify(e).await;
            } else {
                queued = true;
            }
        }
        if queued {
            self.push.wake.notify_one();
        }
    }

    /// CALLBACK_UPCOMING, as the guide has it: raised once, the first time a waiting
    /// callback's EWT (`ewt_of`, seconds; `None` when unknown) drops under its queue's
    /// `push_notification_threshold_minutes`, and never when it was already under at the
    /// first look. Only callbacks with somewhere to push are looked at. Returns how many
    /// were raised.
    pub async fn check_upcoming(&self, ewt_of: impl Fn(&CallbackRecord) -> Option<i64>) -> usize {
        let candidates: Vec<CallbackRecord> = self
            .records
            .iter()
            .filter(|r| {
                r.state == CallbackState::Queued
                    && !r.push.upcoming_done
                    && !self.targets_for(r).is_empty()
            })
            .map(|r| r.clone())
            .collect();
        let mut raised = 0;
        for rec in candidates {
            let Some(ewt) = ewt_of(&rec) else { continue };
            let Some(q) = self.config().queue(&rec.queue).cloned() else {
                continue;
            };
            let threshold = q.push_notification_threshold_minutes * 60;
            let below = ewt < threshold;
            if !below && rec.push.upcoming_armed {
                continue;
            }
            let result = self
                .update(rec.id, |r| {
                    if r.push.upcoming_done || r.state != CallbackState::Queued {
                        return Ok(());
                    }
                    if below {
                        r.push.upcoming_done = true;
                    } else {
                        r.push.upcoming_armed = true;
                    }
                    Ok(())
                })
                .await;
            match result {
                Ok(r) if below && r.push.upcoming_armed => raised += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(callback = %rec.id, error = %e, "CALLBACK_UPCOMING not checked")
                }
            }
        }
        raised
    }

    /// What the service shares with the push outbox worker.
    pub fn push_hub(&self) -> &Arc<PushHub> {
        &self.push
    }

    /// Marks the start of a pushed customer-dials-in callback's life (its first push).
    pub fn start_push_expiry(&self, id: Uuid) {
        let Some(rec) = self.records.get(&id).map(|r| r.clone()) else {
            return;
        };
        if rec.direction != CallDirection::CustomerDialsIn {
            return;
        }
        if let Some(q) = self.config().queue(&rec.queue) {
            // From the first push: a second look (after a restart) does not extend it.
            let since = rec.push.ready_at.unwrap_or_else(|| self.clock.now());
            let at = since + TimeDelta::minutes(q.pushed_callback_expiry_minutes);
            self.timers.lock().schedule(id, Wake::PushExpiry, at);
        }
    }
}

/// The fields an event carries beside its name: the callback's state and attempts, and for
/// READY what the customer is to dial (number, access code, expiry) when the queue gives one.
fn event_data(kind: PushKind, rec: &CallbackRecord) -> serde_json::Value {
    let mut data = serde_json::json!({
        "callbackState": rec.state.name(),
        "dialAttempts": rec.attempts(),
    });
    if let CallbackState::Completed(reason) = rec.state {
        data["callbackReason"] = serde_json::to_value(reason).unwrap_or_default();
    }
    if kind == PushKind::CallbackReady
        && let serde_json::Value::Object(details) = &rec.push.call_in
    {
        for (k, v) in details {
            data[k] = v.clone();
        }
    }
    data
}

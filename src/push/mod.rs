//! Push events leave the engine through the [`Notifier`] seam: a log notifier by default, an
//! in-memory one that tests and the simulator read, and FCM / webhook implementations later.

use parking_lot::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The push events of the callback guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PushKind {
    /// EWT dropped below the queue's push threshold (sent once).
    CallbackUpcoming,
    /// A customer-dials-in callback reached the head of its queue.
    CallbackReady,
    /// The callback was purged.
    CallbackPurged,
    /// An outbound attempt failed; another will follow.
    CallbackAttemptFailed,
    /// The last allowed attempt failed.
    CallbackFinalAttemptFailed,
}

/// Where a push goes (e.g. an FCM registration token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTarget {
    /// Channel name, e.g. `FCM` or `webhook`.
    pub channel: String,
    /// Token or URL for that channel.
    pub target: String,
}

/// One event about one callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushEvent {
    /// What happened.
    pub kind: PushKind,
    /// The callback.
    pub callback_id: Uuid,
    /// Its queue.
    pub queue: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Where to deliver it (empty: only logged).
    pub targets: Vec<PushTarget>,
    /// Extra fields (e.g. the number to dial and access code for a call-in push).
    pub data: serde_json::Value,
}

/// Delivers push events.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one event; delivery failures are logged by the implementation, never fatal.
    async fn notify(&self, event: PushEvent);
}

/// Writes every event to the log (the default when no push service is configured).
#[derive(Debug, Default)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn notify(&self, event: PushEvent) {
        tracing::info!(kind = ?event.kind, callback = %event.callback_id, queue = %event.queue, "push event");
    }
}

/// Keeps events in memory, in order, for tests and the simulator's report.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    events: Mutex<Vec<PushEvent>>,
}

impl MemoryNotifier {
    /// An empty notifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event received so far.
    pub fn events(&self) -> Vec<PushEvent> {
        self.events.lock().clone()
    }

    /// Kinds received for one callback, in order.
    pub fn kinds_for(&self, id: Uuid) -> Vec<PushKind> {
        self.events()
            .into_iter()
            .filter(|e| e.callback_id == id)
            .map(|e| e.kind)
            .collect()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn notify(&self, event: PushEvent) {
        self.events.lock().push(event);
    }
}

/// Decides when CALLBACK_UPCOMING fires: once, the first time EWT drops below the threshold,
/// and never if it was already below when the callback was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpcomingState {
    /// EWT has been at or above the threshold since creation.
    Waiting,
    /// Sent, or not to be sent: nothing more to do.
    Done,
}

impl UpcomingState {
    /// The state at creation, given the EWT then.
    pub fn at_creation(ewt_seconds: i64, threshold_seconds: i64) -> Self {
        if ewt_seconds < threshold_seconds {
            UpcomingState::Done
        } else {
            UpcomingState::Waiting
        }
    }

    /// Feeds a new EWT; true when CALLBACK_UPCOMING must be sent now.
    pub fn observe(&mut self, ewt_seconds: i64, threshold_seconds: i64) -> bool {
        if *self == UpcomingState::Waiting && ewt_seconds < threshold_seconds {
            *self = UpcomingState::Done;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upcoming_fires_once_and_not_when_already_below_at_creation() {
        let mut s = UpcomingState::at_creation(600, 300);
        assert!(!s.observe(400, 300));
        assert!(s.observe(200, 300));
        assert!(!s.observe(500, 300), "rising again changes nothing");
        assert!(!s.observe(100, 300), "not sent twice");
        let mut below = UpcomingState::at_creation(100, 300);
        assert!(!below.observe(50, 300));
    }

    #[tokio::test]
    async fn memory_notifier_keeps_events_in_order() {
        let n = MemoryNotifier::new();
        let id = Uuid::new_v4();
        for kind in [
            PushKind::CallbackAttemptFailed,
            PushKind::CallbackFinalAttemptFailed,
        ] {
            n.notify(PushEvent {
                kind,
                callback_id: id,
                queue: "Q".into(),
                at: DateTime::UNIX_EPOCH,
                targets: vec![],
                data: serde_json::Value::Null,
            })
            .await;
        }
        assert_eq!(
            n.kinds_for(id),
            vec![
                PushKind::CallbackAttemptFailed,
                PushKind::CallbackFinalAttemptFailed
            ]
        );
        assert_eq!(
            serde_json::to_string(&PushKind::CallbackUpcoming).unwrap(),
            "\"CALLBACK_UPCOMING\""
        );
    }
}

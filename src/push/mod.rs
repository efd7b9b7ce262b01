//! Push events leave the engine in two ways. An event whose callback has somewhere to send it
//! (its `pushTargets`, or its queue's webhook) is written to the durable outbox in the same
//! store write as the state change that caused it ([`outbox`]), and a worker delivers it at
//! least once over FCM HTTP v1 ([`fcm`]) or a signed webhook ([`webhook`]). Every event, sent
//! or not, is also told to the [`Notifier`] seam: a log notifier by default, an in-memory one
//! that tests and the simulator read.

pub mod channels;
pub mod fcm;
pub(crate) mod metrics;
pub mod outbox;
pub mod settings;
pub mod webhook;

pub use channels::{Channels, DeliveryError};
pub use metrics::PushMetrics;
pub use outbox::{OutboxEntry, OutboxState, Worker};
pub use settings::{FcmSettings, PushSettings};

use parking_lot::Mutex;
use std::sync::Arc;

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

impl PushKind {
    /// The event's name as the guide writes it (`CALLBACK_READY`, …).
    pub fn name(self) -> &'static str {
        match self {
            PushKind::CallbackUpcoming => "CALLBACK_UPCOMING",
            PushKind::CallbackReady => "CALLBACK_READY",
            PushKind::CallbackPurged => "CALLBACK_PURGED",
            PushKind::CallbackAttemptFailed => "CALLBACK_ATTEMPT_FAILED",
            PushKind::CallbackFinalAttemptFailed => "CALLBACK_FINAL_ATTEMPT_FAILED",
        }
    }
}

/// Where a push goes: `{channel:"FCM", target:<registration token>}` as in GES, or
/// `{channel:"WEBHOOK", target:<http(s) URL>}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushTarget {
    /// Channel name: `FCM` or `WEBHOOK` (any case).
    pub channel: String,
    /// Registration token (FCM) or URL (webhook).
    pub target: String,
}

/// The channels a target may name.
pub const CHANNELS: &[&str] = &["FCM", "WEBHOOK"];

/// Most push targets on one callback.
pub const MAX_TARGETS: usize = 10;

/// Most bytes of one target (a token or a URL).
pub const MAX_TARGET_BYTES: usize = 4096;

impl PushTarget {
    /// Checks a target given on create: a known channel, a non-empty bounded target, and an
    /// `http(s)://` URL for a webhook. The message names the field.
    pub fn check(&self) -> Result<(), String> {
        let channel = self.channel.to_ascii_uppercase();
        if !CHANNELS.contains(&channel.as_str()) {
            return Err(format!(
                "channel `{}` is not supported (FCM or WEBHOOK)",
                self.channel
            ));
        }
        if self.target.trim().is_empty() || self.target.len() > MAX_TARGET_BYTES {
            return Err(format!(
                "target must be 1 to {MAX_TARGET_BYTES} bytes, not empty"
            ));
        }
        if channel == "WEBHOOK" && !webhook::is_http_url(&self.target) {
            return Err("a WEBHOOK target must be an http:// or https:// URL".into());
        }
        Ok(())
    }

    /// The channel, upper-cased.
    pub fn channel(&self) -> String {
        self.channel.to_ascii_uppercase()
    }
}

/// What a callback record keeps about its pushes: where they go and which one-off events have
/// been raised (so a restart or a second look never raises them twice).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackPush {
    /// The `pushTargets` given on create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<PushTarget>,
    /// CALLBACK_UPCOMING is settled: raised, or not to be raised (EWT already under the
    /// threshold at creation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upcoming_done: bool,
    /// EWT has been seen at or above the queue's threshold: dropping under it raises
    /// CALLBACK_UPCOMING (never set when EWT was already under it at the first look).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upcoming_armed: bool,
    /// When CALLBACK_READY was raised (customer-dials-in), which starts the pushed expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    /// What the READY push told the customer to dial (number, access code, expiry).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub call_in: serde_json::Value,
}

impl CallbackPush {
    /// True when nothing is set (kept out of the stored record).
    pub fn is_empty(&self) -> bool {
        self == &CallbackPush::default()
    }
}

/// One event about one callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushEvent {
    /// Unique id of this event (each delivery of it to one target has its own, see
    /// [`OutboxEntry::id`]).
    pub id: Uuid,
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

/// Is told every push event: at once when it has no target, once delivered when it has.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Takes one event; never fails (it observes, the outbox delivers).
    async fn notify(&self, event: PushEvent);
}

/// What the callback service shares with the outbox worker: the notifier, the worker's
/// wake-up, and (once the engine has built them) the delivery channels.
pub struct PushHub {
    /// Observes every event.
    pub notifier: Arc<dyn Notifier>,
    /// Rung after a write that added outbox entries.
    pub wake: Arc<tokio::sync::Notify>,
    channels: std::sync::OnceLock<Arc<Channels>>,
}

impl PushHub {
    /// A hub telling `notifier`.
    pub fn new(notifier: Arc<dyn Notifier>) -> Self {
        PushHub {
            notifier,
            wake: Arc::new(tokio::sync::Notify::new()),
            channels: std::sync::OnceLock::new(),
        }
    }

    /// Sets the delivery channels (once, at start).
    pub fn set_channels(&self, channels: Arc<Channels>) {
        let _ = self.channels.set(channels);
    }

    /// The delivery channels, once set.
    pub fn channels(&self) -> Option<Arc<Channels>> {
        self.channels.get().cloned()
    }
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
                id: Uuid::new_v4(),
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

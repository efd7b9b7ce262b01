//! The durable outbox. The callback service writes an [`OutboxEntry`] per event and target in
//! the same store write as the state change that raised it, so a crash can lose neither
//! without the other. The [`Worker`] delivers what is due, at least once: an entry is marked
//! delivered only after its receiver accepted it, so a crash in between sends it again with
//! the same id (the receiver drops the repeat). Failures wait an exponential backoff on the
//! injected clock; after `push.max_attempts`, or at once for a permanent error, the entry is
//! marked failed and stays visible in the administration (`GET /admin/push/outbox`).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Channels, PushEvent, PushHub, PushMetrics, PushSettings, PushTarget};
use crate::clock::SharedClock;
use crate::store::{Store, StoreError};

/// Where an entry is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    /// Waiting for its next attempt.
    Pending,
    /// Accepted by its receiver.
    Delivered,
    /// Given up: a permanent error, or every attempt failed.
    Failed,
}

impl OutboxState {
    /// The stored and listed name.
    pub fn name(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
        }
    }

    /// A name back into a state.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OutboxState::Pending),
            "delivered" => Some(OutboxState::Delivered),
            "failed" => Some(OutboxState::Failed),
            _ => None,
        }
    }
}

/// One event for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    /// Unique id of this delivery, sent with every attempt (`eventId`) for dedup.
    pub id: Uuid,
    /// The event.
    pub event: PushEvent,
    /// Where it goes.
    pub target: PushTarget,
    /// Delivery state.
    pub state: OutboxState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending entries).
    pub next_attempt_at: DateTime<Utc>,
    /// When the event was raised.
    pub created_at: DateTime<Utc>,
    /// When the receiver accepted it.
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last failure.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl OutboxEntry {
    /// A pending entry for `event` to `target`, due at once.
    pub fn new(event: &PushEvent, target: PushTarget) -> Self {
        OutboxEntry {
            id: Uuid::new_v4(),
            event: PushEvent {
                targets: Vec::new(),
                ..event.clone()
            },
            target,
            state: OutboxState::Pending,
            attempts: 0,
            next_attempt_at: event.at,
            created_at: event.at,
            delivered_at: None,
            last_error: None,
        }
    }
}

/// Most entries one delivery pass takes.
const BATCH: usize = 256;

/// Delivers due outbox entries; one per engine.
pub struct Worker {
    /// Where the outbox is.
    pub store: Arc<dyn Store>,
    /// Time.
    pub clock: SharedClock,
    /// What delivers each channel.
    pub channels: Arc<Channels>,
    /// Whose notifier is told of the outcomes.
    pub hub: Arc<PushHub>,
    /// Timeouts and retries.
    pub settings: PushSettings,
    /// Delivery counters.
    pub metrics: PushMetrics,
}

impl Worker {
    /// One pass: attempts every due entry (concurrently, each within the HTTP timeout) and
    /// records each outcome. Returns how many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let due = self.store.outbox_due(now, BATCH).await?;
        let n = due.len();
        let mut set = tokio::task::JoinSet::new();
        for entry in due {
            let channels = self.channels.clone();
            set.spawn(async move {
                let result = channels.deliver(&entry).await;
                (entry, result)
            });
        }
        let mut updated = Vec::with_capacity(n);
        let mut delivered = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((mut entry, result)) = joined else {
                continue;
            };
            let at = self.clock.now();
            entry.attempts += 1;
            match result {
                Ok(()) => {
                    entry.state = OutboxState::Delivered;
                    entry.delivered_at = Some(at);
                    entry.last_error = None;
                    self.metrics.count("delivered");
                    tracing::info!(event = %entry.id, kind = entry.event.kind.name(), callback = %entry.event.callback_id, channel = %entry.target.channel(), attempts = entry.attempts, "push delivered");
                    delivered.push(entry.event.clone());
                }
                Err(e) if e.permanent || entry.attempts >= self.settings.max_attempts => {
                    entry.state = OutboxState::Failed;
                    entry.last_error = Some(e.message.clone());
                    self.metrics.count("failed");
                    tracing::error!(event = %entry.id, kind = entry.event.kind.name(), callback = %entry.event.callback_id, attempts = entry.attempts, error = %e, "push not delivered; given up");
                }
                Err(e) => {
                    entry.next_attempt_at = at + self.settings.backoff(entry.attempts);
                    entry.last_error = Some(e.message.clone());
                    self.metrics.count("retry");
                    tracing::warn!(event = %entry.id, kind = entry.event.kind.name(), callback = %entry.event.callback_id, attempts = entry.attempts, retry_at = %entry.next_attempt_at, error = %e, "push not delivered; will retry");
                }
            }
            updated.push(entry);
        }
        if !updated.is_empty() {
            self.store.save_outbox(updated).await?;
        }
        for event in delivered {
            self.hub.notifier.notify(event).await;
        }
        self.refresh_gauge().await;
        Ok(n)
    }

    /// Sets the pending gauge from the store.
    pub async fn refresh_gauge(&self) {
        if let Ok(n) = self.store.outbox_pending().await {
            self.metrics.pending.set(n as i64);
        }
    }

    /// Delivers until the process ends: after each pass it sleeps until the next entry is due
    /// (on the injected clock) or a new one is written.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::error!(error = %e, "push outbox cannot be read or updated");
                // Real time: a store in trouble is not asked again at once.
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            let now = self.clock.now();
            let next = match self.store.outbox_next_due().await {
                Ok(Some(t)) => t.max(now),
                Ok(None) => now + TimeDelta::hours(1),
                Err(_) => now + TimeDelta::seconds(5),
            };
            if next <= now {
                continue;
            }
            tokio::select! {
                _ = self.clock.sleep_until(next) => {}
                _ = self.hub.wake.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::push::{MemoryNotifier, PushKind};
    use crate::store::MemoryStore;
    use chrono::TimeZone;
    use parking_lot::Mutex;

    type Seen = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

    /// A local webhook receiver answering the statuses of `script` in turn (200 after it).
    async fn receiver(script: Vec<u16>) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let s2 = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (seen, script) = (s2.clone(), script.clone());
                    async move {
                        seen.lock().push((headers, body.to_vec()));
                        let code = script.lock().pop_front().unwrap_or(200);
                        axum::http::StatusCode::from_u16(code).unwrap()
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/hook"), seen)
    }

    fn config(secret: &str, max_attempts: u32) -> crate::config::Config {
        let text = format!(
            "push:\n  webhook_secret: {secret}\n  max_attempts: {max_attempts}\n  initial_backoff_seconds: 5\n  max_backoff_seconds: 60\n"
        );
        crate::config::Config::from_str_in(&text, std::path::Path::new("."))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    struct Fixture {
        store: Arc<MemoryStore>,
        clock: ManualClock,
        notifier: Arc<MemoryNotifier>,
        worker: Worker,
    }

    fn fixture(config: &crate::config::Config) -> Fixture {
        let store = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
        let notifier = Arc::new(MemoryNotifier::new());
        let hub = Arc::new(PushHub::new(notifier.clone()));
        let channels = Channels::from_config(config, clock.shared());
        let worker = Worker {
            store: store.clone(),
            clock: clock.shared(),
            channels,
            hub,
            settings: config.spec.push.clone(),
            metrics: PushMetrics::default(),
        };
        Fixture {
            store,
            clock,
            notifier,
            worker,
        }
    }

    fn entry(url: &str, at: DateTime<Utc>) -> OutboxEntry {
        let event = PushEvent {
            id: Uuid::new_v4(),
            kind: PushKind::CallbackAttemptFailed,
            callback_id: Uuid::new_v4(),
            queue: "Sales_VQ_CB".into(),
            at,
            targets: Vec::new(),
            data: serde_json::json!({ "dialAttempts": 1 }),
        };
        OutboxEntry::new(
            &event,
            PushTarget {
                channel: "webhook".into(),
                target: url.into(),
            },
        )
    }

    #[tokio::test]
    async fn a_failing_webhook_is_retried_with_doubling_backoff_then_delivered_once() {
        let (url, seen) = receiver(vec![503, 500]).await;
        let f = fixture(&config("s3cret", 10));
        let e = entry(&url, f.clock.now());
        f.store.save_outbox(vec![e.clone()]).await.unwrap();

        assert_eq!(f.worker.deliver_due().await.unwrap(), 1);
        let after1 = f.store.outbox_list(None, 0).await.unwrap().remove(0);
        assert_eq!(after1.state, OutboxState::Pending);
        assert_eq!(after1.attempts, 1);
        assert_eq!(
            after1.next_attempt_at,
            f.clock.now() + TimeDelta::seconds(5)
        );
        assert!(after1.last_error.as_deref().unwrap().contains("503"));
        // Not due before its time.
        f.clock.advance(TimeDelta::seconds(4));
        assert_eq!(f.worker.deliver_due().await.unwrap(), 0);
        f.clock.advance(TimeDelta::seconds(1));
        assert_eq!(f.worker.deliver_due().await.unwrap(), 1);
        let after2 = f.store.outbox_list(None, 0).await.unwrap().remove(0);
        assert_eq!(
            after2.next_attempt_at,
            f.clock.now() + TimeDelta::seconds(10)
        );
        f.clock.advance(TimeDelta::seconds(10));
        assert_eq!(f.worker.deliver_due().await.unwrap(), 1);
        let done = f.store.outbox_list(None, 0).await.unwrap().remove(0);
        assert_eq!(done.state, OutboxState::Delivered);
        assert_eq!(done.attempts, 3);
        assert_eq!(done.delivered_at, Some(f.clock.now()));
        assert_eq!(f.store.outbox_pending().await.unwrap(), 0);
        // Three attempts reached the receiver, each with the same event id and a valid
        // signature of its exact body.
        let seen = seen.lock().clone();
        assert_eq!(seen.len(), 3);
        for (headers, body) in &seen {
            assert_eq!(
                headers[crate::push::webhook::EVENT_ID_HEADER],
                e.id.to_string().as_str()
            );
            assert_eq!(
                headers[crate::push::webhook::SIGNATURE_HEADER],
                crate::push::webhook::signature(b"s3cret", body).as_str()
            );
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(v["eventId"], e.id.to_string());
            assert_eq!(v["event"], "CALLBACK_ATTEMPT_FAILED");
            assert_eq!(v["callbackId"], e.event.callback_id.to_string());
            assert_eq!(v["serviceName"], "Sales_VQ_CB");
            assert_eq!(v["data"]["dialAttempts"], 1);
        }
        // The notifier heard of it once, when delivered.
        assert_eq!(
            f.notifier.kinds_for(e.event.callback_id),
            vec![PushKind::CallbackAttemptFailed]
        );
        assert_eq!(f.worker.deliver_due().await.unwrap(), 0, "never again");
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_a_4xx_gives_up_at_once() {
        let (url, seen) = receiver(vec![500; 20]).await;
        let f = fixture(&config("x", 3));
        let e = entry(&url, f.clock.now());
        f.store.save_outbox(vec![e.clone()]).await.unwrap();
        for _ in 0..5 {
            f.worker.deliver_due().await.unwrap();
            f.clock.advance(TimeDelta::seconds(60));
        }
        let failed = f.store.outbox_list(None, 0).await.unwrap().remove(0);
        assert_eq!(failed.state, OutboxState::Failed);
        assert_eq!(failed.attempts, 3);
        assert_eq!(seen.lock().len(), 3, "bounded by push.max_attempts");
        assert!(f.notifier.events().is_empty());

        let (url, seen) = receiver(vec![404]).await;
        let e = entry(&url, f.clock.now());
        f.store.save_outbox(vec![e.clone()]).await.unwrap();
        f.worker.deliver_due().await.unwrap();
        let gone = f.store.outbox_list(None, 1).await.unwrap().remove(0);
        assert_eq!(gone.id, e.id);
        assert_eq!(gone.state, OutboxState::Failed);
        assert_eq!(gone.attempts, 1);
        assert!(gone.last_error.unwrap().contains("404"));
        assert_eq!(seen.lock().len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_receiver_is_a_retry_not_a_crash() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let f = fixture(&config("x", 5));
        let e = entry(&format!("http://127.0.0.1:{port}/hook"), f.clock.now());
        f.store.save_outbox(vec![e]).await.unwrap();
        f.worker.deliver_due().await.unwrap();
        let after = f.store.outbox_list(None, 0).await.unwrap().remove(0);
        assert_eq!(after.state, OutboxState::Pending);
        assert!(
            after.last_error.unwrap().contains("cannot connect"),
            "named as such"
        );
    }
}

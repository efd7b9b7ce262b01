//! Delivery of one outbox entry to its target, by channel: the JSON a receiver sees, the
//! webhook's signing secret (the queue's, else the `push` section's), and FCM.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::fcm::{Fcm, ServiceAccountError};
use super::outbox::OutboxEntry;
use crate::clock::SharedClock;
use crate::config::Config;

/// Why one delivery attempt failed, and whether another may succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// What went wrong, for the log and the administration.
    pub message: String,
    /// No retry can help (a 4xx answer, an unknown channel, FCM not configured).
    pub permanent: bool,
}

impl DeliveryError {
    /// A failure another attempt may get past (timeouts, refused connections, 5xx).
    pub fn retry(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure no retry will fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: true,
        }
    }

    /// Ok for 2xx; 408, 429 and 5xx may be retried; any other status is permanent.
    pub fn from_status(status: u16, what: impl FnOnce() -> String) -> Result<(), DeliveryError> {
        match status {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => Err(DeliveryError::retry(format!(
                "{} answered {status}",
                what()
            ))),
            _ => Err(DeliveryError::permanent(format!(
                "{} answered {status}",
                what()
            ))),
        }
    }
}

/// The event as a webhook receives it (and the fields of an FCM data message).
pub fn payload(entry: &OutboxEntry) -> Value {
    let e = &entry.event;
    json!({
        "eventId": entry.id,
        "event": e.kind.name(),
        "callbackId": e.callback_id,
        "serviceName": e.queue,
        "at": e.at,
        "data": e.data,
    })
}

/// The FCM v1 `message` for an entry: a data message (FCM data values are strings), with the
/// event's own fields flattened beside `event`, `eventId`, `callbackId` and `serviceName`.
pub fn fcm_message(entry: &OutboxEntry) -> Value {
    let e = &entry.event;
    let mut data = serde_json::Map::new();
    data.insert("eventId".into(), entry.id.to_string().into());
    data.insert("event".into(), e.kind.name().into());
    data.insert("callbackId".into(), e.callback_id.to_string().into());
    data.insert("serviceName".into(), e.queue.clone().into());
    data.insert("at".into(), e.at.to_rfc3339().into());
    if let Value::Object(extra) = &e.data {
        for (k, v) in extra {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            data.insert(k.clone(), text.into());
        }
    }
    json!({ "token": entry.target.target, "data": data })
}

/// The engine's delivery channels.
pub struct Channels {
    http: reqwest::Client,
    fcm: Option<Fcm>,
    fcm_problem: Option<String>,
    default_secret: Option<String>,
    /// Per queue: its webhook URL and that webhook's secret.
    queue_secrets: HashMap<String, (String, String)>,
}

impl Channels {
    /// The channels `config` describes. A bad FCM service account does not stop the engine:
    /// FCM deliveries then fail with its message (check-config reports it first).
    pub fn from_config(config: &Config, clock: SharedClock) -> Arc<Self> {
        let push = &config.spec.push;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(push.timeout_seconds.max(1).into()))
            .build()
            .unwrap_or_default();
        let (fcm, fcm_problem) = match &push.fcm {
            None => (None, None),
            Some(f) => match Fcm::new(f, &config.base_dir, http.clone(), clock) {
                Ok(c) => (Some(c), None),
                Err(e) => {
                    tracing::error!(error = %e, "FCM push is not usable");
                    (None, Some(e.to_string()))
                }
            },
        };
        Arc::new(Channels {
            http,
            fcm,
            fcm_problem,
            default_secret: push.webhook_secret.clone(),
            queue_secrets: config
                .spec
                .queues
                .iter()
                .filter_map(|q| {
                    let pair = (q.push_webhook_url.clone()?, q.push_webhook_secret.clone()?);
                    Some((q.name.clone(), pair))
                })
                .collect(),
        })
    }

    /// FCM, when configured and usable.
    pub fn fcm(&self) -> Result<&Fcm, DeliveryError> {
        self.fcm.as_ref().ok_or_else(|| {
            DeliveryError::permanent(match &self.fcm_problem {
                Some(p) => format!("FCM is not usable: {p}"),
                None => "FCM is not configured (push.fcm)".to_string(),
            })
        })
    }

    /// One attempt to deliver `entry` to its target.
    pub async fn deliver(&self, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        match entry.target.channel().as_str() {
            "WEBHOOK" => {
                // The queue's own webhook is signed with the queue's secret; an app's webhook
                // (a `pushTargets` entry) and a queue without one with `push.webhook_secret`.
                let secret = match self.queue_secrets.get(&entry.event.queue) {
                    Some((url, secret)) if *url == entry.target.target => Some(secret),
                    _ => self.default_secret.as_ref(),
                };
                let body = payload(entry).to_string().into_bytes();
                super::webhook::post(
                    &self.http,
                    &entry.target.target,
                    secret.map(String::as_str),
                    &entry.id.to_string(),
                    body,
                )
                .await
            }
            "FCM" => self
                .fcm()?
                .send(fcm_message(entry), false)
                .await
                .map(|_| ()),
            other => Err(DeliveryError::permanent(format!(
                "unknown push channel `{other}`"
            ))),
        }
    }
}

/// Loads an FCM service account for check-config (the same checks as at start).
pub fn check_service_account(path: &Path) -> Result<(), ServiceAccountError> {
    super::fcm::ServiceAccount::load(path).map(|_| ())
}

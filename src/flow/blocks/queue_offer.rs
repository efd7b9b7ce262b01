//! Route Call's in-queue callback offer: while the caller waits, every `every_seconds` with the
//! estimated wait at or above a threshold, a "press 1" prompt offers an immediate callback that
//! keeps the caller's place (the callback's queue time is the caller's place in the queue).

use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::Deserialize;

use super::user_input::{Ask, Asked, ask};
use crate::callback::model::CallbackRecord;
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::Cx;
use crate::flow::model::{PromptSpec, num};
use crate::flow::services::FlowBooking;
use crate::yaml;

/// A callback offered to a caller already waiting in Route Call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferCallback {
    /// Offered only while the caller's estimated wait is at least this (0 to 86400 seconds;
    /// an unknown wait, with no agent to serve the queue, counts as above).
    #[schemars(range(min = 0, max = 86400))]
    pub ewt_threshold_seconds: u32,
    /// Seconds between offers, the first this long after queueing (10 to 3600, default 60).
    #[serde(default = "num::<60>")]
    #[schemars(range(min = 10, max = 3600))]
    pub every_seconds: u32,
    /// The offer ("press 1 to be called back"), barge-in allowed.
    pub prompts: Vec<PromptSpec>,
    /// Played once the callback is booked.
    #[serde(default)]
    pub booked_prompts: Vec<PromptSpec>,
    /// Seconds to wait for the key after the offer (1 to 30, default 5).
    #[serde(default = "num::<5>")]
    #[schemars(range(min = 1, max = 30))]
    pub key_timeout_seconds: u32,
    /// Callback queue the callback is booked in (default: the Route Call's queue).
    pub callback_queue: Option<String>,
}

impl OfferCallback {
    /// Load-time checks of the `offer_callback` mapping of a Route Call (`c` is the block's).
    pub fn check(&self, c: &mut BlockCheck<'_>) {
        let Some(node) = c.node.get("offer_callback") else {
            return;
        };
        let path = yaml::join(c.path, "offer_callback");
        let mut sub = BlockCheck {
            node,
            path: &path,
            kind: c.kind,
            ctx: c.ctx,
            source: c.source,
            diags: c.diags,
        };
        sub.range(
            "ewt_threshold_seconds",
            self.ewt_threshold_seconds,
            0,
            86_400,
        );
        sub.range("every_seconds", self.every_seconds, 10, 3600);
        sub.range("key_timeout_seconds", self.key_timeout_seconds, 1, 30);
        if self.prompts.is_empty() {
            sub.at("prompts", "the offer needs at least one prompt");
        }
        sub.prompts("prompts", &self.prompts);
        sub.prompts("booked_prompts", &self.booked_prompts);
        if let Some(q) = &self.callback_queue {
            sub.queue("callback_queue", q);
        }
    }

    /// Whether the offer is due with this estimated wait (`None`: unknown).
    pub fn wanted(&self, ewt: Option<TimeDelta>) -> bool {
        ewt.is_none_or(|e| e.num_seconds() >= i64::from(self.ewt_threshold_seconds))
    }
}

/// The caller's answer to an offer.
pub enum Answer {
    /// Pressed 1.
    Accepted,
    /// Another key, or none in time.
    Declined,
    /// Hung up.
    HungUp,
}

/// Plays the offer and waits for one key.
pub async fn ask_caller(o: &OfferCallback, cx: &mut Cx<'_>) -> Answer {
    cx.set("callback.offered_in_queue", true);
    let any = |_: &str| true;
    let a = Ask::one_key(cx.items(&o.prompts), o.key_timeout_seconds, 0, &any);
    match ask(cx, a).await {
        Asked::HungUp => Answer::HungUp,
        Asked::Got(k) if k == "1" => Answer::Accepted,
        _ => {
            cx.outcome("in-queue callback offer declined");
            Answer::Declined
        }
    }
}

/// Where the booking comes from: the caller's queue, place and priority, and the wait when offered.
pub struct Place<'a> {
    /// The Route Call's queue.
    pub queue: &'a str,
    /// The caller's place (enqueue time): the callback's queue time.
    pub since: DateTime<Utc>,
    /// The caller's routing priority.
    pub priority: i64,
    /// EWT when offered.
    pub ewt: Option<TimeDelta>,
    /// Position when offered (0 = next).
    pub position: usize,
}

/// Books the immediate callback of a caller who accepted (the callback_v2 booking path), sets
/// the `callback.*` variables and plays the booked prompts. `None`: booking refused (in the
/// trace; the caller waits on).
pub async fn book(o: &OfferCallback, cx: &mut Cx<'_>, at: Place<'_>) -> Option<CallbackRecord> {
    let phone = cx
        .vars
        .get("ani")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let booking = FlowBooking {
        queue: o
            .callback_queue
            .clone()
            .unwrap_or_else(|| at.queue.to_string()),
        phone,
        desired_time: None,
        priority: at.priority,
        direction: None,
        queue_time: at.since,
        ewt_at_offer: at.ewt,
        position_at_offer: at.position,
        user_data: cx.call_data.clone(),
    };
    match cx.services.book(booking).await {
        Ok(rec) => {
            crate::ops::logging::record_callback(&rec.id);
            cx.set("callback.accepted", true);
            cx.set("callback.id", rec.id.to_string());
            cx.set("callback.type", "immediate");
            cx.set("callback.phone", rec.phone.clone());
            cx.set("callback.queue_time", rec.queue_time.to_rfc3339());
            cx.outcome(format!(
                "booked in-queue callback to {} keeping the place of {}",
                rec.phone,
                at.since.format("%H:%M:%S")
            ));
            let _ = cx.play(&o.booked_prompts, false).await;
            Some(rec)
        }
        Err(e) => {
            cx.set("callback.error", e.to_string());
            cx.outcome(format!("in-queue callback refused: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_at_or_above_the_threshold_or_when_the_wait_is_unknown() {
        let o: OfferCallback = serde_json::from_str(
            r#"{"ewt_threshold_seconds": 60, "prompts": ["offer-immediate"]}"#,
        )
        .unwrap();
        assert_eq!((o.every_seconds, o.key_timeout_seconds), (60, 5));
        assert!(!o.wanted(Some(TimeDelta::seconds(59))));
        assert!(o.wanted(Some(TimeDelta::seconds(60))));
        assert!(o.wanted(None));
    }
}

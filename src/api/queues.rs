//! Queue status and estimated wait times (`/callbacks/queue-status/{queue}`,
//! `/estimated-wait-time`): what an app shows before offering a callback.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState, Q, Reply, known_queue, ok};
use crate::routing::EwtMode;

#[utoipa::path(get, path = "/callbacks/queue-status/{queue}", tag = "callbacks",
    params(("queue" = String, Path, description = "virtual queue")),
    responses((status = 200, description = "EWT, whether to offer an immediate callback now, Scheduled Enabled"), (status = 400)))]
pub(crate) async fn queue_status(State(s): State<ApiState>, Path(name): Path<String>) -> Reply {
    let queue = known_queue(&s, &name, "queue")?;
    // In a cluster, callbacks waiting in other nodes' care (or none yet) wait too.
    let waiting = s.router.waiting(&name).unwrap_or(0) + s.callbacks.queued_elsewhere(&name);
    let ewt = ewt_seconds(&s, &name);
    Ok(ok(json!({
        "ewt": ewt,
        "offerImmediateCallback": offer_immediate(&s, queue, ewt),
        "offerScheduledCallback": queue.scheduled_enabled,
        "waiting": waiting,
    })))
}

/// GES's `offerImmediateCallback`: Immediate Enabled, someone can serve the queue (EWT known),
/// the EWT exceeds the queue's `ewt_offer_threshold_seconds`, a callback booked now is forecast
/// to be served inside the (immediate offer) hours before the blackout, and the capacity of the
/// current slot is not zero (a capacity rule may close it).
pub(crate) fn offer_immediate(s: &ApiState, queue: &crate::config::QueueSpec, ewt: i64) -> bool {
    if !queue.immediate_enabled || ewt < 0 || ewt < queue.ewt_offer_threshold_seconds {
        return false;
    }
    let now = s.clock.now();
    let hours = s.config.queue_hours(queue);
    let offer = s.config.immediate_offer_hours(queue);
    let o = crate::callback::availability::open_for(
        queue,
        &hours,
        offer.as_deref(),
        now,
        chrono::TimeDelta::seconds(ewt),
    );
    if !o.is_within_immediate_offer_time {
        return false;
    }
    let today = now.with_timezone(&hours.tz).date_naive();
    let slot = chrono::TimeDelta::minutes(queue.slot_duration_minutes);
    s.callbacks
        .availability(&queue.name, today, today)
        .map(|slots| {
            slots
                .iter()
                .find(|sl| sl.start <= now && now < sl.start + slot)
                .is_none_or(|sl| sl.capacity > 0)
        })
        .unwrap_or(true)
}

/// EWT of a new arrival in seconds, -1 when unknown (no eligible agent logged in).
pub(crate) fn ewt_seconds(s: &ApiState, queue: &str) -> i64 {
    s.router
        .ewt_for_new(queue)
        .ok()
        .flatten()
        .map(|d| d.num_seconds())
        .unwrap_or(-1)
}

/// `GET /estimated-wait-time` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EwtQuery {
    /// Comma-separated virtual queues.
    #[serde(rename = "virtual-queues")]
    pub virtual_queues: String,
    /// `mode1` (departure rate of the last 32, ignores agents), `mode2` (default: the router's
    /// figure, -1 with no agent logged in) or `mode3` (statistics: AHT × ahead ÷ busy agents).
    #[serde(default)]
    pub mode: Option<String>,
    /// Count callbacks held out of the line until their retry time as ahead of a new arrival.
    #[serde(default, rename = "include-calls-on-hold")]
    pub include_calls_on_hold: Option<bool>,
}

#[utoipa::path(get, path = "/estimated-wait-time", tag = "queues", params(EwtQuery),
    responses((status = 200, description = "EWT per queue, -1 when unknown"), (status = 400)))]
pub(crate) async fn estimated_wait_time(State(s): State<ApiState>, Q(q): Q<EwtQuery>) -> Reply {
    let mode = match q.mode.as_deref() {
        None | Some("mode2") => EwtMode::Mode2,
        Some("mode1") => EwtMode::Mode1,
        Some("mode3") => EwtMode::Mode3,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "mode: `{other}` is not mode1, mode2 or mode3"
            )));
        }
    };
    let mut out = Vec::new();
    for name in q
        .virtual_queues
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        known_queue(&s, name, "virtual-queues")?;
        let mut ahead = s.router.waiting(name).unwrap_or(0) + s.callbacks.queued_elsewhere(name);
        if q.include_calls_on_hold == Some(true) {
            ahead += s.callbacks.held_for_retry(name);
        }
        let ewt = s
            .router
            .ewt_by_mode(name, ahead, mode)
            .ok()
            .flatten()
            .map(|d| d.num_seconds())
            .unwrap_or(-1);
        let message = match (ewt < 0, mode) {
            (false, _) => "",
            (true, EwtMode::Mode1) => {
                "fewer than two interactions of this queue have reached an agent yet"
            }
            (true, _) => "no agent who can serve this queue is logged in",
        };
        out.push(json!({
            "virtualQueue": name,
            "estimatedWaitTime": ewt,
            "message": message,
        }));
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "virtual-queues: name at least one virtual queue",
        ));
    }
    Ok(ok(out))
}

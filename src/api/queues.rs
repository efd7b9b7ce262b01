//! Queue status and estimated wait times (`/callbacks/queue-status/{queue}`,
//! `/estimated-wait-time`): what an app shows before offering a callback.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState, known_queue, ok, query};

#[utoipa::path(get, path = "/callbacks/queue-status/{queue}", tag = "callbacks",
    params(("queue" = String, Path, description = "virtual queue")),
    responses((status = 200, description = "EWT, waiting, immediate/scheduled enabled"), (status = 400)),
    security(("api_key" = [])))]
pub(crate) async fn queue_status(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let queue = known_queue(&s, &name, "queue")?;
    let waiting = s.router.waiting(&name).unwrap_or(0);
    Ok(ok(json!({
        "ewt": ewt_seconds(&s, &name),
        "offerImmediateCallback": queue.immediate_enabled,
        "offerScheduledCallback": queue.scheduled_enabled,
        "waiting": waiting,
    })))
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
}

#[utoipa::path(get, path = "/estimated-wait-time", tag = "queues", params(EwtQuery),
    responses((status = 200, description = "EWT per queue, -1 when unknown"), (status = 400)),
    security(("api_key" = [])))]
pub(crate) async fn estimated_wait_time(
    State(s): State<ApiState>,
    q: Result<Query<EwtQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let mut out = Vec::new();
    for name in q
        .virtual_queues
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        known_queue(&s, name, "virtual-queues")?;
        let ewt = ewt_seconds(&s, name);
        out.push(json!({
            "virtualQueue": name,
            "estimatedWaitTime": ewt,
            "message": if ewt < 0 { "no agent who can serve this queue is logged in" } else { "" },
        }));
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "virtual-queues: name at least one virtual queue",
        ));
    }
    Ok(ok(out))
}

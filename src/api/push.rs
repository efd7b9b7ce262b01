//! `POST /notification/publish`: GES's push test. It sends an FCM notification to one
//! registration token through the engine's FCM channel (the same account, token cache and
//! endpoint as callback pushes) and answers FCM's message name.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState, Body, Reply, ok};

/// `POST /notification/publish` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// `FCM` (the only channel of this operation, as in GES).
    pub channel: String,
    /// FCM registration token.
    pub target: String,
    /// The FCM notification object (`title`, `body`, …).
    pub event: serde_json::Value,
    /// Ask FCM to check the message without delivering it.
    #[serde(default)]
    pub validate_only: bool,
}

#[utoipa::path(post, path = "/notification/publish", tag = "push", request_body = PublishBody,
    responses((status = 200, description = "`data.name`: FCM's message name"), (status = 400), (status = 500)))]
pub(crate) async fn publish(State(s): State<ApiState>, Body(b): Body<PublishBody>) -> Reply {
    if !b.channel.eq_ignore_ascii_case("FCM") {
        return Err(ApiError::bad_request(format!(
            "channel: `{}` is not supported (FCM)",
            b.channel
        )));
    }
    if b.target.trim().is_empty() || b.target.len() > crate::push::MAX_TARGET_BYTES {
        return Err(ApiError::bad_request(
            "target: an FCM registration token is required",
        ));
    }
    if !b.event.is_object() {
        return Err(ApiError::bad_request(
            "event: must be an FCM notification object, e.g. {\"title\":…,\"body\":…}",
        ));
    }
    let channels = s
        .callbacks
        .push_hub()
        .channels()
        .ok_or_else(|| ApiError::internal("push delivery is not running"))?;
    let fcm = channels
        .fcm()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 3, e.message))?;
    let message = json!({ "token": b.target, "notification": b.event });
    match fcm.send(message, b.validate_only).await {
        Ok(name) => Ok(ok(json!({ "name": name }))),
        Err(e) if e.permanent => Err(ApiError::bad_request(format!("FCM refused: {e}"))),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            4,
            e.message,
        )),
    }
}

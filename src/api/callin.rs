//! Click-to-Call-In requests (`/call-in/requests/create`): a number and access code for the
//! customer to call, made durable before they are returned.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{ApiError, ApiState, Body, Reply, known_queue, ok};
use crate::callin::{CallInError, NewCallIn, RoutingData};

/// `POST /call-in/requests/create` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CallInBody {
    /// Click-to-Call-In group.
    pub group_name: String,
    /// The customer's number (1 to 64 characters, no control characters): the caller's
    /// number is compared with it.
    #[serde(default)]
    pub from_phone_number: Option<String>,
    /// Attached data, as on create: values of any type (kept as text), keys that are not
    /// JavaScript identifiers dropped, at most 64 entries and 16 KiB.
    #[serde(default, deserialize_with = "super::extract::null_as_default")]
    pub user_data: BTreeMap<String, serde_json::Value>,
    /// The callback this request belongs to.
    #[serde(default)]
    pub callback_service_id: Option<Uuid>,
    /// Queue to route the matched call to.
    #[serde(default)]
    pub virtual_queue: Option<String>,
    /// Routing priority of the matched call.
    #[serde(default)]
    pub priority: Option<i64>,
}

#[utoipa::path(post, path = "/call-in/requests/create", tag = "call-in", request_body = CallInBody,
    responses((status = 200, description = "number, access code, expiry"), (status = 400), (status = 503)))]
pub(crate) async fn create_call_in(State(s): State<ApiState>, Body(b): Body<CallInBody>) -> Reply {
    if let Some(q) = &b.virtual_queue {
        known_queue(&s, q, "virtualQueue")?;
    }
    if let Some(n) = &b.from_phone_number
        && (n.is_empty() || n.chars().count() > 64 || n.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "fromPhoneNumber: must be 1 to 64 characters, without control characters",
        ));
    }
    let user_data = super::callbacks::ges_user_data(b.user_data);
    crate::callback::model::check_user_data(&user_data)
        .map_err(|e| ApiError::bad_request(format!("userData: {e}")))?;
    if s.callin.group(&b.group_name).is_none() {
        let e = CallInError::UnknownGroup(b.group_name.clone());
        return Err(ApiError::bad_request(format!("groupName: {e}")));
    }
    // The matched call must have somewhere to go: the request's queue, or (Delayed) the queue
    // of the callback whose customer will call.
    match b.callback_service_id {
        Some(id) if !s.callbacks.is_alive(id) => {
            return Err(ApiError::bad_request(format!(
                "callbackServiceId: no active callback {id}"
            )));
        }
        None if b.virtual_queue.is_none() => {
            return Err(ApiError::bad_request(
                "virtualQueue: required (the queue the matched call is routed to), unless \
                 callbackServiceId names the callback the caller is the customer of",
            ));
        }
        _ => {}
    }
    let req = s
        .callin
        .request(
            NewCallIn {
                group: b.group_name,
                ani: b.from_phone_number,
                routing: RoutingData {
                    queue: b.virtual_queue,
                    skill_expression: None,
                    priority: b.priority.unwrap_or(0),
                    user_data,
                },
                callback_id: b.callback_service_id,
            },
            s.clock.now(),
        )
        .map_err(|e| match e {
            CallInError::UnknownGroup(_) => ApiError::bad_request(format!("groupName: {e}")),
            CallInError::NoFreeDnis(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, 1, e.to_string())
            }
            other => ApiError::bad_request(other.to_string()),
        })?;
    if let Err(e) = s
        .store
        .save_documents(vec![crate::callin::to_document(&req)])
        .await
    {
        s.callin.forget(req.id);
        tracing::error!(error = %e, "call-in request not durable: refused");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            2,
            "the request could not be stored; try again".to_string(),
        ));
    }
    Ok(ok(json!({
        "id": req.id,
        "toPhoneNumber": req.dnis,
        "groupName": req.group,
        "expirationTime": req.expires_at.timestamp_millis(),
        "accessCode": req.access_code,
        "fromPhoneNumber": req.ani,
        "callbackServiceId": req.callback_id,
    })))
}

//! The GES v3 callback endpoints: create (with CAPTCHA, push targets and the slots proposed
//! on a full one), retrieve, query, cancel, reschedule, and open-for.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    ApiError, ApiState, Body, KeyName, Q, Reply, admin, captcha, ewt_seconds, known_queue, ok,
    service_error,
};
use crate::callback::service::{CreateRequest, ServiceError};
use crate::callback::{CallbackRecord, CallbackState, NewCallback, Origin};

/// `POST /callbacks/create` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateCallbackBody {
    /// Callback virtual queue.
    pub service_name: String,
    /// Number to call, E.164.
    pub phone_number: String,
    /// ISO 8601 with offset; absent means immediate.
    #[serde(default)]
    pub desired_time: Option<DateTime<chrono::FixedOffset>>,
    /// Routing priority.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Attached data (string values).
    #[serde(default, deserialize_with = "super::extract::null_as_default")]
    pub user_data: BTreeMap<String, Value>,
    /// Reject a scheduled callback whose slot is full instead of accepting it.
    #[serde(default)]
    pub always_check_capacity: bool,
    /// `ASAP`, `SCHEDULED` or `COMBINED_SCHEDULED_AND_ASAP` (reporting); default from
    /// `desiredTime`.
    #[serde(default)]
    pub cb_offer_type: Option<crate::callback::ges::OfferType>,
    /// Prompt language tag, default `en-US`.
    #[serde(default)]
    pub language: Option<String>,
    /// The queue the customer would have waited in; its EWT now is kept as the EWT at offer.
    #[serde(default, rename = "inboundVQ")]
    pub inbound_vq: Option<String>,
    /// EWT threshold (s) that triggered the offer (reporting).
    #[serde(default)]
    pub offer_threshold: Option<i64>,
    /// Origination channel, e.g. `WEB`.
    #[serde(default)]
    pub channel: Option<String>,
    /// `ON-HOURS` or `OFF-HOURS`.
    #[serde(default)]
    pub offer_timing: Option<crate::callback::ges::OfferTiming>,
    /// The inbound interaction where the offer was accepted.
    #[serde(default)]
    pub cb_origination_ixn_id: Option<String>,
    /// Survey route point after the callback.
    #[serde(default, rename = "surveyRP")]
    pub survey_rp: Option<String>,
    /// Route point (caller id) of the outbound call, instead of the queue's.
    #[serde(default)]
    pub route_point: Option<String>,
    /// The CAPTCHA widget's response, required when the key or queue enforces CAPTCHA.
    #[serde(default)]
    pub captcha_token: Option<String>,
    /// Where the callback's push events go: `{channel:"FCM", target:<token>}` or
    /// `{channel:"WEBHOOK", target:<URL>}` (at most 10).
    #[serde(default, deserialize_with = "super::extract::null_as_default")]
    pub push_targets: Vec<crate::push::PushTarget>,
}

impl CreateCallbackBody {
    /// The GES fields kept with the record.
    fn attributes(&self) -> crate::callback::ges::GesAttributes {
        crate::callback::ges::GesAttributes {
            cb_offer_type: self.cb_offer_type,
            language: self.language.clone(),
            inbound_vq: self.inbound_vq.clone(),
            offer_threshold: self.offer_threshold,
            channel: self.channel.clone(),
            offer_timing: self.offer_timing,
            cb_origination_ixn_id: self.cb_origination_ixn_id.clone(),
            survey_rp: self.survey_rp.clone(),
            route_point: self.route_point.clone(),
        }
    }
}

#[utoipa::path(post, path = "/callbacks/create", tag = "callbacks", request_body = CreateCallbackBody,
    responses((status = 200, description = "`data.id` of the new callback"), (status = 400), (status = 401), (status = 409), (status = 429)))]
pub(super) async fn create_callback(
    State(s): State<ApiState>,
    key: Option<axum::Extension<KeyName>>,
    Body(b): Body<CreateCallbackBody>,
) -> Reply {
    let key = key.map(|k| k.0.0);
    captcha::check_create(
        &s,
        key.as_deref(),
        &b.service_name,
        b.captcha_token.as_deref(),
    )
    .await?;
    let ges = b.attributes();
    let service = b.service_name.clone();
    ges.check()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // The EWT the customer faced in the queue they would have waited in.
    let ewt_at_offer = match &ges.inbound_vq {
        Some(vq) => {
            known_queue(&s, vq, "inboundVQ")?;
            u32::try_from(ewt_seconds(&s, vq)).ok()
        }
        None => None,
    };
    let user_data = ges_user_data(b.user_data);
    if b.push_targets.len() > crate::push::MAX_TARGETS {
        return Err(ApiError::bad_request(format!(
            "pushTargets: at most {} targets",
            crate::push::MAX_TARGETS
        )));
    }
    for (i, t) in b.push_targets.iter().enumerate() {
        t.check()
            .map_err(|e| ApiError::bad_request(format!("pushTargets[{i}]: {e}")))?;
    }
    let result = s
        .callbacks
        .create_with(
            CreateRequest {
                callback: NewCallback {
                    queue: b.service_name.clone(),
                    phone: b.phone_number,
                    desired_time: b.desired_time.map(|t| t.with_timezone(&Utc)),
                    origin: Origin::Api,
                    direction: Default::default(),
                    priority: b.priority.unwrap_or(0),
                    queue_time: None,
                    user_data,
                    created_by: "api".into(),
                },
                check_slot: b.always_check_capacity,
                ewt_at_offer_seconds: ewt_at_offer,
                position_at_offer: None,
            },
            ges,
            b.push_targets,
        )
        .await;
    let rec = match result {
        Ok(rec) => rec,
        Err(ServiceError::SlotUnavailable(at)) => {
            let e = ApiError::too_many(ServiceError::SlotUnavailable(at).to_string());
            return Err(e.with_data(json!({ "slots": proposed_slots(&s, &service, at) })));
        }
        Err(e) => return Err(service_error(e)),
    };
    Ok((StatusCode::OK, ok(json!({ "id": rec.id }))).into_response())
}

/// User data as GES takes it (create and call-in): keys that are not JavaScript identifiers
/// are dropped silently, values of any JSON type are kept as text.
pub(crate) fn ges_user_data(data: BTreeMap<String, Value>) -> BTreeMap<String, String> {
    data.into_iter()
        .filter(|(k, _)| crate::callback::ges::is_js_identifier(k))
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect()
}

/// How many slots a 429 on create proposes.
const PROPOSED_SLOTS: usize = 5;

/// Free slots from the refused time on (that day and the next), as GES's 429 on create lists
/// them: `{"<utcTime>": <free capacity>, …}`.
fn proposed_slots(s: &ApiState, queue: &str, at: DateTime<Utc>) -> BTreeMap<String, u32> {
    let Some(q) = s.config.queue(queue) else {
        return BTreeMap::new();
    };
    let hours = s.config.queue_hours(q);
    let from = at.with_timezone(&hours.tz).date_naive();
    let slots = s
        .callbacks
        .availability(queue, from, from + TimeDelta::days(1))
        .unwrap_or_default();
    slots
        .iter()
        .filter(|sl| sl.start >= at && sl.available() > 0)
        .take(PROPOSED_SLOTS)
        .map(|sl| {
            (
                sl.start
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                sl.available(),
            )
        })
        .collect()
}

/// A body naming one callback.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdBody {
    /// Callback id.
    pub id: Uuid,
}

/// The GES view of a callback.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackView {
    id: Uuid,
    service_name: String,
    phone_number: String,
    desired_time: DateTime<Utc>,
    callback_state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_reason: Option<crate::callback::CompletionReason>,
    callback_type: crate::callback::CallbackType,
    priority: i64,
    user_data: BTreeMap<String, String>,
    dial_attempts: u32,
    /// The GES create fields (language defaulted to `en-US`, offer type always present).
    #[serde(flatten)]
    ges: crate::callback::ges::GesAttributes,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    push_targets: Vec<crate::push::PushTarget>,
}

impl From<&CallbackRecord> for CallbackView {
    fn from(r: &CallbackRecord) -> Self {
        CallbackView {
            id: r.id,
            service_name: r.queue.clone(),
            phone_number: r.phone.clone(),
            desired_time: r.desired_time,
            callback_state: r.state.name(),
            callback_reason: match r.state {
                CallbackState::Completed(reason) => Some(reason),
                _ => None,
            },
            callback_type: r.kind,
            priority: r.priority,
            user_data: r.user_data.clone(),
            dial_attempts: r.attempts(),
            ges: crate::callback::ges::GesAttributes {
                language: Some(r.ges.language_or_default().to_string()),
                cb_offer_type: Some(
                    r.ges
                        .offer_type_or_default(r.kind == crate::callback::CallbackType::Scheduled),
                ),
                ..r.ges.clone()
            },
            push_targets: r.push.targets.clone(),
        }
    }
}

#[utoipa::path(post, path = "/callbacks/retrieve", tag = "callbacks", request_body = IdBody,
    responses((status = 200, description = "the callback, with position and EWT while queued"), (status = 404)))]
pub(super) async fn retrieve_callback(State(s): State<ApiState>, Body(b): Body<IdBody>) -> Reply {
    let rec = s.callbacks.get(b.id).await.map_err(service_error)?;
    let mut view = serde_json::to_value(CallbackView::from(&rec))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if rec.state == CallbackState::Queued
        && let Ok(Some(pos)) = s.router.position(&rec.queue, rec.id)
    {
        view["positionInQueue"] = json!(pos + 1);
        let ewt = s
            .router
            .ewt(&rec.queue, pos)
            .ok()
            .flatten()
            .map(|d| d.num_seconds());
        view["estimatedWaitTime"] = json!(ewt.unwrap_or(-1));
    }
    Ok(ok(view))
}

/// Callbacks matching the filters (state, queue, phone number, desired-time range), newest
/// desired time first, in pages of 250: how an app finds a customer's callbacks without an id.
#[utoipa::path(get, path = "/callbacks", tag = "callbacks", params(admin::callbacks::ListQuery),
    responses((status = 200, description = "`data.callbacks`, `data.page`, `data.hasMore`"), (status = 400)))]
pub(super) async fn query_callbacks(
    State(s): State<ApiState>,
    Q(q): Q<admin::callbacks::ListQuery>,
) -> Reply {
    Ok(ok(admin::callbacks::query_page(&s, &q, None).await?))
}

#[utoipa::path(post, path = "/callbacks/cancel", tag = "callbacks", request_body = IdBody,
    responses((status = 200), (status = 404), (status = 409)))]
pub(super) async fn cancel_callback(State(s): State<ApiState>, Body(b): Body<IdBody>) -> Reply {
    let rec = s
        .callbacks
        .cancel(b.id, "api", false)
        .await
        .map_err(service_error)?;
    Ok(ok(json!({ "id": rec.id })))
}

/// `POST /callbacks/reschedule` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RescheduleBody {
    /// Callback id (SCHEDULED).
    pub id: Uuid,
    /// New time, ISO 8601 with offset.
    pub desired_time: DateTime<chrono::FixedOffset>,
}

#[utoipa::path(post, path = "/callbacks/reschedule", tag = "callbacks", request_body = RescheduleBody,
    responses((status = 200, description = "`data.id` of the replacing callback"), (status = 404), (status = 409)))]
pub(super) async fn reschedule_callback(
    State(s): State<ApiState>,
    Body(b): Body<RescheduleBody>,
) -> Reply {
    let rec = s
        .callbacks
        .reschedule(b.id, b.desired_time.with_timezone(&Utc), "api")
        .await
        .map_err(service_error)?;
    Ok(ok(json!({ "id": rec.id, "previousId": b.id })))
}

/// Open-for query, as GES: `start` stands for now in every figure. The newer flags are
/// accepted; every figure is always returned.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenForQuery {
    /// The instant to answer for, as availability reads it: ISO 8601 with offset (`…SSSZ`),
    /// or local without offset in `timezone` (UTC without it); default now.
    #[serde(default)]
    pub start: Option<String>,
    /// IANA zone of a local `start` (the figures are durations and do not depend on it).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Accepted; `immediateOfferHoursOpenFor` is always returned.
    #[serde(default)]
    pub query_immediate_offer_hours: Option<bool>,
    /// Accepted; `isWithinImmediateOfferTime` is always returned.
    #[serde(default)]
    pub return_within_immediate_offer_time: Option<bool>,
    /// Accepted; `isImmediateEnabled` is always returned.
    #[serde(default)]
    pub check_immediate_enabled: Option<bool>,
}

#[utoipa::path(get, path = "/callbacks/open-for/{service}", tag = "callbacks",
    params(("service" = String, Path, description = "callback virtual queue"), OpenForQuery),
    responses((status = 200, description = "open-for and immediate-offer figures"), (status = 400)))]
pub(super) async fn open_for_route(
    State(s): State<ApiState>,
    Path(service): Path<String>,
    Q(q): Q<OpenForQuery>,
) -> Reply {
    let queue = known_queue(&s, &service, "serviceName")?;
    let hours = s.config.queue_hours(queue);
    let offer = s.config.immediate_offer_hours(queue);
    let tz: chrono_tz::Tz = match &q.timezone {
        Some(name) => name.parse().map_err(|_| {
            ApiError::bad_request(format!("timezone: `{name}` is not an IANA time zone"))
        })?,
        None => chrono_tz::Tz::UTC,
    };
    let at = match &q.start {
        Some(t) => super::availability::instant("start", t, tz)?,
        None => s.clock.now(),
    };
    // The current EWT (a live figure, also with `start`); unknown (no eligible agent logged
    // in) counts as no wait.
    let ewt = TimeDelta::seconds(ewt_seconds(&s, &service).max(0));
    let o = crate::callback::availability::open_for(queue, &hours, offer.as_deref(), at, ewt);
    Ok(ok(o))
}

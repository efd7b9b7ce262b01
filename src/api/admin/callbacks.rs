//! The Callback tab: list with filters and pages of 250, search by id or phone number, one
//! callback with its metrics and history, create, cancel, reschedule, recreate, and bulk cancel
//! of a time range (preview = the confirmation list, then execution of exactly the confirmed
//! ids) with its summary exported as CSV. Listings only show queues the user may read.

use std::collections::BTreeMap;

use axum::extract::Path;
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::audit;
use super::auth::{Admin, AdminUser, Permission};
use crate::api::{
    ApiError, ApiState, Body, CallbackView, Q, Reply, known_queue, ok, service_error,
};
use crate::callback::bulk::{self, BulkSummary};
use crate::callback::service::{CreateRequest, api_callback};
use crate::callback::{CallbackRecord, CallbackState, NewCallback, Origin};
use crate::store::{CallbackFilter, PageCursor};

/// Callbacks per page, as the seed's Callback tab shows them.
pub const PAGE_SIZE: usize = 250;

/// Deepest `page` (offset paging walks every row before it; `after` does not).
pub const MAX_PAGE: usize = 1000;

/// Callbacks listed at most in each list of a bulk-cancel preview (the execution takes the
/// confirmed ids in a body of `api.max_body_bytes`: about 1,700 ids in the default 64 KiB).
pub const PREVIEW_LIMIT: usize = 1000;

/// Document kind of bulk-cancel summaries in the store.
pub use crate::callback::bulk::DOC_KIND as BULK_KIND;

const STATES: [&str; 5] = ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING", "COMPLETED"];

/// `GET /admin/callbacks` filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListQuery {
    /// SCHEDULED, QUEUED, ROUTING, PROCESSING or COMPLETED.
    pub state: Option<String>,
    /// Virtual queue.
    pub service_name: Option<String>,
    /// Phone number (spaces, dots, dashes and brackets are ignored).
    pub phone_number: Option<String>,
    /// Desired time at or after (ISO 8601 with offset).
    pub from: Option<DateTime<FixedOffset>>,
    /// Desired time before.
    pub to: Option<DateTime<FixedOffset>>,
    /// Page, from 1 (at most 1000; deeper, follow `nextCursor` with `after`).
    pub page: Option<usize>,
    /// The `nextCursor` of the previous page: the page after it (instead of `page`; as cheap
    /// however deep).
    pub after: Option<String>,
}

/// The queues a user may see, as a store filter (`None` = all).
fn readable(user: &AdminUser) -> Option<Vec<String>> {
    user.queues.as_ref().map(|q| q.iter().cloned().collect())
}

fn compact_phone(p: &str) -> String {
    p.chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect()
}

async fn store_query(s: &ApiState, f: CallbackFilter) -> Result<Vec<CallbackRecord>, ApiError> {
    s.store
        .query_callbacks(&f)
        .await
        .map_err(|e| ApiError::internal(format!("reading callbacks: {e}")))
}

/// Callbacks matching the filters, newest desired time first, 250 per page: by `page`, or after
/// the previous page's `nextCursor` (`after`).
#[utoipa::path(get, path = "/callbacks", tag = "admin", params(ListQuery),
    responses((status = 200, description = "`data.callbacks`, `data.page`, `data.hasMore`"), (status = 400), (status = 403)))]
pub async fn list(Admin { s, user }: Admin, Q(q): Q<ListQuery>) -> Reply {
    user.require(Permission::ReadCallbacks)?;
    if let Some(name) = &q.service_name {
        known_queue(&s, name, "serviceName")?;
        user.require_queue(name)?;
    }
    Ok(ok(query_page(&s, &q, readable(&user)).await?))
}

/// One page of callbacks matching `q` within `queues` (`None` = every queue): shared by the
/// administration's list and the public v3 query.
pub async fn query_page(
    s: &ApiState,
    q: &ListQuery,
    queues: Option<Vec<String>>,
) -> Result<serde_json::Value, ApiError> {
    if let Some(st) = &q.state
        && !STATES.contains(&st.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "state: `{st}` is not one of {}",
            STATES.join(", ")
        )));
    }
    if let Some(name) = &q.service_name {
        known_queue(s, name, "serviceName")?;
    }
    super::ordered_range(q.from, q.to)?;
    let page = q.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::bad_request("page: pages start at 1"));
    }
    if page > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "page: at most {MAX_PAGE}; page deeper with `after` (each page's `nextCursor`)"
        )));
    }
    let after = match &q.after {
        None => None,
        Some(_) if q.page.is_some() => {
            return Err(ApiError::bad_request(
                "after: give either `page` or `after`, not both",
            ));
        }
        Some(token) => Some(PageCursor::parse(token).ok_or_else(|| {
            ApiError::bad_request("after: not a cursor; pass a page's `nextCursor` as it is")
        })?),
    };
    let store = &s.store;
    let mut filter = CallbackFilter {
        queue: q.service_name.clone(),
        queues,
        state: q.state.clone(),
        phone: q.phone_number.as_deref().map(compact_phone),
        from: q.from.map(|t| t.with_timezone(&Utc)),
        to: q.to.map(|t| t.with_timezone(&Utc)),
        offset: if after.is_some() {
            0
        } else {
            (page - 1) * PAGE_SIZE
        },
        limit: PAGE_SIZE,
        after,
    };
    let read_error =
        |e: crate::store::StoreError| ApiError::internal(format!("reading callbacks: {e}"));
    let (rows, cursor) = store
        .query_callbacks_page(&filter)
        .await
        .map_err(read_error)?;
    // Whether another page follows: one row after this page's last (an index seek).
    let next = match cursor {
        Some(c) if rows.len() == PAGE_SIZE => {
            filter.after = Some(c);
            filter.offset = 0;
            filter.limit = 1;
            let (more, _) = store
                .query_callbacks_page(&filter)
                .await
                .map_err(read_error)?;
            (!more.is_empty()).then(|| c.token())
        }
        _ => None,
    };
    let list: Vec<CallbackView> = rows.iter().map(CallbackView::from).collect();
    Ok(json!({
        "callbacks": list,
        "page": if q.after.is_some() { Value::Null } else { json!(page) },
        "pageSize": PAGE_SIZE,
        "hasMore": next.is_some(), "nextCursor": next,
    }))
}

/// `GET /admin/callbacks/search` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// A callback id or a phone number.
    pub q: String,
}

/// Finds callbacks by id or by phone number (in the queues the user may read).
#[utoipa::path(get, path = "/callbacks/search", tag = "admin", params(SearchQuery),
    responses((status = 200, description = "matching callbacks"), (status = 400)))]
pub async fn search(Admin { s, user }: Admin, Q(q): Q<SearchQuery>) -> Reply {
    user.require(Permission::ReadCallbacks)?;
    let text = q.q.trim();
    if text.is_empty() {
        return Err(ApiError::bad_request(
            "q: give a callback id or a phone number",
        ));
    }
    let found: Vec<CallbackRecord> = if let Ok(id) = Uuid::parse_str(text) {
        s.callbacks.get(id).await.into_iter().collect()
    } else {
        let phone = compact_phone(text);
        if phone.is_empty()
            || !phone
                .trim_start_matches('+')
                .chars()
                .all(|c| c.is_ascii_digit())
        {
            return Err(ApiError::bad_request(
                "q: neither a callback id nor a phone number",
            ));
        }
        store_query(
            &s,
            CallbackFilter {
                phone: Some(phone),
                queues: readable(&user),
                limit: PAGE_SIZE,
                ..Default::default()
            },
        )
        .await?
    };
    let list: Vec<CallbackView> = found
        .iter()
        .filter(|r| user.can_read_queue(&r.queue))
        .map(CallbackView::from)
        .collect();
    Ok(ok(list))
}

async fn readable_record(
    s: &ApiState,
    user: &AdminUser,
    id: Uuid,
) -> Result<CallbackRecord, ApiError> {
    let rec = s.callbacks.get(id).await.map_err(service_error)?;
    if !user.can_read_queue(&rec.queue) {
        // As if it did not exist: its queue is outside the user's line of business.
        return Err(ApiError::not_found(format!("callback {id} not found")));
    }
    Ok(rec)
}

/// Records a change of a callback in the audit log, then answers with the callback's view.
async fn audited(
    s: &ApiState,
    user: &AdminUser,
    action: &str,
    detail: Value,
    rec: &CallbackRecord,
) -> Reply {
    audit::audit(s, user, action, detail).await?;
    Ok(ok(CallbackView::from(rec)))
}

/// The audit detail of a change that replaced callback `id` by `new` (reschedule, recreate).
fn replaced(id: Uuid, new: &CallbackRecord) -> Value {
    json!({ "id": id, "newId": new.id, "desiredTime": new.desired_time })
}

/// One callback with its metrics (EWT and position at offer, agents logged in, every dial
/// attempt, the connected agent) and its state history.
#[utoipa::path(get, path = "/callbacks/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "callback id")),
    responses((status = 200, description = "the record with `metrics` and `history`"), (status = 404)))]
pub async fn detail(Admin { s, user }: Admin, Path(id): Path<Uuid>) -> Reply {
    user.require(Permission::ReadCallbacks)?;
    let rec = readable_record(&s, &user, id).await?;
    let mut v = serde_json::to_value(CallbackView::from(&rec))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    v["metrics"] = serde_json::to_value(&rec.metrics).unwrap_or(Value::Null);
    v["history"] = serde_json::to_value(&rec.history).unwrap_or(Value::Null);
    v["createdAt"] = json!(rec.created_at);
    v["queueTime"] = json!(rec.queue_time);
    v["createdBy"] = json!(rec.created_by);
    v["updatedBy"] = json!(rec.updated_by);
    v["previousId"] = json!(rec.previous_id);
    v["origin"] = json!(rec.origin);
    if rec.state == CallbackState::Queued
        && let Ok(Some(pos)) = s.router.position(&rec.queue, rec.id)
    {
        v["positionInQueue"] = json!(pos + 1);
    }
    Ok(ok(v))
}

/// `POST /admin/callbacks` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateBody {
    /// Callback virtual queue.
    pub service_name: String,
    /// Number to call.
    pub phone_number: String,
    /// ISO 8601 with offset; absent = immediate.
    #[serde(default)]
    pub desired_time: Option<DateTime<FixedOffset>>,
    /// Routing priority.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Attached data.
    #[serde(default)]
    pub user_data: BTreeMap<String, String>,
}

/// Creates a callback as the UI does: the slot capacity applies, the Immediate/Scheduled
/// Enabled flags (which govern IVR offers) do not.
#[utoipa::path(post, path = "/callbacks", tag = "admin", request_body = CreateBody,
    responses((status = 200, description = "the new callback"), (status = 400), (status = 403), (status = 409), (status = 429)))]
pub async fn create(Admin { s, user }: Admin, Body(b): Body<CreateBody>) -> Reply {
    user.require(Permission::WriteCallbacks)?;
    known_queue(&s, &b.service_name, "serviceName")?;
    user.require_queue(&b.service_name)?;
    let rec = s
        .callbacks
        .create(CreateRequest {
            callback: NewCallback {
                origin: Origin::Admin,
                priority: b.priority.unwrap_or(0),
                user_data: b.user_data,
                created_by: user.name.clone(),
                ..api_callback(
                    &b.service_name,
                    &b.phone_number,
                    b.desired_time.map(|t| t.with_timezone(&Utc)),
                )
            },
            check_slot: true,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .map_err(service_error)?;
    let detail = json!({ "id": rec.id, "serviceName": rec.queue, "phoneNumber": rec.phone, "desiredTime": rec.desired_time });
    audited(&s, &user, "callback.create", detail, &rec).await
}

/// Cancels a callback (CANCELLED_BY_ADMIN), in any state but COMPLETED: an administrator can
/// end a PROCESSING record whose call was lost.
#[utoipa::path(post, path = "/callbacks/{id}/cancel", tag = "admin",
    params(("id" = Uuid, Path, description = "callback id")),
    responses((status = 200), (status = 404), (status = 409)))]
pub async fn cancel(Admin { s, user }: Admin, Path(id): Path<Uuid>) -> Reply {
    user.require(Permission::WriteCallbacks)?;
    readable_record(&s, &user, id).await?;
    let rec = s
        .callbacks
        .cancel(id, &user.name, true)
        .await
        .map_err(service_error)?;
    audited(&s, &user, "callback.cancel", json!({ "id": id }), &rec).await
}

/// `POST /admin/callbacks/{id}/reschedule` and `/recreate` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeBody {
    /// ISO 8601 with offset (for recreate: absent = immediate).
    #[serde(default)]
    pub desired_time: Option<DateTime<FixedOffset>>,
}

/// Moves a SCHEDULED callback to another time (the old record ends RESCHEDULED).
#[utoipa::path(post, path = "/callbacks/{id}/reschedule", tag = "admin", request_body = TimeBody,
    params(("id" = Uuid, Path, description = "callback id")),
    responses((status = 200, description = "the new record"), (status = 400), (status = 404), (status = 409)))]
pub async fn reschedule(
    Admin { s, user }: Admin,
    Path(id): Path<Uuid>,
    Body(b): Body<TimeBody>,
) -> Reply {
    user.require(Permission::WriteCallbacks)?;
    let at = b
        .desired_time
        .ok_or_else(|| ApiError::bad_request("desiredTime: required"))?;
    readable_record(&s, &user, id).await?;
    let rec = s
        .callbacks
        .reschedule(id, at.with_timezone(&Utc), &user.name)
        .await
        .map_err(service_error)?;
    audited(&s, &user, "callback.reschedule", replaced(id, &rec), &rec).await
}

/// Makes a new callback from a COMPLETED one (immediate, or at `desiredTime`).
#[utoipa::path(post, path = "/callbacks/{id}/recreate", tag = "admin", request_body = TimeBody,
    params(("id" = Uuid, Path, description = "callback id")),
    responses((status = 200, description = "the new record"), (status = 404), (status = 409)))]
pub async fn recreate(
    Admin { s, user }: Admin,
    Path(id): Path<Uuid>,
    Body(b): Body<TimeBody>,
) -> Reply {
    user.require(Permission::WriteCallbacks)?;
    readable_record(&s, &user, id).await?;
    let rec = s
        .callbacks
        .recreate(
            id,
            b.desired_time.map(|t| t.with_timezone(&Utc)),
            &user.name,
        )
        .await
        .map_err(service_error)?;
    audited(&s, &user, "callback.recreate", replaced(id, &rec), &rec).await
}

/// A time range of one queue for bulk cancel.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RangeBody {
    /// Virtual queue.
    pub service_name: String,
    /// Desired time at or after (ISO 8601 with offset).
    pub from: DateTime<FixedOffset>,
    /// Desired time before.
    pub to: DateTime<FixedOffset>,
    /// Execution only: the ids confirmed from the preview; nothing else is cancelled.
    #[serde(default)]
    pub ids: Option<Vec<Uuid>>,
}

fn check_range(s: &ApiState, user: &AdminUser, b: &RangeBody) -> Result<(), ApiError> {
    known_queue(s, &b.service_name, "serviceName")?;
    user.require_queue(&b.service_name)?;
    if b.from >= b.to {
        return Err(ApiError::bad_request("to: must be after from"));
    }
    Ok(())
}

/// For a bulk cancel (preview or execution) by `user`: the range checked, then its unfinished
/// callbacks.
fn range_for(
    s: &ApiState,
    user: &AdminUser,
    b: &RangeBody,
) -> Result<Vec<CallbackRecord>, ApiError> {
    check_range(s, user, b)?;
    Ok(in_range(s, b))
}

/// Unfinished callbacks of the queue whose desired time is in `[from, to)`.
fn in_range(s: &ApiState, b: &RangeBody) -> Vec<CallbackRecord> {
    let (from, to) = (b.from.with_timezone(&Utc), b.to.with_timezone(&Utc));
    s.callbacks
        .active()
        .into_iter()
        .filter(|r| {
            r.queue == b.service_name
                && r.desired_time >= from
                && r.desired_time < to
                && !r.state.is_completed()
        })
        .collect()
}

/// The confirmation list of a bulk cancel: what would be cancelled, and what cannot be
/// (PROCESSING callbacks), at most [`PREVIEW_LIMIT`] of each (earliest queued first) with the
/// totals; a larger range is cancelled in rounds of preview and confirmation.
#[utoipa::path(post, path = "/callbacks/bulk-cancel/preview", tag = "admin", request_body = RangeBody,
    responses((status = 200, description = "`data.toCancel` and `data.notCancellable` (at most 1000 each), their totals, `data.truncated`"), (status = 400), (status = 403)))]
pub async fn bulk_preview(Admin { s, user }: Admin, Body(b): Body<RangeBody>) -> Reply {
    user.require(Permission::WriteCallbacks)?;
    let (busy, free): (Vec<_>, Vec<_>) = range_for(&s, &user, &b)?
        .into_iter()
        .partition(|r| r.state == CallbackState::Processing);
    let view = |list: &[CallbackRecord]| -> Vec<CallbackView> {
        list.iter()
            .take(PREVIEW_LIMIT)
            .map(CallbackView::from)
            .collect()
    };
    Ok(ok(json!({
        "toCancel": view(&free),
        "notCancellable": view(&busy),
        "toCancelTotal": free.len(),
        "notCancellableTotal": busy.len(),
        "truncated": free.len() > PREVIEW_LIMIT || busy.len() > PREVIEW_LIMIT,
        "limit": PREVIEW_LIMIT,
    })))
}

/// Cancels exactly the confirmed callbacks (those still in the queue and range), stores the
/// summary for export, and audits it.
#[utoipa::path(post, path = "/callbacks/bulk-cancel", tag = "admin", request_body = RangeBody,
    responses((status = 200, description = "`data.summaryId`, `data.cancelled`, `data.skipped`"), (status = 400), (status = 403)))]
pub async fn bulk_cancel(Admin { s, user }: Admin, Body(b): Body<RangeBody>) -> Reply {
    user.require(Permission::WriteCallbacks)?;
    let in_range = range_for(&s, &user, &b)?;
    let Some(ids) = &b.ids else {
        return Err(ApiError::bad_request(
            "ids: list the ids confirmed from /admin/callbacks/bulk-cancel/preview",
        ));
    };
    let current: BTreeMap<Uuid, CallbackRecord> = in_range.into_iter().map(|r| (r.id, r)).collect();
    let lines =
        bulk::cancel_confirmed(&s.callbacks, &current, ids, &b.service_name, &user.name).await;
    let summary = BulkSummary {
        id: Uuid::new_v4(),
        at: s.clock.now(),
        user: user.name.clone(),
        service_name: b.service_name.clone(),
        from: b.from.with_timezone(&Utc),
        to: b.to.with_timezone(&Utc),
        lines,
    };
    let cancelled: Vec<Uuid> = summary
        .lines
        .iter()
        .filter(|l| l.result == "CANCELLED")
        .map(|l| l.id)
        .collect();
    let skipped: Vec<Value> = summary
        .lines
        .iter()
        .filter(|l| l.result != "CANCELLED")
        .map(|l| json!({ "id": l.id, "reason": l.reason }))
        .collect();
    let detail = json!({
        "summaryId": summary.id, "serviceName": summary.service_name,
        "from": summary.from, "to": summary.to,
        "cancelled": cancelled.len(), "skipped": skipped.len(),
    });
    audit::save(
        &s,
        vec![
            summary.document(),
            audit::entry(&s, &user, "callback.bulk_cancel", detail),
        ],
    )
    .await?;
    Ok(ok(
        json!({ "summaryId": summary.id, "cancelled": cancelled, "skipped": skipped }),
    ))
}

/// The cancellation summary of a bulk cancel as CSV.
#[utoipa::path(get, path = "/callbacks/bulk-cancel/{id}/summary.csv", tag = "admin",
    params(("id" = Uuid, Path, description = "summary id from the bulk cancel")),
    responses((status = 200, content_type = "text/csv", description = "one line per confirmed callback"), (status = 404)))]
pub async fn export_summary(Admin { s, user }: Admin, Path(id): Path<Uuid>) -> Reply {
    user.require(Permission::ExportCallbacks)?;
    let summary = bulk::find(s.store.as_ref(), id)
        .await
        .map_err(|e| ApiError::internal(format!("reading summaries: {e}")))?
        .ok_or_else(|| ApiError::not_found(format!("no bulk-cancel summary {id}")))?;
    user.require_queue(&summary.service_name)?;
    let bytes = summary
        .csv()
        .map_err(|e| ApiError::internal(format!("writing CSV: {e}")))?;
    Ok(super::attachment(
        "text/csv; charset=utf-8",
        &format!("bulk-cancel-{id}.csv"),
        bytes,
    ))
}

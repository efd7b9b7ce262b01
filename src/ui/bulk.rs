//! Bulk cancel: a queue and a desired-time range, the confirmation list (each callback with a
//! checkbox, and those that cannot be cancelled), the cancellation of exactly the confirmed
//! ids through `callback::bulk`, and its summary stored with its audit entry and exported as
//! CSV (the guide's Export Cancelled Reports).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::callbacks::{readable_queues, row};
use super::fields::{field, parse_time};
use super::posted::Posted;
use super::{UiUser, chrome, page_error, render_status};
use crate::api::ApiState;
use crate::callback::CallbackRecord;
use crate::callback::CallbackState;
use crate::callback::bulk::{self, BulkSummary};
use crate::users::Permission;

/// Callbacks listed at most in a bulk-cancel confirmation list.
pub const PREVIEW_LIMIT: usize = 1000;

/// The bulk-cancel range form.
pub async fn form(State(s): State<ApiState>, user: UiUser) -> Response {
    if let Err(r) = user.require(Permission::WriteCallbacks) {
        return r;
    }
    view(&s, &user, minijinja::context! {}, None)
}

fn view(s: &ApiState, user: &UiUser, extra: minijinja::Value, error: Option<String>) -> Response {
    let ctx = minijinja::context! {
        queues => readable_queues(s, user),
        error => error,
        ..minijinja::context! { ..extra, ..chrome(user, "Bulk cancel", "/ui/callbacks") }
    };
    render_status(super::status_of(&error), "bulk.html", ctx)
}

/// The fields and range of a bulk-cancel form (its CSRF token already checked), once the
/// permission and the range are; else the page to answer.
fn checked(s: &ApiState, p: &Posted) -> Result<(String, DateTime<Utc>, DateTime<Utc>), Response> {
    p.user.require(Permission::WriteCallbacks)?;
    bulk_range(s, &p.user, &p.fields).map_err(|e| view(s, &p.user, minijinja::context! {}, Some(e)))
}

/// The range of a bulk cancel, checked.
fn bulk_range(
    s: &ApiState,
    user: &UiUser,
    fields: &[(String, String)],
) -> Result<(String, DateTime<Utc>, DateTime<Utc>), String> {
    let queue = field(fields, "queue").to_string();
    if s.config.queue(&queue).is_none() {
        return Err(format!("Queue: there is no queue “{queue}”."));
    }
    if !user.user.can_read_queue(&queue) {
        return Err(format!("Queue: you may not read queue “{queue}”."));
    }
    let from = parse_time(field(fields, "from")).ok_or("From: give a date and time.")?;
    let to = parse_time(field(fields, "to")).ok_or("To: give a date and time.")?;
    if from >= to {
        return Err("To: must be after From.".into());
    }
    Ok((queue, from, to))
}

/// Unfinished callbacks of `queue` with a desired time in `[from, to)`.
fn in_range(
    s: &ApiState,
    queue: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<CallbackRecord> {
    let mut list: Vec<_> = s
        .callbacks
        .active()
        .into_iter()
        .filter(|r| {
            r.queue == queue
                && r.desired_time >= from
                && r.desired_time < to
                && !r.state.is_completed()
        })
        .collect();
    list.sort_by_key(|r| (r.desired_time, r.id));
    list
}

/// The confirmation list: what would be cancelled (each with a checkbox), and what cannot be.
pub async fn preview(State(s): State<ApiState>, p: Posted) -> Response {
    let (queue, from, to) = match checked(&s, &p) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let user = &p.user;
    let (busy, free): (Vec<_>, Vec<_>) = in_range(&s, &queue, from, to)
        .into_iter()
        .partition(|r| r.state == CallbackState::Processing);
    let listed = |l: &[CallbackRecord]| l.iter().take(PREVIEW_LIMIT).map(row).collect::<Vec<_>>();
    let extra = minijinja::context! {
        preview => true,
        queue => queue,
        from => from.format("%Y-%m-%dT%H:%M").to_string(),
        to => to.format("%Y-%m-%dT%H:%M").to_string(),
        free_total => free.len(),
        busy_total => busy.len(),
        free => listed(&free),
        busy => listed(&busy),
    };
    view(&s, user, extra, None)
}

/// Cancels exactly the confirmed callbacks, stores the summary with its audit entry, and shows
/// the summary (with the CSV link).
pub async fn confirm(State(s): State<ApiState>, p: Posted) -> Response {
    let (queue, from, to) = match checked(&s, &p) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (user, fields) = (&p.user, &p.fields);
    let ids: Vec<Uuid> = fields
        .iter()
        .filter(|(k, _)| k == "ids")
        .filter_map(|(_, v)| Uuid::parse_str(v).ok())
        .collect();
    if ids.is_empty() {
        let e = "Select at least one callback to cancel.".to_string();
        return view(&s, user, minijinja::context! {}, Some(e));
    }
    let current: BTreeMap<Uuid, CallbackRecord> = in_range(&s, &queue, from, to)
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let lines = bulk::cancel_confirmed(&s.callbacks, &current, &ids, &queue, &user.user.name).await;
    let summary = BulkSummary {
        id: Uuid::new_v4(),
        at: s.clock.now(),
        user: user.user.name.clone(),
        service_name: queue,
        from,
        to,
        lines,
    };
    let cancelled = summary
        .lines
        .iter()
        .filter(|l| l.result == "CANCELLED")
        .count();
    let skipped: Vec<_> = summary
        .lines
        .iter()
        .filter(|l| l.result != "CANCELLED")
        .map(|l| json!({ "id": l.id.to_string(), "reason": l.reason }))
        .collect();
    let store = &s.store;
    let detail = json!({
        "summaryId": summary.id, "serviceName": summary.service_name,
        "from": summary.from, "to": summary.to,
        "cancelled": cancelled, "skipped": skipped.len(), "via": "ui",
    });
    let docs = vec![
        summary.document(),
        crate::audit::entry(
            s.clock.now(),
            &user.user.name,
            "callback.bulk_cancel",
            detail,
        ),
    ];
    if let Err(e) = store.save_documents(docs).await {
        tracing::error!(error = %e, "bulk-cancel summary not stored");
    }
    let extra = minijinja::context! {
        done => true,
        summary_id => summary.id.to_string(),
        cancelled => cancelled,
        skipped => skipped,
    };
    view(&s, user, extra, None)
}

/// The summary of a bulk cancel as CSV.
pub async fn csv(State(s): State<ApiState>, user: UiUser, Path(id): Path<String>) -> Response {
    if let Err(r) = user.require(Permission::ExportCallbacks) {
        return r;
    }
    let missing = || {
        page_error(
            StatusCode::NOT_FOUND,
            "There is no such summary.",
            Some(&user),
        )
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return missing();
    };
    let summary = match bulk::find(s.store.as_ref(), id).await {
        Ok(Some(sm)) => sm,
        _ => return missing(),
    };
    if let Err(r) = user.require_queue(&summary.service_name) {
        return r;
    }
    match summary.csv() {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"bulk-cancel-{id}.csv\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => page_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("The summary could not be written: {e}."),
            Some(&user),
        ),
    }
}

//! The Callback tab: the list in pages of 250 with the guide's columns (State with its
//! completion reason, Desired Callback Time, Phone Number, Service Name; Callback ID and Time
//! Updated as advanced options), filters (state, queue, desired-time range), search by id or
//! number, one callback's detail with its metrics and history, create, reschedule (picking one
//! of the availability slots), recreate, cancel, and bulk cancel with its confirmation list and
//! summary (CSV). Every action calls the callback service, with the checks the JSON API makes.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{UiUser, page_error, render, render_status, tabs};
use crate::api::ApiState;
use crate::callback::bulk::{self, BulkSummary};
use crate::callback::service::{CreateRequest, api_callback};
use crate::callback::{CallbackRecord, CallbackState, Origin};
use crate::store::CallbackFilter;
use crate::users::Permission;

/// Callbacks per page, as the guide's Callback tab shows them.
pub const PAGE_SIZE: usize = 250;

/// Deepest page offered (offset paging reads every row before it).
pub const MAX_PAGE: usize = 1000;

/// Callbacks listed at most in a bulk-cancel confirmation list.
pub const PREVIEW_LIMIT: usize = 1000;

const STATES: [&str; 5] = ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING", "COMPLETED"];

/// `GET /ui/callbacks` query: filters, search, page, columns shown.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ListQuery {
    /// One state, or empty for all.
    #[serde(default)]
    pub state: Option<String>,
    /// One queue, or empty for all the user may read.
    #[serde(default)]
    pub queue: Option<String>,
    /// Desired time at or after (`YYYY-MM-DDTHH:MM`, UTC).
    #[serde(default)]
    pub from: Option<String>,
    /// Desired time before.
    #[serde(default)]
    pub to: Option<String>,
    /// A callback id or a phone number.
    #[serde(default)]
    pub q: Option<String>,
    /// Page from 1.
    #[serde(default)]
    pub page: Option<usize>,
    /// Advanced option: show the Callback ID column.
    #[serde(default)]
    pub show_id: Option<String>,
    /// Advanced option: show the Time Updated column.
    #[serde(default)]
    pub show_updated: Option<String>,
    /// What was just done (a notice).
    #[serde(default)]
    pub done: Option<String>,
}

/// One row of the table.
#[derive(Debug, Serialize)]
struct Row {
    id: String,
    state: &'static str,
    reason: Option<String>,
    desired: String,
    phone: String,
    queue: String,
    updated: String,
    editable: bool,
    completed: bool,
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn reason_of(state: CallbackState) -> Option<String> {
    match state {
        CallbackState::Completed(r) => serde_json::to_value(r)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string)),
        _ => None,
    }
}

fn row(r: &CallbackRecord) -> Row {
    Row {
        id: r.id.to_string(),
        state: r.state.name(),
        reason: reason_of(r.state),
        desired: when(r.desired_time),
        phone: r.phone.clone(),
        queue: r.queue.clone(),
        updated: when(r.updated_at),
        editable: !r.state.is_completed(),
        completed: r.state.is_completed(),
    }
}

/// `YYYY-MM-DDTHH:MM[:SS]` (an HTML `datetime-local`) or RFC 3339, as UTC.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
                .ok()
                .map(|n| n.and_utc())
        })
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn compact_phone(p: &str) -> String {
    p.chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect()
}

/// Queues `user` may read, in configuration order.
fn readable_queues(s: &ApiState, user: &UiUser) -> Vec<String> {
    s.config
        .spec
        .queues
        .iter()
        .filter(|q| user.user.can_read_queue(&q.name))
        .map(|q| q.name.clone())
        .collect()
}

/// The rows of one page of `q` (or of the search), whether more follow, and a problem with
/// the filters to show instead.
async fn page_rows(s: &ApiState, user: &UiUser, q: &ListQuery) -> Result<(Vec<Row>, bool), String> {
    let restrict = user
        .user
        .queues
        .as_ref()
        .map(|q| q.iter().cloned().collect::<Vec<_>>());
    if let Some(text) = non_empty(&q.q) {
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
                return Err(format!(
                    "“{text}” is neither a callback id nor a phone number."
                ));
            }
            let f = CallbackFilter {
                phone: Some(phone),
                queues: restrict,
                limit: PAGE_SIZE,
                ..Default::default()
            };
            match &s.store {
                Some(store) => store
                    .query_callbacks(&f)
                    .await
                    .map_err(|e| format!("The callbacks could not be read: {e}."))?,
                None => Vec::new(),
            }
        };
        let rows = found
            .iter()
            .filter(|r| user.user.can_read_queue(&r.queue))
            .map(row)
            .collect();
        return Ok((rows, false));
    }
    let state = non_empty(&q.state);
    if let Some(st) = state
        && !STATES.contains(&st)
    {
        return Err(format!(
            "State: “{st}” is not one of {}.",
            STATES.join(", ")
        ));
    }
    let queue = non_empty(&q.queue);
    if let Some(name) = queue {
        if s.config.queue(name).is_none() {
            return Err(format!("Queue: there is no queue “{name}”."));
        }
        if !user.user.can_read_queue(name) {
            return Err(format!("Queue: you may not read queue “{name}”."));
        }
    }
    let time = |v: &Option<String>, field: &str| -> Result<Option<DateTime<Utc>>, String> {
        match non_empty(v) {
            None => Ok(None),
            Some(t) => parse_time(t)
                .map(Some)
                .ok_or_else(|| format!("{field}: “{t}” is not a date and time.")),
        }
    };
    let from = time(&q.from, "From")?;
    let to = time(&q.to, "To")?;
    let page = q.page.unwrap_or(1).clamp(1, MAX_PAGE);
    let Some(store) = &s.store else {
        return Ok((Vec::new(), false));
    };
    let f = CallbackFilter {
        queue: queue.map(str::to_string),
        queues: restrict,
        state: state.map(str::to_string),
        from,
        to,
        offset: (page - 1) * PAGE_SIZE,
        // One more than a page: whether a next page exists.
        limit: PAGE_SIZE + 1,
        ..Default::default()
    };
    let mut rows = store
        .query_callbacks(&f)
        .await
        .map_err(|e| format!("The callbacks could not be read: {e}."))?;
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    Ok((rows.iter().map(row).collect(), more))
}

/// The link to page `page` with the same filters.
fn page_link(q: &ListQuery, page: usize) -> String {
    let mut parts = Vec::new();
    let mut push = |k: &str, v: &Option<String>| {
        if let Some(v) = non_empty(v) {
            parts.push(format!("{k}={}", urlencode(v)));
        }
    };
    push("state", &q.state);
    push("queue", &q.queue);
    push("from", &q.from);
    push("to", &q.to);
    push("show_id", &q.show_id);
    push("show_updated", &q.show_updated);
    parts.push(format!("page={page}"));
    format!("/ui/callbacks?{}", parts.join("&"))
}

/// Percent-encodes a query value.
fn urlencode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Callback tab (the whole page, or only the table for htmx's filter updates).
pub async fn list(
    State(s): State<ApiState>,
    user: UiUser,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = user.require(Permission::ReadCallbacks) {
        return r;
    }
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let page = q.page.unwrap_or(1).clamp(1, MAX_PAGE);
    let (rows, more, error) = match page_rows(&s, &user, &q).await {
        Ok((rows, more)) => (rows, more, None),
        Err(e) => (Vec::new(), false, Some(e)),
    };
    let notice = match q.done.as_deref() {
        Some("bulk") => Some("Bulk cancel done."),
        _ => None,
    };
    let ctx = context! {
        title => "Callback",
        active => "/ui/callbacks",
        user => user.view(),
        tabs => tabs(&user),
        csrf => user.csrf,
        rows => rows,
        count => rows.len(),
        page => page,
        prev => (page > 1).then(|| page_link(&q, page - 1)),
        next => more.then(|| page_link(&q, page + 1)),
        filter_error => error,
        notice => notice,
        q => q,
        states => STATES,
        queues => readable_queues(&s, &user),
        show_id => q.show_id.is_some(),
        show_updated => q.show_updated.is_some(),
    };
    // htmx asks for the table only when a filter changes.
    let partial = headers.get("hx-target").and_then(|v| v.to_str().ok()) == Some("results");
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_status(
        status,
        if partial {
            "rows.html"
        } else {
            "callbacks.html"
        },
        ctx,
    )
}

/// A readable callback, or the page saying it does not exist (queues outside the user's line of
/// business do not exist for them).
async fn readable(s: &ApiState, user: &UiUser, id: Uuid) -> Result<CallbackRecord, Response> {
    match s.callbacks.get(id).await {
        Ok(r) if user.user.can_read_queue(&r.queue) => Ok(r),
        _ => Err(page_error(
            StatusCode::NOT_FOUND,
            &format!("There is no callback {id}."),
            Some(user),
        )),
    }
}

/// `?done=` on the detail page.
#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// One callback: its fields, metrics, history and the actions its state allows.
pub async fn detail(
    State(s): State<ApiState>,
    user: UiUser,
    Path(id): Path<String>,
    q: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = user.require(Permission::ReadCallbacks) {
        return r;
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return page_error(
            StatusCode::NOT_FOUND,
            "That is not a callback id.",
            Some(&user),
        );
    };
    let rec = match readable(&s, &user, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let position = (rec.state == CallbackState::Queued)
        .then(|| s.router.position(&rec.queue, rec.id).ok().flatten())
        .flatten()
        .map(|p| p + 1);
    let history: Vec<_> = rec
        .history
        .iter()
        .map(|h| {
            json!({
                "at": when(h.at),
                "from": h.from.map(|f| f.name()),
                "to": h.to.name(),
                "reason": reason_of(h.to),
                "cause": h.cause,
            })
        })
        .collect();
    let attempts: Vec<_> = rec
        .metrics
        .attempts
        .iter()
        .map(|a| json!({ "at": when(a.at), "result": a.result, "agents": a.agents_logged_in }))
        .collect();
    let notice = match q.ok().and_then(|Query(q)| q.done).as_deref() {
        Some("created") => Some("Callback created."),
        Some("cancelled") => Some("Callback cancelled."),
        Some("rescheduled") => Some("Callback rescheduled: this is the new callback."),
        Some("recreated") => Some("Callback recreated: this is the new callback."),
        _ => None,
    };
    render(
        "detail.html",
        context! {
            title => format!("Callback {id}"),
            active => "/ui/callbacks",
            user => user.view(),
            tabs => tabs(&user),
            csrf => user.csrf,
            notice => notice,
            r => row(&rec),
            kind => rec.kind,
            origin => rec.origin,
            priority => rec.priority,
            created => when(rec.created_at),
            created_by => rec.created_by,
            updated_by => rec.updated_by,
            previous_id => rec.previous_id.map(|p| p.to_string()),
            user_data => rec.user_data,
            position => position,
            metrics => rec.metrics,
            attempts => attempts,
            history => history,
            scheduled => rec.state == CallbackState::Scheduled,
        },
    )
}

/// A slot choice: its start (the value sent back) and its label.
#[derive(Debug, Serialize)]
struct SlotView {
    value: String,
    label: String,
    selected: bool,
}

/// The free slots of `queue` on `date` (in the queue's zone), labelled in its local time.
fn slot_views(s: &ApiState, queue: &str, date: NaiveDate, chosen: Option<&str>) -> Vec<SlotView> {
    let Some(q) = s.config.queue(queue) else {
        return Vec::new();
    };
    let tz = s.config.queue_hours(q).tz;
    let now = s.clock.now();
    s.callbacks
        .availability(queue, date, date)
        .unwrap_or_default()
        .into_iter()
        .filter(|sl| sl.start > now && sl.available() > 0)
        .map(|sl| {
            let value = sl.start.to_rfc3339();
            let local = sl.start.with_timezone(&tz).format("%H:%M %Z").to_string();
            let utc = sl.start.format("%H:%M UTC").to_string();
            let when = if local == utc {
                utc
            } else {
                format!("{local} ({utc})")
            };
            SlotView {
                label: format!("{when} — {} free", sl.available()),
                selected: chosen == Some(value.as_str()),
                value,
            }
        })
        .collect()
}

/// Today in `queue`'s zone (the first day offered).
fn today_in(s: &ApiState, queue: &str) -> NaiveDate {
    let now = s.clock.now();
    match s.config.queue(queue) {
        Some(q) => now.with_timezone(&s.config.queue_hours(q).tz).date_naive(),
        None => now.date_naive(),
    }
}

/// `GET /ui/callbacks/slots` query (htmx reloads the slot list when the queue or date change).
#[derive(Debug, Deserialize)]
pub struct SlotsQuery {
    #[serde(default)]
    queue: String,
    #[serde(default)]
    date: String,
}

/// The slot `<select>` for a queue and a date.
pub async fn slots(
    State(s): State<ApiState>,
    user: UiUser,
    q: Result<Query<SlotsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = user.require(Permission::ReadCallbacks) {
        return r;
    }
    let Ok(Query(q)) = q else {
        return page_error(
            StatusCode::BAD_REQUEST,
            "Give a queue and a date.",
            Some(&user),
        );
    };
    if let Err(r) = user.require_queue(&q.queue) {
        return r;
    }
    let date =
        NaiveDate::parse_from_str(&q.date, "%Y-%m-%d").unwrap_or_else(|_| today_in(&s, &q.queue));
    render(
        "slots.html",
        context! { slots => slot_views(&s, &q.queue, date, None) },
    )
}

/// The Create Callback form's fields (`GET` pre-fills, `POST` creates).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    phone: String,
    /// `immediate` or `scheduled`.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    date: String,
    /// A slot's start (RFC 3339).
    #[serde(default)]
    slot: String,
}

fn new_view(s: &ApiState, user: &UiUser, f: &CreateForm, error: Option<String>) -> Response {
    let queues = readable_queues(s, user);
    let queue = if f.queue.is_empty() {
        queues.first().cloned().unwrap_or_default()
    } else {
        f.queue.clone()
    };
    let date =
        NaiveDate::parse_from_str(&f.date, "%Y-%m-%d").unwrap_or_else(|_| today_in(s, &queue));
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_status(
        status,
        "new.html",
        context! {
            title => "Create callback",
            active => "/ui/callbacks",
            user => user.view(),
            tabs => tabs(user),
            csrf => user.csrf,
            queues => queues,
            f => f,
            queue => queue,
            date => date.to_string(),
            scheduled => f.kind == "scheduled",
            slots => slot_views(s, &queue, date, Some(&f.slot)),
            error => error,
        },
    )
}

/// The Create Callback form.
pub async fn new_form(State(s): State<ApiState>, user: UiUser) -> Response {
    if let Err(r) = user.require(Permission::WriteCallbacks) {
        return r;
    }
    new_view(&s, &user, &CreateForm::default(), None)
}

/// Creates a callback as the administration does (slot capacity applies).
pub async fn create(
    State(s): State<ApiState>,
    user: UiUser,
    axum::extract::Form(f): axum::extract::Form<CreateForm>,
) -> Response {
    if let Err(r) = user.check_csrf(&f.csrf) {
        return r;
    }
    if let Err(r) = user.require(Permission::WriteCallbacks) {
        return r;
    }
    if s.config.queue(&f.queue).is_none() {
        return new_view(
            &s,
            &user,
            &f,
            Some(format!("Queue: there is no queue “{}”.", f.queue)),
        );
    }
    if let Err(r) = user.require_queue(&f.queue) {
        return r;
    }
    let at = if f.kind == "scheduled" {
        match parse_time(&f.slot) {
            Some(t) => Some(t),
            None => {
                return new_view(
                    &s,
                    &user,
                    &f,
                    Some("Available time slot: pick one of the free slots.".into()),
                );
            }
        }
    } else {
        None
    };
    let req = CreateRequest {
        callback: crate::callback::NewCallback {
            origin: Origin::Admin,
            created_by: user.user.name.clone(),
            ..api_callback(&f.queue, f.phone.trim(), at)
        },
        check_slot: true,
        ewt_at_offer_seconds: None,
        position_at_offer: None,
    };
    match s.callbacks.create(req).await {
        Ok(rec) => {
            audit(
                &s,
                &user,
                "callback.create",
                json!({ "id": rec.id, "serviceName": rec.queue, "phoneNumber": rec.phone, "desiredTime": rec.desired_time, "via": "ui" }),
            )
            .await;
            Redirect::to(&format!("/ui/callbacks/{}?done=created", rec.id)).into_response()
        }
        Err(e) => new_view(
            &s,
            &user,
            &f,
            Some(format!("The callback was not created: {e}.")),
        ),
    }
}

/// Records a change made through the UI in the audit log (a failure is logged: the change
/// itself is already durable).
async fn audit(s: &ApiState, user: &UiUser, action: &str, detail: serde_json::Value) {
    if let Some(store) = &s.store {
        let doc = crate::audit::entry(s.clock.now(), &user.user.name, action, detail);
        if let Err(e) = store.save_documents(vec![doc]).await {
            tracing::error!(error = %e, action, "UI change not audited");
        }
    }
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// The checks every action on one callback makes: CSRF, permission, readable record.
async fn acting_on(
    s: &ApiState,
    user: &UiUser,
    csrf: &str,
    id: &str,
) -> Result<CallbackRecord, Response> {
    user.check_csrf(csrf)?;
    user.require(Permission::WriteCallbacks)?;
    let id = Uuid::parse_str(id).map_err(|_| {
        page_error(
            StatusCode::NOT_FOUND,
            "That is not a callback id.",
            Some(user),
        )
    })?;
    readable(s, user, id).await
}

/// The page for an action the callback's state refused.
fn refused(user: &UiUser, what: &str, e: impl std::fmt::Display) -> Response {
    page_error(
        StatusCode::CONFLICT,
        &format!("The callback was not {what}: {e}."),
        Some(user),
    )
}

/// Cancels one callback (CANCELLED_BY_ADMIN).
pub async fn cancel(
    State(s): State<ApiState>,
    user: UiUser,
    Path(id): Path<String>,
    axum::extract::Form(f): axum::extract::Form<CsrfOnly>,
) -> Response {
    let rec = match acting_on(&s, &user, &f.csrf, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match s.callbacks.cancel(rec.id, &user.user.name, true).await {
        Ok(_) => {
            audit(
                &s,
                &user,
                "callback.cancel",
                json!({ "id": rec.id, "via": "ui" }),
            )
            .await;
            Redirect::to(&format!("/ui/callbacks/{}?done=cancelled", rec.id)).into_response()
        }
        Err(e) => refused(&user, "cancelled", e),
    }
}

/// `GET /ui/callbacks/{id}/reschedule?date=`.
#[derive(Debug, Deserialize)]
pub struct DateQuery {
    #[serde(default)]
    date: Option<String>,
}

/// The Edit Callback form: the current time and the free slots of a day to pick from.
pub async fn reschedule_form(
    State(s): State<ApiState>,
    user: UiUser,
    Path(id): Path<String>,
    q: Result<Query<DateQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = user.require(Permission::WriteCallbacks) {
        return r;
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return page_error(
            StatusCode::NOT_FOUND,
            "That is not a callback id.",
            Some(&user),
        );
    };
    let rec = match readable(&s, &user, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let date = q
        .ok()
        .and_then(|Query(q)| q.date)
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .unwrap_or_else(|| today_in(&s, &rec.queue));
    render(
        "detail.html",
        context! {
            title => "Reschedule callback",
            active => "/ui/callbacks",
            user => user.view(),
            tabs => tabs(&user),
            csrf => user.csrf,
            r => row(&rec),
            rescheduling => true,
            scheduled => rec.state == CallbackState::Scheduled,
            date => date.to_string(),
            slots => slot_views(&s, &rec.queue, date, None),
            history => Vec::<()>::new(),
        },
    )
}

/// The reschedule form's fields.
#[derive(Debug, Deserialize)]
pub struct SlotForm {
    csrf: String,
    #[serde(default)]
    slot: String,
}

/// Moves a SCHEDULED callback to the chosen slot (the service makes the new record).
pub async fn reschedule(
    State(s): State<ApiState>,
    user: UiUser,
    Path(id): Path<String>,
    axum::extract::Form(f): axum::extract::Form<SlotForm>,
) -> Response {
    let rec = match acting_on(&s, &user, &f.csrf, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(at) = parse_time(&f.slot) else {
        return page_error(
            StatusCode::BAD_REQUEST,
            "Available time slot: pick one of the free slots.",
            Some(&user),
        );
    };
    match s.callbacks.reschedule(rec.id, at, &user.user.name).await {
        Ok(new) => {
            audit(
                &s,
                &user,
                "callback.reschedule",
                json!({ "id": rec.id, "newId": new.id, "desiredTime": new.desired_time, "via": "ui" }),
            )
            .await;
            Redirect::to(&format!("/ui/callbacks/{}?done=rescheduled", new.id)).into_response()
        }
        Err(e) => refused(&user, "rescheduled", e),
    }
}

/// Makes a new immediate callback from a COMPLETED one.
pub async fn recreate(
    State(s): State<ApiState>,
    user: UiUser,
    Path(id): Path<String>,
    axum::extract::Form(f): axum::extract::Form<CsrfOnly>,
) -> Response {
    let rec = match acting_on(&s, &user, &f.csrf, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match s.callbacks.recreate(rec.id, None, &user.user.name).await {
        Ok(new) => {
            audit(
                &s,
                &user,
                "callback.recreate",
                json!({ "id": rec.id, "newId": new.id, "via": "ui" }),
            )
            .await;
            Redirect::to(&format!("/ui/callbacks/{}?done=recreated", new.id)).into_response()
        }
        Err(e) => refused(&user, "recreated", e),
    }
}

/// The fields of a url-encoded body, keys repeated as sent (checkbox lists).
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match (
                b[i],
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (b'+', _, _) => out.push(b' '),
                (b'%', Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                (c, _, _) => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

/// The bulk-cancel range form.
pub async fn bulk_form(State(s): State<ApiState>, user: UiUser) -> Response {
    if let Err(r) = user.require(Permission::WriteCallbacks) {
        return r;
    }
    bulk_view(&s, &user, BTreeMap::new(), None)
}

fn bulk_view(
    s: &ApiState,
    user: &UiUser,
    mut ctx: BTreeMap<&'static str, minijinja::Value>,
    error: Option<String>,
) -> Response {
    use minijinja::Value as V;
    ctx.insert("title", V::from("Bulk cancel"));
    ctx.insert("active", V::from("/ui/callbacks"));
    ctx.insert("user", V::from_serialize(user.view()));
    ctx.insert("tabs", V::from_serialize(tabs(user)));
    ctx.insert("csrf", V::from(user.csrf.clone()));
    ctx.insert("queues", V::from_serialize(readable_queues(s, user)));
    ctx.insert("error", V::from(error));
    let status = if ctx.get("error").is_some_and(|e| !e.is_none()) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_status(status, "bulk.html", V::from_serialize(&ctx))
}

/// The range of a bulk cancel, checked; the field values for the form.
fn bulk_range(
    s: &ApiState,
    user: &UiUser,
    fields: &[(String, String)],
) -> Result<(String, DateTime<Utc>, DateTime<Utc>), String> {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let queue = get("queue").to_string();
    if s.config.queue(&queue).is_none() {
        return Err(format!("Queue: there is no queue “{queue}”."));
    }
    if !user.user.can_read_queue(&queue) {
        return Err(format!("Queue: you may not read queue “{queue}”."));
    }
    let from = parse_time(get("from")).ok_or("From: give a date and time.")?;
    let to = parse_time(get("to")).ok_or("To: give a date and time.")?;
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
pub async fn bulk_preview(State(s): State<ApiState>, user: UiUser, body: Bytes) -> Response {
    let fields = form_fields(&body);
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if let Err(r) = user.check_csrf(csrf) {
        return r;
    }
    if let Err(r) = user.require(Permission::WriteCallbacks) {
        return r;
    }
    let (queue, from, to) = match bulk_range(&s, &user, &fields) {
        Ok(v) => v,
        Err(e) => return bulk_view(&s, &user, BTreeMap::new(), Some(e)),
    };
    let (busy, free): (Vec<_>, Vec<_>) = in_range(&s, &queue, from, to)
        .into_iter()
        .partition(|r| r.state == CallbackState::Processing);
    let mut extra = BTreeMap::new();
    extra.insert("preview", minijinja::Value::from(true));
    extra.insert("queue", minijinja::Value::from(queue));
    extra.insert(
        "from",
        minijinja::Value::from(from.format("%Y-%m-%dT%H:%M").to_string()),
    );
    extra.insert(
        "to",
        minijinja::Value::from(to.format("%Y-%m-%dT%H:%M").to_string()),
    );
    extra.insert("free_total", minijinja::Value::from(free.len()));
    extra.insert("busy_total", minijinja::Value::from(busy.len()));
    extra.insert(
        "free",
        minijinja::Value::from_serialize(
            free.iter().take(PREVIEW_LIMIT).map(row).collect::<Vec<_>>(),
        ),
    );
    extra.insert(
        "busy",
        minijinja::Value::from_serialize(
            busy.iter().take(PREVIEW_LIMIT).map(row).collect::<Vec<_>>(),
        ),
    );
    bulk_view(&s, &user, extra, None)
}

/// Cancels exactly the confirmed callbacks, stores the summary with its audit entry, and shows
/// the summary (with the CSV link).
pub async fn bulk_confirm(State(s): State<ApiState>, user: UiUser, body: Bytes) -> Response {
    let fields = form_fields(&body);
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if let Err(r) = user.check_csrf(csrf) {
        return r;
    }
    if let Err(r) = user.require(Permission::WriteCallbacks) {
        return r;
    }
    let (queue, from, to) = match bulk_range(&s, &user, &fields) {
        Ok(v) => v,
        Err(e) => return bulk_view(&s, &user, BTreeMap::new(), Some(e)),
    };
    let ids: Vec<Uuid> = fields
        .iter()
        .filter(|(k, _)| k == "ids")
        .filter_map(|(_, v)| Uuid::parse_str(v).ok())
        .collect();
    if ids.is_empty() {
        return bulk_view(
            &s,
            &user,
            BTreeMap::new(),
            Some("Select at least one callback to cancel.".into()),
        );
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
    if let Some(store) = &s.store {
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
    }
    let mut extra = BTreeMap::new();
    extra.insert("done", minijinja::Value::from(true));
    extra.insert("summary_id", minijinja::Value::from(summary.id.to_string()));
    extra.insert("cancelled", minijinja::Value::from(cancelled));
    extra.insert("skipped", minijinja::Value::from_serialize(&skipped));
    bulk_view(&s, &user, extra, None)
}

/// The summary of a bulk cancel as CSV.
pub async fn bulk_csv(State(s): State<ApiState>, user: UiUser, Path(id): Path<String>) -> Response {
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
    let (Ok(id), Some(store)) = (Uuid::parse_str(&id), &s.store) else {
        return missing();
    };
    let summary = match bulk::find(store.as_ref(), id).await {
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

//! One callback: its detail (fields, metrics, dial attempts, history), and the actions on it —
//! create, cancel, reschedule and recreate, the last two picking one of the availability slots
//! shown (recreate may also be immediate). Every action calls the callback service, with the
//! checks the JSON API makes (permission, line of business, the callback's state).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::callbacks::{readable_queues, reason_of, row};
use super::fields::{field, form_fields, parse_time, when};
use super::posted::Posted;
use super::{DoneQuery, UiUser, audit, chrome, page_error, render, render_status, status_of};
use crate::api::ApiState;
use crate::callback::service::{CreateRequest, api_callback};
use crate::callback::{CallbackRecord, CallbackState, Origin};
use crate::users::Permission;

/// A callback `user` may read, from the id in a path, or the page saying it does not exist
/// (queues outside the user's line of business do not exist for them).
async fn readable(s: &ApiState, user: &UiUser, id: &str) -> Result<CallbackRecord, Response> {
    let missing = |what: String| page_error(StatusCode::NOT_FOUND, &what, Some(user));
    let Ok(id) = Uuid::parse_str(id) else {
        return Err(missing("That is not a callback id.".into()));
    };
    match s.callbacks.get(id).await {
        Ok(r) if user.user.can_read_queue(&r.queue) => Ok(r),
        _ => Err(missing(format!("There is no callback {id}."))),
    }
}

/// A callback `user` may read, after checking that `user` holds `p`.
async fn opened(
    s: &ApiState,
    user: &UiUser,
    p: Permission,
    id: &str,
) -> Result<CallbackRecord, Response> {
    user.require(p)?;
    readable(s, user, id).await
}

/// One callback: its fields, metrics, history and the actions its state allows.
pub async fn detail(
    State(s): State<ApiState>,
    user: UiUser,
    Path(id): Path<String>,
    q: Result<Query<DoneQuery>, QueryRejection>,
) -> Response {
    let rec = match opened(&s, &user, Permission::ReadCallbacks, &id).await {
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
                "at": when(h.at), "from": h.from.map(|f| f.name()), "to": h.to.name(),
                "reason": reason_of(h.to), "cause": h.cause,
            })
        })
        .collect();
    let attempts: Vec<_> = rec
        .metrics
        .attempts
        .iter()
        .map(|a| json!({ "at": when(a.at), "result": a.result, "agents": a.agents_logged_in }))
        .collect();
    let notice = match DoneQuery::of(q).as_deref() {
        Some("created") => Some("Callback created."),
        Some("cancelled") => Some("Callback cancelled."),
        Some("rescheduled") => Some("Callback rescheduled: this is the new callback."),
        Some("recreated") => Some("Callback recreated: this is the new callback."),
        _ => None,
    };
    render(
        "detail.html",
        context! {
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
            ..chrome(&user, &format!("Callback {}", rec.id), "/ui/callbacks")
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

/// `date` (`YYYY-MM-DD`), or today in `queue`'s zone (the first day offered).
fn day_or_today(s: &ApiState, queue: &str, date: Option<&str>) -> NaiveDate {
    if let Some(d) = date.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) {
        return d;
    }
    let now = s.clock.now();
    match s.config.queue(queue) {
        Some(q) => now.with_timezone(&s.config.queue_hours(q).tz).date_naive(),
        None => now.date_naive(),
    }
}

/// `GET /ui/callbacks/slots?queue=&date=`: the slot `<select>` for a queue and a date (htmx
/// reloads it when the queue or the date change).
pub async fn slots(State(s): State<ApiState>, user: UiUser, RawQuery(raw): RawQuery) -> Response {
    let f = form_fields(raw.unwrap_or_default().as_bytes());
    let queue = field(&f, "queue");
    if let Err(r) = user
        .require(Permission::ReadCallbacks)
        .and_then(|_| user.require_queue(queue))
    {
        return r;
    }
    let date = day_or_today(&s, queue, Some(field(&f, "date")));
    render(
        "slots.html",
        context! { slots => slot_views(&s, queue, date, None) },
    )
}

/// The Create Callback form's fields (`GET` pre-fills, `POST` creates).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct CreateForm {
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
    let date = day_or_today(s, &queue, Some(&f.date));
    render_status(
        status_of(&error),
        "new.html",
        context! {
            queues => queues,
            f => f,
            date => date.to_string(),
            scheduled => f.kind == "scheduled",
            slots => slot_views(s, &queue, date, Some(&f.slot)),
            queue => queue,
            error => error,
            ..chrome(user, "Create callback", "/ui/callbacks")
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
pub async fn create(State(s): State<ApiState>, p: Posted) -> Response {
    let user = &p.user;
    let f: CreateForm = match user
        .require(Permission::WriteCallbacks)
        .and_then(|_| p.decode())
    {
        Ok(f) => f,
        Err(r) => return r,
    };
    if s.config.queue(&f.queue).is_none() {
        let e = format!("Queue: there is no queue “{}”.", f.queue);
        return new_view(&s, user, &f, Some(e));
    }
    if let Err(r) = user.require_queue(&f.queue) {
        return r;
    }
    let at = if f.kind == "scheduled" {
        match parse_time(&f.slot) {
            Some(t) => Some(t),
            None => {
                let e = "Available time slot: pick one of the free slots.".to_string();
                return new_view(&s, user, &f, Some(e));
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
            let detail = json!({ "id": rec.id, "serviceName": rec.queue, "phoneNumber": rec.phone,
                "desiredTime": rec.desired_time, "via": "ui" });
            audit(&s, user, "callback.create", detail).await;
            Redirect::to(&format!("/ui/callbacks/{}?done=created", rec.id)).into_response()
        }
        Err(e) => {
            let e = format!("The callback was not created: {e}.");
            new_view(&s, user, &f, Some(e))
        }
    }
}

/// After an action on `old`: the audit entry and the resulting callback's page with a notice
/// (`done`), or the page saying why the callback's state refused it.
async fn finish(
    s: &ApiState,
    user: &UiUser,
    old: Uuid,
    result: Result<CallbackRecord, crate::callback::service::ServiceError>,
    action: &str,
    done: &str,
) -> Response {
    match result {
        Ok(new) => {
            let detail =
                json!({ "id": old, "newId": new.id, "desiredTime": new.desired_time, "via": "ui" });
            audit(s, user, action, detail).await;
            Redirect::to(&format!("/ui/callbacks/{}?done={done}", new.id)).into_response()
        }
        Err(e) => page_error(
            StatusCode::CONFLICT,
            &format!("The callback was not {done}: {e}."),
            Some(user),
        ),
    }
}

/// `GET …/reschedule?date=` and `GET …/recreate?date=`.
#[derive(Debug, Deserialize)]
pub struct DateQuery {
    #[serde(default)]
    date: Option<String>,
}

/// `GET /ui/callbacks/{id}/{action}`: the form that moves a callback to a slot — Edit Callback
/// (`reschedule`, SCHEDULED only) or Recreate (`recreate`, COMPLETED only, immediate or at a
/// slot).
pub async fn slot_form(
    State(s): State<ApiState>,
    user: UiUser,
    Path((id, action)): Path<(String, String)>,
    q: Result<Query<DateQuery>, QueryRejection>,
) -> Response {
    if action != "reschedule" && action != "recreate" {
        return page_error(StatusCode::NOT_FOUND, "There is no such page.", Some(&user));
    }
    let s = &s;
    let rec = match opened(s, &user, Permission::WriteCallbacks, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let date = q.ok().and_then(|Query(q)| q.date);
    let date = day_or_today(s, &rec.queue, date.as_deref());
    let allowed = match action.as_str() {
        "recreate" => rec.state.is_completed(),
        _ => rec.state == CallbackState::Scheduled,
    };
    let title = if action == "recreate" {
        "Recreate callback"
    } else {
        "Reschedule callback"
    };
    render(
        "detail.html",
        context! {
            r => row(&rec),
            rescheduling => action,
            allowed => allowed,
            date => date.to_string(),
            slots => slot_views(s, &rec.queue, date, None),
            history => Vec::<()>::new(),
            ..chrome(&user, title, "/ui/callbacks")
        },
    )
}

/// `POST /ui/callbacks/{id}/{action}`: `cancel` (CANCELLED_BY_ADMIN), `reschedule` (a
/// SCHEDULED callback to the chosen slot) or `recreate` (a COMPLETED one, immediate or at the
/// chosen slot); the service makes the new record.
pub async fn act(
    State(s): State<ApiState>,
    Path((id, action)): Path<(String, String)>,
    p: Posted,
) -> Response {
    match action.as_str() {
        "cancel" => cancel(&s, &p.user, &id).await,
        "reschedule" => to_slot(&s, &p.user, &id, p.field("slot"), false).await,
        "recreate" => to_slot(&s, &p.user, &id, p.field("slot"), true).await,
        _ => page_error(
            StatusCode::NOT_FOUND,
            "There is no such action.",
            Some(&p.user),
        ),
    }
}

/// Cancels one callback (CANCELLED_BY_ADMIN).
async fn cancel(s: &ApiState, user: &UiUser, id: &str) -> Response {
    let rec = match opened(s, user, Permission::WriteCallbacks, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let result = s.callbacks.cancel(rec.id, &user.user.name, true).await;
    finish(s, user, rec.id, result, "callback.cancel", "cancelled").await
}

/// Reschedules (`recreate` false) or recreates callback `id` at `slot` (empty: immediate, for
/// a recreate only).
async fn to_slot(s: &ApiState, user: &UiUser, id: &str, slot: &str, recreate: bool) -> Response {
    let rec = match opened(s, user, Permission::WriteCallbacks, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let bad = || {
        page_error(
            StatusCode::BAD_REQUEST,
            "Available time slot: pick one of the free slots.",
            Some(user),
        )
    };
    let at = match slot.trim() {
        "" => None,
        t => match parse_time(t) {
            Some(at) => Some(at),
            None => return bad(),
        },
    };
    let by = &user.user.name;
    let result = match (recreate, at) {
        (true, at) => s.callbacks.recreate(rec.id, at, by).await,
        (false, Some(at)) => s.callbacks.reschedule(rec.id, at, by).await,
        (false, None) => return bad(),
    };
    let (action, done) = if recreate {
        ("callback.recreate", "recreated")
    } else {
        ("callback.reschedule", "rescheduled")
    };
    finish(s, user, rec.id, result, action, done).await
}

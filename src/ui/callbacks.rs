//! The Callback tab's list: pages of 250 with the guide's columns (State with its completion
//! reason, Desired Callback Time, Phone Number, Service Name; Callback ID and Time Updated as
//! advanced options), filters on several states and several queues at once and a desired-time
//! range, search by id or number, and the export of the filtered list as CSV. Reading goes
//! through the store's callback query with the user's line of business as a bound.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::Serialize;
use uuid::Uuid;

use super::fields::{all, field, form_fields, non_empty, parse_time, ticked, urlencode, when};
use super::{UiUser, chrome, page_error, render_status};
use crate::api::ApiState;
use crate::callback::{CallbackRecord, CallbackState};
use crate::store::CallbackFilter;
use crate::users::Permission;

/// Callbacks per page, as the guide's Callback tab shows them.
pub const PAGE_SIZE: usize = 250;

/// Deepest page offered (offset paging reads every row before it).
pub const MAX_PAGE: usize = 1000;

/// Rows in one CSV export at most (the newest first); narrow the filters for more.
pub const EXPORT_LIMIT: usize = 50_000;

/// The GES states, in the order the filters offer them.
pub const STATES: [&str; 5] = ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING", "COMPLETED"];

/// The list's query: filters (states and queues may repeat), search, page, columns shown.
#[derive(Debug, Default, Serialize)]
pub struct ListQuery {
    /// States ticked; none = every state.
    pub states: Vec<String>,
    /// Queues ticked; none = every queue the user may read.
    pub queues: Vec<String>,
    /// Desired time at or after (`YYYY-MM-DDTHH:MM`, UTC).
    pub from: Option<String>,
    /// Desired time before.
    pub to: Option<String>,
    /// A callback id or a phone number.
    pub q: Option<String>,
    /// Page from 1.
    pub page: usize,
    /// Advanced option: show the Callback ID column.
    pub show_id: bool,
    /// Advanced option: show the Time Updated column.
    pub show_updated: bool,
    /// What was just done (a notice).
    pub done: Option<String>,
}

impl ListQuery {
    /// Reads the query string (keys may repeat: `state=QUEUED&state=SCHEDULED`).
    pub fn parse(raw: Option<&str>) -> ListQuery {
        let f = form_fields(raw.unwrap_or("").as_bytes());
        let opt = |k: &str| Some(field(&f, k).to_string()).filter(|v| !v.trim().is_empty());
        let own = |v: Vec<&str>| v.into_iter().map(str::to_string).collect::<Vec<_>>();
        ListQuery {
            states: own(all(&f, "state")),
            queues: own(all(&f, "queue")),
            from: opt("from"),
            to: opt("to"),
            q: opt("q"),
            page: field(&f, "page").parse().unwrap_or(1).clamp(1, MAX_PAGE),
            show_id: ticked(&f, "show_id"),
            show_updated: ticked(&f, "show_updated"),
            done: opt("done"),
        }
    }

    /// The query string of these filters (without the page), for links.
    pub fn link_query(&self) -> String {
        let mut parts = Vec::new();
        parts.extend(
            self.states
                .iter()
                .map(|s| format!("state={}", urlencode(s))),
        );
        parts.extend(
            self.queues
                .iter()
                .map(|s| format!("queue={}", urlencode(s))),
        );
        for (k, v) in [("from", &self.from), ("to", &self.to), ("q", &self.q)] {
            if let Some(v) = non_empty(v) {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        if self.show_id {
            parts.push("show_id=1".into());
        }
        if self.show_updated {
            parts.push("show_updated=1".into());
        }
        parts.join("&")
    }
}

/// One row of the table.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Callback id.
    pub id: String,
    /// GES state.
    pub state: &'static str,
    /// Completion reason, for COMPLETED.
    pub reason: Option<String>,
    /// Desired time (UTC).
    pub desired: String,
    /// Customer number.
    pub phone: String,
    /// Service (virtual queue).
    pub queue: String,
    /// Last change (UTC).
    pub updated: String,
    /// Not finished: cancel and edit apply.
    pub editable: bool,
    /// Finished: recreate applies.
    pub completed: bool,
}

/// The completion reason of a COMPLETED state, as GES names it.
pub fn reason_of(state: CallbackState) -> Option<String> {
    match state {
        CallbackState::Completed(r) => serde_json::to_value(r)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string)),
        _ => None,
    }
}

/// The table row of a record.
pub fn row(r: &CallbackRecord) -> Row {
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

fn compact_phone(p: &str) -> String {
    p.chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect()
}

/// Queues `user` may read, in configuration order.
pub fn readable_queues(s: &ApiState, user: &UiUser) -> Vec<String> {
    s.config
        .spec
        .queues
        .iter()
        .filter(|q| user.user.can_read_queue(&q.name))
        .map(|q| q.name.clone())
        .collect()
}

/// The records of a search by id or phone number.
async fn search(s: &ApiState, user: &UiUser, text: &str) -> Result<Vec<CallbackRecord>, String> {
    let found: Vec<CallbackRecord> = if let Ok(id) = Uuid::parse_str(text) {
        s.callbacks.get(id).await.into_iter().collect()
    } else {
        let phone = compact_phone(text);
        let digits = phone.trim_start_matches('+');
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "“{text}” is neither a callback id nor a phone number."
            ));
        }
        let f = CallbackFilter {
            phone: Some(phone),
            queues: user
                .user
                .queues
                .as_ref()
                .map(|q| q.iter().cloned().collect()),
            limit: PAGE_SIZE,
            ..Default::default()
        };
        read(s, &f).await?
    };
    Ok(found
        .into_iter()
        .filter(|r| user.user.can_read_queue(&r.queue))
        .collect())
}

async fn read(s: &ApiState, f: &CallbackFilter) -> Result<Vec<CallbackRecord>, String> {
    s.store
        .query_callbacks(f)
        .await
        .map_err(|e| format!("The callbacks could not be read: {e}."))
}

/// The store filter of `q`'s filters, bounded by what `user` may read; a problem with a filter
/// as the message to show.
fn filter_of(s: &ApiState, user: &UiUser, q: &ListQuery) -> Result<CallbackFilter, String> {
    for st in &q.states {
        if !STATES.contains(&st.as_str()) {
            return Err(format!(
                "State: “{st}” is not one of {}.",
                STATES.join(", ")
            ));
        }
    }
    for name in &q.queues {
        if s.config.queue(name).is_none() {
            return Err(format!("Service: there is no queue “{name}”."));
        }
        if !user.user.can_read_queue(name) {
            return Err(format!("Service: you may not read queue “{name}”."));
        }
    }
    let time = |v: &Option<String>, what: &str| -> Result<Option<DateTime<Utc>>, String> {
        match non_empty(v) {
            None => Ok(None),
            Some(t) => parse_time(t)
                .map(Some)
                .ok_or_else(|| format!("{what}: “{t}” is not a date and time.")),
        }
    };
    let queues = if q.queues.is_empty() {
        user.user
            .queues
            .as_ref()
            .map(|q| q.iter().cloned().collect())
    } else {
        Some(q.queues.clone())
    };
    Ok(CallbackFilter {
        queues,
        from: time(&q.from, "From")?,
        to: time(&q.to, "To")?,
        ..Default::default()
    })
}

/// The first `limit` callbacks after `offset` matching `f` in any of `states` (none = all), in
/// the store's order (newest desired time first): one query per state, merged.
async fn matching(
    s: &ApiState,
    f: CallbackFilter,
    states: &[String],
    offset: usize,
    limit: usize,
) -> Result<Vec<CallbackRecord>, String> {
    if states.is_empty() || states.len() == STATES.len() {
        return read(s, &CallbackFilter { offset, limit, ..f }).await;
    }
    if states.len() == 1 {
        let state = Some(states[0].clone());
        return read(
            s,
            &CallbackFilter {
                offset,
                limit,
                state,
                ..f
            },
        )
        .await;
    }
    let mut merged = Vec::new();
    for st in states {
        let g = CallbackFilter {
            state: Some(st.clone()),
            limit: offset + limit,
            ..f.clone()
        };
        merged.extend(read(s, &g).await?);
    }
    merged.sort_by(|a, b| b.desired_time.cmp(&a.desired_time).then(b.id.cmp(&a.id)));
    Ok(merged.into_iter().skip(offset).take(limit).collect())
}

/// The rows of one page of `q` (or of the search) and whether more follow.
async fn page_rows(s: &ApiState, user: &UiUser, q: &ListQuery) -> Result<(Vec<Row>, bool), String> {
    if let Some(text) = non_empty(&q.q) {
        return Ok((
            search(s, user, text).await?.iter().map(row).collect(),
            false,
        ));
    }
    let f = filter_of(s, user, q)?;
    // One more than a page: whether a next page exists.
    let mut rows = matching(s, f, &q.states, (q.page - 1) * PAGE_SIZE, PAGE_SIZE + 1).await?;
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    Ok((rows.iter().map(row).collect(), more))
}

/// The Callback tab (the whole page, or only the table for htmx's filter updates).
pub async fn list(
    State(s): State<ApiState>,
    user: UiUser,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = user.require(Permission::ReadCallbacks) {
        return r;
    }
    let q = ListQuery::parse(raw.as_deref());
    let (rows, more, error) = match page_rows(&s, &user, &q).await {
        Ok((rows, more)) => (rows, more, None),
        Err(e) => (Vec::new(), false, Some(e)),
    };
    let notice = match q.done.as_deref() {
        Some("bulk") => Some("Bulk cancel done."),
        _ => None,
    };
    let filters = q.link_query();
    let link = |page: usize| format!("/ui/callbacks?{filters}&page={page}");
    let ctx = context! {
        rows => rows,
        count => rows.len(),
        page => q.page,
        prev => (q.page > 1).then(|| link(q.page - 1)),
        next => more.then(|| link(q.page + 1)),
        export => format!("/ui/callbacks/export.csv?{filters}"),
        filter_error => error,
        notice => notice,
        states => STATES,
        queues => readable_queues(&s, &user),
        q => q,
        ..chrome(&user, "Callback", "/ui/callbacks")
    };
    // htmx asks for the table only when a filter changes.
    let partial = headers.get("hx-target").and_then(|v| v.to_str().ok()) == Some("results");
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let name = if partial {
        "rows.html"
    } else {
        "callbacks.html"
    };
    render_status(status, name, ctx)
}

/// The filtered list (not the search) as a CSV download, the columns the page shows plus the
/// ids and times, newest first, at most [`EXPORT_LIMIT`] rows.
pub async fn export(State(s): State<ApiState>, user: UiUser, RawQuery(raw): RawQuery) -> Response {
    if let Err(r) = user.require(Permission::ExportCallbacks) {
        return r;
    }
    let q = ListQuery::parse(raw.as_deref());
    let found = match non_empty(&q.q) {
        Some(text) => search(&s, &user, text).await,
        None => match filter_of(&s, &user, &q) {
            Ok(f) => matching(&s, f, &q.states, 0, EXPORT_LIMIT).await,
            Err(e) => Err(e),
        },
    };
    let records = match found {
        Ok(r) => r,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, &e, Some(&user)),
    };
    match csv_of(&records) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"callbacks-{}.csv\"",
                        s.clock.now().format("%Y%m%dT%H%M%SZ")
                    ),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => page_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("The export could not be written: {e}."),
            Some(&user),
        ),
    }
}

fn csv_of(records: &[CallbackRecord]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "state",
        "reason",
        "desiredTime",
        "phoneNumber",
        "serviceName",
        "timeUpdated",
    ])?;
    for r in records {
        w.write_record([
            r.id.to_string(),
            r.state.name().to_string(),
            reason_of(r.state).unwrap_or_default(),
            r.desired_time.to_rfc3339(),
            r.phone.clone(),
            r.queue.clone(),
            r.updated_at.to_rfc3339(),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

//! Tools: the Callback Queues page (EWT, waiting, callbacks by state, agents, today's hours,
//! rules in force) refreshed by short polling, the agents with their states, and the audit log.
//!
//! Live figures are polled (htmx `every 5s` on the table) rather than pushed over SSE: the
//! engine's HTTP listener deliberately closes idle connections and caps connections per address
//! (`api.max_connections_per_address`), so a long-lived stream per open tab would eat that cap
//! and need its own exemptions; a poll is one short keep-alive request that renders the same
//! table the page does, and a supervisor's figures are fine 5 s old.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Serialize;
use serde_json::json;

use super::posted::Posted;
use super::{DoneQuery, UiUser, audit as audit_change, chrome, page_error, render};
use crate::api::ApiState;
use crate::routing::StateKind;
use crate::users::Permission;

/// Seconds between two refreshes of the queues table.
pub const POLL_SECONDS: u32 = 5;

/// One queue's figures on the page.
#[derive(Debug, Serialize)]
struct QueueRow {
    name: String,
    ewt: String,
    waiting: usize,
    by_state: BTreeMap<&'static str, usize>,
    logged_in: usize,
    ready: usize,
    busy: usize,
    open_now: bool,
    hours_today: String,
    timezone: String,
    number_rule: Option<String>,
    capacity_rule: bool,
}

fn queue_rows(s: &ApiState, user: &UiUser) -> Vec<QueueRow> {
    let now = s.clock.now();
    let counts = s.callbacks.count_by_queue();
    s.config
        .spec
        .queues
        .iter()
        .filter(|q| user.user.can_read_queue(&q.name))
        .map(|q| {
            let hours = s.config.queue_hours(q);
            let today: Vec<String> = hours
                .today(now)
                .iter()
                .map(|(o, c)| {
                    let (o, c) = (o.format("%H:%M").to_string(), c.format("%H:%M").to_string());
                    // An interval ending at the next midnight reads as 24:00.
                    let c = if c == "00:00" { "24:00".to_string() } else { c };
                    format!("{o}–{c}")
                })
                .collect();
            let agents = s.router.agent_counts(&q.name).unwrap_or_default();
            let ewt = s.router.ewt_for_new(&q.name).ok().flatten();
            let mut by_state: BTreeMap<&'static str, usize> =
                ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING"]
                    .into_iter()
                    .map(|k| (k, 0))
                    .collect();
            if let Some(c) = counts.get(&q.name) {
                by_state.extend(c.iter().map(|(k, v)| (*k, *v)));
            }
            QueueRow {
                name: q.name.clone(),
                ewt: match ewt {
                    Some(d) => format!("{} s", d.num_seconds()),
                    None => "unknown (no agent)".into(),
                },
                waiting: s.router.waiting(&q.name).unwrap_or(0),
                by_state,
                logged_in: agents.logged_in,
                ready: agents.ready,
                busy: agents.busy,
                open_now: hours.is_open(now),
                hours_today: if today.is_empty() {
                    "closed".into()
                } else {
                    today.join(", ")
                },
                timezone: hours.tz.name().to_string(),
                number_rule: s
                    .callbacks
                    .assigned_number_rule(&q.name)
                    .map(|r| r.spec().name.clone()),
                capacity_rule: s.callbacks.has_capacity_rule(&q.name),
            }
        })
        .collect()
}

/// The Callback Queues page (or only its table, for the poll).
pub async fn queues(State(s): State<ApiState>, user: UiUser, headers: HeaderMap) -> Response {
    if let Err(r) = user.require(Permission::UseTools) {
        return r;
    }
    let ctx = context! {
        queues => queue_rows(&s, &user),
        updated => s.clock.now().format("%H:%M:%S UTC").to_string(),
        poll => format!("every {POLL_SECONDS}s"),
        ..chrome(&user, "Callback queues", "/ui/queues")
    };
    let partial = headers.contains_key("hx-request");
    render(
        if partial {
            "queue_table.html"
        } else {
            "queues.html"
        },
        ctx,
    )
}

/// One agent on the page.
#[derive(Debug, Serialize)]
struct AgentRow {
    id: String,
    name: String,
    state: String,
    reason: String,
    phone: bool,
    skills: String,
}

fn state_name(k: StateKind) -> String {
    k.name().to_string()
}

/// Agents with their states (and, for those who may, the buttons to change them).
pub async fn agents(
    State(s): State<ApiState>,
    user: UiUser,
    q: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = user.require(Permission::UseTools) {
        return r;
    }
    let rows: Vec<AgentRow> = s
        .router
        .agents()
        .iter()
        .map(|(_, a)| AgentRow {
            id: a.id.clone(),
            name: a.name.clone(),
            state: state_name(a.state()),
            reason: a.not_ready_reason(),
            phone: a.has_phone(),
            skills: s
                .agent_book
                .get(&a.id)
                .map(|b| {
                    b.spec
                        .skills
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        })
        .collect();
    render(
        "agents.html",
        context! {
            agents => rows,
            notice => DoneQuery::of(q),
            ..chrome(&user, "Agents", "/ui/agents")
        },
    )
}

/// Changes an agent's state as `POST /admin/agents/{id}/state` does.
pub async fn agent_state(State(s): State<ApiState>, Path(id): Path<String>, p: Posted) -> Response {
    let user = &p.user;
    if let Err(r) = user.require(Permission::ManageAgents) {
        return r;
    }
    let state = p.field("state");
    let to = match state {
        "ready" => StateKind::Ready,
        "not_ready" => StateKind::NotReady,
        "logged_out" => StateKind::LoggedOut,
        _ => {
            return page_error(
                StatusCode::BAD_REQUEST,
                "State: one of ready, not_ready, logged_out.",
                Some(user),
            );
        }
    };
    let Ok(idx) = s.router.agents().index_of(&id) else {
        return page_error(
            StatusCode::NOT_FOUND,
            &format!("There is no running agent “{id}”."),
            Some(user),
        );
    };
    let listeners = &s.config.spec.listeners;
    let sip = !(listeners.sip_udp.is_empty() && listeners.sip_tcp.is_empty());
    let agent = s.router.agents().get(idx);
    if to == StateKind::Ready && sip && !agent.has_phone() && agent.state() != StateKind::Ready {
        return page_error(
            StatusCode::CONFLICT,
            &format!(
                "Agent “{id}” has no registered phone: register it before making the agent ready."
            ),
            Some(user),
        );
    }
    if let Err(e) = s.dispatch.request_agent_state(&id, to, None) {
        return page_error(
            StatusCode::CONFLICT,
            &format!("Not changed: {e}."),
            Some(user),
        );
    }
    let detail = json!({ "id": id, "state": state, "via": "ui" });
    audit_change(&s, user, "agent.state", detail).await;
    Redirect::to("/ui/agents?done=changed").into_response()
}

/// The audit log, newest first (Administrators).
pub async fn audit(State(s): State<ApiState>, user: UiUser) -> Response {
    if let Err(r) = user.require(Permission::ReadAudit) {
        return r;
    }
    let f = crate::audit::AuditFilter {
        limit: 200,
        ..Default::default()
    };
    let entries = crate::audit::read(s.store.as_ref(), &f)
        .await
        .unwrap_or_default();
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({
                "at": e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                "user": e.user, "action": e.action, "detail": e.detail.to_string(),
            })
        })
        .collect();
    render(
        "audit.html",
        context! {
            entries => rows,
            ..chrome(&user, "Audit", "/ui/audit")
        },
    )
}

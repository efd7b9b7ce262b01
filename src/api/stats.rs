//! `GET /engagement/v3/statistics`: per queue, what waits and who can serve it (waiting, EWT,
//! eligible agents logged in / ready / busy) and how it went since the engine started
//! (answered, abandoned, service level); and how many agents are in each state.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{ApiState, Q, Reply, ewt_seconds, known_queue, ok};
use crate::routing::StateKind;

/// `GET /statistics` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Comma-separated virtual queues; absent = every queue.
    #[serde(rename = "virtual-queues")]
    pub virtual_queues: Option<String>,
}

/// One queue's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueFigures {
    /// Queue.
    pub virtual_queue: String,
    /// Interactions waiting.
    pub waiting: usize,
    /// EWT of a new arrival in seconds; -1 when no eligible agent is logged in.
    pub estimated_wait_time: i64,
    /// Eligible agents logged in.
    pub agents_logged_in: usize,
    /// Eligible agents ready.
    pub agents_ready: usize,
    /// Eligible agents reserved, on a call or in after-call work.
    pub agents_busy: usize,
    /// Bridged to an agent since start.
    pub answered: u64,
    /// Left before an agent was bridged since start.
    pub abandoned: u64,
    /// Answered within `serviceLevelSeconds` ÷ (answered + abandoned); null before any.
    pub service_level: Option<f64>,
    /// The queue's service-level target.
    pub service_level_seconds: i64,
}

/// Figures of one queue.
pub fn queue_figures(s: &ApiState, name: &str, target: i64) -> QueueFigures {
    let counts = s.router.agent_counts(name).unwrap_or_default();
    let outcomes = s.outcomes(name);
    QueueFigures {
        virtual_queue: name.to_string(),
        waiting: s.router.waiting(name).unwrap_or(0),
        estimated_wait_time: ewt_seconds(s, name),
        agents_logged_in: counts.logged_in,
        agents_ready: counts.ready,
        agents_busy: counts.busy,
        answered: outcomes.answered,
        abandoned: outcomes.abandoned,
        service_level: outcomes.service_level(),
        service_level_seconds: target,
    }
}

/// Agents per state (`logged_out`, `not_ready`, `ready`, `reserved`, `busy`, `after_call_work`).
pub fn agent_states(s: &ApiState) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = [
        StateKind::LoggedOut,
        StateKind::NotReady,
        StateKind::Ready,
        StateKind::Reserved,
        StateKind::Busy,
        StateKind::AfterCallWork,
    ]
    .iter()
    .map(|k| (state_name(*k), 0))
    .collect();
    for (_, a) in s.router.agents().iter() {
        *out.entry(state_name(a.state())).or_default() += 1;
    }
    out
}

/// The snake_case name of an agent state.
pub fn state_name(k: StateKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Real-time statistics per queue and agent-state counts.
#[utoipa::path(get, path = "/statistics", tag = "queues", params(StatsQuery),
    responses((status = 200, description = "`data.queues` and `data.agentStates`"), (status = 400)))]
pub async fn statistics(State(s): State<ApiState>, Q(q): Q<StatsQuery>) -> Reply {
    let names: Vec<String> = match &q.virtual_queues {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
        None => s
            .config
            .spec
            .queues
            .iter()
            .map(|q| q.name.clone())
            .collect(),
    };
    let mut queues = Vec::new();
    for n in &names {
        let spec = known_queue(&s, n, "virtual-queues")?;
        queues.push(queue_figures(&s, n, spec.service_level_seconds));
    }
    Ok(ok(
        serde_json::json!({ "queues": queues, "agentStates": agent_states(&s) }),
    ))
}

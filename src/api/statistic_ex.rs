//! `POST /statistics/operations/get-statistic-ex`, GES's statistics proxy, answered from the
//! engine's own live figures instead of a GWS: per virtual queue, what waits, the EWT, eligible
//! agents by state, outcomes since start and callbacks by state; and agents by state. The
//! request names statistics as GES/GMS do (`objectId`, `objectType`, `statisticType`); a
//! `cache-control: max-age=N` header must have N ≥ 15 (the figures are always fresh).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::stats::{agent_states, queue_figures};
use super::{ApiError, ApiState, Body, Reply, known_queue, ok};

/// Smallest `max-age` GES accepts, in seconds.
pub const MIN_MAX_AGE: u64 = 15;

/// At most this many statistics per request.
pub const MAX_STATISTICS: usize = 100;

/// Statistic types of a virtual queue (`objectType` `Queue`), with what each is.
pub const QUEUE_STATISTICS: &[(&str, &str)] = &[
    ("CurrNumberWaitingCalls", "interactions waiting now"),
    (
        "ExpectedWaitTime",
        "EWT of a new arrival, seconds, -1 when unknown",
    ),
    ("CurrNumberLoggedInAgents", "eligible agents logged in"),
    ("CurrNumberReadyAgents", "eligible agents ready"),
    (
        "CurrNumberBusyAgents",
        "eligible agents reserved, talking or in after-call work",
    ),
    (
        "TotalNumberCallsAnswered",
        "bridged to an agent since start",
    ),
    (
        "TotalNumberCallsAbandoned",
        "left before an agent since start",
    ),
    (
        "ServiceFactor",
        "answered within the service-level time ÷ offered; null before any",
    ),
    (
        "CallbacksByState",
        "unfinished callbacks per state (SCHEDULED, QUEUED, ROUTING, PROCESSING)",
    ),
];

/// Statistic types of the whole engine (`objectType` `Tenant`).
pub const TENANT_STATISTICS: &[(&str, &str)] = &[("AgentsByState", "agents per state")];

/// One statistic asked for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatisticRequest {
    /// The virtual queue (`Queue`) or any name (`Tenant`).
    pub object_id: String,
    /// `Queue` or `Tenant`.
    pub object_type: String,
    /// One of the statistic types of the object type.
    #[serde(alias = "metric")]
    pub statistic_type: String,
}

/// The request body: a list of statistics, or one given inline.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StatisticsBody {
    /// `{"statistics":[…]}`.
    Many {
        /// The statistics.
        statistics: Vec<StatisticRequest>,
    },
    /// `{"objectId","objectType","statisticType"}`.
    One(StatisticRequest),
}

/// The `max-age` of a `cache-control` header, checked (≥ 15 s, as GES requires).
fn check_max_age(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(v) = headers.get(axum::http::header::CACHE_CONTROL) else {
        return Ok(());
    };
    let text = v.to_str().unwrap_or_default();
    let age = text
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .next();
    match age.map(str::parse::<u64>) {
        None => Ok(()),
        Some(Ok(n)) if n >= MIN_MAX_AGE => Ok(()),
        _ => Err(ApiError::bad_request(format!(
            "cache-control: max-age must be a number of seconds of at least {MIN_MAX_AGE}"
        ))),
    }
}

fn known(list: &[(&str, &str)]) -> String {
    list.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The value of one statistic.
fn value(s: &ApiState, r: &StatisticRequest) -> Result<Value, ApiError> {
    match r.object_type.as_str() {
        "Queue" => {
            let spec = known_queue(s, &r.object_id, "objectId")?;
            let f = queue_figures(s, &r.object_id, spec.service_level_seconds);
            Ok(match r.statistic_type.as_str() {
                "CurrNumberWaitingCalls" => json!(f.waiting),
                "ExpectedWaitTime" => json!(f.estimated_wait_time),
                "CurrNumberLoggedInAgents" => json!(f.agents_logged_in),
                "CurrNumberReadyAgents" => json!(f.agents_ready),
                "CurrNumberBusyAgents" => json!(f.agents_busy),
                "TotalNumberCallsAnswered" => json!(f.answered),
                "TotalNumberCallsAbandoned" => json!(f.abandoned),
                "ServiceFactor" => json!(f.service_level),
                "CallbacksByState" => {
                    let mut m: BTreeMap<&str, usize> =
                        ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING"]
                            .into_iter()
                            .map(|k| (k, 0))
                            .collect();
                    m.extend(s.callbacks.count_by_state(&r.object_id));
                    json!(m)
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "statisticType: `{other}` is not a Queue statistic ({})",
                        known(QUEUE_STATISTICS)
                    )));
                }
            })
        }
        "Tenant" => match r.statistic_type.as_str() {
            "AgentsByState" => Ok(json!(agent_states(s))),
            other => Err(ApiError::bad_request(format!(
                "statisticType: `{other}` is not a Tenant statistic ({})",
                known(TENANT_STATISTICS)
            ))),
        },
        other => Err(ApiError::bad_request(format!(
            "objectType: `{other}` is not Queue or Tenant"
        ))),
    }
}

/// Live statistics in the GES statistics-proxy shape: `data.statistics`, one entry per asked
/// statistic with its `value` and `timestamp` (epoch ms).
#[utoipa::path(post, path = "/statistics/operations/get-statistic-ex", tag = "queues",
    request_body = StatisticsBody,
    responses((status = 200, description = "`data.statistics[]` with `value` and `timestamp`"), (status = 400), (status = 401)))]
pub(crate) async fn get_statistic_ex(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Body(b): Body<StatisticsBody>,
) -> Reply {
    check_max_age(&headers)?;
    let list = match b {
        StatisticsBody::Many { statistics } => statistics,
        StatisticsBody::One(r) => vec![r],
    };
    if list.is_empty() || list.len() > MAX_STATISTICS {
        return Err(ApiError::bad_request(format!(
            "statistics: ask for 1 to {MAX_STATISTICS} statistics"
        )));
    }
    let now = s.clock.now().timestamp_millis();
    let mut out = Vec::with_capacity(list.len());
    for r in &list {
        out.push(json!({
            "objectId": r.object_id,
            "objectType": r.object_type,
            "statisticType": r.statistic_type,
            "value": value(&s, r)?,
            "timestamp": now,
        }));
    }
    Ok(ok(json!({ "statistics": out })))
}

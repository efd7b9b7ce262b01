//! Post-call survey answers over HTTP: `GET /admin/surveys.csv` exports them, one line per
//! answer (roles that may export callbacks: Administrator, Supervisor), of the queues the user
//! may read. The answers themselves are `crate::flow::survey`.

use serde::Deserialize;
use uuid::Uuid;

use super::auth::{Admin, Permission};
use crate::api::{ApiError, Q, Reply};
use crate::flow::survey;

/// `GET /admin/surveys.csv` filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SurveyQuery {
    /// Only this survey's answers (its name).
    pub survey: Option<String>,
    /// Only the answers given on this callback's call.
    pub callback_id: Option<Uuid>,
}

/// Survey answers of the user's queues as CSV, oldest first.
#[utoipa::path(get, path = "/surveys.csv", tag = "admin", params(SurveyQuery),
    responses((status = 200, content_type = "text/csv", description = "responseId, at, survey, callId, ani, queue, agent, callbackId, question, answer"), (status = 403)))]
pub async fn export(Admin { s, user }: Admin, Q(q): Q<SurveyQuery>) -> Reply {
    user.require(Permission::ExportCallbacks)?;
    let all = survey::list(s.store.as_ref())
        .await
        .map_err(|e| ApiError::internal(format!("reading survey answers: {e}")))?;
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|r| q.survey.as_ref().is_none_or(|n| &r.survey == n))
        .filter(|r| q.callback_id.is_none_or(|c| r.callback_id == Some(c)))
        .filter(|r| user.can_read_queue(&r.queue))
        .collect();
    let bytes =
        survey::csv(&chosen).map_err(|e| ApiError::internal(format!("writing CSV: {e}")))?;
    Ok(super::attachment(
        "text/csv; charset=utf-8",
        "surveys.csv",
        bytes,
    ))
}

//! Post-call surveys: after the agent hangs up on a caller still on the line, the survey route
//! point — the callback's `surveyRP`, else the routed queue's `survey_route_point` — runs its
//! flow on the caller, whose `survey` blocks store the answers (store documents of kind
//! `survey_response`, with the call, the queue, the agent and the callback), exported as CSV.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::expr::Value;
use super::interpreter::{Cx, Step, system_variables};
use crate::store::{Store, StoreError};

/// Store document kind of one caller's answers.
pub const DOC_KIND: &str = "survey_response";

/// One answered question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The question's id.
    pub question: String,
    /// 1 to 5, or `None` when the caller gave no valid answer.
    pub answer: Option<u8>,
}

/// One caller's answers to one survey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyResponse {
    /// Its id.
    pub id: Uuid,
    /// When the survey ended.
    pub at: DateTime<Utc>,
    /// The survey's name.
    pub survey: String,
    /// The call (SIP Call-ID).
    pub call_id: String,
    /// The caller's number.
    pub ani: String,
    /// The queue the caller was routed in.
    pub queue: String,
    /// The agent they talked to.
    pub agent: String,
    /// The callback the call served, if any.
    pub callback_id: Option<Uuid>,
    /// The answers in question order.
    pub answers: Vec<Answer>,
}

/// Stores a response.
pub async fn save(store: &dyn Store, r: &SurveyResponse) -> Result<(), StoreError> {
    let doc = crate::store::Document::of(DOC_KIND, &r.id.to_string(), r)?;
    store.save_documents(vec![doc]).await
}

/// Every stored response, oldest first.
pub async fn list(store: &dyn Store) -> Result<Vec<SurveyResponse>, StoreError> {
    let mut v: Vec<SurveyResponse> = crate::store::documents_as(store, DOC_KIND).await?;
    v.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
    Ok(v)
}

/// The responses as CSV, one line per answer.
pub fn csv(responses: &[SurveyResponse]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "responseId",
        "at",
        "survey",
        "callId",
        "ani",
        "queue",
        "agent",
        "callbackId",
        "question",
        "answer",
    ])?;
    for r in responses {
        for a in &r.answers {
            w.write_record([
                r.id.to_string(),
                r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                r.survey.clone(),
                r.call_id.clone(),
                r.ani.clone(),
                r.queue.clone(),
                r.agent.clone(),
                r.callback_id.map(|c| c.to_string()).unwrap_or_default(),
                a.question.clone(),
                a.answer.map(|n| n.to_string()).unwrap_or_default(),
            ])?;
        }
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// After a conversation the agent ended, runs the survey route point's flow on the caller
/// (still on the line); `None` when there is no survey for this call.
pub async fn after_agent(cx: &mut Cx<'_>, queue: &str, agent: &str) -> Option<Step> {
    let s = cx.services;
    let var = |k: &str| {
        cx.vars
            .get(k)
            .map(Value::to_string)
            .filter(|v| !v.is_empty())
    };
    let callback_queue = var("callback.queue");
    let rp = var("callback.survey_rp")
        .or_else(|| {
            s.config
                .queue(queue)
                .and_then(|q| q.survey_route_point.clone())
        })
        .or_else(|| {
            callback_queue
                .and_then(|q| s.config.queue(&q))
                .and_then(|q| q.survey_route_point.clone())
        })?;
    let flows = s.flows.get()?;
    let Some(flow) = flows.get().for_number(&s.config, &rp) else {
        tracing::warn!(route_point = %rp, "survey route point has no flow: no survey");
        return None;
    };
    let mut vars = system_variables(cx.leg.as_ref(), &rp);
    vars.insert("survey.queue".into(), Value::Str(queue.to_string()));
    vars.insert("survey.agent".into(), Value::Str(agent.to_string()));
    if let Some(sv) = &cx.serving {
        vars.insert("callback.id".into(), Value::Str(sv.callback.to_string()));
    }
    cx.outcome(format!("the agent hung up: survey {} ({rp})", flow.name));
    cx.then_run(flow, vars);
    Some(Step::End(crate::flow::model::EndCause::Normal))
}

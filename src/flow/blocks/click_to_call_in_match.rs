//! Click-to-Call-In Match: finds the caller's pending call-in request by access code, ANI and
//! DNIS, and exposes the original request's routing parameters for Route Call.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::callin::{CallFacts, MatchCriteria, MatchFailure};
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Serving, Step};
use crate::flow::model::AppKind;

/// A Click-to-Call-In match criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// The code the caller entered.
    AccessCode,
    /// The calling number.
    Ani,
    /// The dialled number.
    Dnis,
}

fn match_var() -> String {
    "match".into()
}
fn access_code_var() -> String {
    "access_code".into()
}

/// Click-to-Call-In Match: recognises a caller who asked for a number to call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClickToCallInMatch {
    /// Block id.
    pub id: Option<String>,
    /// Block to run when the taken branch has no target.
    pub next: Option<String>,
    /// What to compare (at least one).
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub criteria: Vec<Criterion>,
    /// Variable holding the code a User Input block collected.
    #[serde(default = "access_code_var")]
    pub access_code_variable: String,
    /// Prefix of the result variables (`match.matched`, `match.queue`, …).
    #[serde(default = "match_var")]
    pub result: String,
    /// Block when matched.
    pub on_matched: Option<String>,
    /// Block when not matched.
    pub on_no_match: Option<String>,
    /// Block when this caller made too many wrong attempts (default: `on_no_match`).
    pub on_blocked: Option<String>,
    /// Block when the request matched but has nowhere to route the call (it is kept for a
    /// later call; default: `on_no_match`); play an apology there.
    pub on_unroutable: Option<String>,
}

impl BlockType for ClickToCallInMatch {
    id_and_next!();

    branches!(on_matched, on_no_match, on_blocked, on_unroutable);

    // `on_blocked` and `on_unroutable` default to `on_no_match`.
    fn falls_through(&self, _kind: AppKind) -> bool {
        self.on_matched.is_none() || self.on_no_match.is_none()
    }

    fn check(&self, c: &mut BlockCheck<'_>) {
        if c.kind == AppKind::Callback {
            c.at(
                "type",
                "click_to_call_in_match runs on inbound calls: use it in a Default application",
            );
        }
        if self.criteria.is_empty() {
            c.at("criteria", "give at least one of access_code, ani, dnis");
        }
        let set: BTreeSet<_> = self.criteria.iter().map(|c| format!("{c:?}")).collect();
        if set.len() != self.criteria.len() {
            c.at("criteria", "a criterion is listed twice");
        }
        c.var_name("access_code_variable", &self.access_code_variable);
        c.var_name("result", &self.result);
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

async fn run(b: &ClickToCallInMatch, cx: &mut Cx<'_>) -> Step {
    let criteria = MatchCriteria {
        access_code: b.criteria.contains(&Criterion::AccessCode),
        ani: b.criteria.contains(&Criterion::Ani),
        dnis: b.criteria.contains(&Criterion::Dnis),
    };
    let text = |cx: &Cx<'_>, k: &str| cx.vars.get(k).map(|v| v.to_string()).unwrap_or_default();
    let code = text(cx, &b.access_code_variable);
    let facts = CallFacts {
        dnis: text(cx, "dnis"),
        ani: text(cx, "ani"),
        access_code: (!code.is_empty()).then_some(code),
    };
    let r = &b.result;
    match cx.services.match_call_in(criteria, &facts) {
        Ok(req) => {
            // Checked before the request was used up; a callback that ended since then
            // leaves the request's own routing.
            let target = cx.services.call_in_target(&req).ok();
            let queue = target
                .as_ref()
                .map(|t| t.queue.clone())
                .or_else(|| req.routing.queue.clone())
                .unwrap_or_default();
            cx.set(&format!("{r}.matched"), true);
            cx.set(&format!("{r}.request_id"), req.id.to_string());
            cx.set(&format!("{r}.queue"), queue.clone());
            cx.set(
                &format!("{r}.skill_expression"),
                req.routing.skill_expression.clone().unwrap_or_default(),
            );
            cx.set(&format!("{r}.priority"), req.routing.priority);
            if let Some(cb) = req.callback_id {
                cx.set(&format!("{r}.callback_id"), cb.to_string());
            }
            // Delayed: the caller is the customer of a callback. They keep its place and
            // priority, and the call that follows serves it (completed with AGENT).
            if let Some(rec) = target.and_then(|t| t.callback) {
                crate::ops::logging::record_callback(&rec.id);
                if let Err(e) = cx.services.customer_called_in(rec.id).await {
                    tracing::warn!(callback = %rec.id, error = %e, "call-in: callback not marked routing");
                }
                cx.set(
                    &format!("{r}.priority"),
                    rec.priority.max(req.routing.priority),
                );
                cx.serving = Some(Serving {
                    callback: rec.id,
                    place: rec.queue_time,
                });
            }
            for (k, v) in &req.routing.user_data {
                cx.set(&format!("{r}.user_data.{k}"), v.clone());
            }
            cx.outcome(format!("matched request for queue {queue}"));
            Step::Branch(b.on_matched.clone())
        }
        Err(e) => {
            cx.set(&format!("{r}.matched"), false);
            cx.set(&format!("{r}.failure"), e.to_string());
            cx.outcome(format!("no match ({e})"));
            if e == MatchFailure::Unroutable {
                cx.outcome(format!("cannot route ({e})"));
                return Step::Branch(b.on_unroutable.clone().or_else(|| b.on_no_match.clone()));
            }
            if e == MatchFailure::TooManyAttempts {
                tracing::warn!(ani = %facts.ani, "call-in: too many wrong access codes");
                return Step::Branch(b.on_blocked.clone().or_else(|| b.on_no_match.clone()));
            }
            Step::Branch(b.on_no_match.clone())
        }
    }
}

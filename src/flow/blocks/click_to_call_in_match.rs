//! Click-to-Call-In Match: finds the caller's pending call-in request by access code, ANI and
//! DNIS, and exposes the original request's routing parameters for Route Call.

use crate::callin::{CallFacts, MatchCriteria, MatchFailure};
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{ClickToCallInMatch, Criterion};

/// Runs the block.
pub fn run(b: &ClickToCallInMatch, cx: &mut Cx<'_>) -> Step {
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
            cx.set(&format!("{r}.matched"), true);
            cx.set(&format!("{r}.request_id"), req.id.to_string());
            cx.set(
                &format!("{r}.queue"),
                req.routing.queue.clone().unwrap_or_default(),
            );
            cx.set(
                &format!("{r}.skill_expression"),
                req.routing.skill_expression.clone().unwrap_or_default(),
            );
            cx.set(&format!("{r}.priority"), req.routing.priority);
            if let Some(cb) = req.callback_id {
                cx.set(&format!("{r}.callback_id"), cb.to_string());
            }
            for (k, v) in &req.routing.user_data {
                cx.set(&format!("{r}.user_data.{k}"), v.clone());
            }
            cx.outcome(format!(
                "matched request for queue {}",
                req.routing.queue.as_deref().unwrap_or("-")
            ));
            Step::Branch(b.on_matched.clone())
        }
        Err(e) => {
            cx.set(&format!("{r}.matched"), false);
            cx.set(&format!("{r}.failure"), e.to_string());
            cx.outcome(format!("no match ({e})"));
            if e == MatchFailure::TooManyAttempts {
                tracing::warn!(ani = %facts.ani, "call-in: too many wrong access codes");
                return Step::Branch(b.on_blocked.clone().or_else(|| b.on_no_match.clone()));
            }
            Step::Branch(b.on_no_match.clone())
        }
    }
}

//! Click-to-Call-In Match: finds the caller's pending call-in request by access code, ANI and
//! DNIS, and exposes the original request's routing parameters for Route Call.

use std::collections::{BTreeMap, BTreeSet};

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
    /// What to compare (at least one).
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub criteria: Vec<Criterion>,
    /// Variable holding the code a User Input block collected.
    #[serde(default = "access_code_var")]
    pub access_code_variable: String,
    /// Prefix of the result variables (`match.matched`, `match.queue`, …).
    #[serde(default = "match_var")]
    pub result: String,
    /// Block when matched by every criterion.
    pub on_matched: Option<String>,
    /// Designer's outcome per combination of matched criteria: a combination such as
    /// `access_code+dnis` (a strict subset of `criteria`, joined with `+`) → the block when the
    /// request matched by those criteria only. Tried after the full match, larger
    /// combinations first; a combination not listed is no match.
    #[serde(default)]
    pub outcomes: BTreeMap<String, String>,
    /// Block when not matched.
    pub on_no_match: Option<String>,
    /// Block when this caller made too many wrong attempts (default: `on_no_match`).
    pub on_blocked: Option<String>,
    /// Block when the request matched but has nowhere to route the call (it is kept for a
    /// later call; default: `on_no_match`); play an apology there.
    pub on_unroutable: Option<String>,
}

impl BlockType for ClickToCallInMatch {
    const NEXT: Option<&'static str> = Some("Block to run when the taken branch has no target.");

    fn branches(&self) -> Vec<(String, String)> {
        let mut out = super::targets(&[
            ("on_matched", &self.on_matched),
            ("on_no_match", &self.on_no_match),
            ("on_blocked", &self.on_blocked),
            ("on_unroutable", &self.on_unroutable),
        ]);
        for (k, t) in &self.outcomes {
            out.push((format!("outcomes.{k}"), t.clone()));
        }
        out
    }

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
        let mut seen = BTreeSet::new();
        let outcomes = c.node.get("outcomes").cloned();
        for key in self.outcomes.keys() {
            let pos = c.key_pos(outcomes.as_ref(), key);
            let path = format!("{}.outcomes.{key}", c.path);
            match combination(key) {
                Err(msg) => c.err(pos, &path, msg),
                Ok(combo) => {
                    if let Some(extra) = combo.iter().find(|k| !self.criteria.contains(k)) {
                        c.err(
                            pos,
                            &path,
                            format!("{} is not among `criteria`", name(*extra)),
                        );
                    } else if combo.len() == self.criteria.len() {
                        c.err(pos, &path, "every criterion matched: that is `on_matched`");
                    } else if !seen.insert(combination_name(&combo)) {
                        c.err(pos, &path, "this combination is listed twice");
                    }
                }
            }
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

/// The YAML name of a criterion.
fn name(c: Criterion) -> &'static str {
    match c {
        Criterion::AccessCode => "access_code",
        Criterion::Ani => "ani",
        Criterion::Dnis => "dnis",
    }
}

/// The criteria of a combination key such as `ani+dnis`, in the canonical order.
fn combination(key: &str) -> Result<Vec<Criterion>, String> {
    let mut out = Vec::new();
    for part in key.split('+') {
        let c = match part.trim() {
            "access_code" => Criterion::AccessCode,
            "ani" => Criterion::Ani,
            "dnis" => Criterion::Dnis,
            other => {
                return Err(format!(
                    "`{other}` is not a criterion: a combination is access_code, ani and dnis joined with `+`"
                ));
            }
        };
        if out.contains(&c) {
            return Err(format!("{} is named twice", name(c)));
        }
        out.push(c);
    }
    out.sort_by_key(|c| *c as u8);
    Ok(out)
}

/// The canonical name of a combination (`access_code+ani+dnis` order).
fn combination_name(combo: &[Criterion]) -> String {
    let mut v: Vec<Criterion> = combo.to_vec();
    v.sort_by_key(|c| *c as u8);
    v.iter().map(|c| name(*c)).collect::<Vec<_>>().join("+")
}

fn criteria_of(combo: &[Criterion]) -> MatchCriteria {
    MatchCriteria {
        access_code: combo.contains(&Criterion::AccessCode),
        ani: combo.contains(&Criterion::Ani),
        dnis: combo.contains(&Criterion::Dnis),
    }
}

fn combo_of(m: MatchCriteria) -> Vec<Criterion> {
    [
        (m.access_code, Criterion::AccessCode),
        (m.ani, Criterion::Ani),
        (m.dnis, Criterion::Dnis),
    ]
    .into_iter()
    .filter_map(|(on, c)| on.then_some(c))
    .collect()
}

async fn run(b: &ClickToCallInMatch, cx: &mut Cx<'_>) -> Step {
    // The full match first, then the listed combinations, larger ones first.
    let mut partial: Vec<(Vec<Criterion>, &String)> = b
        .outcomes
        .iter()
        .filter_map(|(k, t)| combination(k).ok().map(|c| (c, t)))
        .collect();
    partial.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
    let mut combos = vec![criteria_of(&b.criteria)];
    combos.extend(partial.iter().map(|(c, _)| criteria_of(c)));
    let text = |cx: &Cx<'_>, k: &str| cx.vars.get(k).map(|v| v.to_string()).unwrap_or_default();
    let code = text(cx, &b.access_code_variable);
    let facts = CallFacts {
        dnis: text(cx, "dnis"),
        ani: text(cx, "ani"),
        access_code: (!code.is_empty()).then_some(code),
    };
    let r = &b.result;
    match cx.services.match_call_in(&combos, &facts) {
        Ok((req, by)) => {
            let by = combo_of(by);
            let full = by.len() == b.criteria.len();
            let by_name = combination_name(&by);
            cx.set(&format!("{r}.matched_criteria"), by_name.clone());
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
            if full {
                cx.outcome(format!("matched request for queue {queue}"));
                return Step::Branch(b.on_matched.clone());
            }
            cx.outcome(format!(
                "matched request for queue {queue} by {by_name} only"
            ));
            Step::Branch(
                partial
                    .iter()
                    .find(|(c, _)| *c == by)
                    .map(|(_, t)| (*t).clone()),
            )
        }
        Err(e) => {
            cx.set(&format!("{r}.matched"), false);
            cx.set(&format!("{r}.matched_criteria"), "");
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

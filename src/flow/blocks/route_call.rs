//! Route Call: queues the caller for a skilled, ready agent, plays hold music with optional
//! EWT/position announcements, connects caller and agent, and branches on the result.

use std::sync::Arc;

use chrono::TimeDelta;
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::BlockType;
use super::queue_offer;
use crate::call::{PlayItem, PlayOptions};
use crate::flow::check::{BlockCheck, value_pos};
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, EndCause, ExprText, num};
use crate::flow::services::AgentConnect;
use crate::routing::WaitRules;
use crate::routing::growth::{PriorityGrowth, Relaxation, relaxable};
use crate::routing::skills;
use crate::yaml;

/// Route Call: queue the caller for an agent and connect them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteCall {
    /// Virtual queue by name.
    pub queue: Option<String>,
    /// Or an expression giving it (e.g. `match.queue`).
    pub queue_from: Option<ExprText>,
    /// Extra skill requirement of this call (checked at load).
    pub skill_expression: Option<String>,
    /// Or an expression giving it (e.g. `match.skill_expression`); an empty or invalid value
    /// adds no requirement (logged).
    pub skill_expression_from: Option<ExprText>,
    /// Priority (expression; default 0): the initial one when `priority_growth` is given.
    pub priority: Option<ExprText>,
    /// Priority growth while waiting: `increment` every `every_seconds`, up to `limit`
    /// (default: the queue's `priority_growth`, else none).
    pub priority_growth: Option<PriorityGrowth>,
    /// Skill relaxation while waiting: each `>=`/`>` level of the skill expression lowered by
    /// `step` every `every_seconds`, not below `min_level`.
    pub relax_skills: Option<Relaxation>,
    /// Seconds to wait for an agent (1 to 86400, default 300).
    #[serde(default = "num::<300>")]
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_seconds: u32,
    /// Looped while waiting.
    pub hold_music: Option<String>,
    /// Announce the estimated wait.
    #[serde(default)]
    pub announce_ewt: bool,
    /// Announce the position in queue.
    #[serde(default)]
    pub announce_position: bool,
    /// Seconds between announcements (10 to 3600, default 60).
    #[serde(default = "num::<60>")]
    #[schemars(range(min = 10, max = 3600))]
    pub announce_every_seconds: u32,
    /// Block after the agent conversation ended (default: end the call).
    pub on_connected: Option<String>,
    /// Block when no agent was found in time.
    pub on_timeout: Option<String>,
    /// Offer a callback keeping the caller's place while they wait with a long EWT.
    pub offer_callback: Option<super::queue_offer::OfferCallback>,
    /// Block after the caller accepted the in-queue callback offer (default: end the call).
    pub on_callback_accepted: Option<String>,
}

impl BlockType for RouteCall {
    const NEXT: Option<&'static str> = Some("Block to run when the taken branch has no target.");

    branches!(on_connected, on_timeout, on_callback_accepted);

    // Connected without `on_connected` ends the call.
    fn falls_through(&self, _kind: AppKind) -> bool {
        self.on_timeout.is_none()
    }

    const WAITS: bool = true;

    fn check(&self, c: &mut BlockCheck<'_>) {
        match (&self.queue, &self.queue_from) {
            (Some(q), None) => c.queue("queue", q),
            (None, Some(e)) => c.expr("queue_from", e),
            _ => c.block_err("give exactly one of `queue` and `queue_from`"),
        }
        if let Some(s) = &self.skill_expression
            && let Err(e) = skills::Expr::parse(s)
        {
            c.inside(
                "skill_expression",
                e.column.saturating_sub(1),
                format!("skill expression: {}", e.message),
            );
        }
        if self.skill_expression.is_some() && self.skill_expression_from.is_some() {
            c.at(
                "skill_expression_from",
                "give at most one of `skill_expression` and `skill_expression_from`",
            );
        }
        if let Some(e) = &self.skill_expression_from {
            c.expr("skill_expression_from", e);
        }
        if let Some(p) = &self.priority {
            c.expr("priority", p);
        }
        if let Some((field, msg)) = self.priority_growth.and_then(|g| g.problem()) {
            nested_err(c, "priority_growth", field, msg);
        }
        if let Some(r) = &self.relax_skills {
            if let Some((field, msg)) = r.problem() {
                nested_err(c, "relax_skills", field, msg);
            }
            match self.skill_expression.as_deref().map(skills::Expr::parse) {
                Some(Ok(e)) if !relaxable(&e) => c.at_key(
                    "relax_skills",
                    "`relax_skills` needs a `>=` or `>` level in `skill_expression` to lower",
                ),
                None if self.skill_expression_from.is_none() => c.at_key(
                    "relax_skills",
                    "`relax_skills` needs `skill_expression` or `skill_expression_from`",
                ),
                _ => {}
            }
        }
        c.range("timeout_seconds", self.timeout_seconds, 1, 86_400);
        c.range(
            "announce_every_seconds",
            self.announce_every_seconds,
            10,
            3600,
        );
        if let Some(o) = &self.offer_callback {
            o.check(c);
        } else if self.on_callback_accepted.is_some() {
            c.at_key(
                "on_callback_accepted",
                "`on_callback_accepted` needs `offer_callback`",
            );
        }
        if let Some(m) = &self.hold_music {
            let pos = value_pos(c.node, "hold_music");
            c.prompt_name(pos, &yaml::join(c.path, "hold_music"), m);
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

/// The hold music loop of a waiting caller (pending forever without music).
type Hold = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

fn hold_music(leg: Arc<dyn crate::call::CallLeg>, music: Option<String>) -> Hold {
    Box::pin(async move {
        match music {
            Some(m) => {
                let opts = PlayOptions {
                    barge_in: false,
                    looped: true,
                };
                let _ = leg.play(&[PlayItem::Prompt(m)], &opts).await;
            }
            None => std::future::pending::<()>().await,
        }
    })
}

/// A problem with `field` of the sub-mapping `key`, shown at that field's value.
fn nested_err(c: &mut BlockCheck<'_>, key: &str, field: &str, msg: String) {
    let map = c.node.get(key);
    let pos = map
        .and_then(|m| m.get(field))
        .map(|n| n.pos)
        .unwrap_or_else(|| value_pos(c.node, key));
    let path = yaml::join(&yaml::join(c.path, key), field);
    c.err(pos, path, msg);
}

async fn run(b: &RouteCall, cx: &mut Cx<'_>) -> Step {
    let queue = match (&b.queue, &b.queue_from) {
        (Some(q), _) => q.clone(),
        (None, Some(e)) => cx.eval(e).to_string(),
        (None, None) => String::new(),
    };
    let priority = b
        .priority
        .as_ref()
        .and_then(|p| cx.eval(p).as_num())
        .unwrap_or(0.0) as i64;
    let services = cx.services;
    let clock = services.clock.clone();
    let serving_id = cx.serving.as_ref().map(|s| s.callback);
    let id = serving_id.unwrap_or_else(Uuid::new_v4);
    let entered = clock.now();
    // A reached callback customer keeps the callback's place (and, through the flow's
    // `priority`, its priority): they take the next ready agent ahead of those behind them.
    let place = cx
        .serving
        .as_ref()
        .map_or(entered, |s| s.place.min(entered));
    let computed = b
        .skill_expression_from
        .as_ref()
        .map(|e| cx.eval(e).to_string());
    let requirement = b
        .skill_expression
        .as_deref()
        .or(computed.as_deref())
        .filter(|e| !e.trim().is_empty());
    // A computed expression that does not parse adds no requirement (logged once here).
    let requirement = requirement.filter(|e| match crate::routing::skills::Expr::parse(e) {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(expression = e, error = %err, "Route Call: skill requirement ignored");
            false
        }
    });
    let rules = WaitRules {
        requirement,
        relax: b.relax_skills.filter(|_| requirement.is_some()),
        growth: b.priority_growth,
    };
    let mut rx = match services.queue_call_with(&queue, id, priority, place, &rules) {
        Ok(rx) => rx,
        Err(e) => {
            cx.set("route.result", "error");
            cx.outcome(format!("cannot queue: {e}"));
            return Step::Branch(b.on_timeout.clone());
        }
    };
    let router = services.dispatch.router();
    let position = router.position_at(&queue, id, entered).ok().flatten();
    // 1 = next in line; 0 when an agent was assigned at once.
    cx.set(
        "route.position",
        position.map(|p| p as i64 + 1).unwrap_or(0),
    );
    let ewt = router.ewt(&queue, position.unwrap_or(0));
    cx.set(
        "route.ewt",
        ewt.ok().flatten().map(|e| e.num_seconds()).unwrap_or(-1),
    );
    let deadline = entered + TimeDelta::seconds(b.timeout_seconds.into());
    let announce = b.announce_ewt || b.announce_position;
    let every = TimeDelta::seconds(b.announce_every_seconds.into());
    let mut next_announce = entered + every;
    let offer_every = b
        .offer_callback
        .as_ref()
        .map(|o| TimeDelta::seconds(o.every_seconds.into()));
    let mut next_offer = offer_every.map(|e| entered + e);
    let mut music = b.hold_music.clone();
    let leg: Arc<_> = cx.leg.clone();
    let data = cx.call_data.clone();
    // The hold music playing, kept across wake-ups that do not interrupt it (relaxations).
    let mut hold: Option<Hold> = None;
    let ring = TimeDelta::seconds(
        services
            .config
            .queue(&queue)
            .map_or(20, |q| q.ring_timeout_seconds.max(1)),
    );
    'wait: loop {
        let mut wake = if announce {
            deadline.min(next_announce)
        } else {
            deadline
        };
        if let Some(at) = next_offer {
            wake = wake.min(at);
        }
        // A relaxing requirement changes at known instants: wake then to offer the call to
        // agents who meet the relaxed one (see routing::router::relax).
        if rules.relax.is_some()
            && let Some(at) = router.next_relax()
        {
            wake = wake.min(at);
        }
        let playing = hold.get_or_insert_with(|| hold_music(leg.clone(), music.clone()));
        // In a cluster, an agent homed on another node may serve the caller (its home decides).
        let remote = async {
            match services.dispatch.remote().filter(|_| requirement.is_none()) {
                Some(r) => {
                    let w = crate::cluster::asker::Waiter {
                        dispatch: &services.dispatch,
                        queue: &queue,
                        id,
                        entered,
                        ring,
                    };
                    r.find(w).await
                }
                None => std::future::pending().await,
            }
        };
        let a = tokio::select! {
            a = &mut rx => {
                let Ok(a) = a else {
                    leg.stop_playing();
                    services.leave_queue(&queue, id);
                    cx.set("route.result", "timeout");
                    cx.outcome("no agent");
                    return Step::Branch(b.on_timeout.clone());
                };
                a
            }
            a = remote => a,
            _ = clock.sleep_until(wake) => { 'woke: {
                let now = clock.now();
                if now >= deadline {
                    leg.stop_playing();
                    services.leave_queue(&queue, id);
                    cx.set("route.result", "timeout");
                    cx.outcome(format!("no agent within {}s", b.timeout_seconds));
                    return Step::Branch(b.on_timeout.clone());
                }
                if rules.relax.is_some() {
                    services.dispatch.relax_due();
                }
                if let (Some(o), Some(at), Some(e)) = (&b.offer_callback, next_offer, offer_every)
                    && now >= at
                {
                    next_offer = Some(now + e);
                    let pos = router.position_at(&queue, id, now).ok().flatten();
                    let ewt = router.ewt(&queue, pos.unwrap_or(0)).ok().flatten();
                    if o.wanted(ewt) {
                        leg.stop_playing();
                        hold = None;
                        match queue_offer::ask_caller(o, cx).await {
                            queue_offer::Answer::HungUp => {
                                services.leave_queue(&queue, id);
                                return Step::HungUp;
                            }
                            queue_offer::Answer::Declined => continue 'wait,
                            queue_offer::Answer::Accepted => {}
                        }
                        // An agent was assigned while the caller listened: connect them.
                        if let Ok(a) = rx.try_recv() {
                            cx.outcome("callback offer accepted, but an agent is free");
                            break 'woke a;
                        }
                        let at = queue_offer::Place {
                            queue: &queue,
                            since: place,
                            priority,
                            ewt,
                            position: pos.unwrap_or(0),
                        };
                        if queue_offer::book(o, cx, at).await.is_none() {
                            continue 'wait;
                        }
                        services.leave_queue(&queue, id);
                        cx.set("route.result", "callback");
                        return match &b.on_callback_accepted {
                            Some(t) => Step::Branch(Some(t.clone())),
                            None => Step::End(EndCause::Normal),
                        };
                    }
                    continue 'wait;
                }
                if !(announce && now >= next_announce) {
                    // Woken for a relaxation: the hold music plays on.
                    continue 'wait;
                }
                leg.stop_playing();
                hold = None;
                next_announce = now + every;
                let mut items = Vec::new();
                let pos = router.position_at(&queue, id, now).ok().flatten();
                if b.announce_position && let Some(p) = pos {
                    items.push(PlayItem::Digits((p + 1).to_string()));
                }
                if b.announce_ewt
                    && let Ok(Some(e)) = router.ewt(&queue, pos.unwrap_or(0))
                {
                    items.push(PlayItem::Digits(((e.num_seconds() + 59) / 60).to_string()));
                }
                if cx.play_items(&items, false).await.is_none() {
                    services.leave_queue(&queue, id);
                    return Step::HungUp;
                }
                continue 'wait;
            } }
            _ = leg.hung_up() => {
                services.leave_queue(&queue, id);
                services.dispatch.stats().abandoned(&queue);
                cx.set("route.result", "abandoned");
                cx.outcome(format!("caller hung up after {}s in queue", (clock.now() - entered).num_seconds()));
                return Step::HungUp;
            }
            _ = playing => {
                // The music ended without being stopped: play on without it.
                music = None;
                hold = None;
                continue;
            }
        };
        leg.stop_playing();
        hold = None;
        let waited = clock.now() - entered;
        cx.set("route.waited", waited.num_seconds());
        match services
            .connect_agent(leg.clone(), &a, serving_id, &data)
            .await
        {
            AgentConnect::Talked { agent, end } => {
                let step = talked(cx, &agent, waited, end, leg.is_ended(), &b.on_connected);
                // The agent hung up on a caller still there: the post-call survey, if any.
                if !leg.is_ended()
                    && end == crate::call::BridgeEnd::OtherSide
                    && let Some(survey) = crate::flow::survey::after_agent(cx, &queue, &agent).await
                {
                    return survey;
                }
                return step;
            }
            AgentConnect::CallerGone => return Step::HungUp,
            AgentConnect::AgentUnavailable(r) => {
                tracing::info!(agent = %a.agent, result = ?r, "agent did not answer; caller requeued");
                match services.queue_call_with(&queue, id, priority, place, &rules) {
                    Ok(again) => rx = again,
                    Err(_) => return Step::Branch(b.on_timeout.clone()),
                }
            }
        }
    }
}

/// Records a conversation with `agent` that began after `waited` (`end`: who hung up) and
/// where the flow goes on: hung up when the caller left, else `on_connected` or the end
/// (Route Call and Route Agent).
pub(super) fn talked(
    cx: &mut Cx<'_>,
    agent: &str,
    waited: TimeDelta,
    end: crate::call::BridgeEnd,
    caller_gone: bool,
    on_connected: &Option<String>,
) -> Step {
    cx.set("route.result", "connected");
    cx.set("route.agent", agent.to_string());
    cx.outcome(format!(
        "connected to {agent} after {}s ({end:?} hung up)",
        waited.num_seconds()
    ));
    if caller_gone {
        return Step::HungUp;
    }
    match on_connected {
        Some(t) => Step::Branch(Some(t.clone())),
        None => Step::End(EndCause::Normal),
    }
}

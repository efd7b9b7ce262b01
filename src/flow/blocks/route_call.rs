//! Route Call: queues the caller for a skilled, ready agent, plays hold music with optional
//! EWT/position announcements, connects caller and agent, and branches on the result.

use std::sync::Arc;

use chrono::TimeDelta;
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::BlockType;
use crate::call::{PlayItem, PlayOptions};
use crate::flow::check::{BlockCheck, value_pos};
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, EndCause, ExprText};
use crate::flow::services::AgentConnect;
use crate::routing::skills;
use crate::yaml;

fn three_hundred() -> u32 {
    300
}
fn sixty() -> u32 {
    60
}

/// Route Call: queue the caller for an agent and connect them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteCall {
    /// Block id.
    pub id: Option<String>,
    /// Block to run when the taken branch has no target.
    pub next: Option<String>,
    /// Virtual queue by name.
    pub queue: Option<String>,
    /// Or an expression giving it (e.g. `match.queue`).
    pub queue_from: Option<ExprText>,
    /// Extra skill requirement of this call (checked at load).
    pub skill_expression: Option<String>,
    /// Or an expression giving it (e.g. `match.skill_expression`); an empty or invalid value
    /// adds no requirement (logged).
    pub skill_expression_from: Option<ExprText>,
    /// Priority (expression; default 0).
    pub priority: Option<ExprText>,
    /// Seconds to wait for an agent (1 to 86400, default 300).
    #[serde(default = "three_hundred")]
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
    #[serde(default = "sixty")]
    #[schemars(range(min = 10, max = 3600))]
    pub announce_every_seconds: u32,
    /// Block after the agent conversation ended (default: end the call).
    pub on_connected: Option<String>,
    /// Block when no agent was found in time.
    pub on_timeout: Option<String>,
}

impl BlockType for RouteCall {
    id_and_next!();

    branches!(on_connected, on_timeout);

    // Connected without `on_connected` ends the call.
    fn falls_through(&self, _kind: AppKind) -> bool {
        self.on_timeout.is_none()
    }

    fn waits(&self) -> bool {
        true
    }

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
        c.range("timeout_seconds", self.timeout_seconds, 1, 86_400);
        c.range(
            "announce_every_seconds",
            self.announce_every_seconds,
            10,
            3600,
        );
        if let Some(m) = &self.hold_music {
            let pos = value_pos(c.node, "hold_music");
            c.prompt_name(pos, &yaml::join(c.path, "hold_music"), m);
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
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
    let mut rx = match services.queue_call(&queue, id, priority, place, requirement) {
        Ok(rx) => rx,
        Err(e) => {
            cx.set("route.result", "error");
            cx.outcome(format!("cannot queue: {e}"));
            return Step::Branch(b.on_timeout.clone());
        }
    };
    let router = services.dispatch.router();
    let position = router.position(&queue, id).ok().flatten();
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
    let mut music = b.hold_music.clone();
    let leg: Arc<_> = cx.leg.clone();
    let data = cx.call_data.clone();
    loop {
        let wake = if announce {
            deadline.min(next_announce)
        } else {
            deadline
        };
        let hold = async {
            match &music {
                Some(m) => {
                    let opts = PlayOptions {
                        barge_in: false,
                        looped: true,
                    };
                    let _ = leg.play(&[PlayItem::Prompt(m.clone())], &opts).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            a = &mut rx => {
                leg.stop_playing();
                let Ok(a) = a else {
                    services.leave_queue(&queue, id);
                    cx.set("route.result", "timeout");
                    cx.outcome("no agent");
                    return Step::Branch(b.on_timeout.clone());
                };
                let waited = clock.now() - entered;
                cx.set("route.waited", waited.num_seconds());
                match services.connect_agent(leg.clone(), &a, serving_id, &data).await {
                    AgentConnect::Talked { agent, end } => {
                        cx.set("route.result", "connected");
                        cx.set("route.agent", agent.clone());
                        cx.outcome(format!(
                            "connected to {agent} after {}s ({:?} hung up)",
                            waited.num_seconds(),
                            end
                        ));
                        if leg.is_ended() {
                            return Step::HungUp;
                        }
                        if end == crate::call::BridgeEnd::OtherSide
                            && let Some(step) =
                                crate::flow::survey::after_agent(cx, &queue, &agent).await
                        {
                            return step;
                        }
                        return match &b.on_connected {
                            Some(t) => Step::Branch(Some(t.clone())),
                            None => Step::End(EndCause::Normal),
                        };
                    }
                    AgentConnect::CallerGone => return Step::HungUp,
                    AgentConnect::AgentUnavailable(r) => {
                        tracing::info!(agent = %a.agent, result = ?r, "agent did not answer; caller requeued");
                        match services.queue_call(&queue, id, priority, place, requirement) {
                            Ok(again) => rx = again,
                            Err(_) => return Step::Branch(b.on_timeout.clone()),
                        }
                    }
                }
            }
            _ = clock.sleep_until(wake) => {
                leg.stop_playing();
                if clock.now() >= deadline {
                    services.leave_queue(&queue, id);
                    cx.set("route.result", "timeout");
                    cx.outcome(format!("no agent within {}s", b.timeout_seconds));
                    return Step::Branch(b.on_timeout.clone());
                }
                next_announce = clock.now() + every;
                let mut items = Vec::new();
                let pos = router.position(&queue, id).ok().flatten();
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
            }
            _ = leg.hung_up() => {
                services.leave_queue(&queue, id);
                services.dispatch.stats().abandoned(&queue);
                cx.set("route.result", "abandoned");
                cx.outcome(format!("caller hung up after {}s in queue", (clock.now() - entered).num_seconds()));
                return Step::HungUp;
            }
            _ = hold => {
                // The music ended without being stopped: play on without it.
                music = None;
            }
        }
    }
}

//! Route Agent: connects the caller to one agent — by agent id, by the agent's login (SIP user)
//! or the last agent this caller talked to — within an overall timeout, optionally only when
//! the agent is Ready at once. The agent is reserved through the router (the same atomic claim
//! the queues use), so they are never given two interactions.

use std::sync::Arc;

use chrono::TimeDelta;
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::BlockType;
use crate::call::{PlayItem, PlayOptions};
use crate::flow::check::{BlockCheck, value_pos};
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, ExprText, num};
use crate::flow::services::AgentConnect;
use crate::yaml;

/// Route Agent: connect the caller to one agent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteAgent {
    /// The agent by id (checked at load).
    pub agent: Option<String>,
    /// Or an expression giving the agent id.
    pub agent_from: Option<ExprText>,
    /// Or the agent whose phone logs in as this SIP user (checked at load).
    pub agent_login: Option<String>,
    /// Or the last agent this caller (by calling number) talked to.
    #[serde(default)]
    pub last_agent: bool,
    /// The virtual queue the call is counted in (statistics, ring timeout, wrap-up).
    pub queue: String,
    /// Overall seconds to wait for the agent to be Ready (1 to 3600, default 60).
    #[serde(default = "num::<60>")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: u32,
    /// Route only if the agent is Ready now: otherwise `on_not_ready` at once.
    #[serde(default)]
    pub only_if_ready: bool,
    /// Looped while waiting.
    pub hold_music: Option<String>,
    /// Block after the conversation ended (default: end the call).
    pub on_connected: Option<String>,
    /// Block when the agent was not Ready in time, or did not answer.
    pub on_timeout: Option<String>,
    /// Block when `only_if_ready` and the agent is not Ready (default: `on_timeout`).
    pub on_not_ready: Option<String>,
    /// Block when there is no such agent (no last agent for this caller; default: `on_timeout`).
    pub on_unknown: Option<String>,
}

impl BlockType for RouteAgent {
    const NEXT: Option<&'static str> = Some("Block to run when the taken branch has no target.");

    branches!(on_connected, on_timeout, on_not_ready, on_unknown);

    fn falls_through(&self, _kind: AppKind) -> bool {
        self.on_timeout.is_none()
    }

    const WAITS: bool = true;

    fn check(&self, c: &mut BlockCheck<'_>) {
        let given = [
            self.agent.is_some(),
            self.agent_from.is_some(),
            self.agent_login.is_some(),
            self.last_agent,
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if given != 1 {
            c.block_err(
                "give exactly one of `agent`, `agent_from`, `agent_login`, `last_agent: true`",
            );
        }
        let config = c.ctx.config;
        if let Some(a) = &self.agent
            && config.agent(a).is_none()
        {
            let known: Vec<&str> = config.spec.agents.iter().map(|a| a.id.as_str()).collect();
            c.at(
                "agent",
                format!(
                    "no agent `{a}` in the configuration{}",
                    crate::diagnostics::suggest(a, &known)
                ),
            );
        }
        if let Some(l) = &self.agent_login
            && !config
                .spec
                .agents
                .iter()
                .any(|a| a.sip_user.as_deref() == Some(l.as_str()))
        {
            c.at("agent_login", format!("no agent logs in as `{l}`"));
        }
        if let Some(e) = &self.agent_from {
            c.expr("agent_from", e);
        }
        c.queue("queue", &self.queue);
        c.range("timeout_seconds", self.timeout_seconds, 1, 3600);
        if let Some(m) = &self.hold_music {
            let pos = value_pos(c.node, "hold_music");
            c.prompt_name(pos, &yaml::join(c.path, "hold_music"), m);
        }
        if !self.only_if_ready {
            c.at_key("on_not_ready", "`on_not_ready` needs `only_if_ready: true`");
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

/// The agent id the block names for this call, if any.
fn target(b: &RouteAgent, cx: &Cx<'_>) -> Option<String> {
    let config = cx.services.callbacks.config();
    let id = if let Some(a) = &b.agent {
        Some(a.clone())
    } else if let Some(e) = &b.agent_from {
        Some(cx.eval(e).to_string())
    } else if let Some(l) = &b.agent_login {
        config
            .spec
            .agents
            .iter()
            .find(|a| a.sip_user.as_deref() == Some(l.as_str()))
            .map(|a| a.id.clone())
    } else {
        let ani = cx
            .vars
            .get("ani")
            .map(|v| v.to_string())
            .unwrap_or_default();
        cx.services.last_agents.get(&ani)
    };
    id.filter(|a| config.agent(a).is_some())
}

async fn run(b: &RouteAgent, cx: &mut Cx<'_>) -> Step {
    let Some(agent) = target(b, cx) else {
        cx.set("route.result", "unknown");
        cx.outcome("no such agent");
        return Step::Branch(b.on_unknown.clone().or_else(|| b.on_timeout.clone()));
    };
    cx.set("route.target_agent", agent.clone());
    let services = cx.services;
    let clock = services.clock.clone();
    let entered = clock.now();
    let deadline = entered + TimeDelta::seconds(b.timeout_seconds.into());
    let id = cx
        .serving
        .as_ref()
        .map_or_else(Uuid::new_v4, |s| s.callback);
    let serving_id = cx.serving.as_ref().map(|s| s.callback);
    let data = cx.call_data.clone();
    let leg: Arc<_> = cx.leg.clone();
    // The agent's state is looked at once a second (on the injected clock) while waiting.
    let poll = TimeDelta::seconds(1);
    let mut playing = false;
    loop {
        let claimed = match services.claim_agent(&agent, &b.queue, id, clock.now() - entered) {
            Ok(c) => c,
            Err(e) => {
                cx.set("route.result", "error");
                cx.outcome(format!("cannot route to {agent}: {e}"));
                return Step::Branch(b.on_timeout.clone());
            }
        };
        if let Some(a) = claimed {
            if playing {
                leg.stop_playing();
            }
            let waited = clock.now() - entered;
            cx.set("route.waited", waited.num_seconds());
            return match services
                .connect_agent(leg.clone(), &a, serving_id, &data)
                .await
            {
                AgentConnect::Talked { agent, end } => super::route_call::talked(
                    cx,
                    &agent,
                    waited,
                    end,
                    leg.is_ended(),
                    &b.on_connected,
                ),
                AgentConnect::CallerGone => Step::HungUp,
                AgentConnect::AgentUnavailable(r) => {
                    cx.set("route.result", "no_answer");
                    cx.outcome(format!("{agent} did not answer ({r:?})"));
                    Step::Branch(b.on_timeout.clone())
                }
            };
        }
        if b.only_if_ready {
            cx.set("route.result", "not_ready");
            cx.outcome(format!("{agent} is not ready"));
            return Step::Branch(b.on_not_ready.clone().or_else(|| b.on_timeout.clone()));
        }
        if clock.now() >= deadline {
            if playing {
                leg.stop_playing();
            }
            cx.set("route.result", "timeout");
            cx.outcome(format!("{agent} not ready within {}s", b.timeout_seconds));
            return Step::Branch(b.on_timeout.clone());
        }
        if !playing && let Some(m) = &b.hold_music {
            // Looped in the background while the state is polled.
            let leg2 = leg.clone();
            let m = m.clone();
            tokio::spawn(async move {
                let opts = PlayOptions {
                    barge_in: false,
                    looped: true,
                };
                let _ = leg2.play(&[PlayItem::Prompt(m)], &opts).await;
            });
            playing = true;
        }
        let wake = (clock.now() + poll).min(deadline);
        tokio::select! {
            _ = clock.sleep_until(wake) => {}
            _ = leg.hung_up() => {
                cx.set("route.result", "abandoned");
                cx.outcome(format!("caller hung up after {}s waiting for {agent}", (clock.now() - entered).num_seconds()));
                return Step::HungUp;
            }
        }
    }
}

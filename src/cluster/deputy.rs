//! Callbacks served by agents homed on another node: when a ready agent's home may not dial a
//! queue's callbacks (region affinity ignores its region), one other node — its *deputy* for
//! that queue — claims them in its place, dials the customer, and connects them to the agent
//! through the agent's arbiter exactly as a live caller is (`/internal/reserve`, `connected`,
//! `release`: the Callback application's Route Call asks the home).
//!
//! Every ready agent is counted by exactly one node: its home when the home may dial the
//! queue, else its deputy — among the live nodes that may dial it (the preferred regions if
//! any is alive, else the fallback ones), the one the agent's id hashes to. So the pacing rule
//! holds cluster-wide as on one node (dials in flight ≤ ready agents), the claim keeps each
//! callback dialled once, and the home's arbiter keeps each agent to one interaction.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::TimeDelta;
use uuid::Uuid;

use super::view::{Presence, View};
use crate::engine::node::{Affinity, affinity};
use crate::routing::{Assignment, Dispatch};
use crate::rules::RuleBook;
use crate::store::postgres::NodeInfo;

/// How long the list of nodes (regions, liveness) is trusted before it is read again.
pub const NODES_FRESH_FOR: TimeDelta = TimeDelta::seconds(1);

/// A stable hash of an agent's id (FNV-1a), the same on every node and build.
fn spread(agent: &str) -> u64 {
    agent.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The node that dials `queue`'s callbacks for agent `p` in place of its home, when its home
/// may not (`rank` of its region is `Never`) and the home is alive; `None` when the home dials
/// them itself, or no live node may.
pub fn deputy_of<'a>(
    p: &Presence,
    nodes: &'a [NodeInfo],
    rank: impl Fn(&str) -> Affinity,
) -> Option<&'a str> {
    let home = nodes.iter().find(|n| n.node_id == p.node && n.alive)?;
    if rank(&home.region) != Affinity::Never {
        return None;
    }
    let may: Vec<(&NodeInfo, Affinity)> = nodes
        .iter()
        .filter(|n| n.alive && n.node_id != p.node)
        .map(|n| (n, rank(&n.region)))
        .filter(|(_, a)| *a != Affinity::Never)
        .collect();
    let best = if may.iter().any(|(_, a)| *a == Affinity::Now) {
        Affinity::Now
    } else {
        Affinity::Later
    };
    let mut pool: Vec<&str> = may
        .iter()
        .filter(|(_, a)| *a == best)
        .map(|(n, _)| n.node_id.as_str())
        .collect();
    if pool.is_empty() {
        return None;
    }
    pool.sort_unstable();
    let i = usize::try_from(spread(&p.agent) % pool.len() as u64).unwrap_or(0);
    Some(pool[i])
}

/// This node as deputy: the remote agents it dials for, and the callbacks it claimed for them.
pub struct Deputy {
    node: String,
    view: Arc<View>,
    dispatch: Arc<Dispatch>,
    rules: Arc<RuleBook>,
    /// Callbacks claimed for remote agents, by id: (queue, the agent named, triggered yet).
    claimed: HashMap<Uuid, (String, String, bool)>,
    /// The agents Ready on other nodes at the last [`Deputy::look`], longest ready first.
    ready: Vec<Presence>,
}

impl Deputy {
    /// The deputy of node `node` reading the cluster-wide `view`.
    pub fn new(node: &str, view: Arc<View>, dispatch: Arc<Dispatch>, rules: Arc<RuleBook>) -> Self {
        Deputy {
            node: node.to_string(),
            view,
            dispatch,
            rules,
            claimed: HashMap::new(),
            ready: Vec::new(),
        }
    }

    /// The view's change signal (a claim pass runs when an agent's state changes anywhere).
    pub fn view(&self) -> &Arc<View> {
        &self.view
    }

    /// Reads the view once for a claim pass; true when some agent homed elsewhere is Ready
    /// (the node list is then worth reading).
    pub fn look(&mut self) -> bool {
        self.ready = self.view.ready_elsewhere(&self.node);
        !self.ready.is_empty()
    }

    /// The remote agents this node dials `queue`'s callbacks for, longest ready first.
    fn agents_for(&self, queue: &str, nodes: &[NodeInfo]) -> Vec<String> {
        let router = self.dispatch.router();
        let rule = self.rules.affinity_for(queue);
        self.ready
            .iter()
            .filter(|p| {
                router
                    .agents()
                    .index_of(&p.agent)
                    .ok()
                    .and_then(|idx| router.is_eligible(queue, idx).ok())
                    .unwrap_or(false)
            })
            .filter(|p| {
                deputy_of(p, nodes, |region| affinity(rule.as_ref(), region))
                    == Some(self.node.as_str())
            })
            .map(|p| p.agent.clone())
            .collect()
    }

    /// Forgets the callbacks this node no longer holds (completed, released, lost).
    pub fn prune(&mut self, held: &[Uuid]) {
        let held: std::collections::HashSet<&Uuid> = held.iter().collect();
        self.claimed.retain(|id, _| held.contains(id));
    }

    /// Callbacks of `queue` claimed for remote agents and still held.
    pub fn held(&self, queue: &str) -> usize {
        self.claimed.values().filter(|(q, _, _)| q == queue).count()
    }

    /// How many more callbacks of `queue` this node may claim for remote agents now.
    pub fn room(&self, queue: &str, nodes: &[NodeInfo]) -> usize {
        self.agents_for(queue, nodes)
            .len()
            .saturating_sub(self.held(queue))
    }

    /// Triggers, among callbacks of `queue` just claimed and adopted (so queued in the local
    /// router), up to `take` for remote agents: those still waiting there (a local agent may
    /// have triggered some meanwhile). A SCHEDULED one (`.1`) is triggered once activated.
    pub fn adopt(
        &mut self,
        queue: &str,
        claimed: &[(Uuid, bool)],
        take: usize,
        nodes: &[NodeInfo],
    ) {
        let agents = self.agents_for(queue, nodes);
        if agents.is_empty() {
            return;
        }
        let mut taken = 0;
        for (id, scheduled) in claimed {
            if taken == take {
                break;
            }
            let agent = agents[taken % agents.len()].clone();
            if *scheduled {
                self.claimed.insert(*id, (queue.to_string(), agent, false));
                taken += 1;
            } else if self.dispatch.withdraw(queue, *id).unwrap_or(false) {
                self.start(*id, queue, &agent);
                self.claimed.insert(*id, (queue.to_string(), agent, true));
                taken += 1;
            }
        }
    }

    /// Starts the dial of every SCHEDULED callback claimed for a remote agent once it waits
    /// in the local router (activated).
    pub fn trigger(&mut self) {
        let mut started = Vec::new();
        for (id, (queue, agent, triggered)) in self.claimed.iter_mut().filter(|(_, c)| !c.2) {
            // Taken out of the router's queue here, it can be triggered by nobody else.
            if self.dispatch.withdraw(queue, *id).unwrap_or(false) {
                *triggered = true;
                started.push((*id, queue.clone(), agent.clone()));
            }
        }
        for (id, queue, agent) in started {
            self.start(id, &queue, &agent);
        }
    }

    /// Hands a callback taken out of the local router to the callback dialer, naming the remote
    /// agent it is dialled for; the agent is left untouched (its home reserves it once the
    /// customer has answered and Route Call asks).
    fn start(&self, id: Uuid, queue: &str, agent: &str) {
        let Ok(agent_idx) = self.dispatch.router().agents().index_of(agent) else {
            return;
        };
        tracing::info!(callback = %id, %queue, %agent, "callback dialled for an agent homed on another node");
        self.dispatch.deliver(vec![Assignment {
            interaction: id,
            queue: queue.to_string(),
            agent: agent.to_string(),
            agent_idx,
            waited: TimeDelta::zero(),
            reserved: false,
        }]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, region: &str, alive: bool) -> NodeInfo {
        NodeInfo {
            node_id: id.into(),
            region: region.into(),
            alive,
            settled: alive,
        }
    }

    fn ready(agent: &str, home: &str) -> Presence {
        Presence {
            agent: agent.into(),
            node: home.into(),
            url: String::new(),
            registered: true,
            state: "ready".into(),
            ready_since: 0,
        }
    }

    fn rank(region: &str) -> Affinity {
        match region {
            "paris" => Affinity::Now,
            "london" => Affinity::Later,
            _ => Affinity::Never,
        }
    }

    #[test]
    fn a_home_that_may_dial_keeps_its_agents_and_an_ignored_home_gets_one_deputy() {
        let nodes = [
            node("p1", "paris", true),
            node("p2", "paris", true),
            node("l1", "london", true),
            node("n1", "nyc", true),
        ];
        assert_eq!(deputy_of(&ready("a", "p1"), &nodes, rank), None);
        assert_eq!(deputy_of(&ready("a", "l1"), &nodes, rank), None);
        // Homed in New York (ignored): a Paris node, the same one for the same agent.
        let mut seen = std::collections::HashSet::new();
        for agent in ["alice", "bob", "carol", "dave", "erin", "frank"] {
            let d = deputy_of(&ready(agent, "n1"), &nodes, rank).unwrap();
            assert!(d == "p1" || d == "p2", "{d}");
            assert_eq!(deputy_of(&ready(agent, "n1"), &nodes, rank), Some(d));
            seen.insert(d);
        }
        assert_eq!(seen.len(), 2, "agents spread over the preferred nodes");
        // Paris down: London (fallback); nobody alive that may dial: none; a dead home: none.
        let no_paris = [
            node("p1", "paris", false),
            node("l1", "london", true),
            node("n1", "nyc", true),
        ];
        assert_eq!(deputy_of(&ready("a", "n1"), &no_paris, rank), Some("l1"));
        let alone = [node("n1", "nyc", true), node("n2", "nyc", true)];
        assert_eq!(deputy_of(&ready("a", "n1"), &alone, rank), None);
        let dead_home = [node("p1", "paris", true), node("n1", "nyc", false)];
        assert_eq!(deputy_of(&ready("a", "n1"), &dead_home, rank), None);
    }
}

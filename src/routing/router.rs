//! The router core: events in (an interaction queued or withdrawn, an agent's state changed),
//! assignments out. Synchronous and free of I/O; it is shared behind an `Arc` and every method
//! takes `&self`. Agents are claimed by compare-and-swap; each queue's waiting list has its own
//! short lock that is never held while another queue's is taken, nor across an `.await`.
//!
//! **Cross-queue rule.** When an agent becomes ready and is eligible for several queues, it
//! takes the best head among them: the highest priority first, then the one that has waited
//! longest (earliest enqueue time). When an interaction arrives and eligible agents are ready,
//! it goes to one chosen by its queue's policy (longest idle by default, or round-robin).
//!
//! Both sides publish first and look second (an interaction is queued before agents are
//! searched; an agent is listed as ready before queues are searched), so no ready agent and
//! waiting interaction can miss each other.
//!
//! **Paced interactions (callbacks to dial).** A callback waiting in its queue does not take an
//! agent: when it would be given one (it heads the queue and an eligible agent is ready), it is
//! *triggered* instead — taken out of the queue and handed out with the agent left Ready
//! (`Assignment::reserved == false`), as the seed's dialer does. The customer, once reached,
//! queues again as a live call with the callback's id, priority and place, and takes the next
//! ready agent like any caller. **Pacing rule:** per queue, triggered callbacks not yet settled
//! (being dialled, or answered and waiting for an agent) stay fewer than or equal to the ready
//! eligible agents: a callback is triggered only while `in_flight < ready`, then `in_flight`
//! grows by one. An answered customer given an agent, or a callback settled by its dialer
//! (failed attempt, declined, hung up) leaves `in_flight`. So one ready agent starts one dial at
//! a time, and N ready agents at most N.

use parking_lot::{Mutex, MutexGuard, RwLock};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use thiserror::Error;
use uuid::Uuid;

pub use super::agents::AgentCounts;
use super::agents::{AgentError, AgentIdx, AgentInfo, AgentRegistry, Requested, StateKind};
use super::ewt::{EwtMode, EwtStats, queue_length_ewt};
use super::growth::PriorityGrowth;
use super::queue::{WaitQueue, Waiting};
use super::readiness::{Eligibility, ReadySet};
use super::skills::{CompiledExpr, SkillCatalog, SkillLevels, SkillParseError};
use crate::config::{Config, EwtMethod, SelectionPolicy};

mod assign;
mod relax;

use relax::Requirement;
pub use relax::WaitRules;

/// An interaction handed to an agent (who is now Reserved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The interaction.
    pub interaction: Uuid,
    /// Its queue.
    pub queue: String,
    /// The agent's id.
    pub agent: String,
    /// The agent's index.
    pub agent_idx: AgentIdx,
    /// How long the interaction waited.
    pub waited: TimeDelta,
    /// True when the agent is Reserved for it; false when a paced interaction was triggered
    /// and the agent stays Ready (the module's pacing rule).
    pub reserved: bool,
}

/// Why a router request failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouterError {
    /// No such queue.
    #[error("unknown virtual queue `{0}`")]
    UnknownQueue(String),
    /// A queue's skill expression does not parse.
    #[error("queue `{queue}`: {error}")]
    Expression {
        /// Queue.
        queue: String,
        /// Parse error.
        error: SkillParseError,
    },
    /// An agent operation was refused.
    #[error(transparent)]
    Agent(#[from] AgentError),
}

/// A queue as the router needs it.
#[derive(Debug, Clone)]
pub struct QueueDef {
    /// Name.
    pub name: String,
    /// Skill expression.
    pub skill_expression: String,
    /// Agent selection.
    pub selection: SelectionPolicy,
    /// EWT method.
    pub ewt_method: EwtMethod,
}

struct RouterQueue {
    name: String,
    expr: CompiledExpr,
    selection: SelectionPolicy,
    ewt_method: EwtMethod,
    /// Priority growth of the queue's interactions that bring none of their own.
    growth: Option<PriorityGrowth>,
    eligible: Eligibility,
    waiting: Mutex<WaitQueue>,
    /// Length of `waiting`, readable without its lock (agents skip empty queues cheaply).
    len: AtomicUsize,
    /// Paced interactions (callbacks not yet dialled), kept apart so that a head that the
    /// pacing rule holds back never blocks the live calls behind it.
    paced: Mutex<WaitQueue>,
    /// Length of `paced`, readable without its lock.
    paced_len: AtomicUsize,
    /// Triggered paced interactions not settled yet.
    in_flight: AtomicUsize,
    cursor: AtomicUsize,
    stats: Mutex<EwtStats>,
}

/// The router.
pub struct Router {
    catalog: SkillCatalog,
    agents: AgentRegistry,
    queues: Vec<RouterQueue>,
    by_name: HashMap<String, usize>,
    agent_queues: Vec<RwLock<Vec<usize>>>,
    ready: ReadySet,
    default_aht: TimeDelta,
    /// Extra skill requirements of single interactions (a Route Call's own expression, maybe
    /// relaxing over time), on top of their queue's.
    requirements: dashmap::DashMap<Uuid, Requirement>,
    /// When relaxing requirements next change: (instant in ns, interaction, queue index), the
    /// earliest first; entries of interactions gone are dropped when they come due.
    relax_due: Mutex<BinaryHeap<Reverse<(i64, Uuid, usize)>>>,
    /// The latest time any event carried, for positions asked without a time.
    last_now: AtomicI64,
    /// Triggered paced interactions not settled yet, with their queue's index.
    triggered: dashmap::DashMap<Uuid, usize>,
}

fn lock(m: &Mutex<WaitQueue>) -> MutexGuard<'_, WaitQueue> {
    m.lock()
}

/// Takes the live head at `now`, with its priority growth (to put it back as it was).
fn pop(q: &RouterQueue, now: DateTime<Utc>) -> Option<(Waiting, Option<PriorityGrowth>)> {
    let mut waiting = lock(&q.waiting);
    let w = waiting.pop_growing(now);
    q.len.store(waiting.len(), Ordering::Release);
    w
}

impl Router {
    /// A router over `queues` and `agents` (all logged out).
    pub fn new(queues: Vec<QueueDef>, agents: Vec<AgentInfo>) -> Result<Self, RouterError> {
        let catalog = SkillCatalog::new();
        let agents = AgentRegistry::new(agents, &catalog);
        let mut built = Vec::new();
        let mut by_name = HashMap::new();
        for q in queues {
            let expr = CompiledExpr::compile(&q.skill_expression, &catalog).map_err(|error| {
                RouterError::Expression {
                    queue: q.name.clone(),
                    error,
                }
            })?;
            by_name.insert(q.name.clone(), built.len());
            built.push(RouterQueue {
                name: q.name,
                expr,
                selection: q.selection,
                ewt_method: q.ewt_method,
                growth: None,
                eligible: Eligibility::new(agents.len()),
                waiting: Mutex::new(WaitQueue::new()),
                len: AtomicUsize::new(0),
                paced: Mutex::new(WaitQueue::new()),
                paced_len: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                cursor: AtomicUsize::new(0),
                stats: Mutex::new(EwtStats::default()),
            });
        }
        let router = Router {
            agent_queues: (0..agents.len()).map(|_| RwLock::new(Vec::new())).collect(),
            catalog,
            agents,
            queues: built,
            by_name,
            ready: ReadySet::new(),
            default_aht: TimeDelta::seconds(300),
            requirements: dashmap::DashMap::new(),
            relax_due: Mutex::new(BinaryHeap::new()),
            last_now: AtomicI64::new(i64::MIN),
            triggered: dashmap::DashMap::new(),
        };
        for (idx, _) in router.agents.iter() {
            router.recompute(idx);
        }
        Ok(router)
    }

    /// A router for a configuration's queues and agents.
    pub fn from_config(config: &Config) -> Result<Self, RouterError> {
        let queues = config
            .spec
            .queues
            .iter()
            .map(|q| QueueDef {
                name: q.name.clone(),
                skill_expression: q.skill_expression.clone(),
                selection: q.selection,
                ewt_method: q.ewt_method,
            })
            .collect();
        let agents = config
            .spec
            .agents
            .iter()
            .map(|a| AgentInfo {
                id: a.id.clone(),
                name: a.name.clone(),
                sip_user: a.sip_user.clone().unwrap_or_else(|| a.id.clone()),
                skills: a
                    .skills
                    .iter()
                    .map(|(k, v)| (k.clone(), (*v).clamp(0, 10) as u8))
                    .collect(),
            })
            .collect();
        let mut router = Router::new(queues, agents)?;
        for q in &config.spec.queues {
            if let Some(g) = q.priority_growth {
                router.set_priority_growth(&q.name, g)?;
            }
        }
        Ok(router)
    }

    /// Makes the priority of a queue's interactions grow while they wait (those queued with
    /// their own growth keep theirs).
    pub fn set_priority_growth(
        &mut self,
        queue: &str,
        growth: PriorityGrowth,
    ) -> Result<(), RouterError> {
        let qi = *self
            .by_name
            .get(queue)
            .ok_or_else(|| RouterError::UnknownQueue(queue.to_string()))?;
        self.queues[qi].growth = Some(growth);
        Ok(())
    }

    /// The agents.
    pub fn agents(&self) -> &AgentRegistry {
        &self.agents
    }

    /// Queue names, in configuration order.
    pub fn queue_names(&self) -> impl Iterator<Item = &str> {
        self.queues.iter().map(|q| q.name.as_str())
    }

    fn queue(&self, name: &str) -> Result<&RouterQueue, RouterError> {
        self.by_name
            .get(name)
            .map(|i| &self.queues[*i])
            .ok_or_else(|| RouterError::UnknownQueue(name.to_string()))
    }

    /// Recomputes which queues an agent is eligible for (after its skills changed).
    fn recompute(&self, idx: AgentIdx) {
        let mut mine = Vec::new();
        self.agents.get(idx).with_skills(|levels| {
            for (qi, q) in self.queues.iter().enumerate() {
                let ok = q.expr.matches(levels);
                q.eligible.set(idx, ok);
                if ok {
                    mine.push(qi);
                }
            }
        });
        *self.agent_queues[idx as usize].write() = mine;
    }

    /// Changes an agent's skills (name → level) and its eligibility at once.
    pub fn set_agent_skills(
        &self,
        agent: &str,
        skills: &[(String, u8)],
    ) -> Result<(), RouterError> {
        let idx = self.agents.index_of(agent)?;
        let levels =
            SkillLevels::from_pairs(&self.catalog, skills.iter().map(|(s, l)| (s.as_str(), *l)));
        self.agents.set_skills(idx, levels);
        self.recompute(idx);
        Ok(())
    }

    /// Queues an interaction; returns the assignment if an eligible agent was ready.
    pub fn enqueue(
        &self,
        queue: &str,
        w: Waiting,
        now: DateTime<Utc>,
    ) -> Result<Vec<Assignment>, RouterError> {
        self.push(queue, w, None, now, false)
    }

    /// Queues a paced interaction (a callback to dial): it never takes an agent; at the head,
    /// with the pacing rule satisfied, it is triggered (see the module's documentation).
    pub fn enqueue_paced(
        &self,
        queue: &str,
        w: Waiting,
        now: DateTime<Utc>,
    ) -> Result<Vec<Assignment>, RouterError> {
        self.push(queue, w, None, now, true)
    }

    fn push(
        &self,
        queue: &str,
        w: Waiting,
        growth: Option<PriorityGrowth>,
        now: DateTime<Utc>,
        paced: bool,
    ) -> Result<Vec<Assignment>, RouterError> {
        self.seen(now);
        let qi = *self
            .by_name
            .get(queue)
            .ok_or_else(|| RouterError::UnknownQueue(queue.to_string()))?;
        let q = &self.queues[qi];
        let (list, len) = if paced {
            (&q.paced, &q.paced_len)
        } else {
            (&q.waiting, &q.len)
        };
        {
            let mut list = lock(list);
            list.push_growing(w, growth.or(q.growth));
            len.store(list.len(), Ordering::Release);
        }
        Ok(self.dispatch_queue(qi, now))
    }

    /// Ends a triggered interaction's flight (its dial failed, the customer left, or it was
    /// served otherwise); the pacing rule may then trigger the next one. Settling twice, or
    /// an interaction that was not triggered, does nothing.
    pub fn settle(&self, id: Uuid, now: DateTime<Utc>) -> Vec<Assignment> {
        self.seen(now);
        match self.triggered.remove(&id) {
            Some((_, qi)) => {
                self.queues[qi].in_flight.fetch_sub(1, Ordering::AcqRel);
                self.dispatch_queue(qi, now)
            }
            None => Vec::new(),
        }
    }

    /// Triggered paced interactions of a queue not settled yet.
    pub fn in_flight(&self, queue: &str) -> Result<usize, RouterError> {
        Ok(self.queue(queue)?.in_flight.load(Ordering::Acquire))
    }

    /// Queues an interaction that also requires `expression` of its agent (beyond its queue's
    /// expression). Agents who do not meet it are not given it; while such an interaction heads
    /// its queue, agents who cannot take it serve other queues.
    pub fn enqueue_requiring(
        &self,
        queue: &str,
        w: Waiting,
        expression: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Assignment>, RouterError> {
        let rules = WaitRules {
            requirement: Some(expression),
            ..WaitRules::default()
        };
        self.enqueue_with(queue, w, &rules, now)
    }

    /// True when agent `idx` meets interaction `id`'s own requirement at `now` (or it has none).
    fn meets(&self, idx: AgentIdx, id: Uuid, now: DateTime<Utc>) -> bool {
        match self.requirements.get(&id) {
            Some(r) => self.agents.get(idx).with_skills(|l| r.at(now).matches(l)),
            None => true,
        }
    }

    /// Takes an interaction out of its queue (abandon, cancel); true if it was waiting.
    pub fn withdraw(&self, queue: &str, id: Uuid) -> Result<bool, RouterError> {
        self.requirements.remove(&id);
        let q = self.queue(queue)?;
        {
            let mut waiting = lock(&q.waiting);
            if waiting.withdraw(id) {
                q.len.store(waiting.len(), Ordering::Release);
                return Ok(true);
            }
        }
        let mut paced = lock(&q.paced);
        let removed = paced.withdraw(id);
        q.paced_len.store(paced.len(), Ordering::Release);
        Ok(removed)
    }

    /// Claims an eligible ready agent for a queue by its policy (the match+claim step).
    pub fn claim_for(&self, queue: &str) -> Result<Option<AgentIdx>, RouterError> {
        let q = self.queue(queue)?;
        Ok(self.claim(q))
    }

    fn claim(&self, q: &RouterQueue) -> Option<AgentIdx> {
        match q.selection {
            SelectionPolicy::LongestIdle => {
                self.ready.claim_longest_idle(&self.agents, &q.eligible)
            }
            SelectionPolicy::RoundRobin => {
                self.ready
                    .claim_round_robin(&self.agents, &q.eligible, &q.cursor)
            }
        }
    }

    /// Reserves one named agent when Ready (Route Agent), taking them out of the ready set;
    /// `None` when they are not Ready (or another interaction claimed them first).
    pub fn claim_agent(&self, agent: &str) -> Result<Option<AgentIdx>, RouterError> {
        let idx = self.agents.index_of(agent)?;
        let since = self.agents.get(idx).ready_since_ns();
        if self.agents.claim(idx) {
            self.ready.remove_entry(since, idx);
            Ok(Some(idx))
        } else {
            Ok(None)
        }
    }

    /// Puts back an agent whose reservation was not used; it keeps its idle place.
    pub fn release(
        &self,
        idx: AgentIdx,
        now: DateTime<Utc>,
    ) -> Result<Vec<Assignment>, RouterError> {
        self.agents
            .set_state(idx, StateKind::Ready, now, None, None)?;
        self.ready.insert(&self.agents, idx);
        Ok(self.dispatch_agent(idx, now))
    }

    /// Changes an agent's state; when the agent becomes ready it may be assigned at once.
    pub fn set_agent_state(
        &self,
        agent: &str,
        to: StateKind,
        now: DateTime<Utc>,
        reason: Option<&str>,
        acw_until: Option<DateTime<Utc>>,
    ) -> Result<Vec<Assignment>, RouterError> {
        let idx = self.agents.index_of(agent)?;
        let since = self.agents.get(idx).ready_since_ns();
        let from = self.agents.set_state(idx, to, now, reason, acw_until)?;
        Ok(self.after_change(idx, since, from, to, now))
    }

    /// An agent's or administrator's state request: applied now, or when the agent's current
    /// call ends (see [`AgentRegistry::request_state`]).
    pub fn request_agent_state(
        &self,
        agent: &str,
        to: StateKind,
        now: DateTime<Utc>,
        reason: Option<&str>,
    ) -> Result<(Requested, Vec<Assignment>), RouterError> {
        let idx = self.agents.index_of(agent)?;
        let since = self.agents.get(idx).ready_since_ns();
        match self.agents.request_state(idx, to, now, reason)? {
            Requested::Applied(from) => Ok((
                Requested::Applied(from),
                self.after_change(idx, since, from, to, now),
            )),
            other => Ok((other, Vec::new())),
        }
    }

    /// Ends an agent's call: the state asked for during it, else wrap-up until `acw_until`,
    /// else Ready (and then maybe the next assignment). The state reached, if it moved.
    pub fn finish_call(
        &self,
        agent: &str,
        now: DateTime<Utc>,
        acw_until: Option<DateTime<Utc>>,
    ) -> Result<(Option<StateKind>, Vec<Assignment>), RouterError> {
        let idx = self.agents.index_of(agent)?;
        let since = self.agents.get(idx).ready_since_ns();
        Ok(match self.agents.finish_call(idx, now, acw_until) {
            Some((from, to)) => (Some(to), self.after_change(idx, since, from, to, now)),
            None => (None, Vec::new()),
        })
    }

    /// Ends an agent's wrap-up that is over at `now` (Ready, maybe assigned at once).
    pub fn end_wrap_up(
        &self,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Assignment>, RouterError> {
        let idx = self.agents.index_of(agent)?;
        if !self.agents.end_wrap_up(idx, now) {
            return Ok(Vec::new());
        }
        let since = self.agents.get(idx).ready_since_ns();
        Ok(self.after_change(idx, since, StateKind::AfterCallWork, StateKind::Ready, now))
    }

    /// Keeps the ready list in step with a state change and dispatches a newly ready agent.
    fn after_change(
        &self,
        idx: AgentIdx,
        since: i64,
        from: StateKind,
        to: StateKind,
        now: DateTime<Utc>,
    ) -> Vec<Assignment> {
        self.seen(now);
        // A reserved agent may still have its ready-list entry (claims that scan rather than
        // walk leave it, so the claim stays short); it goes when the reservation ends.
        if matches!(from, StateKind::Ready | StateKind::Reserved) && to != StateKind::Ready {
            self.ready.remove_entry(since, idx);
        }
        if to == StateKind::Ready {
            self.ready.insert(&self.agents, idx);
            return self.dispatch_agent(idx, now);
        }
        Vec::new()
    }

    /// Records a completed interaction's handle time for the queue's EWT.
    pub fn record_handle_time(&self, queue: &str, handle: TimeDelta) -> Result<(), RouterError> {
        self.queue(queue)?.stats.lock().record_handle(handle);
        Ok(())
    }

    /// Records the latest time an event carried (positions asked without a time use it).
    fn seen(&self, now: DateTime<Utc>) {
        let ns = now.timestamp_nanos_opt().unwrap_or(i64::MAX);
        self.last_now.fetch_max(ns, Ordering::AcqRel);
    }

    /// 0-based position of a waiting interaction, counting live calls and callbacks to dial
    /// that would be served before it, at the latest time the router was told of.
    pub fn position(&self, queue: &str, id: Uuid) -> Result<Option<usize>, RouterError> {
        let now = DateTime::from_timestamp_nanos(self.last_now.load(Ordering::Acquire));
        self.position_at(queue, id, now)
    }

    /// 0-based position of a waiting interaction at `now` (priorities that grow are taken at
    /// `now`).
    pub fn position_at(
        &self,
        queue: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, RouterError> {
        let q = self.queue(queue)?;
        let live = {
            let waiting = lock(&q.waiting);
            waiting.position(id, now).zip(
                waiting
                    .priority_at(id, now)
                    .zip(waiting.get(id).map(|w| w.enqueued_at)),
            )
        };
        if let Some((pos, (p, t))) = live {
            return Ok(Some(pos + lock(&q.paced).ahead_of(p, t, now)));
        }
        let paced = {
            let paced = lock(&q.paced);
            paced.position(id, now).zip(
                paced
                    .priority_at(id, now)
                    .zip(paced.get(id).map(|w| w.enqueued_at)),
            )
        };
        Ok(paced.map(|(pos, (p, t))| pos + lock(&q.waiting).ahead_of(p, t, now)))
    }

    /// How many interactions wait in a queue (live calls and callbacks not yet dialled).
    pub fn waiting(&self, queue: &str) -> Result<usize, RouterError> {
        let q = self.queue(queue)?;
        let live = lock(&q.waiting).len();
        Ok(live + lock(&q.paced).len())
    }

    /// Eligible agents of a queue by state, from the agents' state bits (a few popcounts per
    /// 64 agents, not a load per agent).
    pub fn agent_counts(&self, queue: &str) -> Result<AgentCounts, RouterError> {
        let q = self.queue(queue)?;
        Ok(self.agents.count_states(q.eligible.words()))
    }

    /// Whether agent `idx` may take `queue`'s interactions (its skills match the queue's
    /// expression), whatever its state: for a node choosing among agents homed elsewhere.
    pub fn is_eligible(&self, queue: &str, idx: AgentIdx) -> Result<bool, RouterError> {
        Ok(self.queue(queue)?.eligible.contains(idx))
    }

    /// EWT for an interaction at `position` (use the queue length for a new arrival); `None`
    /// when no eligible agent is logged in.
    pub fn ewt(&self, queue: &str, position: usize) -> Result<Option<TimeDelta>, RouterError> {
        let q = self.queue(queue)?;
        let counts = self.agents.count_states(q.eligible.words());
        if counts.logged_in == 0 {
            return Ok(None);
        }
        let stats = q.stats.lock().clone();
        Ok(match q.ewt_method {
            EwtMethod::QueueLength => queue_length_ewt(
                position,
                stats.aht(self.default_aht),
                counts.ready,
                counts.busy,
            ),
            EwtMethod::MovingAverage => Some(stats.average_wait().unwrap_or_default()),
        })
    }

    /// EWT for a caller who would join the queue now.
    pub fn ewt_for_new(&self, queue: &str) -> Result<Option<TimeDelta>, RouterError> {
        let n = self.waiting(queue)?;
        self.ewt(queue, n)
    }

    /// EWT at 0-based `position` the way GES's `mode` asks (see [`EwtMode`]); `None` when
    /// unknown.
    pub fn ewt_by_mode(
        &self,
        queue: &str,
        position: usize,
        mode: EwtMode,
    ) -> Result<Option<TimeDelta>, RouterError> {
        if mode == EwtMode::Mode2 {
            return self.ewt(queue, position);
        }
        let q = self.queue(queue)?;
        let stats = q.stats.lock().clone();
        if mode == EwtMode::Mode1 {
            return Ok(stats
                .departure_interval()
                .map(|i| i * (position as i32 + 1)));
        }
        let counts = self.agents.count_states(q.eligible.words());
        if counts.logged_in == 0 {
            return Ok(None);
        }
        Ok(queue_length_ewt(
            position,
            stats.aht(self.default_aht),
            counts.ready,
            counts.busy,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// `secs` after 09:00 UTC on Monday 2 March 2026 (the router tests' time line).
    pub(super) fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap() + TimeDelta::seconds(secs)
    }

    /// A longest-idle queue of `name` requiring `expr`, its EWT from the queue length.
    pub(super) fn queue_def(name: &str, expr: &str) -> QueueDef {
        QueueDef {
            name: name.into(),
            skill_expression: expr.into(),
            selection: SelectionPolicy::LongestIdle,
            ewt_method: EwtMethod::QueueLength,
        }
    }

    /// Agent `id` (also its name and SIP user) with `skills`.
    pub(super) fn agent_info(id: &str, skills: &[(&str, u8)]) -> AgentInfo {
        AgentInfo {
            id: id.into(),
            name: id.into(),
            sip_user: id.into(),
            skills: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
        }
    }

    /// Interaction `id` waiting with priority `p` since `t(at)`.
    pub(super) fn waiting(id: Uuid, p: i64, at: i64) -> Waiting {
        Waiting {
            id,
            priority: p,
            enqueued_at: t(at),
        }
    }

    fn router() -> Router {
        let (q, a) = (queue_def, agent_info);
        Router::new(
            vec![
                q("Sales_VQ", "Sales >= 5"),
                q("Support_VQ", "Support > 0"),
                q("Any_VQ", ""),
            ],
            vec![
                a("alice", &[("Sales", 8), ("Support", 3)]),
                a("bob", &[("Sales", 5)]),
                a("carol", &[("Support", 9)]),
            ],
        )
        .unwrap()
    }

    fn w(p: i64, at: i64) -> Waiting {
        waiting(Uuid::new_v4(), p, at)
    }

    #[test]
    fn an_arrival_goes_to_the_longest_idle_eligible_agent() {
        let r = router();
        r.set_agent_state("bob", StateKind::Ready, t(0), None, None)
            .unwrap();
        r.set_agent_state("alice", StateKind::Ready, t(5), None, None)
            .unwrap();
        r.set_agent_state("carol", StateKind::Ready, t(-10), None, None)
            .unwrap();
        let x = w(0, 20);
        let got = r.enqueue("Sales_VQ", x.clone(), t(20)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].agent.as_str(), got[0].interaction), ("bob", x.id));
        assert_eq!(
            r.agents().get(got[0].agent_idx).state(),
            StateKind::Reserved
        );
        let y = w(0, 21);
        assert_eq!(r.enqueue("Sales_VQ", y, t(21)).unwrap()[0].agent, "alice");
        assert!(
            r.enqueue("Sales_VQ", w(0, 22), t(22)).unwrap().is_empty(),
            "carol has no Sales"
        );
        assert_eq!(r.waiting("Sales_VQ").unwrap(), 1);
    }

    #[test]
    fn a_ready_agent_takes_the_best_head_across_its_queues() {
        let r = router();
        let low_old = w(0, 0);
        let high_new = w(5, 30);
        let support = w(0, -100);
        r.enqueue("Sales_VQ", low_old.clone(), t(0)).unwrap();
        r.enqueue("Any_VQ", high_new.clone(), t(30)).unwrap();
        r.enqueue("Support_VQ", support.clone(), t(-100)).unwrap();
        // Alice serves Sales, Support and Any: priority 5 wins over older priority 0 heads.
        let a = r
            .set_agent_state("alice", StateKind::Ready, t(40), None, None)
            .unwrap();
        assert_eq!(a[0].interaction, high_new.id);
        assert_eq!(a[0].waited, TimeDelta::seconds(10));
        r.set_agent_state("alice", StateKind::Busy, t(41), None, None)
            .unwrap();
        r.set_agent_state("alice", StateKind::AfterCallWork, t(50), None, Some(t(60)))
            .unwrap();
        // Then equal priorities: the longest waiting (Support's) first.
        let b = r
            .set_agent_state("alice", StateKind::Ready, t(60), None, None)
            .unwrap();
        assert_eq!(b[0].interaction, support.id);
        // Bob only serves Sales.
        let c = r
            .set_agent_state("bob", StateKind::Ready, t(61), None, None)
            .unwrap();
        assert_eq!(c[0].interaction, low_old.id);
    }

    #[test]
    fn withdrawal_positions_counts_and_ewt() {
        let r = router();
        let (a, b, c) = (w(0, 0), w(0, 1), w(0, 2));
        for x in [&a, &b, &c] {
            r.enqueue("Sales_VQ", x.clone(), t(3)).unwrap();
        }
        assert!(r.withdraw("Sales_VQ", b.id).unwrap());
        assert_eq!(r.position("Sales_VQ", c.id).unwrap(), Some(1));
        assert_eq!(r.ewt_for_new("Sales_VQ").unwrap(), None, "nobody logged in");
        r.set_agent_state("bob", StateKind::NotReady, t(3), Some("meeting"), None)
            .unwrap();
        r.set_agent_state("alice", StateKind::NotReady, t(3), None, None)
            .unwrap();
        assert_eq!(
            r.agent_counts("Sales_VQ").unwrap(),
            AgentCounts {
                logged_in: 2,
                ready: 0,
                busy: 0
            }
        );
        assert_eq!(
            r.ewt_for_new("Sales_VQ").unwrap(),
            None,
            "logged in, but nobody ready or busy"
        );
        let got = r
            .set_agent_state("alice", StateKind::Ready, t(4), None, None)
            .unwrap();
        assert_eq!(got[0].interaction, a.id);
        r.record_handle_time("Sales_VQ", TimeDelta::seconds(120))
            .unwrap();
        // One busy eligible agent (alice), one waiting (c): EWT of a new arrival = 2 × 120 s.
        assert_eq!(
            r.ewt_for_new("Sales_VQ").unwrap(),
            Some(TimeDelta::seconds(240))
        );
        assert!(matches!(
            r.enqueue("Nope", w(0, 0), t(0)),
            Err(RouterError::UnknownQueue(_))
        ));
    }

    #[test]
    fn skills_changes_move_eligibility() {
        let r = router();
        r.set_agent_state("carol", StateKind::Ready, t(0), None, None)
            .unwrap();
        assert!(r.claim_for("Sales_VQ").unwrap().is_none());
        r.set_agent_skills("carol", &[("Sales".into(), 6)]).unwrap();
        assert_eq!(r.claim_for("Sales_VQ").unwrap(), Some(2));
        // An unused reservation is given back and the agent is found again.
        r.release(2, t(1)).unwrap();
        assert_eq!(r.claim_for("Any_VQ").unwrap(), Some(2));
    }

    #[test]
    fn a_triggered_callback_leaves_its_agent_ready_and_pacing_bounds_dials_by_ready_agents() {
        let r = router();
        r.set_agent_state("alice", StateKind::Ready, t(0), None, None)
            .unwrap();
        r.set_agent_state("bob", StateKind::Ready, t(1), None, None)
            .unwrap();
        let callbacks: Vec<Waiting> = (0..10).map(|i| w(0, 10 + i)).collect();
        let mut triggered = Vec::new();
        for c in &callbacks {
            triggered.extend(r.enqueue_paced("Sales_VQ", c.clone(), t(30)).unwrap());
        }
        // Two ready agents: two callbacks dialled, in queue order, nobody reserved.
        let ids: Vec<Uuid> = triggered.iter().map(|a| a.interaction).collect();
        assert_eq!(ids, vec![callbacks[0].id, callbacks[1].id]);
        assert!(triggered.iter().all(|a| !a.reserved));
        assert_eq!(r.in_flight("Sales_VQ").unwrap(), 2);
        assert_eq!(r.waiting("Sales_VQ").unwrap(), 8);
        assert_eq!(r.agent_counts("Sales_VQ").unwrap().ready, 2);
        // An agent becoming ready again triggers nothing more: the rule still holds.
        r.set_agent_state("bob", StateKind::NotReady, t(31), None, None)
            .unwrap();
        let again = r
            .set_agent_state("bob", StateKind::Ready, t(32), None, None)
            .unwrap();
        assert!(again.is_empty(), "{again:?}");
        // The first dial fails: its flight ends and the next callback is dialled.
        let next = r.settle(callbacks[0].id, t(40));
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].interaction, callbacks[2].id);
        assert!(
            r.settle(callbacks[0].id, t(41)).is_empty(),
            "settling is idempotent"
        );
        assert_eq!(r.in_flight("Sales_VQ").unwrap(), 2);
        // The second customer answers and queues live at the callback's place: an agent is
        // reserved for them and their flight ends; the other agent is busy, so nothing more.
        let got = r.enqueue("Sales_VQ", callbacks[1].clone(), t(50)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].interaction, got[0].reserved),
            (callbacks[1].id, true)
        );
        assert_eq!(r.in_flight("Sales_VQ").unwrap(), 1);
        assert_eq!(r.agent_counts("Sales_VQ").unwrap().ready, 1);
        assert_eq!(r.waiting("Sales_VQ").unwrap(), 7);
    }

    #[test]
    fn the_agent_who_triggers_a_callback_takes_the_next_live_call() {
        let r = router();
        let callback = w(0, 0);
        let caller = w(0, 5);
        r.enqueue_paced("Sales_VQ", callback.clone(), t(0)).unwrap();
        r.enqueue("Sales_VQ", caller.clone(), t(5)).unwrap();
        assert_eq!(r.position("Sales_VQ", caller.id).unwrap(), Some(1));
        let got = r
            .set_agent_state("bob", StateKind::Ready, t(10), None, None)
            .unwrap();
        let pairs: Vec<(Uuid, bool)> = got.iter().map(|a| (a.interaction, a.reserved)).collect();
        assert_eq!(pairs, vec![(callback.id, false), (caller.id, true)]);
        assert_eq!(
            got[0].agent, "bob",
            "the trigger names the agent who became ready"
        );
        // With nobody ready, a held-back callback does not block a live call behind it.
        let later = w(0, 20);
        let live = w(0, 30);
        r.enqueue_paced("Sales_VQ", later.clone(), t(20)).unwrap();
        assert!(
            r.enqueue("Sales_VQ", live.clone(), t(30))
                .unwrap()
                .is_empty()
        );
        let got = r
            .set_agent_state("alice", StateKind::Ready, t(40), None, None)
            .unwrap();
        // Alice is the only ready agent and one dial is in flight: she takes the live call.
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].interaction, got[0].reserved), (live.id, true));
        assert!(r.withdraw("Sales_VQ", later.id).unwrap());
    }

    #[test]
    fn concurrent_triggers_settles_and_agent_changes_trigger_each_callback_once() {
        use std::collections::HashSet;
        use std::sync::{Arc, Mutex};
        let r = Arc::new(router());
        let seen = Arc::new(Mutex::new(HashSet::new()));
        // Settles every trigger it is given (and those its settles cause), recording each.
        let drain = |r: &Router, seen: &Mutex<HashSet<Uuid>>, mut work: Vec<Assignment>| {
            while let Some(a) = work.pop() {
                if a.reserved {
                    continue;
                }
                assert!(
                    seen.lock().unwrap().insert(a.interaction),
                    "triggered twice"
                );
                assert!(
                    r.in_flight("Sales_VQ").unwrap() <= 2,
                    "more dials than agents"
                );
                work.extend(r.settle(a.interaction, t(0)));
            }
        };
        let producers: Vec<_> = (0..3)
            .map(|k| {
                let (r, seen) = (r.clone(), seen.clone());
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        let got = r.enqueue_paced("Sales_VQ", w(0, k * 10_000 + i), t(0));
                        drain(&r, &seen, got.unwrap());
                    }
                })
            })
            .collect();
        let toggler = {
            let (r, seen) = (r.clone(), seen.clone());
            std::thread::spawn(move || {
                for i in 0..3000 {
                    let agent = if i % 2 == 0 { "alice" } else { "bob" };
                    let got = r.set_agent_state(agent, StateKind::Ready, t(0), None, None);
                    drain(&r, &seen, got.unwrap());
                    let _ = r.set_agent_state(agent, StateKind::NotReady, t(0), None, None);
                }
            })
        };
        for p in producers {
            p.join().unwrap();
        }
        toggler.join().unwrap();
        // Everyone ready at the end: every callback is triggered, exactly once, and settled.
        let got = r
            .set_agent_state("alice", StateKind::Ready, t(1), None, None)
            .unwrap();
        drain(&r, &seen, got);
        assert_eq!(seen.lock().unwrap().len(), 6000);
        assert_eq!(r.in_flight("Sales_VQ").unwrap(), 0);
        assert_eq!(r.waiting("Sales_VQ").unwrap(), 0);
        assert_eq!(r.agent_counts("Sales_VQ").unwrap().ready, 1);
    }

    #[test]
    fn the_demo_configuration_builds() {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let cfg = Config::load(&base.join("boomerang.yaml")).unwrap();
        let r = Router::from_config(&cfg).unwrap();
        assert_eq!(r.agents().len(), 3);
        assert_eq!(r.agent_counts("Sales_VQ_CB").unwrap().logged_in, 0);
    }

    #[test]
    fn a_call_with_its_own_skill_requirement_waits_for_an_agent_who_meets_it() {
        let agent = |id: &str, skills: &[(&str, u8)]| AgentInfo {
            id: id.into(),
            name: id.into(),
            sip_user: String::new(),
            skills: skills.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        let r = Router::new(
            vec![QueueDef {
                name: "Q".into(),
                skill_expression: "Sales > 0".into(),
                selection: SelectionPolicy::LongestIdle,
                ewt_method: EwtMethod::QueueLength,
            }],
            vec![
                agent("bob", &[("Sales", 5)]),
                agent("alice", &[("Sales", 5), ("French", 9)]),
            ],
        )
        .unwrap();
        let w = |n: u128, secs: i64| Waiting {
            id: Uuid::from_u128(n),
            priority: 0,
            enqueued_at: t(secs),
        };
        // Bob is the longest idle, but the call needs French.
        r.set_agent_state("bob", StateKind::Ready, t(0), None, None)
            .unwrap();
        let got = r
            .enqueue_requiring("Q", w(1, 1), "French >= 5", t(1))
            .unwrap();
        assert!(got.is_empty(), "bob must not take a French call");
        // A plain call behind it may not jump the queue either way: bob skips the queue.
        assert!(r.enqueue("Q", w(2, 2), t(2)).unwrap().is_empty());
        let got = r
            .set_agent_state("alice", StateKind::Ready, t(3), None, None)
            .unwrap();
        let pairs: Vec<(&str, Uuid)> = got
            .iter()
            .map(|a| (a.agent.as_str(), a.interaction))
            .collect();
        // Alice takes the French call; the plain call behind it goes to bob at once.
        assert_eq!(
            pairs,
            vec![("alice", Uuid::from_u128(1)), ("bob", Uuid::from_u128(2))]
        );
        assert!(r.enqueue_requiring("Q", w(3, 5), "Sales >", t(5)).is_err());
    }
}

//! Delivers the router's assignments to whoever waits for them: a caller's Route Call block (by
//! interaction id) or the callback dialer (everything else). Every router change that can
//! produce assignments goes through here, so none is dropped.

use std::sync::Arc;

use parking_lot::RwLock;

use dashmap::DashMap;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::agents::{Requested, StateKind};
use super::queue::Waiting;
use super::router::{Assignment, Router, RouterError, WaitRules};
use crate::clock::SharedClock;

/// Receives assignments that no live call waits for (callbacks).
pub type AssignmentSink = Arc<dyn Fn(Assignment) + Send + Sync>;

/// The router plus the waiters of its assignments.
pub struct Dispatch {
    router: Arc<Router>,
    clock: SharedClock,
    waiters: DashMap<Uuid, oneshot::Sender<Assignment>>,
    sink: RwLock<Option<AssignmentSink>>,
    stats: super::stats::QueueStats,
    remote: std::sync::OnceLock<Arc<crate::cluster::Asker>>,
}

impl Dispatch {
    /// Wraps a router.
    pub fn new(router: Arc<Router>, clock: SharedClock) -> Self {
        Dispatch {
            router,
            clock,
            waiters: DashMap::new(),
            sink: RwLock::new(None),
            stats: Default::default(),
            remote: std::sync::OnceLock::new(),
        }
    }

    /// Lets callers waiting here be given agents homed on other nodes (a cluster's agents).
    pub fn set_remote(&self, asker: Arc<crate::cluster::Asker>) {
        let _ = self.remote.set(asker);
    }

    /// The way to other nodes' agents, when this node is part of a cluster.
    pub fn remote(&self) -> Option<&Arc<crate::cluster::Asker>> {
        self.remote.get()
    }

    /// The router, for reads (EWT, positions, counts).
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// The clock assignments are timed by, for the engine's parts that have no other handle.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Answered, abandoned and service-level counters per queue.
    pub fn stats(&self) -> &super::stats::QueueStats {
        &self.stats
    }

    /// Where assignments of interactions without a waiter go.
    pub fn set_sink(&self, sink: AssignmentSink) {
        *self.sink.write() = Some(sink);
    }

    /// Hands each assignment to its waiter or to the sink; an assignment whose waiter has
    /// gone (the caller hung up meanwhile) gives the agent back.
    pub fn deliver(&self, assignments: Vec<Assignment>) {
        for a in assignments {
            if let Some((_, tx)) = self.waiters.remove(&a.interaction) {
                if let Err(a) = tx.send(a) {
                    self.release(&a);
                }
                continue;
            }
            let sink = self.sink.read().clone();
            match sink {
                Some(f) => f(a),
                None => {
                    tracing::warn!(interaction = %a.interaction, agent = %a.agent, "assignment without a taker");
                }
            }
        }
    }

    /// Queues a live call and returns where its assignment will arrive.
    pub fn enqueue_waiter(
        &self,
        queue: &str,
        w: Waiting,
    ) -> Result<oneshot::Receiver<Assignment>, RouterError> {
        self.enqueue_waiter_requiring(queue, w, None)
    }

    /// As [`Self::enqueue_waiter`], for a call that also requires a skill expression of its agent.
    pub fn enqueue_waiter_requiring(
        &self,
        queue: &str,
        w: Waiting,
        requirement: Option<&str>,
    ) -> Result<oneshot::Receiver<Assignment>, RouterError> {
        let rules = WaitRules {
            requirement,
            ..WaitRules::default()
        };
        self.enqueue_waiter_with(queue, w, &rules)
    }

    /// As [`Self::enqueue_waiter`], with the call's own rules (requirement, relaxation,
    /// priority growth).
    pub fn enqueue_waiter_with(
        &self,
        queue: &str,
        w: Waiting,
        rules: &WaitRules<'_>,
    ) -> Result<oneshot::Receiver<Assignment>, RouterError> {
        let (tx, rx) = oneshot::channel();
        let id = w.id;
        self.waiters.insert(id, tx);
        let now = self.clock.now();
        let queued = self.router.enqueue_with(queue, w, rules, now);
        match queued {
            Ok(list) => {
                self.deliver(list);
                Ok(rx)
            }
            Err(e) => {
                self.waiters.remove(&id);
                Err(e)
            }
        }
    }

    /// Applies the skill relaxations due now and delivers what they make possible.
    pub fn relax_due(&self) {
        let list = self.router.relax_due(self.clock.now());
        self.deliver(list);
    }

    /// Queues a callback to dial: at the head it is triggered under the router's pacing rule
    /// and goes to the sink with the agent left Ready (`Assignment::reserved` is false).
    pub fn enqueue(&self, queue: &str, w: Waiting) -> Result<(), RouterError> {
        let list = self.router.enqueue_paced(queue, w, self.clock.now())?;
        self.deliver(list);
        Ok(())
    }

    /// Ends a triggered callback's flight (dial failed, customer left or served) so that the
    /// pacing rule may trigger the next one; idempotent.
    pub fn settle(&self, id: Uuid) {
        let list = self.router.settle(id, self.clock.now());
        self.deliver(list);
    }

    /// Takes an interaction out of its queue; true if it was still waiting.
    pub fn withdraw(&self, queue: &str, id: Uuid) -> Result<bool, RouterError> {
        self.waiters.remove(&id);
        self.router.withdraw(queue, id)
    }

    /// Changes an agent's state and delivers what that makes possible.
    pub fn set_agent_state(
        &self,
        agent: &str,
        to: StateKind,
        reason: Option<&str>,
    ) -> Result<(), RouterError> {
        let list = self
            .router
            .set_agent_state(agent, to, self.clock.now(), reason, None)?;
        self.deliver(list);
        Ok(())
    }

    /// An agent's or administrator's state request: applied now, or when the agent's call
    /// ends (what the agent asked for during a call is where the call leaves them).
    pub fn request_agent_state(
        &self,
        agent: &str,
        to: StateKind,
        reason: Option<&str>,
    ) -> Result<Requested, RouterError> {
        let (done, list) = self
            .router
            .request_agent_state(agent, to, self.clock.now(), reason)?;
        self.deliver(list);
        Ok(done)
    }

    /// Ends an agent's call: the state they asked for during it, else `wrap_up` of after-call
    /// work (then Ready, on the clock), else Ready. The state reached, if it moved.
    pub fn finish_call(
        self: &Arc<Self>,
        agent: &str,
        wrap_up: chrono::TimeDelta,
    ) -> Result<Option<StateKind>, RouterError> {
        let now = self.clock.now();
        let until = (wrap_up > chrono::TimeDelta::zero()).then(|| now + wrap_up);
        let (to, list) = self.router.finish_call(agent, now, until)?;
        self.deliver(list);
        if let (Some(StateKind::AfterCallWork), Some(until)) = (to, until) {
            let (me, agent) = (self.clone(), agent.to_string());
            tokio::spawn(async move {
                me.clock.sleep_until(until).await;
                match me.router.end_wrap_up(&agent, me.clock.now()) {
                    Ok(list) => me.deliver(list),
                    Err(e) => tracing::warn!(agent, error = %e, "wrap-up not ended"),
                }
            });
        }
        Ok(to)
    }

    /// Gives back an agent reserved for an assignment that was not used; an unreserved
    /// assignment (a triggered callback) holds no agent and is left alone.
    pub fn release(&self, a: &Assignment) {
        if !a.reserved {
            return;
        }
        match self.router.release(a.agent_idx, self.clock.now()) {
            Ok(list) => self.deliver(list),
            Err(e) => tracing::warn!(agent = %a.agent, error = %e, "could not release agent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::{EwtMethod, SelectionPolicy};
    use crate::routing::agents::AgentInfo;
    use crate::routing::router::QueueDef;
    use chrono::TimeZone;

    fn dispatch() -> (Dispatch, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(
            chrono::Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap(),
        ));
        let router = Router::new(
            vec![QueueDef {
                name: "Q".into(),
                skill_expression: "Sales > 0".into(),
                selection: SelectionPolicy::LongestIdle,
                ewt_method: EwtMethod::QueueLength,
            }],
            vec![AgentInfo {
                id: "a".into(),
                name: "A".into(),
                sip_user: "1001".into(),
                skills: vec![("Sales".to_string(), 5u8)],
            }],
        )
        .unwrap();
        (Dispatch::new(Arc::new(router), clock.clone()), clock)
    }

    fn waiting(clock: &ManualClock) -> Waiting {
        Waiting {
            id: Uuid::new_v4(),
            priority: 0,
            enqueued_at: clock.now(),
        }
    }

    #[tokio::test]
    async fn a_waiting_call_gets_the_agent_who_becomes_ready() {
        let (d, clock) = dispatch();
        d.set_agent_state("a", StateKind::NotReady, None).unwrap();
        let w = waiting(&clock);
        let id = w.id;
        let rx = d.enqueue_waiter("Q", w).unwrap();
        d.set_agent_state("a", StateKind::Ready, None).unwrap();
        let a = rx.await.unwrap();
        assert_eq!((a.interaction, a.agent.as_str()), (id, "a"));
    }

    #[tokio::test]
    async fn a_gone_waiter_gives_the_agent_to_the_next_caller() {
        let (d, clock) = dispatch();
        d.set_agent_state("a", StateKind::NotReady, None).unwrap();
        let first = d.enqueue_waiter("Q", waiting(&clock)).unwrap();
        let second_w = waiting(&clock);
        let second_id = second_w.id;
        let second = d.enqueue_waiter("Q", second_w).unwrap();
        drop(first);
        d.set_agent_state("a", StateKind::Ready, None).unwrap();
        assert_eq!(second.await.unwrap().interaction, second_id);
    }

    #[tokio::test]
    async fn other_assignments_go_to_the_sink() {
        let (d, clock) = dispatch();
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        d.set_sink(Arc::new(move |a| g.lock().unwrap().push(a.interaction)));
        d.set_agent_state("a", StateKind::Ready, None).unwrap();
        let w = waiting(&clock);
        let id = w.id;
        d.enqueue("Q", w).unwrap();
        assert_eq!(*got.lock().unwrap(), vec![id]);
    }
}

//! The router's matching half: which waiting interaction an agent takes, which agent an
//! interaction takes, and the pacing of callbacks (the rules in the parent module's doc).

use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Assignment, Router, RouterQueue, lock, pop};
use crate::routing::agents::{AgentIdx, StateKind};
use crate::routing::queue::Waiting;

impl Router {
    pub(super) fn dispatch_queue(&self, qi: usize, now: DateTime<Utc>) -> Vec<Assignment> {
        let q = &self.queues[qi];
        let mut out = Vec::new();
        loop {
            // A paced head ahead of the live head is triggered first (the agent stays ready
            // and may then take the live call); a held-back paced head never blocks live calls.
            let paced_first = q.paced_len.load(Ordering::Acquire) > 0 && self.paced_ahead(q, now);
            if paced_first && let Some(a) = self.try_trigger(qi, now, None) {
                out.push(a);
                continue;
            }
            if let Some(a) = self.assign_live_head(qi, now) {
                out.push(a);
                continue;
            }
            if !paced_first
                && q.paced_len.load(Ordering::Acquire) > 0
                && let Some(a) = self.try_trigger(qi, now, None)
            {
                out.push(a);
                continue;
            }
            return out;
        }
    }

    /// True when the paced head would be served before the live head (or no live call waits).
    fn paced_ahead(&self, q: &RouterQueue, now: DateTime<Utc>) -> bool {
        let paced = lock(&q.paced).head(now).map(|(w, p)| (p, w.enqueued_at));
        let Some((pp, pt)) = paced else { return false };
        let live = lock(&q.waiting).head(now).map(|(w, p)| (p, w.enqueued_at));
        live.is_none_or(|(lp, lt)| pp > lp || (pp == lp && pt <= lt))
    }

    /// Gives the live head of a queue to an eligible ready agent, if there is one.
    fn assign_live_head(&self, qi: usize, now: DateTime<Utc>) -> Option<Assignment> {
        let q = &self.queues[qi];
        if q.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let head = if self.requirements.is_empty() {
            None
        } else {
            lock(&q.waiting).head(now).map(|(w, _)| w.id)
        };
        let agent = match head {
            Some(id) if self.requirements.contains_key(&id) => {
                self.ready
                    .claim_first(&self.agents, &q.eligible, |idx| self.meets(idx, id, now))
            }
            _ => self.claim(q),
        }?;
        match pop(q, now) {
            Some((w, _)) if self.meets(agent, w.id, now) => Some(self.assign(q, w, agent, now)),
            popped => {
                // Another router took the head meanwhile (and the next one, if any, needs
                // other skills): put it back and free the agent, keeping its place.
                if let Some((w, growth)) = popped {
                    let mut waiting = lock(&q.waiting);
                    waiting.push_growing(w, growth);
                    q.len.store(waiting.len(), Ordering::Release);
                }
                let _ = self
                    .agents
                    .set_state(agent, StateKind::Ready, now, None, None);
                self.ready.insert(&self.agents, agent);
                None
            }
        }
    }

    /// The pacing rule's check: one ready eligible agent of `q` when more than `in_flight` of
    /// them are ready. Stops counting as soon as the answer is known.
    fn ready_beyond(&self, q: &RouterQueue, in_flight: usize) -> Option<AgentIdx> {
        // Popcounts of the queue's eligibility words against the agents' ready bits.
        let mut first = None;
        let mut ready = 0;
        for (w, word) in q.eligible.words().enumerate() {
            let bits = word & self.agents.ready_word(w);
            if bits == 0 {
                continue;
            }
            first.get_or_insert(w as AgentIdx * 64 + bits.trailing_zeros());
            ready += bits.count_ones() as usize;
            if ready > in_flight {
                return first;
            }
        }
        None
    }

    /// Triggers the paced head of queue `qi` if the pacing rule allows it, naming `by` (the
    /// agent whose readiness triggers it) or else a ready eligible agent.
    fn try_trigger(
        &self,
        qi: usize,
        now: DateTime<Utc>,
        by: Option<AgentIdx>,
    ) -> Option<Assignment> {
        let q = &self.queues[qi];
        loop {
            let f = q.in_flight.load(Ordering::Acquire);
            // The pacing rule: more ready eligible agents than callbacks in flight.
            let ready = self.ready_beyond(q, f)?;
            let agent = by.unwrap_or(ready);
            if q.in_flight
                .compare_exchange(f, f + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let popped = {
                let mut paced = lock(&q.paced);
                let w = paced.pop(now);
                q.paced_len.store(paced.len(), Ordering::Release);
                w
            };
            let Some(w) = popped else {
                q.in_flight.fetch_sub(1, Ordering::AcqRel);
                return None;
            };
            // Triggered again before its last flight was settled: counted once.
            if self.triggered.insert(w.id, qi).is_some() {
                q.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
            return Some(Assignment {
                interaction: w.id,
                queue: q.name.clone(),
                agent: self.agents.get(agent).id.clone(),
                agent_idx: agent,
                waited: (now - w.enqueued_at).max(TimeDelta::zero()),
                reserved: false,
            });
        }
    }

    fn assign(
        &self,
        q: &RouterQueue,
        w: Waiting,
        agent: AgentIdx,
        now: DateTime<Utc>,
    ) -> Assignment {
        self.requirements.remove(&w.id);
        // A reached callback customer given an agent leaves the pacing count.
        if let Some((_, qi)) = self.triggered.remove(&w.id) {
            self.queues[qi].in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        let waited = (now - w.enqueued_at).max(TimeDelta::zero());
        {
            let mut stats = q.stats.lock();
            stats.record_wait(waited);
            stats.record_departure(now);
        }
        Assignment {
            interaction: w.id,
            queue: q.name.clone(),
            agent: self.agents.get(agent).id.clone(),
            agent_idx: agent,
            waited,
            reserved: true,
        }
    }

    /// The best head among the agent's queues: highest priority, then longest waiting. A
    /// paced head counts only when the pacing rule lets it be triggered; the flag says it is
    /// one.
    fn best_queue_for(&self, idx: AgentIdx, now: DateTime<Utc>) -> Option<(usize, bool)> {
        let queues = self.agent_queues[idx as usize].read();
        let mut best: Option<(i64, DateTime<Utc>, usize, bool)> = None;
        let better = |best: &Option<(i64, DateTime<Utc>, usize, bool)>, p: i64, t| {
            best.is_none_or(|(bp, bt, _, _)| p > bp || (p == bp && t < bt))
        };
        for &qi in queues.iter() {
            let q = &self.queues[qi];
            if q.len.load(Ordering::Acquire) > 0 {
                let head = lock(&q.waiting)
                    .head(now)
                    .map(|(w, p)| (p, w.enqueued_at, w.id));
                let head = head
                    .filter(|(_, _, id)| self.meets(idx, *id, now))
                    .map(|(p, t, _)| (p, t));
                if let Some((p, t)) = head
                    && better(&best, p, t)
                {
                    best = Some((p, t, qi, false));
                }
            }
            if q.paced_len.load(Ordering::Acquire) > 0 {
                let head = lock(&q.paced).head(now).map(|(w, p)| (p, w.enqueued_at));
                if let Some((p, t)) = head
                    && better(&best, p, t)
                    && self
                        .ready_beyond(q, q.in_flight.load(Ordering::Acquire))
                        .is_some()
                {
                    best = Some((p, t, qi, true));
                }
            }
        }
        best.map(|(_, _, qi, paced)| (qi, paced))
    }

    pub(super) fn dispatch_agent(&self, idx: AgentIdx, now: DateTime<Utc>) -> Vec<Assignment> {
        let mut out = Vec::new();
        // Races with other routers are retried a few times; triggers are bounded by the
        // pacing rule (each one raises a queue's in-flight count towards its ready agents).
        let mut retries = 0;
        while retries < 8 {
            let Some((qi, paced)) = self.best_queue_for(idx, now) else {
                return out;
            };
            if paced {
                match self.try_trigger(qi, now, Some(idx)) {
                    Some(a) => out.push(a),
                    None => retries += 1,
                }
                continue;
            }
            retries += 1;
            let since = self.agents.get(idx).ready_since_ns();
            if !self.agents.claim(idx) {
                return out;
            }
            let q = &self.queues[qi];
            let popped = pop(q, now);
            match popped {
                Some((w, growth)) if !self.meets(idx, w.id, now) => {
                    let mut waiting = lock(&q.waiting);
                    waiting.push_growing(w, growth);
                    q.len.store(waiting.len(), Ordering::Release);
                    drop(waiting);
                    let _ = self
                        .agents
                        .set_state(idx, StateKind::Ready, now, None, None);
                }
                Some((w, _)) => {
                    self.ready.remove_entry(since, idx);
                    let had_requirement = self.requirements.contains_key(&w.id);
                    out.push(self.assign(q, w, idx, now));
                    // The head needed skills others lack: whoever waited behind it may now
                    // go to an agent who was ready all along.
                    if had_requirement {
                        out.extend(self.dispatch_queue(qi, now));
                    }
                    return out;
                }
                None => {
                    let _ = self
                        .agents
                        .set_state(idx, StateKind::Ready, now, None, None);
                }
            }
        }
        out
    }
}

//! Lock-free readiness: which agents may serve a queue (a bitset per queue, rebuilt when skills
//! or expressions change) and which agents are ready, ordered by how long they have been idle
//! (a lock-free skip list). Claiming an agent is the agent's own compare-and-swap
//! (Ready → Reserved), so two routers never get the same agent and nobody takes a global lock.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_skiplist::SkipSet;

use super::agents::{AgentIdx, AgentRegistry, StateKind};

/// The agents eligible for one queue, one bit per agent.
#[derive(Debug)]
pub struct Eligibility {
    words: Vec<AtomicU64>,
    count: AtomicUsize,
}

impl Eligibility {
    /// Nobody eligible, room for `agents` agents.
    pub fn new(agents: usize) -> Self {
        Eligibility {
            words: (0..agents.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            count: AtomicUsize::new(0),
        }
    }

    /// Marks an agent eligible or not.
    pub fn set(&self, idx: AgentIdx, eligible: bool) {
        let (w, b) = ((idx / 64) as usize, idx % 64);
        if let Some(word) = self.words.get(w) {
            if eligible {
                if word.fetch_or(1 << b, Ordering::AcqRel) & (1 << b) == 0 {
                    self.count.fetch_add(1, Ordering::AcqRel);
                }
            } else if word.fetch_and(!(1 << b), Ordering::AcqRel) & (1 << b) != 0 {
                self.count.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// True when the agent may serve the queue.
    #[inline]
    pub fn contains(&self, idx: AgentIdx) -> bool {
        let (w, b) = ((idx / 64) as usize, idx % 64);
        self.words
            .get(w)
            .is_some_and(|word| word.load(Ordering::Acquire) & (1 << b) != 0)
    }

    /// Eligible agents, in index order.
    pub fn iter(&self) -> impl Iterator<Item = AgentIdx> + '_ {
        self.words.iter().enumerate().flat_map(|(w, word)| {
            let mut bits = word.load(Ordering::Acquire);
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                Some(w as AgentIdx * 64 + b)
            })
        })
    }

    /// How many agents are eligible.
    pub fn count(&self) -> usize {
        self.words
            .iter()
            .map(|w| w.load(Ordering::Acquire).count_ones() as usize)
            .sum()
    }
}

/// Ready agents ordered by ready-since (then index): the longest idle first.
#[derive(Debug, Default)]
pub struct ReadySet {
    set: SkipSet<(i64, AgentIdx)>,
}

impl ReadySet {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes an agent that has just become ready (call after its state is Ready).
    pub fn insert(&self, agents: &AgentRegistry, idx: AgentIdx) {
        self.set.insert((agents.get(idx).ready_since_ns(), idx));
    }

    /// Forgets an agent that left Ready other than by a claim.
    pub fn remove(&self, agents: &AgentRegistry, idx: AgentIdx) {
        self.set.remove(&(agents.get(idx).ready_since_ns(), idx));
    }

    /// Removes the entry an agent had before its ready-since changed.
    pub fn remove_entry(&self, since: i64, idx: AgentIdx) {
        self.set.remove(&(since, idx));
    }

    /// Number of entries (ready agents, plus any entry a racing change has not removed yet).
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// True when no agent is listed.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Claims the longest-idle ready agent that `eligible` allows.
    pub fn claim_longest_idle(
        &self,
        agents: &AgentRegistry,
        eligible: &Eligibility,
    ) -> Option<AgentIdx> {
        // Walking the ready list costs about len/count steps (~30 ns each), scanning the eligible
        // agents about count loads (~3 ns each): take the cheaper, so a queue with rare skills
        // does not walk past thousands of ready agents it cannot use.
        let (count, len) = (eligible.count(), self.set.len());
        if count * count < 10 * len {
            return self.claim_longest_idle_of_few(agents, eligible);
        }
        for entry in self.set.iter() {
            let (since, idx) = *entry.value();
            if !eligible.contains(idx) {
                continue;
            }
            let agent = agents.get(idx);
            if agents.claim(idx) {
                entry.remove();
                return Some(idx);
            }
            // Not ready any more: drop the entry unless it is the agent's current one.
            if agent.state() != StateKind::Ready && agent.ready_since_ns() != since {
                entry.remove();
            }
        }
        None
    }

    fn claim_longest_idle_of_few(
        &self,
        agents: &AgentRegistry,
        eligible: &Eligibility,
    ) -> Option<AgentIdx> {
        // A lost race (another router claimed the best one) just means looking again.
        for _ in 0..16 {
            let best = eligible
                .iter()
                .map(|i| (agents.idle_since(i), i))
                .filter(|(since, _)| *since != i64::MAX)
                .min()?;
            if agents.claim(best.1) {
                self.set.remove(&best);
                return Some(best.1);
            }
        }
        None
    }

    /// Claims the longest-idle ready agent that `eligible` allows and `also` accepts (an
    /// interaction's own skill requirement); walks the ready list, so it is for the rare
    /// interactions that carry one.
    pub fn claim_first(
        &self,
        agents: &AgentRegistry,
        eligible: &Eligibility,
        also: impl Fn(AgentIdx) -> bool,
    ) -> Option<AgentIdx> {
        for entry in self.set.iter() {
            let (_, idx) = *entry.value();
            if !eligible.contains(idx) || !also(idx) {
                continue;
            }
            if agents.claim(idx) {
                entry.remove();
                return Some(idx);
            }
        }
        None
    }

    /// Claims the next ready eligible agent after `cursor` (round-robin).
    pub fn claim_round_robin(
        &self,
        agents: &AgentRegistry,
        eligible: &Eligibility,
        cursor: &AtomicUsize,
    ) -> Option<AgentIdx> {
        let n = agents.len();
        if n == 0 {
            return None;
        }
        let start = cursor.load(Ordering::Relaxed) % n;
        let order = eligible
            .iter()
            .filter(|i| *i as usize >= start)
            .chain(eligible.iter().filter(|i| (*i as usize) < start));
        for idx in order {
            let agent = agents.get(idx);
            let since = agent.ready_since_ns();
            if agents.claim(idx) {
                self.set.remove(&(since, idx));
                cursor.store(idx as usize + 1, Ordering::Relaxed);
                return Some(idx);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::agents::AgentInfo;
    use crate::routing::skills::SkillCatalog;
    use chrono::{TimeDelta, TimeZone, Utc};

    fn registry(n: usize) -> AgentRegistry {
        AgentRegistry::new(
            (0..n)
                .map(|i| AgentInfo {
                    id: format!("a{i}"),
                    name: String::new(),
                    sip_user: format!("{i}"),
                    skills: vec![],
                })
                .collect(),
            &SkillCatalog::new(),
        )
    }

    #[test]
    fn bitset_membership_and_iteration() {
        let e = Eligibility::new(130);
        for i in [0, 63, 64, 129] {
            e.set(i, true);
        }
        e.set(63, false);
        assert_eq!(e.iter().collect::<Vec<_>>(), vec![0, 64, 129]);
        assert_eq!(e.count(), 3);
        assert!(e.contains(129) && !e.contains(1) && !e.contains(500));
    }

    #[test]
    fn longest_idle_first_and_only_eligible() {
        let r = registry(4);
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap();
        let ready = ReadySet::new();
        for (i, secs) in [(0, 30), (1, 10), (2, 20), (3, 0)] {
            r.set_state(
                i,
                StateKind::Ready,
                t0 + TimeDelta::seconds(secs),
                None,
                None,
            )
            .unwrap();
            ready.insert(&r, i);
        }
        let e = Eligibility::new(4);
        for i in 0..3 {
            e.set(i, true);
        }
        assert_eq!(ready.claim_longest_idle(&r, &e), Some(1));
        assert_eq!(ready.claim_longest_idle(&r, &e), Some(2));
        assert_eq!(ready.claim_longest_idle(&r, &e), Some(0));
        assert_eq!(
            ready.claim_longest_idle(&r, &e),
            None,
            "agent 3 is not eligible"
        );
        assert_eq!(ready.len(), 1);
    }

    #[test]
    fn round_robin_takes_turns() {
        let r = registry(3);
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap();
        let ready = ReadySet::new();
        let e = Eligibility::new(3);
        for i in 0..3 {
            r.set_state(i, StateKind::Ready, t0, None, None).unwrap();
            ready.insert(&r, i);
            e.set(i, true);
        }
        let cursor = AtomicUsize::new(1);
        assert_eq!(ready.claim_round_robin(&r, &e, &cursor), Some(1));
        r.set_state(1, StateKind::Ready, t0, None, None).unwrap();
        assert_eq!(ready.claim_round_robin(&r, &e, &cursor), Some(2));
        assert_eq!(ready.claim_round_robin(&r, &e, &cursor), Some(0));
        assert_eq!(ready.claim_round_robin(&r, &e, &cursor), Some(1));
        assert_eq!(ready.claim_round_robin(&r, &e, &cursor), None);
    }
}

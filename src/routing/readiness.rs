//! Lock-free readiness: which agents may serve a queue (a bitset per queue, rebuilt when skills
//! or expressions change) and which agents are ready, ordered by how long they have been idle
//! (a lock-free skip list). Claiming an agent is the agent's own compare-and-swap
//! (Ready → Reserved), so two routers never get the same agent and nobody takes a global lock.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_epoch::{self as epoch, Guard};
use crossbeam_skiplist::base::SkipList;

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

    /// The bitset's words, for counting agents by state against it.
    pub fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().map(|w| w.load(Ordering::Acquire))
    }

    /// How many agents are eligible (kept by `set`, so reading it is one load).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// Ready agents ordered by ready-since (then index): the longest idle first.
///
/// A skip list used through its guard-based interface: one epoch pin per operation, and a walk
/// reads entries without touching their reference counts (the set-style interface pins and
/// counts on every step, which made walking cost about three times more).
pub struct ReadySet {
    set: SkipList<(i64, AgentIdx), ()>,
}

impl std::fmt::Debug for ReadySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadySet")
            .field("len", &self.set.len())
            .finish()
    }
}

impl Default for ReadySet {
    fn default() -> Self {
        ReadySet {
            set: SkipList::new(epoch::default_collector().clone()),
        }
    }
}

impl ReadySet {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    fn remove_key(&self, key: &(i64, AgentIdx), guard: &Guard) {
        if let Some(e) = self.set.remove(key, guard) {
            e.release(guard);
        }
    }

    /// Publishes an agent that has just become ready (call after its state is Ready).
    pub fn insert(&self, agents: &AgentRegistry, idx: AgentIdx) {
        let guard = &epoch::pin();
        self.set
            .insert((agents.get(idx).ready_since_ns(), idx), (), guard)
            .release(guard);
    }

    /// Forgets an agent that left Ready other than by a claim.
    pub fn remove(&self, agents: &AgentRegistry, idx: AgentIdx) {
        self.remove_key(&(agents.get(idx).ready_since_ns(), idx), &epoch::pin());
    }

    /// Removes the entry an agent had before its ready-since changed.
    pub fn remove_entry(&self, since: i64, idx: AgentIdx) {
        self.remove_key(&(since, idx), &epoch::pin());
    }

    /// Number of entries: ready agents, reserved agents claimed without a walk (their entry
    /// goes when they leave Reserved), and any entry a racing change has not removed yet.
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
        // Walking the ready list costs about len/count steps (~10 ns each, a pointer chase),
        // scanning the ready eligible agents about count loads (~1-2 ns each, plus two loads per
        // 64 agents): take the cheaper, so a queue with rare skills does not walk past thousands
        // of ready agents it cannot use. (Factors 3 and 30 measured no better than 10.)
        let (count, len) = (eligible.count(), self.set.len());
        if count * count < 10 * len {
            return self.claim_longest_idle_of_few(agents, eligible);
        }
        let guard = &epoch::pin();
        let mut next = self.set.front(guard);
        while let Some(entry) = next {
            next = entry.next();
            let (since, idx) = *entry.key();
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
            let mut best = (i64::MAX, 0);
            for (w, word) in eligible.words().enumerate() {
                // Only agents whose ready bit is set; the idle mirror and the claim's
                // compare-and-swap decide, the bit just skips the others cheaply.
                let mut bits = word & agents.ready_word(w);
                while bits != 0 {
                    let i = w as AgentIdx * 64 + bits.trailing_zeros();
                    bits &= bits - 1;
                    let since = agents.idle_since(i);
                    if since < best.0 {
                        best = (since, i);
                    }
                }
            }
            if best.0 == i64::MAX {
                return None;
            }
            if agents.claim(best.1) {
                // The agent's list entry stays until it leaves Reserved (see `Router`): finding
                // it again here would be a cold search through the list on the claim's path,
                // most of a sparse queue's claim time. Walkers skip it (not Ready, same since).
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
        let guard = &epoch::pin();
        let mut next = self.set.front(guard);
        while let Some(entry) = next {
            next = entry.next();
            let (_, idx) = *entry.key();
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
            // As for the longest idle of few: the entry goes when the agent leaves Reserved.
            if agents.claim(idx) {
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
    use crate::routing::agents::registry_of_plain_agents as registry;
    use chrono::{TimeDelta, TimeZone, Utc};

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
        // Few eligible agents: claimed by a scan, which leaves their entries for the router to
        // drop when they leave Reserved.
        assert_eq!(ready.len(), 4);
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

//! Interactions waiting in a virtual queue, ordered by effective priority (higher first) then by
//! enqueue time (earlier first). A callback may keep a caller's place by carrying the caller's
//! original enqueue time. Withdrawal finds its entry through an index instead of scanning.
//!
//! **Growing priorities.** An interaction whose priority grows while it waits
//! ([`PriorityGrowth`]) is never rewritten: its effective priority is computed from its initial
//! priority, its enqueue time and `now`. Entries sharing an initial priority and a growth form a
//! *lane* kept in enqueue order; within a lane the earliest entry always has the highest
//! effective priority, so the queue's head is the best of the lane heads (one comparison per
//! lane, not per entry). Fixed priorities share one ordered lane of their own.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::growth::PriorityGrowth;

/// A call or callback waiting for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Interaction id (a call's id or a callback's id).
    pub id: Uuid,
    /// Routing priority, higher first (the initial one when it grows while waiting).
    pub priority: i64,
    /// The time that orders it among equal priorities.
    pub enqueued_at: DateTime<Utc>,
}

/// Where an entry is ordered: smaller first.
type Rank = (Reverse<i64>, i64, u64);
type LaneKey = (i64, PriorityGrowth);

#[derive(Debug, Clone, Copy)]
enum Slot {
    Fixed(Rank),
    Lane(LaneKey, (i64, u64)),
}

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// One queue's waiting interactions.
#[derive(Debug, Default)]
pub struct WaitQueue {
    fixed: BTreeMap<Rank, Waiting>,
    lanes: HashMap<LaneKey, BTreeMap<(i64, u64), Waiting>>,
    index: HashMap<Uuid, Slot>,
    seq: u64,
}

impl WaitQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an interaction of fixed priority (replacing an earlier entry with the same id).
    pub fn push(&mut self, w: Waiting) {
        self.push_growing(w, None);
    }

    /// Adds an interaction whose priority grows by `growth` while it waits (or stays fixed).
    pub fn push_growing(&mut self, w: Waiting, growth: Option<PriorityGrowth>) {
        self.withdraw(w.id);
        self.seq += 1;
        let at = (nanos(w.enqueued_at), self.seq);
        match growth.filter(|g| g.increment > 0 && w.priority < g.limit) {
            Some(g) => {
                let lane = (w.priority, g);
                self.index.insert(w.id, Slot::Lane(lane, at));
                self.lanes.entry(lane).or_default().insert(at, w);
            }
            None => {
                let key = (Reverse(w.priority), at.0, at.1);
                self.index.insert(w.id, Slot::Fixed(key));
                self.fixed.insert(key, w);
            }
        }
    }

    fn rank_in_lane(lane: &LaneKey, at: (i64, u64), w: &Waiting, now: DateTime<Utc>) -> Rank {
        (Reverse(lane.1.at(lane.0, w.enqueued_at, now)), at.0, at.1)
    }

    /// The best entry at `now`: its rank and slot.
    fn best(&self, now: DateTime<Utc>) -> Option<(Rank, Slot)> {
        let mut best = self
            .fixed
            .first_key_value()
            .map(|(k, _)| (*k, Slot::Fixed(*k)));
        for (lane, entries) in &self.lanes {
            if let Some((at, w)) = entries.first_key_value() {
                let rank = Self::rank_in_lane(lane, *at, w, now);
                if best.is_none_or(|(b, _)| rank < b) {
                    best = Some((rank, Slot::Lane(*lane, *at)));
                }
            }
        }
        best
    }

    fn at_slot(&self, slot: Slot) -> Option<&Waiting> {
        match slot {
            Slot::Fixed(k) => self.fixed.get(&k),
            Slot::Lane(lane, at) => self.lanes.get(&lane)?.get(&at),
        }
    }

    fn remove_slot(&mut self, slot: Slot) -> Option<Waiting> {
        let w = match slot {
            Slot::Fixed(k) => self.fixed.remove(&k),
            Slot::Lane(lane, at) => {
                let entries = self.lanes.get_mut(&lane)?;
                let w = entries.remove(&at);
                if entries.is_empty() {
                    self.lanes.remove(&lane);
                }
                w
            }
        }?;
        self.index.remove(&w.id);
        Some(w)
    }

    /// The interaction that would be served next at `now`, with its effective priority.
    pub fn head(&self, now: DateTime<Utc>) -> Option<(&Waiting, i64)> {
        let (rank, slot) = self.best(now)?;
        Some((self.at_slot(slot)?, rank.0.0))
    }

    /// Removes and returns the head at `now`.
    pub fn pop(&mut self, now: DateTime<Utc>) -> Option<Waiting> {
        self.pop_growing(now).map(|(w, _)| w)
    }

    /// Removes the head at `now` with its growth (to put it back as it was).
    pub fn pop_growing(&mut self, now: DateTime<Utc>) -> Option<(Waiting, Option<PriorityGrowth>)> {
        let (_, slot) = self.best(now)?;
        let growth = match slot {
            Slot::Lane(lane, _) => Some(lane.1),
            Slot::Fixed(_) => None,
        };
        self.remove_slot(slot).map(|w| (w, growth))
    }

    /// Removes an interaction (abandon, cancel); true if it was waiting.
    pub fn withdraw(&mut self, id: Uuid) -> bool {
        match self.index.get(&id).copied() {
            Some(slot) => self.remove_slot(slot).is_some(),
            None => false,
        }
    }

    /// The rank of a waiting interaction at `now`.
    fn rank_of(&self, id: Uuid, now: DateTime<Utc>) -> Option<Rank> {
        match *self.index.get(&id)? {
            Slot::Fixed(k) => Some(k),
            Slot::Lane(lane, at) => {
                let w = self.lanes.get(&lane)?.get(&at)?;
                Some(Self::rank_in_lane(&lane, at, w, now))
            }
        }
    }

    /// How many entries rank before `rank` at `now` (within a lane, those ahead are a prefix).
    fn count_before(&self, rank: Rank, now: DateTime<Utc>) -> usize {
        let fixed = self.fixed.range(..rank).count();
        let lanes: usize = self
            .lanes
            .iter()
            .map(|(lane, entries)| {
                entries
                    .iter()
                    .take_while(|(at, w)| Self::rank_in_lane(lane, **at, w, now) < rank)
                    .count()
            })
            .sum();
        fixed + lanes
    }

    /// 0-based position of an interaction at `now`.
    pub fn position(&self, id: Uuid, now: DateTime<Utc>) -> Option<usize> {
        let rank = self.rank_of(id, now)?;
        Some(self.count_before(rank, now))
    }

    /// How many entries would be served at `now` before one of effective `priority` enqueued
    /// at `enqueued_at` (to count a position across two queues kept apart).
    pub fn ahead_of(&self, priority: i64, enqueued_at: DateTime<Utc>, now: DateTime<Utc>) -> usize {
        self.count_before((Reverse(priority), nanos(enqueued_at), 0), now)
    }

    /// The waiting entry of an interaction.
    pub fn get(&self, id: Uuid) -> Option<&Waiting> {
        self.at_slot(*self.index.get(&id)?)
    }

    /// An interaction's effective priority at `now`.
    pub fn priority_at(&self, id: Uuid, now: DateTime<Utc>) -> Option<i64> {
        self.rank_of(id, now).map(|r| r.0.0)
    }

    /// How many are waiting.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The longest current wait at `now`.
    pub fn oldest(&self) -> Option<DateTime<Utc>> {
        let lanes = self
            .lanes
            .values()
            .filter_map(|e| e.first_key_value().map(|(_, w)| w.enqueued_at));
        self.fixed
            .values()
            .map(|w| w.enqueued_at)
            .chain(lanes)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t1() -> DateTime<Utc> {
        crate::clock::test_t0() + TimeDelta::hours(1)
    }

    fn w(p: i64, secs: i64) -> Waiting {
        Waiting {
            id: Uuid::new_v4(),
            priority: p,
            enqueued_at: crate::clock::test_t0() + TimeDelta::seconds(secs),
        }
    }

    #[test]
    fn priority_then_enqueue_time_and_inherited_places() {
        let mut q = WaitQueue::new();
        let (a, b, c, d) = (w(0, 10), w(5, 20), w(0, 5), w(5, 20));
        for x in [&a, &b, &c, &d] {
            q.push(x.clone());
        }
        assert_eq!(q.position(b.id, t1()), Some(0));
        assert_eq!(
            q.position(d.id, t1()),
            Some(1),
            "same priority and time: arrival order"
        );
        assert_eq!(
            q.position(c.id, t1()),
            Some(2),
            "the callback kept its caller's earlier place"
        );
        assert_eq!(q.position(a.id, t1()), Some(3));
        assert!(q.withdraw(d.id));
        assert!(!q.withdraw(d.id));
        assert_eq!(q.pop(t1()).map(|x| x.id), Some(b.id));
        assert_eq!(q.pop(t1()).map(|x| x.id), Some(c.id));
        assert_eq!(q.len(), 1);
        assert_eq!(q.position(Uuid::new_v4(), t1()), None);
        assert_eq!(q.ahead_of(0, a.enqueued_at, t1()), 0, "a is alone");
        assert_eq!(
            q.ahead_of(0, a.enqueued_at + TimeDelta::seconds(1), t1()),
            1
        );
        assert_eq!(q.ahead_of(1, a.enqueued_at, t1()), 0);
        assert_eq!(q.get(a.id).map(|x| x.priority), Some(0));
    }

    #[test]
    fn growing_priorities_overtake_without_rewriting_entries() {
        let g = PriorityGrowth {
            increment: 2,
            every_seconds: 60,
            limit: 6,
        };
        let t0 = w(0, 0).enqueued_at;
        let at = |s: i64| t0 + TimeDelta::seconds(s);
        let mut q = WaitQueue::new();
        let fixed5 = w(5, 100);
        let grow = w(0, 0);
        let grow_later = w(0, 30);
        q.push(fixed5.clone());
        q.push_growing(grow.clone(), Some(g));
        q.push_growing(grow_later.clone(), Some(g));
        assert_eq!(
            q.head(at(100)).map(|(x, p)| (x.id, p)),
            Some((fixed5.id, 5))
        );
        assert_eq!(q.position(grow.id, at(100)), Some(1));
        // At 180 s `grow` has taken 3 steps (6, its limit); `grow_later` 2 (4).
        assert_eq!(q.head(at(180)).map(|(x, p)| (x.id, p)), Some((grow.id, 6)));
        assert_eq!(q.position(fixed5.id, at(180)), Some(1));
        assert_eq!(q.position(grow_later.id, at(180)), Some(2));
        assert_eq!(q.priority_at(grow_later.id, at(180)), Some(4));
        // Both capped at 6, the earlier first; the fixed 5 last.
        assert_eq!(q.ahead_of(6, at(10), at(600)), 1);
        assert_eq!(q.pop(at(600)).map(|x| x.id), Some(grow.id));
        assert_eq!(q.pop(at(600)).map(|x| x.id), Some(grow_later.id));
        assert_eq!(q.pop(at(600)).map(|x| x.id), Some(fixed5.id));
        assert!(q.is_empty());
        assert!(q.lanes.is_empty(), "empty lanes are dropped");
        // A priority already at its limit is fixed.
        q.push_growing(w(6, 0), Some(g));
        assert!(q.lanes.is_empty());
    }
}

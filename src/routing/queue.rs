//! Interactions waiting in a virtual queue, ordered by priority (higher first) then by enqueue
//! time (earlier first). A callback may keep a caller's place by carrying the caller's original
//! enqueue time. Withdrawal finds its entry through an index instead of scanning.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A call or callback waiting for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Interaction id (a call's id or a callback's id).
    pub id: Uuid,
    /// Routing priority, higher first.
    pub priority: i64,
    /// The time that orders it among equal priorities.
    pub enqueued_at: DateTime<Utc>,
}

type Key = (Reverse<i64>, i64, u64);

/// One queue's waiting interactions.
#[derive(Debug, Default)]
pub struct WaitQueue {
    order: BTreeMap<Key, Waiting>,
    index: HashMap<Uuid, Key>,
    seq: u64,
}

impl WaitQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an interaction (replacing an earlier entry with the same id).
    pub fn push(&mut self, w: Waiting) {
        self.withdraw(w.id);
        self.seq += 1;
        let key = (
            Reverse(w.priority),
            w.enqueued_at.timestamp_nanos_opt().unwrap_or(i64::MAX),
            self.seq,
        );
        self.index.insert(w.id, key);
        self.order.insert(key, w);
    }

    /// The interaction that would be served next.
    pub fn head(&self) -> Option<&Waiting> {
        self.order.values().next()
    }

    /// Removes and returns the head.
    pub fn pop(&mut self) -> Option<Waiting> {
        let (_, w) = self.order.pop_first()?;
        self.index.remove(&w.id);
        Some(w)
    }

    /// Removes an interaction (abandon, cancel); true if it was waiting.
    pub fn withdraw(&mut self, id: Uuid) -> bool {
        match self.index.remove(&id) {
            Some(key) => self.order.remove(&key).is_some(),
            None => false,
        }
    }

    /// 0-based position of an interaction.
    pub fn position(&self, id: Uuid) -> Option<usize> {
        let key = self.index.get(&id)?;
        Some(self.order.range(..key).count())
    }

    /// How many entries would be served before one of `priority` enqueued at `enqueued_at`
    /// (to count a position across two queues kept apart).
    pub fn ahead_of(&self, priority: i64, enqueued_at: DateTime<Utc>) -> usize {
        let key = (
            Reverse(priority),
            enqueued_at.timestamp_nanos_opt().unwrap_or(i64::MAX),
            0,
        );
        self.order.range(..key).count()
    }

    /// The waiting entry of an interaction.
    pub fn get(&self, id: Uuid) -> Option<&Waiting> {
        self.order.get(self.index.get(&id)?)
    }

    /// How many are waiting.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The longest current wait at `now`.
    pub fn oldest(&self) -> Option<DateTime<Utc>> {
        self.order.values().map(|w| w.enqueued_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn w(p: i64, secs: i64) -> Waiting {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap();
        Waiting {
            id: Uuid::new_v4(),
            priority: p,
            enqueued_at: t0 + TimeDelta::seconds(secs),
        }
    }

    #[test]
    fn priority_then_enqueue_time_and_inherited_places() {
        let mut q = WaitQueue::new();
        let (a, b, c, d) = (w(0, 10), w(5, 20), w(0, 5), w(5, 20));
        for x in [&a, &b, &c, &d] {
            q.push(x.clone());
        }
        assert_eq!(q.position(b.id), Some(0));
        assert_eq!(
            q.position(d.id),
            Some(1),
            "same priority and time: arrival order"
        );
        assert_eq!(
            q.position(c.id),
            Some(2),
            "the callback kept its caller's earlier place"
        );
        assert_eq!(q.position(a.id), Some(3));
        assert!(q.withdraw(d.id));
        assert!(!q.withdraw(d.id));
        assert_eq!(q.pop().map(|x| x.id), Some(b.id));
        assert_eq!(q.pop().map(|x| x.id), Some(c.id));
        assert_eq!(q.len(), 1);
        assert_eq!(q.position(Uuid::new_v4()), None);
        assert_eq!(q.ahead_of(0, a.enqueued_at), 0, "a is alone");
        assert_eq!(q.ahead_of(0, a.enqueued_at + TimeDelta::seconds(1)), 1);
        assert_eq!(q.ahead_of(1, a.enqueued_at), 0);
        assert_eq!(q.get(a.id).map(|x| x.priority), Some(0));
    }
}

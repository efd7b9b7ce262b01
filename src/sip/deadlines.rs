//! A deadline index for the user agent's timers: a binary heap of (deadline, key) with lazy
//! deletion, so finding the next wake-up and the timers due costs O(log n) per change instead
//! of a scan over every call, retransmitter and registration.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// At most one deadline per key; a key moved or removed leaves its old heap entry behind,
/// skipped when it surfaces (its sequence number no longer matches).
#[derive(Debug)]
pub struct Deadlines<K> {
    heap: BinaryHeap<Reverse<(Instant, u64, K)>>,
    current: HashMap<K, (Instant, u64)>,
    seq: u64,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
            current: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: Hash + Eq + Ord + Clone> Deadlines<K> {
    /// Sets (or with `None` clears) the deadline of `key`, replacing the one it had.
    pub fn set(&mut self, key: &K, at: Option<Instant>) {
        let Some(at) = at else {
            self.remove(key);
            return;
        };
        self.seq += 1;
        let seq = self.seq;
        match self.current.entry(key.clone()) {
            Entry::Occupied(mut e) => {
                if e.get().0 == at {
                    return;
                }
                e.insert((at, seq));
            }
            Entry::Vacant(e) => {
                e.insert((at, seq));
            }
        }
        self.heap.push(Reverse((at, seq, key.clone())));
        self.compact();
    }

    /// Forgets the deadline of `key`.
    pub fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.current.remove(key).is_some() {
            self.compact();
        }
    }

    /// The earliest deadline.
    pub fn earliest(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes out a key whose deadline is at or before `now` (earliest first).
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        self.drop_stale();
        let Reverse((at, _, _)) = self.heap.peek()?;
        if *at > now {
            return None;
        }
        let Reverse((_, _, key)) = self.heap.pop()?;
        self.current.remove(&key);
        Some(key)
    }

    /// Gives back the room kept from a peak.
    pub fn shrink_to_fit(&mut self) {
        self.rebuild();
        self.heap.shrink_to_fit();
        self.current.shrink_to_fit();
    }

    fn is_live(&self, at: Instant, seq: u64, key: &K) -> bool {
        self.current.get(key) == Some(&(at, seq))
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((at, seq, key))) = self.heap.peek() {
            if self.is_live(*at, *seq, key) {
                break;
            }
            self.heap.pop();
        }
    }

    /// Keeps stale entries to at most about as many as live ones.
    fn compact(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.current.len() {
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        let heap = std::mem::take(&mut self.heap);
        self.heap = heap
            .into_vec()
            .into_iter()
            .filter(|Reverse((at, seq, key))| self.is_live(*at, *seq, key))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_keys_come_out_earliest_first_and_moved_or_removed_ones_never_fire_twice() {
        let t0 = crate::clock::instant_origin();
        let s = Duration::from_secs;
        let mut d = Deadlines::default();
        d.set(&"a", Some(t0 + s(3)));
        d.set(&"b", Some(t0 + s(1)));
        d.set(&"c", Some(t0 + s(2)));
        d.set(&"b", Some(t0 + s(5))); // moved later
        d.remove(&"c");
        assert_eq!(d.earliest(), Some(t0 + s(3)));
        assert_eq!(d.pop_due(t0 + s(2)), None);
        assert_eq!(d.pop_due(t0 + s(10)), Some("a"));
        assert_eq!(d.pop_due(t0 + s(10)), Some("b"));
        assert_eq!(d.pop_due(t0 + s(10)), None);
        assert!(d.current.is_empty());
        assert_eq!(d.earliest(), None);
    }

    #[test]
    fn stale_entries_stay_bounded_under_churn() {
        let t0 = crate::clock::instant_origin();
        let mut d = Deadlines::default();
        for i in 0..10_000u64 {
            d.set(&(i % 10), Some(t0 + Duration::from_millis(i)));
        }
        assert_eq!(d.current.len(), 10);
        assert!(
            d.heap.len() <= 64.max(2 * d.current.len()) + 1,
            "{}",
            d.heap.len()
        );
        assert_eq!(d.pop_due(t0 + Duration::from_secs(100)), Some(0));
    }
}

//! Failures counted per key (an account, a user, a source address), bounded in memory: what
//! a password guesser gets wrong turns into a block under a [`Policy`]. Shared by SIP digest
//! authentication (`sip::auth_guard`, per user and per source) and the administration login
//! (`users::login_guard`, per attempted name).
//!
//! The table holds at most its capacity of keys. When it is full and a new key fails, the
//! entries the policy no longer needs are forgotten first (neither blocked nor counting); if
//! every entry is still needed, the new key goes untracked, so an attacker who makes up keys
//! cannot grow the table nor push a blocked key out of it. Time comes from the caller (the
//! engine's clock).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, TimeDelta, Utc};

/// How failures turn into a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `max` failures within `window` of the first block the key for `block`; counting starts
    /// again after a block (SIP digest authentication).
    Window {
        /// Failures that block.
        max: u32,
        /// The counting window.
        window: TimeDelta,
        /// How long a block lasts.
        block: TimeDelta,
    },
    /// The `threshold`-th failure blocks for `base`, each further one for twice as long as the
    /// one before, up to `max`; only a success clears the count (administration logins).
    Backoff {
        /// Failures before the first block (at least 1).
        threshold: u32,
        /// The first block.
        base: TimeDelta,
        /// The longest block.
        max: TimeDelta,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    since: DateTime<Utc>,
    count: u32,
    blocked_until: Option<DateTime<Utc>>,
}

impl Entry {
    fn blocked(&self, now: DateTime<Utc>) -> Option<TimeDelta> {
        self.blocked_until.filter(|u| *u > now).map(|u| u - now)
    }
}

impl Policy {
    /// Whether an entry still matters at `now`: blocked, or counting within its window.
    fn live(&self, e: &Entry, now: DateTime<Utc>) -> bool {
        match self {
            Policy::Window { window, .. } => e.blocked(now).is_some() || now - e.since < *window,
            Policy::Backoff { .. } => e.blocked(now).is_some(),
        }
    }

    /// Counts one more failure of `e` at `now`; the block it starts, if it starts one.
    fn add(&self, e: &mut Entry, now: DateTime<Utc>) -> Option<TimeDelta> {
        let block = match *self {
            Policy::Window { max, window, block } => {
                if now - e.since >= window {
                    e.since = now;
                    e.count = 0;
                }
                e.count += 1;
                if e.count < max || e.blocked(now).is_some() {
                    return None;
                }
                e.since = now;
                e.count = 0;
                block
            }
            Policy::Backoff {
                threshold,
                base,
                max,
            } => {
                e.count = e.count.saturating_add(1);
                if e.count < threshold.max(1) {
                    return None;
                }
                let doublings = (e.count - threshold.max(1)).min(30);
                base.checked_mul(1 << doublings).unwrap_or(max).min(max)
            }
        };
        e.blocked_until = Some(now + block);
        Some(block)
    }
}

/// Failures per key under one policy, holding at most `capacity` keys.
#[derive(Debug)]
pub struct FailureTable<K> {
    policy: Policy,
    capacity: usize,
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq> FailureTable<K> {
    /// An empty table.
    pub fn new(policy: Policy, capacity: usize) -> Self {
        FailureTable {
            policy,
            capacity,
            entries: HashMap::new(),
        }
    }

    /// How long `key` is still blocked at `now`, if it is.
    pub fn blocked<Q>(&self, key: &Q, now: DateTime<Utc>) -> Option<TimeDelta>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).and_then(|e| e.blocked(now))
    }

    /// Counts a failure of `key` at `now`; the block it starts, if it starts one (`None` too
    /// when the table is full of entries that matter and `key` is new: it goes untracked).
    pub fn failed<Q>(&mut self, key: &Q, now: DateTime<Utc>) -> Option<TimeDelta>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if !self.entries.contains_key(key) && self.entries.len() >= self.capacity {
            let policy = self.policy;
            self.entries.retain(|_, e| policy.live(e, now));
            if self.entries.len() >= self.capacity {
                return None;
            }
        }
        let e = self.entries.entry(key.to_owned()).or_insert(Entry {
            since: now,
            count: 0,
            blocked_until: None,
        });
        self.policy.add(e, now)
    }

    /// A success: `key`'s failures are forgotten.
    pub fn clear<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.remove(key);
    }

    /// Keys with remembered failures.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no failure is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    fn window() -> Policy {
        Policy::Window {
            max: 3,
            window: TimeDelta::seconds(60),
            block: TimeDelta::seconds(30),
        }
    }

    #[test]
    fn window_blocks_after_max_failures_within_it_and_then_counts_again() {
        let mut f = FailureTable::new(window(), 10);
        assert_eq!(f.failed("a", t(0)), None);
        assert_eq!(f.failed("a", t(1)), None);
        // The window restarts: the failures at 0 and 1 no longer count at 61.
        assert_eq!(f.failed("a", t(61)), None);
        assert_eq!(f.failed("a", t(62)), None);
        assert_eq!(f.failed("a", t(63)), Some(TimeDelta::seconds(30)));
        assert_eq!(f.blocked("a", t(73)), Some(TimeDelta::seconds(20)));
        assert_eq!(f.blocked("b", t(73)), None, "per key");
        // Failures while blocked count toward the next block but do not extend this one.
        assert_eq!(f.failed("a", t(64)), None);
        assert_eq!(f.failed("a", t(65)), None);
        assert_eq!(f.failed("a", t(66)), None);
        assert_eq!(f.blocked("a", t(93)), None, "the block ends");
        f.clear("a");
        assert!(f.is_empty());
    }

    #[test]
    fn backoff_doubles_each_block_up_to_the_maximum() {
        let mut f = FailureTable::new(
            Policy::Backoff {
                threshold: 2,
                base: TimeDelta::seconds(10),
                max: TimeDelta::seconds(25),
            },
            10,
        );
        assert_eq!(f.failed("ann", t(0)), None);
        assert_eq!(f.failed("ann", t(0)), Some(TimeDelta::seconds(10)));
        assert_eq!(f.failed("ann", t(100)), Some(TimeDelta::seconds(20)));
        assert_eq!(f.failed("ann", t(200)), Some(TimeDelta::seconds(25)));
        for _ in 0..100 {
            f.failed("ann", t(300));
        }
        assert_eq!(f.blocked("ann", t(300)), Some(TimeDelta::seconds(25)));
    }

    #[test]
    fn a_full_table_forgets_what_no_longer_matters_and_never_a_block() {
        let mut f = FailureTable::new(window(), 4);
        for _ in 0..3 {
            f.failed("blocked", t(0));
        }
        for i in 0..1000 {
            f.failed(&format!("k{i}"), t(5));
            assert!(f.len() <= 4);
        }
        // The keys counting within the window fill the table: a new one goes untracked.
        let mut g = FailureTable::new(window(), 2);
        g.failed("x", t(0));
        g.failed("y", t(0));
        assert_eq!(g.failed("z", t(1)), None);
        assert_eq!(g.len(), 2);
        // Once their window has passed, they make room.
        g.failed("z", t(100));
        assert_eq!(g.len(), 1);
        // A blocked key survives any number of made-up keys.
        assert_eq!(f.blocked("blocked", t(10)), Some(TimeDelta::seconds(20)));
    }
}

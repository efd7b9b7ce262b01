//! Overload helpers of the user agent: the memory of INVITEs refused for overload (their
//! retransmissions must get the same 503, with the same To tag, while no transaction is kept
//! for them: a stateless UAS, RFC 3261 §8.2.7), and giving the heap back after a flood.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use super::transaction::TransactionKey;

/// INVITEs remembered at most: at 5,000 refusals a second, about 13 s (past a caller's last
/// INVITE retransmission but for Timer B's end), in a few megabytes at most.
const REMEMBERED: usize = 65_536;

/// The last [`REMEMBERED`] INVITEs shed, as 64-bit digests of their transaction keys, so a
/// flood of refused calls costs a bounded few bytes each and nothing once it is over.
#[derive(Debug, Default)]
pub struct ShedMemory {
    ids: HashSet<u64>,
    order: VecDeque<u64>,
}

impl ShedMemory {
    /// The digest naming a shed INVITE; also the To tag of its 503, so that retransmissions
    /// get the same answer.
    pub fn id(key: &TransactionKey) -> u64 {
        // SipHash with fixed keys: stable for the process's life, which is all that is needed.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        h.finish()
    }

    /// Whether the INVITE named `id` was shed lately.
    pub fn contains(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }

    /// Remembers a shed INVITE, forgetting the oldest beyond [`REMEMBERED`].
    pub fn insert(&mut self, id: u64) {
        if !self.ids.insert(id) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
    }

    /// True when none is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// Transactions and calls live at once above which a later drop counts as a flood's end.
const TRIM_PEAK: usize = 4096;
/// How often the user agent looks at its size.
const TRIM_CHECK: Duration = Duration::from_secs(2);

/// Decides when to give the heap back: after a flood (tens of thousands of transactions,
/// which linger up to 32 s after their call) the freed memory stays resident in the
/// allocator's per-thread arenas unless asked for (benches/sip_overload.sh).
#[derive(Debug, Default)]
pub struct HeapTrim {
    next_check: Option<Instant>,
    peak: usize,
    /// A flood was seen and has not fully drained: trim again at each quarter, down to none.
    armed: bool,
}

impl HeapTrim {
    /// Called on every turn of the user agent with what it holds (`live`: transactions and
    /// calls); true when the heap should be trimmed now: a peak above [`TRIM_PEAK`] has
    /// shrunk to a quarter (then each further quarter, until under a sixteenth of
    /// [`TRIM_PEAK`]). Looks at most every [`TRIM_CHECK`].
    pub fn due(&mut self, now: Instant, live: usize) -> bool {
        if self.next_check.is_some_and(|at| now < at) {
            return false;
        }
        self.next_check = Some(now + TRIM_CHECK);
        self.peak = self.peak.max(live);
        self.armed |= self.peak >= TRIM_PEAK;
        if self.armed && live <= self.peak / 4 {
            self.peak = live;
            self.armed = live >= TRIM_PEAK / 16;
            return true;
        }
        false
    }

    /// When the user agent must wake to look again, while a peak waits to drain (the last
    /// transactions expire with no message to turn its loop).
    pub fn wake(&self) -> Option<Instant> {
        if self.armed { self.next_check } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::Side;

    fn key(n: usize) -> TransactionKey {
        TransactionKey {
            side: Side::Server,
            branch: format!("z9hG4bK{n}"),
            sent_by: "127.0.0.1:5060".into(),
            method: "INVITE".into(),
        }
    }

    #[test]
    fn remembers_the_latest_and_stays_bounded() {
        let mut m = ShedMemory::default();
        for n in 0..REMEMBERED + 10 {
            m.insert(ShedMemory::id(&key(n)));
        }
        assert_eq!(m.order.len(), REMEMBERED);
        assert!(!m.contains(ShedMemory::id(&key(0))));
        assert!(m.contains(ShedMemory::id(&key(REMEMBERED + 9))));
        assert_eq!(ShedMemory::id(&key(3)), ShedMemory::id(&key(3)));
        assert_ne!(ShedMemory::id(&key(3)), ShedMemory::id(&key(4)));
    }

    #[test]
    fn the_heap_is_trimmed_once_a_flood_has_drained() {
        let mut t = HeapTrim::default();
        let t0 = crate::clock::monotonic_now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(!t.due(at(0), 100));
        assert!(!t.due(at(2), 20_000));
        assert_eq!(t.wake(), Some(at(4)));
        // Between checks nothing is looked at.
        assert!(!t.due(at(3), 10));
        assert!(!t.due(at(4), 6_000));
        assert!(t.due(at(6), 4_000));
        // Again at each quarter, until nearly nothing is left.
        assert!(!t.due(at(8), 1_500));
        assert!(t.due(at(10), 900));
        assert!(t.due(at(12), 100));
        // Done: small sizes never trigger it nor wake the user agent.
        assert_eq!(t.wake(), None);
        assert!(!t.due(at(14), 10));
        assert!(!t.due(at(16), 1_000));
        assert!(!t.due(at(18), 0));
    }
}

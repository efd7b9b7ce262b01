//! Guards digest authentication (REGISTER and INVITE) against replay and password guessing.
//!
//! Nonces stay stateless to issue (see `digest`), but each one that passed verification is
//! remembered until it expires: with qop=auth its nonce-count must grow on every use (and at
//! most [`MAX_NONCE_USES`] uses), without qop it is single-use. The table is capped; when full,
//! the oldest nonce is forgotten and every nonce issued up to its time is treated as stale (the
//! client gets a fresh challenge), so forgetting never reopens a replay.
//!
//! Failures (wrong password, replay, forged nonce…) are counted per user and per source
//! address; [`MAX_FAILURES`] within [`FAILURE_WINDOW_SECONDS`] block that key for
//! [`BLOCK_SECONDS`], during which requests are answered 503 with Retry-After and not verified.
//! Time comes from the engine's clock; both tables are capped ([`crate::net::failures`]).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};

use crate::net::failures::{FailureTable, Policy};

/// Failures of one user or one source within the window that block it.
pub const MAX_FAILURES: u32 = 10;
/// The failure-counting window, seconds.
pub const FAILURE_WINDOW_SECONDS: i64 = 60;
/// How long a blocked user or source is refused without verification, seconds.
pub const BLOCK_SECONDS: i64 = 60;
/// Most uses of one nonce (qop=auth); a nonce used more often is stale.
pub const MAX_NONCE_USES: u32 = 1000;
/// Nonces remembered at most.
pub const NONCE_CAPACITY: usize = 65_536;
/// Source addresses whose failures are counted at most.
pub const SOURCE_CAPACITY: usize = 65_536;

/// Why a verified nonce use is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceRefusal {
    /// Seen before with this nonce-count (or, without qop, at all): a replayed request.
    Replayed,
    /// Forgotten or used too often: challenge again with stale=true.
    Stale,
}

/// The nonces that passed verification, with their last nonce-count.
#[derive(Debug, Default)]
pub struct NonceUses {
    /// Nonce → (issue time, last nonce-count; `None` when used without qop).
    used: HashMap<String, (i64, Option<u32>)>,
    /// The same nonces by issue time, to expire and evict the oldest.
    by_issue: BTreeSet<(i64, String)>,
    /// Nonces issued at or before this time (Unix seconds) are no longer tracked: stale.
    floor: i64,
}

impl NonceUses {
    /// Records a verified use of `nonce`, issued at `issued` (Unix seconds), with nonce-count
    /// `nc` (`None` without qop); `ttl` is the nonce lifetime, in seconds.
    pub fn record(
        &mut self,
        now: DateTime<Utc>,
        ttl: i64,
        nonce: &str,
        issued: i64,
        nc: Option<u32>,
    ) -> Result<(), NonceRefusal> {
        let now = now.timestamp();
        while let Some((t, n)) = self.by_issue.first().cloned() {
            if t + ttl >= now {
                break;
            }
            self.by_issue.pop_first();
            self.used.remove(&n);
        }
        if issued <= self.floor {
            return Err(NonceRefusal::Stale);
        }
        if let Some((_, last)) = self.used.get_mut(nonce) {
            return match (*last, nc) {
                (Some(prev), Some(n)) if n > prev && n <= MAX_NONCE_USES => {
                    *last = Some(n);
                    Ok(())
                }
                (Some(_), Some(n)) if n > MAX_NONCE_USES => Err(NonceRefusal::Stale),
                _ => Err(NonceRefusal::Replayed),
            };
        }
        if nc.is_some_and(|n| n == 0 || n > MAX_NONCE_USES) {
            return Err(NonceRefusal::Stale);
        }
        while self.used.len() >= NONCE_CAPACITY {
            let Some((t, n)) = self.by_issue.pop_first() else {
                break;
            };
            self.used.remove(&n);
            self.floor = self.floor.max(t);
        }
        if issued <= self.floor {
            return Err(NonceRefusal::Stale);
        }
        self.used.insert(nonce.to_string(), (issued, nc));
        self.by_issue.insert((issued, nonce.to_string()));
        Ok(())
    }

    /// Nonces remembered now.
    pub fn len(&self) -> usize {
        self.used.len()
    }

    /// True when none is remembered.
    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }
}

/// Failed authentications per user and per source address.
#[derive(Debug)]
pub struct FailureGuard {
    users: FailureTable<String>,
    sources: FailureTable<IpAddr>,
}

impl Default for FailureGuard {
    fn default() -> Self {
        let policy = Policy::Window {
            max: MAX_FAILURES,
            window: TimeDelta::seconds(FAILURE_WINDOW_SECONDS),
            block: TimeDelta::seconds(BLOCK_SECONDS),
        };
        FailureGuard {
            // Users reach verification only when they are agents: that table is bounded by
            // them, and capped like the sources all the same.
            users: FailureTable::new(policy, SOURCE_CAPACITY),
            sources: FailureTable::new(policy, SOURCE_CAPACITY),
        }
    }
}

impl FailureGuard {
    /// How long `user` or `source` is still blocked, if it is.
    pub fn blocked(&self, user: &str, source: IpAddr, now: DateTime<Utc>) -> Option<TimeDelta> {
        let u = self.users.blocked(user, now);
        let s = self.sources.blocked(&source, now);
        u.into_iter().chain(s).max()
    }

    /// Counts a failure of `user` from `source`; true when it blocked one of them.
    pub fn failed(&mut self, user: &str, source: IpAddr, now: DateTime<Utc>) -> bool {
        let source = self.sources.failed(&source, now).is_some();
        let user = self.users.failed(user, now).is_some();
        source || user
    }

    /// A successful authentication of `user` clears that user's failures (not the source's).
    pub fn succeeded(&mut self, user: &str) {
        self.users.clear(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).single().unwrap()
    }

    #[test]
    fn a_nonce_count_must_grow_and_a_nonce_without_qop_is_single_use() {
        let mut n = NonceUses::default();
        let issued = t(0).timestamp();
        assert_eq!(n.record(t(1), 300, "a", issued, Some(1)), Ok(()));
        assert_eq!(
            n.record(t(2), 300, "a", issued, Some(1)),
            Err(NonceRefusal::Replayed)
        );
        assert_eq!(n.record(t(2), 300, "a", issued, Some(2)), Ok(()));
        assert_eq!(
            n.record(t(2), 300, "a", issued, None),
            Err(NonceRefusal::Replayed)
        );
        assert_eq!(n.record(t(2), 300, "b", issued, None), Ok(()));
        assert_eq!(
            n.record(t(3), 300, "b", issued, None),
            Err(NonceRefusal::Replayed)
        );
        assert_eq!(
            n.record(t(3), 300, "c", issued, Some(MAX_NONCE_USES + 1)),
            Err(NonceRefusal::Stale)
        );
        // Expired nonces are dropped (the digest check calls them stale anyway).
        assert_eq!(
            n.record(t(400), 300, "d", t(399).timestamp(), Some(1)),
            Ok(())
        );
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn failures_block_a_user_and_a_source_for_a_while() {
        let mut g = FailureGuard::default();
        let ip: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        for i in 0..MAX_FAILURES - 1 {
            assert!(!g.failed("1001", ip, t(i as i64)));
        }
        assert_eq!(g.blocked("1001", ip, t(10)), None);
        assert!(g.failed("1001", ip, t(10)));
        assert_eq!(
            g.blocked("1001", other, t(11)),
            Some(TimeDelta::seconds(59))
        );
        assert_eq!(g.blocked("1002", ip, t(11)), Some(TimeDelta::seconds(59)));
        assert_eq!(g.blocked("1002", other, t(11)), None);
        assert_eq!(g.blocked("1001", ip, t(70)), None, "the block ends");
        g.failed("1001", ip, t(71));
        g.succeeded("1001");
        assert_eq!(g.blocked("1001", other, t(72)), None);
    }
}

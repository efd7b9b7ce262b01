//! Per-caller rate limits: a token bucket per API key, per administration user and per client
//! address for logins, refilled on the injected clock. Over the limit, a request gets 429 with
//! `Retry-After` before any handler runs.

use parking_lot::Mutex;

use chrono::{DateTime, Utc};
use dashmap::DashMap;

/// Logins allowed per second and client address (each costs an Argon2 hash, ~30 ms of CPU).
pub const LOGINS_PER_SECOND: f64 = 2.0;

/// Burst of logins allowed at once per client address.
pub const LOGIN_BURST: f64 = 5.0;

/// Buckets kept before full (idle) ones are dropped, so unknown callers cannot grow the table.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

/// Token buckets keyed by caller.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: DashMap<String, Mutex<Bucket>>,
}

/// A refused request: how long until one more would pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    /// Seconds to wait, rounded up (at least 1).
    pub retry_after_seconds: u64,
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket (`rate` per second, holding at most `burst`).
    pub fn check(
        &self,
        key: &str,
        rate: f64,
        burst: f64,
        now: DateTime<Utc>,
    ) -> Result<(), Limited> {
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(key) {
            self.prune(rate, burst, now);
        }
        let entry = self.buckets.entry(key.to_string()).or_insert_with(|| {
            Mutex::new(Bucket {
                tokens: burst,
                at: now,
            })
        });
        let mut b = entry.lock();
        let elapsed = (now - b.at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / rate;
            Err(Limited {
                retry_after_seconds: wait.ceil().max(1.0) as u64,
            })
        }
    }

    /// Drops buckets that have refilled completely (their callers have been quiet).
    fn prune(&self, rate: f64, burst: f64, now: DateTime<Utc>) {
        self.buckets.retain(|_, b| {
            let b = b.get_mut();
            let elapsed = (now - b.at).num_seconds().max(0) as f64;
            b.tokens + elapsed * rate < burst
        });
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no caller has been seen.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_442_000, 0).unwrap_or_default()
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let l = RateLimiter::default();
        for _ in 0..3 {
            assert_eq!(l.check("k", 3.0, 3.0, t0()), Ok(()));
        }
        assert_eq!(
            l.check("k", 3.0, 3.0, t0()),
            Err(Limited {
                retry_after_seconds: 1
            })
        );
        assert_eq!(
            l.check("other", 3.0, 3.0, t0()),
            Ok(()),
            "buckets are per key"
        );
        let later = t0() + TimeDelta::milliseconds(340);
        assert_eq!(
            l.check("k", 3.0, 3.0, later),
            Ok(()),
            "a third of a second gives one back"
        );
        assert!(l.check("k", 3.0, 3.0, later).is_err());
        let slow = l
            .check("s", 0.1, 1.0, t0())
            .and(l.check("s", 0.1, 1.0, t0()));
        assert_eq!(
            slow,
            Err(Limited {
                retry_after_seconds: 10
            })
        );
    }

    #[test]
    fn quiet_callers_are_forgotten_when_the_table_is_full() {
        let l = RateLimiter::default();
        for i in 0..MAX_BUCKETS {
            let _ = l.check(&format!("ip{i}"), 2.0, 5.0, t0());
        }
        assert_eq!(l.len(), MAX_BUCKETS);
        let _ = l.check("late", 2.0, 5.0, t0() + TimeDelta::seconds(10));
        assert_eq!(l.len(), 1);
    }
}

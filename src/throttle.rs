//! A throttle for repeated log lines: a peer sending 10,000 malformed datagrams must not write
//! 10,000 warnings. The first `burst` events of each interval are logged; the rest are counted
//! and reported as one "N similar suppressed" line when the next interval's first event comes.
//! Pure: the caller passes the time, so it is tested without sleeping.

use std::time::{Duration, Instant};

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; `suppressed` events since the last logged one were dropped (write a summary
    /// line first when it is not zero).
    Log {
        /// Events suppressed in earlier intervals, not yet reported.
        suppressed: u64,
    },
    /// Drop it (counted for the next summary).
    Suppress,
}

/// First `burst` events per `interval`, then silence until the next interval.
#[derive(Debug, Clone)]
pub struct LogThrottle {
    burst: u32,
    interval: Duration,
    window_start: Option<Instant>,
    in_window: u32,
    suppressed: u64,
}

impl LogThrottle {
    /// Logs at most `burst` events per `interval`.
    pub fn new(burst: u32, interval: Duration) -> Self {
        LogThrottle {
            burst,
            interval,
            window_start: None,
            in_window: 0,
            suppressed: 0,
        }
    }

    /// Decides about one event happening at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let fresh = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= self.interval);
        if fresh {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window < self.burst {
            self.in_window += 1;
            let suppressed = std::mem::take(&mut self.suppressed);
            Verdict::Log { suppressed }
        } else {
            self.suppressed += 1;
            Verdict::Suppress
        }
    }
}

/// Logs `$($arg)+` at `$level` through `$throttle` (a [`LogThrottle`]) at `$now`, preceded by a
/// summary line when earlier events were suppressed.
#[macro_export]
macro_rules! throttled {
    ($throttle:expr, $now:expr, $level:ident!($($arg:tt)+)) => {
        if let $crate::throttle::Verdict::Log { suppressed } = $throttle.check($now) {
            if suppressed > 0 {
                tracing::$level!(suppressed, "{suppressed} similar suppressed");
            }
            tracing::$level!($($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_burst_is_logged_then_one_summary_per_interval() {
        let t0 = crate::clock::monotonic_now();
        let mut t = LogThrottle::new(3, Duration::from_secs(10));
        let verdicts: Vec<Verdict> = (0..10_000)
            .map(|i| t.check(t0 + Duration::from_micros(i)))
            .collect();
        let logged = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Log { .. }))
            .count();
        assert_eq!(logged, 3);
        assert_eq!(verdicts[0], Verdict::Log { suppressed: 0 });
        assert_eq!(verdicts[3], Verdict::Suppress);
        // The next interval's first event carries the count, once.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(t.check(later), Verdict::Log { suppressed: 9_997 });
        assert_eq!(t.check(later), Verdict::Log { suppressed: 0 });
    }

    #[test]
    fn sparse_events_are_all_logged() {
        let t0 = crate::clock::monotonic_now();
        let mut t = LogThrottle::new(1, Duration::from_secs(1));
        for i in 0..5 {
            assert_eq!(
                t.check(t0 + Duration::from_secs(i)),
                Verdict::Log { suppressed: 0 }
            );
        }
    }

    #[test]
    fn a_zero_burst_suppresses_everything_but_keeps_the_count() {
        let t0 = crate::clock::monotonic_now();
        let mut t = LogThrottle::new(0, Duration::from_secs(1));
        assert_eq!(t.check(t0), Verdict::Suppress);
        assert_eq!(t.check(t0), Verdict::Suppress);
        assert_eq!(t.suppressed, 2);
    }
}

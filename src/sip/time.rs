//! SIP's view of the injected clock: monotonic `Instant`s for the transaction machines,
//! session timers and the registrar, and sleeps on the same clock, so the whole user agent
//! runs in virtual time under a test or simulator clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use crate::clock::{SharedClock, Sleep, SystemClock};

/// A monotonic clock over a [`crate::clock::Clock`]: SIP time advances by each forward step
/// of the underlying clock, and a step back (a wall-clock correction) counts as no time.
#[derive(Clone)]
pub struct SipClock {
    clock: SharedClock,
    origin: Instant,
    state: Arc<Mutex<Reading>>,
}

/// The last reading of the underlying clock and the monotonic time built so far.
struct Reading {
    last: DateTime<Utc>,
    elapsed: Duration,
}

impl std::fmt::Debug for SipClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipClock").finish_non_exhaustive()
    }
}

impl Default for SipClock {
    fn default() -> Self {
        SipClock::new(SystemClock::shared())
    }
}

impl SipClock {
    /// SIP time following `clock` from now on.
    pub fn new(clock: SharedClock) -> Self {
        let last = clock.now();
        SipClock {
            clock,
            origin: crate::clock::instant_origin(),
            state: Arc::new(Mutex::new(Reading {
                last,
                elapsed: Duration::ZERO,
            })),
        }
    }

    /// The current instant; never earlier than one returned before.
    pub fn now(&self) -> Instant {
        let wall = self.clock.now();
        let mut r = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(step) = (wall - r.last).to_std() {
            r.elapsed += step;
        }
        r.last = wall;
        self.origin + r.elapsed
    }

    /// Completes once [`SipClock::now`] has reached `at` (at once if it already has).
    pub fn sleep_until(&self, at: Instant) -> Sleep {
        self.sleep(at.saturating_duration_since(self.now()))
    }

    /// Completes after `delay` of this clock's time.
    pub fn sleep(&self, delay: Duration) -> Sleep {
        self.clock
            .sleep(TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeZone;

    #[test]
    fn follows_the_clock_and_never_goes_back() {
        let manual = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
        let sip = SipClock::new(Arc::new(manual.clone()));
        let t0 = sip.now();
        manual.advance(TimeDelta::seconds(5));
        assert_eq!(sip.now() - t0, Duration::from_secs(5));
        manual.set(Utc.with_ymd_and_hms(2025, 12, 31, 0, 0, 0).unwrap());
        assert_eq!(sip.now() - t0, Duration::from_secs(5));
        manual.advance(TimeDelta::seconds(2));
        assert_eq!(sip.now() - t0, Duration::from_secs(7));
    }
}

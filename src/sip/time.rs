//! SIP's view of time: monotonic `Instant`s for the transaction machines, session timers and
//! the registrar, and sleeps on the same time. In service it is the monotonic clock (a
//! wall-clock correction must not fire or delay protocol timers); under an injected test or
//! simulator clock the whole user agent runs in that clock's (virtual) time.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use crate::clock::{SharedClock, Sleep};

/// The user agent's time: the monotonic clock, or one following a [`crate::clock::Clock`].
#[derive(Clone)]
pub struct SipClock {
    source: Source,
}

#[derive(Clone)]
enum Source {
    /// The monotonic clock (tokio's, so a paused runtime's virtual time too).
    Monotonic,
    /// Follows `clock`: SIP time advances by each forward step of it, and a step back counts
    /// as no time.
    Injected {
        clock: SharedClock,
        origin: Instant,
        state: Arc<Mutex<Reading>>,
    },
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
        SipClock::monotonic()
    }
}

impl SipClock {
    /// SIP time on the monotonic clock (the service's).
    pub fn monotonic() -> Self {
        SipClock {
            source: Source::Monotonic,
        }
    }

    /// SIP time for an engine on `clock`: the monotonic clock for the system's wall clock,
    /// else (a test's or the simulator's clock) following it.
    pub fn of(clock: SharedClock) -> Self {
        if clock.is_system() {
            SipClock::monotonic()
        } else {
            SipClock::new(clock)
        }
    }

    /// SIP time following `clock` from now on.
    pub fn new(clock: SharedClock) -> Self {
        let last = clock.now();
        SipClock {
            source: Source::Injected {
                clock,
                origin: crate::clock::instant_origin(),
                state: Arc::new(Mutex::new(Reading {
                    last,
                    elapsed: Duration::ZERO,
                })),
            },
        }
    }

    /// The current instant; never earlier than one returned before.
    pub fn now(&self) -> Instant {
        match &self.source {
            Source::Monotonic => crate::clock::tokio_now().into_std(),
            Source::Injected {
                clock,
                origin,
                state,
            } => {
                let wall = clock.now();
                let mut r = state.lock();
                if let Ok(step) = (wall - r.last).to_std() {
                    r.elapsed += step;
                }
                r.last = wall;
                *origin + r.elapsed
            }
        }
    }

    /// Completes once [`SipClock::now`] has reached `at` (at once if it already has).
    pub fn sleep_until(&self, at: Instant) -> Sleep {
        match &self.source {
            Source::Monotonic => Box::pin(tokio::time::sleep_until(at.into())),
            Source::Injected { .. } => self.sleep(at.saturating_duration_since(self.now())),
        }
    }

    /// Completes after `delay` of this clock's time.
    pub fn sleep(&self, delay: Duration) -> Sleep {
        match &self.source {
            Source::Monotonic => Box::pin(tokio::time::sleep(delay)),
            Source::Injected { clock, .. } => {
                clock.sleep(TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX))
            }
        }
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

    #[tokio::test(start_paused = true)]
    async fn the_monotonic_clock_is_tokios_so_paused_runtimes_run_it_in_virtual_time() {
        let sip = SipClock::monotonic();
        let t0 = sip.now();
        sip.sleep(Duration::from_secs(30)).await;
        assert!(sip.now() - t0 >= Duration::from_secs(30));
        sip.sleep_until(t0 + Duration::from_secs(45)).await;
        assert!(sip.now() - t0 >= Duration::from_secs(45));
    }
}

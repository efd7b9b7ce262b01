//! The one source of time: every read of "now" and every timer in boomerang goes through [`Clock`],
//! so tests and the simulator can drive business hours, slots, purges and retransmissions.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, TimeDelta, Utc};

/// A boxed future returned by [`Clock::sleep_until`], so the trait stays object-safe.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Time as the engine sees it; swapped for a [`ManualClock`] in tests and the simulator.
pub trait Clock: Send + Sync + 'static {
    /// The current instant in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Completes once [`Clock::now`] has reached `deadline` (at once if it already has).
    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep;

    /// Completes after `delay` of this clock's time has passed.
    fn sleep(&self, delay: TimeDelta) -> Sleep {
        self.sleep_until(self.now() + delay)
    }

    /// True for the operating system's wall clock: protocol timers (SIP) then run on the
    /// monotonic clock instead, so a wall-clock step neither fires nor delays them.
    fn is_system(&self) -> bool {
        false
    }
}

/// Shared handle to a clock, the form in which the parts of the engine receive it.
pub type SharedClock = Arc<dyn Clock>;

/// The machine's monotonic time, for what measures real elapsed time rather than the engine's
/// clock: the media pacing threads' 20 ms grid, RTP arrival times, a run's wall time. Outside
/// this module the clock is read only through here, [`tokio_now`] and [`Clock`].
#[allow(clippy::disallowed_methods)]
pub fn monotonic_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Tokio's time (virtual under paused time), for deadlines of tokio timers (`sleep_until`,
/// `timeout_at`) and for tests that run on paused time.
#[allow(clippy::disallowed_methods)]
pub fn tokio_now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// Wall-clock time from the operating system, with tokio timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl SystemClock {
    /// A shared system clock, ready to hand to the engine's parts.
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let delay = (deadline - self.now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(delay))
    }

    fn is_system(&self) -> bool {
        true
    }
}

/// Time from tokio's clock, starting at a chosen instant. Under a runtime with paused time
/// (`tokio::time::pause`, `start_paused`) tokio jumps to the next timer whenever every task is
/// idle, so a simulated day runs in moments and no task can miss a wake-up: this is the
/// simulator's virtual clock.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start` now; must be created inside a tokio runtime.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        TokioClock {
            start,
            origin: tokio_now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio_now() - self.origin;
        self.start + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let offset = (deadline - self.start).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep_until(self.origin + offset))
    }
}

/// A clock that only moves when told to: tests advance it, the simulator jumps it from one
/// pending timer to the next (discrete-event time).
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    /// Nanoseconds since the Unix epoch.
    now_ns: AtomicI64,
    next_id: AtomicU64,
    sleepers: Mutex<BTreeMap<(i64, u64), Sleeper>>,
}

struct Sleeper {
    fired: Arc<std::sync::atomic::AtomicBool>,
    waker: Option<Waker>,
}

fn to_ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn from_ns(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            inner: Arc::new(ManualInner {
                now_ns: AtomicI64::new(to_ns(start)),
                next_id: AtomicU64::new(0),
                sleepers: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The same clock as a [`SharedClock`] for the engine's parts.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }

    /// Moves time forward by `delta` and wakes every sleeper whose deadline has come.
    pub fn advance(&self, delta: TimeDelta) {
        let target = self.now() + delta;
        self.set(target);
    }

    /// Moves time to `t` (never backwards) and wakes every sleeper whose deadline has come.
    pub fn set(&self, t: DateTime<Utc>) {
        let ns = to_ns(t);
        self.inner.now_ns.fetch_max(ns, Ordering::SeqCst);
        self.wake_due();
    }

    /// The earliest deadline anyone is sleeping until, if any.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let sleepers = self.lock();
        sleepers.keys().next().map(|(ns, _)| from_ns(*ns))
    }

    /// Jumps to the earliest pending deadline and wakes its sleepers; false when none is pending.
    pub fn advance_to_next(&self) -> bool {
        match self.next_deadline() {
            Some(t) => {
                self.set(t.max(self.now()));
                true
            }
            None => false,
        }
    }

    /// Number of futures currently sleeping on this clock.
    pub fn pending_sleepers(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, BTreeMap<(i64, u64), Sleeper>> {
        self.inner.sleepers.lock()
    }

    fn wake_due(&self) {
        let now = self.inner.now_ns.load(Ordering::SeqCst);
        let mut due = Vec::new();
        {
            let mut sleepers = self.lock();
            while let Some(entry) = sleepers.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
        }
        for sleeper in due {
            sleeper.fired.store(true, Ordering::SeqCst);
            if let Some(w) = sleeper.waker {
                w.wake();
            }
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        from_ns(self.inner.now_ns.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        Box::pin(ManualSleep {
            clock: self.clone(),
            deadline: to_ns(deadline),
            key: None,
            fired: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }
}

struct ManualSleep {
    clock: ManualClock,
    deadline: i64,
    key: Option<(i64, u64)>,
    fired: Arc<std::sync::atomic::AtomicBool>,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired.load(Ordering::SeqCst)
            || self.clock.inner.now_ns.load(Ordering::SeqCst) >= self.deadline
        {
            if let Some(key) = self.key.take() {
                self.clock.lock().remove(&key);
            }
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(k) => k,
            None => {
                let id = self.clock.inner.next_id.fetch_add(1, Ordering::Relaxed);
                let k = (self.deadline, id);
                self.key = Some(k);
                k
            }
        };
        let fired = self.fired.clone();
        self.clock.lock().insert(
            key,
            Sleeper {
                fired,
                waker: Some(cx.waker().clone()),
            },
        );
        // Time may have moved between the check and the insert: look again.
        if self.clock.inner.now_ns.load(Ordering::SeqCst) >= self.deadline {
            self.clock.wake_due();
        }
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.clock.lock().remove(&key);
        }
    }
}

/// One fixed monotonic instant, read once per process: parts of the engine that count in
/// `std::time::Instant` (the SIP transaction machines) place the injected clock's time after it.
#[allow(clippy::disallowed_methods)]
pub fn instant_origin() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// 09:00 UTC on Monday 2 March 2026: where the unit tests' time lines start.
#[cfg(test)]
pub(crate) fn test_t0() -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_jumps_through_idle_time() {
        let start = DateTime::from_timestamp(1_772_442_000, 0).unwrap();
        let c = TokioClock::starting_at(start);
        let real = monotonic_now();
        c.sleep(TimeDelta::hours(8)).await;
        assert_eq!(c.now(), start + TimeDelta::hours(8));
        assert!(real.elapsed() < std::time::Duration::from_secs(5));
    }

    use super::test_t0 as t0;

    #[test]
    fn manual_clock_reads_what_it_was_set_to() {
        let c = ManualClock::new(t0());
        assert_eq!(c.now(), t0());
        c.advance(TimeDelta::seconds(90));
        assert_eq!(c.now(), t0() + TimeDelta::seconds(90));
        c.set(t0());
        assert_eq!(c.now(), t0() + TimeDelta::seconds(90), "never goes back");
    }

    #[tokio::test]
    async fn sleepers_wake_only_when_time_reaches_their_deadline() {
        let c = ManualClock::new(t0());
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for secs in [30i64, 10, 20] {
            let c2 = c.clone();
            let o = order.clone();
            tasks.push(tokio::spawn(async move {
                c2.sleep(TimeDelta::seconds(secs)).await;
                o.lock().push(secs);
            }));
        }
        while c.pending_sleepers() < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(c.next_deadline(), Some(t0() + TimeDelta::seconds(10)));
        c.advance(TimeDelta::seconds(15));
        while order.lock().is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(*order.lock(), vec![10]);
        assert!(c.advance_to_next());
        assert_eq!(c.now(), t0() + TimeDelta::seconds(20));
        assert!(c.advance_to_next());
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock(), vec![10, 20, 30]);
        assert!(!c.advance_to_next());
    }

    #[tokio::test]
    async fn a_deadline_in_the_past_completes_at_once() {
        let c = ManualClock::new(t0());
        c.sleep_until(t0() - TimeDelta::seconds(1)).await;
        assert_eq!(c.pending_sleepers(), 0);
    }
}

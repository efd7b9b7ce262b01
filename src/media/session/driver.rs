//! The shared pacing driver: a few OS threads (one by default), one timer each, every session.
//! Its tuning and timing counters are public; sessions join it through [`register`].

use super::*;

/// Tuning of the shared pacing driver; takes effect if set before the first session opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacerOptions {
    /// Pacing threads; sessions are spread over them round-robin.
    pub threads: usize,
    /// Sub-ticks per 20 ms period: each session is sent in one of them, so a thread sends
    /// `sessions / slots` packets every `20 / slots` ms instead of all of them at once.
    pub slots: u32,
    /// `SCHED_RR` priority for the pacing threads (1–99), as media servers run their timers;
    /// kept at normal priority when the process may not raise it (no `CAP_SYS_NICE`).
    pub realtime_priority: Option<i32>,
}

impl PacerOptions {
    /// One thread, four 5 ms slots, `SCHED_RR` priority 10 when allowed.
    pub const DEFAULT: PacerOptions = PacerOptions {
        threads: 1,
        slots: 4,
        realtime_priority: Some(10),
    };
}

impl Default for PacerOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How punctually the shared pacer woke up, counted since the previous call (for benchmarks
/// and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacerStats {
    /// Slot ticks run.
    pub ticks: u64,
    /// Ticks that started more than 2 ms after their deadline.
    pub late_ticks: u64,
    /// The latest start after a deadline.
    pub max_lateness: Duration,
}

/// Takes (and resets) the shared pacer's timing counters.
pub fn take_pacer_stats() -> PacerStats {
    take_stats()
}

/// Sets the shared driver's options; false if the driver already runs (options unchanged).
pub fn set_pacer_options(options: PacerOptions) -> bool {
    set_options(options)
}

/// Periods the driver may fall behind (sending catch-up frames back to back) before it
/// gives up on the missed ones and restarts its grid from now.
const MAX_LAG: u32 = 3;

struct Shard {
    /// Sessions opened since the thread's last tick.
    joining: Mutex<Vec<Weak<MediaSession>>>,
    /// Wakes the idle thread when a session joins.
    wake: Condvar,
}

static OPTIONS: Mutex<PacerOptions> = Mutex::new(PacerOptions::DEFAULT);
static SHARDS: OnceLock<Vec<&'static Shard>> = OnceLock::new();
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

static TICKS: AtomicU64 = AtomicU64::new(0);
static LATE_TICKS: AtomicU64 = AtomicU64::new(0);
static MAX_LATE_US: AtomicU64 = AtomicU64::new(0);
const LATE: Duration = Duration::from_millis(2);

pub(super) fn take_stats() -> PacerStats {
    PacerStats {
        ticks: TICKS.swap(0, Ordering::Relaxed),
        late_ticks: LATE_TICKS.swap(0, Ordering::Relaxed),
        max_lateness: Duration::from_micros(MAX_LATE_US.swap(0, Ordering::Relaxed)),
    }
}

fn record(late: Duration) {
    TICKS.fetch_add(1, Ordering::Relaxed);
    if late > LATE {
        LATE_TICKS.fetch_add(1, Ordering::Relaxed);
    }
    let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
    MAX_LATE_US.fetch_max(us, Ordering::Relaxed);
}

pub(super) fn set_options(options: PacerOptions) -> bool {
    let mut o = OPTIONS.lock();
    if SHARDS.get().is_some() {
        return false;
    }
    *o = options;
    true
}

fn start() -> Vec<&'static Shard> {
    let o = *OPTIONS.lock();
    let mut shards = Vec::new();
    for i in 0..o.threads.clamp(1, 64) {
        // Lives as long as the process, like the thread that serves it.
        let shard: &'static Shard = Box::leak(Box::new(Shard {
            joining: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        }));
        let started = std::thread::Builder::new()
            .name(format!("rtp-pacer-{i}"))
            .spawn(move || run(shard, o));
        match started {
            Ok(_) => shards.push(shard),
            Err(e) => tracing::error!("cannot start RTP pacing thread {i}: {e}"),
        }
    }
    shards
}

/// Adds a session to the driver (starting its threads on first use); false if no thread
/// could be started.
pub(super) fn register(session: Weak<MediaSession>) -> bool {
    let shards = SHARDS.get_or_init(start);
    if shards.is_empty() {
        return false;
    }
    let shard = shards[NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % shards.len()];
    shard.joining.lock().push(session);
    shard.wake.notify_one();
    true
}

#[cfg(target_os = "linux")]
fn raise_priority(priority: i32) {
    let param = libc::sched_param {
        sched_priority: priority.clamp(1, 99),
    };
    // SAFETY: sets the calling thread's policy (pid 0) from a valid sched_param.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
    if rc != 0 {
        tracing::debug!(
            "RTP pacing stays at normal priority: {}",
            io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn raise_priority(_priority: i32) {}

fn run(shard: &'static Shard, o: PacerOptions) {
    if let Some(p) = o.realtime_priority {
        raise_priority(p);
    }
    let slots = o.slots.clamp(1, 20);
    let step = FRAME_PERIOD / slots;
    let mut lists: Vec<Vec<Weak<MediaSession>>> = (0..slots).map(|_| Vec::new()).collect();
    let mut scratch = Vec::with_capacity(HEADER_LEN + FRAME_LEN);
    let mut next = crate::clock::monotonic_now();
    let mut slot = 0;
    loop {
        {
            let mut joining = shard.joining.lock();
            if lists.iter().all(Vec::is_empty) {
                while joining.is_empty() {
                    shard.wake.wait(&mut joining);
                }
                // Idle until now: the grid starts afresh.
                next = crate::clock::monotonic_now();
                slot = 0;
            }
            for w in joining.drain(..) {
                if let Some(l) = lists.iter_mut().min_by_key(|l| l.len()) {
                    l.push(w);
                }
            }
        }
        record(crate::clock::monotonic_now().saturating_duration_since(next));
        lists[slot].retain(|w| match w.upgrade() {
            Some(s) if !s.closed.load(Ordering::Acquire) => {
                s.tick(&mut scratch);
                true
            }
            _ => false,
        });
        slot = (slot + 1) % lists.len();
        // Deadlines sit on an absolute grid, so a late wake-up does not drift the streams;
        // a long stall skips the missed ticks instead of bursting them all.
        next += step;
        let now = crate::clock::monotonic_now();
        if now > next + FRAME_PERIOD * MAX_LAG {
            // Overloaded: restart the grid, and still sleep a step so that a real-time
            // thread never keeps a core to itself.
            next = now + step;
            std::thread::sleep(step);
        } else if next > now {
            std::thread::sleep(next - now);
        }
    }
}

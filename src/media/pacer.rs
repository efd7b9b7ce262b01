//! One timer for all playing calls: the [`Pacer`] keeps each session's next 20 ms deadline in
//! a heap, so the media loop sleeps until [`Pacer::next_deadline`] and then asks which sessions
//! are due, instead of running one timer task per call.
//!
//! Time is a [`Duration`] since an origin the caller picks (a `tokio::time::Instant` at start,
//! or the simulator's virtual clock), which keeps the pacer free of I/O and exact in tests.
//! Deadlines are `start + k × period`, so they never drift however late the loop wakes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Duration;

/// Packetisation interval of G.711 at 20 ms ptime.
pub const FRAME_PERIOD: Duration = Duration::from_millis(20);
/// Frames sent back-to-back for a late wake-up; more than this is skipped, not burst.
pub const MAX_BURST: u32 = 3;

/// A session that is owed frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due<K> {
    /// The session.
    pub key: K,
    /// Frames to send now (1 on time, up to [`MAX_BURST`] when the loop woke late).
    pub frames: u32,
    /// Frames to drop because the loop was very late: advance the RTP timestamp over them
    /// (`RtpSender::skip`) so the far end's jitter buffer re-syncs on the marker.
    pub skipped: u32,
}

/// Deadline scheduler for many sessions sharing one timer.
#[derive(Debug, Clone)]
pub struct Pacer<K> {
    period: Duration,
    /// Each playing session's generation; heap entries from older generations are stale.
    sessions: HashMap<K, u64>,
    heap: BinaryHeap<Reverse<(Duration, u64, K)>>,
    next_generation: u64,
}

impl<K: Copy + Eq + Hash + Ord> Pacer<K> {
    /// A pacer with the given frame period (normally [`FRAME_PERIOD`]).
    pub fn new(period: Duration) -> Self {
        Pacer {
            period: period.max(Duration::from_micros(1)),
            sessions: HashMap::new(),
            heap: BinaryHeap::new(),
            next_generation: 0,
        }
    }

    /// Starts (or restarts) pacing a session; its first frame is due at `now`.
    pub fn start(&mut self, key: K, now: Duration) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.sessions.insert(key, generation);
        self.heap.push(Reverse((now, generation, key)));
    }

    /// Stops pacing a session (played out, hung up); true if it was playing.
    pub fn stop(&mut self, key: K) -> bool {
        self.sessions.remove(&key).is_some()
    }

    /// Whether a session is being paced.
    pub fn is_playing(&self, key: K) -> bool {
        self.sessions.contains_key(&key)
    }

    /// Number of sessions being paced.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when nothing is playing (the loop can wait for a start instead of a deadline).
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// When the one timer should next fire, if anything is playing.
    pub fn next_deadline(&mut self) -> Option<Duration> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((deadline, _, _))| *deadline)
    }

    /// Appends every session due at `now` to `out` and schedules its next frame.
    pub fn due(&mut self, now: Duration, out: &mut Vec<Due<K>>) {
        loop {
            self.drop_stale();
            let Some(&Reverse((deadline, generation, key))) = self.heap.peek() else {
                break;
            };
            if deadline > now {
                break;
            }
            self.heap.pop();
            let owed = u32::try_from((now - deadline).as_nanos() / self.period.as_nanos())
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            let frames = owed.min(MAX_BURST);
            out.push(Due {
                key,
                frames,
                skipped: owed - frames,
            });
            let next = deadline + self.period * owed;
            self.heap.push(Reverse((next, generation, key)));
        }
    }

    /// Pops heap entries of stopped or restarted sessions.
    fn drop_stale(&mut self) {
        while let Some(&Reverse((_, generation, key))) = self.heap.peek() {
            if self.sessions.get(&key) == Some(&generation) {
                break;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn due_at(p: &mut Pacer<u32>, now: Duration) -> Vec<Due<u32>> {
        let mut out = Vec::new();
        p.due(now, &mut out);
        out
    }

    /// What `due_at` gives when only `key` is due: its frames to send and those skipped.
    fn only(key: u32, frames: u32, skipped: u32) -> Vec<Due<u32>> {
        vec![Due {
            key,
            frames,
            skipped,
        }]
    }

    #[test]
    fn each_session_gets_fifty_frames_a_second_from_one_timer() {
        let mut p = Pacer::new(FRAME_PERIOD);
        // 1000 calls starting at staggered times within the first 20 ms.
        for call in 0..1000u32 {
            p.start(call, Duration::from_micros(u64::from(call) * 20));
        }
        let mut frames = vec![0u32; 1000];
        let mut wakeups = 0;
        let end = ms(1000);
        while let Some(deadline) = p.next_deadline().filter(|d| *d < end) {
            wakeups += 1;
            for d in due_at(&mut p, deadline) {
                assert_eq!((d.frames, d.skipped), (1, 0));
                frames[d.key as usize] += d.frames;
            }
        }
        assert!(frames.iter().all(|&f| f == 50), "{:?}", &frames[..5]);
        // One wake-up per distinct deadline: 1000 start offsets × 50 periods.
        assert_eq!(wakeups, 50_000);
    }

    #[test]
    fn a_coarse_tick_serves_everyone_due() {
        let mut p = Pacer::new(FRAME_PERIOD);
        p.start(1, ms(0));
        p.start(2, ms(5));
        p.start(3, ms(19));
        assert_eq!(due_at(&mut p, ms(0)).len(), 1);
        // A 20 ms tick at t=20 serves 1 (due 20), 2 (due 5) and 3 (due 19) once each.
        let keys: Vec<u32> = due_at(&mut p, ms(20)).iter().map(|d| d.key).collect();
        assert_eq!(keys, vec![2, 3, 1]);
        assert_eq!(p.next_deadline(), Some(ms(25)));
    }

    #[test]
    fn stop_and_restart() {
        let mut p = Pacer::new(FRAME_PERIOD);
        p.start(7, ms(0));
        p.start(8, ms(0));
        assert_eq!(due_at(&mut p, ms(0)).len(), 2);
        assert!(p.stop(7));
        assert!(!p.stop(7));
        assert!(!p.is_playing(7) && p.is_playing(8));
        assert_eq!(due_at(&mut p, ms(20)), only(8, 1, 0));
        // Restarting replaces the old schedule instead of adding a second one.
        p.start(8, ms(30));
        assert_eq!(p.next_deadline(), Some(ms(30)));
        assert!(due_at(&mut p, ms(39)).len() == 1 && due_at(&mut p, ms(49)).is_empty());
        assert!(p.stop(8));
        assert!(p.is_empty());
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn late_wakeups_burst_a_little_then_skip_without_drift() {
        let mut p = Pacer::new(FRAME_PERIOD);
        p.start(1, ms(0));
        assert_eq!(due_at(&mut p, ms(0))[0].frames, 1);
        // Woke 25 ms late: frames for 20 and 40 are owed.
        assert_eq!(due_at(&mut p, ms(45)), only(1, 2, 0));
        assert_eq!(p.next_deadline(), Some(ms(60)));
        // A 200 ms stall: 10 owed (60..=240), 3 sent, 7 skipped; the grid is kept.
        assert_eq!(due_at(&mut p, ms(245)), only(1, 3, 7));
        assert_eq!(p.next_deadline(), Some(ms(260)));
    }
}

//! Per-queue outcome counters since the engine started: interactions answered (an agent was
//! bridged), answered within the queue's service-level time, and abandoned (the caller hung up
//! before an agent was bridged). Lock-free after a queue's first event.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::TimeDelta;
use dashmap::DashMap;

#[derive(Debug, Default)]
struct Counters {
    answered: AtomicU64,
    within: AtomicU64,
    abandoned: AtomicU64,
}

/// What a queue's counters say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueOutcomes {
    /// Bridged to an agent.
    pub answered: u64,
    /// Bridged after waiting at most the service-level time.
    pub answered_within: u64,
    /// Left before an agent was bridged.
    pub abandoned: u64,
}

impl QueueOutcomes {
    /// Answered within the target ÷ (answered + abandoned); `None` before any outcome.
    pub fn service_level(&self) -> Option<f64> {
        let offered = self.answered + self.abandoned;
        (offered > 0).then(|| self.answered_within as f64 / offered as f64)
    }
}

/// Counters of every queue.
#[derive(Debug, Default)]
pub struct QueueStats {
    queues: DashMap<String, Counters>,
}

impl QueueStats {
    fn with(&self, queue: &str, f: impl FnOnce(&Counters)) {
        if let Some(c) = self.queues.get(queue) {
            f(&c);
            return;
        }
        f(&self.queues.entry(queue.to_string()).or_default());
    }

    /// An agent was bridged after the interaction waited `waited`.
    pub fn answered(&self, queue: &str, waited: TimeDelta, target: TimeDelta) {
        self.with(queue, |c| {
            c.answered.fetch_add(1, Ordering::Relaxed);
            if waited <= target {
                c.within.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// The caller left before an agent was bridged.
    pub fn abandoned(&self, queue: &str) {
        self.with(queue, |c| {
            c.abandoned.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// A queue's counters (zero when nothing happened yet).
    pub fn get(&self, queue: &str) -> QueueOutcomes {
        self.queues
            .get(queue)
            .map(|c| QueueOutcomes {
                answered: c.answered.load(Ordering::Relaxed),
                answered_within: c.within.load(Ordering::Relaxed),
                abandoned: c.abandoned.load(Ordering::Relaxed),
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_level_counts_abandons_as_misses() {
        let s = QueueStats::default();
        assert_eq!(s.get("Q").service_level(), None);
        let target = TimeDelta::seconds(20);
        s.answered("Q", TimeDelta::seconds(5), target);
        s.answered("Q", TimeDelta::seconds(20), target);
        s.answered("Q", TimeDelta::seconds(21), target);
        s.abandoned("Q");
        let o = s.get("Q");
        assert_eq!((o.answered, o.answered_within, o.abandoned), (3, 2, 1));
        assert_eq!(o.service_level(), Some(0.5));
        assert_eq!(s.get("Other"), QueueOutcomes::default());
    }
}

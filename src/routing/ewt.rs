//! Estimated wait time, two ways, selectable per queue:
//! - queue length: (position + 1 − ready eligible agents) × average handle time ÷ busy eligible
//!   agents — zero when an eligible agent is ready for this position;
//! - moving average: the mean of the last 32 observed waits (Asterisk's holdtime approach).
//!
//! Both only use figures the router has, so they cost a few loads per question.

use std::collections::VecDeque;

use chrono::TimeDelta;

/// Samples kept for each moving figure.
pub const WINDOW: usize = 32;

/// Handle times and waits observed on one queue.
#[derive(Debug, Clone, Default)]
pub struct EwtStats {
    handle_ms: VecDeque<i64>,
    waits_ms: VecDeque<i64>,
}

fn push(q: &mut VecDeque<i64>, v: i64) {
    q.push_back(v.max(0));
    if q.len() > WINDOW {
        q.pop_front();
    }
}

fn mean(q: &VecDeque<i64>) -> Option<TimeDelta> {
    (!q.is_empty()).then(|| TimeDelta::milliseconds(q.iter().sum::<i64>() / q.len() as i64))
}

impl EwtStats {
    /// Records the handle time of a completed interaction.
    pub fn record_handle(&mut self, handle: TimeDelta) {
        push(&mut self.handle_ms, handle.num_milliseconds());
    }

    /// Records how long an interaction waited before an agent took it.
    pub fn record_wait(&mut self, wait: TimeDelta) {
        push(&mut self.waits_ms, wait.num_milliseconds());
    }

    /// Average handle time over the window, or `default` before any is known.
    pub fn aht(&self, default: TimeDelta) -> TimeDelta {
        mean(&self.handle_ms).unwrap_or(default)
    }

    /// Mean observed wait over the window.
    pub fn average_wait(&self) -> Option<TimeDelta> {
        mean(&self.waits_ms)
    }
}

/// Queue-length estimate for an interaction at 0-based `position`; `None` when nobody can
/// serve the queue (no eligible agent logged in).
pub fn queue_length_ewt(
    position: usize,
    aht: TimeDelta,
    ready: usize,
    busy: usize,
) -> Option<TimeDelta> {
    if position < ready {
        return Some(TimeDelta::zero());
    }
    if busy == 0 {
        return (ready > 0).then(TimeDelta::zero);
    }
    let ahead = (position + 1 - ready) as i64;
    Some(TimeDelta::milliseconds(
        aht.num_milliseconds() * ahead / busy as i64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_length_estimator() {
        let aht = TimeDelta::seconds(180);
        assert_eq!(queue_length_ewt(0, aht, 1, 5), Some(TimeDelta::zero()));
        assert_eq!(queue_length_ewt(0, aht, 0, 3), Some(TimeDelta::seconds(60)));
        assert_eq!(
            queue_length_ewt(5, aht, 0, 3),
            Some(TimeDelta::seconds(360))
        );
        assert_eq!(
            queue_length_ewt(5, aht, 2, 4),
            Some(TimeDelta::seconds(180))
        );
        assert_eq!(queue_length_ewt(3, aht, 0, 0), None);
    }

    #[test]
    fn moving_averages_keep_the_last_32() {
        let mut s = EwtStats::default();
        assert_eq!(s.aht(TimeDelta::seconds(300)), TimeDelta::seconds(300));
        for _ in 0..40 {
            s.record_wait(TimeDelta::seconds(100));
        }
        for _ in 0..16 {
            s.record_wait(TimeDelta::seconds(20));
        }
        assert_eq!(s.average_wait(), Some(TimeDelta::seconds(60)));
        s.record_handle(TimeDelta::seconds(120));
        s.record_handle(TimeDelta::seconds(240));
        assert_eq!(s.aht(TimeDelta::zero()), TimeDelta::seconds(180));
    }
}

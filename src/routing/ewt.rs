//! Estimated wait time, two ways, selectable per queue:
//! - queue length: (position + 1 − ready eligible agents) × average handle time ÷ busy eligible
//!   agents — zero when an eligible agent is ready for this position;
//! - moving average: the mean of the last 32 observed waits (Asterisk's holdtime approach).
//!
//! Both only use figures the router has, so they cost a few loads per question.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

/// Samples kept for each moving figure.
pub const WINDOW: usize = 32;

/// Handle times and waits observed on one queue.
#[derive(Debug, Clone, Default)]
pub struct EwtStats {
    handle_ms: VecDeque<i64>,
    waits_ms: VecDeque<i64>,
    /// When the last interactions left the queue for an agent (the GES mode1 rate).
    departures: VecDeque<DateTime<Utc>>,
}

/// How GES's `GET /estimated-wait-time` computes (`mode` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EwtMode {
    /// The rate at which the last 32 interactions left the queue for an agent × the number
    /// ahead; ignores agent availability (known while agents are all logged out).
    Mode1,
    /// The router's figure (the queue's `ewt_method`), unknown with no eligible agent logged
    /// in. The default.
    #[default]
    Mode2,
    /// The statistics figure: average handle time × interactions ahead ÷ busy eligible agents
    /// (whatever the queue's `ewt_method`), unknown with no eligible agent logged in.
    Mode3,
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

    /// Records that an interaction left the queue for an agent at `at`.
    pub fn record_departure(&mut self, at: DateTime<Utc>) {
        self.departures.push_back(at);
        if self.departures.len() > WINDOW {
            self.departures.pop_front();
        }
    }

    /// Mean time between departures over the last [`WINDOW`] of them; `None` before two.
    pub fn departure_interval(&self) -> Option<TimeDelta> {
        let (first, last) = (self.departures.front()?, self.departures.back()?);
        let n = self.departures.len() as i32 - 1;
        (n > 0).then(|| (*last - *first) / n)
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
    fn departure_rate_over_the_last_32() {
        let t0 = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 2, 9, 0, 0).unwrap();
        let mut s = EwtStats::default();
        s.record_departure(t0);
        assert_eq!(s.departure_interval(), None);
        // 40 departures 10 s apart, then 32 that are 30 s apart: only the last 32 count.
        for i in 1..40 {
            s.record_departure(t0 + TimeDelta::seconds(10 * i));
        }
        let t1 = t0 + TimeDelta::seconds(390);
        for i in 1..=32 {
            s.record_departure(t1 + TimeDelta::seconds(30 * i));
        }
        assert_eq!(s.departure_interval(), Some(TimeDelta::seconds(30)));
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

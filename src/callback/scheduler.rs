//! Time-indexed wake-ups for callbacks: a scheduled callback becomes QUEUED at its desired time,
//! a failed attempt is retried after the queue's interval, a waiting callback is purged, a pushed
//! customer-dials-in callback expires. One ordered index serves them all, so the engine sleeps
//! on the Clock until the single earliest deadline instead of keeping a timer per callback.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::config::{BusinessHours, QueueSpec};

/// What is due for a callback at a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Wake {
    /// The desired time of a SCHEDULED callback has come: queue it.
    Activate,
    /// The retry interval after a failed attempt has passed: it may be dialled again.
    Retry,
    /// Purge time or end of business day reached before being served.
    Purge,
    /// The life of a pushed customer-dials-in callback has ended.
    PushExpiry,
}

/// Deadlines by time, with at most one pending deadline per callback and kind.
#[derive(Debug, Default)]
pub struct Timers {
    by_time: BTreeMap<(DateTime<Utc>, u64), (Uuid, Wake)>,
    by_key: HashMap<(Uuid, Wake), (DateTime<Utc>, u64)>,
    seq: u64,
}

impl Timers {
    /// No deadlines.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or moves) the deadline of `kind` for callback `id`.
    pub fn schedule(&mut self, id: Uuid, kind: Wake, at: DateTime<Utc>) {
        self.cancel(id, kind);
        self.seq += 1;
        self.by_time.insert((at, self.seq), (id, kind));
        self.by_key.insert((id, kind), (at, self.seq));
    }

    /// Drops one deadline; true if it was set.
    pub fn cancel(&mut self, id: Uuid, kind: Wake) -> bool {
        match self.by_key.remove(&(id, kind)) {
            Some(key) => {
                self.by_time.remove(&key);
                true
            }
            None => false,
        }
    }

    /// Drops every deadline of a callback (it completed).
    pub fn cancel_all(&mut self, id: Uuid) {
        for kind in [Wake::Activate, Wake::Retry, Wake::Purge, Wake::PushExpiry] {
            self.cancel(id, kind);
        }
    }

    /// When a deadline of `kind` is set for `id`.
    pub fn deadline(&self, id: Uuid, kind: Wake) -> Option<DateTime<Utc>> {
        self.by_key.get(&(id, kind)).map(|(t, _)| *t)
    }

    /// The earliest deadline, to sleep until.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.by_time.keys().next().map(|(t, _)| *t)
    }

    /// Removes and returns every deadline at or before `now`, earliest first.
    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Vec<(Uuid, Wake, DateTime<Utc>)> {
        let mut due = Vec::new();
        while let Some(entry) = self.by_time.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((at, _), (id, kind)) = entry.remove_entry();
            self.by_key.remove(&(id, kind));
            due.push((id, kind, at));
        }
        due
    }

    /// Number of pending deadlines.
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }
}

/// When a callback entering its queue at `queued_at` is purged if still unserved: after the
/// queue's purge time, or at the end of that business day, whichever comes first. A callback
/// queued while the office is closed counts from the next opening.
pub fn purge_at(
    queue: &QueueSpec,
    hours: &BusinessHours,
    queued_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let start = if hours.is_open(queued_at) {
        queued_at
    } else {
        hours.next_open(queued_at).unwrap_or(queued_at)
    };
    let by_age = start + TimeDelta::minutes(queue.callback_purge_time_minutes);
    match hours.close_after(start) {
        Some(close) => by_age.min(close),
        None => by_age,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use chrono::TimeZone;
    use std::path::Path;

    fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).single().unwrap()
    }

    #[test]
    fn deadlines_pop_in_order_and_can_move_or_be_cancelled() {
        let mut t = Timers::new();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        t.schedule(a, Wake::Activate, utc(2, 10, 0));
        t.schedule(b, Wake::Purge, utc(2, 9, 0));
        t.schedule(c, Wake::Retry, utc(2, 9, 30));
        t.schedule(a, Wake::Purge, utc(2, 18, 0));
        assert_eq!(t.next_deadline(), Some(utc(2, 9, 0)));
        t.schedule(b, Wake::Purge, utc(2, 11, 0));
        assert_eq!(t.deadline(b, Wake::Purge), Some(utc(2, 11, 0)));
        assert!(t.cancel(c, Wake::Retry));
        assert!(!t.cancel(c, Wake::Retry));
        let due = t.pop_due(utc(2, 12, 0));
        assert_eq!(
            due,
            vec![
                (a, Wake::Activate, utc(2, 10, 0)),
                (b, Wake::Purge, utc(2, 11, 0))
            ]
        );
        t.cancel_all(a);
        assert!(t.is_empty());
    }

    #[test]
    fn purge_at_the_earlier_of_purge_time_and_closing_across_dst() {
        let c = Config::from_str_in(
            "business_hours:
  paris:
    time_zone: Europe/Paris
    weekly: {fri: '09:00-18:00', sat: '09:00-18:00', sun: '09:00-18:00', mon: '09:00-18:00'}
queues:
  - name: Q_VQ_CB
    business_hours: paris
    callback_purge_time_minutes: 120
",
            Path::new("/"),
        )
        .unwrap();
        let q = c.queue("Q_VQ_CB").unwrap();
        let h = c.queue_hours(q);
        // Saturday 28 March 2026, 10:00 Paris (UTC+1): purge time wins.
        assert_eq!(purge_at(q, &h, utc(28, 9, 0)), utc(28, 11, 0));
        // 17:00 Paris: end of day (18:00 Paris = 17:00 UTC) comes first.
        assert_eq!(purge_at(q, &h, utc(28, 16, 0)), utc(28, 17, 0));
        // Sunday 29 March, after the switch to summer time (UTC+2): 18:00 Paris = 16:00 UTC.
        assert_eq!(purge_at(q, &h, utc(29, 15, 30)), utc(29, 16, 0));
        // Queued at night: the purge time counts from Monday's opening (09:00 Paris = 07:00 UTC).
        assert_eq!(purge_at(q, &h, utc(29, 20, 0)), utc(30, 9, 0));
    }
}

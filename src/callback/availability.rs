//! What a queue can accept: scheduled slots (business hours × slot duration × capacity, with
//! exact counts under concurrent bookings) and open-for (may an immediate callback be offered
//! now, and for how long is the office open).

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use dashmap::DashMap;
use serde::Serialize;

use crate::config::{BusinessHours, QueueSpec};

/// One bookable (or full) slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    /// Slot start.
    pub start: DateTime<Utc>,
    /// Slot end (start + slot duration).
    pub end: DateTime<Utc>,
    /// How many callbacks the slot takes.
    pub capacity: u32,
    /// How many are booked.
    pub booked: u32,
}

impl Slot {
    /// Places left.
    pub fn available(&self) -> u32 {
        self.capacity.saturating_sub(self.booked)
    }
}

/// Per-slot booking counters shared by every booking path; a booking succeeds only while the
/// count is below capacity, so concurrent bookings never overbook.
#[derive(Debug, Default)]
pub struct SlotBook {
    counts: DashMap<(String, i64), AtomicU32>,
}

impl SlotBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bookings held in a queue's slot starting at `start`.
    pub fn booked(&self, queue: &str, start: DateTime<Utc>) -> u32 {
        self.counts
            .get(&(queue.to_string(), start.timestamp()))
            .map(|c| c.load(Ordering::Acquire))
            .unwrap_or(0)
    }

    /// Takes one place in the slot if fewer than `capacity` are taken.
    pub fn try_book(&self, queue: &str, start: DateTime<Utc>, capacity: u32) -> bool {
        let entry = self
            .counts
            .entry((queue.to_string(), start.timestamp()))
            .or_insert_with(|| AtomicU32::new(0));
        let counter = entry.value();
        let mut current = counter.load(Ordering::Acquire);
        loop {
            if current >= capacity {
                return false;
            }
            match counter.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// Counts a booking without a capacity check (API bookings, reload after restart).
    pub fn force_book(&self, queue: &str, start: DateTime<Utc>) {
        self.counts
            .entry((queue.to_string(), start.timestamp()))
            .or_insert_with(|| AtomicU32::new(0))
            .fetch_add(1, Ordering::AcqRel);
    }

    /// Gives a place back (cancel, reschedule).
    pub fn release(&self, queue: &str, start: DateTime<Utc>) {
        if let Some(c) = self.counts.get(&(queue.to_string(), start.timestamp())) {
            let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1));
        }
    }
}

/// The start of the slot containing `t` for a queue (slots are aligned to local midnight).
pub fn slot_start(hours: &BusinessHours, slot_minutes: u32, t: DateTime<Utc>) -> DateTime<Utc> {
    let local = t.with_timezone(&hours.tz);
    let date = local.date_naive();
    let minute = (chrono::Timelike::hour(&local) * 60 + chrono::Timelike::minute(&local)) as u16;
    let aligned = minute - minute % slot_minutes.max(1) as u16;
    hours.local_to_utc(date, aligned)
}

/// Slots of local dates `from..=to`: those whose start is open and after `now`, with capacity
/// from `capacity_at` (slot capacity, or a capacity rule's cell) and bookings from `book`.
pub fn slots(
    queue: &QueueSpec,
    hours: &BusinessHours,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
    capacity_at: &dyn Fn(DateTime<Utc>) -> u32,
    book: &SlotBook,
) -> Vec<Slot> {
    let step = queue.slot_duration_minutes.clamp(1, 1440) as u16;
    let last_day = (now + TimeDelta::days(queue.max_days_ahead))
        .with_timezone(&hours.tz)
        .date_naive();
    let mut out = Vec::new();
    let mut date = from;
    while date <= to && date <= last_day {
        let mut minute: u16 = 0;
        while minute < 1440 {
            let start = hours.local_to_utc(date, minute);
            let end = start + TimeDelta::minutes(step as i64);
            // Open/closed is checked at the slot's start only (as in GES).
            if start > now
                && hours.is_open(start)
                && out.last().is_none_or(|s: &Slot| s.start < start)
            {
                out.push(Slot {
                    start,
                    end,
                    capacity: capacity_at(start),
                    booked: book.booked(&queue.name, start),
                });
            }
            minute += step;
        }
        match date.succ_opt() {
            Some(d) => date = d,
            None => break,
        }
    }
    out
}

/// The nearest slot at or after `wanted` that still has room (what the IVR offers).
pub fn nearest_available(slots: &[Slot], wanted: DateTime<Utc>) -> Option<&Slot> {
    slots.iter().find(|s| s.end > wanted && s.available() > 0)
}

/// The open-for answer for a queue at an instant, as the GES open-for API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenFor {
    /// Seconds until the office closes; 0 when closed.
    pub open_for: i64,
    /// -1 without Immediate Offer Hours, 0 outside them, else seconds to their end that day.
    pub immediate_offer_hours_open_for: i64,
    /// May an immediate callback be offered now (hours, blackout and current EWT considered).
    pub is_within_immediate_offer_time: bool,
    /// The queue's Immediate Enabled flag.
    pub is_immediate_enabled: bool,
}

/// Computes open-for for `queue` at `now` with the queue's current EWT.
pub fn open_for(
    queue: &QueueSpec,
    hours: &BusinessHours,
    offer_hours: Option<&BusinessHours>,
    now: DateTime<Utc>,
    ewt: TimeDelta,
) -> OpenFor {
    let close = hours.close_after(now);
    let open_for = close.map(|c| (c - now).num_seconds()).unwrap_or(0);
    let offer_close = offer_hours.map(|h| h.close_after(now));
    let immediate_offer_hours_open_for = match offer_close {
        None => -1,
        Some(None) => 0,
        Some(Some(c)) => (c - now).num_seconds(),
    };
    // The window in which an immediate callback may be offered ends at the end of the offer
    // hours, or at closing time minus the blackout; the caller must be served before it ends.
    let window_end = match offer_close {
        Some(c) => c.zip(close).map(|(a, b)| a.min(b)),
        None => close.map(|c| c - TimeDelta::minutes(queue.immediate_blackout_minutes)),
    };
    let is_within_immediate_offer_time =
        queue.immediate_enabled && window_end.is_some_and(|end| now + ewt < end && now < end);
    OpenFor {
        open_for,
        immediate_offer_hours_open_for,
        is_within_immediate_offer_time,
        is_immediate_enabled: queue.immediate_enabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use chrono::TimeZone;
    use std::path::Path;
    use std::sync::Arc;

    fn cfg() -> Config {
        Config::from_str_in(
            "business_hours:
  office:
    time_zone: Europe/Paris
    weekly: {mon: '09:00-12:00', tue: '09:00-17:00'}
  offer:
    time_zone: Europe/Paris
    weekly: {mon: '09:00-11:00'}
queues:
  - name: Q_VQ_CB
    business_hours: office
    slot_duration_minutes: 60
    slot_capacity: 2
    immediate_blackout_minutes: 30
  - name: O_VQ_CB
    business_hours: office
    immediate_offer_hours: offer
",
            Path::new("/"),
        )
        .unwrap()
    }

    fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).single().unwrap()
    }

    /// Queue `name` of `c` and its business hours.
    fn queue_with_hours<'a>(
        c: &'a Config,
        name: &str,
    ) -> (&'a crate::config::QueueSpec, Arc<BusinessHours>) {
        let q = c.queue(name).unwrap();
        (q, c.queue_hours(q))
    }

    #[test]
    fn slots_follow_hours_in_the_queues_time_zone() {
        let c = cfg();
        let (q, h) = queue_with_hours(&c, "Q_VQ_CB");
        let book = SlotBook::new();
        let mon = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let s = slots(
            q,
            &h,
            mon,
            mon.succ_opt().unwrap(),
            utc(1, 0, 0),
            &|_| 2,
            &book,
        );
        // Monday 09–12 Paris (08–11 UTC): 3 slots; Tuesday 09–17: 8 slots.
        assert_eq!(s.len(), 11);
        assert_eq!(s[0].start, utc(2, 8, 0));
        assert_eq!(s[2].end, utc(2, 11, 0));
        assert_eq!(s[3].start, utc(3, 8, 0));
        // Slots already started are not offered.
        let later = slots(q, &h, mon, mon, utc(2, 8, 30), &|_| 2, &book);
        assert_eq!(later.len(), 2);
        assert_eq!(slot_start(&h, 60, utc(2, 8, 59)), utc(2, 8, 0));
        assert_eq!(slot_start(&h, 15, utc(2, 8, 29)), utc(2, 8, 15));
    }

    #[test]
    fn bookings_fill_a_slot_to_capacity_and_no_further() {
        let c = cfg();
        let (q, h) = queue_with_hours(&c, "Q_VQ_CB");
        let book = SlotBook::new();
        let start = utc(2, 8, 0);
        assert!(book.try_book(&q.name, start, 2));
        assert!(book.try_book(&q.name, start, 2));
        assert!(!book.try_book(&q.name, start, 2));
        let mon = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let s = slots(q, &h, mon, mon, utc(1, 0, 0), &|_| 2, &book);
        assert_eq!((s[0].booked, s[0].available()), (2, 0));
        assert_eq!(
            nearest_available(&s, utc(2, 8, 10)).unwrap().start,
            utc(2, 9, 0)
        );
        book.release(&q.name, start);
        assert_eq!(book.booked(&q.name, start), 1);
    }

    #[test]
    fn concurrent_bookings_never_overbook() {
        let book = Arc::new(SlotBook::new());
        let start = utc(2, 8, 0);
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let b = book.clone();
                    s.spawn(move || (0..125).filter(|_| b.try_book("Q", start, 100)).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 100);
        assert_eq!(book.booked("Q", start), 100);
    }

    #[test]
    fn open_for_with_blackout_and_ewt() {
        let c = cfg();
        let (q, h) = queue_with_hours(&c, "Q_VQ_CB");
        // Monday 10:00 Paris = 09:00 UTC; closes 12:00 Paris = 11:00 UTC.
        let o = open_for(q, &h, None, utc(2, 9, 0), TimeDelta::minutes(10));
        assert_eq!(o.open_for, 7200);
        assert_eq!(o.immediate_offer_hours_open_for, -1);
        assert!(o.is_within_immediate_offer_time);
        // 11:35 Paris is inside the 30-minute blackout.
        let o = open_for(q, &h, None, utc(2, 10, 35), TimeDelta::zero());
        assert!(!o.is_within_immediate_offer_time);
        // EWT that would end after the blackout starts: no offer.
        let o = open_for(q, &h, None, utc(2, 10, 0), TimeDelta::minutes(45));
        assert!(!o.is_within_immediate_offer_time);
        // Closed.
        let o = open_for(q, &h, None, utc(2, 12, 0), TimeDelta::zero());
        assert_eq!((o.open_for, o.is_within_immediate_offer_time), (0, false));
    }

    #[test]
    fn open_for_with_immediate_offer_hours() {
        let c = cfg();
        let (q, h) = queue_with_hours(&c, "O_VQ_CB");
        let offer = c.immediate_offer_hours(q).unwrap();
        let o = open_for(q, &h, Some(&offer), utc(2, 9, 0), TimeDelta::zero());
        assert_eq!(o.immediate_offer_hours_open_for, 3600);
        assert!(o.is_within_immediate_offer_time);
        let o = open_for(q, &h, Some(&offer), utc(2, 10, 30), TimeDelta::zero());
        assert_eq!(o.immediate_offer_hours_open_for, 0);
        assert!(!o.is_within_immediate_offer_time);
        assert_eq!(o.open_for, 1800);
    }
}

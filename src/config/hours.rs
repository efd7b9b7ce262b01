//! Business hours: weekly open/close ranges in a time zone plus dated special days. Slots,
//! open-for, end-of-day purging and the flows' Business Hours block all ask these questions.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// One open range within a day, in local minutes since midnight (end may be 1440).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Range {
    /// Opening minute of the day.
    pub open: u16,
    /// Closing minute of the day (exclusive), up to 1440.
    pub close: u16,
}

/// The open ranges of one day; empty means closed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayHours(pub Vec<Range>);

impl DayHours {
    /// Parses `closed`, `24h`, or comma-separated `HH:MM-HH:MM` ranges.
    pub fn parse(text: &str) -> Result<DayHours, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("closed") || t.is_empty() {
            return Ok(DayHours(Vec::new()));
        }
        if t.eq_ignore_ascii_case("24h") || t.eq_ignore_ascii_case("open") {
            return Ok(DayHours(vec![Range {
                open: 0,
                close: 1440,
            }]));
        }
        let mut ranges = Vec::new();
        for part in t.split(',') {
            let part = part.trim();
            let (a, b) = part
                .split_once('-')
                .ok_or_else(|| format!("`{part}` is not a range like 08:00-17:30"))?;
            let open = parse_hhmm(a.trim())?;
            let close = parse_hhmm(b.trim())?;
            if close <= open {
                return Err(format!("`{part}` closes before it opens"));
            }
            ranges.push(Range { open, close });
        }
        ranges.sort();
        for w in ranges.windows(2) {
            if w[1].open < w[0].close {
                return Err(format!("ranges in `{t}` overlap"));
            }
        }
        Ok(DayHours(ranges))
    }

    /// True when at least one range is open.
    pub fn is_open_day(&self) -> bool {
        !self.0.is_empty()
    }

    /// True when `minute` of the day falls in an open range.
    pub fn is_open_at(&self, minute: u16) -> bool {
        self.0.iter().any(|r| r.open <= minute && minute < r.close)
    }
}

fn parse_hhmm(s: &str) -> Result<u16, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not a time like 08:00"))?;
    let h: u16 = h.parse().map_err(|_| format!("`{s}` has a bad hour"))?;
    let m: u16 = m.parse().map_err(|_| format!("`{s}` has bad minutes"))?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("`{s}` is not a time of day (00:00 to 24:00)"));
    }
    Ok(h * 60 + m)
}

impl fmt::Display for DayHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "closed");
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| {
                format!(
                    "{:02}:{:02}-{:02}:{:02}",
                    r.open / 60,
                    r.open % 60,
                    r.close / 60,
                    r.close % 60
                )
            })
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// The YAML form of business hours, as an operator writes it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursSpec {
    /// IANA time zone name (chrono-tz), e.g. `Europe/Paris`. Default `UTC`.
    #[serde(default = "default_tz")]
    pub time_zone: String,
    /// Weekday (`mon`…`sun`) → `closed`, `24h` or `HH:MM-HH:MM[, …]`; a missing day is closed.
    #[serde(default)]
    pub weekly: BTreeMap<String, String>,
    /// Dated exceptions (holidays, special openings).
    #[serde(default)]
    pub special_days: Vec<SpecialDaySpec>,
}

fn default_tz() -> String {
    "UTC".into()
}

/// A dated exception to the weekly hours.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SpecialDaySpec {
    /// The local date, `YYYY-MM-DD`.
    pub date: NaiveDate,
    /// `closed` or ranges, as in `weekly`.
    #[serde(default = "closed")]
    pub hours: String,
    /// A label for reports and the Business Hours block (e.g. "Christmas").
    #[serde(default)]
    pub name: String,
}

fn closed() -> String {
    "closed".into()
}

/// What kind of day a date is, for the Business Hours block's branches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayKind {
    /// An ordinary day from the weekly hours.
    Regular,
    /// A special day, with its name.
    Special(String),
}

/// Business hours resolved for fast questions: is it open now, when does it close, next opening.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    /// Name the configuration gave them.
    pub name: String,
    /// The time zone every range is read in.
    pub tz: Tz,
    weekly: [DayHours; 7],
    special: BTreeMap<NaiveDate, (DayHours, String)>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl BusinessHours {
    /// Hours that are always open, in UTC; the default for a queue that names none.
    pub fn always_open() -> Self {
        let all = DayHours(vec![Range {
            open: 0,
            close: 1440,
        }]);
        BusinessHours {
            name: "24x7".into(),
            tz: Tz::UTC,
            weekly: std::array::from_fn(|_| all.clone()),
            special: BTreeMap::new(),
        }
    }

    /// Resolves the YAML form; errors name the field (`weekly.mon`, `special_days[1].hours`…).
    pub fn from_spec(name: &str, spec: &BusinessHoursSpec) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let tz: Tz = match spec.time_zone.parse() {
            Ok(tz) => tz,
            Err(_) => {
                errors.push((
                    "time_zone".into(),
                    format!(
                        "unknown time zone `{}` (use an IANA name such as Europe/Paris)",
                        spec.time_zone
                    ),
                ));
                Tz::UTC
            }
        };
        let mut weekly: [DayHours; 7] = Default::default();
        for (day, text) in &spec.weekly {
            let Some(i) = DAYS
                .iter()
                .position(|d| d.eq_ignore_ascii_case(day.get(..3).unwrap_or(day)))
            else {
                errors.push((
                    format!("weekly.{day}"),
                    format!("`{day}` is not a weekday (mon … sun)"),
                ));
                continue;
            };
            match DayHours::parse(text) {
                Ok(h) => weekly[i] = h,
                Err(e) => errors.push((format!("weekly.{day}"), e)),
            }
        }
        let mut special = BTreeMap::new();
        for (i, sd) in spec.special_days.iter().enumerate() {
            match DayHours::parse(&sd.hours) {
                Ok(h) => {
                    if special.insert(sd.date, (h, sd.name.clone())).is_some() {
                        errors.push((
                            format!("special_days[{i}].date"),
                            format!("{} is listed twice", sd.date),
                        ));
                    }
                }
                Err(e) => errors.push((format!("special_days[{i}].hours"), e)),
            }
        }
        if errors.is_empty() {
            Ok(BusinessHours {
                name: name.to_string(),
                tz,
                weekly,
                special,
            })
        } else {
            Err(errors)
        }
    }

    /// The hours in force on a local date, and whether it is a special day.
    pub fn day(&self, date: NaiveDate) -> (&DayHours, DayKind) {
        match self.special.get(&date) {
            Some((h, name)) => (h, DayKind::Special(name.clone())),
            None => (
                &self.weekly[date.weekday().num_days_from_monday() as usize],
                DayKind::Regular,
            ),
        }
    }

    /// True when the office is open at instant `t`.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&self.tz);
        let minute = (local.hour_of_day() * 60 + local.minute_of_hour()) as u16;
        self.day(local.date_naive()).0.is_open_at(minute)
    }

    /// The open intervals of a local date as UTC instants, in order (DST-aware).
    pub fn intervals_on(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        self.day(date)
            .0
            .0
            .iter()
            .map(|r| {
                (
                    self.local_to_utc(date, r.open),
                    self.local_to_utc(date, r.close),
                )
            })
            .filter(|(a, b)| a < b)
            .collect()
    }

    /// The open intervals of the local day that contains `now`, as local times of the hours'
    /// time zone (the "today" the API and the UI show for a queue).
    pub fn today(&self, now: DateTime<Utc>) -> Vec<(DateTime<Tz>, DateTime<Tz>)> {
        let local = now.with_timezone(&self.tz);
        self.intervals_on(local.date_naive())
            .into_iter()
            .map(|(open, close)| (open.with_timezone(&self.tz), close.with_timezone(&self.tz)))
            .collect()
    }

    /// When the open interval containing `t` ends (the end of the business day for purging);
    /// `None` when closed at `t`. Adjacent ranges across midnight are joined.
    pub fn close_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let date = t.with_timezone(&self.tz).date_naive();
        let (mut end, mut day) = {
            let (_, e) = self
                .intervals_on(date)
                .into_iter()
                .chain(
                    date.pred_opt()
                        .map(|d| self.intervals_on(d))
                        .unwrap_or_default(),
                )
                .find(|(a, b)| *a <= t && t < *b)?;
            (e, date)
        };
        // An interval ending at midnight continues if the next day opens at midnight.
        for _ in 0..8 {
            day = day.succ_opt()?;
            match self.intervals_on(day).first() {
                Some((a, b)) if *a == end => end = *b,
                _ => break,
            }
        }
        Some(end)
    }

    /// The first instant at or after `t` when the office is open, looking up to 366 days ahead.
    pub fn next_open(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(t) {
            return Some(t);
        }
        let mut date = t.with_timezone(&self.tz).date_naive();
        for _ in 0..367 {
            if let Some((a, _)) = self.intervals_on(date).into_iter().find(|(_, b)| *b > t) {
                return Some(a.max(t));
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// Local minute-of-day `minute` on `date` as a UTC instant; a time skipped by a DST jump
    /// moves forward to the first valid instant, an ambiguous one takes the earlier.
    pub fn local_to_utc(&self, date: NaiveDate, minute: u16) -> DateTime<Utc> {
        let (date, minute) = if minute >= 1440 {
            (date.succ_opt().unwrap_or(date), minute - 1440)
        } else {
            (date, minute)
        };
        let time = NaiveTime::from_hms_opt((minute / 60) as u32, (minute % 60) as u32, 0)
            .unwrap_or_default();
        let naive = date.and_time(time);
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
            LocalResult::None => {
                // In a DST gap: walk forward minute by minute (gaps are at most a few hours).
                let mut probe = naive;
                for _ in 0..240 {
                    probe += TimeDelta::minutes(1);
                    if let Some(t) = self.tz.from_local_datetime(&probe).earliest() {
                        return t.with_timezone(&Utc);
                    }
                }
                Utc.from_utc_datetime(&naive)
            }
        }
    }

    /// The weekly hours, Monday first, for reports.
    pub fn weekly(&self) -> &[DayHours; 7] {
        &self.weekly
    }

    /// Weekday index (Monday = 0) helper for callers that hold a chrono `Weekday`.
    pub fn weekday_hours(&self, day: Weekday) -> &DayHours {
        &self.weekly[day.num_days_from_monday() as usize]
    }
}

trait HourMinute {
    fn hour_of_day(&self) -> u32;
    fn minute_of_hour(&self) -> u32;
}

impl<T: chrono::Timelike> HourMinute for T {
    fn hour_of_day(&self) -> u32 {
        self.hour()
    }
    fn minute_of_hour(&self) -> u32 {
        self.minute()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> BusinessHours {
        let spec = BusinessHoursSpec {
            time_zone: "Europe/Paris".into(),
            weekly: [
                ("mon", "08:00-18:00"),
                ("tue", "08:00-12:00, 13:00-18:00"),
                ("wed", "08:00-18:00"),
                ("thu", "08:00-18:00"),
                ("fri", "08:00-18:00"),
                ("sat", "09:00-12:00"),
                ("sun", "closed"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
            special_days: vec![SpecialDaySpec {
                date: NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(),
                hours: "closed".into(),
                name: "Christmas".into(),
            }],
        };
        BusinessHours::from_spec("paris", &spec).unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap()
    }

    #[test]
    fn parses_ranges_and_rejects_nonsense() {
        assert_eq!(
            DayHours::parse("08:00-12:00,13:00-17:30")
                .unwrap()
                .to_string(),
            "08:00-12:00, 13:00-17:30"
        );
        assert!(DayHours::parse("closed").unwrap().0.is_empty());
        assert_eq!(
            DayHours::parse("24h").unwrap().0,
            vec![Range {
                open: 0,
                close: 1440
            }]
        );
        assert!(
            DayHours::parse("18:00-08:00")
                .unwrap_err()
                .contains("closes before")
        );
        assert!(
            DayHours::parse("08:00-12:00,11:00-13:00")
                .unwrap_err()
                .contains("overlap")
        );
        assert!(DayHours::parse("25:00-26:00").is_err());
        assert!(DayHours::parse("8am-5pm").is_err());
    }

    #[test]
    fn open_and_closed_follow_the_local_time_zone() {
        let h = paris();
        // Monday 2 March 2026: Paris is UTC+1.
        assert!(!h.is_open(utc(2026, 3, 2, 6, 59)));
        assert!(h.is_open(utc(2026, 3, 2, 7, 0)));
        assert!(h.is_open(utc(2026, 3, 2, 16, 59)));
        assert!(!h.is_open(utc(2026, 3, 2, 17, 0)));
        // Tuesday lunch break.
        assert!(!h.is_open(utc(2026, 3, 3, 11, 30)));
        // Summer time (UTC+2) from 29 March 2026.
        assert!(h.is_open(utc(2026, 3, 30, 6, 0)));
        assert!(!h.is_open(utc(2026, 3, 30, 16, 0)));
        // Christmas is a special closed day.
        assert!(!h.is_open(utc(2026, 12, 25, 10, 0)));
        assert_eq!(
            h.day(NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()).1,
            DayKind::Special("Christmas".into())
        );
    }

    #[test]
    fn today_is_the_local_day_of_now_in_local_times() {
        let h = paris();
        let hhmm = |now| -> Vec<String> {
            h.today(now)
                .iter()
                .map(|(o, c)| format!("{}-{}", o.format("%H:%M%:z"), c.format("%H:%M%:z")))
                .collect()
        };
        // Tuesday 3 March 2026, 23:30 UTC is already Wednesday in Paris (UTC+1).
        assert_eq!(hhmm(utc(2026, 3, 3, 23, 30)), ["08:00+01:00-18:00+01:00"]);
        // Tuesday's two ranges, read in summer time the next month.
        assert_eq!(
            hhmm(utc(2026, 4, 7, 12, 0)),
            ["08:00+02:00-12:00+02:00", "13:00+02:00-18:00+02:00"]
        );
        // Sunday and Christmas: nothing.
        assert!(hhmm(utc(2026, 3, 8, 12, 0)).is_empty());
        assert!(hhmm(utc(2026, 12, 25, 12, 0)).is_empty());
    }

    #[test]
    fn close_after_and_next_open() {
        let h = paris();
        assert_eq!(
            h.close_after(utc(2026, 3, 2, 10, 0)),
            Some(utc(2026, 3, 2, 17, 0))
        );
        assert_eq!(h.close_after(utc(2026, 3, 2, 18, 0)), None);
        assert_eq!(
            h.next_open(utc(2026, 3, 2, 18, 0)),
            Some(utc(2026, 3, 3, 7, 0))
        );
        // Saturday after noon → Monday 08:00 local.
        assert_eq!(
            h.next_open(utc(2026, 3, 7, 12, 0)),
            Some(utc(2026, 3, 9, 7, 0))
        );
        assert_eq!(
            h.next_open(utc(2026, 3, 2, 9, 0)),
            Some(utc(2026, 3, 2, 9, 0))
        );
    }

    #[test]
    fn always_open_joins_days_and_dst_gaps_move_forward() {
        let h = BusinessHours::always_open();
        assert!(h.is_open(utc(2026, 1, 1, 0, 0)));
        assert!(h.close_after(utc(2026, 1, 1, 0, 0)).unwrap() > utc(2026, 1, 7, 0, 0));
        let p = paris();
        // 02:30 on 29 March 2026 does not exist in Paris: it becomes 03:00 CEST = 01:00 UTC.
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(p.local_to_utc(d, 150), utc(2026, 3, 29, 1, 0));
    }

    #[test]
    fn bad_specs_report_each_field() {
        let spec = BusinessHoursSpec {
            time_zone: "Mars/Olympus".into(),
            weekly: [
                ("funday".to_string(), "08:00-09:00".to_string()),
                ("mon".into(), "9-5".into()),
            ]
            .into_iter()
            .collect(),
            special_days: vec![],
        };
        let errs = BusinessHours::from_spec("x", &spec).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, vec!["time_zone", "weekly.funday", "weekly.mon"]);
    }
}

//! The calling-hours window: customers are dialled only between `start` and `end` of their own
//! local time. The time zone comes from the number's country (parsed with `phonenumber`); a
//! country spanning several zones is dialled only when the window is open in each of its main
//! zones, so nobody is called early or late; a number whose country is unknown uses the
//! window's `time_zone`. Checked before every dial; a callback due outside the window waits for
//! its next opening.

use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A queue's calling-hours window (`queues[].calling_hours`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CallingHours {
    /// Opening, customer's local time, `HH:MM`.
    pub start: String,
    /// Closing (exclusive), customer's local time, `HH:MM`; after `start`.
    pub end: String,
    /// Days dialled, `mon` … `sun` (default: every day).
    #[serde(default)]
    pub days: Vec<String>,
    /// Zone of numbers whose country is unknown (IANA name; default UTC).
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A window checked and ready to use.
#[derive(Debug, Clone)]
struct Window {
    start: NaiveTime,
    end: NaiveTime,
    days: Vec<Weekday>,
    fallback: Tz,
}

fn time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("`{s}` is not a time (HH:MM)"))
}

impl CallingHours {
    /// The field in error and why, if any (for check-config).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        self.window().err()
    }

    fn window(&self) -> Result<Window, (&'static str, String)> {
        let start = time(&self.start).map_err(|e| ("start", e))?;
        let end = time(&self.end).map_err(|e| ("end", e))?;
        if end <= start {
            return Err((
                "end",
                format!("`{}` is not after `{}`", self.end, self.start),
            ));
        }
        let days = self
            .days
            .iter()
            .map(|d| {
                d.parse::<Weekday>()
                    .map_err(|_| ("days", format!("`{d}` is not a day (mon … sun)")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let fallback = match &self.time_zone {
            Some(z) => z
                .parse::<Tz>()
                .map_err(|_| ("time_zone", format!("`{z}` is not an IANA time zone")))?,
            None => Tz::UTC,
        };
        Ok(Window {
            start,
            end,
            days,
            fallback,
        })
    }

    /// When `number` may next be dialled at or after `now`: `now` itself inside the window;
    /// `None` when the window never opens (no day allowed) or does not parse.
    pub fn next_call_time(&self, number: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let w = self.window().ok()?;
        let zones = zones_of(number, w.fallback);
        let mut at = now;
        // Each round moves to the latest of the zones' next openings; it stops when all are
        // open together (a handful of rounds; zones with no common hours give up).
        for _ in 0..16 {
            let mut latest = at;
            for z in &zones {
                latest = latest.max(w.next_open(*z, at)?);
            }
            if zones.iter().all(|z| w.is_open(*z, latest)) {
                return Some(latest);
            }
            at = latest + TimeDelta::minutes(1);
        }
        // No common hours across the country's zones: its first (main) zone decides.
        w.next_open(zones[0], now)
    }
}

impl Window {
    fn day_ok(&self, d: Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&d)
    }

    fn is_open(&self, zone: Tz, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&zone);
        let clock = local.time();
        self.day_ok(local.weekday()) && clock >= self.start && clock < self.end
    }

    fn next_open(&self, zone: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(zone, t) {
            return Some(t);
        }
        let today = t.with_timezone(&zone).date_naive();
        for d in 0..8 {
            let date = today + TimeDelta::days(d);
            if !self.day_ok(date.weekday()) {
                continue;
            }
            // A start skipped by a DST change opens at the first valid minute after it.
            let mut local = date.and_time(self.start);
            for _ in 0..180 {
                if let Some(at) = zone.from_local_datetime(&local).earliest() {
                    let at = at.with_timezone(&Utc);
                    if at > t {
                        return Some(at);
                    }
                    break;
                }
                local += TimeDelta::minutes(1);
            }
        }
        None
    }
}

/// The main time zones of a number's country (its capital's first), else `fallback`.
fn zones_of(number: &str, fallback: Tz) -> Vec<Tz> {
    let region = phonenumber::parse(None, number.trim())
        .ok()
        .and_then(|n| n.country().id())
        .map(|id| id.as_ref().to_string());
    let names: &[&str] = match region.as_deref() {
        Some(r) => COUNTRY_ZONES
            .iter()
            .find(|(c, _)| *c == r)
            .map(|(_, z)| *z)
            .unwrap_or(&[]),
        None => &[],
    };
    let zones: Vec<Tz> = names.iter().filter_map(|n| n.parse().ok()).collect();
    if zones.is_empty() {
        vec![fallback]
    } else {
        zones
    }
}

/// Region code → main IANA zones (the inhabited mainland ones for countries spanning several).
const COUNTRY_ZONES: &[(&str, &[&str])] = &[
    ("AR", &["America/Argentina/Buenos_Aires"]),
    ("AT", &["Europe/Vienna"]),
    (
        "AU",
        &["Australia/Sydney", "Australia/Adelaide", "Australia/Perth"],
    ),
    ("BE", &["Europe/Brussels"]),
    ("BR", &["America/Sao_Paulo", "America/Manaus"]),
    (
        "CA",
        &[
            "America/Toronto",
            "America/Winnipeg",
            "America/Edmonton",
            "America/Vancouver",
        ],
    ),
    ("CH", &["Europe/Zurich"]),
    ("CN", &["Asia/Shanghai"]),
    ("CZ", &["Europe/Prague"]),
    ("DE", &["Europe/Berlin"]),
    ("DK", &["Europe/Copenhagen"]),
    ("ES", &["Europe/Madrid"]),
    ("FI", &["Europe/Helsinki"]),
    ("FR", &["Europe/Paris"]),
    ("GB", &["Europe/London"]),
    ("GR", &["Europe/Athens"]),
    ("IE", &["Europe/Dublin"]),
    ("IL", &["Asia/Jerusalem"]),
    ("IN", &["Asia/Kolkata"]),
    ("IT", &["Europe/Rome"]),
    ("JP", &["Asia/Tokyo"]),
    ("LU", &["Europe/Luxembourg"]),
    ("MA", &["Africa/Casablanca"]),
    ("MX", &["America/Mexico_City", "America/Tijuana"]),
    ("NL", &["Europe/Amsterdam"]),
    ("NO", &["Europe/Oslo"]),
    ("NZ", &["Pacific/Auckland"]),
    ("PL", &["Europe/Warsaw"]),
    ("PT", &["Europe/Lisbon"]),
    ("RO", &["Europe/Bucharest"]),
    ("RU", &["Europe/Moscow"]),
    ("SE", &["Europe/Stockholm"]),
    ("SG", &["Asia/Singapore"]),
    ("TR", &["Europe/Istanbul"]),
    (
        "US",
        &[
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
        ],
    ),
    ("ZA", &["Africa/Johannesburg"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        // Monday 2 March 2026.
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).single().unwrap()
    }

    fn window(start: &str, end: &str) -> CallingHours {
        CallingHours {
            start: start.into(),
            end: end.into(),
            days: vec![],
            time_zone: None,
        }
    }

    #[test]
    fn a_french_number_is_called_in_paris_time_and_deferred_to_the_opening() {
        let w = window("09:00", "20:00");
        // 07:30 UTC is 08:30 in Paris (UTC+1 in March): wait until 08:00 UTC.
        assert_eq!(w.next_call_time("+33612345678", at(7, 30)), Some(at(8, 0)));
        assert_eq!(w.next_call_time("+33612345678", at(8, 0)), Some(at(8, 0)));
        // 19:00 UTC is 20:00 in Paris: closed; the next morning.
        assert_eq!(
            w.next_call_time("+33612345678", at(19, 0)),
            Some(at(8, 0) + TimeDelta::days(1))
        );
    }

    #[test]
    fn a_us_number_waits_until_the_window_is_open_coast_to_coast() {
        let w = window("09:00", "20:00");
        // 14:00 UTC: 09:00 in New York (UTC-5) but 06:00 in Los Angeles (UTC-8): wait for
        // 09:00 in Los Angeles, 17:00 UTC.
        assert_eq!(w.next_call_time("+12025550123", at(14, 0)), Some(at(17, 0)));
    }

    #[test]
    fn unknown_countries_use_the_windows_zone_and_days_are_honoured() {
        let mut w = window("10:00", "12:00");
        w.time_zone = Some("Asia/Tokyo".into());
        w.days = vec!["tue".into()];
        // Monday 09:00 UTC; the number has no country: Tuesday 10:00 in Tokyo = 01:00 UTC.
        assert_eq!(
            w.next_call_time("not a number", at(9, 0)),
            Some(at(1, 0) + TimeDelta::days(1))
        );
        assert!(w.problem().is_none());
        assert_eq!(window("9h", "10:00").problem().map(|p| p.0), Some("start"));
        assert_eq!(window("10:00", "09:00").problem().map(|p| p.0), Some("end"));
    }
}

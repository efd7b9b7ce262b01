//! Capacity rules: a weekly grid of hour or half-hour cells, each the most scheduled callbacks
//! per slot (of the queue's slot duration) starting in that cell. A rule assigned to a queue
//! overrides its slot capacity; an empty cell means no capacity. The JSON form is the guide's
//! capacity statement: `{"days":{"mon":{"09:00":5,"09:30":4}},"duration":30}`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Why a capacity statement is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CapacityError {
    /// Cells are one hour (60) or half an hour (30).
    #[error("duration must be 30 or 60 minutes, not {0}")]
    Duration(u32),
    /// Not a day name.
    #[error("`{0}` is not a day (sun, mon, tue, wed, thu, fri, sat)")]
    Day(String),
    /// A time that is not a cell start for the duration.
    #[error("`{time}` on {day} is not the start of a {duration}-minute cell (HH:00{half})")]
    Cell {
        /// Day name.
        day: String,
        /// Time as written.
        time: String,
        /// Cell length.
        duration: u32,
        /// Hint about half hours.
        half: &'static str,
    },
    /// A capacity out of range.
    #[error("capacity {value} at {day} {time} is out of range 0 to 10000")]
    Value {
        /// Day name.
        day: String,
        /// Time.
        time: String,
        /// The value.
        value: i64,
    },
}

/// A capacity statement exactly as the guide writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityStatement {
    /// Day (`sun`…`sat`) → cell start `HH:MM` → capacity.
    pub days: BTreeMap<String, BTreeMap<String, i64>>,
    /// Cell length in minutes: 60 or 30.
    pub duration: u32,
}

/// A validated weekly grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityGrid {
    duration: u32,
    /// `[day from Sunday][cell]`; 48 cells for half hours, 24 for hours.
    cells: Vec<[u32; 48]>,
}

impl CapacityGrid {
    /// Validates a statement; absent cells are 0.
    pub fn from_statement(s: &CapacityStatement) -> Result<Self, CapacityError> {
        if s.duration != 30 && s.duration != 60 {
            return Err(CapacityError::Duration(s.duration));
        }
        let mut cells = vec![[0u32; 48]; 7];
        for (day, times) in &s.days {
            let d = DAYS
                .iter()
                .position(|x| x.eq_ignore_ascii_case(day))
                .ok_or_else(|| CapacityError::Day(day.clone()))?;
            for (time, value) in times {
                let cell_err = || CapacityError::Cell {
                    day: day.clone(),
                    time: time.clone(),
                    duration: s.duration,
                    half: if s.duration == 30 { " or HH:30" } else { "" },
                };
                let (h, m) = time.split_once(':').ok_or_else(cell_err)?;
                let h: u32 = h.parse().map_err(|_| cell_err())?;
                let m: u32 = m.parse().map_err(|_| cell_err())?;
                if h > 23 || !(m == 0 || (m == 30 && s.duration == 30)) {
                    return Err(cell_err());
                }
                if !(0..=10_000).contains(value) {
                    return Err(CapacityError::Value {
                        day: day.clone(),
                        time: time.clone(),
                        value: *value,
                    });
                }
                cells[d][(h * 2 + m / 30) as usize] = *value as u32;
            }
        }
        let mut grid = CapacityGrid {
            duration: s.duration,
            cells,
        };
        if s.duration == 60 {
            grid.fill_half_hours_from_hours();
        }
        Ok(grid)
    }

    fn fill_half_hours_from_hours(&mut self) {
        for day in &mut self.cells {
            for h in 0..24 {
                day[h * 2 + 1] = day[h * 2];
            }
        }
    }

    /// Cell length in minutes.
    pub fn duration(&self) -> u32 {
        self.duration
    }

    /// Switches the cell length as the guide describes: half hours → hours drops the :30
    /// values; hours → half hours duplicates each hour's value at :30.
    pub fn with_duration(&self, duration: u32) -> Result<Self, CapacityError> {
        if duration != 30 && duration != 60 {
            return Err(CapacityError::Duration(duration));
        }
        let mut g = self.clone();
        g.duration = duration;
        g.fill_half_hours_from_hours();
        Ok(g)
    }

    /// The statement form, listing non-zero cells only.
    pub fn to_statement(&self) -> CapacityStatement {
        let mut days = BTreeMap::new();
        for (d, cells) in self.cells.iter().enumerate() {
            let mut times = BTreeMap::new();
            let step = if self.duration == 60 { 2 } else { 1 };
            for i in (0..48).step_by(step) {
                if cells[i] > 0 {
                    times.insert(format!("{:02}:{:02}", i / 2, (i % 2) * 30), cells[i] as i64);
                }
            }
            if !times.is_empty() {
                days.insert(DAYS[d].to_string(), times);
            }
        }
        CapacityStatement {
            days,
            duration: self.duration,
        }
    }

    /// Capacity per slot for a slot starting at `t`, read in the queue's time zone.
    pub fn capacity_at(&self, tz: Tz, t: DateTime<Utc>) -> u32 {
        let local = t.with_timezone(&tz);
        let day = local.weekday().num_days_from_sunday() as usize;
        let cell = (local.hour() * 2 + local.minute() / 30) as usize;
        self.cells[day][cell]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn statement(json: &str) -> CapacityStatement {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_guides_statement_parses_and_empty_cells_are_zero() {
        let s = statement(
            r#"{"days":{"sun":{"02:00":2},"mon":{"05:00":2},"tue":{"07:00":3,"06:00":4},"wed":{"08:00":5},"thu":{"11:00":6},"fri":{"10:00":6},"sat":{"19:00":6}},"duration":60}"#,
        );
        let g = CapacityGrid::from_statement(&s).unwrap();
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // Tuesday 3 March 2026 07:15 Paris = 06:15 UTC: the 07:00 hour cell → 3.
        assert_eq!(
            g.capacity_at(paris, Utc.with_ymd_and_hms(2026, 3, 3, 6, 15, 0).unwrap()),
            3
        );
        assert_eq!(
            g.capacity_at(paris, Utc.with_ymd_and_hms(2026, 3, 3, 6, 45, 0).unwrap()),
            3
        );
        assert_eq!(
            g.capacity_at(paris, Utc.with_ymd_and_hms(2026, 3, 3, 5, 30, 0).unwrap()),
            4
        );
        assert_eq!(
            g.capacity_at(paris, Utc.with_ymd_and_hms(2026, 3, 3, 9, 0, 0).unwrap()),
            0
        );
        assert_eq!(g.to_statement(), s);
    }

    #[test]
    fn switching_slot_length_follows_the_guide() {
        let half = CapacityGrid::from_statement(&statement(
            r#"{"days":{"mon":{"09:00":8,"09:30":10,"10:00":8,"10:30":10}},"duration":30}"#,
        ))
        .unwrap();
        let hourly = half.with_duration(60).unwrap();
        assert_eq!(
            hourly.to_statement(),
            statement(r#"{"days":{"mon":{"09:00":8,"10:00":8}},"duration":60}"#)
        );
        let back = hourly.with_duration(30).unwrap();
        assert_eq!(
            back.to_statement(),
            statement(
                r#"{"days":{"mon":{"09:00":8,"09:30":8,"10:00":8,"10:30":8}},"duration":30}"#
            )
        );
    }

    #[test]
    fn bad_statements_say_what_is_wrong() {
        let err = |j: &str| CapacityGrid::from_statement(&statement(j)).unwrap_err();
        assert_eq!(
            err(r#"{"days":{},"duration":15}"#),
            CapacityError::Duration(15)
        );
        assert_eq!(
            err(r#"{"days":{"funday":{}},"duration":60}"#),
            CapacityError::Day("funday".into())
        );
        assert!(matches!(
            err(r#"{"days":{"mon":{"09:30":1}},"duration":60}"#),
            CapacityError::Cell { .. }
        ));
        assert!(matches!(
            err(r#"{"days":{"mon":{"24:00":1}},"duration":60}"#),
            CapacityError::Cell { .. }
        ));
        assert!(matches!(
            err(r#"{"days":{"mon":{"09:00":-1}},"duration":60}"#),
            CapacityError::Value { .. }
        ));
        assert!(
            serde_json::from_str::<CapacityStatement>(r#"{"days":{},"duration":60,"x":1}"#)
                .is_err()
        );
    }
}

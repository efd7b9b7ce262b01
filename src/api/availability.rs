//! `GET /callbacks/availability/{service}` as GES v3: the free slots between `start` (ISO,
//! UTC or, with `timezone`, local; or `startMS`) and `end` / `endMS` / `numberOfDays` (one of
//! them; default the day of start), with `localTime` in `timezone`.

use axum::extract::{Path, State};
use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState, Q, Reply, known_queue, ok, service_error};

/// Longest range asked at once, in days.
pub const MAX_DAYS: i64 = 90;

/// Availability query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AvailabilityQuery {
    /// First instant: ISO 8601 with offset (`…SSSZ`), or local without offset when `timezone`
    /// is given (UTC otherwise); default now.
    #[serde(default)]
    pub start: Option<String>,
    /// First instant in epoch milliseconds (instead of `start`).
    #[serde(default, rename = "startMS")]
    pub start_ms: Option<i64>,
    /// Last instant, same forms as `start` (only one of `end`, `endMS`, `numberOfDays`).
    #[serde(default)]
    pub end: Option<String>,
    /// Last instant in epoch milliseconds.
    #[serde(default, rename = "endMS")]
    pub end_ms: Option<i64>,
    /// Days to cover from the day of start (1–90); default: the day of start.
    #[serde(default)]
    pub number_of_days: Option<u32>,
    /// IANA zone for local `start`/`end` and for `localTime`; default the queue's zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// At most this many slots.
    #[serde(default)]
    pub max_time_slots: Option<usize>,
    /// Also list full slots.
    #[serde(default)]
    pub report_busy: bool,
}

/// Whether `t` falls in ISO 8601's four-digit years: further out, local times and day
/// arithmetic overflow the date library (which panics).
fn in_iso_years(t: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    (0..=9999).contains(&t.year())
}

/// `t`, or a 400 naming `field` when it lies outside the years 0000 to 9999.
fn within_years(field: &str, shown: &str, t: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    if in_iso_years(t) {
        Ok(t)
    } else {
        Err(ApiError::bad_request(format!(
            "{field}: `{shown}` is outside the years 0000 to 9999"
        )))
    }
}

/// An ISO instant: with an offset as given, without one in `tz` (also open-for's `start`).
pub(crate) fn instant(field: &str, text: &str, tz: Tz) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return within_years(field, text, t.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{field}: `{text}` is not an ISO 8601 date-time (e.g. 2026-03-02T09:00:00.000Z)"
            ))
        })?;
    // Checked before the zone is applied, which overflows at the far end of the range.
    if !(0..=9999).contains(&chrono::Datelike::year(&local)) {
        return Err(ApiError::bad_request(format!(
            "{field}: `{text}` is outside the years 0000 to 9999"
        )));
    }
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| ApiError::bad_request(format!("{field}: `{text}` does not exist in {tz}")))
}

fn from_ms(field: &str, ms: i64) -> Result<DateTime<Utc>, ApiError> {
    let t = DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| ApiError::bad_request(format!("{field}: {ms} is out of range")))?;
    within_years(field, &ms.to_string(), t)
}

#[utoipa::path(get, path = "/callbacks/availability/{service}", tag = "callbacks",
    params(("service" = String, Path, description = "callback virtual queue"), AvailabilityQuery),
    responses((status = 200, description = "free slots"), (status = 400)))]
pub(crate) async fn availability_route(
    State(s): State<ApiState>,
    Path(service): Path<String>,
    Q(q): Q<AvailabilityQuery>,
) -> Reply {
    let queue = known_queue(&s, &service, "serviceName")?;
    let hours = s.config.queue_hours(queue);
    let tz: Tz = match &q.timezone {
        Some(name) => name.parse().map_err(|_| {
            ApiError::bad_request(format!("timezone: `{name}` is not an IANA time zone"))
        })?,
        None => hours.tz,
    };
    // Local forms without `timezone` are UTC, as GES reads them.
    let read_tz = if q.timezone.is_some() { tz } else { Tz::UTC };
    let start = match (&q.start, q.start_ms) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "startMS: give either start or startMS, not both",
            ));
        }
        (Some(t), None) => instant("start", t, read_tz)?,
        (None, Some(ms)) => from_ms("startMS", ms)?,
        (None, None) => s.clock.now(),
    };
    let given = [
        q.end.is_some(),
        q.end_ms.is_some(),
        q.number_of_days.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(ApiError::bad_request(
            "end: set only one of end, endMS and numberOfDays",
        ));
    }
    let first_day = start.with_timezone(&hours.tz).date_naive();
    // The last instant listed (None: to the end of the last day).
    let (last_day, end) = match (&q.end, q.end_ms, q.number_of_days) {
        (Some(t), _, _) => {
            let e = instant("end", t, read_tz)?;
            (e.with_timezone(&hours.tz).date_naive(), Some(e))
        }
        (_, Some(ms), _) => {
            let e = from_ms("endMS", ms)?;
            (e.with_timezone(&hours.tz).date_naive(), Some(e))
        }
        (_, _, Some(days)) => {
            if !(1..=MAX_DAYS as u32).contains(&days) {
                return Err(ApiError::bad_request("numberOfDays: must be 1 to 90"));
            }
            (first_day + TimeDelta::days(days as i64 - 1), None)
        }
        _ => (first_day, None),
    };
    if let Some(e) = end
        && e < start
    {
        return Err(ApiError::bad_request("end: must not be before start"));
    }
    if (last_day - first_day).num_days() >= MAX_DAYS {
        return Err(ApiError::bad_request(
            "end: the range may cover at most 90 days",
        ));
    }
    let slots = s
        .callbacks
        .availability(&service, first_day, last_day)
        .map_err(service_error)?;
    // `end` equal to `start` (the default) means the whole day of start.
    let end = end.filter(|e| *e > start);
    let list: Vec<Value> = slots
        .iter()
        .filter(|sl| sl.start >= start && end.is_none_or(|e| sl.start <= e))
        .filter(|sl| q.report_busy || sl.available() > 0)
        .take(q.max_time_slots.unwrap_or(usize::MAX))
        .map(|sl| {
            json!({
                "utcTime": sl.start,
                "localTime": sl.start.with_timezone(&tz).naive_local(),
                "capacity": sl.available(),
                "total": sl.capacity,
            })
        })
        .collect();
    Ok(ok(
        json!({ "slots": list, "durationMin": queue.slot_duration_minutes, "timezone": tz.name() }),
    ))
}

//! The one check of a callback's desired time, shared by every path that sets one (create,
//! reschedule, recreate; API, IVR and administration).

use chrono::{DateTime, TimeDelta, Utc};

use super::service::ServiceError;
use crate::config::QueueSpec;

/// A desired time this little in the past is taken as now (clocks of client and engine differ).
pub const DESIRED_TIME_GRACE: TimeDelta = TimeDelta::seconds(60);

/// Checks `at` for `queue` at `now`: `None` = now (immediate), else the future time; refused
/// when more than [`DESIRED_TIME_GRACE`] in the past or beyond the queue's `max_days_ahead`.
pub fn check_desired_time(
    queue: &QueueSpec,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ServiceError> {
    if at < now - DESIRED_TIME_GRACE {
        return Err(ServiceError::InPast(at));
    }
    if at > now + TimeDelta::days(queue.max_days_ahead) {
        return Err(ServiceError::TooFarAhead {
            at,
            max_days: queue.max_days_ahead,
        });
    }
    Ok((at > now).then_some(at))
}

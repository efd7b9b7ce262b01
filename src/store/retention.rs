//! The retention sweep: completed callback records are kept `store.retention_days` after their
//! desired time (14, as GES), then removed, by a task that wakes every
//! `store.retention_sweep_minutes` on the engine's clock.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::Store;
use crate::clock::SharedClock;
use crate::config::StoreSettings;

/// The retain-until instant (desired time + the record's own `RETENTION`) before which a
/// COMPLETED record has expired at `now` under `retention`:
/// desired + retention < now  ⇔  desired + RETENTION < now - retention + RETENTION.
pub(crate) fn expiry_cutoff(now: DateTime<Utc>, retention: TimeDelta) -> DateTime<Utc> {
    now - retention + crate::callback::model::RETENTION
}

/// Runs the sweep forever: sleeps one interval on `clock`, removes what has expired, logs it.
/// A failed sweep is logged and the next one tries again.
pub async fn retention_loop(store: Arc<dyn Store>, clock: SharedClock, settings: StoreSettings) {
    let retention = TimeDelta::days(settings.retention_days.max(1));
    let every = TimeDelta::minutes(settings.retention_sweep_minutes.max(1));
    loop {
        clock.sleep(every).await;
        match store.remove_expired(clock.now(), retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "callback records past their retention removed"),
            Err(e) => tracing::warn!(error = %e, "retention sweep failed; retried at the next one"),
        }
    }
}

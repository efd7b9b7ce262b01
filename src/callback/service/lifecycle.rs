//! Changes asked for by people and apps: cancel, reschedule, recreate and bulk cancel.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{BulkCancel, CallbackService, ServiceError, check_desired_time};
use crate::callback::model::{CallbackRecord, CallbackState, CallbackType, LifecycleError};

impl CallbackService {
    /// Cancels a callback (not while PROCESSING).
    pub async fn cancel(
        &self,
        id: Uuid,
        by: &str,
        admin: bool,
    ) -> Result<CallbackRecord, ServiceError> {
        self.cancel_with(id, by, admin, false).await
    }

    /// Cancels as an administrator, except a PROCESSING callback (bulk cancel, as the guide).
    pub async fn cancel_unless_processing(
        &self,
        id: Uuid,
        by: &str,
    ) -> Result<CallbackRecord, ServiceError> {
        self.cancel_with(id, by, true, true).await
    }

    /// The one cancel: by `admin` or not, and refused while PROCESSING when
    /// `spare_processing` (before the record's own lifecycle rules are asked).
    async fn cancel_with(
        &self,
        id: Uuid,
        by: &str,
        admin: bool,
        spare_processing: bool,
    ) -> Result<CallbackRecord, ServiceError> {
        let now = self.clock.now();
        self.change(id, |r| {
            if spare_processing && r.state == CallbackState::Processing {
                return Err(LifecycleError::Processing.into());
            }
            r.cancel(now, by, admin)?;
            Ok(None)
        })
        .await
        .map(|(r, _)| r)
    }

    /// Reschedules a SCHEDULED callback; returns the new record.
    pub async fn reschedule(
        &self,
        id: Uuid,
        to: DateTime<Utc>,
        by: &str,
    ) -> Result<CallbackRecord, ServiceError> {
        let now = self.clock.now();
        let queue = self.get(id).await?.queue;
        // Rescheduling sets a later time: "now" (within the grace) is refused as in the past.
        let to =
            check_desired_time(&self.queue(&queue)?, to, now)?.ok_or(ServiceError::InPast(to))?;
        let (_, next) = self
            .change(id, |r| Ok(Some(r.reschedule(to, now, by)?)))
            .await?;
        next.ok_or(ServiceError::NotFound(id))
    }

    /// Recreates a COMPLETED callback as a new one (immediate when `at` is `None`).
    pub async fn recreate(
        &self,
        id: Uuid,
        at: Option<DateTime<Utc>>,
        by: &str,
    ) -> Result<CallbackRecord, ServiceError> {
        let now = self.clock.now();
        let old = self.get(id).await?;
        let at = match at {
            Some(t) => check_desired_time(&self.queue(&old.queue)?, t, now)?,
            None => None,
        };
        let mut rec = old.recreate(at, now, by)?;
        rec.phone = self.check_number(&rec.queue, &rec.phone)?;
        self.store.save_callbacks(vec![rec.clone()]).await?;
        if rec.kind == CallbackType::Scheduled {
            self.slots.force_book(&rec.queue, self.slot_of(&rec));
        }
        self.keep(&rec);
        Ok(rec)
    }

    /// Cancels every unfinished callback of a queue whose desired time is in `[from, to)`,
    /// skipping PROCESSING ones; says what was and was not cancelled.
    pub async fn cancel_range(
        &self,
        queue: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        by: &str,
    ) -> Result<BulkCancel, ServiceError> {
        let ids: Vec<Uuid> = self
            .records
            .iter()
            .filter(|r| r.queue == queue && r.desired_time >= from && r.desired_time < to)
            .map(|r| r.id)
            .collect();
        let mut out = BulkCancel::default();
        for id in ids {
            match self.cancel_unless_processing(id, by).await {
                Ok(_) => out.cancelled.push(id),
                Err(e) => out.skipped.push((id, e.to_string())),
            }
        }
        Ok(out)
    }
}

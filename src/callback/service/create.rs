//! Creating a callback: the queue's rules and flags, the slot, the record saved before it is
//! acknowledged, and the availability of slots it is checked against.

use chrono::{NaiveDate, TimeDelta};

use super::{CallbackService, CreateRequest, ServiceError, check_desired_time};
use crate::callback::availability::{self, Slot};
use crate::callback::model::{CallbackRecord, Origin};
use crate::push::PushTarget;
use crate::store::SlotHold;

impl CallbackService {
    /// Slots of a queue between two local dates, with capacity and bookings.
    pub fn availability(
        &self,
        queue: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Slot>, ServiceError> {
        let q = self.queue(queue)?;
        let hours = self.config().queue_hours(&q);
        let cap = self.capacity_at(&q);
        Ok(availability::slots(
            &q,
            &hours,
            from,
            to,
            self.clock.now(),
            &cap,
            &self.slots,
        ))
    }

    /// Creates a callback; returns it once durable.
    pub async fn create(&self, req: CreateRequest) -> Result<CallbackRecord, ServiceError> {
        self.create_with(req, Default::default(), Vec::new()).await
    }

    /// [`Self::create`] with the GES create fields kept on the record (API bookings; the offer
    /// type defaults as GES does, `SCHEDULED` with a desired time, else `ASAP`) and the push
    /// targets its events go to (the API's `pushTargets`).
    pub async fn create_with(
        &self,
        req: CreateRequest,
        ges: crate::callback::ges::GesAttributes,
        targets: Vec<PushTarget>,
    ) -> Result<CallbackRecord, ServiceError> {
        let now = self.clock.now();
        let q = self.queue(&req.callback.queue)?;
        let mut new = req.callback;
        new.phone = self.check_number(&q.name, &new.phone)?;
        if new.direction != q.call_direction {
            new.direction = q.call_direction;
        }
        // The Immediate/Scheduled Enabled flags govern IVR offers; as in GES, API and UI
        // bookings are taken regardless, unless the app asks for the checks
        // (`alwaysCheckCapacity`).
        let check_flags = match new.origin {
            Origin::Ivr => true,
            Origin::Api => req.check_slot,
            Origin::Admin => false,
        };
        let mut slot = None;
        let mut shared_slot = None;
        if let Some(mut t) = new.desired_time {
            if new.origin == Origin::Ivr {
                // The IVR offers slots; the current one may have started already.
                t = t.max(now);
            }
            new.desired_time = check_desired_time(&q, t, now)?;
        }
        match new.desired_time {
            None => {
                if check_flags && !q.immediate_enabled {
                    return Err(ServiceError::Disabled {
                        queue: q.name.clone(),
                        kind: "immediate",
                    });
                }
                new.desired_time = None;
            }
            Some(t) => {
                if check_flags && !q.scheduled_enabled {
                    return Err(ServiceError::Disabled {
                        queue: q.name.clone(),
                        kind: "scheduled",
                    });
                }
                let hours = self.config().queue_hours(&q);
                let start = availability::slot_start(&hours, q.slot_duration_minutes as u32, t);
                if req.check_slot && self.leases.get().is_some() {
                    // In a cluster the slot is counted in the shared store, where the save
                    // that books it is made (`Store::save_callback_in_slot`).
                    if !hours.is_open(start) {
                        return Err(ServiceError::SlotUnavailable(t));
                    }
                    shared_slot = Some(SlotHold {
                        queue: q.name.clone(),
                        slot: start..start + TimeDelta::minutes(q.slot_duration_minutes.max(1)),
                        capacity: self.capacity_at(&q)(start),
                    });
                } else if req.check_slot {
                    let capacity = self.capacity_at(&q)(start);
                    if !hours.is_open(start) || !self.slots.try_book(&q.name, start, capacity) {
                        return Err(ServiceError::SlotUnavailable(t));
                    }
                } else {
                    self.slots.force_book(&q.name, start);
                }
                slot = shared_slot.is_none().then_some(start);
            }
        }
        let mut rec = match CallbackRecord::create(new, now) {
            Ok(r) => r,
            Err(e) => {
                if let Some(s) = slot {
                    self.slots.release(&q.name, s);
                }
                return Err(e.into());
            }
        };
        rec.priority = rec.priority.max(q.priority);
        let scheduled = rec.kind == crate::callback::CallbackType::Scheduled;
        rec.ges = crate::callback::ges::GesAttributes {
            cb_offer_type: Some(ges.offer_type_or_default(scheduled)),
            ..ges
        };
        rec.push.targets = targets;
        rec.metrics.ewt_at_offer_seconds = req.ewt_at_offer_seconds;
        rec.metrics.position_at_offer = req.position_at_offer;
        let saved = match &shared_slot {
            Some(hold) => match self.store.save_callback_in_slot(rec.clone(), hold).await {
                Ok(true) => Ok(()),
                Ok(false) => return Err(ServiceError::SlotUnavailable(rec.desired_time)),
                Err(e) => Err(e),
            },
            None => self.store.save_callbacks(vec![rec.clone()]).await,
        };
        if let Err(e) = saved {
            if let Some(s) = slot {
                self.slots.release(&q.name, s);
            }
            return Err(e.into());
        }
        if let Some(hold) = &shared_slot {
            // This node's own count, for the slots it lists.
            self.slots.force_book(&q.name, hold.slot.start);
        }
        self.keep(&rec);
        Ok(rec)
    }
}

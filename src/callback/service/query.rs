//! Read-only views of the live callbacks: counts by state, held retries, watermark.

use uuid::Uuid;

use super::CallbackService;
use crate::callback::model::{CallbackRecord, CallbackState};

impl CallbackService {
    /// True while the callback exists and has not completed (a call-in request tied to it may
    /// still match).
    pub fn is_alive(&self, id: Uuid) -> bool {
        self.records
            .get(&id)
            .is_some_and(|r| !r.state.is_completed())
    }

    /// QUEUED callbacks of `queue` held out of the waiting line until their retry time (they
    /// keep their place and come back ahead of later arrivals): GES's "calls on hold".
    pub fn held_for_retry(&self, queue: &str) -> usize {
        self.records
            .iter()
            .filter(|r| {
                r.queue == queue && r.state == CallbackState::Queued && r.next_attempt_at.is_some()
            })
            .count()
    }

    /// Unfinished callbacks by state name (`SCHEDULED`, `QUEUED`, …) for `queue`.
    pub fn count_by_state(&self, queue: &str) -> std::collections::BTreeMap<&'static str, usize> {
        let mut out = std::collections::BTreeMap::new();
        for r in self.records.iter().filter(|r| r.queue == queue) {
            *out.entry(r.state.name()).or_default() += 1;
        }
        out
    }

    /// Unfinished callbacks (in memory), for reports and the router.
    pub fn active(&self) -> Vec<CallbackRecord> {
        let mut v: Vec<_> = self.records.iter().map(|r| r.clone()).collect();
        v.sort_by_key(|r| (r.queue_time, r.created_at));
        v
    }

    /// Callbacks of `queue` waiting (QUEUED) or executing (ROUTING, PROCESSING): what the
    /// Callback VQ Watermark block compares with its limit.
    pub fn watermark(&self, queue: &str) -> usize {
        self.records
            .iter()
            .filter(|r| {
                r.queue == queue
                    && matches!(
                        r.state,
                        CallbackState::Queued | CallbackState::Routing | CallbackState::Processing
                    )
            })
            .count()
    }
}

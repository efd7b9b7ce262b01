//! Read-only views of the live callbacks: counts by state, held retries, watermark. In a
//! cluster a node holds only what it claimed, so the counts come from the shared store
//! (`cluster::counts`, re-read every second) instead of its memory.

use std::collections::BTreeMap;
use std::sync::Arc;

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

    /// Counts callbacks from the shared store from now on (a node of a cluster).
    pub fn set_shared_counts(&self, counts: Arc<crate::cluster::counts::SharedCounts>) {
        let _ = self.shared_counts.set(counts);
    }

    /// QUEUED callbacks of `queue` held out of the waiting line until their retry time (they
    /// keep their place and come back ahead of later arrivals): GES's "calls on hold".
    pub fn held_for_retry(&self, queue: &str) -> usize {
        if let Some(shared) = self.shared_counts.get() {
            return shared.held_for_retry(queue);
        }
        self.records
            .iter()
            .filter(|r| {
                r.queue == queue && r.state == CallbackState::Queued && r.next_attempt_at.is_some()
            })
            .count()
    }

    /// Unfinished callbacks by state name (`SCHEDULED`, `QUEUED`, …) for `queue`.
    pub fn count_by_state(&self, queue: &str) -> BTreeMap<&'static str, usize> {
        if let Some(shared) = self.shared_counts.get() {
            return shared.by_state(queue);
        }
        let mut out = BTreeMap::new();
        for r in self.records.iter().filter(|r| r.queue == queue) {
            *out.entry(r.state.name()).or_default() += 1;
        }
        out
    }

    /// Unfinished callbacks of every queue by state name (the queues pages).
    pub fn count_by_queue(&self) -> BTreeMap<String, BTreeMap<&'static str, usize>> {
        if let Some(shared) = self.shared_counts.get() {
            return shared.all();
        }
        let mut out: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
        for r in self.records.iter() {
            *out.entry(r.queue.clone())
                .or_default()
                .entry(r.state.name())
                .or_default() += 1;
        }
        out
    }

    /// QUEUED callbacks of `queue` that wait in another node's care or in none (the cluster's
    /// share of a queue that this node's router does not hold); 0 for one node.
    pub fn queued_elsewhere(&self, queue: &str) -> usize {
        let Some(shared) = self.shared_counts.get() else {
            return 0;
        };
        let here = self
            .records
            .iter()
            .filter(|r| r.queue == queue && r.state == CallbackState::Queued)
            .count();
        let all = shared.by_state(queue).get("QUEUED").copied().unwrap_or(0);
        all.saturating_sub(here)
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
        if let Some(shared) = self.shared_counts.get() {
            let by = shared.by_state(queue);
            return ["QUEUED", "ROUTING", "PROCESSING"]
                .iter()
                .filter_map(|s| by.get(s))
                .sum();
        }
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

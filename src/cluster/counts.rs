//! The callbacks of the whole cluster counted by queue and state, for what every node reports
//! alike: queue status, the queues pages, the statistics and the Callback VQ Watermark block.
//! One node holds only the callbacks it claimed, so it cannot count them itself; the shared
//! store answers with one grouped count, re-read every second by a background task, so a
//! request never waits for the database and the load does not grow with the requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::clock::SharedClock;
use crate::store::Store;

/// How often the counts are re-read.
const REFRESH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// The unfinished states, as the counts name them.
const STATES: [&str; 4] = ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING"];

/// One queue's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct QueueCounts {
    by_state: BTreeMap<&'static str, usize>,
    held_for_retry: usize,
}

/// The last counts read from the shared store, by queue.
#[derive(Debug, Default)]
pub struct SharedCounts {
    queues: RwLock<HashMap<String, QueueCounts>>,
}

impl SharedCounts {
    /// Unfinished callbacks of `queue` by state name.
    pub fn by_state(&self, queue: &str) -> BTreeMap<&'static str, usize> {
        self.queues
            .read()
            .get(queue)
            .map(|q| q.by_state.clone())
            .unwrap_or_default()
    }

    /// Every queue's unfinished callbacks by state name.
    pub fn all(&self) -> BTreeMap<String, BTreeMap<&'static str, usize>> {
        self.queues
            .read()
            .iter()
            .map(|(q, c)| (q.clone(), c.by_state.clone()))
            .collect()
    }

    /// QUEUED callbacks of `queue` waiting for their retry time.
    pub fn held_for_retry(&self, queue: &str) -> usize {
        self.queues
            .read()
            .get(queue)
            .map(|q| q.held_for_retry)
            .unwrap_or(0)
    }

    /// Re-reads the counts; on a failure the last ones stay.
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), crate::store::StoreError> {
        let rows = store.count_active().await?;
        let mut queues: HashMap<String, QueueCounts> = HashMap::new();
        for r in rows {
            let Some(state) = STATES.iter().find(|s| **s == r.state) else {
                continue;
            };
            let q = queues.entry(r.queue).or_default();
            *q.by_state.entry(state).or_default() += r.count;
            q.held_for_retry += r.held_for_retry;
        }
        *self.queues.write() = queues;
        Ok(())
    }
}

/// Re-reads `counts` from `store` every second on `clock`, for ever.
pub async fn refresh_loop(counts: Arc<SharedCounts>, store: Arc<dyn Store>, clock: SharedClock) {
    let mut failing = false;
    loop {
        match counts.refresh(&*store).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cluster callback counts not refreshed");
            }
            Err(_) => {}
        }
        clock.sleep(REFRESH_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::service::{CallbackService, api_callback};
    use crate::config::Config;
    use crate::push::MemoryNotifier;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_node_counts_and_watermarks_the_callbacks_of_the_shared_store() {
        let config = Arc::new(
            Config::from_str_in("queues:\n  - name: S_VQ_CB\n", std::path::Path::new("/")).unwrap(),
        );
        let clock = crate::clock::SystemClock::shared();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        // Another node booked two callbacks: they are in the store, not in this node's memory.
        let other = CallbackService::new(
            config.clone(),
            clock.clone(),
            store.clone(),
            Arc::new(MemoryNotifier::new()),
        );
        for phone in ["+33612345678", "+33612345679"] {
            other
                .create(api_callback("S_VQ_CB", phone, None).into())
                .await
                .unwrap();
        }
        let here = CallbackService::new(
            config,
            clock,
            store.clone(),
            Arc::new(MemoryNotifier::new()),
        );
        assert_eq!(
            here.watermark("S_VQ_CB"),
            0,
            "alone, a node counts its memory"
        );
        let counts = Arc::new(SharedCounts::default());
        counts.refresh(&*store).await.unwrap();
        here.set_shared_counts(counts);
        assert_eq!(here.watermark("S_VQ_CB"), 2);
        assert_eq!(here.count_by_state("S_VQ_CB").get("QUEUED"), Some(&2));
        assert_eq!(here.queued_elsewhere("S_VQ_CB"), 2);
        assert_eq!(here.count_by_queue()["S_VQ_CB"]["QUEUED"], 2);
    }
}

//! Store latency at `/metrics`: [`MeteredStore`] wraps the engine's store and times every
//! call by operation (`save_callbacks`, `documents`, …) into one histogram family, so the
//! store itself is unchanged. Durations are taken on the runtime's monotonic timer, as the
//! other operational timings: the injected business clock (frozen in tests) does not drive them.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use uuid::Uuid;

use crate::callback::CallbackRecord;
use crate::push::{OutboxEntry, OutboxState};
use crate::store::{CallbackFilter, Document, PageCursor, Store, StoreError};

/// Label of the operation.
type Op = [(&'static str, &'static str); 1];

fn new_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

/// Store call latencies by operation.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    latency: Family<Op, Histogram, fn() -> Histogram>,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            latency: Family::new_with_constructor(new_histogram),
        }
    }
}

impl StoreMetrics {
    /// Adds the histogram to an engine's registry.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "store_latency_seconds",
            "Store calls (SQLite, writes once durable), by operation",
            self.latency.clone(),
        );
    }

    async fn time<T>(&self, op: &'static str, fut: impl Future<Output = T>) -> T {
        let started = crate::clock::tokio_now();
        let out = fut.await;
        self.latency
            .get_or_create(&[("op", op)])
            .observe(started.elapsed().as_secs_f64());
        out
    }
}

/// A store that times every call of the one it wraps.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: StoreMetrics,
}

impl MeteredStore {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: StoreMetrics) -> Self {
        MeteredStore { inner, metrics }
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn save_callbacks(&self, records: Vec<CallbackRecord>) -> Result<(), StoreError> {
        let f = self.inner.save_callbacks(records);
        self.metrics.time("save_callbacks", f).await
    }

    async fn callback(&self, id: Uuid) -> Result<Option<CallbackRecord>, StoreError> {
        self.metrics.time("callback", self.inner.callback(id)).await
    }

    async fn active_callbacks(&self) -> Result<Vec<CallbackRecord>, StoreError> {
        let f = self.inner.active_callbacks();
        self.metrics.time("active_callbacks", f).await
    }

    async fn query_callbacks(
        &self,
        filter: &CallbackFilter,
    ) -> Result<Vec<CallbackRecord>, StoreError> {
        let f = self.inner.query_callbacks(filter);
        self.metrics.time("query_callbacks", f).await
    }

    async fn query_callbacks_page(
        &self,
        filter: &CallbackFilter,
    ) -> Result<(Vec<CallbackRecord>, Option<PageCursor>), StoreError> {
        let f = self.inner.query_callbacks_page(filter);
        self.metrics.time("query_callbacks", f).await
    }

    async fn remove_completed_before(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let f = self.inner.remove_completed_before(cutoff);
        self.metrics.time("remove_expired", f).await
    }

    async fn save_documents(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        let f = self.inner.save_documents(docs);
        self.metrics.time("save_documents", f).await
    }

    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        let f = self.inner.delete_document(kind, id);
        self.metrics.time("delete_document", f).await
    }

    async fn documents(&self, kind: &str) -> Result<Vec<Document>, StoreError> {
        let f = self.inner.documents(kind);
        self.metrics.time("documents", f).await
    }

    async fn save_callbacks_with_outbox(
        &self,
        records: Vec<CallbackRecord>,
        entries: Vec<OutboxEntry>,
    ) -> Result<(), StoreError> {
        let f = self.inner.save_callbacks_with_outbox(records, entries);
        self.metrics.time("save_callbacks", f).await
    }

    async fn save_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError> {
        let f = self.inner.save_outbox(entries);
        self.metrics.time("save_outbox", f).await
    }

    async fn save_callback_in_slot(
        &self,
        record: CallbackRecord,
        hold: &crate::store::SlotHold,
    ) -> Result<bool, StoreError> {
        let f = self.inner.save_callback_in_slot(record, hold);
        self.metrics.time("save_callbacks", f).await
    }

    async fn count_active(&self) -> Result<Vec<crate::store::StateCount>, StoreError> {
        let f = self.inner.count_active();
        self.metrics.time("count_active", f).await
    }

    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let f = self.inner.outbox_due(now, limit);
        self.metrics.time("outbox_due", f).await
    }

    async fn outbox_next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let f = self.inner.outbox_next_due();
        self.metrics.time("outbox_due", f).await
    }

    async fn outbox_list(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let f = self.inner.outbox_list(state, limit);
        self.metrics.time("outbox_list", f).await
    }

    async fn outbox_pending(&self) -> Result<usize, StoreError> {
        let f = self.inner.outbox_pending();
        self.metrics.time("outbox_list", f).await
    }
}

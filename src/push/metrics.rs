//! Push figures at `/metrics`: the outbox's depth (events waiting for delivery) and the
//! delivery attempts by result.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label of a delivery attempt's result.
type Result = [(&'static str, &'static str); 1];

/// The outbox gauge and the delivery counter.
#[derive(Debug, Clone, Default)]
pub struct PushMetrics {
    /// Outbox entries waiting for delivery (pending).
    pub pending: Gauge,
    /// Delivery attempts by result: `delivered`, `retry`, `failed`.
    pub deliveries: Family<Result, Counter>,
}

impl PushMetrics {
    /// Adds them to an engine's registry.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "push_outbox_pending",
            "Push events in the durable outbox waiting for delivery",
            self.pending.clone(),
        );
        crate::ops::metrics::at_zero(
            &self.deliveries,
            "result",
            &["delivered", "retry", "failed"],
        );
        r.register(
            "push_deliveries",
            "Push delivery attempts, by result (delivered, retry, failed)",
            self.deliveries.clone(),
        );
    }

    /// Counts one attempt.
    pub fn count(&self, result: &'static str) {
        self.deliveries.get_or_create(&[("result", result)]).inc();
    }
}

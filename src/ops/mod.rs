//! Operations: liveness and readiness probes for load balancers and orchestrators, and the
//! graceful shutdown that drains live calls on SIGTERM / SIGINT (see [`shutdown`]).
//!
//! `/healthz` answers 200 while the process serves HTTP at all; `/readyz` answers 200 only once
//! the store is open, every listener is bound and the flows are loaded, and 503 from the
//! moment a shutdown starts, so a balancer stops sending new work before calls are cut. Both
//! are unauthenticated (probes carry no credentials) and say nothing a caller could abuse.

pub(crate) mod docs;
pub mod heap;
pub mod logging;
pub(crate) mod media_metrics;
pub(crate) mod metrics;
pub(crate) mod reload;
pub(crate) mod shutdown;
pub(crate) mod store_metrics;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

/// What the readiness probe checks; each part is set by the engine as it starts.
#[derive(Debug, Default)]
pub struct Health {
    store_open: AtomicBool,
    listeners_bound: AtomicBool,
    flows_loaded: AtomicBool,
    draining: AtomicBool,
    /// Why the database cannot be reached now (a cluster node's last heartbeat failed).
    database: parking_lot::Mutex<Option<String>>,
}

/// The readiness probe's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Readiness {
    /// True when every check passes and no shutdown is under way.
    pub ready: bool,
    /// A shutdown is draining calls: no new ones are taken.
    pub draining: bool,
    /// The store is open.
    pub store: bool,
    /// HTTP and SIP listeners are bound.
    pub listeners: bool,
    /// Flows and prompts are loaded.
    pub flows: bool,
    /// Why the store's database cannot be reached, while it cannot (then `store` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Health {
    /// A probe state with nothing ready yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Health::default())
    }

    /// The store was opened and read.
    pub fn set_store_open(&self) {
        self.store_open.store(true, Ordering::Release);
    }

    /// Every listener is bound.
    pub fn set_listeners_bound(&self) {
        self.listeners_bound.store(true, Ordering::Release);
    }

    /// Flows (and prompts) are loaded, or the engine runs without SIP and needs none.
    pub fn set_flows_loaded(&self) {
        self.flows_loaded.store(true, Ordering::Release);
    }

    /// The database answers again (`None`), or cannot be reached, and why.
    pub fn set_database(&self, unreachable: Option<String>) {
        *self.database.lock() = unreachable;
    }

    /// A shutdown started: not ready from now on.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// True once a shutdown started.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The current readiness.
    pub fn readiness(&self) -> Readiness {
        let reason = self.database.lock().clone();
        let store = self.store_open.load(Ordering::Acquire) && reason.is_none();
        let listeners = self.listeners_bound.load(Ordering::Acquire);
        let flows = self.flows_loaded.load(Ordering::Acquire);
        let draining = self.draining();
        Readiness {
            ready: store && listeners && flows && !draining,
            draining,
            store,
            listeners,
            flows,
            reason,
        }
    }
}

/// `GET /healthz` and `GET /readyz`, without authentication, to merge into the API router.
pub fn routes(health: Arc<Health>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "alive"})) }),
        )
        .route("/readyz", get(move || ready(health.clone())))
}

async fn ready(health: Arc<Health>) -> Response {
    let r = health.readiness();
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(r)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_every_check_and_not_draining() {
        let h = Health::new();
        assert!(!h.readiness().ready);
        h.set_store_open();
        h.set_listeners_bound();
        assert!(!h.readiness().ready);
        h.set_flows_loaded();
        assert!(h.readiness().ready);
        h.set_draining();
        let r = h.readiness();
        assert!(!r.ready && r.draining && r.store && r.listeners && r.flows);
    }
}

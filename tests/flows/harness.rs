//! The engine core on a manual clock with an in-memory dialer for agents, shared by the
//! flow scenarios (`shipped.rs`, `blocks.rs`): flows run on scripted in-memory calls.

use std::sync::Arc;

use boomerang::call::memory::{Answer, MemoryDialer};
use boomerang::clock::{ManualClock, SharedClock};
use boomerang::config::ConfigSpec;
use boomerang::engine::Core;
use boomerang::flow::FlowServices;
use boomerang::push::MemoryNotifier;
use boomerang::store::SqliteStore;
use chrono::{DateTime, Utc};

use crate::common;

/// The engine core and the services a flow runs with.
pub struct Harness {
    _dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub core: Core,
    pub agents: Arc<MemoryDialer>,
    pub services: FlowServices,
}

/// The demo configuration with `edit` applied, its clock at `at`.
pub async fn harness_with(edit: impl FnOnce(&mut ConfigSpec), at: DateTime<Utc>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config = Arc::new(common::demo_config(dir.path(), edit));
    let clock = Arc::new(ManualClock::new(at));
    let shared: SharedClock = clock.clone();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let core = Core::build(config, shared, store, Arc::new(MemoryNotifier::new()))
        .await
        .unwrap();
    // Agents answer and stay until the caller hangs up.
    let agents = Arc::new(MemoryDialer::new(Answer::Pick(vec![]), None));
    let services = core.flow_services(agents.clone());
    Harness {
        _dir: dir,
        clock,
        core,
        agents,
        services,
    }
}

/// The demo configuration on Monday 2 March 2026, 10:00 in Paris.
pub async fn harness() -> Harness {
    harness_with(|_| {}, common::monday_9am_utc()).await
}

//! Agents across the nodes of a cluster (ARCHITECTURE.md, "Several nodes on PostgreSQL"):
//! registrations visible cluster-wide (`view`), one arbiter per agent — its home node, the one
//! its phone registered with (`arbiter`) — and callers on one node served by agents homed on
//! another through that arbiter (`asker`); callbacks dialled for agents whose home may not dial
//! them (`deputy`); wake-ups through `LISTEN/NOTIFY` (`wake`).
//!
//! It runs when the store is PostgreSQL and `cluster.secret` is set; otherwise every node
//! keeps its agents to itself, as a single node does.

pub mod arbiter;
pub mod asker;
pub mod config_sync;
pub mod counts;
pub mod deputy;
pub mod listen;
pub mod view;
pub mod wake;

use std::net::SocketAddr;
use std::sync::Arc;

pub use arbiter::{Arbiter, Outcome};
pub use asker::{Asker, RemoteGrant};
pub use view::{Presence, View};

use crate::clock::SharedClock;
use crate::config::{Config, StoreKind};
use crate::routing::Dispatch;
use crate::store::{PostgresStore, StoreError};

/// This node's part in cross-node agent routing.
pub struct Node {
    /// The arbiter of the agents homed here.
    pub arbiter: Arc<Arbiter>,
    /// The cluster-wide view (`None` when this node keeps its agents to itself).
    pub view: Option<Arc<View>>,
}

/// The base URL other nodes reach this node at: `cluster.internal_url`, else the bound API
/// address (loopback when bound to all addresses).
pub fn internal_url(config: &Config, http: SocketAddr) -> String {
    let c = &config.spec.cluster;
    if !c.internal_url.is_empty() {
        return c.internal_url.trim_end_matches('/').to_string();
    }
    let mut addr = http;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

impl Node {
    /// Starts cross-node agent routing when the configuration asks for it (PostgreSQL store
    /// and a cluster secret): the view's listener, the publisher of this node's agents, and the
    /// asker set on `dispatch`. Otherwise only the arbiter, which refuses every request (401).
    pub async fn start(
        config: &Config,
        dispatch: &Arc<Dispatch>,
        clock: &SharedClock,
        http: SocketAddr,
        tasks: &crate::ops::shutdown::Tasks,
    ) -> Result<Node, StoreError> {
        let (st, c) = (&config.spec.store, &config.spec.cluster);
        let alone = || Node {
            arbiter: Arc::new(Arbiter::new(
                &c.node_id,
                "",
                dispatch.clone(),
                clock.clone(),
            )),
            view: None,
        };
        if st.kind != StoreKind::Postgres {
            return Ok(alone());
        }
        if c.secret.is_empty() {
            tracing::warn!(
                "cluster.secret is not set: this node's agents serve only its own callers"
            );
            return Ok(alone());
        }
        let store = PostgresStore::connect(&st.url, 2).await?;
        let url = internal_url(config, http);
        let view = Arc::new(View::default());
        if let Err(e) = view.reload(&store).await {
            tracing::warn!(error = %e, "agent view not read at start");
        }
        tasks.spawn(view::listen_loop(
            st.url.clone(),
            store.clone(),
            view.clone(),
        ));
        let arbiter = Arc::new(Arbiter::new(
            &c.node_id,
            &c.secret,
            dispatch.clone(),
            clock.clone(),
        ));
        let lease = std::time::Duration::from_secs(u64::from(c.lease_seconds));
        tasks.spawn(
            arbiter
                .clone()
                .watch_askers(store.cluster(&c.node_id, &c.region, lease), lease),
        );
        tasks.spawn(view::publish_loop(
            store,
            dispatch.router().clone(),
            clock.clone(),
            c.node_id.clone(),
            url.clone(),
        ));
        dispatch.set_remote(Arc::new(Asker::new(
            &c.node_id,
            &c.secret,
            view.clone(),
            clock.clone(),
        )));
        tracing::info!(node = %c.node_id, %url, "agents shared with the cluster");
        Ok(Node {
            arbiter,
            view: Some(view),
        })
    }
}

/// What every node of a cluster must see alike beyond agents: the callbacks counted by queue
/// and state from the shared store (re-read every second) and the configuration changed by
/// another node (followed through `boomerang_config`). Started only on PostgreSQL.
pub async fn share_counts_and_config(
    url: &str,
    store: &Arc<dyn crate::store::Store>,
    clock: &SharedClock,
    callbacks: &Arc<crate::callback::service::CallbackService>,
    books: (
        &Arc<crate::rules::RuleBook>,
        &Arc<crate::callin::book::GroupBook>,
    ),
    tasks: &crate::ops::shutdown::Tasks,
) {
    let counts = Arc::new(counts::SharedCounts::default());
    if let Err(e) = counts.refresh(&**store).await {
        tracing::warn!(error = %e, "cluster callback counts not read at start");
    }
    callbacks.set_shared_counts(counts.clone());
    tasks.spawn(counts::refresh_loop(counts, store.clone(), clock.clone()));
    tasks.spawn(config_sync::config_loop(
        url.to_string(),
        books.0.clone(),
        books.1.clone(),
    ));
}

//! The cluster-wide view of agents: where each agent's phone is registered (its home node) and
//! what it is doing, shared through PostgreSQL.
//!
//! Each node publishes its own agents: one `cluster_agent` document per agent (home node, its
//! internal URL, state, ready-since), written with a `NOTIFY boomerang_agents` in the same
//! statement whenever an agent's phone or state changes. Every node listens on that channel
//! and re-reads the documents on a hint; notifications can be lost (a listener reconnecting),
//! so a node also re-reads them all after its listener (re)connects and every few seconds.
//! The view is only a guide to whom to ask: the home node decides every claim.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::routing::{Router, StateKind};
use crate::store::{PostgresStore, StoreError};

/// Document kind of an agent's presence (id: the agent's id).
pub const PRESENCE_KIND: &str = "cluster_agent";
/// The channel presence changes are announced on (payload: the agent's id).
pub const CHANNEL: &str = "boomerang_agents";
/// How often a node looks for changes of its own agents to publish.
const PUBLISH_EVERY: chrono::TimeDelta = chrono::TimeDelta::milliseconds(100);
/// A full re-read of the view at least this often, whatever the notifications.
const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// One agent as its home node publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The agent's id.
    pub agent: String,
    /// The home node (where the phone registered).
    pub node: String,
    /// The home node's internal base URL.
    pub url: String,
    /// Whether the phone is registered there.
    pub registered: bool,
    /// The state (`ready`, `busy`, `not_ready`…).
    pub state: String,
    /// Since when it is Ready (the router's ordering key), `i64::MAX` when not Ready.
    pub ready_since: i64,
}

impl Presence {
    /// True when the agent may be asked for (registered and Ready).
    pub fn is_ready(&self) -> bool {
        self.registered && self.state == "ready"
    }
}

/// The cluster-wide view, by agent id.
#[derive(Default)]
pub struct View {
    agents: DashMap<String, Presence>,
    /// Woken on every refresh (waiting callers look again).
    pub changed: Notify,
}

impl View {
    /// The agent's presence as last read.
    pub fn get(&self, agent: &str) -> Option<Presence> {
        self.agents.get(agent).map(|p| p.clone())
    }

    /// Every agent Ready on another node than `me`, longest ready first.
    pub fn ready_elsewhere(&self, me: &str) -> Vec<Presence> {
        let mut out: Vec<Presence> = self
            .agents
            .iter()
            .filter(|p| p.node != me && p.is_ready())
            .map(|p| p.clone())
            .collect();
        out.sort_by_key(|p| p.ready_since);
        out
    }

    /// Replaces the view with what the store holds.
    pub async fn reload(&self, store: &PostgresStore) -> Result<usize, StoreError> {
        use crate::store::Store;
        let docs = store.documents(PRESENCE_KIND).await?;
        let mut seen = std::collections::HashSet::new();
        for d in docs {
            match serde_json::from_value::<Presence>(d.body) {
                Ok(p) => {
                    seen.insert(p.agent.clone());
                    self.agents.insert(p.agent.clone(), p);
                }
                Err(e) => tracing::warn!(agent = %d.id, error = %e, "unreadable agent presence"),
            }
        }
        self.agents.retain(|k, _| seen.contains(k));
        self.changed.notify_waiters();
        Ok(seen.len())
    }
}

/// Writes one agent's presence and announces it, in one statement. A node that is not the
/// agent's home any more (another node's registration is there) does not overwrite it with
/// an unregistered state.
pub async fn publish(store: &PostgresStore, p: &Presence) -> Result<(), StoreError> {
    let body = serde_json::to_string(p).map_err(|e| StoreError::NotStored(e.to_string()))?;
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "WITH up AS (
                 INSERT INTO documents (kind, id, body) VALUES ($1, $2, $3)
                 ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body
                 WHERE documents.body::jsonb->>'node' = $4 OR $5
                 RETURNING 1)
             SELECT pg_notify($6, $2) FROM up",
        )
        .await
        .map_err(crate::store::postgres::not_stored)?;
    store.count();
    client
        .query(
            &stmt,
            &[
                &PRESENCE_KIND,
                &p.agent,
                &body,
                &p.node,
                &p.registered,
                &CHANNEL,
            ],
        )
        .await
        .map_err(crate::store::postgres::not_stored)?;
    Ok(())
}

/// Publishes this node's agents whenever their phone or state changes (looked at every
/// 100 ms on the clock): the registered ones, and those that were registered here last time.
pub async fn publish_loop(
    store: PostgresStore,
    router: Arc<Router>,
    clock: SharedClock,
    node: String,
    url: String,
) {
    let mut last: std::collections::HashMap<String, Presence> = Default::default();
    loop {
        for (_, a) in router.agents().iter() {
            let registered = a.has_phone();
            if !registered && !last.contains_key(&a.id) {
                continue;
            }
            let state = a.state();
            let p = Presence {
                agent: a.id.clone(),
                node: node.clone(),
                url: url.clone(),
                registered,
                state: state.name().to_string(),
                ready_since: if state == StateKind::Ready {
                    a.ready_since_ns()
                } else {
                    i64::MAX
                },
            };
            if last.get(&a.id) == Some(&p) {
                continue;
            }
            match publish(&store, &p).await {
                Ok(()) if registered => {
                    last.insert(a.id.clone(), p);
                }
                Ok(()) => {
                    last.remove(&a.id);
                }
                Err(e) => tracing::warn!(agent = %a.id, error = %e, "agent presence not published"),
            }
        }
        clock.sleep(PUBLISH_EVERY).await;
    }
}

/// Keeps `view` up to date: LISTEN on [`CHANNEL`] on a connection of its own (reconnecting
/// with back-off, `listen::listen_loop`), a re-read after each hint, after each (re)connection
/// and every 5 s.
pub async fn listen_loop(url: String, store: PostgresStore, view: Arc<View>) {
    super::listen::listen_loop(url, CHANNEL, RESYNC_EVERY, |_| async {
        if let Err(e) = view.reload(&store).await {
            tracing::warn!(error = %e, "agent view not refreshed");
        }
    })
    .await
}

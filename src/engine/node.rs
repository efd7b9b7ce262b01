//! This engine as one node of a cluster on one PostgreSQL store (`store.kind: postgres`): its
//! heartbeat (every third of the lease, renewing every lease it holds), the claim of due
//! callbacks for the queues it has a ready agent for (ordered by region affinity), the fence it
//! puts on itself after half a lease without a heartbeat, and the reaper that resolves a dead
//! node's in-flight callbacks by the restart rule. See ARCHITECTURE.md, "Several nodes".

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;

use std::collections::{HashMap, HashSet};

use crate::callback::CallbackRecord;
use crate::callback::lease::{Leases, OwnedWrite};
use crate::callback::model::CallbackState;
use crate::callback::service::CallbackService;
use crate::clock::SharedClock;
use crate::cluster::deputy::{Deputy, NODES_FRESH_FOR};
use crate::cluster::listen::{self, Hint};
use crate::cluster::view::View;
use crate::cluster::wake;
use crate::config::{ClusterSettings, Config};
use crate::ops::Health;
use crate::routing::Dispatch;
use crate::rules::RuleBook;
use crate::store::postgres::{Cluster, NodeInfo};
use crate::store::{PostgresStore, StoreError};

/// How often a node looks whether its room to claim grew (no statement unless it did).
const LOOK_EVERY: TimeDelta = TimeDelta::milliseconds(250);
/// At most this many callbacks claimed by one statement.
const CLAIM_BATCH: usize = 16;
/// At most this many lapsed callbacks taken over per heartbeat.
const REAP_BATCH: usize = 256;

/// One node's membership of the cluster: its leases and its fence.
pub struct Node {
    cluster: Cluster,
    clock: SharedClock,
    lease: TimeDelta,
    fallback_delay: TimeDelta,
    region: String,
    /// When the last heartbeat succeeded (on the injected clock).
    last_beat: Mutex<Option<DateTime<Utc>>>,
}

/// How a node's region stands in a queue's region affinity rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    /// Claims the queue's callbacks as soon as they are due (no rule, or a preferred region).
    Now,
    /// Claims those due for longer than `cluster.fallback_delay_seconds` (a fallback region,
    /// or one the rule does not name), so preferred nodes go first.
    Later,
    /// Never claims them (an ignored region).
    Never,
}

/// Where `region` stands for a queue whose rule is `rule`.
pub fn affinity(
    rule: Option<&crate::rules::affinity::RegionAffinityRule>,
    region: &str,
) -> Affinity {
    match rule {
        None => Affinity::Now,
        Some(r) if r.preferred.iter().any(|p| p == region) => Affinity::Now,
        Some(r) if r.ignored.iter().any(|p| p == region) => Affinity::Never,
        Some(_) => Affinity::Later,
    }
}

impl Node {
    /// Joins the cluster: a first heartbeat, so the node starts unfenced. Fails when the
    /// database cannot be reached.
    pub async fn join(
        store: &PostgresStore,
        settings: &ClusterSettings,
        clock: SharedClock,
    ) -> Result<Arc<Node>, StoreError> {
        let lease = std::time::Duration::from_secs(settings.lease_seconds.max(1).into());
        let node = Node {
            cluster: store.cluster(&settings.node_id, &settings.region, lease),
            lease: TimeDelta::seconds(settings.lease_seconds.max(1).into()),
            fallback_delay: TimeDelta::seconds(settings.fallback_delay_seconds.into()),
            region: settings.region.clone(),
            last_beat: Mutex::new(None),
            clock,
        };
        node.cluster.heartbeat().await?;
        *node.last_beat.lock() = Some(node.clock.now());
        Ok(Arc::new(node))
    }

    /// True after half a lease without a successful heartbeat: the node neither claims nor
    /// starts a dial until its next heartbeat succeeds.
    pub fn fenced(&self) -> bool {
        match *self.last_beat.lock() {
            Some(t) => self.clock.now() - t > self.lease / 2,
            None => true,
        }
    }

    /// Resolves what this node still owns from a previous life under the same name (killed
    /// and restarted before a survivor took it over), by the restart rule, and releases it.
    pub async fn settle_own(&self, callbacks: &CallbackService) -> Result<usize, StoreError> {
        let own = self.cluster.owned().await?;
        let n = own.len();
        self.resolve_and_release(own, callbacks).await?;
        Ok(n)
    }

    /// Applies the restart rule to callbacks this node now owns and writes them released.
    async fn resolve_and_release(
        &self,
        records: Vec<CallbackRecord>,
        callbacks: &CallbackService,
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mut out = Vec::with_capacity(records.len());
        for mut r in records {
            let from = r.state.name();
            match callbacks.queue_spec(&r.queue).and_then(|q| {
                crate::callback::restart::resolve_in_flight(&mut r, &q, now).map_err(Into::into)
            }) {
                Ok(()) => {
                    tracing::warn!(callback = %r.id, from, to = ?r.state, "in-flight callback of a lapsed lease resolved")
                }
                Err(e) => {
                    tracing::error!(callback = %r.id, error = %e, "lapsed callback not resolved; released as it is")
                }
            }
            out.push(r);
        }
        self.cluster.save_owned(&out, true).await?;
        Ok(())
    }

    /// Every third of the lease: the heartbeat (renewing this node's leases), readiness from
    /// its outcome, and the takeover of lapsed callbacks of dead nodes.
    pub async fn heartbeat_loop(
        self: Arc<Self>,
        callbacks: Arc<CallbackService>,
        health: Arc<Health>,
    ) {
        let every = self.lease / 3;
        loop {
            self.clock.sleep(every).await;
            match self.cluster.heartbeat_holding(&callbacks.held_ids()).await {
                Ok(_) => {
                    *self.last_beat.lock() = Some(self.clock.now());
                    health.set_database(None);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cluster heartbeat failed");
                    health.set_database(Some(e.to_string()));
                    continue;
                }
            }
            match self.cluster.take_over_lapsed(REAP_BATCH).await {
                Ok(lapsed) => {
                    if let Err(e) = self.resolve_and_release(lapsed, &callbacks).await {
                        tracing::warn!(error = %e, "lapsed callbacks not resolved; retried at the next heartbeat");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot look for lapsed callbacks"),
            }
        }
    }

    /// Claims due callbacks for the queues this node has room for (fewer callbacks held than
    /// ready agents it dials for: its own, and remote ones it is the deputy of, see
    /// `cluster::deputy`), in the order region affinity gives, and hands them to the callback
    /// service (which queues them locally). A queue is looked at in the database when a
    /// notification says one of its callbacks became claimable (`cluster::wake`), when its
    /// room grew (an agent became ready here or elsewhere, a callback ended), after the
    /// listener (re)connects, and every `cluster.claim_poll_milliseconds` as the safety net.
    /// Nothing while fenced.
    pub async fn claim_loop(
        self: Arc<Self>,
        callbacks: Arc<CallbackService>,
        dispatch: Arc<Dispatch>,
        rules: Arc<RuleBook>,
        config: Arc<Config>,
        view: Option<Arc<View>>,
    ) {
        let settings = &config.spec.cluster;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let listener = async {
            if settings.callback_wakeups {
                let url = config.spec.store.url.clone();
                listen::listen_loop(url, wake::CALLBACKS, wake::RESYNC_EVERY, |hint| {
                    let _ = tx.send(hint);
                    std::future::ready(())
                })
                .await;
            }
            std::future::pending::<()>().await;
        };
        let mut deputy = view
            .clone()
            .map(|v| Deputy::new(self.cluster.node_id(), v, dispatch.clone(), rules.clone()));
        let claimer = async {
            let poll = TimeDelta::milliseconds(settings.claim_poll_milliseconds.max(10).into());
            let mut next_poll = self.clock.now();
            let mut last_room: HashMap<String, usize> = HashMap::new();
            let mut nodes: (Option<DateTime<Utc>>, Vec<NodeInfo>) = (None, Vec::new());
            loop {
                let mut woken = HashSet::new();
                let mut all = false;
                let changed = async {
                    match &view {
                        Some(v) => v.changed.notified().await,
                        None => std::future::pending().await,
                    }
                };
                let mut hear = |h: Option<Hint>| match h {
                    Some(Hint::Changed(queues)) => woken.extend(queues),
                    Some(Hint::Resync) => all = true,
                    None => {}
                };
                tokio::select! {
                    _ = self.clock.sleep(LOOK_EVERY) => {}
                    h = rx.recv() => hear(h),
                    _ = changed => {}
                }
                while let Ok(h) = rx.try_recv() {
                    hear(Some(h));
                }
                if self.fenced() {
                    continue;
                }
                let now = self.clock.now();
                if now >= next_poll {
                    all = true;
                    next_poll = now + poll;
                }
                // Remote agents count only through the list of live nodes and their regions.
                let remote = match deputy.as_mut() {
                    Some(d) => {
                        d.prune(&callbacks.held_ids());
                        d.trigger();
                        if d.look() {
                            if nodes.0.is_none_or(|t| now - t >= NODES_FRESH_FOR) {
                                match self.cluster.nodes().await {
                                    Ok(n) => nodes = (Some(now), n),
                                    Err(e) => tracing::warn!(error = %e, "cannot read the nodes"),
                                }
                            }
                            nodes.1.as_slice()
                        } else {
                            &[]
                        }
                    }
                    None => &[],
                };
                for q in &config.spec.queues {
                    let due_by = match affinity(rules.affinity_for(&q.name).as_ref(), &self.region)
                    {
                        Affinity::Now => now,
                        Affinity::Later => now - self.fallback_delay,
                        Affinity::Never => continue,
                    };
                    let for_remote = deputy.as_ref().map_or(0, |d| d.held(&q.name));
                    let ready = dispatch
                        .router()
                        .agent_counts(&q.name)
                        .map(|c| c.ready)
                        .unwrap_or(0);
                    let local_room =
                        ready.saturating_sub(callbacks.held(&q.name).saturating_sub(for_remote));
                    let remote_room = deputy.as_ref().map_or(0, |d| d.room(&q.name, remote));
                    let room = (local_room + remote_room).min(CLAIM_BATCH);
                    let grew = room > last_room.insert(q.name.clone(), room).unwrap_or(0);
                    if room == 0 || !(all || grew || woken.contains(&q.name)) {
                        continue;
                    }
                    match self
                        .cluster
                        .claim_due(Some(std::slice::from_ref(&q.name)), due_by, room)
                        .await
                    {
                        Ok(claimed) if !claimed.is_empty() => {
                            tracing::debug!(queue = %q.name, n = claimed.len(), "callbacks claimed");
                            let ids: Vec<(uuid::Uuid, bool)> = claimed
                                .iter()
                                .map(|r| (r.id, r.state == CallbackState::Scheduled))
                                .collect();
                            callbacks.adopt(claimed);
                            if let Some(d) = deputy.as_mut()
                                && remote_room > 0
                            {
                                d.adopt(&q.name, &ids, remote_room, remote);
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(queue = %q.name, error = %e, "cannot claim callbacks")
                        }
                    }
                }
            }
        };
        tokio::join!(listener, claimer);
    }
}

#[async_trait]
impl Leases for Node {
    async fn save_owned(&self, w: OwnedWrite<'_>) -> Result<bool, StoreError> {
        self.cluster
            .save_owned_with(w.record, w.fresh, w.entries, w.release)
            .await
    }

    async fn save_unheld(&self, w: OwnedWrite<'_>) -> Result<bool, StoreError> {
        self.cluster
            .fenced_write(w.record, w.fresh, w.entries, w.release, true)
            .await
    }

    fn may_dial(&self) -> bool {
        !self.fenced()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::affinity::RegionAffinityRule;

    #[test]
    fn affinity_orders_preferred_then_fallback_and_never_ignored() {
        let rule = RegionAffinityRule {
            name: "eu".into(),
            preferred: vec!["paris".into()],
            fallback: vec!["london".into()],
            ignored: vec!["nyc".into()],
        };
        assert_eq!(affinity(None, "nyc"), Affinity::Now);
        assert_eq!(affinity(Some(&rule), "paris"), Affinity::Now);
        assert_eq!(affinity(Some(&rule), "london"), Affinity::Later);
        assert_eq!(affinity(Some(&rule), "tokyo"), Affinity::Later);
        assert_eq!(affinity(Some(&rule), "nyc"), Affinity::Never);
    }
}

//! The asking side of cross-node routing: a caller waiting here with no local ready agent is
//! offered to the home node of the best remote candidate (Ready in the cluster-wide view,
//! eligible for the queue, longest ready first). Only the home decides: the asker sends
//! `/internal/reserve` and takes a timeout, an error or a 409 as a refusal. On a grant it takes
//! the caller out of the local queue (if the local router assigned it meanwhile, the grant is
//! given back unused), dials the contact the home gave, and reports the answer
//! (`/internal/connected`) and the end (`/internal/release`) in order.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use dashmap::DashMap;
use uuid::Uuid;

use super::arbiter::{Granted, Outcome, ReleaseRequest, ReserveRequest};
use super::view::{Presence, View};
use crate::call::DialTarget;
use crate::clock::SharedClock;
use crate::routing::{Assignment, Dispatch};

/// How long a home node has to answer a reservation: a slower answer is a refusal.
const RESERVE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a node that did not answer is left out of the candidates.
const NODE_BACKOFF: TimeDelta = TimeDelta::seconds(5);
/// How often a waiting caller looks for a remote agent, besides each change of the view.
const LOOK_EVERY: TimeDelta = TimeDelta::milliseconds(250);
/// Candidates a caller asks for, at most, per look.
const ASK_AT_MOST: usize = 3;

/// A remote agent reserved for a caller waiting here.
pub struct RemoteGrant {
    /// The agent.
    pub agent: String,
    /// The interaction.
    pub interaction: Uuid,
    /// Where to dial the agent.
    pub target: DialTarget,
    reports: tokio::sync::mpsc::UnboundedSender<(&'static str, ReleaseRequest)>,
}

impl RemoteGrant {
    fn report(&self, path: &'static str, outcome: Outcome, wrap_up: TimeDelta) {
        let _ = self.reports.send((
            path,
            ReleaseRequest {
                agent: self.agent.clone(),
                interaction: self.interaction,
                outcome,
                wrap_up_seconds: u32::try_from(wrap_up.num_seconds()).unwrap_or(0),
            },
        ));
    }

    /// The agent's phone answered: the home makes the agent Busy.
    pub fn connected(&self) {
        self.report("/internal/connected", Outcome::Talked, TimeDelta::zero());
    }

    /// The reservation ends as `outcome` (after-call work `wrap_up` when they talked).
    pub fn release(&self, outcome: Outcome, wrap_up: TimeDelta) {
        self.report("/internal/release", outcome, wrap_up);
    }
}

/// A caller waiting here for an agent.
#[derive(Clone, Copy)]
pub struct Waiter<'a> {
    /// The router it waits in.
    pub dispatch: &'a Dispatch,
    /// Its queue.
    pub queue: &'a str,
    /// Its interaction id.
    pub id: Uuid,
    /// When it started waiting.
    pub entered: DateTime<Utc>,
    /// How long the agent's phone will ring.
    pub ring: TimeDelta,
}

/// This node's way to the agents of the other nodes.
pub struct Asker {
    node: String,
    secret: String,
    view: Arc<View>,
    clock: SharedClock,
    http: reqwest::Client,
    grants: DashMap<Uuid, Arc<RemoteGrant>>,
    backoff: DashMap<String, DateTime<Utc>>,
}

impl Asker {
    /// An asker for node `node` reading `view`.
    pub fn new(node: &str, secret: &str, view: Arc<View>, clock: SharedClock) -> Self {
        Asker {
            node: node.to_string(),
            secret: secret.to_string(),
            view,
            clock,
            http: reqwest::Client::builder()
                .timeout(RESERVE_TIMEOUT)
                .build()
                .unwrap_or_default(),
            grants: DashMap::new(),
            backoff: DashMap::new(),
        }
    }

    /// Takes the grant of `interaction` when its agent is remote (for the call's connection).
    pub fn take_grant(&self, interaction: Uuid) -> Option<Arc<RemoteGrant>> {
        self.grants.remove(&interaction).map(|(_, g)| g)
    }

    /// Waits until an agent homed on another node is reserved for the caller `w` describes,
    /// and the caller is out of the local queue; never returns while the local router serves
    /// it first.
    pub async fn find(&self, w: Waiter<'_>) -> Assignment {
        loop {
            let changed = self.view.changed.notified();
            if let Some(a) = self.look(&w).await {
                return a;
            }
            tokio::select! {
                _ = changed => {}
                _ = self.clock.sleep(LOOK_EVERY) => {}
            }
        }
    }

    async fn look(&self, w: &Waiter<'_>) -> Option<Assignment> {
        let Waiter {
            dispatch,
            queue,
            id,
            entered,
            ring,
        } = *w;
        let router = dispatch.router();
        // A local ready agent serves the queue first; the local router hands it out.
        if router.agent_counts(queue).ok()?.ready > 0 {
            return None;
        }
        let now = self.clock.now();
        self.backoff.retain(|_, until| *until > now);
        let candidates: Vec<(Presence, u32)> = self
            .view
            .ready_elsewhere(&self.node)
            .into_iter()
            .filter(|p| !self.backoff.contains_key(&p.node))
            .filter_map(|p| {
                let idx = router.agents().index_of(&p.agent).ok()?;
                router.is_eligible(queue, idx).ok()?.then_some((p, idx))
            })
            .collect();
        // The first callers in line ask, one candidate each at most.
        let position = router.position(queue, id).ok()??;
        if position >= candidates.len() {
            return None;
        }
        for (p, idx) in candidates.into_iter().skip(position).take(ASK_AT_MOST) {
            let Some(grant) = self.reserve(&p, id, ring).await else {
                continue;
            };
            let Some(contact) = grant.contact else {
                tracing::warn!(agent = %p.agent, node = %p.node, "grant without a contact");
                self.send_release(&p.url, &p.agent, id, Outcome::Unused)
                    .await;
                continue;
            };
            // The local router may have served the caller meanwhile: then the grant goes back.
            if !dispatch.withdraw(queue, id).unwrap_or(false) {
                self.send_release(&p.url, &p.agent, id, Outcome::Unused)
                    .await;
                return std::future::pending().await;
            }
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(send_reports(
                self.http.clone(),
                self.secret.clone(),
                p.url.clone(),
                rx,
            ));
            self.grants.insert(
                id,
                Arc::new(RemoteGrant {
                    agent: p.agent.clone(),
                    interaction: id,
                    target: DialTarget::Contact {
                        agent_id: p.agent.clone(),
                        uri: contact.uri,
                        peer: contact.addr,
                        tcp: contact.tcp,
                    },
                    reports: tx,
                }),
            );
            tracing::info!(agent = %p.agent, home = %p.node, interaction = %id, "remote agent granted");
            return Some(Assignment {
                interaction: id,
                queue: queue.to_string(),
                agent: p.agent,
                agent_idx: idx,
                waited: self.clock.now() - entered,
                reserved: true,
            });
        }
        None
    }

    /// Asks `p`'s home to reserve its agent for `id`; `None` is a refusal (including no
    /// answer in time, which also leaves that node out for a while).
    pub async fn reserve(&self, p: &Presence, id: Uuid, ring: TimeDelta) -> Option<Granted> {
        let body = ReserveRequest {
            agent: p.agent.clone(),
            interaction: id,
            node: self.node.clone(),
            ring_seconds: u32::try_from(ring.num_seconds()).ok(),
        };
        let sent = self
            .http
            .post(format!("{}/internal/reserve", p.url))
            .bearer_auth(&self.secret)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => r.json::<Granted>().await.ok(),
            Ok(r) => {
                tracing::debug!(agent = %p.agent, status = %r.status(), "reservation refused");
                None
            }
            Err(e) => {
                tracing::warn!(node = %p.node, error = %e, "home node did not answer");
                self.backoff
                    .insert(p.node.clone(), self.clock.now() + NODE_BACKOFF);
                None
            }
        }
    }

    async fn send_release(&self, url: &str, agent: &str, id: Uuid, outcome: Outcome) {
        let r = ReleaseRequest {
            agent: agent.to_string(),
            interaction: id,
            outcome,
            wrap_up_seconds: 0,
        };
        post(&self.http, &self.secret, url, "/internal/release", &r).await;
    }
}

async fn post(http: &reqwest::Client, secret: &str, url: &str, path: &str, r: &ReleaseRequest) {
    let sent = http
        .post(format!("{url}{path}"))
        .bearer_auth(secret)
        .json(r)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => {}
        Ok(resp) => {
            tracing::info!(agent = %r.agent, path, status = %resp.status(), "home node refused a report")
        }
        Err(e) => tracing::warn!(agent = %r.agent, path, error = %e, "report to home node lost"),
    }
}

/// Sends a grant's reports to its home in the order they were made.
async fn send_reports(
    http: reqwest::Client,
    secret: String,
    url: String,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(&'static str, ReleaseRequest)>,
) {
    while let Some((path, r)) = rx.recv().await {
        post(&http, &secret, &url, path, &r).await;
    }
}

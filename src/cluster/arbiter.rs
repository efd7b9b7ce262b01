//! The home side of cross-node routing: this node is the only arbiter of the agents whose
//! phones registered with it. Another node asks for one of them over internal HTTP
//! (`POST /internal/reserve`); the arbiter makes the same atomic claim its router makes for a
//! local call (`Router::claim_agent`, one compare-and-swap), and grants a reservation that
//! lapses after the ring time unless the asker reports the agent answered
//! (`/internal/connected`); `/internal/release` ends it (unused, no answer, or after the talk).
//! A connected reservation is tied to the asker's liveness: [`Arbiter::watch_askers`] ends it
//! (the agent wraps up or is Ready, as after a talk) once the asking node's heartbeat row is
//! older than the lease, so an asker killed mid-call never leaves the agent Busy for good.
//!
//! Every endpoint needs the shared secret (`Authorization: Bearer <cluster.secret>`, compared
//! in constant time) and answers 401 JSON without it, before its body is read; bodies are
//! capped at 4 KiB, and the routes are served by the API's own bounded listener.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::TimeDelta;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::routing::{Assignment, Dispatch, StateKind};
use crate::sip::transport::Transport;
use crate::sip::ua::UaHandle;
use crate::store::postgres::Cluster;

/// Largest body an internal endpoint reads.
const MAX_BODY: usize = 4096;
/// Longest ring time an asker may ask a reservation to last (seconds).
const MAX_RING_SECONDS: u32 = 300;
/// Added to the ring time before a reservation lapses: the asker's report of the answer is
/// on its way when the phone answers at the last moment.
const LAPSE_MARGIN_SECONDS: i64 = 2;

/// `POST /internal/reserve`: reserve `agent` for `interaction`, waiting on `node`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReserveRequest {
    /// The agent's id.
    pub agent: String,
    /// The interaction (the caller waiting on the asking node).
    pub interaction: Uuid,
    /// The asking node.
    pub node: String,
    /// How long the asker rings the agent's phone (1–300 s, default 20).
    #[serde(default)]
    pub ring_seconds: Option<u32>,
}

/// Where the asker dials the reserved agent: the contact the phone registered here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedContact {
    /// The contact URI.
    pub uri: String,
    /// The address requests to it are sent to.
    pub addr: std::net::SocketAddr,
    /// Over TCP rather than UDP.
    pub tcp: bool,
}

/// The answer to a granted reservation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Granted {
    /// Always true (a refusal is a 409).
    pub granted: bool,
    /// The agent reserved.
    pub agent: String,
    /// Where to dial them (absent when this node runs no SIP).
    pub contact: Option<GrantedContact>,
    /// Milliseconds until the reservation lapses unless the agent answers.
    pub lapse_ms: i64,
}

/// `POST /internal/connected` and `/internal/release`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseRequest {
    /// The agent's id.
    pub agent: String,
    /// The interaction it was reserved for.
    pub interaction: Uuid,
    /// `unused` (default), `no_answer` or `talked` (release only).
    #[serde(default)]
    pub outcome: Outcome,
    /// After-call work once `talked` (seconds, capped at one hour).
    #[serde(default)]
    pub wrap_up_seconds: u32,
}

/// How a reservation ended, as the asker reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not used (the caller left, or was served otherwise): the agent is Ready again.
    #[default]
    Unused,
    /// The phone did not answer: the agent is Not Ready (as for a local call).
    NoAnswer,
    /// They talked: the agent wraps up, or is Ready.
    Talked,
}

struct Held {
    assignment: Assignment,
    node: String,
    connected: bool,
}

/// The arbiter of the agents homed on this node.
pub struct Arbiter {
    node: String,
    secret: String,
    dispatch: Arc<Dispatch>,
    clock: SharedClock,
    ua: OnceLock<UaHandle>,
    held: DashMap<Uuid, Held>,
}

/// A refusal: its status and reason, answered as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub StatusCode, pub String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"granted": false, "error": self.1}))).into_response()
    }
}

fn refuse(code: StatusCode, why: impl Into<String>) -> Refused {
    Refused(code, why.into())
}

impl Arbiter {
    /// The arbiter of `dispatch`'s agents on node `node`; an empty `secret` refuses every
    /// request.
    pub fn new(node: &str, secret: &str, dispatch: Arc<Dispatch>, clock: SharedClock) -> Self {
        Arbiter {
            node: node.to_string(),
            secret: secret.to_string(),
            dispatch,
            clock,
            ua: OnceLock::new(),
            held: DashMap::new(),
        }
    }

    /// The user agent whose registrar gives reserved agents' contacts (once SIP runs).
    pub fn set_ua(&self, ua: UaHandle) {
        let _ = self.ua.set(ua);
    }

    /// Reservations held now (granted and not released), for tests and metrics.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The internal endpoints, to merge into the API.
    pub fn routes(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/internal/reserve", post(reserve))
            .route("/internal/connected", post(connected))
            .route("/internal/release", post(release))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self.clone())
    }

    fn authorized(&self, headers: &HeaderMap) -> Result<(), Refused> {
        if self.secret.is_empty() {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "cluster.secret is not set on this node: internal endpoints are closed",
            ));
        }
        let sent = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if bool::from(sent.as_bytes().ct_eq(self.secret.as_bytes())) {
            Ok(())
        } else {
            Err(refuse(
                StatusCode::UNAUTHORIZED,
                "the cluster secret is missing or wrong",
            ))
        }
    }

    /// Reserves `r.agent` when it is homed here and Ready: the router's own atomic claim.
    pub async fn reserve(self: &Arc<Self>, r: ReserveRequest) -> Result<Granted, Refused> {
        if let Some(h) = self.held.get(&r.interaction) {
            // A retried request after a lost answer gets the same grant, never a second agent.
            if h.assignment.agent != r.agent {
                return Err(refuse(
                    StatusCode::CONFLICT,
                    "this interaction already holds another agent here",
                ));
            }
        }
        let router = self.dispatch.router();
        let idx = router
            .agents()
            .index_of(&r.agent)
            .map_err(|e| refuse(StatusCode::NOT_FOUND, e.to_string()))?;
        let agent = router.agents().get(idx);
        if !agent.has_phone() {
            return Err(refuse(
                StatusCode::CONFLICT,
                format!("agent {} has no phone registered on {}", r.agent, self.node),
            ));
        }
        let contact = match self.ua.get() {
            Some(ua) => match ua.lookup(&agent.sip_user).await {
                Some((uri, peer)) => Some(GrantedContact {
                    uri,
                    addr: peer.addr,
                    tcp: peer.transport == Transport::Tcp,
                }),
                None => {
                    return Err(refuse(
                        StatusCode::CONFLICT,
                        format!("agent {} has no registered contact", r.agent),
                    ));
                }
            },
            None => None,
        };
        let ring = r.ring_seconds.unwrap_or(20).clamp(1, MAX_RING_SECONDS);
        let lapse = TimeDelta::seconds(i64::from(ring) + LAPSE_MARGIN_SECONDS);
        let granted = |contact| Granted {
            granted: true,
            agent: r.agent.clone(),
            contact,
            lapse_ms: lapse.num_milliseconds(),
        };
        if self.held.contains_key(&r.interaction) {
            return Ok(granted(contact));
        }
        let Some(idx) = router.claim_agent(&r.agent).ok().flatten() else {
            return Err(refuse(
                StatusCode::CONFLICT,
                format!("agent {} is not ready", r.agent),
            ));
        };
        let assignment = Assignment {
            interaction: r.interaction,
            queue: String::new(),
            agent: r.agent.clone(),
            agent_idx: idx,
            waited: TimeDelta::zero(),
            reserved: true,
        };
        self.held.insert(
            r.interaction,
            Held {
                assignment,
                node: r.node.clone(),
                connected: false,
            },
        );
        tracing::info!(agent = %r.agent, interaction = %r.interaction, asker = %r.node, "agent reserved for another node");
        let (me, id) = (self.clone(), r.interaction);
        tokio::spawn(async move {
            me.clock.sleep(lapse).await;
            let lapsed = me.held.remove_if(&id, |_, h| !h.connected);
            if let Some((_, h)) = lapsed {
                tracing::info!(agent = %h.assignment.agent, asker = %h.node, "reservation lapsed");
                me.dispatch.release(&h.assignment);
            }
        });
        Ok(granted(contact))
    }

    /// The asker's phone call to the agent was answered: the agent is Busy and the
    /// reservation no longer lapses.
    pub fn connected(&self, r: &ReleaseRequest) -> Result<(), Refused> {
        match self.held.get_mut(&r.interaction) {
            Some(mut h) if h.assignment.agent == r.agent => {
                h.connected = true;
            }
            _ => {
                return Err(refuse(
                    StatusCode::NOT_FOUND,
                    "no such reservation (it lapsed or was released)",
                ));
            }
        }
        if let Err(e) = self
            .dispatch
            .set_agent_state(&r.agent, StateKind::Busy, None)
        {
            tracing::info!(agent = %r.agent, error = %e, "remote agent not set busy");
        }
        Ok(())
    }

    /// Ends a reservation as the asker reports it.
    pub fn release(&self, r: &ReleaseRequest) -> Result<(), Refused> {
        let Some((_, h)) = self
            .held
            .remove_if(&r.interaction, |_, h| h.assignment.agent == r.agent)
        else {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "no such reservation (it lapsed or was released)",
            ));
        };
        match r.outcome {
            Outcome::Unused if !h.connected => self.dispatch.release(&h.assignment),
            Outcome::NoAnswer if !h.connected => {
                if let Err(e) =
                    self.dispatch
                        .set_agent_state(&r.agent, StateKind::NotReady, Some("no answer"))
                {
                    tracing::warn!(agent = %r.agent, error = %e, "cannot set agent not ready");
                }
            }
            _ => {
                let wrap = TimeDelta::seconds(i64::from(r.wrap_up_seconds.min(3600)));
                if let Err(e) = self.dispatch.finish_call(&r.agent, wrap) {
                    tracing::warn!(agent = %r.agent, error = %e, "cannot end the agent's call");
                }
            }
        }
        Ok(())
    }
}

impl Arbiter {
    /// Ends the reservations whose asking node is not in `alive` (it died before its
    /// release): a connected one as after a talk (wrap-up, else Ready), a granted one not yet
    /// connected as its lapse would, without waiting out the ring time. Returns how many.
    pub fn end_orphans(&self, alive: &std::collections::HashSet<String>) -> usize {
        let orphans: Vec<Uuid> = self
            .held
            .iter()
            .filter(|h| h.node != self.node && !alive.contains(&h.node))
            .map(|h| *h.key())
            .collect();
        let mut ended = 0;
        for id in orphans {
            let Some((_, h)) = self.held.remove_if(&id, |_, h| !alive.contains(&h.node)) else {
                continue;
            };
            ended += 1;
            if !h.connected {
                tracing::warn!(agent = %h.assignment.agent, asker = %h.node,
                    "asking node died before the agent answered: reservation ended");
                self.dispatch.release(&h.assignment);
                continue;
            }
            tracing::warn!(agent = %h.assignment.agent, asker = %h.node,
                "asking node died mid-call: its remote agent's call ended");
            if let Err(e) = self
                .dispatch
                .finish_call(&h.assignment.agent, TimeDelta::zero())
            {
                tracing::warn!(agent = %h.assignment.agent, error = %e, "cannot end the agent's call");
            }
        }
        ended
    }

    /// Checks the askers' heartbeat rows every third of `lease` and ends the reservations of
    /// dead ones ([`Self::end_orphans`]). Ends nothing while the database cannot be read, nor
    /// while this node is not settled (its own heartbeat stale, or back from an outage for
    /// less than a lease): every asker's heartbeat looks stale right after the database
    /// returns, until it beats again.
    pub async fn watch_askers(self: Arc<Self>, cluster: Cluster, lease: std::time::Duration) {
        let period = TimeDelta::from_std(lease / 3).unwrap_or(TimeDelta::seconds(5));
        loop {
            self.clock.sleep(period).await;
            if self.held.is_empty() {
                continue;
            }
            match cluster.nodes().await {
                Ok(nodes) => {
                    if !nodes.iter().any(|n| n.node_id == self.node && n.settled) {
                        continue;
                    }
                    let alive = nodes
                        .into_iter()
                        .filter(|n| n.alive)
                        .map(|n| n.node_id)
                        .collect();
                    self.end_orphans(&alive);
                }
                Err(e) => tracing::debug!(error = %e, "askers' liveness not read"),
            }
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Refused> {
    serde_json::from_slice(body).map_err(|e| refuse(StatusCode::BAD_REQUEST, e.to_string()))
}

async fn reserve(State(a): State<Arc<Arbiter>>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        a.authorized(&headers)?;
        let r: ReserveRequest = parse(&body)?;
        a.reserve(r).await
    };
    match run.await {
        Ok(g) => Json(g).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn connected(State(a): State<Arc<Arbiter>>, headers: HeaderMap, body: Bytes) -> Response {
    report(&a, &headers, &body, Arbiter::connected)
}

async fn release(State(a): State<Arc<Arbiter>>, headers: HeaderMap, body: Bytes) -> Response {
    report(&a, &headers, &body, Arbiter::release)
}

/// An asker's report on a reservation (`connected`, `release`), authorized and parsed.
fn report(
    a: &Arbiter,
    headers: &HeaderMap,
    body: &Bytes,
    apply: fn(&Arbiter, &ReleaseRequest) -> Result<(), Refused>,
) -> Response {
    let run = || {
        a.authorized(headers)?;
        apply(a, &parse(body)?)
    };
    match run() {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => e.into_response(),
    }
}

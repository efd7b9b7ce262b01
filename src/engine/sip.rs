//! The engine's SIP front: inbound calls to route points run their flow on a SIP leg, agents'
//! registrations log them in and out, and callbacks are dialled through the same user agent.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use crate::call::{CallLeg, Direction, HangupCause, LegInfo};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::flow::interpreter::system_variables;
use crate::flow::{FlowServices, LiveFlows};
use crate::media::prompts::PromptLibrary;
use crate::media::sdp;
use crate::media::session::MediaSession;
use crate::routing::{Dispatch, StateKind};
use crate::sip::leg::{LegParts, SipLeg};
use crate::sip::registrar::ContactLease;
use crate::sip::transport::{Peer, Transport};
use crate::sip::ua::{CallHandler, IncomingCall, PhoneRegistration, UaHandle};
use crate::store::{Document, Store};

/// Handles what the user agent receives.
pub struct SipFront {
    /// Configuration.
    pub config: Arc<Config>,
    /// Applications, reloaded when their files change.
    pub flows: Arc<LiveFlows>,
    /// Flow services.
    pub services: OnceLock<Arc<FlowServices>>,
    /// Prompts.
    pub prompts: Arc<PromptLibrary>,
    /// Time.
    pub clock: SharedClock,
    /// Router.
    pub dispatch: Arc<Dispatch>,
    /// The user agent, once started.
    pub ua: OnceLock<UaHandle>,
    /// Writes phones' registrations to the store, in order (see [`keep_registrations`]).
    pub keeper: tokio::sync::mpsc::UnboundedSender<PhoneRegistration>,
    /// The inbound calls' flow tasks, which a graceful shutdown waits for.
    pub calls: tokio_util::task::TaskTracker,
    /// Calls by route point and outcome.
    pub metrics: Arc<crate::ops::metrics::Metrics>,
}

impl SipFront {
    async fn run_call(self: Arc<Self>, call: IncomingCall) {
        let (Some(ua), Some(services)) = (self.ua.get().cloned(), self.services.get().cloned())
        else {
            return;
        };
        // A caller who gave up (CANCEL) before the flow started leaves nothing behind.
        if *call.shared.ended.borrow() {
            return;
        }
        let m = &self.config.spec.media;
        let media = match MediaSession::open(
            ua.public_ip,
            (m.rtp_port_min, m.rtp_port_max),
            call.shared.digits.clone(),
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no RTP port for a call");
                self.call_ended(&call.dnis, "no_rtp_port");
                ua.reject(&call.call_id, 503, "Service Unavailable");
                return;
            }
        };
        // An INVITE without SDP gets our offer in the 200; its answer comes with the ACK.
        let late = call.offer.trim().is_empty().then(|| {
            let offer = sdp::offer(
                ua.public_ip,
                media.local_addr().port(),
                u64::from(rand::random::<u32>()),
                1,
            );
            sdp::parse_answer(&offer).map(|n| (offer, n))
        });
        let (answer, negotiated) = match late
            .unwrap_or_else(|| sdp::answer(&call.offer, ua.public_ip, media.local_addr().port()))
        {
            Ok(x) => x,
            Err(e) => {
                tracing::info!(call = %call.call_id, error = %e, "SDP offer refused");
                self.call_ended(&call.dnis, "sdp_refused");
                let code = e.sip_status();
                ua.reject(
                    &call.call_id,
                    code,
                    if code == 488 {
                        "Not Acceptable Here"
                    } else {
                        "Bad Request"
                    },
                );
                media.close();
                return;
            }
        };
        if *call.shared.ended.borrow() {
            media.close();
            return;
        }
        if !call.offer.trim().is_empty() {
            media.configure(&negotiated);
        }
        let parts = LegParts {
            info: LegInfo {
                call_id: call.call_id.clone(),
                ani: call.ani.clone(),
                dnis: call.dnis.clone(),
                direction: Direction::Inbound,
            },
            ua,
            shared: call.shared.clone(),
            media,
            prompts: self.prompts.clone(),
            clock: self.clock.clone(),
        };
        let leg = SipLeg::new(parts, answer, false);
        if m.rtp_timeout_seconds > 0 {
            leg.watch_rtp(std::time::Duration::from_secs(m.rtp_timeout_seconds.into()));
        }
        let Some(flow) = self.flows.get().for_number(&self.config, &call.dnis) else {
            self.call_ended(&call.dnis, "no_flow");
            let _ = leg.hang_up(HangupCause::NotFound).await;
            return;
        };
        crate::ops::logging::record_flow(&flow.name);
        let vars = system_variables(leg.as_ref(), &call.dnis);
        let report = crate::flow::run(&flow, leg.clone(), &services, vars).await;
        self.call_ended(&call.dnis, &format!("{:?}", report.ending));
        tracing::info!(
            call = %call.call_id,
            flow = %flow.name,
            ending = ?report.ending,
            blocks = report.trace.len(),
            "call ended"
        );
        tracing::debug!(call = %call.call_id, trace = ?report.lines(), "blocks visited");
    }
}

impl SipFront {
    /// Counts an inbound call's end under its configured route point (bounded labels).
    fn call_ended(&self, dnis: &str, outcome: &str) {
        let rp = self
            .config
            .route_point(dnis)
            .map_or("other", |r| r.number.as_str());
        self.metrics.call_ended(rp, outcome);
    }
}

impl CallHandler for Arc<SipFront> {
    fn serves(&self, number: &str) -> bool {
        self.config.route_point(number).is_some()
    }

    fn incoming(&self, call: IncomingCall) {
        use tracing::Instrument;
        let span = crate::ops::logging::call_span(&call.call_id, &call.dnis);
        self.calls
            .spawn(self.clone().run_call(call).instrument(span));
    }

    fn registration_changed(&self, registration: PhoneRegistration) {
        let _ = self.keeper.send(registration);
    }

    fn knows_user(&self, user: &str) -> bool {
        self.dispatch.router().agents().by_sip_user(user).is_some()
    }

    fn registration(&self, user: &str, registered: bool) {
        let agents = self.dispatch.router().agents();
        let Some(agent) = agents.by_sip_user(user).map(|i| agents.get(i)) else {
            tracing::info!(user, "registration from a SIP user that is no agent");
            return;
        };
        agent.set_phone(registered);
        let to = if registered {
            StateKind::Ready
        } else {
            StateKind::LoggedOut
        };
        // On a call, the phone's going away logs the agent out when the call ends.
        match self
            .dispatch
            .request_agent_state(&agent.id, to, Some("SIP registration"))
        {
            Ok(done) => {
                tracing::info!(agent = %agent.id, ?to, ?done, "agent state from registration")
            }
            Err(e) => tracing::warn!(agent = %agent.id, error = %e, "registration state refused"),
        }
    }
}

/// Addresses the SIP listeners are bound to.
#[derive(Debug, Clone, Default)]
pub struct SipAddrs {
    /// UDP.
    pub udp: Vec<SocketAddr>,
    /// TCP.
    pub tcp: Vec<SocketAddr>,
}

/// Document kind of an agent phone's registration kept in the store (id: the SIP user), so
/// agents stay logged in across a restart until their registration expires.
pub const REGISTRATION_KIND: &str = "sip_registration";

#[derive(serde::Serialize, serde::Deserialize)]
struct KeptRegistration {
    /// The node the phone registered with: the agent's home, which alone restores it.
    #[serde(default)]
    node: Option<String>,
    aor: String,
    source: SocketAddr,
    tcp: bool,
    contacts: Vec<KeptContact>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeptContact {
    uri: String,
    q: Option<String>,
    call_id: String,
    cseq: u32,
    expires_at: chrono::DateTime<chrono::Utc>,
}

/// Writes each registration change to the store in the order the user agent reported them
/// (a phone gone deletes its document), naming `node` as the phone's home; returns the sender
/// the front reports through.
pub fn keep_registrations(
    store: Arc<dyn Store>,
    clock: SharedClock,
    node: String,
) -> tokio::sync::mpsc::UnboundedSender<PhoneRegistration> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PhoneRegistration>();
    tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            let done = if r.contacts.is_empty() {
                store
                    .delete_document(REGISTRATION_KIND, &r.user)
                    .await
                    .map(|_| ())
            } else {
                let now = clock.now();
                let kept = KeptRegistration {
                    node: Some(node.clone()),
                    aor: r.aor,
                    source: r.source.addr,
                    tcp: r.source.transport == Transport::Tcp,
                    contacts: r
                        .contacts
                        .into_iter()
                        .map(|c| KeptContact {
                            expires_at: now + chrono::TimeDelta::seconds(i64::from(c.seconds_left)),
                            uri: c.uri,
                            q: c.q,
                            call_id: c.call_id,
                            cseq: c.cseq,
                        })
                        .collect(),
                };
                store
                    .save_documents(vec![Document {
                        kind: REGISTRATION_KIND.into(),
                        id: r.user.clone(),
                        body: serde_json::to_value(kept).unwrap_or_default(),
                    }])
                    .await
            };
            if let Err(e) = done {
                tracing::warn!(user = %r.user, error = %e, "registration not kept in the store");
            }
        }
    });
    tx
}

/// The registrations kept in the store for `node` (or for no node) that have not expired at
/// the clock's now (expired ones are deleted); other nodes' phones stay with their homes.
pub async fn kept_registrations(
    store: &Arc<dyn Store>,
    clock: &SharedClock,
    node: &str,
) -> Result<Vec<PhoneRegistration>, crate::store::StoreError> {
    let now = clock.now();
    let mut out = Vec::new();
    for doc in store.documents(REGISTRATION_KIND).await? {
        let Ok(kept) = serde_json::from_value::<KeptRegistration>(doc.body) else {
            tracing::warn!(user = %doc.id, "unreadable kept registration dropped");
            store.delete_document(REGISTRATION_KIND, &doc.id).await?;
            continue;
        };
        if kept.node.as_deref().is_some_and(|n| n != node) {
            continue;
        }
        let contacts: Vec<ContactLease> = kept
            .contacts
            .into_iter()
            .filter_map(|c| {
                let left = u32::try_from((c.expires_at - now).num_seconds()).ok()?;
                (left > 0).then_some(ContactLease {
                    uri: c.uri,
                    q: c.q,
                    call_id: c.call_id,
                    cseq: c.cseq,
                    seconds_left: left,
                })
            })
            .collect();
        if contacts.is_empty() {
            store.delete_document(REGISTRATION_KIND, &doc.id).await?;
            continue;
        }
        out.push(PhoneRegistration {
            user: doc.id,
            aor: kept.aor,
            source: Peer {
                addr: kept.source,
                transport: if kept.tcp {
                    Transport::Tcp
                } else {
                    Transport::Udp
                },
            },
            contacts,
        });
    }
    Ok(out)
}

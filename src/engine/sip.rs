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
use crate::sip::leg::SipLeg;
use crate::sip::ua::{CallHandler, IncomingCall, UaHandle};

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
        let leg = SipLeg::new(
            LegInfo {
                call_id: call.call_id.clone(),
                ani: call.ani.clone(),
                dnis: call.dnis.clone(),
                direction: Direction::Inbound,
            },
            ua,
            call.shared.clone(),
            media,
            self.prompts.clone(),
            self.clock.clone(),
            answer,
            false,
        );
        if m.rtp_timeout_seconds > 0 {
            leg.watch_rtp(std::time::Duration::from_secs(m.rtp_timeout_seconds.into()));
        }
        let Some(flow) = self.flows.get().for_number(&self.config, &call.dnis) else {
            let _ = leg.hang_up(HangupCause::NotFound).await;
            return;
        };
        let vars = system_variables(leg.as_ref(), &call.dnis);
        let report = crate::flow::run(&flow, leg.clone(), &services, vars).await;
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

impl CallHandler for Arc<SipFront> {
    fn serves(&self, number: &str) -> bool {
        self.config.route_point(number).is_some()
    }

    fn incoming(&self, call: IncomingCall) {
        tokio::spawn(self.clone().run_call(call));
    }

    fn registration(&self, user: &str, registered: bool) {
        let Some(agent) = self
            .config
            .spec
            .agents
            .iter()
            .find(|a| a.sip_user.as_deref() == Some(user))
        else {
            tracing::info!(user, "registration from a SIP user that is no agent");
            return;
        };
        let to = if registered {
            StateKind::Ready
        } else {
            StateKind::LoggedOut
        };
        match self
            .dispatch
            .set_agent_state(&agent.id, to, Some("SIP registration"))
        {
            Ok(()) => tracing::info!(agent = %agent.id, ?to, "agent state from registration"),
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

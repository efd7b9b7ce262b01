//! A `CallLeg` on SIP and RTP: answering through the user agent, prompts and key presses through
//! the leg's RTP session, bridging by relaying RTP between two sessions. Also the `Dialer` that
//! places SIP calls to customers through trunks and to agents' registered phones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::transport::{Peer, Transport};
use super::ua::{DialRequest, LegShared, UaHandle, UacEvent};
use crate::call::{
    BridgeEnd, CallError, CallLeg, Dial, DialResult, DialTarget, Dialer, DigitOutcome, DigitSpec,
    Direction, HangupCause, LegInfo, LegMedia, PlayItem, PlayOptions, PlayOutcome,
};
use crate::clock::SharedClock;
use crate::config::{Config, TransportKind};
use crate::media::inactivity::RtpWatch;
use crate::media::prompts::{Frame, PromptLibrary, digit_prompt_name};
use crate::media::sdp;
use crate::media::session::{MediaSession, silence_frames};

/// What a SIP leg is made of, named rather than passed in order: the call, its dialog in the
/// user agent, its RTP session and what it plays prompts with.
pub struct LegParts {
    /// The call as the flow sees it.
    pub info: LegInfo,
    /// The user agent that owns the dialog.
    pub ua: UaHandle,
    /// The dialog's state shared with the user agent.
    pub shared: Arc<LegShared>,
    /// The leg's RTP session.
    pub media: Arc<MediaSession>,
    /// The prompts it plays.
    pub prompts: Arc<PromptLibrary>,
    /// The time source.
    pub clock: SharedClock,
}

/// A call leg over SIP/RTP.
pub struct SipLeg {
    parts: LegParts,
    answered: AtomicBool,
    answer_sdp: String,
    stop: Notify,
}

impl SipLeg {
    /// A leg for a call the user agent knows as `info.call_id`; `answer_sdp` is sent on answer
    /// (inbound), and an outbound leg starts answered.
    pub fn new(parts: LegParts, answer_sdp: String, answered: bool) -> Arc<Self> {
        parts.shared.attach_media(&parts.media);
        Arc::new(SipLeg {
            parts,
            answered: AtomicBool::new(answered),
            answer_sdp,
            stop: Notify::new(),
        })
    }

    /// Ends the call with a BYE once it is answered, not on hold, and has received no RTP for
    /// `timeout` (`media.rtp_timeout_seconds`), logging why; the watch stops with the leg.
    pub fn watch_rtp(self: &Arc<Self>, timeout: Duration) {
        let leg = Arc::downgrade(self);
        let secs = u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX);
        tokio::spawn(async move {
            let mut watch = RtpWatch::new(secs);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(leg) = leg.upgrade() else { return };
                if leg.is_ended() {
                    return;
                }
                let watched = leg.answered.load(Ordering::Acquire) && !leg.is_held();
                if watch.tick(leg.parts.media.counts().1, watched) {
                    tracing::warn!(
                        call = %leg.parts.info.call_id,
                        seconds = watch.idle_ticks(),
                        "no RTP received: ending the call (media.rtp_timeout_seconds)"
                    );
                    let _ = leg.hang_up(HangupCause::Normal).await;
                    return;
                }
            }
        });
    }

    fn frames(&self, items: &[PlayItem]) -> Result<Vec<Arc<[Frame]>>, CallError> {
        let law = self.parts.media.law();
        let mut out = Vec::new();
        for item in items {
            match item {
                PlayItem::Prompt(name) => {
                    let p = self
                        .parts
                        .prompts
                        .get(name)
                        .ok_or_else(|| CallError::UnknownPrompt(name.clone()))?;
                    out.push(p.frames(law).clone());
                }
                PlayItem::Digits(keys) => {
                    for k in keys.chars() {
                        if let Some(p) =
                            digit_prompt_name(k).and_then(|n| self.parts.prompts.get(n))
                        {
                            out.push(p.frames(law).clone());
                        }
                    }
                }
                PlayItem::Silence(d) => out.push(silence_frames(law, *d)),
            }
        }
        Ok(out)
    }

    async fn wait_digit(&self, timeout: Duration) -> Option<char> {
        let until =
            self.parts.clock.now() + chrono::TimeDelta::from_std(timeout).unwrap_or_default();
        loop {
            let n = self.parts.shared.digits.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if let Some(d) = self.parts.shared.digits.pop() {
                return Some(d);
            }
            if self.is_ended() {
                return None;
            }
            tokio::select! {
                _ = n => {}
                _ = self.parts.clock.sleep_until(until) => return self.parts.shared.digits.pop(),
                _ = self.hung_up() => return None,
            }
        }
    }
}

#[async_trait]
impl CallLeg for SipLeg {
    fn info(&self) -> &LegInfo {
        &self.parts.info
    }

    async fn answer(&self) -> Result<(), CallError> {
        self.parts
            .ua
            .answer_once(&self.parts.info.call_id, &self.answer_sdp, &self.answered)
            .await
    }

    async fn play(&self, items: &[PlayItem], opts: &PlayOptions) -> Result<PlayOutcome, CallError> {
        if self.is_ended() {
            return Ok(PlayOutcome::HungUp);
        }
        self.answer().await?;
        if opts.barge_in
            && let Some(k) = self.parts.shared.digits.peek()
        {
            return Ok(PlayOutcome::Interrupted(k));
        }
        let frames = self.frames(items)?;
        let id = self.parts.media.play(frames, opts.looped);
        let digits = &self.parts.shared.digits;
        loop {
            let n = digits.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if opts.barge_in
                && let Some(k) = digits.peek()
            {
                self.parts.media.stop();
                return Ok(PlayOutcome::Interrupted(k));
            }
            tokio::select! {
                _ = self.parts.media.wait_played(id) => {
                    return Ok(if self.is_ended() { PlayOutcome::HungUp } else { PlayOutcome::Completed });
                }
                _ = self.stop.notified() => {
                    self.parts.media.stop();
                    return Ok(PlayOutcome::Completed);
                }
                _ = self.hung_up() => {
                    self.parts.media.stop();
                    return Ok(PlayOutcome::HungUp);
                }
                _ = n, if opts.barge_in => {}
            }
        }
    }

    fn stop_playing(&self) {
        self.parts.media.stop();
        self.stop.notify_waiters();
    }

    async fn collect_digits(&self, spec: &DigitSpec) -> Result<DigitOutcome, CallError> {
        if self.is_ended() {
            return Ok(DigitOutcome::HungUp);
        }
        self.answer().await?;
        Ok(crate::call::collect_keys(spec, || self.is_ended(), |t| self.wait_digit(t)).await)
    }

    fn flush_digits(&self) {
        self.parts.shared.digits.clear();
    }

    async fn send_digits(&self, digits: &str) -> Result<(), CallError> {
        if self.is_ended() {
            return Err(CallError::Ended);
        }
        self.parts.media.send_digits(digits);
        Ok(())
    }

    async fn bridge(&self, other: Arc<dyn CallLeg>) -> Result<BridgeEnd, CallError> {
        if self.is_ended() {
            return Err(CallError::Ended);
        }
        self.answer().await?;
        self.parts.media.stop();
        let other_media = other.media();
        if let Some(m) = &other_media {
            m.stop();
            self.parts.media.relay_to(m);
            let mine: Arc<dyn LegMedia> = self.parts.media.clone();
            m.relay_to(&mine);
        }
        let end = tokio::select! {
            _ = self.hung_up() => BridgeEnd::ThisSide,
            _ = other.hung_up() => BridgeEnd::OtherSide,
        };
        self.parts.media.unbridge();
        if let Some(m) = &other_media {
            m.unbridge();
        }
        Ok(end)
    }

    async fn hang_up(&self, cause: HangupCause) -> Result<(), CallError> {
        if self.is_ended() {
            return Ok(());
        }
        if self.answered.load(Ordering::Acquire) || self.parts.info.direction == Direction::Outbound
        {
            self.parts.ua.hang_up(&self.parts.info.call_id);
        } else {
            let (code, reason) = match cause {
                HangupCause::Busy => (486, "Busy Here"),
                HangupCause::NotFound => (404, "Not Found"),
                HangupCause::Unavailable | HangupCause::Normal => (480, "Temporarily Unavailable"),
            };
            self.parts.ua.reject(&self.parts.info.call_id, code, reason);
        }
        self.parts.shared.end();
        self.parts.media.close();
        Ok(())
    }

    async fn hung_up(&self) {
        let mut rx = self.parts.shared.ended.subscribe();
        let _ = rx.wait_for(|e| *e).await;
    }

    fn is_ended(&self) -> bool {
        *self.parts.shared.ended.borrow()
    }

    fn listen(&self) -> Option<tokio::sync::mpsc::Receiver<Vec<i16>>> {
        Some(self.parts.media.listen())
    }

    fn media(&self) -> Option<Arc<dyn LegMedia>> {
        Some(self.parts.media.clone())
    }

    fn is_held(&self) -> bool {
        *self.parts.shared.held.borrow()
    }

    fn accepts_refer(&self) -> bool {
        self.parts.shared.accepts_refer.load(Ordering::Acquire)
    }

    async fn refer(
        &self,
        target: &str,
        wait: std::time::Duration,
    ) -> Result<crate::call::ReferOutcome, CallError> {
        use crate::call::ReferOutcome;
        use crate::sip::ua::ReferState;
        // REFER travels in the dialog: an unanswered call is answered first.
        self.answer().await?;
        // A former REFER's outcome must not answer for this one.
        self.parts.shared.refer.send_replace(ReferState::Idle);
        let mut rx = self.parts.shared.refer.subscribe();
        self.parts.ua.refer(&self.parts.info.call_id, target);
        let settled = |s: &ReferState| matches!(s, ReferState::Refused(_) | ReferState::Done(_));
        let deadline =
            self.parts.clock.now() + chrono::TimeDelta::from_std(wait).unwrap_or_default();
        tokio::select! {
            _ = rx.wait_for(settled) => {}
            _ = self.parts.clock.sleep_until(deadline) => {}
            _ = self.hung_up() => {}
        }
        let state = *self.parts.shared.refer.borrow();
        Ok(match state {
            ReferState::Refused(code) => ReferOutcome::Refused(code),
            ReferState::Done(code) => ReferOutcome::Final(code),
            ReferState::Idle | ReferState::Sent => ReferOutcome::Refused(408),
            ReferState::Accepted | ReferState::Trying(_) => ReferOutcome::NoReport,
        })
    }
}

impl Drop for SipLeg {
    fn drop(&mut self) {
        self.parts.media.close();
    }
}

/// Places SIP calls for the callback dialer and Route Call.
pub struct SipDialer {
    /// The user agent.
    pub ua: UaHandle,
    /// Trunks, agents and the RTP port range.
    pub config: Arc<Config>,
    /// Prompts for the legs it creates.
    pub prompts: Arc<PromptLibrary>,
    /// Time.
    pub clock: SharedClock,
}

impl SipDialer {
    async fn resolve(
        &self,
        target: &DialTarget,
    ) -> Result<(String, Peer, Option<(String, String)>, bool), DialResult> {
        match target {
            DialTarget::Customer { number, trunk } => {
                let t = self
                    .config
                    .trunk(trunk.as_deref())
                    .ok_or(DialResult::Failed)?;
                let addr: SocketAddr = tokio::net::lookup_host((t.host.as_str(), t.port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or(DialResult::Unreachable)?;
                let transport = match t.transport {
                    TransportKind::Tcp => Transport::Tcp,
                    _ => Transport::Udp,
                };
                let creds = t.username.clone().zip(t.password.clone());
                Ok((
                    format!("sip:{number}@{}:{}", t.host, t.port),
                    Peer { addr, transport },
                    creds,
                    t.late_offer,
                ))
            }
            DialTarget::Agent { agent_id } => {
                let user = self
                    .config
                    .agent(agent_id)
                    .and_then(|a| a.sip_user.clone())
                    .ok_or(DialResult::Unreachable)?;
                let (uri, peer) = self.ua.lookup(&user).await.ok_or(DialResult::Unreachable)?;
                Ok((uri, peer, None, false))
            }
            DialTarget::Uri { uri } => {
                let (host, port) = uri_host_port(uri).ok_or(DialResult::Failed)?;
                let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or(DialResult::Unreachable)?;
                let peer = Peer {
                    addr,
                    transport: Transport::Udp,
                };
                Ok((uri.clone(), peer, None, false))
            }
            DialTarget::Contact { uri, peer, tcp, .. } => {
                let transport = if *tcp { Transport::Tcp } else { Transport::Udp };
                Ok((
                    uri.clone(),
                    Peer {
                        addr: *peer,
                        transport,
                    },
                    None,
                    false,
                ))
            }
        }
    }
}

/// The host and port (5060 by default) of a `sip:user@host[:port][;params]` URI with a user
/// part, or `None` when it is not one (what a Transfer may call directly).
pub fn uri_host_port(uri: &str) -> Option<(String, u16)> {
    let rest = uri.strip_prefix("sip:")?;
    let (user, hostport) = rest.split_once('@')?;
    let hostport = hostport.split(';').next()?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()%+&=$,?/".contains(&b))
    };
    if !ok(user) || uri.len() > 256 {
        return None;
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, p.parse::<u16>().ok()?),
        _ => (hostport, 5060),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
    valid_host.then(|| (host.to_string(), port))
}

#[async_trait]
impl Dialer for SipDialer {
    async fn dial(&self, call: Dial<'_>) -> Result<Arc<dyn CallLeg>, DialResult> {
        let Dial {
            target,
            caller_id,
            ring_timeout,
            headers,
        } = call;
        let (uri, peer, credentials, late_offer) = self.resolve(target).await?;
        let shared = LegShared::new();
        let m = &self.config.spec.media;
        let media = MediaSession::open(
            self.ua.public_ip,
            (m.rtp_port_min, m.rtp_port_max),
            shared.digits.clone(),
        )
        .await
        .map_err(|_| DialResult::Failed)?;
        let offer = sdp::offer(
            self.ua.public_ip,
            media.local_addr().port(),
            rand::random::<u32>() as u64,
            1,
        );
        let from_user = if caller_id.is_empty() {
            "boomerang".to_string()
        } else {
            caller_id.to_string()
        };
        let request = DialRequest {
            uri,
            peer,
            from_user,
            sdp: offer,
            credentials,
            extra_headers: headers.to_vec(),
        };
        // A late-offer trunk gets no SDP; its 200 offers and the user agent answers.
        let placed = self.ua.dial(request, shared.clone(), late_offer).await;
        let (call_id, mut events) = placed.ok_or(DialResult::Failed)?;
        // Whoever awaits this dial may give up on it (the caller hung up while the agent's
        // phone rang): the call placed must not ring on, nor be answered into nothing.
        let mut abandoned = HangUpOnDrop {
            ua: &self.ua,
            call: Some(call_id.clone()),
        };
        let deadline =
            self.clock.now() + chrono::TimeDelta::from_std(ring_timeout).unwrap_or_default();
        let mut heard = false;
        let dialled = crate::clock::tokio_now();
        let outcome = loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(UacEvent::Progress(_)) if !heard => {
                        self.ua.metrics().post_dial_delay(dialled.elapsed());
                        heard = true;
                    }
                    Some(UacEvent::Progress(_)) => {}
                    Some(UacEvent::Answered(answer)) => break Ok(answer),
                    Some(UacEvent::Failed(code)) => break Err(map_failure(code, heard)),
                    None => break Err(DialResult::Unreachable),
                },
                _ = self.clock.sleep_until(deadline) => {
                    // CANCEL, and a 2xx crossing it is acknowledged and ended with a BYE.
                    self.ua.hang_up(&call_id);
                    // Give the CANCEL a moment to produce the 487.
                    let _ = tokio::time::timeout(Duration::from_secs(2), events.recv()).await;
                    break Err(if heard { DialResult::NoAnswer } else { DialResult::Unreachable });
                }
            }
        };
        abandoned.call = None;
        let result = outcome.as_ref().map(|_| ()).map_err(|r| *r);
        self.ua.metrics().dial_ended(result, dialled.elapsed());
        match outcome {
            Ok(answer) => {
                if let Ok(n) = sdp::parse_answer(&answer) {
                    media.configure(&n);
                }
                let number = match target {
                    DialTarget::Customer { number, .. } => number.clone(),
                    DialTarget::Agent { agent_id } | DialTarget::Contact { agent_id, .. } => {
                        agent_id.clone()
                    }
                    DialTarget::Uri { uri } => uri.clone(),
                };
                let parts = LegParts {
                    info: LegInfo {
                        call_id,
                        ani: number,
                        dnis: caller_id.to_string(),
                        direction: Direction::Outbound,
                    },
                    ua: self.ua.clone(),
                    shared,
                    media,
                    prompts: self.prompts.clone(),
                    clock: self.clock.clone(),
                };
                Ok(SipLeg::new(parts, String::new(), true))
            }
            Err(r) => {
                media.close();
                Err(r)
            }
        }
    }
}

/// Hangs up an outbound call whose dial was dropped before it ended (CANCEL before the answer,
/// BYE after); disarmed by taking `call` once the dial has its outcome.
struct HangUpOnDrop<'a> {
    ua: &'a UaHandle,
    call: Option<String>,
}

impl Drop for HangUpOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            tracing::debug!(call, "dial abandoned: hanging up");
            self.ua.hang_up(&call);
        }
    }
}

/// Final response → dial result (busy 486/600/603, no answer 408/480/487, else failed).
pub fn map_failure(code: u16, heard: bool) -> DialResult {
    match code {
        486 | 600 | 603 => DialResult::Busy,
        480 | 487 => DialResult::NoAnswer,
        408 if heard => DialResult::NoAnswer,
        408 => DialResult::Unreachable,
        _ => DialResult::Failed,
    }
}

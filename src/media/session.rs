//! One RTP session per call leg: a UDP socket on an even port, symmetric RTP (we send to where
//! the peer's packets come from), prompt playback paced at 20 ms, RFC 4733 and in-band DTMF
//! detection into the leg's digit buffer, RFC 4733 sending, and relaying to a bridged session
//! with G.711 transcoding when the two legs use different laws.
//!
//! Pacing: one driver thread (`rtp-pacer-0`; more with [`PacerOptions`]) ticks on an absolute
//! 20 ms grid split into a few slots and sends the due frame of every open session, so
//! thousands of concurrent prompts cost one timer, not one timer task per call (issue 4). It
//! runs at `SCHED_RR` priority when the process may raise it, as media servers run their
//! timers, so busy cores do not delay packets. Sessions register with it when they open and
//! drop out when they close or are dropped. The driver sends with a plain `sendto` on the
//! session's non-blocking socket, so it needs no tokio runtime and keeps its timing when the
//! runtime's workers are busy with signalling. [`Pacing::PerSession`] keeps the former
//! one-interval-task-per-session path for benchmarks (`benches/media_streams.rs`).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::Notify;

use super::dtmf::{DtmfReceiver, TelephoneEvent, ToneDetector, event_packets};
use super::g711::{self, Law};
use super::pacer::FRAME_PERIOD;
use super::prompts::{FRAME_LEN, Frame};
use super::rtp::{
    HEADER_LEN, RTCP_SR, ReceptionStats, RtpPacket, RtpSender, SenderReport, is_rtcp,
    ntp_timestamp, write_sdes_cname,
};
use super::sdp::Negotiated;
use crate::call::LegMedia;
use crate::clock::{Clock, SystemClock};

mod driver;
pub use driver::{PacerOptions, PacerStats, set_pacer_options, take_pacer_stats};

/// Key presses heard on a leg, from RTP events, in-band tones or SIP INFO, in order; at most
/// [`DigitBuffer::CAPACITY`] wait to be read, the oldest dropped first.
#[derive(Debug, Default)]
pub struct DigitBuffer {
    keys: Mutex<VecDeque<char>>,
    /// Woken on every new key.
    pub notify: Notify,
}

impl DigitBuffer {
    /// Keys kept unread: far more than anyone types ahead, and a bound on what a peer sending
    /// keys no flow reads (an INFO or RTP event flood during a long prompt) can hold.
    pub const CAPACITY: usize = 128;

    /// Adds a key (dropping the oldest unread one when full).
    pub fn push(&self, key: char) {
        {
            let mut keys = self.keys.lock();
            if keys.len() >= Self::CAPACITY {
                keys.pop_front();
            }
            keys.push_back(key);
        }
        self.notify.notify_waiters();
    }

    /// Takes the oldest key.
    pub fn pop(&self) -> Option<char> {
        self.keys.lock().pop_front()
    }

    /// The oldest key, left in place.
    pub fn peek(&self) -> Option<char> {
        self.keys.lock().front().copied()
    }

    /// Drops every key.
    pub fn clear(&self) {
        self.keys.lock().clear();
    }
}

struct Playback {
    id: u64,
    parts: Vec<Arc<[Frame]>>,
    part: usize,
    frame: usize,
    looped: bool,
}

struct State {
    remote: Option<SocketAddr>,
    latched: bool,
    law: Law,
    payload_type: u8,
    event_pt: Option<u8>,
    sender: RtpSender,
    playing: Option<Playback>,
    pending_events: VecDeque<(u32, Vec<u8>)>,
    peer: Option<Weak<dyn LegMedia>>,
    dtmf: DtmfReceiver,
    /// The last telephone-event packet ended its event.
    dtmf_ended: bool,
    tones: ToneDetector,
    /// False while the peer holds the call (it offered sendonly or inactive): nothing is
    /// sent, but playback and the RTP clock keep running.
    sending: bool,
    /// RTCP on the RTP port (RFC 5761) rather than port + 1.
    rtcp_mux: bool,
    /// Where the peer's RTCP comes from (symmetric RTCP), once it has sent some.
    rtcp_remote: Option<SocketAddr>,
    /// The stream we receive, for our reports' report block.
    reception: ReceptionStats,
    /// Pacing ticks until the next sender report.
    sr_countdown: u32,
    /// Where received audio also goes (a recording, answering-machine detection).
    tap: Option<tokio::sync::mpsc::Sender<Vec<i16>>>,
}

/// Pacing ticks (20 ms) between two RTCP sender reports: 5 s, RFC 3550's minimum interval.
const SR_TICKS: u32 = 250;
/// G.711's RTP clock rate.
const CLOCK_RATE: u32 = 8000;
/// Received frames a listener may fall behind by (5 s).
const TAP_FRAMES: usize = 250;

/// How sessions opened from now on are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// One driver thread sends the frames of every session every 20 ms (the default).
    Shared,
    /// One tokio interval task per session (the former design; kept for benchmarks).
    PerSession,
}

static PACING: AtomicU8 = AtomicU8::new(0);

/// Chooses the pacing of sessions opened after this call (process-wide; for benchmarks).
pub fn set_pacing(p: Pacing) {
    PACING.store(p as u8, Ordering::Relaxed);
}

/// The pacing new sessions get.
pub fn pacing() -> Pacing {
    if PACING.load(Ordering::Relaxed) == Pacing::PerSession as u8 {
        Pacing::PerSession
    } else {
        Pacing::Shared
    }
}

/// An RTP session.
pub struct MediaSession {
    socket: Arc<UdpSocket>,
    /// RTCP on the port above the RTP port, when it could be bound.
    rtcp: Option<Arc<UdpSocket>>,
    /// Origin of arrival times in RTP timestamp units (jitter, report delays).
    epoch: Instant,
    local: SocketAddr,
    state: Mutex<State>,
    digits: Arc<DigitBuffer>,
    played: Notify,
    finished: AtomicU64,
    next_id: AtomicU64,
    closed: AtomicBool,
    packets_sent: AtomicU64,
    packets_received: AtomicU64,
    rtcp_sent: AtomicU64,
    rtcp_received: AtomicU64,
}

/// Binds non-blocking UDP sockets for RTP on an even port of `range` at `ip` and for RTCP
/// on the odd port above it (RFC 3550 §11); a pair whose RTCP port is taken is skipped. With
/// an empty range (tests) RTP takes any port and RTCP the next one if it is free.
fn bind_pair(
    ip: IpAddr,
    range: (u16, u16),
) -> io::Result<(std::net::UdpSocket, Option<std::net::UdpSocket>)> {
    let bind = |port| {
        let s = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
        s.set_nonblocking(true)?;
        Ok::<_, io::Error>(s)
    };
    let (lo, hi) = (range.0.max(1024) & !1, range.1);
    if lo >= hi {
        let rtp = bind(0)?;
        let rtcp = rtp
            .local_addr()
            .ok()
            .and_then(|a| a.port().checked_add(1))
            .and_then(|p| bind(p).ok());
        return Ok((rtp, rtcp));
    }
    let span = u32::from((hi - lo) / 2).max(1);
    let start = rand::random::<u32>() % span;
    for i in 0..span.min(512) {
        let port = lo + (((start + i) % span) * 2) as u16;
        if let Ok(s) = bind(port)
            && let Ok(c) = bind(port.saturating_add(1))
        {
            return Ok((s, Some(c)));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free RTP port in {}-{}", range.0, range.1),
    ))
}

impl Drop for MediaSession {
    /// Reports the session's figures to `/metrics` (its ports are freed with it).
    fn drop(&mut self) {
        let state = self.state.get_mut();
        let block = state.reception.report_block(0, CLOCK_RATE);
        crate::ops::media_metrics::media().closed(crate::ops::media_metrics::SessionFigures {
            ports: 1 + u8::from(self.rtcp.is_some()),
            received: *self.packets_received.get_mut(),
            sent: *self.packets_sent.get_mut(),
            lost: block.map_or(0, |b| b.cumulative_lost.max(0) as u64),
            jitter_seconds: block.map(|b| f64::from(b.jitter) / f64::from(CLOCK_RATE)),
        });
    }
}

impl MediaSession {
    /// Opens a session on `ip` with a port from `range`, and starts its send and receive tasks.
    pub async fn open(
        ip: IpAddr,
        range: (u16, u16),
        digits: Arc<DigitBuffer>,
    ) -> io::Result<Arc<Self>> {
        let (rtp, rtcp) = bind_pair(ip, range)?;
        let socket = Arc::new(UdpSocket::from_std(rtp)?);
        let rtcp = match rtcp {
            Some(s) => Some(Arc::new(UdpSocket::from_std(s)?)),
            None => None,
        };
        let local = socket.local_addr()?;
        crate::ops::media_metrics::media().opened(1 + u8::from(rtcp.is_some()));
        let session = Arc::new(MediaSession {
            socket,
            rtcp: rtcp.clone(),
            epoch: crate::clock::monotonic_now(),
            local,
            state: Mutex::new(State {
                remote: None,
                latched: false,
                law: Law::Ulaw,
                payload_type: 0,
                event_pt: None,
                sender: RtpSender::new(0),
                playing: None,
                pending_events: VecDeque::new(),
                peer: None,
                dtmf: DtmfReceiver::new(),
                dtmf_ended: false,
                tones: ToneDetector::new(),
                sending: true,
                rtcp_mux: false,
                rtcp_remote: None,
                reception: ReceptionStats::default(),
                // The first report after 1 to 5 s, so sessions opened together spread theirs.
                sr_countdown: 50 + rand::random::<u32>() % (SR_TICKS - 50),
                tap: None,
            }),
            digits,
            played: Notify::new(),
            finished: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            packets_sent: AtomicU64::new(0),
            packets_received: AtomicU64::new(0),
            rtcp_sent: AtomicU64::new(0),
            rtcp_received: AtomicU64::new(0),
        });
        tokio::spawn(receive_loop(
            Arc::downgrade(&session),
            session.socket.clone(),
            false,
        ));
        if let Some(rtcp) = rtcp {
            tokio::spawn(receive_loop(Arc::downgrade(&session), rtcp, true));
        }
        match pacing() {
            Pacing::PerSession => {
                tokio::spawn(send_loop(Arc::downgrade(&session)));
            }
            Pacing::Shared => {
                if !driver::register(Arc::downgrade(&session)) {
                    // No pacing thread could be started: pace this session on its own.
                    tokio::spawn(send_loop(Arc::downgrade(&session)));
                }
            }
        }
        Ok(session)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// The local RTP address (for SDP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Applies a negotiated SDP: codec, telephone-event type and where to send (until the
    /// peer's first packet tells us its real address).
    pub fn configure(&self, n: &Negotiated) {
        let mut s = self.lock();
        if !s.latched {
            s.remote = (!n.remote.ip().is_unspecified()).then_some(n.remote);
        }
        if s.law != n.codec || s.payload_type != n.payload_type {
            s.sender = RtpSender::new(n.payload_type);
        }
        s.law = n.codec;
        s.payload_type = n.payload_type;
        s.event_pt = n.telephone_event;
        s.rtcp_mux = n.rtcp_mux;
    }

    /// The local RTCP address, when it is not multiplexed on the RTP port.
    pub fn rtcp_addr(&self) -> Option<SocketAddr> {
        self.rtcp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// RTCP packets sent and received (compound datagrams), for tests and statistics.
    pub fn rtcp_counts(&self) -> (u64, u64) {
        (
            self.rtcp_sent.load(Ordering::Relaxed),
            self.rtcp_received.load(Ordering::Relaxed),
        )
    }

    /// Now, in RTP timestamp units since the session opened.
    fn arrival(&self) -> u32 {
        let us = self.epoch.elapsed().as_micros();
        (us * u128::from(CLOCK_RATE) / 1_000_000) as u32
    }

    /// A peer's RTCP datagram (compound packet): its sender report is kept for our report
    /// block's LSR/DLSR; the rest is only counted. Never touches the RTP path.
    fn on_rtcp(&self, from: SocketAddr, data: &[u8], muxed: bool) {
        self.rtcp_received.fetch_add(1, Ordering::Relaxed);
        let arrival = self.arrival();
        let mut s = self.lock();
        if !muxed {
            s.rtcp_remote = Some(from);
        }
        let mut rest = data;
        while rest.len() >= 4 && is_rtcp(rest) {
            let len = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
            if len > rest.len() {
                break;
            }
            if rest[1] == RTCP_SR
                && let Ok(sr) = SenderReport::parse(&rest[..len])
            {
                s.reception.on_sender_report(sr.ntp_timestamp, arrival);
            }
            rest = &rest[len..];
        }
    }

    /// Writes our RTCP compound packet (SR + SDES CNAME) into `out` and says where it goes
    /// and whether on the RTP port (multiplexed).
    fn sender_report(
        &self,
        s: &mut State,
        to: SocketAddr,
        out: &mut Vec<u8>,
    ) -> Option<(SocketAddr, bool)> {
        let (packet_count, octet_count) = s.sender.counts();
        let report = SenderReport {
            ssrc: s.sender.ssrc(),
            ntp_timestamp: ntp_timestamp(SystemClock.now()),
            // The frame sent in this tick is the one playing out now.
            rtp_timestamp: s.sender.timestamp().wrapping_sub(FRAME_LEN as u32),
            packet_count,
            octet_count,
            reports: s
                .reception
                .report_block(self.arrival(), CLOCK_RATE)
                .into_iter()
                .collect(),
        };
        report.write_to(out).ok()?;
        write_sdes_cname(
            s.sender.ssrc(),
            &format!("boomerang@{}", self.local.ip()),
            out,
        );
        if s.rtcp_mux {
            Some((to, true))
        } else {
            self.rtcp.as_ref()?;
            let to = s
                .rtcp_remote
                .unwrap_or_else(|| SocketAddr::new(to.ip(), to.port().saturating_add(1)));
            Some((to, false))
        }
    }

    /// Applies a new offer inside the call (re-INVITE or UPDATE): where to send, and whether
    /// to send at all. On hold we stop sending RTP; a prompt or hold music goes on playing to
    /// nobody, so the flow's timing is unchanged, and on resume the stream continues where the
    /// playback is then, with the marker bit and a timestamp that counted the silence.
    pub fn update_remote(&self, n: &Negotiated) {
        let mut s = self.lock();
        if !s.latched && !n.remote.ip().is_unspecified() {
            s.remote = Some(n.remote);
        }
        let sending = n.we_send();
        if sending && !s.sending {
            s.sender.start_talkspurt();
        }
        s.sending = sending;
    }

    /// False while the peer holds the call.
    pub fn is_sending(&self) -> bool {
        self.lock().sending
    }

    /// The codec in use.
    pub fn law(&self) -> Law {
        self.lock().law
    }

    /// Starts playing frames (replacing what plays); returns an id for [`Self::wait_played`].
    pub fn play(&self, parts: Vec<Arc<[Frame]>>, looped: bool) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut s = self.lock();
        s.sender.start_talkspurt();
        s.playing = Some(Playback {
            id,
            parts,
            part: 0,
            frame: 0,
            looped,
        });
        id
    }

    /// Stops playback; waiters of the current play are woken.
    pub fn stop(&self) {
        let id = self.lock().playing.take().map(|p| p.id);
        if let Some(id) = id {
            self.finish(id);
        }
    }

    fn finish(&self, id: u64) {
        self.finished.fetch_max(id, Ordering::AcqRel);
        self.played.notify_waiters();
    }

    /// Waits until play `id` has ended (played out or stopped).
    pub async fn wait_played(&self, id: u64) {
        loop {
            let n = self.played.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.finished.load(Ordering::Acquire) >= id || self.closed.load(Ordering::Acquire) {
                return;
            }
            n.await;
        }
    }

    /// Queues RFC 4733 packets for `digits` (sent by the pacing task).
    pub fn send_digits(&self, digits: &str) {
        let mut s = self.lock();
        let Some(pt) = s.event_pt else {
            return;
        };
        for d in digits.chars() {
            s.sender.skip(800);
            let ts = s.sender.timestamp();
            if let Ok(packets) = event_packets(d, ts, 800, 10) {
                for p in packets {
                    let mut buf = Vec::with_capacity(16);
                    s.sender.event_packet(pt, &p, &mut buf);
                    s.pending_events.push_back((p.send_offset, buf));
                }
            }
        }
    }

    /// Relays this session's received audio to `other` (and back, when both are bridged).
    pub fn bridge_to(&self, other: &Arc<MediaSession>) {
        let other: Arc<dyn LegMedia> = other.clone();
        self.lock().peer = Some(Arc::downgrade(&other));
    }

    /// Received audio from now on, 20 ms frames of linear samples, until the receiver is
    /// dropped (a slow reader loses frames rather than holding the receive task).
    pub fn listen(&self) -> tokio::sync::mpsc::Receiver<Vec<i16>> {
        let (tx, rx) = tokio::sync::mpsc::channel(TAP_FRAMES);
        self.lock().tap = Some(tx);
        rx
    }

    /// Stops relaying.
    pub fn unbridge(&self) {
        self.lock().peer = None;
    }

    /// Stops the tasks and frees the port.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.played.notify_waiters();
    }

    /// Packets sent and received, for tests and statistics.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.packets_sent.load(Ordering::Relaxed),
            self.packets_received.load(Ordering::Relaxed),
        )
    }

    /// Sends straight on the (non-blocking) socket, bypassing tokio's readiness tracking, so
    /// the pacing thread can send without a runtime context; a full send buffer drops the
    /// packet as a real-time stream should.
    fn send_raw(&self, to: SocketAddr, packet: &[u8]) {
        let sent = socket2::SockRef::from(&*self.socket).send_to(packet, &to.into());
        if sent.is_ok() {
            self.packets_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends an RTCP datagram: on the RTP socket when multiplexed, else on the RTCP socket.
    fn send_rtcp(&self, to: SocketAddr, muxed: bool, packet: &[u8]) {
        let socket = if muxed {
            Some(&self.socket)
        } else {
            self.rtcp.as_ref()
        };
        if let Some(socket) = socket
            && socket2::SockRef::from(&**socket)
                .send_to(packet, &to.into())
                .is_ok()
        {
            self.rtcp_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends one 20 ms frame of audio from a bridged peer, transcoding between laws.
    fn relay_in(&self, from_law: Law, payload: &[u8]) {
        let mut s = self.lock();
        if s.playing.is_some() {
            return;
        }
        if !s.sending {
            s.sender.skip(payload.len() as u32);
            return;
        }
        let Some(to) = s.remote else { return };
        let law = s.law;
        let data: Vec<u8> = if from_law == law {
            payload.to_vec()
        } else {
            g711::encode_frame(law, &g711::decode_frame(from_law, payload))
        };
        let mut buf = Vec::with_capacity(12 + data.len());
        s.sender.audio_packet(&data, data.len() as u32, &mut buf);
        drop(s);
        self.send_raw(to, &buf);
    }

    fn on_datagram(&self, from: SocketAddr, data: &[u8]) {
        if is_rtcp(data) {
            self.on_rtcp(from, data, true);
            return;
        }
        let Ok(p) = RtpPacket::parse(data) else {
            return;
        };
        self.packets_received.fetch_add(1, Ordering::Relaxed);
        let arrival = self.arrival();
        let mut s = self.lock();
        s.reception.on_packet(&p.header, arrival);
        if !s.latched {
            s.remote = Some(from);
            s.latched = true;
        }
        let pt = p.header.payload_type;
        if Some(pt) == s.event_pt {
            // A marked packet after an ended event starts a new press even when the sender
            // reuses the timestamp (some replay tools and phones do).
            if p.header.marker && s.dtmf_ended {
                s.dtmf = DtmfReceiver::new();
            }
            s.dtmf_ended = TelephoneEvent::parse(p.payload).is_ok_and(|e| e.end);
            if let Ok(Some(d)) = s.dtmf.push(p.header.timestamp, p.payload) {
                drop(s);
                self.digits.push(d);
            }
            return;
        }
        if pt != s.payload_type {
            return;
        }
        let law = s.law;
        let samples = g711::decode_frame(law, p.payload);
        let keys = s.tones.push(&samples);
        let peer = s.peer.as_ref().and_then(Weak::upgrade);
        if let Some(tap) = &s.tap
            && let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tap.try_send(samples)
        {
            s.tap = None;
        }
        drop(s);
        for k in keys {
            self.digits.push(k);
        }
        if let Some(peer) = peer {
            peer.relay_in(law, p.payload);
        }
    }

    /// One pacing tick: the next prompt frame and any due DTMF event packets. `scratch` is
    /// the caller's reusable packet buffer.
    fn tick(&self, scratch: &mut Vec<u8>) {
        scratch.clear();
        let mut s = self.lock();
        let Some(to) = s.remote else { return };
        // RFC 4733 packets go out every 20 ms in their own order.
        let event = s.pending_events.pop_front().map(|(_, pkt)| pkt);
        let mut done = None;
        let bridged = s.peer.is_some();
        let law = s.law;
        let frame: Option<Frame> = match s.playing.as_mut() {
            Some(p) => {
                while p.part < p.parts.len() && p.frame >= p.parts[p.part].len() {
                    p.part += 1;
                    p.frame = 0;
                }
                if p.part >= p.parts.len() && p.looped && !p.parts.is_empty() {
                    p.part = 0;
                    p.frame = 0;
                }
                match p.parts.get(p.part).and_then(|f| f.get(p.frame)) {
                    Some(f) => {
                        p.frame += 1;
                        Some(*f)
                    }
                    None => {
                        done = Some(p.id);
                        None
                    }
                }
            }
            None if bridged => None,
            None => Some([law.silence(); FRAME_LEN]),
        };
        if done.is_some() {
            s.playing = None;
        }
        let event = if s.sending {
            if let Some(f) = frame {
                s.sender.audio_packet(&f, FRAME_LEN as u32, scratch);
            }
            event
        } else {
            // Held: the frame is consumed unsent and the RTP clock moves on.
            if frame.is_some() {
                s.sender.skip(FRAME_LEN as u32);
            }
            None
        };
        s.sr_countdown = s.sr_countdown.saturating_sub(1);
        let mut rtcp = Vec::new();
        let rtcp_to = if s.sr_countdown == 0 {
            s.sr_countdown = SR_TICKS;
            self.sender_report(&mut s, to, &mut rtcp)
        } else {
            None
        };
        drop(s);
        if let Some(p) = event {
            self.send_raw(to, &p);
        }
        if !scratch.is_empty() {
            self.send_raw(to, scratch);
        }
        if let Some((rtcp_to, muxed)) = rtcp_to {
            self.send_rtcp(rtcp_to, muxed, &rtcp);
        }
        if let Some(id) = done {
            self.finish(id);
        }
    }
}

async fn receive_loop(session: Weak<MediaSession>, socket: Arc<UdpSocket>, rtcp: bool) {
    let mut buf = vec![0u8; 2048];
    loop {
        let got = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await;
        let Some(s) = session.upgrade() else { return };
        if s.closed.load(Ordering::Acquire) {
            return;
        }
        if let Ok(Ok((n, from))) = got {
            if rtcp {
                s.on_rtcp(from, &buf[..n], false);
            } else {
                s.on_datagram(from, &buf[..n]);
            }
        }
    }
}

/// The former pacing: one tokio interval task per session ([`Pacing::PerSession`]).
async fn send_loop(session: Weak<MediaSession>) {
    let mut tick = tokio::time::interval(FRAME_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut scratch = Vec::with_capacity(HEADER_LEN + FRAME_LEN);
    loop {
        tick.tick().await;
        let Some(s) = session.upgrade() else { return };
        if s.closed.load(Ordering::Acquire) {
            return;
        }
        s.tick(&mut scratch);
    }
}

impl LegMedia for MediaSession {
    fn stop(&self) {
        MediaSession::stop(self);
    }

    fn relay_to(&self, other: &Arc<dyn LegMedia>) {
        self.lock().peer = Some(Arc::downgrade(other));
    }

    fn unbridge(&self) {
        MediaSession::unbridge(self);
    }

    fn relay_in(&self, law: Law, payload: &[u8]) {
        MediaSession::relay_in(self, law, payload);
    }
}

/// Frames of silence lasting `d` in `law`. Flows name a few fixed silences, so each length is
/// built once and shared: a 60 s silence is 480 KB, and building it per call was a large part
/// of a call's set-up cost at thousands of calls per second.
pub fn silence_frames(law: Law, d: Duration) -> Arc<[Frame]> {
    /// Distinct lengths kept; past this, silences are built per call as before.
    const CACHED: usize = 32;
    type Cache = Mutex<Vec<((Law, usize), Arc<[Frame]>)>>;
    static SHARED: OnceLock<Cache> = OnceLock::new();
    let n = (d.as_millis() / 20).max(1) as usize;
    let key = (law, n);
    let cache = SHARED.get_or_init(|| Mutex::new(Vec::new()));
    let mut cache = cache.lock();
    if let Some((_, frames)) = cache.iter().find(|(k, _)| *k == key) {
        return frames.clone();
    }
    let frames: Arc<[Frame]> = vec![[law.silence(); FRAME_LEN]; n].into();
    if cache.len() < CACHED {
        cache.push((key, frames.clone()));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silence_length_is_built_once_and_shared() {
        let a = silence_frames(Law::Alaw, Duration::from_millis(60_000));
        let b = silence_frames(Law::Alaw, Duration::from_millis(60_000));
        let u = silence_frames(Law::Ulaw, Duration::from_millis(60_000));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &u), "one per law");
        assert_eq!(a.len(), 3000);
        assert!(
            a.iter()
                .all(|f| f.iter().all(|x| *x == Law::Alaw.silence()))
        );
        assert!(
            u.iter()
                .all(|f| f.iter().all(|x| *x == Law::Ulaw.silence()))
        );
    }
    use crate::media::rtp::RtpSender;
    use crate::media::sdp::MediaDirection;
    use std::net::Ipv4Addr;

    fn negotiated(remote: SocketAddr) -> Negotiated {
        Negotiated {
            remote,
            codec: Law::Ulaw,
            payload_type: 0,
            telephone_event: Some(101),
            ptime: 20,
            direction: MediaDirection::SendRecv,
            rtcp_mux: false,
        }
    }

    #[test]
    fn keys_no_flow_reads_are_bounded_keeping_the_newest() {
        // A peer flooding keys (INFO or RFC 4733 events) during a prompt nobody reads them in.
        let digits = DigitBuffer::default();
        for _ in 0..10_000 {
            digits.push('1');
        }
        digits.push('#');
        let mut kept = Vec::new();
        while let Some(k) = digits.pop() {
            kept.push(k);
        }
        assert_eq!(kept.len(), DigitBuffer::CAPACITY);
        assert_eq!(kept.last(), Some(&'#'));
    }

    #[tokio::test]
    async fn plays_frames_at_twenty_ms_and_hears_rfc4733_digits_from_the_peer() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (da, db) = (
            Arc::new(DigitBuffer::default()),
            Arc::new(DigitBuffer::default()),
        );
        let a = MediaSession::open(lo, (40000, 40100), da.clone())
            .await
            .unwrap();
        let b = MediaSession::open(lo, (40100, 40200), db.clone())
            .await
            .unwrap();
        assert_eq!(a.local_addr().port() % 2, 0);
        a.configure(&negotiated(b.local_addr()));
        b.configure(&negotiated(a.local_addr()));
        let frames = silence_frames(Law::Ulaw, Duration::from_millis(200));
        let started = crate::clock::monotonic_now();
        let id = a.play(vec![frames], false);
        a.wait_played(id).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(180), "{took:?}");
        b.send_digits("5#");
        for _ in 0..100 {
            if da.peek().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(da.pop(), Some('5'));
        assert_eq!(da.pop(), Some('#'));
        assert_eq!(da.pop(), None);
        assert!(b.counts().1 >= 9, "{:?}", b.counts());
        a.close();
        b.close();
    }

    /// Binds an even RTP port and the RTCP port above it on loopback.
    async fn receiver_pair() -> (tokio::net::UdpSocket, tokio::net::UdpSocket) {
        loop {
            let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = rtp.local_addr().unwrap().port();
            if port % 2 == 0
                && let Ok(rtcp) = tokio::net::UdpSocket::bind(("127.0.0.1", port + 1)).await
            {
                return (rtp, rtcp);
            }
        }
    }

    /// Reads RTP (and, muxed, RTCP) on `rtp` and RTCP on `rtcp` until a second sender report
    /// arrives; returns the reports, each with the RTP packets seen before it (count and last
    /// header), the SDES packet type that followed each SR, and the wall clock on arrival.
    async fn read_reports(
        rtp: &tokio::net::UdpSocket,
        rtcp: &tokio::net::UdpSocket,
    ) -> Vec<(SenderReport, u32, crate::media::rtp::RtpHeader, u8, u64)> {
        let (mut a, mut b) = ([0u8; 512], [0u8; 512]);
        let mut seen = 0u32;
        let mut last = crate::media::rtp::RtpHeader::default();
        let mut reports = Vec::new();
        let until = crate::clock::tokio_now() + Duration::from_secs(15);
        while reports.len() < 2 {
            let datagram = tokio::select! {
                r = rtp.recv_from(&mut a) => a[..r.unwrap().0].to_vec(),
                r = rtcp.recv_from(&mut b) => b[..r.unwrap().0].to_vec(),
                _ = tokio::time::sleep_until(until) => panic!("only {} reports", reports.len()),
            };
            if is_rtcp(&datagram) {
                let sr = SenderReport::parse(&datagram).unwrap();
                let sr_len = 4 * (usize::from(u16::from_be_bytes([datagram[2], datagram[3]])) + 1);
                let next = datagram.get(sr_len + 1).copied().unwrap_or(0);
                let wall = ntp_timestamp(SystemClock.now());
                reports.push((sr, seen, last.clone(), next, wall));
            } else {
                last = RtpPacket::parse(&datagram).unwrap().header;
                seen += 1;
            }
        }
        reports
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_rtcp_sender_reports_on_port_plus_one_or_muxed_and_hears_the_peers() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (rtp, rtcp) = receiver_pair().await;
        let (mux_rtp, mux_unused) = receiver_pair().await;
        let plain = MediaSession::open(lo, (0, 0), Arc::new(DigitBuffer::default()))
            .await
            .unwrap();
        let muxed = MediaSession::open(lo, (0, 0), Arc::new(DigitBuffer::default()))
            .await
            .unwrap();
        plain.configure(&negotiated(rtp.local_addr().unwrap()));
        muxed.configure(&Negotiated {
            rtcp_mux: true,
            ..negotiated(mux_rtp.local_addr().unwrap())
        });
        let frames = silence_frames(Law::Ulaw, Duration::from_secs(1));
        plain.play(vec![frames.clone()], true);
        muxed.play(vec![frames], true);
        // The peer talks to `plain`: RTP, an SR on the RTCP port and one muxed on the RTP port.
        let to_rtcp = plain.rtcp_addr().expect("an RTCP port");
        assert_eq!(to_rtcp.port(), plain.local_addr().port() + 1);
        let mut peer = RtpSender::with_initial(0, 4242, 100, 0);
        let mut buf = Vec::new();
        for _ in 0..10 {
            buf.clear();
            peer.audio_packet(&[0xFF; 160], 160, &mut buf);
            rtp.send_to(&buf, plain.local_addr()).await.unwrap();
        }
        let peer_sr = SenderReport {
            ssrc: 4242,
            ntp_timestamp: 0xAAAA_BBBB_CCCC_DDDD,
            ..SenderReport::default()
        };
        buf.clear();
        peer_sr.write_to(&mut buf).unwrap();
        rtcp.send_to(&buf, to_rtcp).await.unwrap();
        rtp.send_to(&buf, plain.local_addr()).await.unwrap();

        let (plain_reports, mux_reports) = tokio::join!(
            read_reports(&rtp, &rtcp),
            read_reports(&mux_rtp, &mux_unused)
        );
        for (reports, session) in [(&plain_reports, &plain), (&mux_reports, &muxed)] {
            for (sr, seen, last, next, wall) in reports {
                assert_eq!(sr.ssrc, last.ssrc);
                // Counts: what was sent up to the report (the receiver may lag by a packet).
                assert!(
                    sr.packet_count >= *seen && sr.packet_count <= seen + 2,
                    "{sr:?} {seen}"
                );
                assert_eq!(sr.octet_count, sr.packet_count * 160);
                // The RTP time of the report is that of the packet sent in the same tick.
                let ahead = sr.rtp_timestamp.wrapping_sub(last.timestamp);
                assert!(ahead <= 2 * 160, "{ahead}");
                let diff = (wall >> 32).abs_diff(sr.ntp_timestamp >> 32);
                assert!(
                    diff <= 1,
                    "NTP {} vs {}",
                    sr.ntp_timestamp >> 32,
                    wall >> 32
                );
                assert_eq!(*next, crate::media::rtp::RTCP_SDES);
            }
            // About 5 s apart, in RTP time and in wall-clock time.
            let (first, second) = (&reports[0].0, &reports[1].0);
            let rtp_gap = second.rtp_timestamp.wrapping_sub(first.rtp_timestamp);
            assert!((39_000..=41_000).contains(&rtp_gap), "{rtp_gap}");
            let ntp_gap_ms = ((second.ntp_timestamp - first.ntp_timestamp) * 1000) >> 32;
            assert!((4_500..=6_000).contains(&ntp_gap_ms), "{ntp_gap_ms}");
            session.close();
        }
        // The peer's RTCP was heard on both ports and did not count as RTP.
        assert_eq!(plain.rtcp_counts().1, 2);
        assert_eq!(plain.counts().1, 10);
        // The report block describes the peer's stream and its last SR.
        let block = plain_reports[1].0.reports[0];
        assert_eq!(block.ssrc, 4242);
        assert_eq!(block.highest_sequence, 109);
        assert_eq!(block.cumulative_lost, 0);
        assert_eq!(block.last_sr, 0xBBBB_CCCC);
        assert!(block.delay_since_last_sr > 0);
        assert!(mux_reports[0].0.reports.is_empty());
    }

    #[tokio::test]
    async fn the_shared_pacer_keeps_many_sessions_in_sequence_and_forgets_closed_ones() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let receiver = tokio::net::UdpSocket::bind((lo, 0)).await.unwrap();
        let to = receiver.local_addr().unwrap();
        let mut sessions = Vec::new();
        for _ in 0..20 {
            let s = MediaSession::open(lo, (0, 0), Arc::new(DigitBuffer::default()))
                .await
                .unwrap();
            s.configure(&negotiated(to));
            s.play(
                vec![silence_frames(Law::Ulaw, Duration::from_secs(5))],
                true,
            );
            sessions.push(s);
        }
        // Sequence numbers per SSRC arrive without gaps (read as they come: the socket's
        // buffer would overflow otherwise).
        let mut last: std::collections::HashMap<u32, u16> = Default::default();
        let mut buf = [0u8; 512];
        let until = crate::clock::tokio_now() + Duration::from_millis(300);
        while let Ok(Ok((n, _))) =
            tokio::time::timeout_at(until, receiver.recv_from(&mut buf)).await
        {
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            if let Some(prev) = last.insert(p.header.ssrc, p.header.sequence) {
                assert_eq!(p.header.sequence, prev.wrapping_add(1));
            }
        }
        // Every session sent about 15 frames, one every 20 ms.
        for s in &sessions {
            let sent = s.counts().0;
            assert!((8..=22).contains(&sent), "{sent}");
        }
        assert_eq!(last.len(), 20);
        // A closed session stops; a dropped one is let go of by the driver.
        let closed = sessions.pop().unwrap();
        closed.close();
        let weak = Arc::downgrade(&sessions.pop().unwrap());
        tokio::time::sleep(Duration::from_millis(60)).await;
        let before = closed.counts().0;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(closed.counts().0, before);
        // (The driver upgrades its weak reference for a moment on each tick.)
        for _ in 0..50 {
            if weak.upgrade().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(weak.upgrade().is_none());
        for s in &sessions {
            s.close();
        }
    }
}

//! Media figures: sessions and ports in use, RTP packets, loss and jitter. Media sessions are
//! opened deep in the SIP legs, which hold no engine handle, so these are process-wide atomics
//! (every engine's registry shows the same ones — one engine per process in production); the
//! media code reports a session's opening and its end with one call each.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Process-wide media figures.
#[derive(Debug)]
pub struct MediaMetrics {
    sessions: Gauge,
    ports: Gauge,
    packets_received: Counter,
    packets_sent: Counter,
    packets_lost: Counter,
    jitter: Histogram,
}

/// What a session counted over its life, reported when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionFigures {
    /// UDP ports it held (RTP, and RTCP when bound).
    pub ports: u8,
    /// RTP packets received.
    pub received: u64,
    /// RTP packets sent.
    pub sent: u64,
    /// Packets lost in the received stream (RFC 3550 cumulative loss, 0 when negative).
    pub lost: u64,
    /// Interarrival jitter of the received stream at the end, in seconds (none without RTP).
    pub jitter_seconds: Option<f64>,
}

static MEDIA: LazyLock<MediaMetrics> = LazyLock::new(|| MediaMetrics {
    sessions: Gauge::default(),
    ports: Gauge::default(),
    packets_received: Counter::default(),
    packets_sent: Counter::default(),
    packets_lost: Counter::default(),
    jitter: Histogram::new([0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2]),
});

/// The process's media figures.
pub fn media() -> &'static MediaMetrics {
    &MEDIA
}

impl MediaMetrics {
    /// A session opened holding `ports` UDP ports.
    pub fn opened(&self, ports: u8) {
        self.sessions.inc();
        self.ports.inc_by(i64::from(ports));
    }

    /// A session ended: its ports are free and its packets counted.
    pub fn closed(&self, f: SessionFigures) {
        self.sessions.dec();
        self.ports.dec_by(i64::from(f.ports));
        self.packets_received.inc_by(f.received);
        self.packets_sent.inc_by(f.sent);
        self.packets_lost.inc_by(f.lost);
        if let Some(j) = f.jitter_seconds {
            self.jitter.observe(j);
        }
    }

    /// Adds these figures to an engine's registry.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "media_sessions",
            "RTP media sessions open",
            self.sessions.clone(),
        );
        r.register(
            "media_ports_in_use",
            "UDP ports held by media sessions (RTP and RTCP)",
            self.ports.clone(),
        );
        r.register(
            "rtp_packets_received",
            "RTP packets received, counted when their session ends",
            self.packets_received.clone(),
        );
        r.register(
            "rtp_packets_sent",
            "RTP packets sent, counted when their session ends",
            self.packets_sent.clone(),
        );
        r.register(
            "rtp_packets_lost",
            "RTP packets lost in received streams (RFC 3550), counted when their session ends",
            self.packets_lost.clone(),
        );
        r.register(
            "rtp_jitter_seconds",
            "Interarrival jitter of a received stream at its session's end",
            self.jitter.clone(),
        );
    }
}

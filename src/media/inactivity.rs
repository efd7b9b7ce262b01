//! RTP inactivity: a caller that stops sending media (a crashed phone, a NAT binding gone)
//! would otherwise hold its call, RTP port and flow until some far-off timeout. The watch
//! counts one-second ticks without a new packet while the call is answered and not on hold.

/// Counts silent seconds of a call's received RTP; pure, driven by a once-a-second tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpWatch {
    timeout_ticks: u32,
    idle_ticks: u32,
    last_count: u64,
}

impl RtpWatch {
    /// A watch that fires after `timeout_ticks` ticks without a new packet.
    pub fn new(timeout_ticks: u32) -> Self {
        RtpWatch {
            timeout_ticks: timeout_ticks.max(1),
            idle_ticks: 0,
            last_count: 0,
        }
    }

    /// One tick: `received` is the session's packet count so far, `watched` false while the
    /// call is not answered yet or is held (sendonly/inactive: no RTP is due). True when the
    /// timeout is reached and the call should end.
    pub fn tick(&mut self, received: u64, watched: bool) -> bool {
        if received != self.last_count || !watched {
            self.last_count = received;
            self.idle_ticks = 0;
            return false;
        }
        self.idle_ticks += 1;
        self.idle_ticks >= self.timeout_ticks
    }

    /// Seconds without media so far.
    pub fn idle_ticks(&self) -> u32 {
        self.idle_ticks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_after_the_timeout_without_packets_only() {
        let mut w = RtpWatch::new(3);
        assert!(!w.tick(0, true));
        assert!(!w.tick(0, true));
        assert!(w.tick(0, true));
        // Packets reset it.
        let mut w = RtpWatch::new(3);
        for n in 1..10 {
            assert!(!w.tick(n, true));
        }
        assert!(!w.tick(9, true));
        assert!(!w.tick(9, true));
        assert!(w.tick(9, true));
    }

    #[test]
    fn held_or_unanswered_calls_are_exempt() {
        let mut w = RtpWatch::new(2);
        for _ in 0..10 {
            assert!(!w.tick(0, false));
        }
        assert!(!w.tick(0, true));
        assert!(!w.tick(0, false), "hold restarts the count");
        assert!(!w.tick(0, true));
        assert!(w.tick(0, true));
        assert_eq!(w.idle_ticks(), 2);
    }
}

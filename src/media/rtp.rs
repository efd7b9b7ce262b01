//! RTP and RTCP on the wire (RFC 3550): header parse and write, the per-leg sender state that
//! numbers and times 20 ms packets, and the minimal RTCP sender report.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::media::dtmf::EventPacket;

/// Why a datagram was not accepted as RTP/RTCP, or a packet could not be written.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RtpError {
    /// The datagram ends before the part being read.
    #[error("packet too short: {what} needs {need} bytes, got {got}")]
    TooShort {
        /// The part that did not fit.
        what: &'static str,
        /// Bytes needed up to the end of that part.
        need: usize,
        /// Bytes available.
        got: usize,
    },
    /// Only version 2 exists.
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    /// The padding count is zero or larger than what follows the header.
    #[error("invalid padding length {0}")]
    Padding(u8),
    /// A payload type must fit in 7 bits.
    #[error("payload type {0} does not fit in 7 bits")]
    PayloadType(u8),
    /// At most 15 contributing sources fit in the header.
    #[error("{0} CSRCs, at most 15 allowed")]
    TooManyCsrcs(usize),
    /// Header extension data is counted in 32-bit words.
    #[error("header extension of {0} bytes is not a whole number of 32-bit words")]
    ExtensionLength(usize),
    /// The RTCP packet is not a sender report (PT 200).
    #[error("RTCP packet type {0}, expected a sender report (200)")]
    NotSenderReport(u8),
    /// At most 31 report blocks fit in one RTCP packet.
    #[error("{0} report blocks, at most 31 allowed")]
    TooManyReports(usize),
}

/// The fixed RTP header length without CSRCs.
pub const HEADER_LEN: usize = 12;
/// Samples per 20 ms packet at 8 kHz.
pub const SAMPLES_PER_PACKET: u32 = 160;

/// RTP header fields (RFC 3550 §5.1), without padding which is only meaningful on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// First packet of a talkspurt (audio) or of an RFC 4733 event.
    pub marker: bool,
    /// 7-bit payload type (0 PCMU, 8 PCMA, dynamic 96-127 e.g. telephone-event).
    pub payload_type: u8,
    /// Sequence number, +1 per packet, wrapping.
    pub sequence: u16,
    /// Sampling instant of the first sample, in clock-rate units.
    pub timestamp: u32,
    /// Synchronisation source of this stream.
    pub ssrc: u32,
    /// Contributing sources (mixers only); empty for us.
    pub csrcs: Vec<u32>,
}

/// The optional header extension (RFC 3550 §5.3.1), borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// Profile-defined identifier (0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// Extension data, a whole number of 32-bit words.
    pub data: &'a [u8],
}

/// A parsed RTP packet borrowing its extension and payload from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The header fields.
    pub header: RtpHeader,
    /// Header extension, if the X bit was set.
    pub extension: Option<HeaderExtension<'a>>,
    /// Payload with any padding removed.
    pub payload: &'a [u8],
}

fn need(buf: &[u8], what: &'static str, need: usize) -> Result<(), RtpError> {
    if buf.len() < need {
        return Err(RtpError::TooShort {
            what,
            need,
            got: buf.len(),
        });
    }
    Ok(())
}

fn be_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

fn be_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram; every length is checked before it is used.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        need(buf, "fixed header", HEADER_LEN)?;
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = buf[0] & 0x20 != 0;
        let has_extension = buf[0] & 0x10 != 0;
        let csrc_count = usize::from(buf[0] & 0x0F);
        let mut at = HEADER_LEN;
        need(buf, "CSRC list", at + 4 * csrc_count)?;
        let csrcs = (0..csrc_count).map(|i| be_u32(buf, at + 4 * i)).collect();
        at += 4 * csrc_count;
        let extension = if has_extension {
            need(buf, "extension header", at + 4)?;
            let profile = be_u16(buf, at);
            let len = 4 * usize::from(be_u16(buf, at + 2));
            need(buf, "extension data", at + 4 + len)?;
            let data = &buf[at + 4..at + 4 + len];
            at += 4 + len;
            Some(HeaderExtension { profile, data })
        } else {
            None
        };
        let mut end = buf.len();
        if has_padding {
            let pad = buf[end - 1];
            if pad == 0 || usize::from(pad) > end - at {
                return Err(RtpError::Padding(pad));
            }
            end -= usize::from(pad);
        }
        Ok(RtpPacket {
            header: RtpHeader {
                marker: buf[1] & 0x80 != 0,
                payload_type: buf[1] & 0x7F,
                sequence: be_u16(buf, 2),
                timestamp: be_u32(buf, 4),
                ssrc: be_u32(buf, 8),
                csrcs,
            },
            extension,
            payload: &buf[at..end],
        })
    }

    /// Appends the packet (no padding) to `out`, so one buffer can be reused per leg.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), RtpError> {
        let h = &self.header;
        if h.payload_type > 0x7F {
            return Err(RtpError::PayloadType(h.payload_type));
        }
        if h.csrcs.len() > 15 {
            return Err(RtpError::TooManyCsrcs(h.csrcs.len()));
        }
        if let Some(ext) = &self.extension
            && (ext.data.len() % 4 != 0 || ext.data.len() / 4 > usize::from(u16::MAX))
        {
            return Err(RtpError::ExtensionLength(ext.data.len()));
        }
        let x_bit = if self.extension.is_some() { 0x10 } else { 0 };
        out.push(0x80 | x_bit | h.csrcs.len() as u8);
        out.push(if h.marker { 0x80 } else { 0 } | h.payload_type);
        out.extend_from_slice(&h.sequence.to_be_bytes());
        out.extend_from_slice(&h.timestamp.to_be_bytes());
        out.extend_from_slice(&h.ssrc.to_be_bytes());
        for csrc in &h.csrcs {
            out.extend_from_slice(&csrc.to_be_bytes());
        }
        if let Some(ext) = &self.extension {
            out.extend_from_slice(&ext.profile.to_be_bytes());
            out.extend_from_slice(&((ext.data.len() / 4) as u16).to_be_bytes());
            out.extend_from_slice(ext.data);
        }
        out.extend_from_slice(self.payload);
        Ok(())
    }
}

/// Tells RTCP from RTP on a shared port (RFC 5761 §4: RTCP packet types 192-223).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

// ---------------------------------------------------------------------------------------------
// Sender state
// ---------------------------------------------------------------------------------------------

/// Numbering and timing for one outgoing stream: sequence, timestamp, SSRC and the marker.
///
/// Sequence, timestamp and SSRC start random (RFC 3550 §5.1) so that packets of an old stream
/// are not mistaken for the new one. Each audio packet advances the timestamp by its sample
/// count; time without packets (silence suppression, a pause) is accounted with [`Self::skip`],
/// after which the next packet carries the marker as the first of a talkspurt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpSender {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    payload_type: u8,
    marker_next: bool,
    packets_sent: u32,
    octets_sent: u32,
}

impl RtpSender {
    /// A stream with random initial sequence, timestamp and SSRC.
    pub fn new(payload_type: u8) -> Self {
        Self::with_initial(payload_type, rand::random(), rand::random(), rand::random())
    }

    /// A stream with chosen initial values, for tests and the simulator.
    pub fn with_initial(payload_type: u8, ssrc: u32, sequence: u16, timestamp: u32) -> Self {
        RtpSender {
            ssrc,
            sequence,
            timestamp,
            payload_type: payload_type & 0x7F,
            marker_next: true,
            packets_sent: 0,
            octets_sent: 0,
        }
    }

    /// The stream's SSRC, for RTCP and for telling our own packets apart.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Timestamp the next audio packet will carry; an RFC 4733 event started now uses it.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Sequence number the next packet will carry.
    pub fn sequence(&self) -> u16 {
        self.sequence
    }

    /// Packets and payload octets sent so far, for the RTCP sender report.
    pub fn counts(&self) -> (u32, u32) {
        (self.packets_sent, self.octets_sent)
    }

    /// Writes the next audio packet: `payload` is one frame of `samples` samples (160 for
    /// 20 ms of G.711). Returns the bytes written.
    pub fn audio_packet(&mut self, payload: &[u8], samples: u32, out: &mut Vec<u8>) -> usize {
        let marker = std::mem::take(&mut self.marker_next);
        let written = self.write(self.payload_type, marker, self.timestamp, payload, out);
        self.timestamp = self.timestamp.wrapping_add(samples);
        written
    }

    /// Accounts for `samples` of time in which nothing was sent; the next packet starts a
    /// talkspurt.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.marker_next = true;
    }

    /// Marks the next audio packet as the start of a talkspurt (e.g. a new prompt after
    /// silence) without moving the timestamp.
    pub fn start_talkspurt(&mut self) {
        self.marker_next = true;
    }

    /// Writes one RFC 4733 packet with its own payload type, marker and timestamp; the audio
    /// clock is not moved (call [`Self::skip`] for each 20 ms slot the event replaces).
    pub fn event_packet(&mut self, event_pt: u8, packet: &EventPacket, out: &mut Vec<u8>) -> usize {
        let payload = packet.event.to_bytes();
        self.write(
            event_pt & 0x7F,
            packet.marker,
            packet.timestamp,
            &payload,
            out,
        )
    }

    fn write(&mut self, pt: u8, marker: bool, ts: u32, payload: &[u8], out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.push(0x80);
        out.push(if marker { 0x80 } else { 0 } | pt);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        self.sequence = self.sequence.wrapping_add(1);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
        out.len() - start
    }
}

// ---------------------------------------------------------------------------------------------
// RTCP sender report
// ---------------------------------------------------------------------------------------------

/// RTCP packet type of a sender report.
pub const RTCP_SR: u8 = 200;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp (32.32 fixed point) for the sender report's wallclock field.
pub fn ntp_timestamp(at: DateTime<Utc>) -> u64 {
    let secs = (at.timestamp() as u64).wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(at.timestamp_subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Reception statistics about one source (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed; duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | seq).
    pub highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from that source.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// An RTCP sender report, sent every few seconds per stream so the far end sees us alive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderReport {
    /// Our stream's SSRC.
    pub ssrc: u32,
    /// Wallclock time of the report ([`ntp_timestamp`]).
    pub ntp_timestamp: u64,
    /// The same instant in RTP timestamp units.
    pub rtp_timestamp: u32,
    /// Packets sent since the stream started.
    pub packet_count: u32,
    /// Payload octets sent since the stream started.
    pub octet_count: u32,
    /// Reception reports about the streams we receive (usually one).
    pub reports: Vec<ReportBlock>,
}

impl SenderReport {
    /// Appends the report as one RTCP packet to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), RtpError> {
        if self.reports.len() > 31 {
            return Err(RtpError::TooManyReports(self.reports.len()));
        }
        let words = (28 + 24 * self.reports.len()) / 4 - 1;
        out.push(0x80 | self.reports.len() as u8);
        out.push(RTCP_SR);
        out.extend_from_slice(&(words as u16).to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.ntp_timestamp.to_be_bytes());
        out.extend_from_slice(&self.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&self.packet_count.to_be_bytes());
        out.extend_from_slice(&self.octet_count.to_be_bytes());
        for r in &self.reports {
            out.extend_from_slice(&r.ssrc.to_be_bytes());
            let lost = (r.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
            out.extend_from_slice(&((u32::from(r.fraction_lost) << 24) | lost).to_be_bytes());
            out.extend_from_slice(&r.highest_sequence.to_be_bytes());
            out.extend_from_slice(&r.jitter.to_be_bytes());
            out.extend_from_slice(&r.last_sr.to_be_bytes());
            out.extend_from_slice(&r.delay_since_last_sr.to_be_bytes());
        }
        Ok(())
    }

    /// Parses the first packet of an RTCP datagram (a compound packet starts with the SR).
    pub fn parse(buf: &[u8]) -> Result<Self, RtpError> {
        need(buf, "RTCP header", 4)?;
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        if buf[1] != RTCP_SR {
            return Err(RtpError::NotSenderReport(buf[1]));
        }
        let count = usize::from(buf[0] & 0x1F);
        let len = 4 * (usize::from(be_u16(buf, 2)) + 1);
        need(buf, "RTCP packet", len)?;
        let body_needed = 28 + 24 * count;
        if len < body_needed {
            return Err(RtpError::TooShort {
                what: "sender report",
                need: body_needed,
                got: len,
            });
        }
        let reports = (0..count)
            .map(|i| {
                let at = 28 + 24 * i;
                let word = be_u32(buf, at + 4);
                // Sign-extend the 24-bit cumulative loss.
                let cumulative_lost = ((word << 8) as i32) >> 8;
                ReportBlock {
                    ssrc: be_u32(buf, at),
                    fraction_lost: (word >> 24) as u8,
                    cumulative_lost,
                    highest_sequence: be_u32(buf, at + 8),
                    jitter: be_u32(buf, at + 12),
                    last_sr: be_u32(buf, at + 16),
                    delay_since_last_sr: be_u32(buf, at + 20),
                }
            })
            .collect();
        Ok(SenderReport {
            ssrc: be_u32(buf, 4),
            ntp_timestamp: (u64::from(be_u32(buf, 8)) << 32) | u64::from(be_u32(buf, 12)),
            rtp_timestamp: be_u32(buf, 16),
            packet_count: be_u32(buf, 20),
            octet_count: be_u32(buf, 24),
            reports,
        })
    }
}

/// RTCP packet type of a source description.
pub const RTCP_SDES: u8 = 202;

/// Appends an SDES packet with one chunk naming `ssrc` by its CNAME (RFC 3550 §6.5), which
/// every compound RTCP packet carries; the name is cut to 255 bytes.
pub fn write_sdes_cname(ssrc: u32, cname: &str, out: &mut Vec<u8>) {
    let name = &cname.as_bytes()[..cname.len().min(255)];
    // SSRC, CNAME item (type, length, text), END, padded to a 32-bit boundary.
    let chunk = 4 + 2 + name.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    out.push(0x81);
    out.push(RTCP_SDES);
    out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.resize(out.len() + (padded - chunk) + 1, 0);
}

/// RTCP packet type of a receiver report.
pub const RTCP_RR: u8 = 201;

/// What we know of the stream we receive, for the report block of our sender reports
/// (RFC 3550 §6.4.1 and appendix A.1, A.3, A.8): extended highest sequence, losses, jitter,
/// and the peer's last sender report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceptionStats {
    ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Interarrival jitter × 16, in timestamp units (RFC 3550 A.8).
    jitter16: u32,
    last_transit: Option<i32>,
    /// Middle 32 bits of the peer's last SR's NTP time, and when it arrived (timestamp units).
    last_sr: Option<(u32, u32)>,
}

impl ReceptionStats {
    /// Counts an RTP packet that arrived at `arrival` (in timestamp units, any origin).
    pub fn on_packet(&mut self, header: &RtpHeader, arrival: u32) {
        let seq = header.sequence;
        if self.ssrc != Some(header.ssrc) {
            // A new source (or the first): start over.
            *self = ReceptionStats {
                ssrc: Some(header.ssrc),
                base_seq: u32::from(seq),
                max_seq: seq,
                last_sr: self.last_sr,
                ..ReceptionStats::default()
            };
        } else {
            let delta = seq.wrapping_sub(self.max_seq);
            if delta != 0 && delta < 0x8000 {
                if seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(1 << 16);
                }
                self.max_seq = seq;
            }
        }
        self.received = self.received.wrapping_add(1);
        let transit = arrival.wrapping_sub(header.timestamp) as i32;
        if let Some(last) = self.last_transit {
            let d = transit.wrapping_sub(last).unsigned_abs();
            // J += (|D| - J) / 16, kept × 16 in integers.
            self.jitter16 = self
                .jitter16
                .wrapping_add(d)
                .wrapping_sub((self.jitter16 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// The peer's sender report `ntp` (its 64-bit NTP time) arrived at `arrival`.
    pub fn on_sender_report(&mut self, ntp: u64, arrival: u32) {
        self.last_sr = Some((((ntp >> 16) & 0xFFFF_FFFF) as u32, arrival));
    }

    /// Packets received so far.
    pub fn received(&self) -> u32 {
        self.received
    }

    /// The report block about the received stream at `now` (timestamp units, same origin as
    /// the arrivals), or none before the first packet. Starts a new reporting interval.
    pub fn report_block(&mut self, now: u32, clock_rate: u32) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let extended = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = extended.wrapping_sub(self.base_seq).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            // Delay in 1/65536 s.
            Some((mid, at)) => (
                mid,
                ((u64::from(now.wrapping_sub(at)) << 16) / u64::from(clock_rate.max(1))) as u32,
            ),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_sequence: extended,
            jitter: self.jitter16 >> 4,
            last_sr,
            delay_since_last_sr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::event_packets;
    use proptest::prelude::*;

    /// A PCMU packet as captured from a softphone: seq 0x1234, ts 0xDEADBEEF, SSRC 0x01020304.
    fn captured() -> Vec<u8> {
        let mut p = vec![
            0x80, 0x80, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04,
        ];
        p.extend([0xFF; 160]);
        p
    }

    #[test]
    fn sdes_cname_chunks_are_padded_to_whole_words() {
        for name in ["", "abc", "boomerang@127.0.0.1"] {
            let mut out = Vec::new();
            write_sdes_cname(0x0102_0304, name, &mut out);
            assert_eq!(out.len() % 4, 0);
            assert_eq!(out[..2], [0x81, RTCP_SDES]);
            let words = usize::from(u16::from_be_bytes([out[2], out[3]]));
            assert_eq!(4 * (words + 1), out.len());
            assert_eq!(out[4..8], [1, 2, 3, 4]);
            assert_eq!((out[8], usize::from(out[9])), (1, name.len()));
            assert_eq!(&out[10..10 + name.len()], name.as_bytes());
            // END and padding.
            assert!(out[10 + name.len()..].iter().all(|&b| b == 0));
            assert!(out.len() > 10 + name.len());
            assert!(is_rtcp(&out));
        }
    }

    #[test]
    fn reception_stats_count_wraps_losses_jitter_and_the_last_sr() {
        let header = |sequence: u16, timestamp: u32| RtpHeader {
            ssrc: 77,
            sequence,
            timestamp,
            ..RtpHeader::default()
        };
        let mut rx = ReceptionStats::default();
        assert_eq!(rx.report_block(0, 8000), None);
        // 65534, 65535, (0 lost), 1, 2: a wrap and one loss, perfectly paced.
        for (i, seq) in [65534u16, 65535, 1, 2].into_iter().enumerate() {
            let slot = if i >= 2 { i as u32 + 1 } else { i as u32 };
            rx.on_packet(&header(seq, 1000 + 160 * slot), 5000 + 160 * slot);
        }
        rx.on_sender_report(0x1122_3344_5566_7788, 6000);
        let b = rx.report_block(6000 + 4000, 8000).unwrap();
        assert_eq!(b.ssrc, 77);
        assert_eq!(b.highest_sequence, (1 << 16) | 2);
        assert_eq!(b.cumulative_lost, 1);
        assert_eq!(u32::from(b.fraction_lost), 256 / 5);
        assert_eq!(b.jitter, 0);
        assert_eq!(b.last_sr, 0x3344_5566);
        // Half a second since that SR, in 1/65536 s.
        assert_eq!(b.delay_since_last_sr, 32768);
        // Nothing new: nothing lost in this interval. Late packets add jitter.
        assert_eq!(rx.report_block(10_000, 8000).unwrap().fraction_lost, 0);
        rx.on_packet(&header(3, 1000 + 160 * 5), 5000 + 160 * 5 + 800);
        assert_eq!(rx.report_block(20_000, 8000).unwrap().jitter, 800 / 16);
        assert_eq!(rx.received(), 5);
    }

    #[test]
    fn parses_a_plain_pcmu_packet() {
        let buf = captured();
        let p = RtpPacket::parse(&buf).unwrap();
        assert!(p.header.marker);
        assert_eq!(p.header.payload_type, 0);
        assert_eq!(p.header.sequence, 0x1234);
        assert_eq!(p.header.timestamp, 0xDEAD_BEEF);
        assert_eq!(p.header.ssrc, 0x0102_0304);
        assert!(p.header.csrcs.is_empty() && p.extension.is_none());
        assert_eq!(p.payload.len(), 160);
        let mut out = Vec::new();
        p.write_to(&mut out).unwrap();
        assert_eq!(out, buf);
    }

    #[test]
    fn parses_csrcs_extension_and_padding() {
        let mut buf = vec![0xB2, 0x08, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9]; // V2 P X CC=2, PCMA
        buf.extend([0, 0, 0, 7, 0, 0, 0, 8]); // CSRCs
        buf.extend([0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]); // one-word extension
        buf.extend([0xD5, 0xD5, 0xD5]); // payload
        buf.extend([0, 0, 3]); // 3 bytes of padding
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.header.csrcs, vec![7, 8]);
        assert_eq!(p.header.payload_type, 8);
        assert!(!p.header.marker);
        assert_eq!(
            p.extension,
            Some(HeaderExtension {
                profile: 0xBEDE,
                data: &[0x10, 0xAA, 0, 0]
            })
        );
        assert_eq!(p.payload, &[0xD5, 0xD5, 0xD5]);
        // Written back without padding.
        let mut out = Vec::new();
        p.write_to(&mut out).unwrap();
        assert_eq!(out[0], 0x92);
        assert_eq!(out.len(), buf.len() - 3);
        assert_eq!(RtpPacket::parse(&out).unwrap(), p);
    }

    #[test]
    fn rejects_malformed_packets() {
        assert!(matches!(
            RtpPacket::parse(&[0x80; 11]),
            Err(RtpError::TooShort { need: 12, .. })
        ));
        let mut v1 = captured();
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::Version(1)));
        let mut cc = captured();
        cc.truncate(12);
        cc[0] = 0x83; // 3 CSRCs announced, none present
        assert!(matches!(
            RtpPacket::parse(&cc),
            Err(RtpError::TooShort {
                what: "CSRC list",
                ..
            })
        ));
        let mut ext = captured();
        ext.truncate(16);
        ext[0] = 0x90;
        ext[12..16].copy_from_slice(&[0xBE, 0xDE, 0, 9]); // 9 words announced
        assert!(matches!(
            RtpPacket::parse(&ext),
            Err(RtpError::TooShort {
                what: "extension data",
                ..
            })
        ));
        let mut pad = captured();
        pad[0] = 0xA0;
        *pad.last_mut().unwrap() = 0;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Padding(0)));
        *pad.last_mut().unwrap() = 200; // more than the 160-byte payload
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Padding(200)));
        let bad = RtpPacket {
            header: RtpHeader {
                payload_type: 128,
                ..Default::default()
            },
            extension: None,
            payload: &[],
        };
        assert_eq!(
            bad.write_to(&mut Vec::new()),
            Err(RtpError::PayloadType(128))
        );
    }

    #[test]
    fn sender_numbers_and_times_packets() {
        let mut tx = RtpSender::with_initial(0, 0xCAFE, 65_534, 4_294_967_000);
        let frame = [0xFFu8; 160];
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for _ in 0..3 {
            out.clear();
            assert_eq!(tx.audio_packet(&frame, SAMPLES_PER_PACKET, &mut out), 172);
            let p = RtpPacket::parse(&out).unwrap();
            seen.push((p.header.marker, p.header.sequence, p.header.timestamp));
            assert_eq!(p.header.ssrc, 0xCAFE);
        }
        // Marker on the first only; sequence and timestamp wrap.
        assert_eq!(
            seen,
            vec![
                (true, 65_534, 4_294_967_000),
                (false, 65_535, 4_294_967_160),
                (false, 0, 24)
            ]
        );
        // A pause: timestamp jumps, the next packet starts a talkspurt.
        tx.skip(800);
        out.clear();
        tx.audio_packet(&frame, SAMPLES_PER_PACKET, &mut out);
        let p = RtpPacket::parse(&out).unwrap();
        assert_eq!(
            (p.header.marker, p.header.sequence, p.header.timestamp),
            (true, 1, 184 + 800)
        );
        assert_eq!(tx.counts(), (4, 640));
    }

    #[test]
    fn sender_writes_dtmf_events_on_their_own_payload_type() {
        let mut tx = RtpSender::with_initial(8, 1, 100, 8000);
        let train = event_packets('4', tx.timestamp(), 320, 10).unwrap();
        let mut seqs = Vec::new();
        for pkt in &train {
            let mut out = Vec::new();
            tx.event_packet(101, pkt, &mut out);
            tx.skip(SAMPLES_PER_PACKET);
            let p = RtpPacket::parse(&out).unwrap();
            assert_eq!(p.header.payload_type, 101);
            assert_eq!(p.header.timestamp, 8000);
            assert_eq!(p.header.marker, pkt.marker);
            assert_eq!(p.payload, pkt.event.to_bytes());
            seqs.push(p.header.sequence);
        }
        assert_eq!(seqs, vec![100, 101, 102, 103]); // start, then the end three times
        assert_eq!(tx.timestamp(), 8000 + 4 * 160);
    }

    #[test]
    fn random_initial_state_differs_between_streams() {
        let a = RtpSender::new(0);
        let b = RtpSender::new(0);
        assert_ne!(
            (a.ssrc(), a.sequence(), a.timestamp()),
            (b.ssrc(), b.sequence(), b.timestamp())
        );
    }

    #[test]
    fn sender_report_round_trips() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let ntp = ntp_timestamp(at);
        assert_eq!(ntp >> 32, 1_767_225_600 + NTP_UNIX_OFFSET);
        assert_eq!(ntp & 0xFFFF_FFFF, 0x8000_0000);
        let sr = SenderReport {
            ssrc: 0xCAFE,
            ntp_timestamp: ntp,
            rtp_timestamp: 123_456,
            packet_count: 50,
            octet_count: 8000,
            reports: vec![ReportBlock {
                ssrc: 0xBEEF,
                fraction_lost: 25,
                cumulative_lost: -3,
                highest_sequence: 0x0001_0005,
                jitter: 12,
                last_sr: 0x1234_5678,
                delay_since_last_sr: 65_536,
            }],
        };
        let mut out = Vec::new();
        sr.write_to(&mut out).unwrap();
        assert_eq!(out.len(), 52);
        assert_eq!(&out[..4], &[0x81, 200, 0, 12]);
        assert!(is_rtcp(&out));
        assert!(!is_rtcp(&captured()));
        assert_eq!(SenderReport::parse(&out).unwrap(), sr);
        // Followed by an SDES in a compound packet: still parsed.
        out.extend([0x81, 202, 0, 1, 0, 0, 0xCA, 0xFE]);
        assert_eq!(SenderReport::parse(&out).unwrap(), sr);
        assert_eq!(
            SenderReport::parse(&[0x80, 201, 0, 1, 0, 0, 0, 1]),
            Err(RtpError::NotSenderReport(201))
        );
        assert!(matches!(
            SenderReport::parse(&out[..40]),
            Err(RtpError::TooShort { .. })
        ));
    }

    proptest! {
        #[test]
        fn parsing_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = RtpPacket::parse(&bytes);
            let _ = SenderReport::parse(&bytes);
            let _ = is_rtcp(&bytes);
        }

        #[test]
        fn parsing_random_v2_headers_never_panics(
            first in 0x80u8..=0xBF,
            rest in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let mut bytes = vec![first];
            bytes.extend(rest);
            if let Ok(p) = RtpPacket::parse(&bytes) {
                prop_assert!(p.payload.len() <= bytes.len());
            }
            bytes[0] = 0x80 | (first & 0x1F);
            let _ = SenderReport::parse(&bytes);
        }

        #[test]
        fn written_packets_parse_back(
            marker: bool,
            pt in 0u8..128,
            seq: u16,
            ts: u32,
            ssrc: u32,
            csrcs in proptest::collection::vec(any::<u32>(), 0..16),
            ext in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..4).prop_map(|w| w.repeat(4)))),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let extension = ext.as_ref().map(|(profile, data)| HeaderExtension { profile: *profile, data });
            let p = RtpPacket {
                header: RtpHeader { marker, payload_type: pt, sequence: seq, timestamp: ts, ssrc, csrcs },
                extension,
                payload: &payload,
            };
            let mut out = Vec::new();
            p.write_to(&mut out).unwrap();
            prop_assert_eq!(RtpPacket::parse(&out).unwrap(), p);
        }
    }
}

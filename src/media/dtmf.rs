//! Key presses, however they arrive: RFC 4733 telephone-events in RTP, SIP INFO bodies
//! (`application/dtmf-relay`, `application/dtmf`) and in-band tones found with Goertzel filters.

use thiserror::Error;

/// Why a DTMF payload or body was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DtmfError {
    /// An RFC 4733 payload is 4 bytes; fewer cannot be read.
    #[error("telephone-event payload has {0} bytes, need at least 4")]
    ShortPayload(usize),
    /// The character is not a DTMF key (0-9, *, #, A-D).
    #[error("{0:?} is not a DTMF key")]
    NotADigit(char),
    /// Volume is 6 bits (0..=63, in -dBm0).
    #[error("volume {0} out of range 0..=63")]
    Volume(u8),
    /// The SIP INFO Content-Type carries no DTMF.
    #[error("content type {0:?} is not application/dtmf-relay or application/dtmf")]
    ContentType(String),
    /// The SIP INFO body names no key.
    #[error("SIP INFO body has no usable signal: {0:?}")]
    InfoBody(String),
    /// The in-band detector works on blocks of 80..=410 samples.
    #[error("tone detector block length {0} out of range 80..=410")]
    BlockLength(usize),
}

// ---------------------------------------------------------------------------------------------
// Digits and events
// ---------------------------------------------------------------------------------------------

/// Maps a key to its RFC 4733 event code, so the sender can put it on the wire.
pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// Maps an RFC 4733 event code back to its key; other events (flash, fax tones) give `None`.
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// One RFC 4733 telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9, 10 = `*`, 11 = `#`, 12-15 = A-D.
    pub event: u8,
    /// E bit: this packet reports the end of the event.
    pub end: bool,
    /// Power level in -dBm0 (0..=63); 10 is a typical key press.
    pub volume: u8,
    /// Duration so far in timestamp units (8 kHz samples).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first event of a payload; extra bytes (RFC 2198 redundancy) are ignored.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::ShortPayload(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4 payload bytes, with the reserved bit clear.
    pub fn to_bytes(&self) -> [u8; 4] {
        let flags = (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F);
        let [d0, d1] = self.duration.to_be_bytes();
        [self.event, flags, d0, d1]
    }
}

// ---------------------------------------------------------------------------------------------
// Receiving RFC 4733
// ---------------------------------------------------------------------------------------------

/// How many past events the receiver remembers, so late or retransmitted packets of an earlier
/// press are not counted again.
const RECENT_EVENTS: usize = 4;

/// Turns a stream of telephone-event packets into key presses, each reported exactly once.
///
/// An event is identified by its RTP timestamp (RFC 4733 §2.5.1): the digit is reported on the
/// first packet seen for a new timestamp, whether that is the start, a continuation (start lost)
/// or an end packet (all earlier lost). Later packets with the same timestamp, including the
/// three end packets, are ignored. A press longer than the 16-bit duration (about 8 s) continues
/// under a new timestamp; that segment is recognised and not counted again.
#[derive(Debug, Default, Clone)]
pub struct DtmfReceiver {
    recent: [Option<(u32, u8)>; RECENT_EVENTS],
    next_slot: usize,
    current: Option<CurrentEvent>,
}

/// The latest event seen, to recognise the next segment of a very long press.
#[derive(Debug, Clone, Copy)]
struct CurrentEvent {
    timestamp: u32,
    code: u8,
    ended: bool,
    longest: u16,
}

impl DtmfReceiver {
    /// A receiver with no history, one per call leg.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one packet (its RTP timestamp and payload); returns the key if this is a new press.
    pub fn push(&mut self, timestamp: u32, payload: &[u8]) -> Result<Option<char>, DtmfError> {
        let ev = TelephoneEvent::parse(payload)?;
        let key = (timestamp, ev.event);
        if self.recent.contains(&Some(key)) {
            if let Some(cur) = self.current.as_mut()
                && (cur.timestamp, cur.code) == key
            {
                cur.ended |= ev.end;
                cur.longest = cur.longest.max(ev.duration);
            }
            return Ok(None);
        }
        // RFC 4733 §2.5.1.3: a press outlasting the 16-bit duration goes on in a new segment
        // whose timestamp is the old one plus the duration reached.
        let next_segment = self.current.is_some_and(|cur| {
            cur.code == ev.event
                && !cur.ended
                && cur.longest >= 0xFF00
                && timestamp.wrapping_sub(cur.timestamp) <= u32::from(cur.longest) + 1600
        });
        self.recent[self.next_slot] = Some(key);
        self.next_slot = (self.next_slot + 1) % RECENT_EVENTS;
        self.current = Some(CurrentEvent {
            timestamp,
            code: ev.event,
            ended: ev.end,
            longest: ev.duration,
        });
        if next_segment {
            return Ok(None);
        }
        Ok(event_to_digit(ev.event))
    }
}

// ---------------------------------------------------------------------------------------------
// Sending RFC 4733
// ---------------------------------------------------------------------------------------------

/// Timestamp units per 20 ms update at 8 kHz.
pub const UPDATE_INTERVAL: u16 = 160;

/// One telephone-event packet to send; the RTP layer adds sequence number and SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// Marker bit: set on the first packet of the event only.
    pub marker: bool,
    /// RTP timestamp, the same for every packet of the event (its start).
    pub timestamp: u32,
    /// When to send it, in timestamp units after the first packet (one packet per 20 ms).
    pub send_offset: u32,
    /// The event payload.
    pub event: TelephoneEvent,
}

/// Builds the packet train for one key press (RFC 4733 §2.5.1): a start packet with the marker,
/// an update every 20 ms with the growing duration, then the end packet sent three times.
///
/// `duration` is in timestamp units (800 = 100 ms at 8 kHz) and is rounded up to at least one
/// update interval.
pub fn event_packets(
    digit: char,
    timestamp: u32,
    duration: u16,
    volume: u8,
) -> Result<Vec<EventPacket>, DtmfError> {
    let code = digit_to_event(digit).ok_or(DtmfError::NotADigit(digit))?;
    if volume > 63 {
        return Err(DtmfError::Volume(volume));
    }
    let total = duration.max(UPDATE_INTERVAL);
    let interval = u32::from(UPDATE_INTERVAL);
    let updates = (1..)
        .map(|k| k * interval)
        .take_while(|&so_far| so_far < u32::from(total))
        .map(|so_far| (so_far as u16, false));
    let ends = std::iter::repeat_n((total, true), 3);
    let packets = updates
        .chain(ends)
        .enumerate()
        .map(|(slot, (so_far, end))| EventPacket {
            marker: slot == 0,
            timestamp,
            send_offset: slot as u32 * interval,
            event: TelephoneEvent {
                event: code,
                end,
                volume,
                duration: so_far,
            },
        })
        .collect();
    Ok(packets)
}

// ---------------------------------------------------------------------------------------------
// SIP INFO
// ---------------------------------------------------------------------------------------------

/// A key press carried in a SIP INFO request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDigit {
    /// The key.
    pub digit: char,
    /// Duration in milliseconds when the body gives one (`dtmf-relay` only).
    pub duration_ms: Option<u32>,
}

/// Reads a SIP INFO body by its Content-Type, so the SIP layer needs no DTMF knowledge.
///
/// `application/dtmf-relay` is the Cisco form (`Signal=5\r\nDuration=160`, duration in ms);
/// `application/dtmf` is the bare key (`5`). Some phones send `Signal=10`/`11` for `*`/`#`.
pub fn parse_info(content_type: &str, body: &str) -> Result<InfoDigit, DtmfError> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/dtmf-relay" => parse_dtmf_relay(body),
        "application/dtmf" => {
            let digit =
                signal_to_digit(body.trim()).ok_or_else(|| DtmfError::InfoBody(body.into()))?;
            Ok(InfoDigit {
                digit,
                duration_ms: None,
            })
        }
        _ => Err(DtmfError::ContentType(content_type.into())),
    }
}

fn parse_dtmf_relay(body: &str) -> Result<InfoDigit, DtmfError> {
    let mut digit = None;
    let mut duration_ms = None;
    for line in body.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "signal" => digit = signal_to_digit(value),
            "duration" => duration_ms = value.parse().ok(),
            _ => {}
        }
    }
    let digit = digit.ok_or_else(|| DtmfError::InfoBody(body.into()))?;
    Ok(InfoDigit { digit, duration_ms })
}

fn signal_to_digit(value: &str) -> Option<char> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => digit_to_event(c).and_then(event_to_digit),
        _ => value
            .parse::<u8>()
            .ok()
            .filter(|&e| e <= 15)
            .and_then(event_to_digit),
    }
}

/// A `application/dtmf-relay` body for sending a key by SIP INFO.
pub fn dtmf_relay_body(digit: char, duration_ms: u32) -> Result<String, DtmfError> {
    let code = digit_to_event(digit).ok_or(DtmfError::NotADigit(digit))?;
    let digit = event_to_digit(code).ok_or(DtmfError::NotADigit(digit))?;
    Ok(format!("Signal={digit}\r\nDuration={duration_ms}\r\n"))
}

// ---------------------------------------------------------------------------------------------
// In-band detection
// ---------------------------------------------------------------------------------------------

/// DTMF low (row) group frequencies in Hz.
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// DTMF high (column) group frequencies in Hz.
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Keys by row and column.
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Sample rate the detector expects.
const RATE: f32 = 8000.0;
/// Weakest tone amplitude accepted (about -37 dBm0 on the µ-law scale).
const MIN_AMPLITUDE: f32 = 300.0;
/// High group may be this much weaker than the low group (8 dB, as amplitude ratio).
const NORMAL_TWIST: f32 = 2.512;
/// High group may be this much stronger than the low group (4 dB).
const REVERSE_TWIST: f32 = 1.585;
/// The strongest tone of a group must beat the others of its group by 6 dB.
const GROUP_MARGIN: f32 = 2.0;
/// Share of the block's power the two tones must hold (rejects speech and noise).
const MIN_TONE_SHARE: f32 = 0.6;

/// In-band DTMF detector over 8 kHz linear samples (decoded G.711), for phones that send tones
/// in the audio instead of RFC 4733.
///
/// Each block (205 samples by default, the classic choice giving ~39 Hz bins; 160 fits one
/// 20 ms frame) is analysed with eight Goertzel filters; a block is a hit when one row and one
/// column tone are above the level floor, within the twist limits, clear of their neighbours
/// and hold most of the block's power. A key is reported once the same hit is seen in two
/// consecutive blocks, and not again until two blocks without it have passed. A press is sure
/// to be heard once it covers two whole blocks: 77 ms with 205-sample blocks, 60 ms with 160
/// (shorter ones usually are, as a mostly filled block still counts).
#[derive(Debug, Clone)]
pub struct ToneDetector {
    block_len: usize,
    coeffs: [f32; 8],
    block: Vec<f32>,
    last_hit: Option<char>,
    reported: Option<char>,
}

impl Default for ToneDetector {
    fn default() -> Self {
        Self::build(205)
    }
}

impl ToneDetector {
    /// A detector with 205-sample blocks.
    pub fn new() -> Self {
        Self::default()
    }

    /// A detector with another block length (160 analyses exactly one 20 ms frame per block).
    pub fn with_block_len(block_len: usize) -> Result<Self, DtmfError> {
        if !(80..=410).contains(&block_len) {
            return Err(DtmfError::BlockLength(block_len));
        }
        Ok(Self::build(block_len))
    }

    fn build(block_len: usize) -> Self {
        let mut coeffs = [0.0; 8];
        for (c, f) in coeffs.iter_mut().zip(ROWS.iter().chain(COLS.iter())) {
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / RATE).cos();
        }
        ToneDetector {
            block_len,
            coeffs,
            block: Vec::with_capacity(block_len),
            last_hit: None,
            reported: None,
        }
    }

    /// Feeds samples of any length; returns the keys whose press was confirmed in them.
    pub fn push(&mut self, samples: &[i16]) -> Vec<char> {
        let mut found = Vec::new();
        for &s in samples {
            self.block.push(f32::from(s));
            if self.block.len() == self.block_len {
                let hit = self.analyse();
                self.block.clear();
                if let Some(digit) = self.step(hit) {
                    found.push(digit);
                }
            }
        }
        found
    }

    /// Debounce: two equal hits report a key; two empty blocks re-arm it.
    fn step(&mut self, hit: Option<char>) -> Option<char> {
        let mut report = None;
        match hit {
            Some(d) if self.last_hit == Some(d) && self.reported != Some(d) => {
                self.reported = Some(d);
                report = Some(d);
            }
            None if self.last_hit.is_none() => self.reported = None,
            _ => {}
        }
        self.last_hit = hit;
        report
    }

    /// Classifies the current block.
    fn analyse(&self) -> Option<char> {
        let n = self.block.len() as f32;
        // Amplitude of each tone: |X(f)| ≈ A·N/2 for a sinusoid of amplitude A at f.
        let mut amp = [0.0f32; 8];
        for (a, &coeff) in amp.iter_mut().zip(self.coeffs.iter()) {
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for &x in &self.block {
                let s0 = x + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
            *a = 2.0 * power.sqrt() / n;
        }
        let mean_square = self.block.iter().map(|x| x * x).sum::<f32>() / n;
        let (row, row_amp, row_second) = strongest(&amp[..4]);
        let (col, col_amp, col_second) = strongest(&amp[4..]);
        let loud_enough = row_amp >= MIN_AMPLITUDE && col_amp >= MIN_AMPLITUDE;
        let twist_ok = col_amp * NORMAL_TWIST >= row_amp && col_amp <= row_amp * REVERSE_TWIST;
        let clear = row_amp >= row_second * GROUP_MARGIN && col_amp >= col_second * GROUP_MARGIN;
        let tone_power = (row_amp * row_amp + col_amp * col_amp) / 2.0;
        let dominant = tone_power >= MIN_TONE_SHARE * mean_square;
        (loud_enough && twist_ok && clear && dominant).then(|| KEYPAD[row][col])
    }
}

/// Index and amplitude of the strongest of a group, and the runner-up's amplitude.
fn strongest(group: &[f32]) -> (usize, f32, f32) {
    let mut best = 0;
    for (i, &a) in group.iter().enumerate() {
        if a > group[best] {
            best = i;
        }
    }
    let second = group
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .map(|(_, &a)| a)
        .fold(0.0f32, f32::max);
    (best, group[best], second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{Law, decode_frame, encode_frame};

    const ALL_KEYS: &str = "0123456789*#ABCD";

    #[test]
    fn digits_map_to_rfc4733_events_and_back() {
        assert_eq!(digit_to_event('0'), Some(0));
        assert_eq!(digit_to_event('9'), Some(9));
        assert_eq!(digit_to_event('*'), Some(10));
        assert_eq!(digit_to_event('#'), Some(11));
        assert_eq!(digit_to_event('A'), Some(12));
        assert_eq!(digit_to_event('d'), Some(15));
        assert_eq!(digit_to_event('x'), None);
        assert_eq!(event_to_digit(16), None);
        for key in ALL_KEYS.chars() {
            assert_eq!(event_to_digit(digit_to_event(key).unwrap()), Some(key));
        }
    }

    #[test]
    fn payload_encodes_and_decodes() {
        let ev = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 1000,
        };
        assert_eq!(ev.to_bytes(), [0x0B, 0x8A, 0x03, 0xE8]);
        assert_eq!(
            TelephoneEvent::parse(&[0x0B, 0x8A, 0x03, 0xE8]).unwrap(),
            ev
        );
        // Reserved bit is ignored on input.
        let with_r = TelephoneEvent::parse(&[5, 0x4A, 0, 160]).unwrap();
        assert_eq!(
            with_r,
            TelephoneEvent {
                event: 5,
                end: false,
                volume: 10,
                duration: 160
            }
        );
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::ShortPayload(3))
        );
    }

    #[test]
    fn sender_builds_start_updates_and_three_end_packets() {
        let packets = event_packets('5', 48_000, 800, 10).unwrap();
        let durations: Vec<(u16, bool)> = packets
            .iter()
            .map(|p| (p.event.duration, p.event.end))
            .collect();
        assert_eq!(
            durations,
            vec![
                (160, false),
                (320, false),
                (480, false),
                (640, false),
                (800, true),
                (800, true),
                (800, true)
            ]
        );
        assert!(packets[0].marker);
        assert!(packets[1..].iter().all(|p| !p.marker));
        assert!(
            packets
                .iter()
                .all(|p| p.timestamp == 48_000 && p.event.event == 5 && p.event.volume == 10)
        );
        let offsets: Vec<u32> = packets.iter().map(|p| p.send_offset).collect();
        assert_eq!(offsets, vec![0, 160, 320, 480, 640, 800, 960]);
        // A very short press still sends a start... as the end packet, three times.
        let short = event_packets('#', 0, 40, 0).unwrap();
        assert_eq!(short.len(), 3);
        assert!(short[0].marker && short[0].event.end && short[0].event.duration == 160);
        assert_eq!(
            event_packets('x', 0, 800, 10),
            Err(DtmfError::NotADigit('x'))
        );
        assert_eq!(event_packets('1', 0, 800, 64), Err(DtmfError::Volume(64)));
    }

    fn feed(rx: &mut DtmfReceiver, packets: &[EventPacket]) -> String {
        packets
            .iter()
            .filter_map(|p| rx.push(p.timestamp, &p.event.to_bytes()).unwrap())
            .collect()
    }

    #[test]
    fn receiver_reports_each_press_once() {
        let mut rx = DtmfReceiver::new();
        let one = event_packets('1', 1000, 800, 10).unwrap();
        assert_eq!(feed(&mut rx, &one), "1");
        // Retransmitted end packets arriving late change nothing.
        assert_eq!(feed(&mut rx, &one[4..]), "");
        // Same key again, new timestamp: a second press.
        let again = event_packets('1', 3000, 800, 10).unwrap();
        assert_eq!(feed(&mut rx, &again), "1");
        // Start lost: reported on the first continuation; all but the end lost: on the end.
        let two = event_packets('2', 5000, 800, 10).unwrap();
        assert_eq!(feed(&mut rx, &two[2..]), "2");
        let three = event_packets('3', 7000, 800, 10).unwrap();
        assert_eq!(feed(&mut rx, &three[5..]), "3");
        // A late packet of an earlier press is still recognised.
        assert_eq!(feed(&mut rx, &two[..1]), "");
        assert_eq!(rx.push(9000, &[16, 0x0A, 0, 160]), Ok(None)); // flash: not a key
        assert_eq!(rx.push(9000, &[1]), Err(DtmfError::ShortPayload(1)));
    }

    /// The payload of key 7 at volume 10: `end` bit and duration so far.
    fn key_7(end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event: 7,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn receiver_does_not_double_count_a_long_press_split_in_segments() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.push(0, &key_7(false, 160)), Ok(Some('7')));
        assert_eq!(rx.push(0, &key_7(false, 0xFFFF)), Ok(None));
        // Next segment starts at the old timestamp + 0xFFFF.
        assert_eq!(rx.push(0xFFFF, &key_7(false, 160)), Ok(None));
        assert_eq!(rx.push(0xFFFF, &key_7(true, 800)), Ok(None));
        assert_eq!(rx.push(0x2_0000, &key_7(false, 160)), Ok(Some('7')));
    }

    #[test]
    fn sip_info_bodies_are_parsed() {
        let relay = parse_info("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n").unwrap();
        assert_eq!(
            relay,
            InfoDigit {
                digit: '5',
                duration_ms: Some(160)
            }
        );
        let spaced = parse_info(
            "Application/DTMF-Relay; charset=utf-8",
            "signal= #\nduration = 250",
        )
        .unwrap();
        assert_eq!(
            spaced,
            InfoDigit {
                digit: '#',
                duration_ms: Some(250)
            }
        );
        assert_eq!(
            parse_info("application/dtmf-relay", "Signal=10\r\n")
                .unwrap()
                .digit,
            '*'
        );
        assert_eq!(
            parse_info("application/dtmf", "5").unwrap(),
            InfoDigit {
                digit: '5',
                duration_ms: None
            }
        );
        assert_eq!(parse_info("application/dtmf", " b\r\n").unwrap().digit, 'B');
        assert!(matches!(
            parse_info("application/dtmf-relay", "Duration=160"),
            Err(DtmfError::InfoBody(_))
        ));
        assert!(matches!(
            parse_info("application/dtmf", "x"),
            Err(DtmfError::InfoBody(_))
        ));
        assert!(matches!(
            parse_info("text/plain", "5"),
            Err(DtmfError::ContentType(_))
        ));
        assert_eq!(
            dtmf_relay_body('*', 100).unwrap(),
            "Signal=*\r\nDuration=100\r\n"
        );
    }

    /// Two-tone key press at the given amplitudes (low group, high group), `ms` long.
    fn tone(key: char, row_amp: f64, col_amp: f64, ms: usize) -> Vec<i16> {
        let pos = KEYPAD.iter().flatten().position(|&k| k == key).unwrap();
        let (fr, fc) = (f64::from(ROWS[pos / 4]), f64::from(COLS[pos % 4]));
        (0..ms * 8)
            .map(|i| {
                let t = i as f64 / 8000.0;
                let two_pi = 2.0 * std::f64::consts::PI;
                (row_amp * (two_pi * fr * t).sin() + col_amp * (two_pi * fc * t).sin()) as i16
            })
            .collect()
    }

    fn silence(ms: usize) -> Vec<i16> {
        vec![0; ms * 8]
    }

    fn detect_in_frames(det: &mut ToneDetector, audio: &[i16]) -> String {
        audio
            .chunks(160)
            .flat_map(|frame| det.push(frame))
            .collect()
    }

    #[test]
    fn every_key_is_detected_once_per_press() {
        for block in [205, 160] {
            let mut det = ToneDetector::with_block_len(block).unwrap();
            let mut audio = Vec::new();
            for key in ALL_KEYS.chars() {
                audio.extend(tone(key, 6000.0, 7000.0, 100));
                audio.extend(silence(100));
            }
            assert_eq!(
                detect_in_frames(&mut det, &audio),
                ALL_KEYS,
                "block {block}"
            );
        }
    }

    #[test]
    fn a_long_press_is_one_key_and_a_repeat_is_another() {
        let mut det = ToneDetector::new();
        let mut audio = tone('5', 5000.0, 5000.0, 1000);
        audio.extend(silence(80));
        audio.extend(tone('5', 5000.0, 5000.0, 80));
        assert_eq!(detect_in_frames(&mut det, &audio), "55");
    }

    #[test]
    fn keys_survive_g711_and_a_quiet_press_is_heard() {
        for law in [Law::Ulaw, Law::Alaw] {
            let mut det = ToneDetector::new();
            let mut audio = tone('9', 700.0, 600.0, 80); // about -30 dBm0 per tone
            audio.extend(silence(60));
            audio.extend(tone('#', 8000.0, 9000.0, 60));
            audio.extend(silence(40)); // the last block must complete
            let decoded = decode_frame(law, &encode_frame(law, &audio));
            assert_eq!(detect_in_frames(&mut det, &decoded), "9#", "{law:?}");
        }
    }

    #[test]
    fn fast_dialling_of_the_same_key_counts_each_press() {
        // 60 ms on, 40 ms off: an auto-dialler's pace (Q.24 minimums are 40 ms and 40 ms).
        for block in [205, 160] {
            let mut det = ToneDetector::with_block_len(block).unwrap();
            let mut audio = Vec::new();
            for _ in 0..4 {
                audio.extend(tone('5', 5000.0, 5000.0, 60));
                audio.extend(silence(40));
            }
            assert_eq!(detect_in_frames(&mut det, &audio), "5555", "block {block}");
        }
    }

    #[test]
    fn speech_and_music_prompts_do_not_talk_off() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let lib = crate::media::prompts::PromptLibrary::load(dir).unwrap();
        let mut heard = Vec::new();
        for name in lib.names() {
            for block in [205, 160] {
                let mut det = ToneDetector::with_block_len(block).unwrap();
                let prompt = lib.get(name).unwrap();
                // Through µ-law, as it would arrive from a caller.
                let audio = decode_frame(Law::Ulaw, &prompt.frames(Law::Ulaw).concat());
                let keys = detect_in_frames(&mut det, &audio);
                if !keys.is_empty() {
                    heard.push(format!("{name}/{block}: {keys}"));
                }
            }
        }
        assert!(heard.is_empty(), "{heard:?}");
    }

    #[test]
    fn silence_single_tones_and_bad_twist_give_nothing() {
        let mut det = ToneDetector::new();
        assert_eq!(detect_in_frames(&mut det, &silence(1000)), "");
        let one_khz: Vec<i16> = (0..8000)
            .map(|i| {
                (10_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin()) as i16
            })
            .collect();
        assert_eq!(detect_in_frames(&mut det, &one_khz), "");
        // A single DTMF row tone alone is not a key.
        assert_eq!(detect_in_frames(&mut det, &tone('1', 8000.0, 0.0, 500)), "");
        // High group 20 dB below the low group: beyond the 8 dB normal twist.
        assert_eq!(
            detect_in_frames(&mut det, &tone('1', 10_000.0, 1000.0, 500)),
            ""
        );
        // Below the level floor.
        assert_eq!(
            detect_in_frames(&mut det, &tone('1', 100.0, 100.0, 500)),
            ""
        );
        // A key drowned in broadband noise.
        let mut noisy = tone('2', 2000.0, 2000.0, 500);
        let mut x: u32 = 12345;
        for s in &mut noisy {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *s = s.saturating_add(((x >> 16) as i16 as i32 * 6000 / 32768 * 3) as i16);
        }
        assert_eq!(detect_in_frames(&mut det, &noisy), "");
        assert_eq!(
            ToneDetector::with_block_len(10).unwrap_err(),
            DtmfError::BlockLength(10)
        );
    }
}

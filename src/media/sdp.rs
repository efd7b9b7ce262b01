//! SDP offer/answer (RFC 3264) for one G.711 audio stream plus RFC 4733 telephone-events,
//! parsed with `webrtc-sdp` and written from a fixed template.
//!
//! Only the lines negotiation needs are handed to `webrtc-sdp` (`v o s i c t b m`, direction
//! attributes, and `rtpmap`/`ptime`/`maxptime` inside media sections): the parser is built for
//! WebRTC and fails a whole body on an attribute at a level it does not expect (`a=rtcp` or a
//! non-standard `a=ptime` at session level) or with a value it cannot read (`a=ssrc:abc`,
//! `a=setup:foo`). What we do not negotiate cannot make a call fail; a session-level `a=ptime`
//! is therefore ignored (RFC 4566 defines it per media).

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;
use webrtc_sdp::SdpSession;
use webrtc_sdp::address::ExplicitlyTypedAddress;
use webrtc_sdp::attribute_type::SdpAttribute;
use webrtc_sdp::media_type::{SdpFormatList, SdpMediaValue, SdpProtocolValue};

use crate::media::g711::Law;

/// Payload type we offer for telephone-event.
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// Packetisation time when the SDP gives none.
pub const DEFAULT_PTIME: u32 = 20;

/// Why an SDP body could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SdpError {
    /// The body is not valid SDP.
    #[error("SDP does not parse: {0}")]
    Parse(String),
    /// No `m=audio` line with a non-zero port and plain RTP/AVP(F).
    #[error("no usable audio stream (RTP/AVP with a port) in the SDP")]
    NoAudio,
    /// The audio stream offers neither PCMU nor PCMA.
    #[error("no common codec: offered {0}")]
    NoCodec(String),
    /// Neither the media nor the session level gives an address.
    #[error("no connection address for the audio stream")]
    NoAddress,
    /// We do not resolve host names in SDP.
    #[error("connection address {0:?} is a host name, not an IP address")]
    HostName(String),
    /// The parser dropped an m-line it does not know (e.g. `udptl`), so the answer could not
    /// keep the offer's m-line order.
    #[error("offer has {text} m-lines but {parsed} could be parsed")]
    MediaLines {
        /// m-lines in the text.
        text: usize,
        /// m-lines the parser kept.
        parsed: usize,
    },
}

impl SdpError {
    /// The SIP response for an INVITE whose offer failed: 400 if unreadable, else 488.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::Parse(_) => 400,
            _ => 488,
        }
    }
}

/// Media direction (RFC 3264 §5.1), from the point of view of the SDP's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaDirection {
    /// Both ways (the default).
    #[default]
    SendRecv,
    /// The author only sends (it put the other side on hold).
    SendOnly,
    /// The author only receives.
    RecvOnly,
    /// No media either way.
    Inactive,
}

impl MediaDirection {
    /// The direction an answer must take for this offered direction.
    pub fn mirrored(self) -> Self {
        match self {
            MediaDirection::SendOnly => MediaDirection::RecvOnly,
            MediaDirection::RecvOnly => MediaDirection::SendOnly,
            other => other,
        }
    }

    /// The attribute name, `sendrecv` etc.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaDirection::SendRecv => "sendrecv",
            MediaDirection::SendOnly => "sendonly",
            MediaDirection::RecvOnly => "recvonly",
            MediaDirection::Inactive => "inactive",
        }
    }
}

/// What was agreed for the audio stream, as seen from the remote side's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP (media-level `c=` or else session-level, and the m-line port).
    pub remote: SocketAddr,
    /// The G.711 law to use.
    pub codec: Law,
    /// Its payload type (0 or 8, or a dynamic number bound by `rtpmap`).
    pub payload_type: u8,
    /// Payload type of telephone-event/8000 if the remote supports RFC 4733.
    pub telephone_event: Option<u8>,
    /// Packetisation the remote wants to receive, in ms.
    pub ptime: u32,
    /// The remote's direction attribute.
    pub direction: MediaDirection,
    /// RTCP shares the RTP port (`a=rtcp-mux`, RFC 5761); otherwise it goes to port + 1.
    pub rtcp_mux: bool,
}

impl Negotiated {
    /// True when the remote put us on hold: it only sends, or is inactive, or gave the
    /// unspecified address (RFC 2543 style `c=IN IP4 0.0.0.0`).
    pub fn on_hold(&self) -> bool {
        matches!(
            self.direction,
            MediaDirection::SendOnly | MediaDirection::Inactive
        ) || self.remote.ip().is_unspecified()
    }

    /// Whether we should send RTP at all.
    pub fn we_send(&self) -> bool {
        matches!(
            self.direction,
            MediaDirection::SendRecv | MediaDirection::RecvOnly
        ) && !self.remote.ip().is_unspecified()
    }
}

/// Answers an offer: picks the first of PCMU/PCMA in the offer's order and telephone-event if
/// offered; other m-lines are refused with port 0, as RFC 3264 §6 asks.
pub fn answer(
    offer_text: &str,
    local_ip: IpAddr,
    local_port: u16,
) -> Result<(String, Negotiated), SdpError> {
    let session_id = u64::from(rand::random::<u32>());
    answer_as(offer_text, local_ip, local_port, (session_id, session_id))
}

/// [`answer`] with the `o=` line's session id and version given.
fn answer_as(
    offer_text: &str,
    local_ip: IpAddr,
    local_port: u16,
    (session_id, version): (u64, u64),
) -> Result<(String, Negotiated), SdpError> {
    let session = parse(offer_text)?;
    let text_mlines = offer_text
        .lines()
        .filter(|l| l.trim_start().starts_with("m="))
        .count();
    if text_mlines != session.media.len() {
        return Err(SdpError::MediaLines {
            text: text_mlines,
            parsed: session.media.len(),
        });
    }
    let (index, negotiated) = negotiate(&session)?;

    let mut sdp = session_header(local_ip, session_id, version);
    for (i, media) in session.media.iter().enumerate() {
        if i == index {
            let events = negotiated.telephone_event.map(|pt| (pt, "0-16"));
            let direction = negotiated.direction.mirrored();
            audio_section(
                &mut sdp,
                local_port,
                &[(negotiated.payload_type, negotiated.codec)],
                events,
                direction,
            );
            if negotiated.rtcp_mux {
                sdp.push_str("a=rtcp-mux\r\n");
            }
        } else {
            sdp.push_str(&format!(
                "m={} 0 {} {}\r\n",
                media.get_type(),
                media.get_proto(),
                first_format(media.get_formats())
            ));
        }
    }
    Ok((sdp, negotiated))
}

/// Our offer for outbound calls: PCMU, PCMA and telephone-event/8000 (pt 101, events 0-16).
pub fn offer(local_ip: IpAddr, local_port: u16, session_id: u64, version: u64) -> String {
    let mut sdp = session_header(local_ip, session_id, version);
    let codecs = [
        (Law::Ulaw.payload_type(), Law::Ulaw),
        (Law::Alaw.payload_type(), Law::Alaw),
    ];
    let events = Some((TELEPHONE_EVENT_PT, "0-16"));
    audio_section(
        &mut sdp,
        local_port,
        &codecs,
        events,
        MediaDirection::SendRecv,
    );
    sdp
}

/// Reads the answer to our offer: the remote's choice among what we offered.
pub fn parse_answer(answer_text: &str) -> Result<Negotiated, SdpError> {
    let session = parse(answer_text)?;
    negotiate(&session).map(|(_, negotiated)| negotiated)
}

/// Answers a new offer inside an established call (re-INVITE or UPDATE: hold and resume, a
/// new codec, more streams): answered as a first offer would be (RFC 3264 §6: the offer's
/// m-lines, a codec it lists, the mirrored direction), from the address, port and `o=` session
/// of `previous`, our SDP so far; the `o=` version is raised when the SDP changes, kept when
/// it does not (RFC 3264 §8).
pub fn reanswer(previous: &str, offer_text: &str) -> Result<(String, Negotiated), SdpError> {
    let (ip, port, session_id, version) = ours(previous)?;
    let (same, negotiated) = answer_as(offer_text, ip, port, (session_id, version))?;
    if same.lines().eq(previous.lines().map(str::trim_end)) {
        return Ok((previous.to_string(), negotiated));
    }
    Ok((bump_version(&same), negotiated))
}

/// Our address, audio port, `o=` session id and version in an SDP we wrote.
fn ours(sdp: &str) -> Result<(IpAddr, u16, u64, u64), SdpError> {
    let unreadable = || SdpError::Parse("our own SDP lacks o=, c= or m=audio".into());
    let line = |prefix: &str| sdp.lines().find_map(|l| l.trim_end().strip_prefix(prefix));
    let o: Vec<&str> = line("o=").ok_or_else(unreadable)?.split(' ').collect();
    let number = |i: usize| o.get(i).and_then(|v| v.parse::<u64>().ok());
    let (session_id, version) = number(1).zip(number(2)).ok_or_else(unreadable)?;
    let ip = line("c=")
        .and_then(|c| c.split(' ').nth(2))
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .ok_or_else(unreadable)?;
    let port = line("m=audio ")
        .and_then(|m| m.split(' ').next())
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(unreadable)?;
    Ok((ip, port, session_id, version))
}

/// Raises the session version of the `o=` line by one.
fn bump_version(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len() + 2);
    for line in sdp.lines() {
        let mut fields: Vec<&str> = line
            .strip_prefix("o=")
            .map(|o| o.split(' ').collect())
            .unwrap_or_default();
        match fields.get(2).and_then(|v| v.parse::<u64>().ok()) {
            Some(v) => {
                let next = v.wrapping_add(1).to_string();
                fields[2] = &next;
                out.push_str("o=");
                out.push_str(&fields.join(" "));
            }
            None => out.push_str(line),
        }
        out.push_str("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Attributes negotiation reads at session level; everything else is left out before parsing.
const SESSION_ATTRIBUTES: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];
/// Attributes negotiation reads in a media section.
const MEDIA_ATTRIBUTES: [&str; 8] = [
    "rtpmap", "ptime", "maxptime", "sendrecv", "sendonly", "recvonly", "inactive", "rtcp-mux",
];

/// Keeps the lines negotiation needs (see the module note) and parses them.
fn parse(text: &str) -> Result<SdpSession, SdpError> {
    let mut kept = String::with_capacity(text.len());
    let mut in_media = false;
    for line in text.lines().map(str::trim) {
        let keep = match line.split_once('=') {
            Some(("m", _)) => {
                in_media = true;
                true
            }
            Some(("v" | "o" | "s" | "i" | "c" | "t" | "b", _)) => true,
            Some(("a", value)) => {
                let name = value.split(':').next().unwrap_or("");
                let wanted: &[&str] = if in_media {
                    &MEDIA_ATTRIBUTES
                } else {
                    &SESSION_ATTRIBUTES
                };
                wanted.iter().any(|w| w.eq_ignore_ascii_case(name))
            }
            _ => false,
        };
        if keep {
            kept.push_str(line);
            kept.push_str("\r\n");
        }
    }
    webrtc_sdp::parse_sdp(&kept, false).map_err(|e| SdpError::Parse(e.to_string()))
}

/// Finds the first usable audio stream and what it offers; returns its m-line index.
fn negotiate(session: &SdpSession) -> Result<(usize, Negotiated), SdpError> {
    let (index, media) = session
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| {
            *m.get_type() == SdpMediaValue::Audio
                && m.get_port() != 0
                && matches!(
                    m.get_proto(),
                    SdpProtocolValue::RtpAvp | SdpProtocolValue::RtpAvpf
                )
        })
        .ok_or(SdpError::NoAudio)?;

    let formats: Vec<u8> = match media.get_formats() {
        SdpFormatList::Integers(list) => {
            list.iter().filter_map(|&f| u8::try_from(f).ok()).collect()
        }
        _ => Vec::new(),
    };
    let rtpmap = |pt: u8| {
        media.get_attributes().iter().find_map(|a| match a {
            SdpAttribute::Rtpmap(r) if r.payload_type == pt => {
                Some((r.codec_name.to_ascii_lowercase(), r.frequency))
            }
            _ => None,
        })
    };
    let codec_of = |pt: u8| match (pt, rtpmap(pt)) {
        (_, Some((name, 8000))) if name == "pcmu" => Some(Law::Ulaw),
        (_, Some((name, 8000))) if name == "pcma" => Some(Law::Alaw),
        (0, None) => Some(Law::Ulaw),
        (8, None) => Some(Law::Alaw),
        _ => None,
    };
    let (payload_type, codec) = formats
        .iter()
        .find_map(|&pt| codec_of(pt).map(|law| (pt, law)))
        .ok_or_else(|| SdpError::NoCodec(describe_formats(&formats, &rtpmap)))?;
    let telephone_event = formats.iter().copied().find(|&pt| {
        rtpmap(pt).is_some_and(|(name, rate)| name == "telephone-event" && rate == 8000)
    });

    let ptime = media
        .get_attributes()
        .iter()
        .find_map(|a| match a {
            SdpAttribute::Ptime(ms) => u32::try_from(*ms).ok().filter(|&ms| ms > 0),
            _ => None,
        })
        .unwrap_or(DEFAULT_PTIME);
    let direction = direction_of(media.get_attributes())
        .or_else(|| direction_of(&session.attribute))
        .unwrap_or_default();

    let connection = media
        .get_connection()
        .as_ref()
        .or(session.get_connection().as_ref());
    let ip = match connection.map(|c| &c.address) {
        Some(ExplicitlyTypedAddress::Ip(ip)) => *ip,
        Some(ExplicitlyTypedAddress::Fqdn { domain, .. }) => {
            return Err(SdpError::HostName(domain.clone()));
        }
        None => return Err(SdpError::NoAddress),
    };
    let port = u16::try_from(media.get_port()).map_err(|_| SdpError::NoAudio)?;

    Ok((
        index,
        Negotiated {
            remote: SocketAddr::new(ip, port),
            codec,
            payload_type,
            telephone_event,
            ptime,
            direction,
            rtcp_mux: media
                .get_attributes()
                .iter()
                .any(|a| matches!(a, SdpAttribute::RtcpMux)),
        },
    ))
}

fn direction_of(attributes: &[SdpAttribute]) -> Option<MediaDirection> {
    attributes.iter().find_map(|a| match a {
        SdpAttribute::Sendrecv => Some(MediaDirection::SendRecv),
        SdpAttribute::Sendonly => Some(MediaDirection::SendOnly),
        SdpAttribute::Recvonly => Some(MediaDirection::RecvOnly),
        SdpAttribute::Inactive => Some(MediaDirection::Inactive),
        _ => None,
    })
}

/// "G722/8000 (9), opus/48000 (96)" for the 488 log line.
fn describe_formats(formats: &[u8], rtpmap: &dyn Fn(u8) -> Option<(String, u32)>) -> String {
    formats
        .iter()
        .map(|&pt| match rtpmap(pt) {
            Some((name, rate)) => format!("{name}/{rate} ({pt})"),
            None => format!("pt {pt}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn first_format(formats: &SdpFormatList) -> String {
    match formats {
        SdpFormatList::Integers(list) => list
            .first()
            .map(u32::to_string)
            .unwrap_or_else(|| "0".into()),
        SdpFormatList::Strings(list) => list.first().cloned().unwrap_or_else(|| "0".into()),
        SdpFormatList::Unknown(raw) => raw.split_whitespace().next().unwrap_or("0").to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

fn address_type(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IP4" } else { "IP6" }
}

fn session_header(ip: IpAddr, session_id: u64, version: u64) -> String {
    let at = address_type(ip);
    format!(
        "v=0\r\no=boomerang {session_id} {version} IN {at} {ip}\r\ns=boomerang\r\nc=IN {at} {ip}\r\nt=0 0\r\n"
    )
}

fn audio_section(
    sdp: &mut String,
    port: u16,
    codecs: &[(u8, Law)],
    events: Option<(u8, &str)>,
    direction: MediaDirection,
) {
    let mut formats: Vec<String> = codecs.iter().map(|(pt, _)| pt.to_string()).collect();
    formats.extend(events.map(|(pt, _)| pt.to_string()));
    sdp.push_str(&format!("m=audio {port} RTP/AVP {}\r\n", formats.join(" ")));
    for (pt, law) in codecs {
        let name = match law {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        };
        sdp.push_str(&format!("a=rtpmap:{pt} {name}/8000\r\n"));
    }
    if let Some((pt, range)) = events {
        sdp.push_str(&format!(
            "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} {range}\r\n"
        ));
    }
    sdp.push_str(&format!(
        "a=ptime:{DEFAULT_PTIME}\r\na={}\r\n",
        direction.as_str()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));

    /// baresip 3.x offer: opus and L16 first, G.711 further down, telephone-event at 101.
    const BARESIP: &str = "v=0\r\n\
o=- 1218312370 3469394212 IN IP4 192.168.1.10\r\n\
s=-\r\n\
c=IN IP4 192.168.1.10\r\n\
t=0 0\r\n\
m=audio 10520 RTP/AVP 96 97 98 9 0 8 101\r\n\
b=AS:98\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:97 L16/48000/2\r\n\
a=rtpmap:98 L16/16000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=rtcp-rsize\r\n\
a=ssrc:1397398347 cname:6a6f6e2d-3b1a-4c8e\r\n\
a=ptime:20\r\n";

    /// Linphone 5 offer: media-level c=, PCMA listed before PCMU, three telephone-event rates of
    /// which only 8000 (pt 100) fits G.711, rtcp-fb and rtcp-xr lines.
    const LINPHONE: &str = "v=0\r\n\
o=alice 2215 3620 IN IP4 192.168.1.20\r\n\
s=Talk\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
a=record:off\r\n\
m=audio 7078 RTP/AVP 96 97 98 8 0 18 101 99 100\r\n\
c=IN IP4 192.168.1.21\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\n\
a=fmtp:97 vbr=on\r\n\
a=rtpmap:98 speex/8000\r\n\
a=fmtp:98 vbr=on\r\n\
a=fmtp:18 annexb=yes\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:99 telephone-event/16000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=rtcp:7079\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=rtcp-fb:* ccm tmmbr\r\n";

    /// SIPp's built-in uac scenario (PCMU only, no rtpmap needed for static pt 0, LF endings).
    const SIPP: &str = "v=0\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\n\
s=-\n\
c=IN IP4 127.0.0.1\n\
t=0 0\n\
m=audio 6000 RTP/AVP 0\n\
a=rtpmap:0 PCMU/8000\n";

    /// What an answer agreed on: where media goes, the codec, its payload type and the
    /// telephone-event payload type.
    fn agreed(neg: &Negotiated) -> (SocketAddr, Law, u8, Option<u8>) {
        (neg.remote, neg.codec, neg.payload_type, neg.telephone_event)
    }

    #[test]
    fn answers_baresip_with_pcmu_and_its_event_pt() {
        let (text, neg) = answer(BARESIP, LOCAL, 40_000).unwrap();
        let remote = "192.168.1.10:10520".parse().unwrap();
        assert_eq!(agreed(&neg), (remote, Law::Ulaw, 0, Some(101)));
        assert_eq!(neg.ptime, 20);
        assert_eq!(neg.direction, MediaDirection::SendRecv);
        assert!(text.contains("m=audio 40000 RTP/AVP 0 101\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 10.0.0.5\r\n"));
        assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
        assert!(text.contains("a=sendrecv\r\n"));
        // Our answer is valid SDP that reads back as what we agreed, seen from the other side.
        let back = parse_answer(&text).unwrap();
        assert_eq!(back.remote, "10.0.0.5:40000".parse().unwrap());
        assert_eq!(
            (back.codec, back.payload_type, back.telephone_event),
            (Law::Ulaw, 0, Some(101))
        );
    }

    #[test]
    fn lines_webrtc_sdp_refuses_but_we_do_not_need_are_ignored() {
        let session_level = |line: &str| SIPP.replace("t=0 0\n", &format!("t=0 0\n{line}\n"));
        let media_level = |line: &str| format!("{SIPP}{line}\n");
        for body in [
            session_level("a=ptime:20"),
            session_level("a=rtcp:5005"),
            media_level("a=ssrc:abc cname:x"),
            media_level("a=setup:foo"),
        ] {
            assert!(
                webrtc_sdp::parse_sdp(&body, false).is_err(),
                "raw parser accepts {body}"
            );
            let (_, neg) = answer(&body, LOCAL, 1).unwrap();
            assert_eq!((neg.codec, neg.ptime), (Law::Ulaw, 20));
        }
        // A broken line we do need still fails, as a 400.
        let bad = media_level("a=ptime:twenty");
        assert_eq!(answer(&bad, LOCAL, 1).unwrap_err().sip_status(), 400);
    }

    #[test]
    fn answers_linphone_with_pcma_media_level_address_and_8k_events() {
        let (text, neg) = answer(LINPHONE, LOCAL, 40_002).unwrap();
        let remote = "192.168.1.21:7078".parse().unwrap();
        assert_eq!(agreed(&neg), (remote, Law::Alaw, 8, Some(100)));
        assert!(text.contains("m=audio 40002 RTP/AVP 8 100\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:8 PCMA/8000\r\n"));
    }

    #[test]
    fn answers_sipp_default_without_events() {
        let (text, neg) = answer(SIPP, LOCAL, 40_004).unwrap();
        assert_eq!(neg.remote, "127.0.0.1:6000".parse().unwrap());
        assert_eq!((neg.codec, neg.telephone_event), (Law::Ulaw, None));
        assert!(text.contains("m=audio 40004 RTP/AVP 0\r\n"));
        assert!(!text.contains("telephone-event"));
        // Static payload types need no rtpmap.
        let bare = SIPP
            .replace("a=rtpmap:0 PCMU/8000\n", "")
            .replace("RTP/AVP 0", "RTP/AVP 8");
        assert_eq!(answer(&bare, LOCAL, 1).unwrap().1.codec, Law::Alaw);
    }

    #[test]
    fn wideband_only_offer_is_refused_with_488() {
        let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 5004 RTP/AVP 9 96 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:96 opus/48000/2\r\n\
a=rtpmap:101 telephone-event/8000\r\n";
        let err = answer(offer, LOCAL, 1).unwrap_err();
        assert_eq!(
            err,
            SdpError::NoCodec("g722/8000 (9), opus/48000 (96), telephone-event/8000 (101)".into())
        );
        assert_eq!(err.sip_status(), 488);
        assert_eq!(answer("garbage", LOCAL, 1).unwrap_err().sip_status(), 400);
    }

    #[test]
    fn hold_offers_are_mirrored() {
        let hold = BARESIP
            .replace("a=sendrecv", "a=sendonly")
            .replace("c=IN IP4 192.168.1.10", "c=IN IP4 0.0.0.0");
        let (text, neg) = answer(&hold, LOCAL, 40_000).unwrap();
        assert_eq!(neg.direction, MediaDirection::SendOnly);
        assert!(neg.on_hold());
        assert!(!neg.we_send());
        assert_eq!(neg.remote.ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(
            text.contains("a=recvonly\r\n") && !text.contains("a=sendrecv"),
            "{text}"
        );
        let inactive = SIPP.replace(
            "a=rtpmap:0 PCMU/8000\n",
            "a=rtpmap:0 PCMU/8000\na=inactive\n",
        );
        assert!(
            answer(&inactive, LOCAL, 1)
                .unwrap()
                .0
                .contains("a=inactive\r\n")
        );
        // Direction at session level applies when the media section has none.
        let session_level = SIPP.replace("t=0 0\n", "t=0 0\na=recvonly\n");
        let (text, neg) = answer(&session_level, LOCAL, 1).unwrap();
        assert_eq!(neg.direction, MediaDirection::RecvOnly);
        assert!(text.contains("a=sendonly\r\n"));
        assert!(!neg.on_hold() && neg.we_send());
    }

    #[test]
    fn a_reinvite_for_hold_is_answered_with_the_mirrored_direction_and_a_new_version() {
        let (first, _) = answer(SIPP, LOCAL, 40_006).unwrap();
        let version = |sdp: &str| {
            sdp.lines()
                .find_map(|l| l.strip_prefix("o="))
                .and_then(|o| o.split(' ').nth(2))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap()
        };
        let held = format!("{SIPP}a=sendonly\n");
        let (on_hold, neg) = reanswer(&first, &held).unwrap();
        assert_eq!(neg.direction, MediaDirection::SendOnly);
        assert!(!neg.we_send());
        assert!(on_hold.contains("a=recvonly\r\n"), "{on_hold}");
        assert!(!on_hold.contains("a=sendrecv"), "{on_hold}");
        assert!(on_hold.contains("m=audio 40006 RTP/AVP 0\r\n"), "{on_hold}");
        assert_eq!(version(&on_hold), version(&first) + 1);
        let (inactive, neg) = reanswer(&on_hold, &format!("{SIPP}a=inactive\n")).unwrap();
        assert!(
            inactive.contains("a=inactive\r\n") && !neg.we_send(),
            "{inactive}"
        );
        assert_eq!(version(&inactive), version(&first) + 2);
        // Resumed: sendrecv again; the same offer twice leaves the version alone.
        let (resumed, neg) = reanswer(&inactive, SIPP).unwrap();
        assert!(
            resumed.contains("a=sendrecv\r\n") && neg.we_send(),
            "{resumed}"
        );
        let (again, _) = reanswer(&resumed, SIPP).unwrap();
        assert_eq!(again, resumed);
        // An unusable offer is refused as the first one would be.
        let wideband = SIPP
            .replace("RTP/AVP 0", "RTP/AVP 9")
            .replace("PCMU", "G722");
        assert_eq!(reanswer(&first, &wideband).unwrap_err().sip_status(), 488);
    }

    #[test]
    fn a_reinvite_with_another_codec_or_another_stream_is_answered_from_its_own_offer() {
        let (first, _) = answer(SIPP, LOCAL, 40_006).unwrap();
        let alaw = SIPP
            .replace("RTP/AVP 0", "RTP/AVP 8")
            .replace("0 PCMU", "8 PCMA");
        let (switched, neg) = reanswer(&first, &alaw).unwrap();
        assert_eq!((neg.codec, neg.payload_type), (Law::Alaw, 8));
        assert!(
            switched.contains("m=audio 40006 RTP/AVP 8\r\n"),
            "{switched}"
        );
        let video = format!("{alaw}m=video 5000 RTP/AVP 96\na=rtpmap:96 H264/90000\n");
        let (both, _) = reanswer(&switched, &video).unwrap();
        assert!(both.contains("\r\nm=video 0 RTP/AVP 96\r\n"), "{both}");
        assert_eq!(both.lines().filter(|l| l.starts_with("m=")).count(), 2);
        assert!(reanswer("", SIPP).is_err());
    }

    #[test]
    fn rtcp_mux_is_accepted_when_offered() {
        let (text, neg) = answer(&format!("{SIPP}a=rtcp-mux\n"), LOCAL, 40_008).unwrap();
        assert!(neg.rtcp_mux);
        assert!(text.contains("a=rtcp-mux\r\n"), "{text}");
        let (text, neg) = answer(SIPP, LOCAL, 40_008).unwrap();
        assert!(!neg.rtcp_mux && !text.contains("rtcp-mux"), "{text}");
    }

    #[test]
    fn ipv6_offers_are_answered_in_ipv6_even_with_sipps_bracketed_origin() {
        // SIPp writes `[local_ip]`, brackets included, into o= (and c= in some scenarios).
        let offer = "v=0\no=user1 1 1 IN IP6 [::1]\ns=-\nc=IN IP6 [::1]\nt=0 0\n\
                     m=audio 6000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";
        let local: IpAddr = "::1".parse().unwrap();
        let (text, neg) = answer(offer, local, 40_010).unwrap();
        assert_eq!(neg.remote, "[::1]:6000".parse().unwrap());
        assert!(text.contains("c=IN IP6 ::1\r\n"), "{text}");
        assert!(text.contains(" IN IP6 ::1\r\n"), "{text}");
    }

    #[test]
    fn ptime_and_other_m_lines_are_handled() {
        let offer = "v=0\r\no=- 7 7 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
m=video 5006 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
m=audio 5004 RTP/AVP 8\r\na=ptime:30\r\n";
        let (text, neg) = answer(offer, LOCAL, 4000).unwrap();
        assert_eq!(neg.ptime, 30);
        assert_eq!(neg.codec, Law::Alaw);
        let mlines: Vec<&str> = text.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            mlines,
            vec!["m=video 0 RTP/AVP 96", "m=audio 4000 RTP/AVP 8"]
        );
        // SRTP-only audio is not usable.
        let srtp = SIPP.replace("RTP/AVP", "RTP/SAVP");
        assert_eq!(answer(&srtp, LOCAL, 1).unwrap_err(), SdpError::NoAudio);
        // An m-line the parser cannot keep (T.38 over udptl) would shift the answer's m-lines.
        let t38 = format!("{SIPP}m=image 6002 udptl t38\na=T38FaxVersion:0\n");
        assert_eq!(
            answer(&t38, LOCAL, 1).unwrap_err(),
            SdpError::MediaLines { text: 2, parsed: 1 }
        );
        // A rejected audio stream (port 0) is not usable either.
        assert_eq!(
            answer(&SIPP.replace("6000", "0"), LOCAL, 1).unwrap_err(),
            SdpError::NoAudio
        );
    }

    #[test]
    fn our_offer_is_valid_and_reads_back() {
        let text = offer(LOCAL, 30_000, 42, 1);
        assert_eq!(
            text,
            "v=0\r\no=boomerang 42 1 IN IP4 10.0.0.5\r\ns=boomerang\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        let neg = parse_answer(&text).unwrap();
        assert_eq!(neg.remote, "10.0.0.5:30000".parse().unwrap());
        assert_eq!(
            (neg.codec, neg.payload_type, neg.telephone_event),
            (Law::Ulaw, 0, Some(101))
        );
        let v6 = offer("2001:db8::1".parse().unwrap(), 30_000, 1, 2);
        assert!(v6.contains("c=IN IP6 2001:db8::1\r\n"));
        assert_eq!(
            parse_answer(&v6).unwrap().remote,
            "[2001:db8::1]:30000".parse().unwrap()
        );
    }

    #[test]
    fn a_softphone_answer_to_our_offer_is_read() {
        // Linphone answering our offer, picking PCMA and our event pt.
        let reply = "v=0\r\no=bob 1 2 IN IP4 192.168.1.30\r\ns=Talk\r\nc=IN IP4 192.168.1.30\r\nt=0 0\r\n\
m=audio 7078 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp-fb:* trr-int 1000\r\n";
        let neg = parse_answer(reply).unwrap();
        assert_eq!(neg.remote, "192.168.1.30:7078".parse().unwrap());
        assert_eq!(
            (neg.codec, neg.payload_type, neg.telephone_event),
            (Law::Alaw, 8, Some(101))
        );
        let no_c = reply.replace("c=IN IP4 192.168.1.30\r\n", "");
        assert!(matches!(
            parse_answer(&no_c),
            Err(SdpError::Parse(_)) | Err(SdpError::NoAddress)
        ));
    }
}

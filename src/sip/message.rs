//! Parsing SIP messages off the wire with limits and the RFC 3261 checks that rsip skips.
//!
//! rsip is lenient and knows neither header folding, compact names nor LWS around the colon, so
//! [`parse`] first splits and normalises the header section itself (unfolding, expanding
//! compact forms, one Via per hop), validates it, and only then hands canonical bytes to rsip.

use rsip::headers::UntypedHeader;
use rsip::message::HasHeaders;
use rsip::{Header, SipMessage};
use thiserror::Error;

/// Datagrams and stream messages above this size are refused before any parsing work.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Bounds the work and memory one message may cost us.
pub const MAX_HEADERS: usize = 256;
/// RFC 3261 §8.1.1.5: CSeq sequence numbers must stay below 2**31.
pub const MAX_CSEQ: u64 = (1 << 31) - 1;
/// Methods rsip can represent, spelt as RFC 3261 and its extensions do (methods are
/// case-sensitive); any other well-formed method gets 501.
const KNOWN_METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "UPDATE",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "REFER",
];
/// Request-URI schemes we serve; others get 416.
const SCHEMES: &[&str] = &["sip", "sips", "tel"];
/// The magic cookie that marks an RFC 3261 branch, unique across space and time.
pub const BRANCH_MAGIC: &str = "z9hG4bK";

/// Why a message was refused; `Display` is a short phrase fit for a 400 reason.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// More bytes than [`MAX_MESSAGE_SIZE`].
    #[error("Message Too Large")]
    TooLarge,
    /// More header lines than [`MAX_HEADERS`].
    #[error("Too Many Headers")]
    TooManyHeaders,
    /// No blank line ending the header section.
    #[error("Incomplete Header Section")]
    Incomplete,
    /// Request-Line or Status-Line not in the RFC 3261 form.
    #[error("Malformed Start Line")]
    BadStartLine,
    /// Anything but SIP/2.0.
    #[error("Unsupported SIP Version")]
    BadVersion,
    /// A header line or value that does not follow its grammar.
    #[error("Malformed {0} Header")]
    MalformedHeader(String),
    /// A header RFC 3261 §8.1.1 requires is absent.
    #[error("Missing {0} Header")]
    MissingHeader(&'static str),
    /// The CSeq method differs from the request method.
    #[error("CSeq Method Mismatch")]
    CSeqMismatch,
    /// A numeric field outside its allowed range.
    #[error("{0} Out Of Range")]
    OutOfRange(&'static str),
    /// Content-Length absent on a stream, unparseable, or duplicated with different values.
    #[error("Bad Content-Length")]
    BadContentLength,
    /// Content-Length announces more bytes than arrived.
    #[error("Body Shorter Than Content-Length")]
    TruncatedBody,
    /// rsip refused the normalised message.
    #[error("Unparseable Message")]
    Syntax(String),
    /// A well-formed request with an extension method we do not know: 501 (RFC 3261 §8.2.1).
    #[error("Not Implemented")]
    UnknownMethod(String),
    /// A well-formed request whose Request-URI scheme we do not serve: 416 (RFC 3261 §8.2.2.1).
    #[error("Unsupported URI Scheme")]
    UnsupportedScheme,
}

impl ParseError {
    /// Reason phrase for the 400 response a server sends back for this error.
    pub fn reason_phrase(&self) -> String {
        match self {
            ParseError::Syntax(_) => "Bad Request".to_string(),
            ParseError::BadVersion => "Version Not Supported".to_string(),
            other => other.to_string(),
        }
    }

    /// The status a server answers a request refused for this reason with: 501 for an unknown
    /// method, 416 for an unknown URI scheme, 505 for another SIP version, 513 for a message
    /// too large, else 400.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::UnknownMethod(_) => 501,
            ParseError::UnsupportedScheme => 416,
            ParseError::BadVersion => 505,
            ParseError::TooLarge => 513,
            _ => 400,
        }
    }
}

/// How much one message may cost: `sip.max_message_bytes` and `sip.max_headers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest message, bytes.
    pub max_bytes: usize,
    /// Most header lines (after unfolding, one per Via hop).
    pub max_headers: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bytes: MAX_MESSAGE_SIZE,
            max_headers: MAX_HEADERS,
        }
    }
}

/// Parses one datagram (or one framed stream message) into a validated rsip message.
///
/// Content-Length is optional here (datagram rules); bytes beyond it are discarded.
pub fn parse(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    parse_limited(bytes, &ParseLimits::default())
}

/// As [`parse`], within the configured size and header-count limits.
pub fn parse_limited(bytes: &[u8], limits: &ParseLimits) -> Result<SipMessage, ParseError> {
    if bytes.len() > limits.max_bytes {
        return Err(ParseError::TooLarge);
    }
    let head_end = find(bytes, b"\r\n\r\n").ok_or(ParseError::Incomplete)?;
    let head = std::str::from_utf8(&bytes[..head_end])
        .map_err(|_| ParseError::MalformedHeader("UTF-8".into()))?;
    let body_in = &bytes[head_end + 4..];
    let (start, rest) = head.split_once("\r\n").unwrap_or((head, ""));
    let start_line = StartLine::parse(start)?;
    let headers = split_headers(rest, limits.max_headers)?;
    let body = validate(&start_line, &headers, body_in)?;
    if let StartLine::Request { method } = &start_line {
        if !KNOWN_METHODS.contains(method) {
            return Err(ParseError::UnknownMethod(method.to_string()));
        }
        let scheme = start.split(' ').nth(1).and_then(|u| u.split_once(':'));
        if !scheme.is_some_and(|(s, _)| SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(s))) {
            return Err(ParseError::UnsupportedScheme);
        }
    }

    // rsip cannot read an IPv6 Request-URI host: it reads a placeholder, and the URI is
    // parsed again below by [`parse_uri`].
    let v6_uri = start
        .split(' ')
        .nth(1)
        .filter(|uri| start_line.is_request() && v6_reference(uri).is_some());
    // rsip also misreads a user part holding `;`, `?` or `/` (RFC 4475 semiuri): it is
    // handed an escaped copy, which names the same user (RFC 3261 §19.1.4).
    let escaped_user = start
        .split(' ')
        .nth(1)
        .filter(|_| start_line.is_request())
        .and_then(|uri| escape_user(uri).map(|e| (uri, e)));
    let mut canon = String::with_capacity(bytes.len() + 64);
    match (v6_uri, &escaped_user) {
        (Some(uri), _) => canon.push_str(&start.replacen(uri, &placeholder_host(uri), 1)),
        (None, Some((uri, escaped))) => canon.push_str(&start.replacen(uri, escaped, 1)),
        (None, None) => canon.push_str(start),
    }
    canon.push_str("\r\n");
    for h in &headers {
        canon.push_str(&h.name);
        canon.push_str(": ");
        canon.push_str(&h.value);
        canon.push_str("\r\n");
    }
    canon.push_str("\r\n");
    let mut raw = canon.into_bytes();
    raw.extend_from_slice(body);
    let syntax = |e: rsip::Error| {
        let mut why = e.to_string();
        why.truncate(why.char_indices().nth(120).map_or(why.len(), |(i, _)| i));
        ParseError::Syntax(why)
    };
    let mut msg = SipMessage::try_from(raw.as_slice()).map_err(syntax)?;
    if let (Some(uri), SipMessage::Request(r)) = (v6_uri, &mut msg) {
        r.uri = parse_uri(uri).map_err(syntax)?;
    }
    Ok(msg)
}

/// A SIP URI with the characters of its user part that rsip cannot read percent-escaped;
/// `None` when there is nothing to escape.
fn escape_user(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return None;
    }
    let (user, host) = rest.rsplit_once('@')?;
    if !user.contains([';', '?', '/']) {
        return None;
    }
    let mut out = format!("{scheme}:");
    for c in user.chars() {
        match c {
            ';' | '?' | '/' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('@');
    out.push_str(host);
    Some(out)
}

/// True when every bracketed IPv6 reference in `text` holds a valid IPv6 address (RFC 5118
/// §4.9: `[2001:db8:::192.0.2.1]`, three colons in a row, is refused).
fn v6_references_valid(text: &str) -> bool {
    let mut rest = text;
    while let Some(start) = rest.find('[') {
        let Some(len) = rest[start..].find(']') else {
            return false;
        };
        if rest[start + 1..start + len]
            .parse::<std::net::Ipv6Addr>()
            .is_err()
        {
            return false;
        }
        rest = &rest[start + len + 1..];
    }
    true
}

/// Where a URI's bracketed IPv6 host (`[2001:db8::1]`) starts and ends, brackets included.
fn v6_reference(uri: &str) -> Option<(usize, usize)> {
    let start = uri.find('[')?;
    let end = start + uri[start..].find(']')? + 1;
    Some((start, end))
}

/// The URI with its IPv6 reference replaced by a host name rsip can read.
fn placeholder_host(uri: &str) -> String {
    match v6_reference(uri) {
        Some((start, end)) => format!("{}ipv6.invalid{}", &uri[..start], &uri[end..]),
        None => uri.to_string(),
    }
}

/// Parses a URI, IPv6 references included. rsip 0.4 fails on `sip:8000@[::1]:5060` (its host
/// parser expects an IPv4 address or a name), so the URI is read with a placeholder host and
/// the bracketed address is put back as the host's text, which rsip then writes unchanged.
pub fn parse_uri(uri: &str) -> Result<rsip::Uri, rsip::Error> {
    match v6_reference(uri) {
        None => rsip::Uri::try_from(uri),
        Some((start, end)) => {
            let mut parsed = rsip::Uri::try_from(placeholder_host(uri).as_str())?;
            parsed.host_with_port.host =
                rsip::Host::Domain(rsip::Domain::from(uri[start..end].to_string()));
            Ok(parsed)
        }
    }
}

/// What a stream buffer holds at its front, as found by [`framing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Only CRLF keep-alives (RFC 5626 §3.5.1); drop `len` bytes.
    KeepAlive {
        /// Bytes of CRLF to drop.
        len: usize,
    },
    /// A whole message at `buf[skip..skip + len]`, after `skip` bytes of keep-alive CRLFs.
    Message {
        /// Leading CRLF bytes before the message.
        skip: usize,
        /// Length of the message, headers and body.
        len: usize,
    },
}

/// Finds where the next message on a TCP stream ends; `Ok(None)` means read more.
pub fn framing(buf: &[u8]) -> Result<Option<Frame>, ParseError> {
    framing_limited(buf, &ParseLimits::default())
}

/// True once `buf` holds the end of a header section (the blank line).
pub fn has_header_end(buf: &[u8]) -> bool {
    find(buf, b"\r\n\r\n").is_some()
}

/// As [`framing`], with messages above `limits.max_bytes` refused (`sip.max_message_bytes`).
pub fn framing_limited(buf: &[u8], limits: &ParseLimits) -> Result<Option<Frame>, ParseError> {
    let max = limits.max_bytes;
    let skip = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    let rest = &buf[skip..];
    if rest.is_empty() {
        return Ok((skip > 0).then_some(Frame::KeepAlive { len: skip }));
    }
    let Some(head_end) = find(rest, b"\r\n\r\n") else {
        if rest.len() > max {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    if head_end > max {
        return Err(ParseError::TooLarge);
    }
    let head = std::str::from_utf8(&rest[..head_end])
        .map_err(|_| ParseError::MalformedHeader("UTF-8".into()))?;
    let (_, lines) = head.split_once("\r\n").unwrap_or((head, ""));
    let headers = split_headers(lines, limits.max_headers)?;
    let length = content_length(&headers)?.ok_or(ParseError::BadContentLength)?;
    let len = head_end + 4 + length;
    if len > max {
        return Err(ParseError::TooLarge);
    }
    Ok((rest.len() >= len).then_some(Frame::Message { skip, len }))
}

/// One header line after unfolding, with its full canonical name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawHeader {
    name: String,
    value: String,
}

enum StartLine<'a> {
    Request { method: &'a str },
    Response,
}

impl<'a> StartLine<'a> {
    fn is_request(&self) -> bool {
        matches!(self, StartLine::Request { .. })
    }

    fn parse(line: &'a str) -> Result<Self, ParseError> {
        let parts: Vec<&str> = line.split(' ').collect();
        if line.starts_with("SIP/") {
            // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (reason may be empty).
            if parts.len() < 3 {
                return Err(ParseError::BadStartLine);
            }
            if parts[0] != "SIP/2.0" {
                return Err(ParseError::BadVersion);
            }
            let code = parts[1];
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::OutOfRange("Status-Code"));
            }
            let n: u16 = code.parse().map_err(|_| ParseError::BadStartLine)?;
            if !(100..=699).contains(&n) {
                return Err(ParseError::OutOfRange("Status-Code"));
            }
            return Ok(StartLine::Response);
        }
        // Request-Line = Method SP Request-URI SP SIP-Version, single spaces, no trailing LWS.
        let [method, uri, version] = parts.as_slice() else {
            return Err(ParseError::BadStartLine);
        };
        if method.is_empty() || !method.bytes().all(is_token_char) {
            return Err(ParseError::BadStartLine);
        }
        if !version.starts_with("SIP/") {
            return Err(ParseError::BadStartLine);
        }
        if *version != "SIP/2.0" {
            return Err(ParseError::BadVersion);
        }
        check_request_uri(uri)?;
        Ok(StartLine::Request { method })
    }
}

fn check_request_uri(uri: &str) -> Result<(), ParseError> {
    let bad = || ParseError::MalformedHeader("Request-URI".into());
    let (scheme, rest) = uri.split_once(':').ok_or_else(bad)?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        return Err(bad());
    }
    if rest.is_empty() || uri.contains(['<', '>', '"']) || !v6_references_valid(rest) {
        return Err(bad());
    }
    // Header parameters make no sense in a Request-URI (RFC 3261 §19.1.5, RFC 4475 §3.1.2.11).
    if (scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips"))
        && has_uri_headers(rest)
    {
        return Err(bad());
    }
    Ok(())
}

/// Splits the header section into unfolded lines with canonical names, one Via per hop.
fn split_headers(section: &str, max_headers: usize) -> Result<Vec<RawHeader>, ParseError> {
    let mut lines: Vec<String> = Vec::new();
    for line in section.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = lines
                .last_mut()
                .ok_or_else(|| ParseError::MalformedHeader("folded".into()))?;
            last.push(' ');
            last.push_str(line.trim_start());
        } else if !line.is_empty() {
            if lines.len() >= max_headers {
                return Err(ParseError::TooManyHeaders);
            }
            lines.push(line.to_string());
        }
    }
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::MalformedHeader("line without colon".into()))?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(ParseError::MalformedHeader("header name".into()));
        }
        let name = canonical_name(name);
        let value = value.trim_matches([' ', '\t']).to_string();
        if name == "Via" {
            for hop in split_commas(&value) {
                let via = Via::parse(hop)?;
                out.push(RawHeader {
                    name: name.clone(),
                    value: via.to_string(),
                });
            }
        } else {
            out.push(RawHeader { name, value });
        }
        if out.len() > max_headers {
            return Err(ParseError::TooManyHeaders);
        }
    }
    Ok(out)
}

fn canonical_name(name: &str) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("t", "To"),
        ("v", "Via"),
        ("call-id", "Call-ID"),
        ("contact", "Contact"),
        ("content-length", "Content-Length"),
        ("content-type", "Content-Type"),
        ("cseq", "CSeq"),
        ("from", "From"),
        ("to", "To"),
        ("via", "Via"),
        ("max-forwards", "Max-Forwards"),
        ("expires", "Expires"),
        ("route", "Route"),
        ("record-route", "Record-Route"),
        ("date", "Date"),
        ("retry-after", "Retry-After"),
    ];
    let lower = name.to_ascii_lowercase();
    NAMES
        .iter()
        .find(|(k, _)| *k == lower)
        .map(|(_, v)| (*v).to_string())
        .unwrap_or_else(|| name.to_string())
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Splits on commas outside quoted strings and angle brackets.
pub(crate) fn split_commas(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped, mut start) = (false, false, false, 0);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out
}

/// Header parameters in order, names lower-cased; `None` value for flags.
pub type Params = Vec<(String, Option<String>)>;

/// A Via hop parsed by us, tolerant of LWS as RFC 3261 allows and strict about the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-cased (UDP, TCP, TLS, SCTP, …).
    pub transport: String,
    /// host[:port] as sent.
    pub sent_by: String,
    /// Parameters in order, names lower-cased; `None` value for flags.
    pub params: Params,
}

impl Via {
    /// Parses one via-parm (a single hop, no commas).
    pub fn parse(hop: &str) -> Result<Via, ParseError> {
        let bad = || ParseError::MalformedHeader("Via".into());
        let mut slash = hop.splitn(3, '/');
        let name = slash.next().ok_or_else(bad)?.trim();
        let version = slash.next().ok_or_else(bad)?.trim();
        let rest = slash.next().ok_or_else(bad)?.trim_start();
        if !name.eq_ignore_ascii_case("SIP") {
            return Err(bad());
        }
        if version != "2.0" {
            return Err(ParseError::BadVersion);
        }
        let (transport, rest) = rest.split_once([' ', '\t']).ok_or_else(bad)?;
        if transport.is_empty() || !transport.bytes().all(is_token_char) {
            return Err(bad());
        }
        let mut parts = rest.split(';');
        let sent_by = parts.next().ok_or_else(bad)?.trim();
        if sent_by.is_empty()
            || sent_by.contains([' ', '\t', ',', '<', '>', '"'])
            || !v6_references_valid(sent_by)
        {
            return Err(bad());
        }
        let params = parse_params(parts).ok_or_else(bad)?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            sent_by: sent_by.to_string(),
            params,
        })
    }

    /// The branch parameter, the transaction's name on the wire.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch")
    }

    /// A parameter's value (`Some("")` for a flag).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.sent_by)?;
        for (k, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

/// Parses `;name[=value]` parameters, refusing empty ones; None on a malformed parameter.
fn parse_params<'a>(parts: impl Iterator<Item = &'a str>) -> Option<Params> {
    let mut out = Vec::new();
    for p in parts {
        let p = p.trim();
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p, None),
        };
        if k.is_empty() || !k.bytes().all(is_token_char) || v.is_some_and(str::is_empty) {
            return None;
        }
        out.push((k.to_ascii_lowercase(), v.map(str::to_string)));
    }
    Some(out)
}

/// True when a SIP URI (after the scheme) carries `?headers`; a `?` in the userinfo does not count.
fn has_uri_headers(rest: &str) -> bool {
    let host_part = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    host_part.contains('?')
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn values<'a>(headers: &'a [RawHeader], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn content_length(headers: &[RawHeader]) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    for v in values(headers, "Content-Length") {
        let n = parse_decimal(v, u32::MAX as u64).ok_or(ParseError::BadContentLength)? as usize;
        if found.is_some_and(|f| f != n) {
            return Err(ParseError::BadContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

/// Parses 1*DIGIT no larger than `max`.
fn parse_decimal(v: &str, max: u64) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().filter(|n| *n <= max)
}

fn validate<'b>(
    start: &StartLine<'_>,
    headers: &[RawHeader],
    body: &'b [u8],
) -> Result<&'b [u8], ParseError> {
    // Max-Forwards is not required: RFC 2543 requests lack it and must be served (RFC 4475
    // §3.4.1); a request without it is treated as having 70 hops left.
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        let count = values(headers, name).count();
        if count == 0 {
            return Err(ParseError::MissingHeader(name));
        }
        if count > 1 && name != "Via" {
            return Err(ParseError::MalformedHeader(name.into()));
        }
    }

    let cseq = values(headers, "CSeq").next().unwrap_or_default();
    let (num, method) = cseq
        .split_once([' ', '\t'])
        .ok_or_else(|| ParseError::MalformedHeader("CSeq".into()))?;
    parse_decimal(num.trim(), MAX_CSEQ).ok_or(ParseError::OutOfRange("CSeq"))?;
    let method = method.trim();
    if method.is_empty() || !method.bytes().all(is_token_char) {
        return Err(ParseError::MalformedHeader("CSeq".into()));
    }
    if let StartLine::Request { method: m } = start
        && *m != method
    {
        return Err(ParseError::CSeqMismatch);
    }

    for v in values(headers, "Max-Forwards") {
        parse_decimal(v, 255).ok_or(ParseError::OutOfRange("Max-Forwards"))?;
    }
    for v in values(headers, "Expires") {
        parse_decimal(v, u32::MAX as u64).ok_or(ParseError::OutOfRange("Expires"))?;
    }
    for v in values(headers, "Retry-After") {
        let secs = v.split([';', '(', ' ']).next().unwrap_or_default();
        parse_decimal(secs, u32::MAX as u64).ok_or(ParseError::OutOfRange("Retry-After"))?;
    }
    for v in values(headers, "Date") {
        if !v.ends_with(" GMT") {
            return Err(ParseError::MalformedHeader("Date".into()));
        }
    }
    for name in ["From", "To"] {
        for v in values(headers, name) {
            check_name_addr(v, false).map_err(|_| ParseError::MalformedHeader(name.into()))?;
        }
    }
    for name in ["Contact", "Route", "Record-Route"] {
        for v in values(headers, name) {
            if name == "Contact" && v == "*" {
                continue;
            }
            for item in split_commas(v) {
                check_name_addr(item, true)
                    .map_err(|_| ParseError::MalformedHeader(name.into()))?;
            }
        }
    }

    match content_length(headers)? {
        Some(n) if n > body.len() => Err(ParseError::TruncatedBody),
        Some(n) => Ok(&body[..n]),
        None => Ok(body),
    }
}

/// Checks a name-addr / addr-spec with params: balanced quotes, display name, no LWS inside
/// `<…>`, no URI headers or params outside angle brackets (RFC 3261 §20.10).
fn check_name_addr(v: &str, allow_uri_headers: bool) -> Result<(), ()> {
    let v = v.trim();
    let (params_part, uri) = if let Some(lt) = find_unquoted(v, '<') {
        let display = v[..lt].trim();
        if let Some(inner) = display.strip_prefix('"') {
            let end = closing_quote(inner).ok_or(())?;
            if !inner[end + 1..].trim().is_empty() {
                return Err(());
            }
        } else if !display
            .split([' ', '\t'])
            .all(|w| w.bytes().all(is_token_char))
        {
            return Err(());
        }
        let gt = v[lt..].find('>').ok_or(())? + lt;
        let uri = &v[lt + 1..gt];
        if uri.starts_with([' ', '\t']) || uri.ends_with([' ', '\t']) {
            return Err(());
        }
        (&v[gt + 1..], uri)
    } else {
        if v.contains('"') || v.contains('>') {
            return Err(());
        }
        // addr-spec form: URI parameters and headers would be ambiguous, so `?` is refused.
        let (uri, params) = v.split_once(';').unwrap_or((v, ""));
        if has_uri_headers(uri) {
            return Err(());
        }
        let params = if params.is_empty() {
            ""
        } else {
            &v[uri.len()..]
        };
        (params, uri.trim_end())
    };
    if uri.is_empty()
        || !uri.contains(':')
        || uri.contains([' ', '\t'])
        || !v6_references_valid(uri)
    {
        return Err(());
    }
    if !allow_uri_headers && uri.split_once(':').is_some_and(|(_, r)| has_uri_headers(r)) {
        return Err(());
    }
    let params = params_part.trim();
    if params.is_empty() {
        return Ok(());
    }
    let rest = params.strip_prefix(';').ok_or(())?;
    parse_params(rest.split(';')).map(|_| ()).ok_or(())
}

pub(crate) fn find_unquoted(v: &str, target: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in v.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && c == target {
            return Some(i);
        }
    }
    None
}

fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i);
        }
    }
    None
}

/// Splits a name-addr or addr-spec value into its URI and the header parameters after it.
pub fn name_addr_parts(value: &str) -> Option<(String, Params)> {
    let value = value.trim();
    let (uri, params) = match find_unquoted(value, '<') {
        Some(lt) => {
            let gt = value[lt..].find('>')? + lt;
            (&value[lt + 1..gt], &value[gt + 1..])
        }
        None => match value.find(';') {
            Some(semi) => (&value[..semi], &value[semi..]),
            None => (value, ""),
        },
    };
    let params = params.trim();
    let params = if params.is_empty() {
        Vec::new()
    } else {
        parse_params(params.strip_prefix(';')?.split(';'))?
    };
    Some((uri.trim().to_string(), params))
}

/// All values of a header on an rsip message, by full name (case-insensitive).
pub fn header_values(msg: &impl HasHeaders, name: &str) -> Vec<String> {
    msg.headers()
        .iter()
        .filter_map(|h| {
            let text = h.to_string();
            let (n, v) = text.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .collect()
}

/// The first value of a header, by full name (case-insensitive).
pub fn header_value(msg: &impl HasHeaders, name: &str) -> Option<String> {
    header_values(msg, name).into_iter().next()
}

/// Every Via hop of a message, top first, parsed by us.
pub fn vias(msg: &impl HasHeaders) -> Vec<Via> {
    header_values(msg, "Via")
        .iter()
        .flat_map(|v| {
            split_commas(v)
                .into_iter()
                .filter_map(|hop| Via::parse(hop).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Notes on a received request's top Via where it really came from, so the responses carry
/// it back: `received` when the sent-by host is not the source address (RFC 3261 §18.2.1) or
/// the client asked with a bare `rport`, which then gets the source port (RFC 3581 §4). An
/// IPv6 source is written bare, `received=2001:db8::1` (RFC 3261's grammar, RFC 5118 §4.5).
pub fn stamp_via(req: &mut rsip::Request, source: std::net::SocketAddr) {
    let Some(header) = req.headers.iter_mut().find(|h| matches!(h, Header::Via(_))) else {
        return;
    };
    let Header::Via(value) = &*header else {
        return;
    };
    let text = value.value().to_string();
    let hops = split_commas(&text);
    let Some(mut top) = hops.first().and_then(|h| Via::parse(h).ok()) else {
        return;
    };
    let host = match top.sent_by.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => top.sent_by.split(':').next().unwrap_or(""),
    };
    let rport = top.params.iter().any(|(k, v)| k == "rport" && v.is_none());
    if !rport && host.parse::<std::net::IpAddr>().ok() == Some(source.ip()) {
        return;
    }
    top.params.retain(|(k, _)| k != "received" && k != "rport");
    top.params
        .push(("received".into(), Some(source.ip().to_string())));
    if rport {
        top.params
            .push(("rport".into(), Some(source.port().to_string())));
    }
    let mut rebuilt = top.to_string();
    for hop in &hops[1..] {
        rebuilt.push_str(", ");
        rebuilt.push_str(hop);
    }
    *header = Header::Via(rsip::headers::Via::new(rebuilt));
}

/// The top Via's branch, which names the transaction (RFC 3261 §17.2.3).
pub fn branch(msg: &impl HasHeaders) -> Option<String> {
    vias(msg)
        .first()
        .and_then(|v| v.branch().map(str::to_string))
}

/// True for branches from RFC 3261 elements, which the transaction layer may match on alone.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.starts_with(BRANCH_MAGIC) && branch.len() > BRANCH_MAGIC.len()
}

/// The CSeq number and method of a message, from our own reading of the header.
pub fn cseq(msg: &impl HasHeaders) -> Option<(u32, String)> {
    let v = header_value(msg, "CSeq")?;
    let (n, m) = v.split_once([' ', '\t'])?;
    let n = u32::try_from(parse_decimal(n.trim(), MAX_CSEQ)?).ok()?;
    Some((n, m.trim().to_string()))
}

/// The `tag` parameter of a From or To value (outside the URI).
pub fn tag_of(value: &str) -> Option<String> {
    let params = match find_unquoted(value, '<') {
        Some(lt) => &value[lt + value[lt..].find('>')? + 1..],
        None => value.split_once(';').map(|(_, p)| p).unwrap_or(""),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("tag")
            .then(|| v.trim().to_string())
    })
}

/// A fresh random token for tags and branches.
pub fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 8] = rand::rng().random();
    hex::encode(bytes)
}

/// A new RFC 3261 branch for a client transaction.
pub fn new_branch() -> String {
    format!("{BRANCH_MAGIC}{}", random_token())
}

/// A response to `request`, with a fresh To tag for codes above 100 when the To has none.
pub fn response_for(request: &rsip::Request, code: u16, reason: &str) -> rsip::Response {
    response_with_tag(request, code, reason, &random_token())
}

/// As [`response_for`], using `to_tag` when a tag must be added, so 1xx and 2xx of one dialog match.
pub fn response_with_tag(
    request: &rsip::Request,
    code: u16,
    reason: &str,
    to_tag: &str,
) -> rsip::Response {
    let mut headers = rsip::Headers::default();
    for h in request.headers().iter() {
        match h {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(h.clone())
            }
            Header::To(to) => {
                let value = to.value().to_string();
                if code > 100 && tag_of(&value).is_none() {
                    headers.push(Header::To(rsip::headers::To::new(format!(
                        "{value};tag={to_tag}"
                    ))));
                } else {
                    headers.push(h.clone());
                }
            }
            _ => {}
        }
    }
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        "0",
    )));
    rsip::Response {
        status_code: rsip::StatusCode::Other(code, reason.to_string()),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// Serialises a message to wire bytes. The body is copied as bytes: rsip's `Display` passes
/// it through `from_utf8_lossy`, which corrupts binary bodies (S/MIME, RFC 4475 mpart01) and
/// leaves Content-Length wrong (found by the `sip_message` fuzz property).
pub fn to_bytes(msg: &SipMessage) -> Vec<u8> {
    let (head, body) = match msg {
        SipMessage::Request(r) => (
            format!("{} {} {}\r\n{}\r\n", r.method, r.uri, r.version, r.headers),
            &r.body,
        ),
        SipMessage::Response(r) => (
            format!("{} {}\r\n{}\r\n", r.version, r.status_code, r.headers),
            &r.body,
        ),
    };
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: Bob <sip:bob@example.com>\r\n\
        From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.example.com\r\n\
        CSeq: 63104 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";

    fn request(text: &str) -> rsip::Request {
        match parse(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!("expected a request"),
        }
    }

    #[test]
    fn ipv6_request_uris_parse_and_print_back_unchanged() {
        // SIPp's INVITE over IPv6 loopback.
        let text = "INVITE sip:8000@[::1]:35781 SIP/2.0\r\n\
Via: SIP/2.0/UDP [::1]:51918;branch=z9hG4bK-1;rport\r\n\
From: <sip:+33612345678@[::1]:51918>;tag=1\r\n\
To: <sip:8000@[::1]:35781>\r\n\
Call-ID: 1-32673@::1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:caller@[::1]:51918;transport=UDP>\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";
        let Ok(SipMessage::Request(r)) = parse(text.as_bytes()) else {
            panic!("the IPv6 INVITE does not parse");
        };
        assert_eq!(r.uri.to_string(), "sip:8000@[::1]:35781");
        assert!(
            String::from_utf8(to_bytes(&SipMessage::Request(r)))
                .unwrap()
                .starts_with("INVITE sip:8000@[::1]:35781 SIP/2.0\r\n")
        );
        for uri in [
            "sip:caller@[::1]:51918;transport=UDP",
            "sip:[2001:db8::1]",
            "sips:+33612345678@[2001:db8::9]:5061;user=phone",
            "sip:8000@127.0.0.1:5060",
        ] {
            assert_eq!(parse_uri(uri).unwrap().to_string(), uri);
        }
        assert!(parse_uri("sip:8000@[::1]:port").is_err());
    }

    #[test]
    fn received_and_rport_are_stamped_on_the_top_via_with_bare_ipv6() {
        let request = |via: &str| {
            let text = format!(
                "OPTIONS sip:8000@h SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP proxy:5060;branch=z9hG4bKp\r\n\
                 From: <sip:a@h>;tag=1\r\nTo: <sip:8000@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
                 Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            match parse(text.as_bytes()).unwrap() {
                SipMessage::Request(r) => r,
                SipMessage::Response(_) => unreachable!(),
            }
        };
        let top = |r: &rsip::Request| vias(r).first().unwrap().to_string();
        let v6: std::net::SocketAddr = "[::1]:5098".parse().unwrap();
        let mut r = request("SIP/2.0/UDP [::1]:5098;branch=z9hG4bK1;rport");
        stamp_via(&mut r, v6);
        assert_eq!(
            top(&r),
            "SIP/2.0/UDP [::1]:5098;branch=z9hG4bK1;received=::1;rport=5098"
        );
        // The second hop is untouched and the transaction key still reads the branch.
        assert_eq!(vias(&r).len(), 2);
        assert_eq!(branch(&r).as_deref(), Some("z9hG4bK1"));
        // Behind NAT: another address, no rport asked.
        let nat: std::net::SocketAddr = "[2001:db8::9]:40000".parse().unwrap();
        let mut r = request("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK2");
        stamp_via(&mut r, nat);
        assert_eq!(
            top(&r),
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK2;received=2001:db8::9"
        );
        // Same address, no rport: nothing to say.
        let v4: std::net::SocketAddr = "10.0.0.2:5060".parse().unwrap();
        let mut r = request("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK3");
        stamp_via(&mut r, v4);
        assert_eq!(top(&r), "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK3");
        // A host name and rport over IPv4.
        let mut r = request("SIP/2.0/TCP phone.example;rport;branch=z9hG4bK4");
        stamp_via(&mut r, "192.0.2.7:61000".parse().unwrap());
        assert_eq!(
            top(&r),
            "SIP/2.0/TCP phone.example;branch=z9hG4bK4;received=192.0.2.7;rport=61000"
        );
    }

    #[test]
    fn parses_a_plain_request() {
        let r = request(OPTIONS);
        assert_eq!(r.method, rsip::Method::Options);
        assert_eq!(branch(&r).as_deref(), Some("z9hG4bK776asdhds"));
        assert_eq!(cseq(&r), Some((63104, "OPTIONS".into())));
        assert_eq!(header_value(&r, "max-forwards").as_deref(), Some("70"));
    }

    #[test]
    fn missing_required_headers_are_named() {
        let text = OPTIONS.replace("Call-ID: a84b4c76e66710@pc33.example.com\r\n", "");
        assert_eq!(
            parse(text.as_bytes()),
            Err(ParseError::MissingHeader("Call-ID"))
        );
        // RFC 2543 requests have no Max-Forwards and are served (RFC 4475 §3.4.1).
        let text = OPTIONS.replace("Max-Forwards: 70\r\n", "");
        assert!(parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn extension_headers_are_reachable_by_name() {
        let text = OPTIONS.replace("Content-Length: 0", "X-Queue : sales\r\nContent-Length: 0");
        let r = request(&text);
        assert_eq!(header_value(&r, "x-queue").as_deref(), Some("sales"));
        assert_eq!(header_values(&r, "X-Missing"), Vec::<String>::new());
    }

    #[test]
    fn cseq_method_must_match() {
        let text = OPTIONS.replace("63104 OPTIONS", "63104 INVITE");
        assert_eq!(parse(text.as_bytes()), Err(ParseError::CSeqMismatch));
    }

    #[test]
    fn numeric_ranges_are_enforced() {
        let text = OPTIONS.replace("Max-Forwards: 70", "Max-Forwards: 256");
        assert_eq!(
            parse(text.as_bytes()),
            Err(ParseError::OutOfRange("Max-Forwards"))
        );
        let text = OPTIONS.replace("63104 OPTIONS", "2147483648 OPTIONS");
        assert_eq!(parse(text.as_bytes()), Err(ParseError::OutOfRange("CSeq")));
    }

    #[test]
    fn content_length_longer_than_body_is_refused_and_extra_bytes_dropped() {
        let text = OPTIONS.replace("Content-Length: 0", "Content-Length: 5");
        assert_eq!(parse(text.as_bytes()), Err(ParseError::TruncatedBody));
        let text = format!(
            "{}hello world",
            OPTIONS.replace("Content-Length: 0", "Content-Length: 5")
        );
        let r = request(&text);
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn limits_refuse_huge_messages_and_header_floods() {
        let big = vec![b'a'; MAX_MESSAGE_SIZE + 1];
        assert_eq!(parse(&big), Err(ParseError::TooLarge));
        let flood = "X-A: b\r\n".repeat(MAX_HEADERS + 1);
        let text = OPTIONS.replace("Content-Length: 0\r\n", &flood);
        assert_eq!(parse(text.as_bytes()), Err(ParseError::TooManyHeaders));
    }

    #[test]
    fn folded_compact_headers_are_normalised() {
        let text = "INVITE sip:a@example.com SIP/2.0\r\n\
            v: SIP / 2.0 / UDP host.example.com ;\r\n branch = z9hG4bKabc, SIP/2.0/TCP h2\r\n\
            f : <sip:b@example.com>;tag=1\r\nt: sip:a@example.com\r\ni: x@y\r\n\
            CSeq: 1\r\n INVITE\r\nMax-Forwards: 70\r\nl: 0\r\n\r\n";
        let r = request(text);
        let hops = vias(&r);
        assert_eq!(hops.len(), 2);
        assert_eq!(hops[0].transport, "UDP");
        assert_eq!(hops[0].sent_by, "host.example.com");
        assert_eq!(hops[0].branch(), Some("z9hG4bKabc"));
        assert_eq!(hops[1].sent_by, "h2");
        assert_eq!(header_value(&r, "Call-ID").as_deref(), Some("x@y"));
    }

    #[test]
    fn response_for_copies_dialog_headers_and_adds_a_tag() {
        let r = request(OPTIONS);
        let resp = response_with_tag(&r, 486, "Busy Here", "abc");
        assert_eq!(resp.status_code.code(), 486);
        assert_eq!(
            header_value(&resp, "To").as_deref(),
            Some("Bob <sip:bob@example.com>;tag=abc")
        );
        assert_eq!(branch(&resp), branch(&r));
        assert_eq!(
            header_value(&resp, "CSeq").as_deref(),
            Some("63104 OPTIONS")
        );
        let trying = response_for(&r, 100, "Trying");
        assert_eq!(tag_of(&header_value(&trying, "To").unwrap()), None);
        // What we produce, we parse back.
        let wire = to_bytes(&SipMessage::Response(resp));
        assert!(parse(&wire).is_ok(), "{}", String::from_utf8_lossy(&wire));
    }

    #[test]
    fn branch_cookie_is_recognised() {
        assert!(is_rfc3261_branch("z9hG4bK776asdhds"));
        assert!(!is_rfc3261_branch("z9hG4bK"));
        assert!(!is_rfc3261_branch("390skdjuw"));
        assert!(is_rfc3261_branch(&new_branch()));
    }

    #[test]
    fn framing_waits_for_the_body_and_skips_keepalives() {
        let msg = OPTIONS.replace("Content-Length: 0", "Content-Length: 4") + "abcd";
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(msg.as_bytes());
        assert_eq!(framing(&buf[..buf.len() - 1]), Ok(None));
        assert_eq!(
            framing(&buf),
            Ok(Some(Frame::Message {
                skip: 4,
                len: msg.len()
            }))
        );
        assert_eq!(framing(b"\r\n\r\n"), Ok(Some(Frame::KeepAlive { len: 4 })));
        assert_eq!(framing(b""), Ok(None));
        assert_eq!(framing(b"OPTIONS sip:a SIP/2.0\r\nVia: x"), Ok(None));
    }

    #[test]
    fn framing_needs_content_length_on_streams() {
        let msg = OPTIONS.replace("Content-Length: 0\r\n", "");
        assert_eq!(framing(msg.as_bytes()), Err(ParseError::BadContentLength));
        let endless = vec![b'a'; MAX_MESSAGE_SIZE + 2];
        assert_eq!(framing(&endless), Err(ParseError::TooLarge));
    }
}

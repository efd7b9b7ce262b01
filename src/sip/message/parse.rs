//! [`parse`]: splitting, normalising and validating the header section, then rsip.

use rsip::SipMessage;

use super::syntax::{
    Via, closing_quote, find_unquoted, has_uri_headers, is_token_char, parse_params, split_commas,
    v6_references_valid,
};
use super::{MAX_CSEQ, ParseError, ParseLimits};

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

/// One header line after unfolding, with its full canonical name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawHeader {
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
pub(super) fn split_headers(
    section: &str,
    max_headers: usize,
) -> Result<Vec<RawHeader>, ParseError> {
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

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn values<'a>(headers: &'a [RawHeader], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

pub(super) fn content_length(headers: &[RawHeader]) -> Result<Option<usize>, ParseError> {
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
pub(super) fn parse_decimal(v: &str, max: u64) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

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

    /// The sample OPTIONS with `from` replaced by `to`, parsed.
    fn parse_edited(from: &str, to: &str) -> Result<SipMessage, ParseError> {
        parse(OPTIONS.replace(from, to).as_bytes())
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
        assert_eq!(
            parse_edited("Call-ID: a84b4c76e66710@pc33.example.com\r\n", ""),
            Err(ParseError::MissingHeader("Call-ID"))
        );
        // RFC 2543 requests have no Max-Forwards and are served (RFC 4475 §3.4.1).
        assert!(parse_edited("Max-Forwards: 70\r\n", "").is_ok());
    }

    #[test]
    fn cseq_method_must_match() {
        assert_eq!(
            parse_edited("63104 OPTIONS", "63104 INVITE"),
            Err(ParseError::CSeqMismatch)
        );
    }

    #[test]
    fn numeric_ranges_are_enforced() {
        assert_eq!(
            parse_edited("Max-Forwards: 70", "Max-Forwards: 256"),
            Err(ParseError::OutOfRange("Max-Forwards"))
        );
        assert_eq!(
            parse_edited("63104 OPTIONS", "2147483648 OPTIONS"),
            Err(ParseError::OutOfRange("CSeq"))
        );
    }

    #[test]
    fn content_length_longer_than_body_is_refused_and_extra_bytes_dropped() {
        assert_eq!(
            parse_edited("Content-Length: 0", "Content-Length: 5"),
            Err(ParseError::TruncatedBody)
        );
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
        assert_eq!(
            parse_edited("Content-Length: 0\r\n", &flood),
            Err(ParseError::TooManyHeaders)
        );
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
}

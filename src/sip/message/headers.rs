//! Reading headers of a parsed message: by name, Via hops, CSeq, tags; stamping `received`.

use rsip::Header;
use rsip::headers::UntypedHeader;
use rsip::message::HasHeaders;

use super::parse::parse_decimal;
use super::syntax::{Params, Via, find_unquoted, parse_params, split_commas};
use super::{BRANCH_MAGIC, MAX_CSEQ};

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
        .filter(|h| header_name(h).eq_ignore_ascii_case(name))
        .map(|h| header_text(h).to_string())
        .collect()
}

/// The first value of a header, by full name (case-insensitive).
pub fn header_value(msg: &impl HasHeaders, name: &str) -> Option<String> {
    header_str(msg, name).map(str::to_string)
}

/// The first value of a header, by full name (case-insensitive), borrowed: no copy is made.
pub fn header_str<'m>(msg: &'m impl HasHeaders, name: &str) -> Option<&'m str> {
    msg.headers()
        .iter()
        .find(|h| header_name(h).eq_ignore_ascii_case(name))
        .map(header_text)
}

/// Every value of a header, by full name (case-insensitive), borrowed and in order. Each header
/// is matched on its name alone, without formatting it (what rsip's `Display` would cost).
pub fn header_strs<'m>(
    msg: &'m impl HasHeaders,
    name: &'m str,
) -> impl Iterator<Item = &'m str> + 'm {
    msg.headers()
        .iter()
        .filter(move |h| header_name(h).eq_ignore_ascii_case(name))
        .map(header_text)
}

/// The name rsip writes for a header: its long form (`Call-ID`, `CSeq`, `WWW-Authenticate`)
/// for the headers it knows, the name as received for the others. Read without formatting.
pub fn header_name(h: &Header) -> &str {
    match h {
        Header::Accept(_) => "Accept",
        Header::AcceptEncoding(_) => "Accept-Encoding",
        Header::AcceptLanguage(_) => "Accept-Language",
        Header::AlertInfo(_) => "Alert-Info",
        Header::Allow(_) => "Allow",
        Header::AuthenticationInfo(_) => "Authentication-Info",
        Header::Authorization(_) => "Authorization",
        Header::CSeq(_) => "CSeq",
        Header::CallId(_) => "Call-ID",
        Header::CallInfo(_) => "Call-Info",
        Header::Contact(_) => "Contact",
        Header::ContentDisposition(_) => "Content-Disposition",
        Header::ContentEncoding(_) => "Content-Encoding",
        Header::ContentLanguage(_) => "Content-Language",
        Header::ContentLength(_) => "Content-Length",
        Header::ContentType(_) => "Content-Type",
        Header::Date(_) => "Date",
        Header::ErrorInfo(_) => "Error-Info",
        Header::Event(_) => "Event",
        Header::Expires(_) => "Expires",
        Header::From(_) => "From",
        Header::InReplyTo(_) => "In-Reply-To",
        Header::MaxForwards(_) => "Max-Forwards",
        Header::MimeVersion(_) => "Mime-Version",
        Header::MinExpires(_) => "Min-Expires",
        Header::Organization(_) => "Organization",
        Header::Other(name, _) => name.trim(),
        Header::Priority(_) => "Priority",
        Header::ProxyAuthenticate(_) => "Proxy-Authenticate",
        Header::ProxyAuthorization(_) => "Proxy-Authorization",
        Header::ProxyRequire(_) => "Proxy-Require",
        Header::RecordRoute(_) => "Record-Route",
        Header::ReplyTo(_) => "Reply-To",
        Header::Require(_) => "Require",
        Header::RetryAfter(_) => "Retry-After",
        Header::Route(_) => "Route",
        Header::Server(_) => "Server",
        Header::Subject(_) => "Subject",
        Header::SubscriptionState(_) => "Subscription-State",
        Header::Supported(_) => "Supported",
        Header::Timestamp(_) => "Timestamp",
        Header::To(_) => "To",
        Header::Unsupported(_) => "Unsupported",
        Header::UserAgent(_) => "User-Agent",
        Header::Via(_) => "Via",
        Header::Warning(_) => "Warning",
        Header::WwwAuthenticate(_) => "WWW-Authenticate",
    }
}

/// A header's value without surrounding whitespace, as it follows `Name:` on the wire.
pub fn header_text(h: &Header) -> &str {
    let value = match h {
        Header::Accept(v) => v.value(),
        Header::AcceptEncoding(v) => v.value(),
        Header::AcceptLanguage(v) => v.value(),
        Header::AlertInfo(v) => v.value(),
        Header::Allow(v) => v.value(),
        Header::AuthenticationInfo(v) => v.value(),
        Header::Authorization(v) => v.value(),
        Header::CSeq(v) => v.value(),
        Header::CallId(v) => v.value(),
        Header::CallInfo(v) => v.value(),
        Header::Contact(v) => v.value(),
        Header::ContentDisposition(v) => v.value(),
        Header::ContentEncoding(v) => v.value(),
        Header::ContentLanguage(v) => v.value(),
        Header::ContentLength(v) => v.value(),
        Header::ContentType(v) => v.value(),
        Header::Date(v) => v.value(),
        Header::ErrorInfo(v) => v.value(),
        Header::Event(v) => v.value(),
        Header::Expires(v) => v.value(),
        Header::From(v) => v.value(),
        Header::InReplyTo(v) => v.value(),
        Header::MaxForwards(v) => v.value(),
        Header::MimeVersion(v) => v.value(),
        Header::MinExpires(v) => v.value(),
        Header::Organization(v) => v.value(),
        Header::Other(_, v) => v,
        Header::Priority(v) => v.value(),
        Header::ProxyAuthenticate(v) => v.value(),
        Header::ProxyAuthorization(v) => v.value(),
        Header::ProxyRequire(v) => v.value(),
        Header::RecordRoute(v) => v.value(),
        Header::ReplyTo(v) => v.value(),
        Header::Require(v) => v.value(),
        Header::RetryAfter(v) => v.value(),
        Header::Route(v) => v.value(),
        Header::Server(v) => v.value(),
        Header::Subject(v) => v.value(),
        Header::SubscriptionState(v) => v.value(),
        Header::Supported(v) => v.value(),
        Header::Timestamp(v) => v.value(),
        Header::To(v) => v.value(),
        Header::Unsupported(v) => v.value(),
        Header::UserAgent(v) => v.value(),
        Header::Via(v) => v.value(),
        Header::Warning(v) => v.value(),
        Header::WwwAuthenticate(v) => v.value(),
    };
    value.trim()
}

/// Every Via hop of a message, top first, parsed by us.
pub fn vias(msg: &impl HasHeaders) -> Vec<Via> {
    header_strs(msg, "Via")
        .flat_map(split_commas)
        .filter_map(|hop| Via::parse(hop).ok())
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
    top_via(msg).and_then(|v| v.branch().map(str::to_string))
}

/// The top Via hop alone, without parsing the hops below it.
pub fn top_via(msg: &impl HasHeaders) -> Option<Via> {
    header_strs(msg, "Via")
        .flat_map(split_commas)
        .find_map(|hop| Via::parse(hop).ok())
}

/// True for branches from RFC 3261 elements, which the transaction layer may match on alone.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.starts_with(BRANCH_MAGIC) && branch.len() > BRANCH_MAGIC.len()
}

/// The CSeq number and method of a message, from our own reading of the header.
pub fn cseq(msg: &impl HasHeaders) -> Option<(u32, String)> {
    let v = header_str(msg, "CSeq")?;
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
    param_value(params, "tag")
}

/// The value of parameter `name` (any case) in a `;`-separated parameter list.
pub fn param_value(params: &str, name: &str) -> Option<String> {
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn received_and_rport_are_stamped_on_the_top_via_with_bare_ipv6() {
        let request = |via: &str| {
            let text = format!(
                "OPTIONS sip:8000@h SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP proxy:5060;branch=z9hG4bKp\r\n\
                 From: <sip:a@h>;tag=1\r\nTo: <sip:8000@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
                 Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            super::super::test_support::request(&text)
        };
        // The request with Via `via`, as stamped on arrival from `source`.
        let stamped = |via: &str, source: &str| {
            let mut r = request(via);
            stamp_via(&mut r, source.parse().unwrap());
            r
        };
        let top = |r: &rsip::Request| vias(r).first().unwrap().to_string();
        let r = stamped("SIP/2.0/UDP [::1]:5098;branch=z9hG4bK1;rport", "[::1]:5098");
        assert_eq!(
            top(&r),
            "SIP/2.0/UDP [::1]:5098;branch=z9hG4bK1;received=::1;rport=5098"
        );
        // The second hop is untouched and the transaction key still reads the branch.
        assert_eq!(vias(&r).len(), 2);
        assert_eq!(branch(&r).as_deref(), Some("z9hG4bK1"));
        // Behind NAT: another address, no rport asked.
        let r = stamped(
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK2",
            "[2001:db8::9]:40000",
        );
        assert_eq!(
            top(&r),
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK2;received=2001:db8::9"
        );
        // Same address, no rport: nothing to say.
        let r = stamped("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK3", "10.0.0.2:5060");
        assert_eq!(top(&r), "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK3");
        // A host name and rport over IPv4.
        let r = stamped(
            "SIP/2.0/TCP phone.example;rport;branch=z9hG4bK4",
            "192.0.2.7:61000",
        );
        assert_eq!(
            top(&r),
            "SIP/2.0/TCP phone.example;branch=z9hG4bK4;received=192.0.2.7;rport=61000"
        );
    }

    #[test]
    fn extension_headers_are_reachable_by_name() {
        let text = OPTIONS.replace("Content-Length: 0", "X-Queue : sales\r\nContent-Length: 0");
        let r = request(&text);
        assert_eq!(header_value(&r, "x-queue").as_deref(), Some("sales"));
        assert_eq!(header_values(&r, "X-Missing"), Vec::<String>::new());
    }

    #[test]
    fn header_names_and_values_are_read_as_rsip_writes_them_without_formatting() {
        let r = every_header();
        assert_eq!(r.headers.iter().count(), 48, "{r}");
        for h in r.headers.iter() {
            let text = h.to_string();
            let (name, value) = text.split_once(':').unwrap();
            assert_eq!(header_name(h), name.trim(), "{text}");
            assert_eq!(header_text(h), value.trim(), "{text}");
        }
        assert_eq!(header_str(&r, "x-QUEUE"), Some("v1 ; p=2"));
        assert_eq!(header_str(&r, "x"), Some("v1 ; p=2"));
        assert_eq!(
            header_str(&r, "Session-Expires"),
            None,
            "helpers do not fold"
        );
        assert_eq!(header_strs(&r, "Via").count(), 1);
        assert_eq!(top_via(&r).unwrap().branch(), Some("z9hG4bK776asdhds"));
    }
}

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

//! One pass over a message's headers that files them by name, so that each later lookup is a
//! binary search over borrowed headers: no header is formatted, copied or scanned again.

use std::cmp::Ordering;

use rsip::Header;
use rsip::message::HasHeaders;

use super::MAX_CSEQ;
use super::headers::{header_name, header_text};
use super::parse::parse_decimal;
use super::syntax::{Via, split_commas};
use rsip::SipMessage;

/// The long names of the compact forms (RFC 3261 §7.3.3, and the extensions' letters), so that
/// `i` and `Call-ID` file under one name.
const COMPACT: &[(u8, &str)] = &[
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// The long form of a header name: a compact letter is expanded, any other name is kept.
pub fn long_name(name: &str) -> &str {
    match name.as_bytes() {
        [c] => COMPACT
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(c))
            .map_or(name, |(_, long)| long),
        _ => name,
    }
}

/// ASCII case-insensitive ordering, without lower-casing copies.
fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// The header at `pos`: `Headers::iter` is a slice iterator, so `nth` is a pointer step.
fn at(headers: &rsip::Headers, pos: u32) -> Option<&Header> {
    headers.iter().nth(pos as usize)
}

/// A message's header positions filed by name (compact and long forms folded, case ignored):
/// built once per message in one pass, then each lookup is a binary search that neither
/// formats nor copies a header. It reads the message it was built from (see [`IndexedMessage`],
/// which keeps the two together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderIndex {
    /// Header positions, sorted by long name; one name's headers keep their message order.
    order: Vec<u32>,
}

impl HeaderIndex {
    /// Files every header of `headers` by its long name.
    pub fn new(headers: &rsip::Headers) -> Self {
        let names: Vec<&str> = headers.iter().map(|h| long_name(header_name(h))).collect();
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        // A stable sort keeps the message order among headers of one name (Via hops, Routes).
        order.sort_by(|a, b| cmp_ignore_case(names[*a as usize], names[*b as usize]));
        HeaderIndex { order }
    }

    /// Where the headers named `name` start in `order`.
    fn start(&self, headers: &rsip::Headers, name: &str) -> usize {
        self.order.partition_point(|p| {
            let here = at(headers, *p).map_or("", |h| long_name(header_name(h)));
            cmp_ignore_case(here, name) == Ordering::Less
        })
    }

    /// The first header named `name` of `headers` (those this index was built from).
    pub fn first<'m>(&self, headers: &'m rsip::Headers, name: &str) -> Option<&'m Header> {
        let name = long_name(name);
        let h = at(headers, *self.order.get(self.start(headers, name))?)?;
        long_name(header_name(h))
            .eq_ignore_ascii_case(name)
            .then_some(h)
    }

    /// The headers of `headers` (those this index was built from) named `name`, in order.
    pub fn headers<'m>(
        &'m self,
        headers: &'m rsip::Headers,
        name: &'m str,
    ) -> impl Iterator<Item = &'m Header> + 'm {
        let name = long_name(name);
        let name_at = move |pos: &u32| at(headers, *pos).map_or("", |h| long_name(header_name(h)));
        self.order[self.start(headers, name)..]
            .iter()
            .take_while(move |p| name_at(p).eq_ignore_ascii_case(name))
            .filter_map(move |p| at(headers, *p))
    }
}

/// A parsed message with its [`HeaderIndex`]: parsed and filed once, then read by name
/// (either form, any case) as often as needed, values borrowed.
#[derive(Debug, Clone)]
pub struct IndexedMessage {
    msg: SipMessage,
    index: HeaderIndex,
}

impl IndexedMessage {
    /// Parses `bytes` (as [`super::parse`]) and files the headers.
    pub fn parse(bytes: &[u8]) -> Result<Self, super::ParseError> {
        super::parse(bytes).map(IndexedMessage::from)
    }

    /// The message.
    pub fn message(&self) -> &SipMessage {
        &self.msg
    }

    /// Gives the message back.
    pub fn into_message(self) -> SipMessage {
        self.msg
    }

    /// How many headers the message has.
    pub fn len(&self) -> usize {
        self.index.order.len()
    }

    /// True for a message without headers.
    pub fn is_empty(&self) -> bool {
        self.index.order.is_empty()
    }

    /// The headers named `name`, in message order.
    pub fn headers<'m>(&'m self, name: &'m str) -> impl Iterator<Item = &'m Header> + 'm {
        self.index.headers(self.msg.headers(), name)
    }

    /// Every value of `name`, trimmed, in message order.
    pub fn values<'m>(&'m self, name: &'m str) -> impl Iterator<Item = &'m str> + 'm {
        self.headers(name).map(header_text)
    }

    /// The first value of `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.index.first(self.msg.headers(), name).map(header_text)
    }

    /// Every Via hop, top first, parsed by us.
    pub fn vias(&self) -> Vec<Via> {
        self.values("Via")
            .flat_map(split_commas)
            .filter_map(|hop| Via::parse(hop).ok())
            .collect()
    }

    /// The top Via hop alone.
    pub fn top_via(&self) -> Option<Via> {
        self.values("Via")
            .flat_map(split_commas)
            .find_map(|hop| Via::parse(hop).ok())
    }

    /// The CSeq number and method, the method borrowed.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (n, m) = self.value("CSeq")?.split_once([' ', '\t'])?;
        let n = u32::try_from(parse_decimal(n.trim(), MAX_CSEQ)?).ok()?;
        Some((n, m.trim()))
    }
}

impl From<SipMessage> for IndexedMessage {
    fn from(msg: SipMessage) -> Self {
        let index = HeaderIndex::new(msg.headers());
        IndexedMessage { msg, index }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn the_index_folds_compact_names_keeps_order_and_reads_each_name() {
        let text = "INVITE sip:a@example.com SIP/2.0\r\n\
            v: SIP/2.0/UDP h1;branch=z9hG4bK1\r\nVia: SIP/2.0/TCP h2;branch=z9hG4bK2\r\n\
            f: <sip:b@example.com>;tag=1\r\nt: sip:a@example.com\r\ni: x@y\r\n\
            Route: <sip:r1>\r\nX-A: 1\r\nroute: <sip:r2>\r\nx: 90;refresher=uac\r\n\
            CSeq: 7 INVITE\r\nMax-Forwards: 70\r\nl: 0\r\n\r\n";
        let m = IndexedMessage::parse(text.as_bytes()).unwrap();
        let SipMessage::Request(r) = m.message() else {
            panic!("request expected")
        };
        assert_eq!(m.len(), r.headers.iter().count());
        assert!(!m.is_empty());
        for name in ["Call-ID", "call-id", "i", "I"] {
            assert_eq!(m.value(name), Some("x@y"), "{name}");
        }
        assert_eq!(m.value("Session-Expires"), Some("90;refresher=uac"));
        assert_eq!(m.value("x"), Some("90;refresher=uac"));
        assert_eq!(
            m.values("ROUTE").collect::<Vec<_>>(),
            ["<sip:r1>", "<sip:r2>"]
        );
        assert_eq!(m.value("x-a"), Some("1"));
        assert_eq!(m.value("X-Missing"), None);
        assert_eq!(m.values("Accept").count(), 0);
        let hops: Vec<String> = m.vias().iter().map(|v| v.sent_by.clone()).collect();
        assert_eq!(hops, ["h1", "h2"]);
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK1"));
        assert_eq!(m.cseq(), Some((7, "INVITE")));
        // The index agrees with the helpers on every header a message has.
        let r = every_header();
        let m = IndexedMessage::from(SipMessage::Request(r.clone()));
        for h in r.headers.iter() {
            let name = header_name(h);
            assert_eq!(
                m.values(name).collect::<Vec<_>>(),
                header_strs(&r, name).collect::<Vec<_>>(),
                "{name}"
            );
        }
        assert_eq!(m.into_message(), SipMessage::Request(r));
    }
}

//! What the message tests share: a sample request and its parser. Each concern's tests sit in
//! its own file and import this module whole.

pub(super) use rsip::SipMessage;

pub(super) use super::*;

pub(crate) const OPTIONS: &str = "OPTIONS sip:bob@example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
    Max-Forwards: 70\r\n\
    To: Bob <sip:bob@example.com>\r\n\
    From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
    Call-ID: a84b4c76e66710@pc33.example.com\r\n\
    CSeq: 63104 OPTIONS\r\n\
    Content-Length: 0\r\n\r\n";

/// The request written in `text` (the tests' sample messages; panics on anything else).
pub(crate) fn request(text: &str) -> rsip::Request {
    match parse(text.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("expected a request"),
    }
}

/// A request carrying one header of every kind rsip knows, plus extension headers.
pub(super) fn every_header() -> rsip::Request {
    let names = [
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Authentication-Info",
        "Authorization",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Type",
        "Date",
        "Error-Info",
        "Event",
        "Expires",
        "In-Reply-To",
        "Mime-Version",
        "Min-Expires",
        "Organization",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Record-Route",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Subject",
        "Subscription-State",
        "Supported",
        "Timestamp",
        "Unsupported",
        "User-Agent",
        "Warning",
        "WWW-Authenticate",
        "X-Queue",
        "x",
    ];
    let mut text = OPTIONS.replace("Content-Length: 0\r\n\r\n", "");
    for name in names {
        let value = match name {
            "Date" => "Sat, 13 Nov 2010 23:29:00 GMT",
            "Expires" | "Min-Expires" | "Retry-After" => "60",
            "Contact" | "Record-Route" | "Route" => "<sip:p.example.com;lr>",
            _ => "v1 ; p=2",
        };
        text.push_str(&format!("{name}:  {value} \r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    request(&text)
}

//! Building messages: responses to a request, tokens and branches, wire bytes.

use rsip::headers::UntypedHeader;
use rsip::message::HasHeaders;
use rsip::{Header, SipMessage};

use super::BRANCH_MAGIC;
use super::headers::tag_of;

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
    use super::super::test_support::*;

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
}

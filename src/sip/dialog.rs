//! Dialogs (RFC 3261 §12): identity, route set, CSeq spaces, building in-dialog requests with
//! loose (or legacy strict) routing.

use rsip::Header;
use rsip::headers::UntypedHeader;
use thiserror::Error;

use super::message::{
    self, cseq, header_value, header_values, name_addr_parts, split_commas, tag_of,
};

/// Names a dialog from our side: Call-ID, our tag, the peer's tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID shared by both ends.
    pub call_id: String,
    /// Our tag (From tag as UAC, To tag as UAS).
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog an incoming response belongs to (we sent the request).
    pub fn of_incoming_response(resp: &rsip::Response) -> Option<DialogId> {
        Some(DialogId {
            call_id: header_value(resp, "Call-ID")?,
            local_tag: tag_of(&header_value(resp, "From")?)?,
            remote_tag: tag_of(&header_value(resp, "To")?)?,
        })
    }
}

/// Why a dialog could not be made or a request was refused inside one.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DialogError {
    /// The message lacks something a dialog needs (400).
    #[error("Missing {0}")]
    Missing(&'static str),
    /// An in-dialog request with a CSeq below the peer's last (500, RFC 3261 §12.2.2).
    #[error("CSeq {got} is lower than the last one, {last}")]
    OutOfOrder {
        /// The request's CSeq number.
        got: u32,
        /// The peer's last CSeq number in this dialog.
        last: u32,
    },
}

/// Early until a 2xx, then confirmed until BYE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a 1xx with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// BYE sent or received.
    Terminated,
}

/// One dialog's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// The dialog's name.
    pub id: DialogId,
    /// Early, confirmed or over.
    pub state: DialogState,
    /// Our URI (From as UAC, To as UAS), without tag.
    pub local_uri: String,
    /// The peer's URI, without tag.
    pub remote_uri: String,
    /// Where in-dialog requests go: the peer's Contact URI.
    pub remote_target: String,
    /// Record-Route URIs in the order our requests traverse them.
    pub route_set: Vec<String>,
    /// Our Contact header value (name-addr) for target-refresh requests.
    pub local_contact: String,
    local_cseq: u32,
    /// The peer's last CSeq number (RFC 3261 §12.2.2), unknown until it sends a request.
    remote_cseq: Option<u32>,
}

fn contact_uri(msg: &impl rsip::message::HasHeaders) -> Option<String> {
    let c = header_value(msg, "Contact")?;
    let first = split_commas(&c).into_iter().next()?.to_string();
    name_addr_parts(&first).map(|(uri, _)| uri)
}

fn record_route(msg: &impl rsip::message::HasHeaders) -> Vec<String> {
    header_values(msg, "Record-Route")
        .iter()
        .flat_map(|v| {
            split_commas(v)
                .into_iter()
                .filter_map(|rr| name_addr_parts(rr).map(|(uri, _)| uri))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn without_tag(value: &str) -> String {
    match name_addr_parts(value) {
        Some((uri, _)) => format!("<{uri}>"),
        None => value.to_string(),
    }
}

impl Dialog {
    /// The dialog we create as UAS when sending `response` (1xx with To tag, or 2xx) to `request`.
    pub fn from_uas(
        request: &rsip::Request,
        response: &rsip::Response,
        local_contact: &str,
    ) -> Result<Dialog, DialogError> {
        let to = header_value(response, "To").ok_or(DialogError::Missing("To"))?;
        let from = header_value(request, "From").ok_or(DialogError::Missing("From"))?;
        let id = DialogId {
            call_id: header_value(request, "Call-ID").ok_or(DialogError::Missing("Call-ID"))?,
            local_tag: tag_of(&to).ok_or(DialogError::Missing("To tag"))?,
            remote_tag: tag_of(&from).ok_or(DialogError::Missing("From tag"))?,
        };
        Ok(Dialog {
            id,
            state: state_for(response),
            local_uri: without_tag(&to),
            remote_uri: without_tag(&from),
            remote_target: contact_uri(request).ok_or(DialogError::Missing("Contact"))?,
            route_set: record_route(request),
            local_contact: local_contact.to_string(),
            local_cseq: 0,
            remote_cseq: cseq(request).map(|(n, _)| n),
        })
    }

    /// The dialog we create as UAC on receiving `response` (with To tag) to our `request`.
    pub fn from_uac(
        request: &rsip::Request,
        response: &rsip::Response,
        local_contact: &str,
    ) -> Result<Dialog, DialogError> {
        let id = DialogId::of_incoming_response(response).ok_or(DialogError::Missing("tags"))?;
        let mut route_set = record_route(response);
        route_set.reverse();
        Ok(Dialog {
            id,
            state: state_for(response),
            local_uri: without_tag(&header_value(request, "From").unwrap_or_default()),
            remote_uri: without_tag(&header_value(response, "To").unwrap_or_default()),
            remote_target: contact_uri(response).ok_or(DialogError::Missing("Contact"))?,
            route_set,
            local_contact: local_contact.to_string(),
            local_cseq: cseq(request).map(|(n, _)| n).unwrap_or(1),
            remote_cseq: None,
        })
    }

    /// Takes the CSeq number of a request the peer sent inside the dialog (RFC 3261
    /// §12.2.2): lower than its last one is out of order (to be refused with 500 and not acted
    /// on); equal or higher becomes the last. An equal one is a retransmission, which the
    /// transaction layer absorbs before it gets here.
    pub fn take_remote_cseq(&mut self, n: u32) -> Result<(), DialogError> {
        match self.remote_cseq {
            Some(last) if n < last => Err(DialogError::OutOfOrder { got: n, last }),
            _ => {
                self.remote_cseq = Some(n);
                Ok(())
            }
        }
    }

    /// The URI our in-dialog requests are sent to first (RFC 3261 §12.2.1.1, §8.1.2): the
    /// first route of the route set, loose or strict; `None` when there is no route set (the
    /// request goes to the remote target).
    pub fn next_hop(&self) -> Option<&str> {
        self.route_set.first().map(String::as_str)
    }

    /// A new in-dialog request with the next CSeq; `via` is "SIP/2.0/UDP host:port".
    pub fn request(
        &mut self,
        method: rsip::Method,
        via: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> rsip::Request {
        self.local_cseq = self
            .local_cseq
            .wrapping_add(1)
            .min(message::MAX_CSEQ as u32);
        if method == rsip::Method::Bye {
            self.state = DialogState::Terminated;
        }
        self.build(method, self.local_cseq, via, body)
    }

    /// BYE ends the dialog.
    pub fn bye(&mut self, via: &str) -> rsip::Request {
        self.request(rsip::Method::Bye, via, None)
    }

    /// A re-INVITE carrying a new SDP offer.
    pub fn reinvite(&mut self, via: &str, sdp: Vec<u8>) -> rsip::Request {
        self.request(rsip::Method::Invite, via, Some(("application/sdp", sdp)))
    }

    /// The ACK for a 2xx to our INVITE with CSeq `invite_cseq` (its own transaction-less request).
    pub fn ack(&self, invite_cseq: u32, via: &str, body: Option<(&str, Vec<u8>)>) -> rsip::Request {
        self.build(rsip::Method::Ack, invite_cseq, via, body)
    }

    fn build(
        &self,
        method: rsip::Method,
        seq: u32,
        via: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> rsip::Request {
        // §12.2.1.1: loose routing keeps the remote target as Request-URI; a strict first hop
        // becomes the Request-URI and the remote target goes last in Route.
        let strict = self.route_set.first().is_some_and(|first| !has_lr(first));
        let (uri, routes): (String, Vec<String>) = if strict {
            let mut routes: Vec<String> = self.route_set[1..].to_vec();
            routes.push(self.remote_target.clone());
            (self.route_set[0].clone(), routes)
        } else {
            (self.remote_target.clone(), self.route_set.clone())
        };
        let mut h = rsip::Headers::default();
        h.push(Header::Via(rsip::headers::Via::new(format!(
            "{via};branch={}",
            message::new_branch()
        ))));
        h.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        for r in routes {
            h.push(Header::Route(rsip::headers::Route::new(format!("<{r}>"))));
        }
        h.push(Header::From(rsip::headers::From::new(format!(
            "{};tag={}",
            self.local_uri, self.id.local_tag
        ))));
        h.push(Header::To(rsip::headers::To::new(format!(
            "{};tag={}",
            self.remote_uri, self.id.remote_tag
        ))));
        h.push(Header::CallId(rsip::headers::CallId::new(
            self.id.call_id.clone(),
        )));
        h.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{seq} {method}"
        ))));
        if matches!(
            method,
            rsip::Method::Invite | rsip::Method::Update | rsip::Method::Refer
        ) {
            h.push(Header::Contact(rsip::headers::Contact::new(
                self.local_contact.clone(),
            )));
        }
        let body = match body {
            Some((ct, bytes)) => {
                h.push(Header::ContentType(rsip::headers::ContentType::new(ct)));
                bytes
            }
            None => Vec::new(),
        };
        h.push(Header::ContentLength(rsip::headers::ContentLength::new(
            body.len().to_string(),
        )));
        rsip::Request {
            method,
            uri: parse_uri(&uri),
            version: rsip::Version::V2,
            headers: h,
            body,
        }
    }
}

fn state_for(resp: &rsip::Response) -> DialogState {
    if (200..300).contains(&resp.status_code.code()) {
        DialogState::Confirmed
    } else {
        DialogState::Early
    }
}

fn has_lr(uri: &str) -> bool {
    uri.split(';').skip(1).any(|p| {
        p.trim().eq_ignore_ascii_case("lr") || p.trim().to_ascii_lowercase().starts_with("lr=")
    })
}

/// rsip's URI from text; URIs we cannot parse degrade to a host-only URI rather than panic.
fn parse_uri(uri: &str) -> rsip::Uri {
    message::parse_uri(uri).unwrap_or_else(|_| rsip::Uri {
        scheme: Some(rsip::Scheme::Sip),
        host_with_port: rsip::Domain::from(uri.to_string()).into(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse, response_with_tag};

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n\
        Max-Forwards: 70\r\n\
        Record-Route: <sip:p2.example.com;lr>\r\n\
        Record-Route: <sip:p1.example.com;lr>\r\n\
        To: Bob <sip:bob@biloxi.example.com>\r\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
        Content-Length: 0\r\n\r\n";

    use crate::sip::message::test_support::request as req;

    /// The UAS dialog `invite` (its text) set up with a 200, and the BYE it sends.
    fn uas_bye(invite: &str) -> (Dialog, rsip::Request) {
        let inv = req(invite);
        let mut d =
            Dialog::from_uas(&inv, &ok_with_contact(&inv, 200), "<sip:bob@192.0.2.4>").unwrap();
        let bye = d.bye(VIA);
        (d, bye)
    }

    /// Asserts that `msg` carries each (header, value).
    fn assert_headers(msg: &rsip::Request, expected: &[(&str, &str)]) {
        for (name, value) in expected {
            assert_eq!(header_value(msg, name).as_deref(), Some(*value), "{name}");
        }
    }

    fn ok_with_contact(r: &rsip::Request, code: u16) -> rsip::Response {
        let mut resp = response_with_tag(r, code, "OK", "314159bob");
        for h in r.headers.iter() {
            if matches!(h, Header::RecordRoute(_)) {
                resp.headers.push(h.clone());
            }
        }
        resp.headers
            .push(Header::Contact(rsip::headers::Contact::new(
                "<sip:bob@192.0.2.4>",
            )));
        resp
    }

    const VIA: &str = "SIP/2.0/UDP 192.0.2.4:5060";

    #[test]
    fn a_request_below_the_peers_last_cseq_is_out_of_order() {
        let inv = req(INVITE);
        let mut d =
            Dialog::from_uas(&inv, &ok_with_contact(&inv, 200), "<sip:bob@192.0.2.4>").unwrap();
        // The INVITE's CSeq is the first one seen; equal and higher are in order.
        assert_eq!(
            d.take_remote_cseq(314158),
            Err(DialogError::OutOfOrder {
                got: 314158,
                last: 314159
            })
        );
        assert_eq!(d.take_remote_cseq(314159), Ok(()));
        assert_eq!(d.take_remote_cseq(314170), Ok(()));
        // The refused one did not move the mark; the accepted one did.
        assert!(d.take_remote_cseq(314165).is_err());
        // As UAC nothing is known until the peer's first request.
        let mut uac =
            Dialog::from_uac(&inv, &ok_with_contact(&inv, 200), "<sip:alice@192.0.2.1>").unwrap();
        assert_eq!(uac.take_remote_cseq(1), Ok(()));
        assert!(uac.take_remote_cseq(0).is_err());
    }

    #[test]
    fn uas_dialog_takes_ids_route_set_and_target_from_the_invite() {
        let inv = req(INVITE);
        let d = Dialog::from_uas(&inv, &ok_with_contact(&inv, 200), "<sip:bob@192.0.2.4>").unwrap();
        assert_eq!(
            d.id,
            DialogId {
                call_id: "a84b4c76e66710".into(),
                local_tag: "314159bob".into(),
                remote_tag: "1928301774".into()
            }
        );
        assert_eq!(d.state, DialogState::Confirmed);
        assert_eq!(d.remote_target, "sip:alice@pc33.atlanta.example.com");
        assert_eq!(
            d.route_set,
            vec!["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
        );
    }

    #[test]
    fn uas_bye_goes_to_the_remote_target_through_loose_routes() {
        let (d, bye) = uas_bye(INVITE);
        assert_eq!(bye.uri.to_string(), "sip:alice@pc33.atlanta.example.com");
        assert_eq!(
            header_values(&bye, "Route"),
            vec!["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
        );
        assert_headers(
            &bye,
            &[
                ("From", "<sip:bob@biloxi.example.com>;tag=314159bob"),
                ("To", "<sip:alice@atlanta.example.com>;tag=1928301774"),
            ],
        );
        assert_eq!(cseq(&bye), Some((1, "BYE".into())));
        assert!(message::is_rfc3261_branch(&message::branch(&bye).unwrap()));
        assert_eq!(d.state, DialogState::Terminated);
        // What we build, we parse back.
        assert!(parse(bye.to_string().as_bytes()).is_ok(), "{bye}");
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_uses_its_own_cseq_space() {
        let inv = req(INVITE);
        let resp = ok_with_contact(&inv, 200);
        let mut d = Dialog::from_uac(&inv, &resp, "<sip:alice@pc33.atlanta.example.com>").unwrap();
        assert_eq!(d.id.local_tag, "1928301774");
        assert_eq!(d.id.remote_tag, "314159bob");
        assert_eq!(
            d.route_set,
            vec!["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
        );
        assert_eq!(d.remote_target, "sip:bob@192.0.2.4");
        let ack = d.ack(314159, VIA, None);
        assert_eq!(cseq(&ack), Some((314159, "ACK".into())));
        assert_eq!(ack.uri.to_string(), "sip:bob@192.0.2.4");
        let dtmf = b"Signal=5\r\nDuration=160\r\n".to_vec();
        let info = d.request(
            rsip::Method::Info,
            VIA,
            Some(("application/dtmf-relay", dtmf)),
        );
        assert_eq!(cseq(&info), Some((314160, "INFO".into())));
        assert_eq!(header_value(&info, "Content-Length").as_deref(), Some("24"));
        let re = d.reinvite(VIA, b"v=0\r\n".to_vec());
        assert_eq!(cseq(&re), Some((314161, "INVITE".into())));
        assert_headers(
            &re,
            &[
                ("Contact", "<sip:alice@pc33.atlanta.example.com>"),
                ("Content-Type", "application/sdp"),
            ],
        );
    }

    #[test]
    fn strict_first_hop_becomes_the_request_uri() {
        let (_, bye) = uas_bye(&INVITE.replace("<sip:p2.example.com;lr>", "<sip:p2.example.com>"));
        assert_eq!(bye.uri.to_string(), "sip:p2.example.com");
        assert_eq!(
            header_values(&bye, "Route"),
            vec![
                "<sip:p1.example.com;lr>",
                "<sip:alice@pc33.atlanta.example.com>"
            ]
        );
    }

    #[test]
    fn missing_pieces_are_errors_not_panics() {
        let inv = req(&INVITE.replace("Contact: <sip:alice@pc33.atlanta.example.com>\r\n", ""));
        assert_eq!(
            Dialog::from_uas(&inv, &ok_with_contact(&inv, 200), "<sip:b@h>").unwrap_err(),
            DialogError::Missing("Contact")
        );
        let untagged = response_with_tag(&inv, 100, "Trying", "x");
        assert_eq!(
            Dialog::from_uac(&inv, &untagged, "<sip:a@h>").unwrap_err(),
            DialogError::Missing("tags")
        );
    }
}

//! The simulated parties' SIP messages as text: reading a received one (start line, headers)
//! and writing requests and responses. The parties are simple user agents with one dialog at a
//! time; the engine's endpoint is the one that parses and validates strictly.

use std::net::SocketAddr;

/// A received SIP message, read just enough for a party to act on it.
#[derive(Debug, Clone)]
pub struct Msg {
    /// The whole text.
    pub text: String,
    /// Request method, or `None` for a response.
    pub method: Option<String>,
    /// Response status (0 for a request).
    pub status: u16,
}

impl Msg {
    /// Reads `bytes`; `None` when they are no SIP message.
    pub fn read(bytes: &[u8]) -> Option<Msg> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let first = text.lines().next()?.to_string();
        let (method, status) = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            (None, rest.get(..3)?.parse().ok()?)
        } else {
            (Some(first.split(' ').next()?.to_string()), 0)
        };
        Some(Msg {
            text,
            method,
            status,
        })
    }

    /// The first value of header `name` (full name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.text
            .split("\r\n\r\n")
            .next()?
            .lines()
            .skip(1)
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
    }

    /// Every header line named `name`, as written.
    fn lines_of(&self, name: &str) -> Vec<&str> {
        self.text
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter(|l| {
                l.split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            })
            .collect()
    }

    /// The method named in CSeq.
    pub fn cseq_method(&self) -> &str {
        self.header("CSeq")
            .and_then(|c| c.split_whitespace().nth(1))
            .unwrap_or_default()
    }

    /// Call-ID.
    pub fn call_id(&self) -> &str {
        self.header("Call-ID").unwrap_or_default()
    }

    /// The URI inside the Contact header.
    pub fn contact_uri(&self) -> Option<String> {
        let c = self.header("Contact")?;
        let start = c.find('<')? + 1;
        let end = c[start..].find('>')? + start;
        Some(c[start..end].to_string())
    }

    /// The user part of the From URI.
    pub fn from_user(&self) -> String {
        let f = self.header("From").unwrap_or_default();
        let f = f.split("sip:").nth(1).unwrap_or_default();
        f.split(['@', '>', ';'])
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// The body after the blank line.
    pub fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }

    /// A response to this request: Via, From, To (tagged with `to_tag` when it has none),
    /// Call-ID and CSeq copied, then `extra` header lines and `body` (SDP when not empty).
    pub fn respond(&self, status: &str, to_tag: &str, extra: &str, body: &str) -> Vec<u8> {
        let mut out = format!("SIP/2.0 {status}\r\n");
        for v in self.lines_of("Via") {
            out.push_str(v);
            out.push_str("\r\n");
        }
        let to = self.header("To").unwrap_or_default();
        let to = if to.contains(";tag=") || to_tag.is_empty() {
            to.to_string()
        } else {
            format!("{to};tag={to_tag}")
        };
        out.push_str(&format!(
            "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}",
            self.header("From").unwrap_or_default(),
            self.call_id(),
            self.header("CSeq").unwrap_or_default(),
        ));
        finish(out, body)
    }
}

/// Ends a message: Content-Type and Content-Length, blank line, body.
fn finish(mut out: String, body: &str) -> Vec<u8> {
    if !body.is_empty() && !out.contains("Content-Type:") {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// An SDP offer or answer for a party at `addr` (G.711 µ-law and telephone-event).
pub fn sdp(addr: SocketAddr) -> String {
    format!(
        "v=0\r\no=sim 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        ip = addr.ip()
    )
}

/// One party's view of its dialog with the engine: what goes in its requests.
#[derive(Debug, Clone)]
pub struct Leg {
    /// The party's address.
    pub me: SocketAddr,
    /// Call-ID.
    pub call_id: String,
    /// Our From (or To, as callee) with our tag.
    pub local: String,
    /// The engine's side with its tag, once known.
    pub remote: String,
    /// Where in-dialog requests go (the engine's Contact).
    pub target: String,
    /// Our last CSeq.
    pub cseq: u32,
    /// Branch counter, so each request is a new transaction.
    branch: u32,
}

impl Leg {
    /// A dialog of `me` for `call_id` between `local` and `remote`, requests to `target`.
    pub fn new(
        me: SocketAddr,
        call_id: String,
        local: String,
        remote: String,
        target: String,
    ) -> Leg {
        Leg {
            me,
            call_id,
            local,
            remote,
            target,
            cseq: 0,
            branch: 0,
        }
    }

    /// The next request `method`: a new transaction (new branch), with a new CSeq unless it
    /// is an ACK (which takes the INVITE's).
    pub fn request(&mut self, method: &str, extra: &str, body: &str) -> Vec<u8> {
        if method != "ACK" {
            self.cseq += 1;
        }
        self.branch += 1;
        self.build(method, extra, body)
    }

    /// A request in the INVITE's own transaction (CANCEL, or the ACK of a final failure): same
    /// branch and CSeq number.
    pub fn in_invite_transaction(&self, method: &str) -> Vec<u8> {
        self.build(method, "", "")
    }

    fn build(&self, method: &str, extra: &str, body: &str) -> Vec<u8> {
        let branch = format!("z9hG4bK-{}-{}", self.call_id, self.branch);
        let out = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: {local}\r\nTo: {remote}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:sim@{me}>\r\n{extra}",
            target = self.target,
            me = self.me,
            local = self.local,
            remote = self.remote,
            call_id = self.call_id,
            cseq = self.cseq,
        );
        finish(out, body)
    }
}

/// The To tag of a header value.
pub fn tag(value: &str) -> Option<&str> {
    value.split(';').find_map(|p| p.trim().strip_prefix("tag="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_in_the_engine_and_responses_copy_the_transaction() {
        let me: SocketAddr = "10.0.0.7:5060".parse().unwrap();
        let mut leg = Leg::new(
            me,
            "c-1".into(),
            "<sip:+336@10.0.0.7>;tag=a".into(),
            "<sip:8000@127.0.0.1:5060>".into(),
            "sip:8000@127.0.0.1:5060".into(),
        );
        let invite = leg.request("INVITE", "", &sdp(me));
        assert!(boomerang::sip::message::parse(&invite).is_ok());
        let m = Msg::read(&invite).unwrap();
        assert_eq!(m.method.as_deref(), Some("INVITE"));
        assert_eq!(m.cseq_method(), "INVITE");
        assert_eq!(m.from_user(), "+336");
        let ok = m.respond("200 OK", "b", "", "");
        let r = Msg::read(&ok).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(tag(r.header("To").unwrap()), Some("b"));
        assert!(boomerang::sip::message::parse(&ok).is_ok());
    }
}

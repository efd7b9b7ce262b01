//! Blind transfer by REFER (RFC 3515) on a call's dialog: we send the REFER, the peer answers
//! (202 Accepted, or a refusal), then reports its call to the target in NOTIFYs whose
//! `message/sipfrag` body is that call's status line. Each step lands in the call's
//! `LegShared::refer`, where the leg waits for it.

use super::*;

impl Endpoint {
    /// Sends a REFER to `refer_to` in `call`'s dialog; a call without one is refused (500).
    pub(super) fn send_refer(&mut self, call: &str, refer_to: &str) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let (peer, shared) = (c.next_hop(), c.shared.clone());
        let via = self.via(peer.transport);
        let Some(d) = self.calls.get_mut(call).and_then(|c| c.dialog.as_mut()) else {
            shared.refer.send_replace(ReferState::Refused(500));
            return;
        };
        let local = d.local_uri.clone();
        let mut req = d.request(rsip::Method::Refer, &via, None);
        req.headers
            .push(Header::Other("Refer-To".into(), format!("<{refer_to}>")));
        req.headers.push(Header::Other("Referred-By".into(), local));
        match self
            .txns
            .start_client(self.now, req, peer.transport.reliable())
        {
            Ok(key) => {
                self.peers.insert(key.clone(), peer);
                self.refer_keys.insert(key, call.to_string());
                shared.refer.send_replace(ReferState::Sent);
            }
            Err(e) => {
                tracing::debug!(call, error = %e, "REFER not sent");
                shared.refer.send_replace(ReferState::Refused(500));
            }
        }
    }

    /// The answer to our REFER.
    pub(super) fn on_refer_event(&mut self, call: &str, ev: Event) {
        let code = match ev {
            Event::Response(r) => r.status_code.code(),
            Event::TimedOut | Event::TransportError => 408,
            _ => return,
        };
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let state = match code {
            100..=199 => return,
            200..=299 => ReferState::Accepted,
            _ => ReferState::Refused(code),
        };
        // A NOTIFY may overtake the 202: keep the later news.
        c.shared.refer.send_if_modified(|s| {
            let older = matches!(s, ReferState::Sent | ReferState::Idle);
            if older {
                *s = state;
            }
            older
        });
    }

    /// A NOTIFY about our REFER: the sipfrag's status line is the peer's call to the target.
    pub(super) fn on_notify(&mut self, key: TransactionKey, req: rsip::Request, call_id: String) {
        let Some(c) = self.dialog_or_481(&key, &req, &call_id) else {
            return;
        };
        let event = header_value(&req, "Event").unwrap_or_default();
        if !event.trim().to_ascii_lowercase().starts_with("refer") {
            self.respond(&key, &req, 489, "Bad Event");
            return;
        }
        let body = String::from_utf8_lossy(&req.body);
        let status = body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("SIP/2.0 "))
            .and_then(|l| l.get(..3))
            .and_then(|n| n.parse::<u16>().ok());
        if let Some(code) = status {
            let state = if code >= 200 {
                ReferState::Done(code)
            } else {
                ReferState::Trying(code)
            };
            c.shared.refer.send_replace(state);
        }
        self.respond(&key, &req, 200, "OK");
    }
}

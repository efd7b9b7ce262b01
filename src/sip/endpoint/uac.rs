//! The endpoint as UAC: INVITEs we send (trunks, phones), CANCEL, and the responses to them.

use super::*;

impl Endpoint {
    /// Places `d` as the call `call_id` (chosen by the handle: it names the worker).
    pub(super) fn dial(
        &mut self,
        call_id: String,
        mut d: DialRequest,
        events: mpsc::UnboundedSender<UacEvent>,
        shared: Arc<LegShared>,
        late_offer: bool,
    ) -> String {
        let from_tag = random_token();
        // A late offer keeps our SDP to answer the 200's offer from, and sends no body.
        let late_offer = late_offer.then(|| std::mem::take(&mut d.sdp));
        let invite = match self.build_invite(&d, &call_id, &from_tag, 1, None) {
            Some(r) => r,
            None => {
                let _ = events.send(UacEvent::Failed(400));
                return call_id;
            }
        };
        let now = self.now;
        match self
            .txns
            .start_client(now, invite.clone(), d.peer.transport.reliable())
        {
            Ok(key) => {
                self.peers.insert(key.clone(), d.peer);
                self.uac_keys.insert(key.clone(), call_id.clone());
                self.insert_call(
                    call_id.clone(),
                    Call {
                        peer: d.peer,
                        role: Role::Uac {
                            invite,
                            key,
                            events,
                            credentials: d.credentials.clone(),
                            auth_tried: false,
                            answered: false,
                            ack: None,
                            late_offer,
                        },
                        dialog: None,
                        shared,
                        timer: None,
                        local_sdp: None,
                        twoxx: None,
                        awaiting_answer: None,
                    },
                );
            }
            Err(_) => {
                let _ = events.send(UacEvent::Failed(500));
            }
        }
        call_id
    }

    pub(super) fn build_invite(
        &self,
        d: &DialRequest,
        call_id: &str,
        from_tag: &str,
        cseq: u32,
        authorization: Option<(&str, String)>,
    ) -> Option<rsip::Request> {
        let t = d.peer.transport;
        let mut text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: {via};branch={branch};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:{from}@{host}>;tag={from_tag}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\nContact: {contact}\r\nAllow: {ALLOW}\r\nSupported: timer\r\n",
            uri = d.uri,
            via = self.via(t),
            branch = message::new_branch(),
            from = d.from_user,
            host = self.host(),
            contact = self.contact(t),
        );
        if let Some((name, value)) = authorization {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        for (name, value) in &d.extra_headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        if !d.sdp.is_empty() {
            text.push_str("Content-Type: application/sdp\r\n");
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n{}", d.sdp.len(), d.sdp));
        match message::parse(text.as_bytes()) {
            Ok(SipMessage::Request(r)) => Some(r),
            _ => None,
        }
    }

    pub(super) fn cancel(&mut self, call: &str) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let Role::Uac {
            invite,
            answered: false,
            ..
        } = &c.role
        else {
            return;
        };
        let mut h = rsip::Headers::default();
        for header in invite.headers().iter() {
            match header {
                Header::Via(_)
                | Header::From(_)
                | Header::To(_)
                | Header::CallId(_)
                | Header::MaxForwards(_) => h.push(header.clone()),
                _ => {}
            }
        }
        let seq = message::cseq(invite).map(|(n, _)| n).unwrap_or(1);
        h.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{seq} CANCEL"
        ))));
        h.push(Header::ContentLength(rsip::headers::ContentLength::new(
            "0",
        )));
        let cancel = rsip::Request {
            method: rsip::Method::Cancel,
            uri: invite.uri.clone(),
            version: rsip::Version::V2,
            headers: h,
            body: Vec::new(),
        };
        let peer = c.peer;
        if let Ok(key) = self
            .txns
            .start_client(self.now, cancel, peer.transport.reliable())
        {
            self.peers.insert(key, peer);
        }
    }

    pub(super) fn on_client_event(&mut self, key: &TransactionKey, ev: Event) {
        let Some(call_id) = self.uac_keys.get(key).cloned() else {
            return;
        };
        // The key may belong to an INVITE replaced after a 401/407: only the current one counts.
        if !self
            .calls
            .get(&call_id)
            .is_some_and(|c| matches!(&c.role, Role::Uac { key: k, .. } if k == key))
        {
            return;
        }
        match ev {
            Event::Response(resp) => self.on_invite_response(&call_id, resp),
            Event::TimedOut | Event::TransportError => {
                if let Some(c) = self.take_call(&call_id) {
                    if let Role::Uac {
                        events, answered, ..
                    } = &c.role
                        && !answered
                    {
                        let _ = events.send(UacEvent::Failed(408));
                    }
                    c.shared.end();
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_invite_response(&mut self, call_id: &str, resp: rsip::Response) {
        let code = resp.status_code.code();
        let contact_for = |t: Transport| self.contact(t);
        let Some(c) = self.calls.get(call_id) else {
            return;
        };
        let contact = contact_for(c.peer.transport);
        let via = self.via(c.peer.transport);
        let peer = c.peer;
        let Some(c) = self.calls.get_mut(call_id) else {
            return;
        };
        let Role::Uac {
            invite,
            events,
            credentials,
            auth_tried,
            answered,
            ack,
            late_offer,
            ..
        } = &mut c.role
        else {
            return;
        };
        if code < 200 {
            let _ = events.send(UacEvent::Progress(code));
            return;
        }
        if code < 300 {
            if *answered {
                return;
            }
            *answered = true;
            let seq = message::cseq(invite).map(|(n, _)| n).unwrap_or(1);
            let dialog = Dialog::from_uac(invite, &resp, &contact).ok();
            let remote_sdp = String::from_utf8_lossy(&resp.body).to_string();
            // Late offer: the 200 offers, our ACK answers (RFC 3261 §13.2.2.4).
            let late_answer = late_offer
                .as_deref()
                .map(|ours| answer_late_offer(ours, &remote_sdp));
            let body = match &late_answer {
                Some(Ok(answer)) => Some(("application/sdp", answer.clone().into_bytes())),
                _ => None,
            };
            if let Some(d) = &dialog {
                // The ACK follows the route set the 2xx's Record-Route made (in reverse).
                let a = d.ack(seq, &via, body);
                *ack = Some(Box::new(a.clone()));
                self.outbox.push_back(Transmit {
                    peer: next_hop(Some(d), peer),
                    bytes: message::to_bytes(&SipMessage::Request(a)),
                });
            }
            c.dialog = dialog;
            if *c.shared.ended.borrow() {
                // We had given up (our CANCEL crossed this 2xx): acknowledged, then ended with
                // a BYE (RFC 3261 §9.1), not left up with nobody on our side.
                let id = call_id.to_string();
                self.hang_up(&id);
                return;
            }
            match late_answer {
                Some(Ok(answer)) => c.local_sdp = Some(answer),
                Some(Err(e)) => {
                    // Acknowledged (a 2xx must be), then ended: nothing to talk with.
                    tracing::info!(call = call_id, error = %e, "callee's offer refused");
                    let _ = events.send(UacEvent::Failed(e.sip_status()));
                    let id = call_id.to_string();
                    self.hang_up(&id);
                    return;
                }
                None => {}
            }
            // The callee (a trunk, a phone) may ask for session timers (RFC 4028 §7.2):
            // refresher=uac makes us the refresher.
            if let Some((n, r)) = session_expires(&resp) {
                let who = if r.as_deref() == Some("uas") {
                    Refresher::Peer
                } else {
                    Refresher::Us
                };
                c.timer = Some(SessionTimer::new(
                    self.now,
                    n.max(MIN_SE),
                    who,
                    refresh_method(&resp),
                ));
            }
            let _ = events.send(UacEvent::Answered(
                String::from_utf8_lossy(&resp.body).to_string(),
            ));
            let id = call_id.to_string();
            self.schedule_timer(&id);
            return;
        }
        let mut retry: Option<(DialRequest, String, u32, &'static str, String)> = None;
        if (code == 401 || code == 407)
            && !*auth_tried
            && let Some((user, pass)) = credentials.clone()
        {
            let (challenge_header, answer_header) = if code == 401 {
                ("WWW-Authenticate", "Authorization")
            } else {
                ("Proxy-Authenticate", "Proxy-Authorization")
            };
            if let Some(ch) = header_value(&resp, challenge_header)
                && let Ok(auth) =
                    digest::respond(&ch, "INVITE", &invite.uri.to_string(), &user, &pass)
            {
                *auth_tried = true;
                let seq = message::cseq(invite).map(|(n, _)| n).unwrap_or(1) + 1;
                let from_tag = header_value(invite, "From")
                    .and_then(|f| message::tag_of(&f))
                    .unwrap_or_default();
                let d = DialRequest {
                    uri: invite.uri.to_string(),
                    peer,
                    from_user: from_user(invite),
                    sdp: String::from_utf8_lossy(&invite.body).to_string(),
                    credentials: None,
                    extra_headers: extra_headers(invite),
                };
                retry = Some((d, from_tag, seq, answer_header, auth));
            }
        }
        if let Some((d, from_tag, seq, answer_header, auth)) = retry
            && let Some(new_invite) =
                self.build_invite(&d, call_id, &from_tag, seq, Some((answer_header, auth)))
            && let Ok(key) =
                self.txns
                    .start_client(self.now, new_invite.clone(), peer.transport.reliable())
        {
            self.peers.insert(key.clone(), peer);
            self.uac_keys.insert(key.clone(), call_id.to_string());
            if let Some(c) = self.calls.get_mut(call_id)
                && let Role::Uac { invite, key: k, .. } = &mut c.role
            {
                *invite = new_invite;
                *k = key;
            }
            return;
        }
        let Some(c) = self.calls.get(call_id) else {
            return;
        };
        let Role::Uac { events, .. } = &c.role else {
            return;
        };
        let _ = events.send(UacEvent::Failed(code));
        if let Some(c) = self.take_call(call_id) {
            c.shared.end();
        }
    }
}

/// The extension headers of an INVITE we sent (call data), kept when it is sent again with
/// credentials.
fn extra_headers(invite: &rsip::Request) -> Vec<(String, String)> {
    invite
        .headers()
        .iter()
        .filter_map(|h| match h {
            Header::Other(name, value)
                if !name.eq_ignore_ascii_case("Allow")
                    && !name.eq_ignore_ascii_case("Supported") =>
            {
                Some((name.clone(), value.clone()))
            }
            _ => None,
        })
        .collect()
}

//! The endpoint as UAS: new INVITEs (with overload shedding), our answers, offers inside a
//! call (hold, resume) and the ACK.

use super::*;

impl Endpoint {
    pub(super) fn on_invite(
        &mut self,
        key: TransactionKey,
        req: rsip::Request,
        peer: Peer,
        call_id: String,
    ) {
        let to = header_value(&req, "To").unwrap_or_default();
        if message::tag_of(&to).is_some() {
            self.on_in_dialog_offer(key, req, peer, call_id);
            return;
        }
        let hops = header_value(&req, "Max-Forwards")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(70);
        if hops == 0 {
            self.respond(&key, &req, 483, "Too Many Hops");
            return;
        }
        if let Some(resp) = bad_extension(&req) {
            self.respond_with(&key, resp);
            return;
        }
        let session_timer = negotiate_timer(&req, self.session_expires);
        if session_timer == TimerAsk::TooSmall {
            self.respond_with(&key, too_small(&req));
            return;
        }
        let caller = from_user(&req);
        if self.authenticate_invite
            && self
                .register_auth
                .as_ref()
                .is_some_and(|a| a.passwords.contains_key(&caller))
            && let Err(resp) = self.authenticate(&req, "From", "INVITE", peer)
        {
            self.respond_with(&key, resp);
            return;
        }
        let dnis = user_of_uri(&req.uri.to_string());
        if !self.handler.serves(&dnis) {
            self.respond(&key, &req, 404, "Not Found");
            return;
        }
        if self.calls.contains_key(&call_id) {
            self.respond(&key, &req, 482, "Loop Detected");
            return;
        }
        if !sdp_or_empty(&req) {
            self.respond_with(&key, unsupported_media(&req, "application/sdp"));
            return;
        }
        // The exact check: a call and a setup slot taken atomically across workers (the
        // stateless check before the transaction only reads the counts).
        if let Err(why) = self
            .shared
            .admit_inbound(self.limits.max_calls, self.limits.max_setup_calls)
        {
            self.metrics.refused(why);
            let mut resp = message::response_for(&req, 503, "Service Unavailable");
            resp.headers.push(Header::Other(
                "Retry-After".into(),
                self.limits.retry_after.to_string(),
            ));
            self.respond_with(&key, resp);
            return;
        }
        // Empty for an INVITE without SDP: we offer in the 200 and read the answer in the ACK.
        let offer = String::from_utf8_lossy(&req.body).to_string();
        let shared = LegShared::new();
        shared.accepts_refer.store(
            lists(&req, &["Allow", "Supported"], "REFER"),
            std::sync::atomic::Ordering::Release,
        );
        let ani = from_user(&req);
        self.setting_up.insert(call_id.clone());
        self.calls.insert(
            call_id.clone(),
            Call {
                peer,
                role: Role::Uas {
                    invite: req,
                    key,
                    to_tag: random_token(),
                    answered: false,
                    answer_sdp: String::new(),
                    session_timer,
                },
                dialog: None,
                shared: shared.clone(),
                timer: None,
                local_sdp: None,
                twoxx: None,
                awaiting_answer: None,
            },
        );
        self.notify(Notice::Incoming(IncomingCall {
            call_id,
            ani,
            dnis,
            offer,
            shared,
        }));
    }

    /// A re-INVITE or UPDATE from the peer (session refresh, hold, resume). A re-INVITE is
    /// answered with our SDP (mirroring its offer, or as an offer when it has none); an UPDATE
    /// only carries an answer when it brought an offer (RFC 3311).
    pub(super) fn on_in_dialog_offer(
        &mut self,
        key: TransactionKey,
        req: rsip::Request,
        peer: Peer,
        call_id: String,
    ) {
        let invite = req.method == rsip::Method::Invite;
        // A re-INVITE needs the dialog (an answered call); an UPDATE may come before.
        if !self.belongs(&call_id, &req)
            || self
                .calls
                .get(&call_id)
                .is_none_or(|c| invite && c.dialog.is_none())
        {
            self.respond(&key, &req, 481, "Call/Transaction Does Not Exist");
            return;
        }
        // Glare: our own re-INVITE (a session refresh, with our SDP) is not answered yet; the
        // peer tries again after a random wait (RFC 3261 §14.2, RFC 3311 §5.2).
        if (invite || !req.body.is_empty())
            && self
                .refresh_keys
                .iter()
                .any(|(k, (id, answered))| *id == call_id && !*answered && k.method == "INVITE")
        {
            self.respond(&key, &req, 491, "Request Pending");
            return;
        }
        let ask = negotiate_timer(&req, self.session_expires);
        if ask == TimerAsk::TooSmall {
            self.respond_with(&key, too_small(&req));
            return;
        }
        if !sdp_or_empty(&req) {
            self.respond_with(&key, unsupported_media(&req, "application/sdp"));
            return;
        }
        let offered = !req.body.is_empty();
        let sdp = match self.accept_offer(&call_id, &req) {
            Ok(sdp) => sdp,
            Err(code) => {
                self.respond(&key, &req, code, reason_of(code));
                return;
            }
        };
        let mut resp = message::response_for(&req, 200, "OK");
        if invite {
            resp.headers.push(Header::Other(
                "Contact".into(),
                self.contact(peer.transport),
            ));
        }
        push_timer_headers(&mut resp.headers, ask);
        if invite || offered {
            let (mut h, mut b) = (resp.headers.clone(), Vec::new());
            set_body(&mut h, &mut b, "application/sdp", sdp);
            resp.headers = h;
            resp.body = b;
        }
        if invite
            && !peer.transport.reliable()
            && let Some(c) = self.calls.get_mut(&call_id)
        {
            // Like the first 200, this one is ours to repeat until the ACK comes.
            let t = TwoXxRetransmitter::new(self.now, resp.clone(), self.timers);
            self.unacked.set(&call_id, t.poll_timeout());
            c.twoxx = Some(t);
        }
        if invite
            && !offered
            && let Some(c) = self.calls.get_mut(&call_id)
        {
            // Our 200 offers: the answer comes with the ACK (RFC 3261 §14.2).
            c.awaiting_answer = Some(AnswerDue::Again);
        }
        self.respond_with(&key, resp);
        self.peer_refreshed(&call_id, &req, ask);
    }

    /// The SDP to answer a request inside the call with: for an offer (hold, resume, a new
    /// address) our SDP with the mirrored direction, which also becomes our current SDP and
    /// reaches the media session; without one, our current SDP. `Err` is the status to refuse
    /// the offer with (488 no usable audio, 400 unreadable).
    pub(super) fn accept_offer(
        &mut self,
        call_id: &str,
        req: &rsip::Request,
    ) -> Result<Vec<u8>, u16> {
        let Some(c) = self.calls.get_mut(call_id) else {
            return Err(481);
        };
        let current = Self::local_sdp(c);
        if req.body.is_empty() {
            return Ok(current);
        }
        let offer = String::from_utf8_lossy(&req.body);
        let (answer, negotiated) = sdp::reanswer(&String::from_utf8_lossy(&current), &offer)
            .map_err(|e| {
                tracing::info!(call = call_id, error = %e, "offer inside the call refused");
                e.sip_status()
            })?;
        c.shared.remote_offer(&negotiated);
        c.local_sdp = Some(answer.clone());
        Ok(answer.into_bytes())
    }

    pub(super) fn answer(&mut self, call: &str, sdp: String) -> bool {
        let contact = match self.calls.get(call) {
            Some(c) => self.contact(c.peer.transport),
            None => return false,
        };
        let timers = self.timers;
        let Some(c) = self.calls.get_mut(call) else {
            return false;
        };
        let Role::Uas {
            invite,
            key,
            to_tag,
            answered,
            answer_sdp,
            session_timer,
        } = &mut c.role
        else {
            return false;
        };
        if *answered {
            return true;
        }
        c.awaiting_answer = invite.body.is_empty().then_some(AnswerDue::First);
        let mut resp = response_with_tag(invite, 200, "OK", to_tag);
        // Every Record-Route of the INVITE, in its order (RFC 3261 §12.1.1): the proxies that
        // asked to stay on the dialog's path learn that we keep them on it.
        for h in invite.headers.iter() {
            if matches!(h, Header::RecordRoute(_)) {
                resp.headers.push(h.clone());
            }
        }
        push_timer_headers(&mut resp.headers, *session_timer);
        if let TimerAsk::Agreed {
            interval,
            refresher,
            ..
        } = *session_timer
        {
            c.timer = Some(SessionTimer::new(
                self.now,
                interval,
                refresher,
                refresh_method(invite),
            ));
        }
        resp.headers
            .push(Header::Other("Contact".into(), contact.clone()));
        resp.headers
            .push(Header::Other("Allow".into(), ALLOW.into()));
        let (mut h, mut b) = (resp.headers.clone(), Vec::new());
        set_body(&mut h, &mut b, "application/sdp", sdp.clone().into_bytes());
        resp.headers = h;
        resp.body = b;
        *answered = true;
        *answer_sdp = sdp;
        if self.setting_up.remove(call) {
            self.shared.setup_done(1);
        }
        c.dialog = Dialog::from_uas(invite, &resp, &contact).ok();
        if !c.peer.transport.reliable() {
            let t = TwoXxRetransmitter::new(self.now, resp.clone(), timers);
            self.unacked.set(&call.to_string(), t.poll_timeout());
            c.twoxx = Some(t);
        }
        let key = key.clone();
        self.respond_with(&key, resp);
        self.schedule_timer(call);
        true
    }

    /// Answers a new INVITE with 503 + Retry-After when the engine is overloaded, statelessly
    /// (RFC 3261 §8.2.7): no transaction, call or media is kept for it, and a retransmission
    /// gets the same 503. True when it was shed.
    pub(super) fn shed_invite(&mut self, msg: &SipMessage, peer: Peer, waited: Duration) -> bool {
        let SipMessage::Request(req) = msg else {
            return false;
        };
        if req.method != rsip::Method::Invite
            || header_value(req, "To").is_none_or(|to| message::tag_of(&to).is_some())
        {
            return false;
        }
        // The common case (not overloaded, nothing shed lately) costs no transaction key.
        let overload = self.overloaded(waited);
        if overload.is_none() && self.shed.is_empty() {
            return false;
        }
        let Some(key) = TransactionKey::of(msg) else {
            return false;
        };
        if self.txns.contains(&key) {
            return false;
        }
        let id = ShedMemory::id(&key);
        if !self.shed.contains(id) {
            let Some(why) = overload else {
                return false;
            };
            crate::throttled!(
                self.shed_log,
                self.now,
                warn!(
                    call = %header_value(req, "Call-ID").unwrap_or_default(),
                    limit = why,
                    waited_ms = waited.as_millis() as u64,
                    "overload: new INVITE refused with 503"
                )
            );
            self.metrics.refused(why);
            self.shed.insert(id);
        }
        let mut resp = response_with_tag(req, 503, "Service Unavailable", &format!("{id:016x}"));
        resp.headers.push(Header::Other(
            "Retry-After".into(),
            self.limits.retry_after.to_string(),
        ));
        self.send(peer, &SipMessage::Response(resp));
        true
    }

    /// Why a new inbound call must be refused now (`max_queue_delay` exceeded by this INVITE's
    /// wait, `max_calls` or `max_setup_calls` reached), or `None` when it may come in. Calls
    /// set up and since answered or gone are forgotten only when the limit seems reached, so
    /// the check costs nothing below it.
    pub(super) fn overloaded(&mut self, waited: Duration) -> Option<&'static str> {
        if self.shared.draining() {
            return Some("draining");
        }
        if !self.limits.max_queue_delay.is_zero() && waited > self.limits.max_queue_delay {
            return Some("max_queue_delay");
        }
        if self.shared.calls() >= self.limits.max_calls {
            return Some("max_calls");
        }
        if self.shared.setting_up() >= self.limits.max_setup_calls {
            let (calls, before) = (&self.calls, self.setting_up.len());
            self.setting_up.retain(|id| {
                calls.get(id).is_some_and(|c| {
                    matches!(
                        c.role,
                        Role::Uas {
                            answered: false,
                            ..
                        }
                    )
                })
            });
            self.shared.setup_done(before - self.setting_up.len());
            if self.shared.setting_up() >= self.limits.max_setup_calls {
                return Some("max_setup_calls");
            }
        }
        None
    }

    pub(super) fn on_ack(&mut self, req: &rsip::Request) {
        let call_id = header_value(req, "Call-ID").unwrap_or_default();
        let Some(c) = self.calls.get_mut(&call_id) else {
            return;
        };
        if let Some(mut t) = c.twoxx.take() {
            t.ack_received();
            // Out of the retransmission index at once.
            self.unacked.remove(call_id.as_str());
        }
        if let Some(due) = c.awaiting_answer.take() {
            // The answer to the offer in our 200; without a usable one to the first there is
            // no media to talk with, so the call ends (RFC 3261 §13.3.1.4); a re-INVITE's
            // leaves the session as it was.
            match sdp::parse_answer(&String::from_utf8_lossy(&req.body)) {
                Ok(n) => c.shared.remote_answer(&n),
                Err(e) if due == AnswerDue::First => {
                    tracing::info!(call = %call_id, error = %e, "no usable answer in the ACK: BYE");
                    self.hang_up(&call_id);
                }
                Err(e) => {
                    tracing::info!(call = %call_id, error = %e, "no usable answer in the ACK: session unchanged");
                }
            }
        }
    }
}

//! Requests inside a call and RFC 4028 session refreshes, in both roles: what peers ask for, our
//! timers and refreshes, and hanging up.

use super::*;

/// What a request (INVITE, re-INVITE or UPDATE) we answer says about session timers, and what
/// we grant (RFC 4028 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimerAsk {
    /// No timer: neither asked for nor supported.
    Off,
    /// Below Min-SE: 422.
    TooSmall,
    /// Granted: this interval, this refresher; `require` when the peer supports timers (then
    /// the 2xx carries `Require: timer`).
    Agreed {
        interval: u32,
        refresher: Refresher,
        require: bool,
    },
}

/// The interval and `refresher` parameter of a Session-Expires header (or compact `x`).
pub(super) fn session_expires(msg: &impl HasHeaders) -> Option<(u32, Option<String>)> {
    let v = header_value(msg, "Session-Expires").or_else(|| header_value(msg, "x"))?;
    let mut parts = v.split(';');
    let n = parts.next()?.trim().parse::<u32>().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Some((n, refresher))
}

/// True when a comma-separated header (Supported, Allow…) lists `option`.
pub(super) fn lists(msg: &impl HasHeaders, names: &[&str], option: &str) -> bool {
    names.iter().any(|name| {
        header_values(msg, name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|o| o.trim().eq_ignore_ascii_case(option))
    })
}

/// Session-timer negotiation as the UAS of `req`: a longer request is shortened to `max`, a
/// caller that supports timers without asking gets `max`; the peer refreshes unless it asked
/// us to (`refresher=uas`) or cannot (no `Supported: timer`).
pub(super) fn negotiate_timer(req: &rsip::Request, max: u32) -> TimerAsk {
    let supports = lists(req, &["Supported", "k"], "timer");
    let asked = session_expires(req);
    // Never below the request's Min-SE (RFC 4028 §9), even when that exceeds our maximum.
    let floor = header_value(req, "Min-SE")
        .and_then(|v| v.split(';').next()?.trim().parse::<u32>().ok())
        .unwrap_or(MIN_SE);
    let interval = match &asked {
        Some((n, _)) if *n < MIN_SE => return TimerAsk::TooSmall,
        Some((n, _)) => (*n).min(max).max(floor.min(*n)),
        None if supports => max.max(floor),
        None => return TimerAsk::Off,
    };
    let refresher = match asked.and_then(|(_, r)| r).as_deref() {
        Some("uas") => Refresher::Us,
        Some("uac") if supports => Refresher::Peer,
        _ if supports => Refresher::Peer,
        _ => Refresher::Us,
    };
    TimerAsk::Agreed {
        interval,
        refresher,
        require: supports,
    }
}

/// 420 naming the extensions a request requires that we do not support (RFC 3261 §8.2.2.3):
/// session timers (RFC 4028) are the one we do.
pub(super) fn bad_extension(req: &rsip::Request) -> Option<rsip::Response> {
    let required = header_value(req, "Require")?;
    let unsupported: Vec<&str> = required
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty() && !o.eq_ignore_ascii_case("timer"))
        .collect();
    if unsupported.is_empty() {
        return None;
    }
    let mut resp = message::response_for(req, 420, "Bad Extension");
    resp.headers
        .push(Header::Other("Unsupported".into(), unsupported.join(", ")));
    Some(resp)
}

/// 415 for a body of a type we do not read, listing those we do in Accept (RFC 3261 §8.2.3,
/// §21.4.13).
pub(super) fn unsupported_media(req: &rsip::Request, accept: &str) -> rsip::Response {
    let mut resp = message::response_for(req, 415, "Unsupported Media Type");
    resp.headers
        .push(Header::Other("Accept".into(), accept.into()));
    resp
}

/// True when `req` has no body, or an SDP one (a body without Content-Type is read as SDP).
pub(super) fn sdp_or_empty(req: &rsip::Request) -> bool {
    req.body.is_empty()
        || header_value(req, "Content-Type").is_none_or(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/sdp")
        })
}

/// Adds the Session-Expires (and Require) headers that confirm `ask` in our 2xx.
pub(super) fn push_timer_headers(headers: &mut rsip::Headers, ask: TimerAsk) {
    if let TimerAsk::Agreed {
        interval,
        refresher,
        require,
    } = ask
    {
        // The refresher parameter names a side of the request being answered: the peer is its UAC.
        let who = if refresher == Refresher::Peer {
            "uac"
        } else {
            "uas"
        };
        headers.push(Header::Other(
            "Session-Expires".into(),
            format!("{interval};refresher={who}"),
        ));
        if require {
            headers.push(Header::Other("Require".into(), "timer".into()));
        }
    }
}

/// The 422 for an interval below Min-SE.
pub(super) fn too_small(req: &rsip::Request) -> rsip::Response {
    let mut resp = message::response_for(req, 422, "Session Interval Too Small");
    resp.headers
        .push(Header::Other("Min-SE".into(), MIN_SE.to_string()));
    resp
}

/// How we refresh a peer: UPDATE when its Allow lists it, else re-INVITE.
pub(super) fn refresh_method(msg: &impl HasHeaders) -> RefreshMethod {
    if lists(msg, &["Allow"], "UPDATE") {
        RefreshMethod::Update
    } else {
        RefreshMethod::Invite
    }
}

impl Endpoint {
    /// True when `req` belongs to one of our dialogs (its To tag is ours) and its CSeq is lower
    /// than the peer's last one there (RFC 3261 §12.2.2): it gets 500 and is not acted on.
    /// CANCEL carries its INVITE's CSeq and belongs to no dialog.
    pub(super) fn out_of_order(&mut self, call_id: &str, req: &rsip::Request) -> bool {
        if req.method == rsip::Method::Cancel {
            return false;
        }
        let Some(d) = self.calls.get_mut(call_id).and_then(|c| c.dialog.as_mut()) else {
            return false;
        };
        let to_tag = header_value(req, "To").and_then(|t| message::tag_of(&t));
        if to_tag.as_deref() != Some(d.id.local_tag.as_str()) {
            return false;
        }
        let Some((n, _)) = message::cseq(req) else {
            return false;
        };
        match d.take_remote_cseq(n) {
            Ok(()) => false,
            Err(e) => {
                tracing::info!(call = call_id, method = %req.method, error = %e, "in-dialog request out of order: 500");
                true
            }
        }
    }

    /// The call whose dialog `req` names; when there is none (a stranger's request, or one
    /// for a call that has ended) `req` is answered 481.
    pub(super) fn dialog_or_481(
        &mut self,
        key: &TransactionKey,
        req: &rsip::Request,
        call_id: &str,
    ) -> Option<&Call> {
        if !self.belongs(call_id, req) {
            self.respond(key, req, 481, "Call/Transaction Does Not Exist");
            return None;
        }
        self.calls.get(call_id)
    }

    /// True when `req` (a request inside a call) names the dialog of call `call_id`: its From
    /// tag is the peer's and its To tag ours (RFC 3261 §12.2.2; the other way round is taken
    /// too: some peers, test tools among them, swap them in a BYE, and both tags are still
    /// this dialog's, which a stranger cannot guess). Before we answered an inbound
    /// call there is no dialog yet (we send no tagged provisional): the caller's own requests
    /// carry its From tag and no To tag. A call without a dialog (a peer without tags, RFC
    /// 2543) is matched by its Call-ID alone once answered.
    pub(super) fn belongs(&self, call_id: &str, req: &rsip::Request) -> bool {
        let Some(c) = self.calls.get(call_id) else {
            return false;
        };
        let from = header_value(req, "From").and_then(|f| message::tag_of(&f));
        let to = header_value(req, "To").and_then(|t| message::tag_of(&t));
        match (&c.dialog, &c.role) {
            (Some(d), _) => {
                let (from, to) = (from.unwrap_or_default(), to.unwrap_or_default());
                let (local, remote) = (&d.id.local_tag, &d.id.remote_tag);
                (from == *remote && to == *local) || (from == *local && to == *remote)
            }
            (
                None,
                Role::Uas {
                    invite,
                    answered: false,
                    ..
                },
            ) => {
                to.is_none()
                    && from == header_value(invite, "From").and_then(|f| message::tag_of(&f))
            }
            (None, Role::Uas { .. }) => true,
            (None, Role::Uac { answered, .. }) => *answered,
        }
    }

    /// The peer's re-INVITE or UPDATE was accepted: it refreshes the session (or starts or
    /// stops its timer) from now.
    pub(super) fn peer_refreshed(&mut self, call_id: &str, req: &rsip::Request, ask: TimerAsk) {
        let Some(c) = self.calls.get_mut(call_id) else {
            return;
        };
        let now = self.now;
        match (ask, c.timer.as_mut()) {
            (
                TimerAsk::Agreed {
                    interval,
                    refresher,
                    ..
                },
                Some(t),
            ) => t.refreshed(now, interval, refresher),
            (
                TimerAsk::Agreed {
                    interval,
                    refresher,
                    ..
                },
                None,
            ) if c.dialog.is_some() => {
                c.timer = Some(SessionTimer::new(
                    now,
                    interval,
                    refresher,
                    refresh_method(req),
                ))
            }
            _ => c.timer = None,
        }
        self.schedule_timer(call_id);
    }

    /// Indexes the call's next session-timer deadline (replacing the one indexed before), so
    /// the index holds one entry per live call with a timer.
    pub(super) fn schedule_timer(&mut self, call: &str) {
        let at = self
            .calls
            .get(call)
            .and_then(|c| c.timer.as_ref())
            .and_then(SessionTimer::poll_timeout);
        self.session_timers.set(&call.to_string(), at);
    }

    /// Fires the session timers due at `now`: refreshes to send, sessions to end.
    pub(super) fn on_session_timers(&mut self, now: Instant) {
        while let Some(id) = self.session_timers.pop_due(now) {
            let Some(t) = self.calls.get_mut(&id).and_then(|c| c.timer.as_mut()) else {
                continue;
            };
            let action = t.handle_timeout(now);
            self.schedule_timer(&id);
            match action {
                Some(TimerAction::Bye) => {
                    tracing::info!(call = %id, "session expired without refresh (RFC 4028): BYE");
                    self.hang_up(&id);
                }
                Some(TimerAction::Refresh(method, interval)) => {
                    self.send_refresh(&id, method, interval)
                }
                None => {}
            }
        }
    }

    /// Sends a session refresh (RFC 4028 §7.4) as the refresher.
    pub(super) fn send_refresh(&mut self, id: &str, method: RefreshMethod, interval: u32) {
        let Some(c) = self.calls.get(id) else {
            return;
        };
        let peer = c.next_hop();
        let via = self.via(peer.transport);
        let sdp = Self::local_sdp(c);
        let Some(c) = self.calls.get_mut(id) else {
            return;
        };
        let Some(d) = c.dialog.as_mut() else {
            return;
        };
        let mut req = match method {
            RefreshMethod::Update => d.request(rsip::Method::Update, &via, None),
            RefreshMethod::Invite => d.reinvite(&via, sdp),
        };
        req.headers.push(Header::Other(
            "Session-Expires".into(),
            format!("{interval};refresher=uac"),
        ));
        req.headers
            .push(Header::Other("Supported".into(), "timer".into()));
        match self
            .txns
            .start_client(self.now, req, peer.transport.reliable())
        {
            Ok(key) => {
                self.peers.insert(key.clone(), peer);
                self.refresh_keys.insert(key, (id.to_string(), false));
            }
            Err(e) => tracing::debug!(call = id, error = %e, "session refresh not sent"),
        }
    }

    /// What became of a refresh we sent.
    pub(super) fn on_refresh_event(&mut self, key: &TransactionKey, ev: Event) {
        let Some((id, answered)) = self.refresh_keys.get(key).cloned() else {
            return;
        };
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        let peer = c.next_hop();
        let via = self.via(peer.transport);
        let is_invite = key.method == "INVITE";
        let (code, resp) = match ev {
            Event::Response(r) => (r.status_code.code(), Some(r)),
            Event::TimedOut | Event::TransportError => (408, None),
            _ => return,
        };
        if code < 200 {
            return;
        }
        let action = if (200..300).contains(&code) {
            let resp = resp.as_ref();
            if is_invite
                && let (Some(d), Some(r)) =
                    (self.calls.get(&id).and_then(|c| c.dialog.as_ref()), resp)
            {
                // Every 2xx to our re-INVITE is acknowledged, retransmissions too.
                let seq = message::cseq(r).map(|(n, _)| n).unwrap_or(1);
                self.send(peer, &SipMessage::Request(d.ack(seq, &via, None)));
            }
            if answered {
                return;
            }
            self.refresh_keys.insert(key.clone(), (id.clone(), true));
            let agreed = resp.and_then(session_expires);
            if let Some(c) = self.calls.get_mut(&id) {
                match agreed {
                    Some((n, r)) => {
                        // refresher=uac names us, the sender of the refresh.
                        let who = if r.as_deref() == Some("uas") {
                            Refresher::Peer
                        } else {
                            Refresher::Us
                        };
                        if let Some(t) = c.timer.as_mut() {
                            t.refreshed(self.now, n.max(MIN_SE), who);
                        }
                    }
                    // No Session-Expires in the 2xx: the peer turned timers off (§7.4).
                    None => c.timer = None,
                }
            }
            None
        } else {
            // Over: a re-INVITE of the peer's no longer crosses it.
            self.refresh_keys.insert(key.clone(), (id.clone(), true));
            let min_se = resp
                .as_ref()
                .and_then(|r| header_value(r, "Min-SE"))
                .and_then(|v| v.split(';').next().and_then(|n| n.trim().parse().ok()));
            self.calls
                .get_mut(&id)
                .and_then(|c| c.timer.as_mut())
                .and_then(|t| t.refresh_failed(code, min_se))
        };
        self.schedule_timer(&id);
        match action {
            Some(TimerAction::Bye) => {
                tracing::info!(call = %id, code, "session refresh failed (RFC 4028): BYE");
                self.hang_up(&id);
            }
            Some(TimerAction::Refresh(method, interval)) => {
                self.send_refresh(&id, method, interval)
            }
            None => {}
        }
    }

    pub(super) fn hang_up(&mut self, call: &str) {
        let Some(mut c) = self.take_call(call) else {
            return;
        };
        c.shared.end();
        let via = self.via(c.next_hop().transport);
        match &c.role {
            Role::Uas {
                answered: false,
                invite,
                key,
                ..
            } => {
                let (invite, key) = (invite.clone(), key.clone());
                self.respond(&key, &invite, 480, "Temporarily Unavailable");
            }
            Role::Uac {
                answered: false, ..
            } => {
                self.insert_call(call.to_string(), c);
                self.cancel(call);
            }
            _ => {
                let peer = c.next_hop();
                if let Some(d) = c.dialog.as_mut() {
                    let bye = d.bye(&via);
                    let now = self.now;
                    if let Ok(key) = self.txns.start_client(now, bye, peer.transport.reliable()) {
                        self.peers.insert(key, peer);
                    }
                }
            }
        }
    }
}

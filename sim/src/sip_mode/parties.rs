//! The simulated parties as SIP user agents on the in-process network: a caller dials its
//! route point, answers the engine's 200 with an ACK, presses its keys by SIP INFO and hangs up
//! at its patience (BYE, or CANCEL before the answer) unless an agent took it; an agent's
//! phone REGISTERs at the start of its shift, answers the engine's INVITEs, talks for its
//! handle time and sends BYE, and unregisters at the end.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::World;
use super::text::{Leg, sdp};
use crate::legs::{ani, delta};

/// Caller `idx`'s address on the in-process network (10.0.0.0/8, port 5060).
pub fn caller_addr(idx: usize) -> SocketAddr {
    SocketAddr::from((
        Ipv4Addr::from(0x0A00_0000u32.wrapping_add(idx as u32)),
        5060,
    ))
}

/// Agent `i`'s phone address (11.0.0.0/8, port 5060).
pub fn agent_addr(i: usize) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0x0B00_0000u32.wrapping_add(i as u32)), 5060))
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn until(w: &World, at: Option<DateTime<Utc>>) {
    match at {
        Some(t) => w.sh.clock.sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// One caller: dials `rp`, acknowledges the answer, presses `keys` (each entry after the
/// first prompt and the key time per key), and hangs up at `patience` seconds after the engine
/// queued the call unless an agent answered it first.
pub async fn caller(
    w: Arc<World>,
    idx: usize,
    rp: String,
    keys: Vec<String>,
    patience: Option<f64>,
) {
    let me = caller_addr(idx);
    let engine = w.net.local_addr();
    let mut rx = w.attach(me);
    let mut leg = Leg::new(
        me,
        format!("sim-{idx}"),
        format!("<sip:{}@{me}>;tag=c{idx}", ani(idx)),
        format!("<sip:{rp}@{engine}>"),
        format!("sip:{rp}@{engine}"),
    );
    let queued = w.queued_notify(idx);
    w.stats.lock().invites += 1;
    w.send(me, leg.request("INVITE", "", &sdp(me)));
    let timing = w.sh.timing.clone();
    let mut answered = false;
    let mut key_at: Option<DateTime<Utc>> = None;
    let mut keys = keys.into_iter();
    let mut next_key = keys.next();
    let mut give_up: Option<DateTime<Utc>> = None;
    let mut hung_up = false;
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some(m) = m else { break };
                match m.method.as_deref() {
                    None if m.cseq_method() == "INVITE" => {
                        if m.status < 200 {
                            continue;
                        }
                        if let Some(t) = m.header("To") {
                            leg.remote = t.to_string();
                        }
                        if m.status >= 300 {
                            // The ACK of a failure is part of the INVITE's transaction.
                            w.send(me, leg.in_invite_transaction("ACK"));
                            let mut s = w.stats.lock();
                            if m.status == 487 && hung_up {
                                s.cancelled += 1;
                            } else {
                                *s.failures.entry(m.status.to_string()).or_default() += 1;
                            }
                            break;
                        }
                        if let Some(c) = m.contact_uri() {
                            leg.target = c;
                        }
                        w.send(me, leg.request("ACK", "", ""));
                        if !answered {
                            answered = true;
                            w.stats.lock().answered_200 += 1;
                            if hung_up {
                                // Our CANCEL crossed the 200: end the call now.
                                w.send(me, leg.request("BYE", "", ""));
                            } else if next_key.is_some() {
                                key_at = Some(w.sh.clock.now() + chrono::TimeDelta::from_std(timing.default_prompt).unwrap_or_default());
                            }
                        }
                    }
                    None if m.cseq_method() == "BYE" => break,
                    None => {}
                    Some("BYE") => {
                        w.send(me, m.respond("200 OK", "", "", ""));
                        w.stats.lock().byes_from_engine += 1;
                        break;
                    }
                    Some(_) => w.send(me, m.respond("200 OK", "", "", "")),
                }
            }
            _ = until(&w, key_at.filter(|_| answered && !hung_up)) => {
                key_at = None;
                if let Some(entry) = next_key.take() {
                    // The entry's keys, one INFO each, after the time it takes to press them.
                    for k in entry.chars() {
                        let body = format!("Signal={k}\r\nDuration=160\r\n");
                        w.send(me, leg.request("INFO", "Content-Type: application/dtmf-relay\r\n", &body));
                        w.stats.lock().infos += 1;
                    }
                    next_key = keys.next();
                    if let Some(e) = &next_key {
                        let gap = timing.key_delay * e.chars().count().max(1) as u32;
                        key_at = Some(w.sh.clock.now() + chrono::TimeDelta::from_std(gap).unwrap_or_default());
                    }
                }
            }
            _ = queued.notified(), if give_up.is_none() && !hung_up => {
                if let Some(p) = patience {
                    give_up = Some(w.sh.clock.now() + delta(p));
                }
            }
            _ = until(&w, give_up.filter(|_| !hung_up)) => {
                give_up = Some(DateTime::<Utc>::MAX_UTC);
                let taken = w.sh.lock_calls().get(idx).is_some_and(|c| c.answered.is_some());
                if taken {
                    continue;
                }
                hung_up = true;
                if let Some(c) = w.sh.lock_calls().get_mut(idx) {
                    c.abandoned = Some(w.sh.t());
                }
                w.stats.lock().byes_from_callers += 1;
                if answered {
                    w.send(me, leg.request("BYE", "", ""));
                } else {
                    w.send(me, leg.in_invite_transaction("CANCEL"));
                }
            }
        }
    }
    w.detach(me);
    w.forget_caller(idx);
}

/// The conversation an agent's phone is in.
struct Talk {
    leg: Leg,
    bye_at: Option<DateTime<Utc>>,
}

/// Agent `i`'s phone: registers as SIP user `id` (refreshing every half hour), answers the
/// engine's INVITEs and ends each call after the talk time the engine's dialler drew, until
/// told to log out.
pub async fn agent(w: Arc<World>, i: usize, id: String) {
    let me = agent_addr(i);
    let engine = w.net.local_addr();
    let mut rx = w.attach(me);
    let logout = w.logout_notify(i);
    let aor = format!("<sip:{id}@{engine}>");
    let mut reg = Leg::new(
        me,
        format!("reg-{id}"),
        format!("{aor};tag=r{i}"),
        aor,
        format!("sip:{engine}"),
    );
    w.send(me, reg.request("REGISTER", "Expires: 3600\r\n", ""));
    let refresh = delta(1800.0);
    let mut refresh_at = w.sh.clock.now() + refresh;
    let mut calls: HashMap<String, Talk> = HashMap::new();
    let mut n = 0usize;
    let mut registered = false;
    loop {
        let next_bye = calls
            .iter()
            .filter_map(|(id, c)| c.bye_at.map(|t| (t, id.clone())))
            .min();
        tokio::select! {
            m = rx.recv() => {
                let Some(m) = m else { break };
                match m.method.as_deref() {
                    Some("INVITE") if calls.contains_key(m.call_id()) => {}
                    Some("INVITE") => {
                        n += 1;
                        let tag = format!("a{i}-{n}");
                        let talk = w.take_talk(i);
                        let Some(talk) = talk else {
                            // Leaving for a break or the end of the shift: not answered.
                            w.stats.lock().agent_refused += 1;
                            w.send(me, m.respond("480 Temporarily Unavailable", &tag, "", ""));
                            continue;
                        };
                        w.stats.lock().agent_invites += 1;
                        crate::legs::note_agent_call(&w.sh, &m.from_user());
                        let ok = m.respond("200 OK", &tag, &format!("Contact: <sip:{id}@{me}>\r\n"), &sdp(me));
                        let to = m.header("To").unwrap_or_default().to_string();
                        let leg = Leg::new(
                            me,
                            m.call_id().to_string(),
                            format!("{to};tag={tag}"),
                            m.header("From").unwrap_or_default().to_string(),
                            m.contact_uri().unwrap_or_else(|| format!("sip:{engine}")),
                        );
                        calls.insert(m.call_id().to_string(), Talk {
                            leg,
                            bye_at: Some(w.sh.clock.now() + delta(talk)),
                        });
                        w.send(me, ok);
                    }
                    Some("BYE") => {
                        w.send(me, m.respond("200 OK", "", "", ""));
                        calls.remove(m.call_id());
                    }
                    Some("ACK") => {}
                    Some(_) => w.send(me, m.respond("200 OK", "", "", "")),
                    None if m.cseq_method() == "REGISTER" && m.status == 200 && !registered => {
                        registered = true;
                        w.stats.lock().registered += 1;
                    }
                    None if m.cseq_method() == "BYE" => {
                        calls.remove(m.call_id());
                    }
                    None => {}
                }
            }
            _ = until(&w, next_bye.as_ref().map(|(t, _)| *t)) => {
                if let Some((_, id)) = next_bye
                    && let Some(c) = calls.get_mut(&id)
                {
                    c.bye_at = None;
                    w.stats.lock().agent_byes += 1;
                    let bye = c.leg.request("BYE", "", "");
                    w.send(me, bye);
                }
            }
            _ = w.sh.clock.sleep_until(refresh_at) => {
                refresh_at = w.sh.clock.now() + refresh;
                w.send(me, reg.request("REGISTER", "Expires: 3600\r\n", ""));
            }
            _ = logout.notified() => {
                w.send(me, reg.request("REGISTER", "Expires: 0\r\n", ""));
                break;
            }
        }
    }
    // Let the unregistration's answer arrive before the address goes.
    w.sh.clock.sleep(delta(0.01)).await;
    w.detach(me);
}

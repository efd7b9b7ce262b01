//! The called side of wire mode: the engine's INVITEs to agents' phones and to customers
//! being called back, answered as the scenario says.

use super::*;

/// A call from the engine: to an agent's phone (registered by us) or to a customer being
/// called back (through the trunk that points at us).
pub(super) async fn incoming(ctx: Arc<Ctx>, call: IncomingCall) {
    let Some(ua) = ctx.ua.get().cloned() else {
        return;
    };
    ctx.incoming_in_progress.fetch_add(1, Ordering::Relaxed);
    if let Some(phone) = ctx.phones.get(&call.dnis) {
        lock(&ctx.tally).agent_calls += 1;
        agent_answers(&ctx, &ua, phone, call).await;
    } else if let Some(idx) = caller_of(&call.dnis).filter(|i| *i < lock(&ctx.calls).len()) {
        lock(&ctx.tally).customer_calls += 1;
        customer_answers(&ctx, &ua, idx, call).await;
    } else {
        lock(&ctx.tally).unknown_calls += 1;
        ua.reject(&call.call_id, 404, "Not Found");
    }
    ctx.incoming_in_progress.fetch_sub(1, Ordering::Relaxed);
}

async fn ended(shared: &LegShared) {
    let mut rx = shared.ended.subscribe();
    let _ = rx.wait_for(|e| *e).await;
}

/// Opens RTP and answers with SDP; None (and the call refused) when impossible.
async fn pick_up(ctx: &Ctx, ua: &UaHandle, call: &IncomingCall) -> Option<Arc<MediaSession>> {
    tokio::select! {
        _ = tokio::time::sleep(secs(ctx.opts.ring)) => {}
        _ = ended(&call.shared) => return None,
    }
    let media = match MediaSession::open(
        ua.public_ip,
        ctx.opts.rtp_ports,
        call.shared.digits.clone(),
    )
    .await
    {
        Ok(m) => m,
        Err(_) => {
            ua.reject(&call.call_id, 503, "Service Unavailable");
            return None;
        }
    };
    let (answer, negotiated) =
        match sdp::answer(&call.offer, ua.public_ip, media.local_addr().port()) {
            Ok(x) => x,
            Err(_) => {
                ua.reject(&call.call_id, 488, "Not Acceptable Here");
                media.close();
                return None;
            }
        };
    media.configure(&negotiated);
    if !ua.answer(&call.call_id, answer).await {
        media.close();
        return None;
    }
    Some(media)
}

async fn agent_answers(ctx: &Ctx, ua: &UaHandle, phone: &Phone, call: IncomingCall) {
    let Some(media) = pick_up(ctx, ua, &call).await else {
        return;
    };
    let handle = {
        let mut rngs = lock(&ctx.agent_rngs);
        match rngs.get_mut(phone.agent) {
            Some(rng) => phone.handle.sample(rng),
            None => None,
        }
    }
    .unwrap_or(60.0);
    // Whose call: the engine presents the caller's (or called-back customer's) number.
    let party = caller_of(&call.ani);
    let mut started = None;
    if let Some(idx) = party {
        let t = ctx.t(idx);
        started = t;
        let mut calls = lock(&ctx.calls);
        if let Some(c) = calls.get_mut(idx) {
            if !c.ended && c.answered.is_none() {
                c.answered = t;
            } else if c.ended && c.callback_connected.is_none() {
                c.callback_connected = t;
                // The customer reached an agent: the engine completes it as AGENT.
                c.callback_reason = Some("AGENT".into());
            }
        }
    }
    tokio::select! {
        _ = tokio::time::sleep(secs(handle)) => ua.hang_up(&call.call_id),
        _ = ended(&call.shared) => {}
    }
    if let Some(st) = started {
        lock(&ctx.busy).push((st, handle));
    }
    media.close();
}

async fn customer_answers(ctx: &Ctx, ua: &UaHandle, idx: usize, call: IncomingCall) {
    if let Some(c) = lock(&ctx.calls).get_mut(idx) {
        c.dial_attempts += 1;
    }
    let n = ctx.customer_seq.fetch_add(1, Ordering::Relaxed);
    let mut rng = rng_for(ctx.seed ^ 0x00C0_57AB, n as u64);
    let u: f64 = rng.random();
    let a = &ctx.callback_answer;
    if u >= a.answer + a.busy {
        // Rings out: the engine cancels at its ring timeout.
        tokio::select! {
            _ = ended(&call.shared) => {}
            _ = tokio::time::sleep(secs(ctx.opts.max_call)) => ua.reject(&call.call_id, 480, "Temporarily Unavailable"),
        }
        return;
    }
    if u >= a.answer {
        tokio::time::sleep(secs(ctx.opts.ring)).await;
        ua.reject(&call.call_id, 486, "Busy Here");
        return;
    }
    let Some(media) = pick_up(ctx, ua, &call).await else {
        return;
    };
    lock(&ctx.tally).customer_answered += 1;
    let parts = LegParts {
        info: LegInfo {
            call_id: call.call_id.clone(),
            ani: call.ani.clone(),
            dnis: call.dnis.clone(),
            direction: Direction::Inbound,
        },
        ua: ua.clone(),
        shared: call.shared.clone(),
        media,
        prompts: ctx.prompts.clone(),
        clock: ctx.clock.clone(),
    };
    let leg = SipLeg::new(parts, String::new(), true);
    tokio::select! {
        _ = tokio::time::sleep(secs(ctx.opts.digit_delay)) => {
            let _ = leg.send_digits(&ctx.confirm).await;
        }
        _ = leg.hung_up() => return,
    }
    tokio::select! {
        _ = leg.hung_up() => {}
        _ = tokio::time::sleep(secs(ctx.opts.max_call)) => {
            let _ = leg.hang_up(HangupCause::Normal).await;
        }
    }
}

//! Callback V2. In a Default application it offers an immediate callback (when enabled, within
//! the offer hours and the inbound EWT is at or above the threshold) and/or the nearest
//! scheduled slot, confirms the number and books. In a Callback application it greets the
//! customer whose callback is being served and waits for the key that connects them.

use chrono::{TimeDelta, Timelike};

use crate::call::{DigitSpec, PlayItem};
use crate::config::CallDirection;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, CallbackV2, ConnectMode, OfferKind};
use crate::flow::services::FlowBooking;

use super::user_input::{Ask, Asked, ask, one_key};

/// Runs the block.
pub async fn run(b: &CallbackV2, cx: &mut Cx<'_>) -> Step {
    match cx.flow.kind {
        AppKind::Default => offer(b, cx).await,
        AppKind::Callback => serve(b, cx).await,
    }
}

async fn serve(b: &CallbackV2, cx: &mut Cx<'_>) -> Step {
    let r = b.result.clone();
    let Some(digit) = &b.confirm_digit else {
        if cx.play(&b.intro_prompts, false).await.is_none() {
            return Step::HungUp;
        }
        cx.set(&format!("{r}.accepted"), true);
        cx.outcome("customer connected");
        return Step::Branch(b.on_accepted.clone());
    };
    let accept = |d: &str| d == digit;
    let asked = ask(
        cx,
        Ask {
            prompts: cx.items(&b.intro_prompts),
            spec: one_key(5),
            min_digits: 1,
            attempts: b.attempts,
            no_input: Vec::new(),
            no_match: Vec::new(),
            accept: &accept,
        },
    )
    .await;
    match asked {
        Asked::Got(_) => {
            cx.set(&format!("{r}.accepted"), true);
            cx.outcome("customer accepted");
            Step::Branch(b.on_accepted.clone())
        }
        Asked::Failed { .. } => {
            cx.set(&format!("{r}.accepted"), false);
            cx.outcome("customer did not confirm");
            Step::Branch(b.on_declined.clone())
        }
        Asked::HungUp => Step::HungUp,
    }
}

async fn offer(b: &CallbackV2, cx: &mut Cx<'_>) -> Step {
    let r = b.result.clone();
    let Some(queue) = b.queue.clone() else {
        cx.outcome("no queue");
        return Step::Branch(b.on_not_offered.clone());
    };
    let config = cx.services.config.clone();
    let inbound = b.inbound_queue.clone().unwrap_or_else(|| {
        queue
            .strip_suffix("_CB")
            .filter(|q| config.queue(q).is_some())
            .unwrap_or(&queue)
            .to_string()
    });
    let facts = cx.services.offer_facts(&queue, &inbound);
    let ewt_secs = facts.ewt.map(|e| e.num_seconds()).unwrap_or(-1);
    cx.set("queue.ewt", ewt_secs);
    cx.set("queue.waiting", facts.waiting as i64);
    let immediate = b.offer.contains(&OfferKind::Immediate) && facts.immediate;
    let scheduled = b.offer.contains(&OfferKind::Scheduled) && facts.slot.is_some();
    cx.set(&format!("{r}.offered_immediate"), immediate);
    cx.set(&format!("{r}.offered_scheduled"), scheduled);
    if !immediate && !scheduled {
        cx.set(&format!("{r}.accepted"), false);
        cx.outcome(format!(
            "not offered ({})",
            facts
                .immediate_refusal
                .clone()
                .unwrap_or_else(|| "no slot".into())
        ));
        return Step::Branch(b.on_not_offered.clone());
    }
    // 1 immediate, 2 scheduled, 3 keep waiting.
    let accept = |d: &str| (d == "1" && immediate) || (d == "2" && scheduled) || d == "3";
    let choice = ask(
        cx,
        Ask {
            prompts: cx.items(&b.offer_prompts),
            spec: one_key(5),
            min_digits: 1,
            attempts: b.attempts,
            no_input: Vec::new(),
            no_match: Vec::new(),
            accept: &accept,
        },
    )
    .await;
    let desired = match choice {
        Asked::HungUp => return Step::HungUp,
        Asked::Got(k) if k == "1" => None,
        Asked::Got(k) if k == "2" => {
            let Some(slot) = facts.slot else {
                return declined(b, cx, "no slot");
            };
            let local = slot.with_timezone(&facts.tz);
            let mut items = cx.items(&b.scheduled_prompts);
            items.push(PlayItem::Digits(format!(
                "{:02}{:02}",
                local.hour(),
                local.minute()
            )));
            items.extend(cx.items(&b.accept_time_prompts));
            cx.set(&format!("{r}.proposed_time"), slot.to_rfc3339());
            let yes = |d: &str| d == "1" || d == "2";
            match ask(
                cx,
                Ask {
                    prompts: items,
                    spec: one_key(5),
                    min_digits: 1,
                    attempts: b.attempts,
                    no_input: Vec::new(),
                    no_match: Vec::new(),
                    accept: &yes,
                },
            )
            .await
            {
                Asked::HungUp => return Step::HungUp,
                Asked::Got(k) if k == "1" => Some(slot),
                _ => return declined(b, cx, "scheduled time declined"),
            }
        }
        _ => return declined(b, cx, "declined"),
    };
    // The number to call.
    let ani = cx
        .vars
        .get("ani")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let phone = if b.confirm_number_prompts.is_empty() {
        ani
    } else {
        let one_or_two = |d: &str| d == "1" || d == "2";
        match ask(
            cx,
            Ask {
                prompts: cx.items(&b.confirm_number_prompts),
                spec: one_key(5),
                min_digits: 1,
                attempts: b.attempts,
                no_input: Vec::new(),
                no_match: Vec::new(),
                accept: &one_or_two,
            },
        )
        .await
        {
            Asked::HungUp => return Step::HungUp,
            Asked::Got(k) if k == "1" => ani,
            Asked::Got(_) => {
                let any = |_: &str| true;
                match ask(
                    cx,
                    Ask {
                        prompts: cx.items(&b.enter_number_prompts),
                        spec: DigitSpec {
                            max_digits: 15,
                            terminator: Some('#'),
                            first_digit_timeout: std::time::Duration::from_secs(8),
                            inter_digit_timeout: std::time::Duration::from_secs(4),
                        },
                        min_digits: 4,
                        attempts: b.attempts,
                        no_input: Vec::new(),
                        no_match: Vec::new(),
                        accept: &any,
                    },
                )
                .await
                {
                    Asked::HungUp => return Step::HungUp,
                    Asked::Got(n) => n,
                    Asked::Failed { .. } => return declined(b, cx, "no number entered"),
                }
            }
            Asked::Failed { .. } => return declined(b, cx, "number not confirmed"),
        }
    };
    let now = cx.services.clock.now();
    let priority = b
        .priority
        .or_else(|| config.queue(&queue).map(|q| q.priority))
        .unwrap_or(0);
    let booking = FlowBooking {
        queue: queue.clone(),
        phone,
        desired_time: desired,
        priority,
        direction: b.connect.map(|c| match c {
            ConnectMode::BusinessToCustomer => CallDirection::BusinessToCustomer,
            ConnectMode::CustomerDialsIn => CallDirection::CustomerDialsIn,
        }),
        queue_time: now,
        ewt_at_offer: facts.ewt.or(Some(TimeDelta::zero())),
        position_at_offer: facts.waiting,
        user_data: Default::default(),
    };
    match cx.services.book(booking).await {
        Ok(rec) => {
            let kind = if desired.is_some() {
                "scheduled"
            } else {
                "immediate"
            };
            cx.set(&format!("{r}.accepted"), true);
            cx.set(&format!("{r}.id"), rec.id.to_string());
            cx.set(&format!("{r}.type"), kind);
            cx.set(&format!("{r}.phone"), rec.phone.clone());
            cx.set(&format!("{r}.desired_time"), rec.desired_time.to_rfc3339());
            cx.outcome(format!("booked {kind} callback to {}", rec.phone));
            if cx.play(&b.booked_prompts, false).await.is_none() {
                return Step::HungUp;
            }
            Step::Branch(b.on_accepted.clone())
        }
        Err(e) => {
            cx.set(&format!("{r}.error"), e.to_string());
            declined(b, cx, &format!("booking refused: {e}"))
        }
    }
}

fn declined(b: &CallbackV2, cx: &mut Cx<'_>, why: &str) -> Step {
    cx.set(&format!("{}.accepted", b.result), false);
    cx.outcome(why.to_string());
    Step::Branch(b.on_declined.clone())
}

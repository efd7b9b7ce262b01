//! Callback V2. In a Default application it offers an immediate callback (when enabled, within
//! the offer hours and the inbound EWT is at or above the threshold) and/or the nearest
//! scheduled slot (in an in-queue offer, also only when the wait is long), confirms the number
//! and books. In a Callback application it greets the
//! customer whose callback is being served and waits for the key that connects them.

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Timelike, Utc};
use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use super::user_input::{Ask, Asked, ask, one_key};
use crate::call::{DigitSpec, PlayItem};
use crate::config::CallDirection;
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, PromptSpec, num};
use crate::flow::services::FlowBooking;

/// How the agent and customer are connected when the callback's turn comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectMode {
    /// We dial the customer.
    BusinessToCustomer,
    /// The customer dials in (Click-to-Call-In delayed).
    CustomerDialsIn,
}

/// Which kinds of callback an offer proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferKind {
    /// Keep the caller's place and call back when an agent is free.
    Immediate,
    /// Call back at a time the caller accepts.
    Scheduled,
}

fn callback_var() -> String {
    "callback".into()
}

fn both_offers() -> Vec<OfferKind> {
    vec![OfferKind::Immediate, OfferKind::Scheduled]
}

/// Callback V2: offers a callback (Default application) or drives the customer side of one
/// (Callback application).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackV2 {
    /// The callback virtual queue (its CALLBACK_SETTINGS row). In a Callback application the
    /// queue comes from the callback being served and this may be left out.
    pub queue: Option<String>,
    /// The inbound queue whose EWT decides the offer (default: `queue` without `_CB`).
    pub inbound_queue: Option<String>,
    /// Offer immediate and/or scheduled callbacks (default both).
    #[serde(default = "both_offers")]
    #[schemars(length(min = 1))]
    pub offer: Vec<OfferKind>,
    /// The offer prompt: 1 immediate, 2 scheduled, 3 keep waiting (keys as offered).
    #[serde(default)]
    pub offer_prompts: Vec<PromptSpec>,
    /// Played instead of `offer_prompts` when only the immediate callback can be offered (no
    /// free slot), so the caller is not told about a key that does nothing.
    #[serde(default)]
    pub immediate_only_prompts: Vec<PromptSpec>,
    /// Played instead of `offer_prompts` when only the scheduled callback can be offered
    /// (immediate disabled or outside its offer hours).
    #[serde(default)]
    pub scheduled_only_prompts: Vec<PromptSpec>,
    /// Read before the proposed time; the time follows as digits (HH MM, queue time zone).
    #[serde(default)]
    pub scheduled_prompts: Vec<PromptSpec>,
    /// Asks the caller for the time they want, as HHMM (today, or tomorrow when already past)
    /// or DHHMM (D days from today), then `#`; the nearest free slot from then is proposed.
    /// Without it the nearest free slot from now is proposed.
    #[serde(default)]
    pub choose_time_prompts: Vec<PromptSpec>,
    /// Played after the proposed time: 1 accepts it, 2 declines.
    #[serde(default)]
    pub accept_time_prompts: Vec<PromptSpec>,
    /// Confirm the number: 1 keeps the caller's number, 2 enters another.
    #[serde(default)]
    pub confirm_number_prompts: Vec<PromptSpec>,
    /// Asks for another number.
    #[serde(default)]
    pub enter_number_prompts: Vec<PromptSpec>,
    /// Played once the callback is booked.
    #[serde(default)]
    pub booked_prompts: Vec<PromptSpec>,
    /// Who places the call when an agent is ready (default: the queue's call direction).
    pub connect: Option<ConnectMode>,
    /// Initial routing priority of the callback.
    pub priority: Option<i64>,
    /// Prefix of the result variables (`callback.id`, `callback.accepted`, …).
    #[serde(default = "callback_var")]
    pub result: String,
    /// Callback application: played to the customer when the callback call starts.
    #[serde(default)]
    pub intro_prompts: Vec<PromptSpec>,
    /// Callback application: key the customer presses to be connected (none: connect at once).
    #[serde(default)]
    #[schemars(extend("pattern" = "^[0-9*#]$"))]
    pub confirm_digit: Option<String>,
    /// Attempts to get the confirm digit or an offer choice (1 to 9, default 2).
    #[serde(default = "num::<2>")]
    #[schemars(range(min = 1, max = 9))]
    pub attempts: u32,
    /// Block when a callback was booked (Default) or the customer accepted (Callback).
    pub on_accepted: Option<String>,
    /// Block when the caller declined.
    pub on_declined: Option<String>,
    /// Block when no callback could be offered (closed, EWT below threshold, no slot).
    pub on_not_offered: Option<String>,
}

impl BlockType for CallbackV2 {
    const NEXT: Option<&'static str> = Some("Block to run when the taken branch has no target.");

    branches!(on_accepted, on_declined, on_not_offered);

    fn falls_through(&self, kind: AppKind) -> bool {
        match kind {
            AppKind::Default => {
                self.on_accepted.is_none()
                    || self.on_declined.is_none()
                    || self.on_not_offered.is_none()
            }
            AppKind::Callback => {
                self.on_accepted.is_none()
                    || (self.confirm_digit.is_some() && self.on_declined.is_none())
            }
        }
    }

    const WAITS: bool = true;

    fn check(&self, c: &mut BlockCheck<'_>) {
        const DEFAULT_ONLY: &[&str] = &[
            "inbound_queue",
            "offer",
            "offer_prompts",
            "immediate_only_prompts",
            "scheduled_only_prompts",
            "scheduled_prompts",
            "choose_time_prompts",
            "accept_time_prompts",
            "confirm_number_prompts",
            "enter_number_prompts",
            "booked_prompts",
            "connect",
            "on_not_offered",
        ];
        const CALLBACK_ONLY: &[&str] = &["intro_prompts", "confirm_digit"];
        let (wrong, app) = match c.kind {
            AppKind::Default => (CALLBACK_ONLY, "Callback"),
            AppKind::Callback => (DEFAULT_ONLY, "Default"),
        };
        for key in wrong {
            c.at_key(key, format!("`{key}` applies only in a {app} application"));
        }
        c.range("attempts", self.attempts, 1, 9);
        c.var_name("result", &self.result);
        for (key, list) in [
            ("offer_prompts", &self.offer_prompts),
            ("immediate_only_prompts", &self.immediate_only_prompts),
            ("scheduled_only_prompts", &self.scheduled_only_prompts),
            ("scheduled_prompts", &self.scheduled_prompts),
            ("choose_time_prompts", &self.choose_time_prompts),
            ("accept_time_prompts", &self.accept_time_prompts),
            ("confirm_number_prompts", &self.confirm_number_prompts),
            ("enter_number_prompts", &self.enter_number_prompts),
            ("booked_prompts", &self.booked_prompts),
            ("intro_prompts", &self.intro_prompts),
        ] {
            c.prompts(key, list);
        }
        if let Some(d) = &self.confirm_digit {
            c.dtmf_key("confirm_digit", d);
        }
        if c.kind == AppKind::Default {
            match &self.queue {
                Some(q) => c.queue("queue", q),
                None => c.block_err("`queue` (the callback virtual queue) is required"),
            }
            if let Some(q) = &self.inbound_queue {
                c.queue("inbound_queue", q);
            }
            if self.offer.is_empty() {
                c.at("offer", "offer immediate, scheduled or both");
            }
            if self.offer_prompts.is_empty() {
                c.block_err("`offer_prompts` is required: the caller must hear the offer");
            }
        } else if let Some(q) = &self.queue {
            c.queue("queue", q);
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        match cx.flow.kind {
            AppKind::Default => offer(self, cx).await,
            AppKind::Callback => serve(self, cx).await,
        }
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
    let asked = ask_with(b, cx, cx.items(&b.intro_prompts), one_key(5), 1, &accept).await;
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
    // An in-queue offer (one that includes the immediate callback) spares the caller a long
    // wait: when the wait is short (an agent is free) nothing is offered, not even a slot, and
    // the caller goes on to the agents. A scheduled-only block is a booking line: no gate.
    let in_queue = b.offer.contains(&OfferKind::Immediate);
    let short_wait = config
        .queue(&queue)
        .zip(facts.ewt)
        .filter(|(q, ewt)| ewt.num_seconds() < q.ewt_offer_threshold_seconds)
        .map(|(q, ewt)| {
            format!(
                "EWT {}s is below the offer threshold {}s",
                ewt.num_seconds(),
                q.ewt_offer_threshold_seconds
            )
        });
    let gate = short_wait.filter(|_| in_queue);
    let immediate = gate.is_none() && in_queue && facts.immediate;
    let scheduled =
        gate.is_none() && b.offer.contains(&OfferKind::Scheduled) && facts.slot.is_some();
    cx.set(&format!("{r}.offered_immediate"), immediate);
    cx.set(&format!("{r}.offered_scheduled"), scheduled);
    if !immediate && !scheduled {
        cx.set(&format!("{r}.accepted"), false);
        cx.outcome(format!(
            "not offered ({})",
            gate.or_else(|| facts.immediate_refusal.clone())
                .unwrap_or_else(|| "no slot".into())
        ));
        return Step::Branch(b.on_not_offered.clone());
    }
    // The prompt names only the keys that work.
    let offer_prompts = match (immediate, scheduled) {
        (true, false)
            if b.offer.contains(&OfferKind::Scheduled) && !b.immediate_only_prompts.is_empty() =>
        {
            &b.immediate_only_prompts
        }
        (false, true) if in_queue && !b.scheduled_only_prompts.is_empty() => {
            &b.scheduled_only_prompts
        }
        _ => &b.offer_prompts,
    };
    // 1 immediate, 2 scheduled, 3 keep waiting.
    let accept = |d: &str| (d == "1" && immediate) || (d == "2" && scheduled) || d == "3";
    let choice = ask_with(b, cx, cx.items(offer_prompts), one_key(5), 1, &accept).await;
    let desired = match choice {
        Asked::HungUp => return Step::HungUp,
        Asked::Got(k) if k == "1" => None,
        Asked::Got(k) if k == "2" => {
            let slot = if b.choose_time_prompts.is_empty() {
                facts.slot
            } else {
                let now = cx.services.clock.now();
                let tz = facts.tz;
                let parse = move |d: &str| wanted_time(d, now, tz);
                let valid = |d: &str| parse(d).is_some();
                match ask_with(b, cx, cx.items(&b.choose_time_prompts), typed(5), 4, &valid).await {
                    Asked::HungUp => return Step::HungUp,
                    Asked::Got(d) => {
                        let wanted = parse(&d).unwrap_or(now);
                        cx.set(&format!("{r}.wanted_time"), wanted.to_rfc3339());
                        cx.services.nearest_slot(&queue, wanted)
                    }
                    Asked::Failed { .. } => return declined(b, cx, "no time chosen"),
                }
            };
            let Some(slot) = slot else {
                return declined(b, cx, "no slot");
            };
            let local = slot.with_timezone(&facts.tz);
            let mut items = cx.items(&b.scheduled_prompts);
            if local.date_naive()
                != cx
                    .services
                    .clock
                    .now()
                    .with_timezone(&facts.tz)
                    .date_naive()
            {
                // Another day: its date first, as DDMM.
                items.push(PlayItem::Digits(format!(
                    "{:02}{:02}",
                    local.day(),
                    local.month()
                )));
            }
            items.push(PlayItem::Digits(format!(
                "{:02}{:02}",
                local.hour(),
                local.minute()
            )));
            items.extend(cx.items(&b.accept_time_prompts));
            cx.set(&format!("{r}.proposed_time"), slot.to_rfc3339());
            let yes = |d: &str| d == "1" || d == "2";
            match ask_with(b, cx, items, one_key(5), 1, &yes).await {
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
        match ask_with(
            b,
            cx,
            cx.items(&b.confirm_number_prompts),
            one_key(5),
            1,
            &one_or_two,
        )
        .await
        {
            Asked::HungUp => return Step::HungUp,
            Asked::Got(k) if k == "1" => ani,
            Asked::Got(_) => {
                let any = |_: &str| true;
                match ask_with(b, cx, cx.items(&b.enter_number_prompts), typed(15), 4, &any).await {
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
        // The call's attached data (Call Data blocks) goes with the callback: the API returns
        // it as userData and it reaches the agent when the callback is served.
        user_data: cx.call_data.clone(),
    };
    match cx.services.book(booking).await {
        Ok(rec) => {
            crate::ops::logging::record_callback(&rec.id);
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

/// Asks with the block's attempts and no retry prompts.
async fn ask_with(
    b: &CallbackV2,
    cx: &Cx<'_>,
    prompts: Vec<PlayItem>,
    spec: DigitSpec,
    min_digits: usize,
    accept: &(dyn Fn(&str) -> bool + Sync),
) -> Asked {
    let a = Ask {
        prompts,
        spec,
        min_digits,
        attempts: b.attempts,
        no_input: Vec::new(),
        no_match: Vec::new(),
        accept,
    };
    ask(cx, a).await
}

/// Digits ended by `#` (a time, a phone number).
fn typed(max_digits: usize) -> DigitSpec {
    DigitSpec {
        max_digits,
        terminator: Some('#'),
        first_digit_timeout: std::time::Duration::from_secs(8),
        inter_digit_timeout: std::time::Duration::from_secs(4),
    }
}

fn declined(b: &CallbackV2, cx: &mut Cx<'_>, why: &str) -> Step {
    cx.set(&format!("{}.accepted", b.result), false);
    cx.outcome(why.to_string());
    Step::Branch(b.on_declined.clone())
}

/// The time a caller keyed: `HHMM` (today in `tz`, or tomorrow when already past) or `DHHMM`
/// (D days from today). `None` for an impossible time.
pub fn wanted_time(keys: &str, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    if !keys.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (days, hhmm) = match keys.len() {
        4 => (None, keys),
        5 => (keys[..1].parse::<u64>().ok(), &keys[1..]),
        _ => return None,
    };
    let h: u32 = hhmm[..2].parse().ok()?;
    let m: u32 = hhmm[2..].parse().ok()?;
    let time = chrono::NaiveTime::from_hms_opt(h, m, 0)?;
    let today = now.with_timezone(&tz).date_naive();
    let at = |date: chrono::NaiveDate| {
        tz.from_local_datetime(&date.and_time(time))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    match days {
        Some(d) => at(today + chrono::Days::new(d)),
        None => {
            let t = at(today)?;
            if t > now {
                Some(t)
            } else {
                at(today + chrono::Days::new(1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_times_are_read_in_the_queue_time_zone() {
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(); // 10:00 in Paris
        assert_eq!(
            wanted_time("1430", now, tz),
            Some(Utc.with_ymd_and_hms(2026, 3, 2, 13, 30, 0).unwrap())
        );
        // Already past today: tomorrow.
        assert_eq!(
            wanted_time("0930", now, tz),
            Some(Utc.with_ymd_and_hms(2026, 3, 3, 8, 30, 0).unwrap())
        );
        assert_eq!(
            wanted_time("21000", now, tz),
            Some(Utc.with_ymd_and_hms(2026, 3, 4, 9, 0, 0).unwrap())
        );
        assert_eq!(wanted_time("2561", now, tz), None);
        assert_eq!(wanted_time("12", now, tz), None);
        assert_eq!(wanted_time("12*4", now, tz), None);
    }
}

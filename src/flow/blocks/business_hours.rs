//! Business Hours: open on a regular day, open on a special day, or closed, by a queue's hours
//! or a named set, in their time zone. Sets `hours.local_time` (HH:MM there).

use std::sync::Arc;

use chrono::Timelike;
use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::config::{BusinessHours, DayKind};
use crate::diagnostics::suggest;
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::AppKind;

/// Branches on business hours: a queue's, or a named set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursCheck {
    /// Use this queue's hours.
    pub queue: Option<String>,
    /// Or a named business-hours set.
    pub hours: Option<String>,
    /// Block when open on a regular day.
    pub open: Option<String>,
    /// Block when closed.
    pub closed: Option<String>,
    /// Block when open on a special (dated) day; defaults to `open`.
    pub special: Option<String>,
}

impl BlockType for BusinessHoursCheck {
    const NEXT: Option<&'static str> = Some("Block to run when the taken branch has no target.");

    branches!(open, closed, special);

    // `special` defaults to `open`.
    fn falls_through(&self, _kind: AppKind) -> bool {
        self.open.is_none() || self.closed.is_none()
    }

    fn check(&self, c: &mut BlockCheck<'_>) {
        match (&self.queue, &self.hours) {
            (Some(q), None) => c.queue("queue", q),
            (None, Some(h)) => {
                let config = c.ctx.config;
                if !config.hours.contains_key(h) {
                    let known: Vec<&str> = config.hours.keys().map(String::as_str).collect();
                    c.at(
                        "hours",
                        format!("no business hours named `{h}`{}", suggest(h, &known)),
                    );
                }
            }
            _ => c.block_err("give exactly one of `queue` and `hours`"),
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx)
    }
}

fn run(b: &BusinessHoursCheck, cx: &mut Cx<'_>) -> Step {
    // The configuration in force: a reload changes business hours for the next calls.
    let config = &cx.services.callbacks.config();
    let hours: Arc<BusinessHours> = match (&b.queue, &b.hours) {
        (Some(q), _) => match config.queue(q) {
            Some(q) => config.queue_hours(q),
            None => Arc::new(BusinessHours::always_open()),
        },
        (None, Some(h)) => config
            .hours
            .get(h)
            .cloned()
            .unwrap_or_else(|| Arc::new(BusinessHours::always_open())),
        (None, None) => Arc::new(BusinessHours::always_open()),
    };
    let now = cx.services.clock.now();
    let local = now.with_timezone(&hours.tz);
    cx.set(
        "hours.local_time",
        format!("{:02}:{:02}", local.hour(), local.minute()),
    );
    let open = hours.is_open(now);
    let special = matches!(hours.day(local.date_naive()).1, DayKind::Special(_));
    match (open, special) {
        (false, _) => {
            cx.set("hours.state", "closed");
            cx.outcome("closed");
            Step::Branch(b.closed.clone())
        }
        (true, true) => {
            cx.set("hours.state", "special");
            cx.outcome("open (special day)");
            Step::Branch(b.special.clone().or_else(|| b.open.clone()))
        }
        (true, false) => {
            cx.set("hours.state", "open");
            cx.outcome("open");
            Step::Branch(b.open.clone())
        }
    }
}

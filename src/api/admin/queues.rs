//! The queues page (Tools): per queue the EWT, what waits, callbacks by state, today's open and
//! close times in the queue's zone, and the rules assigned; only queues the user may read.

use serde_json::{Value, json};

use super::auth::{Admin, Permission};
use crate::api::stats::queue_figures;
use crate::api::{Reply, ok};

/// Every readable queue with its figures.
#[utoipa::path(get, path = "/queues", tag = "admin",
    responses((status = 200, description = "one entry per queue the user may read"), (status = 403)))]
pub async fn list(Admin { s, user }: Admin) -> Reply {
    user.require(Permission::UseTools)?;
    let now = s.clock.now();
    let by_queue = s.callbacks.count_by_queue();
    let mut out = Vec::new();
    for q in s
        .config
        .spec
        .queues
        .iter()
        .filter(|q| user.can_read_queue(&q.name))
    {
        let hours = s.config.queue_hours(q);
        let today: Vec<Value> = hours
            .today(now)
            .iter()
            .map(|(open, close)| json!({ "open": open.to_rfc3339(), "close": close.to_rfc3339() }))
            .collect();
        let figures = queue_figures(&s, &q.name, q.service_level_seconds);
        out.push(json!({
            "name": q.name,
            "estimatedWaitTime": figures.estimated_wait_time,
            "waiting": figures.waiting,
            "callbacksByState": by_queue.get(&q.name).cloned().unwrap_or_default(),
            "agents": { "loggedIn": figures.agents_logged_in, "ready": figures.agents_ready, "busy": figures.agents_busy },
            "timezone": hours.tz.name(),
            "openNow": hours.is_open(now),
            "hoursToday": today,
            "immediateEnabled": q.immediate_enabled,
            "scheduledEnabled": q.scheduled_enabled,
            "businessHours": q.business_hours,
            "rules": {
                "numberValidation": s.callbacks.assigned_number_rule(&q.name).map(|r| r.spec().name.clone()),
                "capacity": s.callbacks.has_capacity_rule(&q.name),
            },
        }));
    }
    Ok(ok(out))
}

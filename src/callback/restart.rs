//! The restart rule: what a callback found in flight at start (the engine was stopped, e.g. by
//! a crash or SIGKILL, during a dial or a call) becomes. ROUTING goes back to QUEUED at its old
//! place with the cut dial counted as a failed attempt (retry after the queue's interval), or
//! completes as REDIAL_LIMIT_REACHED if that was the last allowed attempt; PROCESSING completes
//! as ENGINE_RESTARTED. Other states are left as they are.

use chrono::{DateTime, TimeDelta, Utc};

use super::model::{CallbackRecord, CallbackState, CompletionReason, LifecycleError};
use crate::call::DialResult;
use crate::config::QueueSpec;

/// Applies the restart rule to `r` (of queue `q`) at `now`.
pub fn resolve_in_flight(
    r: &mut CallbackRecord,
    q: &QueueSpec,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    match r.state {
        CallbackState::Processing => r.transition(
            CallbackState::Completed(CompletionReason::EngineRestarted),
            now,
            "engine",
            "the engine restarted during the call with the agent",
        ),
        CallbackState::Routing => {
            let max = q.max_dial_attempts.max(1) as u32;
            let retry_at = now + TimeDelta::seconds(q.retry_interval_seconds);
            r.record_attempt(now, DialResult::Failed, 0);
            if r.attempts() >= max {
                r.transition(
                    CallbackState::Completed(CompletionReason::RedialLimitReached),
                    now,
                    "engine",
                    format!("attempt {} of {max} cut by an engine restart", r.attempts()),
                )
            } else {
                r.next_attempt_at = Some(retry_at);
                r.transition(
                    CallbackState::Queued,
                    now,
                    "engine",
                    format!(
                        "attempt {} of {max} cut by an engine restart, retry at {retry_at}",
                        r.attempts()
                    ),
                )
            }
        }
        _ => Ok(()),
    }
}

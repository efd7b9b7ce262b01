//! A callback record and its lifecycle: SCHEDULED → QUEUED → ROUTING → PROCESSING →
//! COMPLETED(reason). Only the transitions below are possible, and each one is kept as an event
//! with its time and cause, so a callback always ends with an honest reason.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::call::DialResult;
use crate::config::CallDirection;

/// How long a record is kept, counted from its desired callback time (fixed, as in GES).
pub const RETENTION: TimeDelta = TimeDelta::days(14);
/// Most user-data entries attached to one callback.
pub const MAX_USER_DATA_ENTRIES: usize = 64;
/// Longest user-data key, in bytes.
pub const MAX_USER_DATA_KEY: usize = 64;
/// Largest user-data total (keys and values), in bytes.
pub const MAX_USER_DATA_BYTES: usize = 16 * 1024;

/// A UUID v7 stamped with `now` (the injected clock's time, not the system's). Random v4 ids
/// sent every insert to a random page of the id index: with many stored callbacks a commit of
/// 500 new ones rewrote hundreds of index pages, which is what capped durable creations/s.
pub fn time_ordered_id(now: DateTime<Utc>) -> Uuid {
    let secs = u64::try_from(now.timestamp()).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        secs,
        now.timestamp_subsec_nanos(),
    ))
}

/// Why a callback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompletionReason {
    /// The customer was connected to an agent and the call ended.
    Agent,
    /// Cancelled by the customer or an application.
    Cancelled,
    /// Cancelled by an administrator.
    CancelledByAdmin,
    /// The customer left the queue before being served (customer-dials-in or in-queue).
    AbandonedInQueue,
    /// Every allowed dial attempt failed.
    RedialLimitReached,
    /// Replaced by a new record at another time.
    Rescheduled,
    /// Not served within the purge time or before the end of the business day.
    Purged,
    /// The pushed-callback session (customer dials in) expired.
    Expired,
    /// The engine stopped (crash, kill) while the customer was with an agent; found at restart.
    EngineRestarted,
    /// The customer answered but never confirmed (the Callback application's confirm digit,
    /// after its attempts), so the engine hung up: they did not leave on their own.
    NotConfirmed,
    /// An answering machine answered and the queue's message was left on it.
    MessageLeft,
}

impl CompletionReason {
    /// Its name as the API writes it (`CANCELLED_BY_ADMIN`), for messages.
    pub fn name(self) -> &'static str {
        match self {
            CompletionReason::Agent => "AGENT",
            CompletionReason::Cancelled => "CANCELLED",
            CompletionReason::CancelledByAdmin => "CANCELLED_BY_ADMIN",
            CompletionReason::AbandonedInQueue => "ABANDONED_IN_QUEUE",
            CompletionReason::RedialLimitReached => "REDIAL_LIMIT_REACHED",
            CompletionReason::Rescheduled => "RESCHEDULED",
            CompletionReason::Purged => "PURGED",
            CompletionReason::Expired => "EXPIRED",
            CompletionReason::EngineRestarted => "ENGINE_RESTARTED",
            CompletionReason::NotConfirmed => "NOT_CONFIRMED",
            CompletionReason::MessageLeft => "MESSAGE_LEFT",
        }
    }
}

/// Where a callback is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", tag = "state", content = "reason")]
pub enum CallbackState {
    /// Waiting for its desired time.
    Scheduled,
    /// In its virtual queue, waiting for an agent.
    Queued,
    /// An agent was found; the customer is being dialled (or told to call in).
    Routing,
    /// Customer and agent are talking.
    Processing,
    /// Finished, with the reason.
    Completed(CompletionReason),
}

impl CallbackState {
    /// The GES name of the state (`COMPLETED` for every reason).
    pub fn name(&self) -> &'static str {
        match self {
            CallbackState::Scheduled => "SCHEDULED",
            CallbackState::Queued => "QUEUED",
            CallbackState::Routing => "ROUTING",
            CallbackState::Processing => "PROCESSING",
            CallbackState::Completed(_) => "COMPLETED",
        }
    }

    /// True once the callback has ended.
    pub fn is_completed(&self) -> bool {
        matches!(self, CallbackState::Completed(_))
    }
}

/// When the customer wants to be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallbackType {
    /// As soon as an agent is free.
    Immediate,
    /// At a chosen time.
    Scheduled,
}

/// Who asked for the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Origin {
    /// A caller in an IVR flow.
    Ivr,
    /// An application through the REST API.
    Api,
    /// An administrator.
    Admin,
}

/// One outbound attempt and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialAttempt {
    /// When the dial started.
    pub at: DateTime<Utc>,
    /// How it ended.
    pub result: DialResult,
    /// Agents logged in when the attempt was made.
    pub agents_logged_in: u32,
}

/// Figures kept for reporting, as the callback guide's per-callback metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Estimated wait time when the callback was offered, seconds.
    pub ewt_at_offer_seconds: Option<u32>,
    /// Position in queue when offered.
    pub position_at_offer: Option<u32>,
    /// Agents logged in when offered.
    pub agents_logged_in_at_offer: Option<u32>,
    /// Agents logged in at the first outbound call.
    pub agents_logged_in_at_first_dial: Option<u32>,
    /// Every dial attempt, oldest first.
    pub attempts: Vec<DialAttempt>,
    /// The agent who served the customer.
    pub connected_agent: Option<String>,
    /// Who cancelled, when cancelled.
    pub cancelled_by: Option<String>,
    /// Who rescheduled, when rescheduled.
    pub rescheduled_by: Option<String>,
}

/// A state change, with its time and cause, kept forever with the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// State before.
    pub from: Option<CallbackState>,
    /// State after.
    pub to: CallbackState,
    /// Why, in words (e.g. "desired time reached", "dial BUSY, retry at …").
    pub cause: String,
}

/// What a caller may not do to a callback in its current state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LifecycleError {
    /// The transition is not one of the allowed ones.
    #[error("a {from} callback cannot become {to}")]
    InvalidTransition {
        /// Current state name.
        from: &'static str,
        /// Requested state name.
        to: &'static str,
    },
    /// The callback has ended already: there is nothing left to cancel.
    #[error("the callback is already COMPLETED ({}); there is nothing to cancel", .0.name())]
    AlreadyCompleted(CompletionReason),
    /// A PROCESSING callback is with an agent and cannot be cancelled.
    #[error("the callback is being processed by an agent and cannot be cancelled")]
    Processing,
    /// Only SCHEDULED callbacks can be rescheduled.
    #[error("only a SCHEDULED callback can be rescheduled; this one is {0}")]
    NotScheduled(&'static str),
    /// Only COMPLETED callbacks can be recreated.
    #[error("only a COMPLETED callback can be recreated; this one is {0}")]
    NotCompleted(&'static str),
}

/// Why attached user data was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UserDataError {
    /// Too many keys.
    #[error("at most {MAX_USER_DATA_ENTRIES} user data entries are allowed, got {0}")]
    TooManyEntries(usize),
    /// A key is empty or too long.
    #[error("user data key `{0}` must be 1 to {MAX_USER_DATA_KEY} bytes")]
    BadKey(String),
    /// The whole is too large.
    #[error("user data is {0} bytes, more than {MAX_USER_DATA_BYTES}")]
    TooLarge(usize),
}

/// Checks user data against the size limits.
pub fn check_user_data(data: &BTreeMap<String, String>) -> Result<(), UserDataError> {
    if data.len() > MAX_USER_DATA_ENTRIES {
        return Err(UserDataError::TooManyEntries(data.len()));
    }
    let mut total = 0;
    for (k, v) in data {
        if k.is_empty() || k.len() > MAX_USER_DATA_KEY {
            return Err(UserDataError::BadKey(k.clone()));
        }
        total += k.len() + v.len();
    }
    if total > MAX_USER_DATA_BYTES {
        return Err(UserDataError::TooLarge(total));
    }
    Ok(())
}

/// A customer's request to be called back, with everything needed to serve and report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    /// Unique id: a UUID v7 (creation time, then 74 random bits), so ids made later sort later
    /// and the store's primary-key index grows at its end instead of at random pages.
    pub id: Uuid,
    /// The virtual queue (service name).
    pub queue: String,
    /// Number to call, E.164.
    pub phone: String,
    /// When the customer wants the call (for immediate: when it was requested).
    pub desired_time: DateTime<Utc>,
    /// Immediate or scheduled.
    pub kind: CallbackType,
    /// Who asked.
    pub origin: Origin,
    /// Who places the call.
    pub direction: CallDirection,
    /// Routing priority, higher first.
    pub priority: i64,
    /// The enqueue time that orders it in the queue (kept across retries, and inherited from the
    /// caller's place for an in-queue callback).
    pub queue_time: DateTime<Utc>,
    /// Attached key/value data.
    pub user_data: BTreeMap<String, String>,
    /// Current state.
    pub state: CallbackState,
    /// When the next dial attempt may start (after a failed one).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Who made the last change.
    pub updated_by: String,
    /// The record this one was recreated or rescheduled from.
    pub previous_id: Option<Uuid>,
    /// Reporting figures.
    pub metrics: Metrics,
    /// Every state change.
    pub history: Vec<StateEvent>,
    /// The GES create fields beyond the above (offer type, language, channel, route points…).
    #[serde(default)]
    pub ges: crate::callback::ges::GesAttributes,
    /// Push targets and the one-off push events already raised.
    #[serde(default, skip_serializing_if = "crate::push::CallbackPush::is_empty")]
    pub push: crate::push::CallbackPush,
}

/// What is needed to create a record; the rest is derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCallback {
    /// The virtual queue.
    pub queue: String,
    /// Number to call, E.164.
    pub phone: String,
    /// `None` for an immediate callback.
    pub desired_time: Option<DateTime<Utc>>,
    /// Who asked.
    pub origin: Origin,
    /// Who places the call.
    pub direction: CallDirection,
    /// Routing priority.
    pub priority: i64,
    /// Keep the caller's place: the time they entered the queue.
    pub queue_time: Option<DateTime<Utc>>,
    /// Attached data.
    pub user_data: BTreeMap<String, String>,
    /// Who is creating it.
    pub created_by: String,
}

impl CallbackRecord {
    /// A new record at `now`: SCHEDULED if the desired time is in the future, else QUEUED.
    pub fn create(new: NewCallback, now: DateTime<Utc>) -> Result<Self, UserDataError> {
        check_user_data(&new.user_data)?;
        Ok(Self::build(new, now))
    }

    fn build(new: NewCallback, now: DateTime<Utc>) -> Self {
        let (kind, desired) = match new.desired_time {
            Some(t) => (CallbackType::Scheduled, t),
            None => (CallbackType::Immediate, now),
        };
        let state = if desired > now {
            CallbackState::Scheduled
        } else {
            CallbackState::Queued
        };
        let mut rec = CallbackRecord {
            id: time_ordered_id(now),
            queue: new.queue,
            phone: new.phone,
            desired_time: desired,
            kind,
            origin: new.origin,
            direction: new.direction,
            priority: new.priority,
            queue_time: new.queue_time.unwrap_or(desired).min(desired.max(now)),
            user_data: new.user_data,
            state,
            next_attempt_at: None,
            created_at: now,
            created_by: new.created_by.clone(),
            updated_at: now,
            updated_by: new.created_by,
            previous_id: None,
            metrics: Metrics::default(),
            history: Vec::new(),
            ges: Default::default(),
            push: Default::default(),
        };
        rec.history.push(StateEvent {
            at: now,
            from: None,
            to: state,
            cause: "created".into(),
        });
        rec
    }

    /// The record may be removed after this instant.
    pub fn retain_until(&self) -> DateTime<Utc> {
        self.desired_time + RETENTION
    }

    /// Moves to `to` if the lifecycle allows it, recording the event.
    pub fn transition(
        &mut self,
        to: CallbackState,
        now: DateTime<Utc>,
        by: &str,
        cause: impl Into<String>,
    ) -> Result<(), LifecycleError> {
        use CallbackState::*;
        use CompletionReason as R;
        let allowed = match (self.state, to) {
            (Scheduled, Queued) => true,
            (Scheduled, Completed(r)) => matches!(
                r,
                R::Cancelled | R::CancelledByAdmin | R::Rescheduled | R::Purged | R::Expired
            ),
            (Queued, Routing) => true,
            (Queued, Completed(r)) => matches!(
                r,
                R::Cancelled | R::CancelledByAdmin | R::AbandonedInQueue | R::Purged | R::Expired
            ),
            // A failed attempt goes back to the queue, keeping its place.
            (Routing, Queued) => true,
            (Routing, Processing) => true,
            (Routing, Completed(r)) => matches!(
                r,
                R::Cancelled
                    | R::CancelledByAdmin
                    | R::RedialLimitReached
                    | R::AbandonedInQueue
                    | R::NotConfirmed
                    | R::MessageLeft
                    | R::Purged
                    | R::Expired
            ),
            (Processing, Completed(R::Agent | R::EngineRestarted)) => true,
            // An administrator may end any record that is not COMPLETED (one left behind by a
            // lost call); the customer or an application may not while an agent serves it.
            (Processing, Completed(R::CancelledByAdmin)) => true,
            (Processing, Completed(R::Cancelled)) => {
                return Err(LifecycleError::Processing);
            }
            _ => false,
        };
        if !allowed {
            return Err(LifecycleError::InvalidTransition {
                from: self.state.name(),
                to: to.name(),
            });
        }
        self.history.push(StateEvent {
            at: now,
            from: Some(self.state),
            to,
            cause: cause.into(),
        });
        self.state = to;
        self.updated_at = now;
        self.updated_by = by.to_string();
        Ok(())
    }

    /// Cancels it (by the customer/application, or by an administrator).
    pub fn cancel(
        &mut self,
        now: DateTime<Utc>,
        by: &str,
        admin: bool,
    ) -> Result<(), LifecycleError> {
        if let CallbackState::Completed(ended) = self.state {
            return Err(LifecycleError::AlreadyCompleted(ended));
        }
        let reason = if admin {
            CompletionReason::CancelledByAdmin
        } else {
            CompletionReason::Cancelled
        };
        self.transition(
            CallbackState::Completed(reason),
            now,
            by,
            format!("cancelled by {by}"),
        )?;
        self.metrics.cancelled_by = Some(by.to_string());
        Ok(())
    }

    /// Ends a SCHEDULED record as RESCHEDULED and returns its successor at `new_time`.
    pub fn reschedule(
        &mut self,
        new_time: DateTime<Utc>,
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<CallbackRecord, LifecycleError> {
        if self.state != CallbackState::Scheduled {
            return Err(LifecycleError::NotScheduled(self.state.name()));
        }
        self.transition(
            CallbackState::Completed(CompletionReason::Rescheduled),
            now,
            by,
            format!("rescheduled to {new_time}"),
        )?;
        self.metrics.rescheduled_by = Some(by.to_string());
        Ok(self.successor(Some(new_time), now, by))
    }

    /// A fresh copy of a COMPLETED record (same queue, number and data), as the admin's Recreate.
    pub fn recreate(
        &self,
        desired_time: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<CallbackRecord, LifecycleError> {
        if !self.state.is_completed() {
            return Err(LifecycleError::NotCompleted(self.state.name()));
        }
        Ok(self.successor(desired_time, now, by))
    }

    fn successor(
        &self,
        desired: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        by: &str,
    ) -> CallbackRecord {
        let new = NewCallback {
            queue: self.queue.clone(),
            phone: self.phone.clone(),
            desired_time: desired,
            origin: self.origin,
            direction: self.direction,
            priority: self.priority,
            queue_time: None,
            user_data: self.user_data.clone(),
            created_by: by.to_string(),
        };
        // The data was within limits when this record was accepted, so it is not checked again.
        let mut rec = CallbackRecord::build(new, now);
        rec.previous_id = Some(self.id);
        rec.ges = self.ges.clone();
        // The app that asked for pushes still wants them for the new record.
        rec.push.targets = self.push.targets.clone();
        rec
    }

    /// Records a dial attempt's result.
    pub fn record_attempt(&mut self, at: DateTime<Utc>, result: DialResult, agents_logged_in: u32) {
        if self.metrics.attempts.is_empty() {
            self.metrics.agents_logged_in_at_first_dial = Some(agents_logged_in);
        }
        self.metrics.attempts.push(DialAttempt {
            at,
            result,
            agents_logged_in,
        });
    }

    /// Dial attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.metrics.attempts.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallbackState::*;
    use CompletionReason as R;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).single().unwrap()
    }

    fn new(desired: Option<DateTime<Utc>>) -> NewCallback {
        NewCallback {
            queue: "Sales_VQ_CB".into(),
            phone: "+33123456789".into(),
            desired_time: desired,
            origin: Origin::Api,
            direction: CallDirection::BusinessToCustomer,
            priority: 5,
            queue_time: None,
            user_data: BTreeMap::from([("order".into(), "42".into())]),
            created_by: "app".into(),
        }
    }

    #[test]
    fn immediate_is_queued_and_scheduled_waits() {
        let now = t(10, 0);
        let imm = CallbackRecord::create(new(None), now).unwrap();
        assert_eq!((imm.state, imm.kind), (Queued, CallbackType::Immediate));
        assert_eq!(imm.desired_time, now);
        let sch = CallbackRecord::create(new(Some(t(14, 0))), now).unwrap();
        assert_eq!((sch.state, sch.kind), (Scheduled, CallbackType::Scheduled));
        assert_eq!(sch.retain_until(), t(14, 0) + TimeDelta::days(14));
    }

    #[test]
    fn ids_carry_the_clock_time_and_sort_by_it() {
        let a = CallbackRecord::create(new(None), t(10, 0)).unwrap();
        let b = CallbackRecord::create(new(None), t(10, 1)).unwrap();
        let c = CallbackRecord::create(new(None), t(10, 1)).unwrap();
        assert_eq!(a.id.get_version_num(), 7);
        let (secs, _) = a.id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs as i64, t(10, 0).timestamp());
        assert!(a.id < b.id && a.id < c.id, "a later creation sorts later");
        assert_ne!(b.id, c.id, "same millisecond, still unique");
        assert!(a.id.to_string() < b.id.to_string(), "also as stored text");
    }

    #[test]
    fn in_queue_callback_keeps_the_callers_place() {
        let mut n = new(None);
        n.queue_time = Some(t(9, 55));
        let rec = CallbackRecord::create(n, t(10, 0)).unwrap();
        assert_eq!(rec.queue_time, t(9, 55));
    }

    #[test]
    fn the_happy_path_records_every_event() {
        let mut r = CallbackRecord::create(new(Some(t(11, 0))), t(10, 0)).unwrap();
        r.transition(Queued, t(11, 0), "scheduler", "desired time reached")
            .unwrap();
        r.transition(Routing, t(11, 2), "router", "agent alice ready")
            .unwrap();
        r.record_attempt(t(11, 2), DialResult::Busy, 3);
        r.transition(Queued, t(11, 2), "dialer", "BUSY, retry later")
            .unwrap();
        r.transition(Routing, t(11, 7), "router", "agent bob ready")
            .unwrap();
        r.record_attempt(t(11, 7), DialResult::Connected, 2);
        r.transition(Processing, t(11, 8), "dialer", "bridged to bob")
            .unwrap();
        assert_eq!(
            r.cancel(t(11, 9), "app", false),
            Err(LifecycleError::Processing)
        );
        let mut by_admin = r.clone();
        by_admin.cancel(t(11, 9), "root", true).unwrap();
        assert_eq!(by_admin.state, Completed(R::CancelledByAdmin));
        r.transition(Completed(R::Agent), t(11, 20), "dialer", "hung up")
            .unwrap();
        let states: Vec<&str> = r.history.iter().map(|e| e.to.name()).collect();
        assert_eq!(
            states,
            [
                "SCHEDULED",
                "QUEUED",
                "ROUTING",
                "QUEUED",
                "ROUTING",
                "PROCESSING",
                "COMPLETED"
            ]
        );
        assert_eq!(r.attempts(), 2);
        assert_eq!(r.metrics.agents_logged_in_at_first_dial, Some(3));
        assert_eq!(r.updated_by, "dialer");
    }

    #[test]
    fn invalid_transitions_are_refused_and_leave_the_record_unchanged() {
        let mut r = CallbackRecord::create(new(Some(t(11, 0))), t(10, 0)).unwrap();
        let before = r.clone();
        for to in [
            Routing,
            Processing,
            Completed(R::Agent),
            Completed(R::RedialLimitReached),
            Completed(R::AbandonedInQueue),
        ] {
            assert!(
                matches!(
                    r.transition(to, t(10, 1), "x", "y"),
                    Err(LifecycleError::InvalidTransition { .. })
                ),
                "{to:?}"
            );
        }
        assert_eq!(r, before);
        r.cancel(t(10, 1), "admin", true).unwrap();
        assert_eq!(r.state, Completed(R::CancelledByAdmin));
        assert!(
            r.transition(Queued, t(10, 2), "x", "y").is_err(),
            "completed is final"
        );
        assert_eq!(r.metrics.cancelled_by.as_deref(), Some("admin"));
    }

    #[test]
    fn reschedule_only_from_scheduled_and_recreate_only_from_completed() {
        let mut r = CallbackRecord::create(new(Some(t(11, 0))), t(10, 0)).unwrap();
        assert!(matches!(
            r.recreate(None, t(10, 0), "x"),
            Err(LifecycleError::NotCompleted("SCHEDULED"))
        ));
        let next = r.reschedule(t(15, 0), t(10, 5), "supervisor").unwrap();
        assert_eq!(r.state, Completed(R::Rescheduled));
        assert_eq!(next.state, Scheduled);
        assert_eq!(next.desired_time, t(15, 0));
        assert_eq!(next.previous_id, Some(r.id));
        assert_eq!(next.user_data, r.user_data);
        let mut q = CallbackRecord::create(new(None), t(10, 0)).unwrap();
        assert_eq!(
            q.reschedule(t(15, 0), t(10, 1), "x"),
            Err(LifecycleError::NotScheduled("QUEUED"))
        );
        q.transition(Completed(R::Purged), t(18, 0), "scheduler", "end of day")
            .unwrap();
        let again = q.recreate(None, t(18, 1), "admin").unwrap();
        assert_eq!((again.state, again.previous_id), (Queued, Some(q.id)));
    }

    #[test]
    fn user_data_limits() {
        let mut n = new(None);
        n.user_data = (0..65).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(
            CallbackRecord::create(n.clone(), t(10, 0)).unwrap_err(),
            UserDataError::TooManyEntries(65)
        );
        n.user_data = BTreeMap::from([("".into(), "v".into())]);
        assert!(matches!(
            CallbackRecord::create(n.clone(), t(10, 0)),
            Err(UserDataError::BadKey(_))
        ));
        n.user_data = BTreeMap::from([("big".into(), "x".repeat(20_000))]);
        assert!(matches!(
            CallbackRecord::create(n, t(10, 0)),
            Err(UserDataError::TooLarge(_))
        ));
    }

    #[test]
    fn states_serialize_with_ges_names() {
        let json = serde_json::to_string(&Completed(R::RedialLimitReached)).unwrap();
        assert_eq!(
            json,
            r#"{"state":"COMPLETED","reason":"REDIAL_LIMIT_REACHED"}"#
        );
        assert_eq!(
            serde_json::to_string(&Queued).unwrap(),
            r#"{"state":"QUEUED"}"#
        );
    }
}

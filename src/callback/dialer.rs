//! Outbound attempts for business-to-customer callbacks: the state changes around a dial, the
//! redial limit, the retry interval that keeps the callback's place, the push events, and the
//! toll-fraud check of the number before every dial. The SIP side is reached only through the
//! `Dialer` seam.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use uuid::Uuid;

use super::model::{CallbackRecord, CallbackState, CompletionReason};
use super::service::{CallbackService, ServiceError};
use crate::call::{CallLeg, Dial, DialResult, DialTarget, Dialer};

/// What became of a dial attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The customer answered; the callback stays ROUTING until an agent is bridged.
    Answered,
    /// Failed; another attempt will be made at the given time, keeping the callback's place.
    Retry(chrono::DateTime<chrono::Utc>),
    /// The last allowed attempt failed: COMPLETED(REDIAL_LIMIT_REACHED).
    RedialLimitReached,
    /// The number is refused by the queue's rule (checked again before every dial).
    NumberRefused(String),
    /// The queue's business hours or the customer's calling hours are closed: not dialled, it
    /// waits in the queue until they open at the given time (or is purged first).
    OutsideHours(chrono::DateTime<chrono::Utc>),
    /// The retry would come after the purge time or the end of the business day:
    /// COMPLETED(PURGED) instead.
    Purged,
    /// An answering machine answered and the queue's message was left: COMPLETED(MESSAGE_LEFT).
    MessageLeft,
}

impl CallbackService {
    /// QUEUED → ROUTING when the router picked this callback for an agent.
    pub async fn begin_attempt(
        &self,
        id: Uuid,
        agent: &str,
    ) -> Result<CallbackRecord, ServiceError> {
        let now = self.clock_now();
        self.update(id, |r| {
            r.transition(
                CallbackState::Routing,
                now,
                "router",
                format!("agent {agent} available"),
            )?;
            Ok(())
        })
        .await
    }

    /// Records a dial's result and moves the callback on: stays ROUTING when answered, goes
    /// back to QUEUED with a retry time, or completes at the redial limit.
    pub async fn finish_attempt(
        &self,
        id: Uuid,
        result: DialResult,
        agents_logged_in: u32,
    ) -> Result<AttemptOutcome, ServiceError> {
        let now = self.clock_now();
        let rec = self.get(id).await?;
        let q = self.queue_spec(&rec.queue)?;
        let max = q.max_dial_attempts.max(1) as u32;
        let retry_at = now + TimeDelta::seconds(q.retry_interval_seconds);
        let purge = self.purge_deadline(&rec);
        let mut outcome = AttemptOutcome::Answered;
        let updated = self
            .update(id, |r| {
                r.record_attempt(now, result, agents_logged_in);
                if result == DialResult::Connected {
                    return Ok(());
                }
                if r.attempts() >= max {
                    outcome = AttemptOutcome::RedialLimitReached;
                    r.transition(
                        CallbackState::Completed(CompletionReason::RedialLimitReached),
                        now,
                        "dialer",
                        format!("attempt {} of {max}: {result:?}", r.attempts()),
                    )?;
                } else if purge.is_some_and(|p| now >= p) {
                    // The purge time or closing passed during the dial: no retry after hours.
                    outcome = AttemptOutcome::Purged;
                    r.transition(
                        CallbackState::Completed(CompletionReason::Purged),
                        now,
                        "dialer",
                        format!(
                            "attempt {} of {max}: {result:?}; purge time or end of business day passed",
                            r.attempts()
                        ),
                    )?;
                } else {
                    outcome = AttemptOutcome::Retry(retry_at);
                    r.next_attempt_at = Some(retry_at);
                    r.transition(
                        CallbackState::Queued,
                        now,
                        "dialer",
                        format!(
                            "attempt {} of {max}: {result:?}, retry at {retry_at}",
                            r.attempts()
                        ),
                    )?;
                }
                Ok(())
            })
            .await?;
        // ATTEMPT_FAILED, FINAL_ATTEMPT_FAILED or PURGED went with the change (see `raised`).
        tracing::debug!(callback = %updated.id, ?outcome, "attempt recorded");
        Ok(outcome)
    }

    /// ROUTING → PROCESSING once the customer is bridged to `agent`.
    pub async fn connected(&self, id: Uuid, agent: &str) -> Result<CallbackRecord, ServiceError> {
        let now = self.clock_now();
        self.update(id, |r| {
            r.metrics.connected_agent = Some(agent.to_string());
            r.transition(
                CallbackState::Processing,
                now,
                "dialer",
                format!("connected to agent {agent}"),
            )?;
            Ok(())
        })
        .await
    }

    /// PROCESSING → COMPLETED(AGENT) when the call ends.
    pub async fn served(&self, id: Uuid) -> Result<CallbackRecord, ServiceError> {
        self.complete_by_dialer(id, CompletionReason::Agent, "call ended")
            .await
    }

    /// A customer-dials-in callback reached the head of its queue: CALLBACK_READY is raised
    /// once (stored with the mark, carrying `call_in`: the number and access code to dial,
    /// when the queue hands one out) and the pushed-callback expiry starts from it.
    pub async fn ready_for_call_in(
        &self,
        id: Uuid,
        call_in: serde_json::Value,
    ) -> Result<CallbackRecord, ServiceError> {
        let now = self.clock_now();
        let rec = self
            .update(id, |r| {
                if r.push.ready_at.is_none() {
                    r.push.ready_at = Some(now);
                    r.push.call_in = call_in;
                }
                Ok(())
            })
            .await?;
        self.start_push_expiry(id);
        Ok(rec)
    }

    /// ROUTING → COMPLETED(ABANDONED_IN_QUEUE): the customer answered but left before an agent
    /// was connected (declined the callback, hung up on hold).
    pub async fn abandoned(&self, id: Uuid, why: &str) -> Result<CallbackRecord, ServiceError> {
        self.complete_by_dialer(id, CompletionReason::AbandonedInQueue, why)
            .await
    }

    /// ROUTING → COMPLETED(NOT_CONFIRMED): the customer answered but never gave the
    /// confirmation the Callback application asked for, and the engine hung up.
    pub async fn not_confirmed(&self, id: Uuid) -> Result<CallbackRecord, ServiceError> {
        self.complete_by_dialer(
            id,
            CompletionReason::NotConfirmed,
            "the customer did not confirm; the engine hung up",
        )
        .await
    }

    /// A call the dialer handled ended the callback: one place records the final state
    /// (`COMPLETED` with `reason`) and the dialer as its author.
    async fn complete_by_dialer(
        &self,
        id: Uuid,
        reason: CompletionReason,
        why: &str,
    ) -> Result<CallbackRecord, ServiceError> {
        let now = self.clock_now();
        self.update(id, |r| {
            r.transition(CallbackState::Completed(reason), now, "dialer", why)?;
            Ok(())
        })
        .await
    }

    /// Runs one attempt: checks the number again, dials through `dialer`, records the result.
    /// On answer the customer's leg is returned for the Callback application and the bridge.
    pub async fn attempt(
        &self,
        id: Uuid,
        agent: &str,
        dialer: &dyn Dialer,
        agents_logged_in: u32,
    ) -> Result<(AttemptOutcome, Option<Arc<dyn CallLeg>>), ServiceError> {
        // No customer is dialled while the queue's business hours are closed.
        let now = self.clock_now();
        let current = self.get(id).await?;
        match self.next_dial_time(&current.queue, now) {
            Some(at) if at <= now => {}
            Some(at) => {
                self.update(id, |r| {
                    r.next_attempt_at = Some(at);
                    Ok(())
                })
                .await?;
                return Ok((AttemptOutcome::OutsideHours(at), None));
            }
            None => {
                let rec = self
                    .update(id, |r| {
                        r.transition(
                            CallbackState::Completed(CompletionReason::Purged),
                            now,
                            "dialer",
                            "the queue's business hours never open again",
                        )?;
                        Ok(())
                    })
                    .await?;
                tracing::info!(callback = %rec.id, "purged: its queue never opens again");
                return Ok((AttemptOutcome::Purged, None));
            }
        }
        // Nor outside the calling-hours window of the customer's local time: the callback
        // waits for the window's next opening (not failed, its place kept).
        if let Some(at) = self
            .queue_spec(&current.queue)?
            .calling_hours
            .and_then(|h| h.next_call_time(&current.phone, now))
            .filter(|at| *at > now)
        {
            self.update(id, |r| {
                r.next_attempt_at = Some(at);
                Ok(())
            })
            .await?;
            tracing::info!(callback = %id, %at, "outside the customer's calling hours; deferred");
            return Ok((AttemptOutcome::OutsideHours(at), None));
        }
        let rec = self.begin_attempt(id, agent).await?;
        if let Err(e) = self.check_number(&rec.queue, &rec.phone) {
            let now = self.clock_now();
            self.update(id, |r| {
                r.transition(
                    CallbackState::Completed(CompletionReason::Cancelled),
                    now,
                    "dialer",
                    format!("number refused before dialling: {e}"),
                )?;
                Ok(())
            })
            .await?;
            return Ok((AttemptOutcome::NumberRefused(e.to_string()), None));
        }
        let q = self.queue_spec(&rec.queue)?;
        // The booking's route point (GES `routePoint`) overrides the queue's.
        let caller_id = rec
            .ges
            .route_point
            .clone()
            .or_else(|| q.routing_point.clone())
            .unwrap_or_default();
        let target = DialTarget::Customer {
            number: rec.phone.clone(),
            trunk: q.trunk.clone(),
        };
        let ring = Duration::from_secs(q.ring_timeout_seconds.max(1) as u64);
        match dialer.dial(Dial::new(&target, &caller_id, ring)).await {
            Ok(leg) => {
                if let Some(amd) = &q.amd
                    && let Some(outcome) =
                        self.screen_answer(id, &leg, amd, agents_logged_in).await?
                {
                    return Ok((outcome, None));
                }
                let outcome = self
                    .finish_attempt(id, DialResult::Connected, agents_logged_in)
                    .await?;
                Ok((outcome, Some(leg)))
            }
            Err(result) => Ok((
                self.finish_attempt(id, result, agents_logged_in).await?,
                None,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{
        BridgeEnd, CallError, DigitOutcome, DigitSpec, HangupCause, LegInfo, PlayItem, PlayOptions,
        PlayOutcome,
    };
    use crate::callback::service::{QueueEvent, api_callback};
    use crate::clock::{Clock, ManualClock};
    use crate::config::Config;
    use crate::push::{MemoryNotifier, PushKind};
    use crate::store::SqliteStore;
    use async_trait::async_trait;
    use chrono::{DateTime, TimeZone, Utc};
    use std::path::Path;
    use std::sync::Mutex;

    /// A dialer that answers with a scripted sequence of results (real code, no sockets).
    struct ScriptedDialer {
        results: Mutex<Vec<DialResult>>,
        dialled: Mutex<Vec<String>>,
    }

    struct Answered(LegInfo);

    #[async_trait]
    impl CallLeg for Answered {
        fn info(&self) -> &LegInfo {
            &self.0
        }
        async fn answer(&self) -> Result<(), CallError> {
            Ok(())
        }
        async fn play(&self, _: &[PlayItem], _: &PlayOptions) -> Result<PlayOutcome, CallError> {
            Ok(PlayOutcome::Completed)
        }
        fn stop_playing(&self) {}
        async fn collect_digits(&self, _: &DigitSpec) -> Result<DigitOutcome, CallError> {
            Ok(DigitOutcome::NoInput)
        }
        fn flush_digits(&self) {}
        async fn send_digits(&self, _: &str) -> Result<(), CallError> {
            Ok(())
        }
        async fn bridge(&self, _: Arc<dyn CallLeg>) -> Result<BridgeEnd, CallError> {
            Ok(BridgeEnd::OtherSide)
        }
        async fn hang_up(&self, _: HangupCause) -> Result<(), CallError> {
            Ok(())
        }
        async fn hung_up(&self) {}
        fn is_ended(&self) -> bool {
            false
        }
    }

    #[async_trait]
    impl Dialer for ScriptedDialer {
        async fn dial(&self, call: Dial<'_>) -> Result<Arc<dyn CallLeg>, DialResult> {
            if let DialTarget::Customer { number, .. } = call.target {
                self.dialled.lock().unwrap().push(number.clone());
            }
            match self.results.lock().unwrap().remove(0) {
                DialResult::Connected => Ok(Arc::new(Answered(LegInfo {
                    call_id: "c".into(),
                    ani: "8000".into(),
                    dnis: "+33612345678".into(),
                    direction: crate::call::Direction::Outbound,
                }))),
                other => Err(other),
            }
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap()
    }

    async fn setup() -> (
        Arc<CallbackService>,
        ManualClock,
        Arc<MemoryNotifier>,
        tempfile::TempDir,
        Uuid,
    ) {
        let config = Config::from_str_in(
            "queues:\n  - name: S_VQ_CB\n    max_dial_attempts: 3\n    retry_interval_seconds: 60\n    callback_purge_time_minutes: 600\n",
            Path::new("/"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(t0());
        let notifier = Arc::new(MemoryNotifier::new());
        let svc = Arc::new(CallbackService::new(
            Arc::new(config),
            clock.shared(),
            Arc::new(SqliteStore::open(dir.path()).unwrap()),
            notifier.clone(),
        ));
        let rec = svc
            .create(api_callback("S_VQ_CB", "+33612345678", None).into())
            .await
            .unwrap();
        (svc, clock, notifier, dir, rec.id)
    }

    /// A callback service on the configuration `text`, a manual clock at `t0` and a store in
    /// a temporary directory (kept alive by the returned guard).
    fn service_on(text: &str) -> (CallbackService, ManualClock, tempfile::TempDir) {
        let config = Config::from_str_in(text, Path::new("/")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(t0());
        let svc = CallbackService::new(
            Arc::new(config),
            clock.shared(),
            Arc::new(SqliteStore::open(dir.path()).unwrap()),
            Arc::new(MemoryNotifier::new()),
        );
        (svc, clock, dir)
    }

    /// A dialer that keeps the caller id of every call and never gets an answer.
    struct CallerIds(Mutex<Vec<String>>);

    #[async_trait]
    impl Dialer for CallerIds {
        async fn dial(&self, call: Dial<'_>) -> Result<Arc<dyn CallLeg>, DialResult> {
            self.0.lock().unwrap().push(call.caller_id.to_string());
            Err(DialResult::NoAnswer)
        }
    }

    /// GES `routePoint` on create is the outbound call's route point (caller id), instead of
    /// the queue's `routing_point`; without it the queue's applies.
    #[tokio::test]
    async fn the_bookings_route_point_is_the_caller_id_of_its_calls() {
        let (svc, _clock, _dir) =
            service_on("queues:\n  - name: S_VQ_CB\n    routing_point: '8000'\n");
        let request = || api_callback("S_VQ_CB", "+33612345678", None).into();
        let own = svc
            .create_with(
                request(),
                crate::callback::ges::GesAttributes {
                    route_point: Some("8123".into()),
                    ..Default::default()
                },
                Vec::new(),
            )
            .await
            .unwrap();
        let plain = svc.create(request()).await.unwrap();
        let dialer = CallerIds(Mutex::new(vec![]));
        svc.attempt(own.id, "alice", &dialer, 1).await.unwrap();
        svc.attempt(plain.id, "alice", &dialer, 1).await.unwrap();
        assert_eq!(*dialer.0.lock().unwrap(), ["8123", "8000"]);
    }

    /// A customer due outside their calling hours (Paris time for a French number) is not
    /// dialled: the callback waits, QUEUED, for the window's opening, and is dialled then.
    #[tokio::test]
    async fn a_callback_due_outside_the_customers_calling_hours_waits_for_their_opening() {
        let (svc, clock, _dir) = service_on(
            "queues:\n  - name: S_VQ_CB\n    calling_hours: {start: '11:00', end: '20:00'}\n",
        );
        let rec = svc
            .create(api_callback("S_VQ_CB", "+33612345678", None).into())
            .await
            .unwrap();
        let dialer = CallerIds(Mutex::new(vec![]));
        // 09:00 UTC is 10:00 in Paris: an hour before the window opens (10:00 UTC).
        let opens = t0() + TimeDelta::hours(1);
        let (outcome, _) = svc.attempt(rec.id, "alice", &dialer, 1).await.unwrap();
        assert_eq!(outcome, AttemptOutcome::OutsideHours(opens));
        assert!(dialer.0.lock().unwrap().is_empty(), "not dialled");
        let waiting = svc.get(rec.id).await.unwrap();
        assert_eq!(waiting.state, CallbackState::Queued);
        assert_eq!(waiting.next_attempt_at, Some(opens));
        assert_eq!(waiting.attempts(), 0, "no attempt counted");
        clock.set(opens);
        let (outcome, _) = svc.attempt(rec.id, "alice", &dialer, 1).await.unwrap();
        assert!(matches!(outcome, AttemptOutcome::Retry(_)), "{outcome:?}");
        assert_eq!(dialer.0.lock().unwrap().len(), 1, "dialled once open");
    }

    #[tokio::test]
    async fn busy_three_times_completes_redial_limit_reached_with_three_attempts() {
        let (svc, clock, notifier, _dir, id) = setup().await;
        let dialer = ScriptedDialer {
            results: Mutex::new(vec![DialResult::Busy; 3]),
            dialled: Mutex::new(vec![]),
        };
        for i in 0..3 {
            let (outcome, leg) = svc.attempt(id, "alice", &dialer, 2).await.unwrap();
            assert!(leg.is_none());
            if i < 2 {
                assert_eq!(
                    outcome,
                    AttemptOutcome::Retry(clock.now() + TimeDelta::seconds(60))
                );
                assert_eq!(svc.get(id).await.unwrap().state, CallbackState::Queued);
                clock.advance(TimeDelta::seconds(60));
                svc.tick().await.unwrap();
            } else {
                assert_eq!(outcome, AttemptOutcome::RedialLimitReached);
            }
        }
        let rec = svc.get(id).await.unwrap();
        assert_eq!(
            rec.state,
            CallbackState::Completed(CompletionReason::RedialLimitReached)
        );
        assert_eq!(rec.attempts(), 3);
        assert!(
            rec.metrics
                .attempts
                .iter()
                .all(|a| a.result == DialResult::Busy)
        );
        assert_eq!(
            notifier.kinds_for(id),
            vec![
                PushKind::CallbackAttemptFailed,
                PushKind::CallbackAttemptFailed,
                PushKind::CallbackFinalAttemptFailed
            ]
        );
        assert_eq!(dialer.dialled.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn no_answer_then_answer_then_agent_completes_agent() {
        let (svc, clock, _n, _dir, id) = setup().await;
        let dialer = ScriptedDialer {
            results: Mutex::new(vec![DialResult::NoAnswer, DialResult::Connected]),
            dialled: Mutex::new(vec![]),
        };
        svc.attempt(id, "alice", &dialer, 2).await.unwrap();
        // The retry keeps the callback's place: same queue_time when it is enqueued again.
        let queue_time = svc.get(id).await.unwrap().queue_time;
        svc.drain_queue_events();
        clock.advance(TimeDelta::seconds(60));
        svc.tick().await.unwrap();
        assert_eq!(
            svc.drain_queue_events(),
            vec![QueueEvent::Enqueue {
                id,
                queue: "S_VQ_CB".into(),
                priority: 0,
                queue_time
            }]
        );
        let (outcome, leg) = svc.attempt(id, "bob", &dialer, 2).await.unwrap();
        assert_eq!(outcome, AttemptOutcome::Answered);
        assert!(leg.is_some());
        svc.connected(id, "bob").await.unwrap();
        assert!(matches!(
            svc.cancel(id, "app", false).await,
            Err(ServiceError::Lifecycle(_))
        ));
        let done = svc.served(id).await.unwrap();
        assert_eq!(
            done.state,
            CallbackState::Completed(CompletionReason::Agent)
        );
        assert_eq!(done.metrics.connected_agent.as_deref(), Some("bob"));
        assert_eq!(done.attempts(), 2);
    }
}

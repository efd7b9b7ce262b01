//! What a running flow may ask of the engine: queue facts, callback offers and bookings,
//! call-in matching, and connecting a caller to an agent. One concrete type over the real parts
//! (router, callback service, call-in registry, agent dialer): tests and the simulator use it
//! too, with the in-memory `CallLeg` and `Dialer` and a virtual clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::call::{BridgeEnd, CallLeg, Dial, DialResult, DialTarget, Dialer, HangupCause};
use crate::callback::availability::{self, nearest_available};
use crate::callback::model::{CallbackRecord, NewCallback, Origin};
use crate::callback::service::{CreateRequest, ServiceError};
use crate::callin::{CallFacts, CallInRequest, MatchCriteria, MatchFailure};
use crate::config::CallDirection;
use crate::routing::{Assignment, RouterError, StateKind, Waiting};

/// Why a callback may or may not be offered now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferFacts {
    /// EWT of the inbound queue; `None` when no agent is logged in (the wait is unbounded).
    pub ewt: Option<TimeDelta>,
    /// Callers waiting in the inbound queue.
    pub waiting: usize,
    /// An immediate callback may be offered.
    pub immediate: bool,
    /// Why not, when it may not.
    pub immediate_refusal: Option<String>,
    /// The nearest bookable slot for a scheduled callback.
    pub slot: Option<DateTime<Utc>>,
    /// The callback queue's time zone, to say the slot in local time.
    pub tz: chrono_tz::Tz,
}

/// A booking made from a flow.
#[derive(Debug, Clone)]
pub struct FlowBooking {
    /// Callback queue.
    pub queue: String,
    /// Number to call.
    pub phone: String,
    /// `None` for immediate.
    pub desired_time: Option<DateTime<Utc>>,
    /// Priority.
    pub priority: i64,
    /// Override of the queue's call direction.
    pub direction: Option<CallDirection>,
    /// Keeps the caller's place in queue.
    pub queue_time: DateTime<Utc>,
    /// EWT when offered.
    pub ewt_at_offer: Option<TimeDelta>,
    /// Position when offered.
    pub position_at_offer: usize,
    /// Attached data.
    pub user_data: BTreeMap<String, String>,
}

/// Where a matched call-in caller goes.
#[derive(Debug, Clone)]
pub struct CallInTarget {
    /// The queue to route to.
    pub queue: String,
    /// The callback the caller is the customer of (Click-to-Call-In Delayed).
    pub callback: Option<CallbackRecord>,
}

/// How connecting a caller to an assigned agent went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentConnect {
    /// They talked; the conversation has ended.
    Talked {
        /// Agent id.
        agent: String,
        /// Who hung up first, seen from the caller.
        end: BridgeEnd,
    },
    /// The agent's phone did not answer (the agent is set Not Ready).
    AgentUnavailable(DialResult),
    /// The caller hung up while the agent's phone rang.
    CallerGone,
}

/// The engine's services for flows: its [`Core`](crate::engine::Core) (reached as fields
/// through `Deref`) and what only flows use.
pub struct FlowServices {
    /// Configuration, time, callbacks, call-in, dispatch, store, last agents.
    pub core: crate::engine::Core,
    /// Rings agents' phones.
    pub agents: Arc<dyn Dialer>,
    /// The shared, bounded client of HTTP Request blocks.
    pub http: Arc<crate::flow::http::HttpGate>,
    /// The flows in force, once the engine has them: post-call surveys run a route point's.
    pub flows: std::sync::OnceLock<Arc<crate::flow::LiveFlows>>,
}

impl std::ops::Deref for FlowServices {
    type Target = crate::engine::Core;

    /// The engine's services, as `services.config`, `services.dispatch`, ...
    fn deref(&self) -> &crate::engine::Core {
        &self.core
    }
}

impl FlowServices {
    /// Facts for a Callback V2 offer on `queue` (callback VQ) with `inbound`'s EWT.
    pub fn offer_facts(&self, queue: &str, inbound: &str) -> OfferFacts {
        let now = self.clock.now();
        let router = self.dispatch.router();
        let ewt = router.ewt_for_new(inbound).ok().flatten();
        let waiting = router.waiting(inbound).unwrap_or(0);
        let Some(q) = self.config.queue(queue) else {
            return OfferFacts {
                ewt,
                waiting,
                immediate: false,
                immediate_refusal: Some(format!("unknown queue {queue}")),
                slot: None,
                tz: chrono_tz::UTC,
            };
        };
        let hours = self.config.queue_hours(q);
        let offer_hours = self.config.immediate_offer_hours(q);
        let wait = ewt.unwrap_or(TimeDelta::zero());
        let open = availability::open_for(q, &hours, offer_hours.as_deref(), now, wait);
        let threshold = TimeDelta::seconds(q.ewt_offer_threshold_seconds);
        let refusal = if !q.immediate_enabled {
            Some("immediate callback is disabled".to_string())
        } else if !open.is_within_immediate_offer_time {
            Some("outside the immediate offer time".to_string())
        } else if ewt.is_some_and(|e| e < threshold) {
            Some(format!(
                "EWT {}s is below the offer threshold {}s",
                wait.num_seconds(),
                threshold.num_seconds()
            ))
        } else {
            None
        };
        let slot = if q.scheduled_enabled {
            let today = now.with_timezone(&hours.tz).date_naive();
            let last = today + chrono::Days::new(q.max_days_ahead.max(0) as u64);
            self.callbacks
                .availability(queue, today, last)
                .ok()
                .and_then(|slots| nearest_available(&slots, now).map(|s| s.start))
        } else {
            None
        };
        OfferFacts {
            ewt,
            waiting,
            immediate: refusal.is_none(),
            immediate_refusal: refusal,
            slot,
            tz: hours.tz,
        }
    }

    /// The nearest bookable slot of `queue` that ends after `wanted`.
    pub fn nearest_slot(&self, queue: &str, wanted: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let q = self.config.queue(queue)?;
        let hours = self.config.queue_hours(q);
        let now = self.clock.now();
        let from = wanted.max(now).with_timezone(&hours.tz).date_naive();
        let today = now.with_timezone(&hours.tz).date_naive();
        let last = today + chrono::Days::new(q.max_days_ahead.max(0) as u64);
        if from > last {
            return None;
        }
        let slots = self.callbacks.availability(queue, from, last).ok()?;
        nearest_available(&slots, wanted.max(now)).map(|s| s.start)
    }

    /// Books a callback from the IVR (slots and the number rule are checked).
    pub async fn book(&self, b: FlowBooking) -> Result<CallbackRecord, ServiceError> {
        let direction = b
            .direction
            .or_else(|| self.config.queue(&b.queue).map(|q| q.call_direction))
            .unwrap_or_default();
        self.callbacks
            .create(CreateRequest {
                callback: NewCallback {
                    queue: b.queue,
                    phone: b.phone,
                    desired_time: b.desired_time,
                    origin: Origin::Ivr,
                    direction,
                    priority: b.priority,
                    queue_time: Some(b.queue_time),
                    user_data: b.user_data,
                    created_by: "ivr".into(),
                },
                check_slot: true,
                ewt_at_offer_seconds: b.ewt_at_offer.map(|e| e.num_seconds().max(0) as u32),
                position_at_offer: Some(b.position_at_offer as u32),
            })
            .await
    }

    /// Matches an inbound caller against pending call-in requests.
    /// Each combination of criteria is tried in turn; the one that matched comes back.
    pub fn match_call_in(
        &self,
        combos: &[MatchCriteria],
        facts: &CallFacts,
    ) -> Result<(CallInRequest, MatchCriteria), MatchFailure> {
        let callbacks = self.callbacks.clone();
        let route = |r: &CallInRequest| self.call_in_target(r).map(|_| ());
        let matched = self.callin.match_first_of(
            combos,
            facts,
            self.clock.now(),
            &move |id| callbacks.is_alive(id),
            &route,
        );
        if let Ok((req, _)) = &matched {
            crate::callin::persist_later(&self.store, vec![req.clone()]);
        }
        matched
    }

    /// Where a matched call-in request sends its caller: the queue of its callback (Delayed:
    /// the caller is that callback's customer) or the request's own queue.
    pub fn call_in_target(&self, r: &CallInRequest) -> Result<CallInTarget, String> {
        let (queue, callback) = match r.callback_id {
            Some(id) => {
                let rec = self
                    .callbacks
                    .active()
                    .into_iter()
                    .find(|c| c.id == id)
                    .ok_or_else(|| format!("callback {id} is not active"))?;
                (rec.queue.clone(), Some(rec))
            }
            None => (
                r.routing
                    .queue
                    .clone()
                    .ok_or_else(|| "the request names no queue".to_string())?,
                None,
            ),
        };
        if self.config.queue(&queue).is_none() {
            return Err(format!("queue {queue} is not configured"));
        }
        Ok(CallInTarget { queue, callback })
    }

    /// Click-to-Call-In Delayed: the callback's customer called in and was matched; the
    /// callback goes QUEUED → ROUTING, so the agent call that follows completes it (AGENT).
    pub async fn customer_called_in(&self, id: Uuid) -> Result<CallbackRecord, ServiceError> {
        let now = self.clock.now();
        self.callbacks
            .update(id, |r| {
                if r.state != crate::callback::model::CallbackState::Routing {
                    r.transition(
                        crate::callback::model::CallbackState::Routing,
                        now,
                        "call-in",
                        "the customer called in",
                    )?;
                }
                Ok(())
            })
            .await
    }

    /// Queues a live call for an agent; the receiver yields its assignment.
    pub fn queue_call(
        &self,
        queue: &str,
        id: Uuid,
        priority: i64,
        enqueued_at: DateTime<Utc>,
        requirement: Option<&str>,
    ) -> Result<oneshot::Receiver<Assignment>, RouterError> {
        let rules = crate::routing::WaitRules {
            requirement,
            ..Default::default()
        };
        self.queue_call_with(queue, id, priority, enqueued_at, &rules)
    }

    /// As [`Self::queue_call`], with the call's own rules (requirement and its relaxation,
    /// priority growth).
    pub fn queue_call_with(
        &self,
        queue: &str,
        id: Uuid,
        priority: i64,
        enqueued_at: DateTime<Utc>,
        rules: &crate::routing::WaitRules<'_>,
    ) -> Result<oneshot::Receiver<Assignment>, RouterError> {
        self.dispatch.enqueue_waiter_with(
            queue,
            Waiting {
                id,
                priority,
                enqueued_at,
            },
            rules,
        )
    }

    /// Takes a call out of its queue (timeout, hang-up).
    pub fn leave_queue(&self, queue: &str, id: Uuid) {
        if let Err(e) = self.dispatch.withdraw(queue, id) {
            tracing::warn!(queue, error = %e, "withdraw failed");
        }
    }

    /// Rings the assigned agent and bridges the caller until one side hangs up; the agent then
    /// goes to the state asked for during the call, else wraps up (the queue's
    /// `wrap_up_seconds`), else is Ready (Not Ready when the phone did not answer).
    /// When the call serves a callback, it becomes PROCESSING at the bridge and COMPLETED(AGENT)
    /// when the conversation ends. `data` (the call's attached data) rides on the agent leg as
    /// SIP headers named by `sip.call_data_header_prefix` (and `User-to-User` when configured).
    pub async fn connect_agent(
        &self,
        caller: Arc<dyn CallLeg>,
        a: &Assignment,
        callback: Option<Uuid>,
        data: &crate::flow::call_data::CallData,
    ) -> AgentConnect {
        let ring = Duration::from_secs(
            self.config
                .queue(&a.queue)
                .map(|q| q.ring_timeout_seconds.max(1) as u64)
                .unwrap_or(20),
        );
        // An agent homed on another node: dialled at the contact its home gave, and every
        // change of its state reported to that home (its arbiter) instead of this router.
        let remote = self
            .dispatch
            .remote()
            .and_then(|r| r.take_grant(a.interaction));
        let release = |outcome| match &remote {
            Some(g) => g.release(outcome, TimeDelta::zero()),
            None => self.dispatch.release(a),
        };
        let target = match &remote {
            Some(g) => g.target.clone(),
            None => DialTarget::Agent {
                agent_id: a.agent.clone(),
            },
        };
        let sip = &self.config.spec.sip;
        let headers = crate::flow::call_data::sip_headers(
            data,
            &sip.call_data_header_prefix,
            sip.call_data_user_to_user,
        );
        let dialled = tokio::select! {
            r = self.agents.dial(Dial::new(&target, &caller.info().ani, ring).with_headers(&headers)) => r,
            _ = caller.hung_up() => {
                release(crate::cluster::Outcome::Unused);
                self.dispatch.stats().abandoned(&a.queue);
                return AgentConnect::CallerGone;
            }
        };
        let agent_leg = match dialled {
            Ok(leg) => leg,
            Err(result) if remote.is_some() => {
                release(crate::cluster::Outcome::NoAnswer);
                return AgentConnect::AgentUnavailable(result);
            }
            Err(result) => {
                // Redirection on no answer: the agent stops receiving interactions.
                if let Err(e) =
                    self.dispatch
                        .set_agent_state(&a.agent, StateKind::NotReady, Some("no answer"))
                {
                    tracing::warn!(agent = %a.agent, error = %e, "cannot set agent not ready");
                }
                return AgentConnect::AgentUnavailable(result);
            }
        };
        if caller.is_ended() {
            let _ = agent_leg.hang_up(HangupCause::Normal).await;
            release(crate::cluster::Outcome::Unused);
            self.dispatch.stats().abandoned(&a.queue);
            return AgentConnect::CallerGone;
        }
        let started = self.clock.now();
        let target = self
            .config
            .queue(&a.queue)
            .map(|q| q.service_level_seconds)
            .unwrap_or(20);
        self.dispatch
            .stats()
            .answered(&a.queue, a.waited, TimeDelta::seconds(target));
        if let Some(id) = callback
            && let Err(e) = self.callbacks.connected(id, &a.agent).await
        {
            tracing::warn!(callback = %id, error = %e, "callback not marked processing");
        }
        if let Some(g) = &remote {
            g.connected();
        } else if let Err(e) = self
            .dispatch
            .set_agent_state(&a.agent, StateKind::Busy, None)
        {
            // Set Not Ready or logged out while the phone rang: the call goes on, the agent
            // stays where they asked to be.
            tracing::info!(agent = %a.agent, error = %e, "agent not set busy");
        }
        let end = caller
            .bridge(agent_leg.clone())
            .await
            .unwrap_or(BridgeEnd::ThisSide);
        if !agent_leg.is_ended() {
            let _ = agent_leg.hang_up(HangupCause::Normal).await;
        }
        if let Some(id) = callback
            && let Err(e) = self.callbacks.served(id).await
        {
            tracing::warn!(callback = %id, error = %e, "callback not marked completed");
        }
        let handled = self.clock.now() - started;
        let _ = self.dispatch.router().record_handle_time(&a.queue, handled);
        // The agent goes where they asked to during the call, else wraps up, else is Ready.
        let wrap_up = self.config.queue(&a.queue).map_or(0, |q| q.wrap_up_seconds);
        if let Some(g) = &remote {
            g.release(crate::cluster::Outcome::Talked, TimeDelta::seconds(wrap_up));
        } else if let Err(e) = self
            .dispatch
            .finish_call(&a.agent, TimeDelta::seconds(wrap_up))
        {
            tracing::warn!(agent = %a.agent, error = %e, "cannot end the agent's call");
        }
        self.last_agents.record(&caller.info().ani, &a.agent);
        AgentConnect::Talked {
            agent: a.agent.clone(),
            end,
        }
    }

    /// Reserves `agent` for a call when Ready (Route Agent): an assignment in `queue` that
    /// [`FlowServices::connect_agent`] can serve, or `None` when the agent is not Ready.
    pub fn claim_agent(
        &self,
        agent: &str,
        queue: &str,
        interaction: Uuid,
        waited: TimeDelta,
    ) -> Result<Option<Assignment>, RouterError> {
        let router = self.dispatch.router();
        Ok(router.claim_agent(agent)?.map(|idx| Assignment {
            interaction,
            queue: queue.to_string(),
            agent: agent.to_string(),
            agent_idx: idx,
            waited,
            reserved: true,
        }))
    }
}

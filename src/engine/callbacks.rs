//! Serving a callback the router triggered. The router leaves the agent who triggered it Ready
//! (the seed's dialer; pacing rule in `routing::router`): business-to-customer callbacks are
//! dialled (with the redial rules of `callback::dialer`), the queue's Callback application runs
//! on the customer's leg and its Route Call queues them, at the callback's place, for the next
//! ready skilled agent; customer-dials-in callbacks push CALLBACK_READY and wait for the
//! customer's call. However serving ends, the callback leaves the pacing count.

use std::sync::Arc;

use tracing::Instrument;

use crate::call::{CallLeg, Dialer, HangupCause};
use crate::callback::dialer::AttemptOutcome;
use crate::callback::model::CallbackRecord;
use crate::config::CallDirection;
use crate::flow::expr::{Value, Variables};
use crate::flow::interpreter::system_variables;
use crate::flow::services::AgentConnect;
use crate::flow::{FlowServices, FlowSet, Serving, run_serving};
use crate::routing::{Assignment, Dispatch};

/// What serving needs: the flow services (with the agent dialer) and the customer dialer.
pub struct CallbackRunner {
    /// Services shared with inbound flows.
    pub services: Arc<FlowServices>,
    /// Applications.
    pub flows: Arc<FlowSet>,
    /// Places calls to customers (through trunks).
    pub customers: Arc<dyn Dialer>,
}

/// How serving one assignment ended, for logs, tests and the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// The customer talked with an agent.
    Talked,
    /// The dial failed; a retry is scheduled or the redial limit was reached.
    NotReached(AttemptOutcome),
    /// The customer answered but was not connected (hung up, or left on hold).
    Abandoned,
    /// The customer answered but never confirmed; the engine hung up.
    NotConfirmed,
    /// A customer-dials-in callback was announced (CALLBACK_READY).
    AwaitingCallIn,
    /// The callback could not be served (gone, refused).
    Skipped(String),
}

/// Settles a triggered callback in the router's pacing count when serving ends, on every path
/// (settling an already settled one does nothing).
struct Settle<'a> {
    dispatch: &'a Dispatch,
    id: uuid::Uuid,
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        self.dispatch.settle(self.id);
    }
}

impl CallbackRunner {
    /// Serves one assignment to the end.
    pub async fn serve(&self, a: Assignment) -> Served {
        let s = &self.services;
        let id = a.interaction;
        // A callback never holds an agent while it is dialled: a reservation (none under the
        // pacing rule) is given back at once.
        s.dispatch.release(&a);
        let _settle = Settle {
            dispatch: &s.dispatch,
            id,
        };
        let rec = match s.callbacks.get(id).await {
            Ok(r) => r,
            Err(e) => return Served::Skipped(e.to_string()),
        };
        if rec.direction == CallDirection::CustomerDialsIn {
            let call_in = self.call_in_details(&rec).await;
            return match s.callbacks.ready_for_call_in(id, call_in).await {
                Ok(_) => Served::AwaitingCallIn,
                Err(e) => Served::Skipped(e.to_string()),
            };
        }
        let logged_in = s
            .dispatch
            .router()
            .agent_counts(&a.queue)
            .map(|c| c.logged_in as u32)
            .unwrap_or(0);
        let (outcome, leg) = match s
            .callbacks
            .attempt(id, &a.agent, self.customers.as_ref(), logged_in)
            .await
        {
            Ok(x) => x,
            Err(e) => return Served::Skipped(e.to_string()),
        };
        let Some(leg) = leg else {
            return Served::NotReached(outcome);
        };
        crate::ops::logging::record_call_id(&leg.info().call_id);
        let mut confirmed = true;
        let talked = match self.flows.callback_app(&s.config, &rec.queue) {
            Some(flow) => {
                crate::ops::logging::record_flow(&flow.name);
                let route_point = rec.ges.route_point.as_deref().unwrap_or_default();
                let mut vars: Variables = system_variables(leg.as_ref(), route_point);
                // The GES create fields the flow may use (prompt language, survey, channel).
                vars.insert(
                    "callback.language".into(),
                    Value::Str(rec.ges.language_or_default().to_string()),
                );
                for (k, v) in [
                    ("callback.survey_rp", &rec.ges.survey_rp),
                    ("callback.channel", &rec.ges.channel),
                    ("callback.route_point", &rec.ges.route_point),
                ] {
                    if let Some(v) = v {
                        vars.insert(k.into(), Value::Str(v.clone()));
                    }
                }
                vars.insert("callback.id".into(), Value::Str(id.to_string()));
                vars.insert("callback.queue".into(), Value::Str(rec.queue.clone()));
                vars.insert("callback.priority".into(), Value::Num(rec.priority as f64));
                vars.insert("callback.phone".into(), Value::Str(rec.phone.clone()));
                for (k, v) in &rec.user_data {
                    vars.insert(format!("callback.user_data.{k}"), Value::Str(v.clone()));
                }
                let serving = Serving {
                    callback: id,
                    place: rec.queue_time,
                };
                let report = run_serving(&flow, leg.clone(), s, vars, Some(serving)).await;
                // The Callback block sets `<result>.accepted` false when its confirm digit
                // never came (a customer who hangs up leaves it unset).
                confirmed = !report
                    .variables
                    .iter()
                    .any(|(k, v)| k.ends_with(".accepted") && matches!(v, Value::Bool(false)));
                report
                    .variables
                    .get("route.result")
                    .is_some_and(|v| v.to_string() == "connected")
            }
            None => self.connect_next_agent(&rec, leg.clone()).await,
        };
        if !leg.is_ended() {
            let _ = leg.hang_up(HangupCause::Normal).await;
        }
        if talked {
            return Served::Talked;
        }
        let open = s
            .callbacks
            .get(id)
            .await
            .is_ok_and(|r| !r.state.is_completed());
        if !open {
            return Served::Abandoned;
        }
        if !confirmed {
            if let Err(e) = s.callbacks.not_confirmed(id).await {
                tracing::warn!(callback = %id, error = %e, "cannot complete unconfirmed callback");
            }
            return Served::NotConfirmed;
        }
        if let Err(e) = s
            .callbacks
            .abandoned(id, "customer left before an agent")
            .await
        {
            tracing::warn!(callback = %id, error = %e, "cannot complete abandoned callback");
        }
        Served::Abandoned
    }

    /// Click-to-Call-In Delayed: when the callback's queue names a `call_in_group`, a call-in
    /// request tied to the callback (made durable first), whose number, access code and expiry
    /// the CALLBACK_READY push carries. Null when the queue names none, the callback was
    /// announced before (its READY is not raised again), or no number is free.
    async fn call_in_details(&self, rec: &CallbackRecord) -> serde_json::Value {
        let s = &self.services;
        if rec.push.ready_at.is_some() {
            return serde_json::Value::Null;
        }
        let Some(group) = s
            .config
            .queue(&rec.queue)
            .and_then(|q| q.call_in_group.clone())
        else {
            return serde_json::Value::Null;
        };
        let new = crate::callin::NewCallIn {
            group: group.clone(),
            ani: Some(rec.phone.clone()),
            routing: Default::default(),
            callback_id: Some(rec.id),
        };
        let req = match s.callin.request(new, s.clock.now()) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(callback = %rec.id, %group, error = %e, "no call-in number for the READY push");
                return serde_json::Value::Null;
            }
        };
        if let Err(e) = s
            .store
            .save_documents(vec![crate::callin::to_document(&req)])
            .await
        {
            s.callin.forget(req.id);
            tracing::warn!(callback = %rec.id, error = %e, "call-in request not stored; READY goes without a number");
            return serde_json::Value::Null;
        }
        serde_json::json!({
            "callInRequestId": req.id,
            "toPhoneNumber": req.dnis,
            "accessCode": req.access_code,
            "expirationTime": req.expires_at.timestamp_millis(),
        })
    }

    /// Without a Callback application: queues the reached customer at the callback's place
    /// and connects the next ready agent (requeueing after an agent who does not answer), until
    /// the customer hangs up. True when they talked.
    async fn connect_next_agent(&self, rec: &CallbackRecord, leg: Arc<dyn CallLeg>) -> bool {
        let s = &self.services;
        loop {
            let rx = match s.queue_call(&rec.queue, rec.id, rec.priority, rec.queue_time, None) {
                Ok(rx) => rx,
                Err(e) => {
                    tracing::warn!(callback = %rec.id, error = %e, "cannot queue the customer");
                    return false;
                }
            };
            let assigned = tokio::select! {
                a = rx => a,
                _ = leg.hung_up() => {
                    s.leave_queue(&rec.queue, rec.id);
                    return false;
                }
            };
            let Ok(a) = assigned else { return false };
            let data = crate::flow::call_data::from_map(&rec.user_data);
            match s.connect_agent(leg.clone(), &a, Some(rec.id), &data).await {
                AgentConnect::Talked { .. } => return true,
                AgentConnect::CallerGone => return false,
                AgentConnect::AgentUnavailable(_) => continue,
            }
        }
    }

    /// Routes every callback assignment of the dispatch to a task that serves it.
    pub fn install(self: &Arc<Self>) {
        let me = self.clone();
        self.services.dispatch.set_sink(Arc::new(move |a| {
            let me = me.clone();
            let id = a.interaction;
            let span = crate::ops::logging::callback_span(&id);
            tokio::spawn(
                async move {
                    let served = me.serve(a).await;
                    tracing::info!(callback = %id, ?served, "callback served");
                }
                .instrument(span),
            );
        }));
    }
}

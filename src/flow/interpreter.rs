//! Runs an application on a call: phases in order, one block at a time, with the call's
//! variables. A hang-up at any block ends the call part and runs Finalize. Every block visited
//! leaves a trace event, which logs, tests and the simulator read.

use std::sync::Arc;
use std::time::Duration;

use super::expr::{Expr, Value, Variables};
use super::load::Flow;
use super::model::{EndCause, ExprText, PromptSpec};
use super::services::FlowServices;
use crate::call::{CallLeg, HangupCause, PlayItem, PlayOptions, PlayOutcome};

/// Blocks a call may run before the flow is considered stuck.
pub const MAX_STEPS: usize = 10_000;

/// One block visited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// Block id or `phase[index]`.
    pub block: String,
    /// Block type.
    pub kind: &'static str,
    /// What happened, e.g. `input 1`, `offered immediate`, `booked`.
    pub outcome: String,
}

/// How the call part of the flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A Terminate Call block (or a Route Call conversation) ended it.
    Terminated,
    /// The last block ran.
    FlowEnd,
    /// The caller hung up.
    CallerHungUp,
    /// The step limit was hit (a flow bug the loader could not see).
    StepLimit,
}

/// The result of running a flow on one call.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Blocks visited, in order.
    pub trace: Vec<TraceEvent>,
    /// Variables at the end.
    pub variables: Variables,
    /// How it ended.
    pub ending: Ending,
}

impl RunReport {
    /// The trace as text lines `block (type): outcome`, the form golden transcripts use.
    pub fn lines(&self) -> Vec<String> {
        self.trace
            .iter()
            .map(|e| format!("{} ({}): {}", e.block, e.kind, e.outcome))
            .collect()
    }
}

/// What a block asks the interpreter to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The explicit `next`, else the block below.
    Next,
    /// A branch target, or `Next` when the branch has none.
    Branch(Option<String>),
    /// End the call.
    End(EndCause),
    /// The caller hung up.
    HungUp,
}

/// The state of one call as blocks see it.
pub struct Cx<'a> {
    /// The call.
    pub leg: &'a Arc<dyn CallLeg>,
    /// Engine services.
    pub services: &'a FlowServices,
    /// Variables.
    pub vars: Variables,
    /// The application.
    pub flow: &'a Flow,
    /// The callback this call serves (Callback applications); Route Call queues the customer
    /// at the callback's place.
    pub serving: Option<Serving>,
    /// Data attached to the interaction (Call Data blocks): sent to the agent's phone as SIP
    /// headers and kept with a callback booked from this call.
    pub call_data: super::call_data::CallData,
    outcome: Option<String>,
    /// Blocks visited so far (a module's are added under its caller's label).
    trace: Vec<TraceEvent>,
    /// Blocks run so far, modules included (bounded by [`MAX_STEPS`]).
    steps: usize,
    /// Modules entered to get here (bounded by [`MAX_MODULE_DEPTH`]).
    depth: usize,
    /// The label of the block running (for the trace of a module it calls).
    label: String,
    /// A post-call survey to run once the call part ends (its flow and variables).
    survey: Option<(Arc<Flow>, Variables)>,
}

/// How deep `call_module` may nest at run time (cycles are refused at load).
pub const MAX_MODULE_DEPTH: usize = 8;

/// How the call blocks of one flow (an application or a module) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartEnd {
    /// The last block ran (a module returns to its caller).
    FlowEnd,
    /// A block ended the call.
    End(EndCause),
    /// The caller hung up.
    HungUp,
    /// The step limit was hit.
    StepLimit,
}

/// A callback being served by a Callback application.
#[derive(Debug, Clone)]
pub struct Serving {
    /// The callback.
    pub callback: uuid::Uuid,
    /// The callback's place in its queue (the time that orders it), kept by the reached
    /// customer when Route Call queues them for the next ready agent.
    pub place: chrono::DateTime<chrono::Utc>,
}

impl<'a> Cx<'a> {
    /// A call at the first block of `flow`, nothing run yet (an application, a module, a
    /// post-call survey).
    fn at_start(
        leg: &'a Arc<dyn CallLeg>,
        services: &'a FlowServices,
        flow: &'a Flow,
        vars: Variables,
        serving: Option<Serving>,
        call_data: super::call_data::CallData,
    ) -> Self {
        Cx {
            leg,
            services,
            vars,
            flow,
            serving,
            call_data,
            outcome: None,
            trace: Vec::new(),
            steps: 0,
            depth: 0,
            label: String::new(),
            survey: None,
        }
    }
}

impl Cx<'_> {
    /// Evaluates an expression (validated at load; a parse failure reads as empty text).
    pub fn eval(&self, e: &ExprText) -> Value {
        Expr::parse(&e.0)
            .map(|x| x.eval(&self.vars))
            .unwrap_or_else(|_| Value::Str(String::new()))
    }

    /// Sets a variable.
    pub fn set(&mut self, name: &str, v: impl Into<Value>) {
        self.vars.insert(name.to_string(), v.into());
    }

    /// Asks for `flow` to run on the caller, with `vars`, once the call part ends (a post-call
    /// survey after the agent hung up).
    pub fn then_run(&mut self, flow: Arc<Flow>, vars: Variables) {
        self.survey = Some((flow, vars));
    }

    /// Records what the block did (shown in the trace).
    pub fn outcome(&mut self, text: impl Into<String>) {
        self.outcome = Some(text.into());
    }

    /// Turns prompt specs into play items.
    pub fn items(&self, prompts: &[PromptSpec]) -> Vec<PlayItem> {
        prompts
            .iter()
            .filter_map(|p| match p {
                PromptSpec::Name(n) => Some(PlayItem::Prompt(n.clone())),
                PromptSpec::Item(i) => {
                    if let Some(d) = &i.digits {
                        let text: String = self
                            .eval(d)
                            .to_string()
                            .chars()
                            .filter(|c| c.is_ascii_digit() || *c == '*' || *c == '#')
                            .collect();
                        Some(PlayItem::Digits(text))
                    } else if let Some(p) = &i.prompt {
                        Some(PlayItem::Prompt(self.eval(p).to_string()))
                    } else {
                        i.silence_ms
                            .map(|ms| PlayItem::Silence(Duration::from_millis(ms)))
                    }
                }
            })
            .collect()
    }

    /// Plays prompts; `None` means the caller hung up.
    pub async fn play(&self, prompts: &[PromptSpec], barge_in: bool) -> Option<PlayOutcome> {
        self.play_items(&self.items(prompts), barge_in).await
    }

    /// Plays items; `None` means the caller hung up.
    pub async fn play_items(&self, items: &[PlayItem], barge_in: bool) -> Option<PlayOutcome> {
        if items.is_empty() {
            return Some(PlayOutcome::Completed);
        }
        let opts = PlayOptions {
            barge_in,
            looped: false,
        };
        match self.leg.play(items, &opts).await {
            Ok(PlayOutcome::HungUp) | Err(_) => None,
            Ok(o) => Some(o),
        }
    }
}

/// Sets the system variables of a call.
pub fn system_variables(leg: &dyn CallLeg, route_point: &str) -> Variables {
    let info = leg.info();
    let mut v = Variables::new();
    v.insert("ani".into(), Value::Str(info.ani.clone()));
    v.insert("dnis".into(), Value::Str(info.dnis.clone()));
    v.insert("call_id".into(), Value::Str(info.call_id.clone()));
    v.insert("route_point".into(), Value::Str(route_point.to_string()));
    v
}

/// Runs `flow` on `leg` with `vars` (system variables and, for Callback applications, the
/// callback's) until the call ends, then runs Finalize.
pub async fn run(
    flow: &Flow,
    leg: Arc<dyn CallLeg>,
    services: &FlowServices,
    vars: Variables,
) -> RunReport {
    run_serving(flow, leg, services, vars, None).await
}

/// Runs a Callback application for the callback in `serving`.
pub async fn run_serving(
    flow: &Flow,
    leg: Arc<dyn CallLeg>,
    services: &FlowServices,
    mut vars: Variables,
    serving: Option<Serving>,
) -> RunReport {
    for (k, v) in &flow.variables {
        vars.entry(k.clone()).or_insert_with(|| v.clone());
    }
    // A served callback's userData is the call's data from the start: the agent sees it.
    let mut call_data = super::call_data::CallData::new();
    if serving.is_some() {
        for (k, v) in &vars {
            if let Some(key) = k.strip_prefix("callback.user_data.") {
                super::call_data::attach(&mut call_data, key, &v.to_string());
            }
        }
    }
    let mut cx = Cx::at_start(&leg, services, flow, vars, serving, call_data);
    let part = run_call_blocks(&mut cx).await;
    let mut ending = call_ending(part, &leg, cx.survey.is_some()).await;
    // A post-call survey the call part asked for runs on the same leg, with its own flow.
    if let Some((survey, vars)) = cx.survey.take()
        && ending == Ending::Terminated
        && !leg.is_ended()
    {
        let (serving, data) = (cx.serving.clone(), cx.call_data.clone());
        let mut scx = Cx::at_start(&leg, services, &survey, vars, serving, data);
        let part = run_call_blocks(&mut scx).await;
        ending = call_ending(part, &leg, false).await;
        cx.trace.append(&mut scx.trace);
    }
    if ending != Ending::CallerHungUp && !leg.is_ended() {
        let _ = leg.hang_up(HangupCause::Normal).await;
    }
    let end = flow.finalize_start;
    let mut trace = std::mem::take(&mut cx.trace);
    // Finalize: bookkeeping blocks only (the loader allows assign and if).
    let mut at = end;
    let mut steps = 0;
    while at < flow.blocks.len() && steps < MAX_STEPS {
        steps += 1;
        let fb = &flow.blocks[at];
        let step = fb.block.run(&mut cx).await;
        trace.push(TraceEvent {
            block: fb.label.clone(),
            kind: fb.block.type_name(),
            outcome: cx.outcome.take().unwrap_or_else(|| "done".into()),
        });
        let target = match step {
            Step::Branch(Some(t)) => Some(t),
            Step::Next | Step::Branch(None) => fb.block.next().map(str::to_string),
            Step::End(_) | Step::HungUp => break,
        };
        at = match target.and_then(|t| flow.index_of(&t)) {
            Some(i) if i >= end => i,
            Some(_) => break,
            None => at + 1,
        };
    }
    tracing::debug!(flow = %flow.name, call = %leg.info().call_id, ?ending, "flow ended");
    RunReport {
        trace,
        variables: cx.vars,
        ending,
    }
}

/// How the call part of an application ended; a block that ended the call hangs up, unless
/// a survey is to run next (it keeps the caller on the line).
async fn call_ending(part: PartEnd, leg: &Arc<dyn CallLeg>, survey_next: bool) -> Ending {
    match part {
        PartEnd::FlowEnd => Ending::FlowEnd,
        PartEnd::End(cause) => {
            let cause = match cause {
                EndCause::Normal => HangupCause::Normal,
                EndCause::Busy => HangupCause::Busy,
                EndCause::Unavailable => HangupCause::Unavailable,
            };
            if !leg.is_ended() && !survey_next {
                let _ = leg.hang_up(cause).await;
            }
            Ending::Terminated
        }
        PartEnd::HungUp => Ending::CallerHungUp,
        PartEnd::StepLimit => Ending::StepLimit,
    }
}

/// Runs the call blocks of `cx.flow` from the first until the call part ends; the caller of
/// an application hangs up, the caller of a module goes on.
async fn run_call_blocks(cx: &mut Cx<'_>) -> PartEnd {
    let flow = cx.flow;
    let end = flow.finalize_start;
    let mut at = 0usize;
    loop {
        if at >= end {
            return PartEnd::FlowEnd;
        }
        cx.steps += 1;
        if cx.steps > MAX_STEPS {
            return PartEnd::StepLimit;
        }
        let fb = &flow.blocks[at];
        cx.set(
            "now",
            cx.services
                .clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        cx.label = fb.label.clone();
        let step = if cx.leg.is_ended() {
            Step::HungUp
        } else {
            fb.block.run(cx).await
        };
        let outcome = cx.outcome.take().unwrap_or_else(|| match &step {
            Step::HungUp => "caller hung up".into(),
            Step::End(c) => format!("end ({c:?})").to_lowercase(),
            _ => "done".into(),
        });
        cx.trace.push(TraceEvent {
            block: fb.label.clone(),
            kind: fb.block.type_name(),
            outcome,
        });
        let target = match step {
            Step::Next => fb.block.next().map(str::to_string),
            Step::Branch(Some(t)) => Some(t),
            Step::Branch(None) => fb.block.next().map(str::to_string),
            Step::End(cause) => return PartEnd::End(cause),
            Step::HungUp => return PartEnd::HungUp,
        };
        at = match target {
            Some(t) => flow.index_of(&t).unwrap_or(end),
            None => at + 1,
        };
    }
}

/// What a module run gives back to its `call_module` block.
pub struct ModuleRun {
    /// How its blocks ended.
    pub end: PartEnd,
    /// Its variables at the end (outputs are read from them).
    pub vars: Variables,
}

/// Runs the call blocks of `module` on the caller's call with `vars` (its initial variables
/// and inputs), sharing the call's data and step budget; its trace joins the caller's under
/// `caller-label/`. `None` past [`MAX_MODULE_DEPTH`]. Boxed: modules call modules.
pub fn run_module<'s>(
    cx: &'s mut Cx<'_>,
    module: &'s super::load::Flow,
    vars: Variables,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<ModuleRun>> + Send + 's>> {
    Box::pin(async move {
        if cx.depth >= MAX_MODULE_DEPTH {
            return None;
        }
        let data = std::mem::take(&mut cx.call_data);
        let mut sub = Cx::at_start(cx.leg, cx.services, module, vars, cx.serving.clone(), data);
        sub.steps = cx.steps;
        sub.depth = cx.depth + 1;
        let end = run_call_blocks(&mut sub).await;
        cx.steps = sub.steps;
        if sub.survey.is_some() {
            cx.survey = sub.survey.take();
        }
        cx.call_data = sub.call_data;
        let prefix = cx.label.clone();
        cx.trace.extend(sub.trace.into_iter().map(|mut e| {
            e.block = format!("{prefix}/{}", e.block);
            e
        }));
        Some(ModuleRun {
            end,
            vars: sub.vars,
        })
    })
}

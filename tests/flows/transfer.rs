//! Transfer block: golden transcripts on scripted in-memory calls — a transfer answered and
//! bridged, then busy, no answer and a bad computed number, each taking its branch — and its
//! load errors with line and column. The bridged path over SIP is in `tests/sip/blocks.rs`.

use std::path::Path;
use std::sync::Arc;

use boomerang::call::memory::{Action, Answer, MemoryLeg};
use boomerang::call::{CallLeg, DialResult};
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, Ending, LoadContext, RunReport};

use crate::common::{self, repo};
use crate::harness::{Harness, harness};

async fn run(h: &Harness, text: &str, leg: Arc<MemoryLeg>) -> RunReport {
    let prompts = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &h.core.config,
        prompts: Some(&prompts),
    };
    let f = flow::load_str(Path::new("test.yaml"), text, &ctx).unwrap_or_else(|e| panic!("{e}"));
    let vars = system_variables(leg.as_ref(), &leg.info().dnis);
    flow::run(&f, leg, &h.services, vars).await
}

const FLOW: &str = "application: transfer
type: default
variables: {desk: '+33140000002'}
self_service:
  - type: transfer
    id: sales
    to: '+33140000001'
    trunk: pstn
    ring_timeout_seconds: 20
    on_busy: desk
    on_no_answer: desk
    on_failed: sorry
  - type: transfer
    id: desk
    to_from: desk
    on_failed: sorry
  - type: play_message
    id: sorry
    prompts: [goodbye]
";

#[tokio::test]
async fn a_transfer_that_answers_is_bridged_until_a_side_hangs_up() {
    let h = harness().await;
    // The far end answers; the caller talks to it, then hangs up.
    h.agents.script("+33140000001", Answer::Pick(vec![]));
    let leg = MemoryLeg::caller("+33612345678", "8000", [Action::HangUp]);
    let r = run(&h, FLOW, leg.clone()).await;
    assert_eq!(
        r.lines(),
        ["sales (transfer): transferred to +33140000001 (caller hung up)"]
    );
    assert_eq!(r.variables["transfer.result"].to_string(), "transferred");
    assert_eq!(r.ending, Ending::CallerHungUp);
    assert_eq!(
        leg.transcript(),
        ["bridge with +33140000001", "caller hangs up"]
    );
    // The far end is hung up once the caller left.
    assert!(h.agents.legs()[0].is_ended());
    let calls = h.agents.calls();
    assert_eq!(calls, [("+33140000001".to_string(), Ok(()))]);
    // The caller's number is presented to the far end.
    assert_eq!(h.agents.legs()[0].info().dnis, "+33612345678");
}

#[tokio::test]
async fn busy_no_answer_and_failure_take_their_branches() {
    let h = harness().await;
    h.agents
        .script("+33140000001", Answer::Refuse(DialResult::Busy));
    h.agents
        .script("+33140000002", Answer::Refuse(DialResult::NoAnswer));
    let leg = MemoryLeg::caller("+33612345678", "8000", []);
    let r = run(&h, FLOW, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "sales (transfer): +33140000001: busy",
            "desk (transfer): +33140000002: no_answer",
            "sorry (play_message): played",
        ]
    );
    assert_eq!(r.variables["transfer.result"].to_string(), "no_answer");
    assert_eq!(leg.transcript(), ["play goodbye", "hang up (Normal)"]);
    // A computed number that is not one fails without dialling.
    h.agents
        .script("+33140000001", Answer::Refuse(DialResult::Unreachable));
    let leg = MemoryLeg::caller("+33612345678", "8000", []);
    let r = run(&h, &FLOW.replace("'+33140000002'", "'sales desk'"), leg).await;
    assert_eq!(
        r.lines(),
        [
            "sales (transfer): +33140000001: failed",
            "sorry (play_message): played",
        ]
    );
    let leg = MemoryLeg::caller("+33612345678", "8000", []);
    h.agents
        .script("+33140000001", Answer::Refuse(DialResult::Busy));
    let r = run(&h, &FLOW.replace("'+33140000002'", "'sales desk'"), leg).await;
    assert_eq!(
        r.lines(),
        [
            "sales (transfer): +33140000001: busy",
            "desk (transfer): failed: `sales desk` is not a number or SIP URI",
            "sorry (play_message): played",
        ]
    );
    assert_eq!(h.agents.calls().len(), 4);
}

#[tokio::test]
async fn a_sip_uri_is_called_directly_not_through_the_trunk() {
    let h = harness().await;
    h.agents
        .script("sip:desk@127.0.0.1:5099", Answer::Pick(vec![]));
    let text = "application: uri
type: default
self_service:
  - type: transfer
    id: desk
    to: sip:desk@127.0.0.1:5099
";
    let leg = MemoryLeg::caller("+33612345678", "8000", [Action::HangUp]);
    let r = run(&h, text, leg).await;
    assert_eq!(
        r.lines(),
        ["desk (transfer): transferred to sip:desk@127.0.0.1:5099 (caller hung up)"]
    );
    assert_eq!(
        h.agents.calls(),
        [("sip:desk@127.0.0.1:5099".to_string(), Ok(()))]
    );
}

#[test]
fn transfer_mistakes_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::demo_config(dir.path(), |_| {});
    let names = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &config,
        prompts: Some(&names),
    };
    let text = "application: t
type: default
self_service:
  - type: transfer
    to: sales
    trunk: pstm
    ring_timeout_seconds: 1
  - type: transfer
    to: '+331'
    to_from: x
  - type: transfer
    to: sip:pbx.example.com
";
    let problems: Vec<String> = match flow::load_str(Path::new("flow.yaml"), text, &ctx) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.diagnostics.iter().map(|d| d.to_string()).collect(),
    };
    assert_eq!(
        problems,
        [
            "flow.yaml:5:9: self_service[0].to: `sales` is neither a number to call (2 to 20 digits, optionally after `+`) nor a SIP URI (`sip:user@host[:port]`)",
            "flow.yaml:6:12: self_service[0].trunk: no trunk `pstm` in the configuration (did you mean `pstn`?)",
            "flow.yaml:7:27: self_service[0].ring_timeout_seconds: ring_timeout_seconds must be between 5 and 300, not 1",
            "flow.yaml:8:5: self_service[1]: give exactly one of `to` and `to_from`",
            "flow.yaml:12:9: self_service[2].to: `sip:pbx.example.com` is neither a number to call (2 to 20 digits, optionally after `+`) nor a SIP URI (`sip:user@host[:port]`)",
        ]
    );
}

//! Golden transcripts of the Designer blocks added for issue #20 (Callback VQ Watermark, …) on
//! scripted in-memory calls against the engine core, and their load-time errors with line and
//! column. Same harness as `blocks.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use boomerang::call::CallLeg;
use boomerang::call::memory::MemoryLeg;
use boomerang::callback::service::{CreateRequest, api_callback};
use boomerang::config::Config;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, LoadContext, RunReport};

use crate::common::repo;
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

fn var(r: &RunReport, k: &str) -> String {
    r.variables
        .get(k)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// Each problem of `text` as `file:line:col: path: message`.
fn problems(text: &str) -> Vec<String> {
    let config = Config::load(&repo().join("boomerang.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let names: BTreeSet<String> = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &config,
        prompts: Some(&names),
    };
    match flow::load_str(Path::new("flow.yaml"), text, &ctx) {
        Ok(f) => panic!("`{}` loaded without problems", f.name),
        Err(e) => e.diagnostics.iter().map(|d| d.to_string()).collect(),
    }
}

async fn book(h: &Harness, queue: &str, phone: &str) -> uuid::Uuid {
    h.core
        .callbacks
        .create(CreateRequest {
            callback: api_callback(queue, phone, None),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap_or_else(|e| panic!("callback refused: {e}"))
        .id
}

const WATERMARK: &str = "application: watermark
type: default
self_service:
  - type: callback_vq_watermark
    id: wm
    queue: Sales_VQ_CB
    max: 2
    on_below: offer
    on_reached: no_offer
  - type: play_message
    id: offer
    prompts: [offer-callback]
    next: bye
  - type: play_message
    id: no_offer
    prompts: [please-hold]
  - type: terminate_call
    id: bye
";

#[tokio::test]
async fn watermark_below_the_limit_offers_and_at_the_limit_does_not() {
    let h = harness().await;
    book(&h, "Sales_VQ_CB", "+33611111111").await;
    // Another queue's callbacks do not count.
    book(&h, "Support_VQ_CB", "+33611111112").await;
    let leg = MemoryLeg::caller("+33600000000", "8000", []);
    let r = run(&h, WATERMARK, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "wm (callback_vq_watermark): 1 active on Sales_VQ_CB: below 2",
            "offer (play_message): played",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(var(&r, "watermark.count"), "1");
    assert_eq!(var(&r, "watermark.outcome"), "WATERMARK_OK");
    assert_eq!(var(&r, "watermark.reached"), "false");

    book(&h, "Sales_VQ_CB", "+33611111113").await;
    let leg = MemoryLeg::caller("+33600000000", "8000", []);
    let r = run(&h, WATERMARK, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "wm (callback_vq_watermark): 2 active on Sales_VQ_CB: limit 2 reached",
            "no_offer (play_message): played",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(var(&r, "watermark.reached"), "true");
    assert_eq!(leg.transcript(), ["play please-hold", "hang up (Normal)"]);
}

#[tokio::test]
async fn watermark_stops_counting_completed_callbacks_and_reports_an_unknown_queue() {
    let h = harness().await;
    let a = book(&h, "Sales_VQ_CB", "+33611111111").await;
    book(&h, "Sales_VQ_CB", "+33611111113").await;
    h.core.callbacks.cancel(a, "test", true).await.unwrap();
    let leg = MemoryLeg::caller("+33600000000", "8000", []);
    let r = run(&h, WATERMARK, leg).await;
    assert_eq!(
        r.lines()[0],
        "wm (callback_vq_watermark): 1 active on Sales_VQ_CB: below 2"
    );

    let text = "application: wm
type: default
variables:
  cbq: Nowhere_VQ_CB
self_service:
  - type: callback_vq_watermark
    queue_from: cbq
    result: wm
    on_error: bye
  - type: play_message
    prompts: [offer-callback]
  - type: terminate_call
    id: bye
";
    let leg = MemoryLeg::caller("+33600000000", "8000", []);
    let r = run(&h, text, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "self_service[0] (callback_vq_watermark): no callback queue `Nowhere_VQ_CB`",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(var(&r, "wm.outcome"), "");
    assert_eq!(leg.transcript(), ["hang up (Normal)"]);
}

#[test]
fn watermark_mistakes_are_located() {
    let text = "application: t
type: default
self_service:
  - type: callback_vq_watermark
    queue: Sales_VQ_CV
    on_reached: bye
    on_error: bye
  - type: callback_vq_watermark
    queue_from: \"cbq +\"
    max: 0
    result: 9x
  - type: terminate_call
    id: bye
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:5:12: self_service[0].queue: no virtual queue `Sales_VQ_CV` in the configuration (did you mean `Sales_VQ_CB`?)",
            "flow.yaml:6:5: self_service[0].on_reached: `on_reached` needs `max` (the limit to compare with)",
            "flow.yaml:7:5: self_service[0].on_error: `on_error` needs `queue_from` (a named queue is checked at load)",
            "flow.yaml:9:23: self_service[1].queue_from: expression: the expression ends too early",
            "flow.yaml:10:10: self_service[1].max: max must be between 1 and 1000000, not 0",
            "flow.yaml:11:13: self_service[1].result: `9x` is not a variable name (letters, digits, `_` and `.`, starting with a letter)",
        ]
    );
}

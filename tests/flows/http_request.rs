//! HTTP Request block: golden transcripts against a local HTTP service (axum on a port the OS
//! chose), its error branch for each failure (time-out, non-2xx, bad JSON, too large, a URL
//! outside the allow-list), retries, and a disallowed literal URL refused at load with its
//! line and column.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use boomerang::call::CallLeg;
use boomerang::call::memory::MemoryLeg;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, LoadContext, RunReport};

use crate::common::{self, repo};
use crate::harness::{Harness, harness_with};

/// A CRM-like service: customers by number, an echo, a flaky, a slow, a non-JSON and a huge
/// answer. Counts the flaky endpoint's calls.
pub async fn crm() -> (SocketAddr, Arc<AtomicU32>) {
    let flaky = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new()
        .route(
            "/api/customers/{ani}",
            get(
                |UrlPath(ani): UrlPath<String>,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    let tier = if ani.ends_with('8') { "gold" } else { "basic" };
                    Json(serde_json::json!({
                        "customer": {"number": ani, "tier": tier, "lang": q.get("lang")},
                        "orders": [{"id": "A-17", "total": 42.5}],
                        "vip": tier == "gold",
                    }))
                },
            ),
        )
        .route(
            "/api/echo",
            post(|Json(body): Json<serde_json::Value>| async move {
                Json(serde_json::json!({ "received": body }))
            }),
        )
        .route(
            "/api/flaky",
            get(|State(n): State<Arc<AtomicU32>>| async move {
                if n.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(StatusCode::SERVICE_UNAVAILABLE)
                } else {
                    Ok(Json(serde_json::json!({"ok": "yes"})))
                }
            }),
        )
        .route(
            "/api/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Json(serde_json::json!({}))
            }),
        )
        .route("/api/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/api/text", get(|| async { "hello" }))
        .route(
            "/api/huge",
            get(|| async { "[".to_string() + &"1,".repeat(100_000) + "1]" }),
        )
        .with_state(flaky.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, flaky)
}

async fn harness_for(addr: SocketAddr) -> Harness {
    harness_with(
        |spec| spec.flows.http.allow = vec![format!("http://{addr}/api")],
        common::monday_9am_utc(),
    )
    .await
}

async fn run(h: &Harness, text: &str, ani: &str) -> (RunReport, Arc<MemoryLeg>) {
    let prompts = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &h.core.config,
        prompts: Some(&prompts),
    };
    let f = flow::load_str(Path::new("test.yaml"), text, &ctx).unwrap_or_else(|e| panic!("{e}"));
    let leg = MemoryLeg::caller(ani, "8000", []);
    let vars = system_variables(leg.as_ref(), &leg.info().dnis);
    (flow::run(&f, leg.clone(), &h.services, vars).await, leg)
}

fn var(r: &RunReport, k: &str) -> String {
    r.variables
        .get(k)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// A flow that looks the caller up and plays digit-1 for gold customers, digit-2 otherwise,
/// goodbye on error.
fn lookup_flow(addr: SocketAddr) -> String {
    format!(
        "application: lookup
type: default
self_service:
  - type: http_request
    id: lookup
    url_from: \"'http://{addr}/api/customers/' + ani\"
    query: {{lang: \"'fr'\"}}
    response:
      tier: /customer/tier
      lang: customer.lang
      order: orders.0.id
      total: /orders/0/total
      vip: vip
      nothing: /no/such/thing
    on_error: failed
  - type: if
    conditions:
      - {{when: \"tier == 'gold'\", goto: gold}}
  - type: play_message
    prompts: [digit-2]
    next: bye
  - type: play_message
    id: gold
    prompts: [digit-1]
    next: bye
  - type: play_message
    id: failed
    prompts: [goodbye]
  - type: terminate_call
    id: bye
"
    )
}

#[tokio::test]
async fn a_lookup_maps_the_json_answer_into_variables_and_the_flow_branches_on_it() {
    let (addr, _) = crm().await;
    let h = harness_for(addr).await;
    let (r, leg) = run(&h, &lookup_flow(addr), "+33612345678").await;
    assert_eq!(
        r.lines(),
        [
            "lookup (http_request): 200 lang=fr, nothing=, order=A-17, tier=gold, total=42.5, vip=true",
            "self_service[1] (if): tier == 'gold' → gold",
            "gold (play_message): played",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(leg.transcript(), ["play digit-1", "hang up (Normal)"]);
    assert_eq!(var(&r, "http.status"), "200");
    assert_eq!(var(&r, "http.ok"), "true");
    assert_eq!(var(&r, "http.error"), "");
    // Another caller, another answer, another prompt.
    let (r, leg) = run(&h, &lookup_flow(addr), "+33612345671").await;
    assert_eq!(var(&r, "tier"), "basic");
    assert_eq!(leg.transcript(), ["play digit-2", "hang up (Normal)"]);
}

#[tokio::test]
async fn a_post_sends_a_json_object_with_typed_values() {
    let (addr, _) = crm().await;
    let h = harness_for(addr).await;
    let text = format!(
        "application: post
type: default
variables: {{tries: 2}}
self_service:
  - type: http_request
    id: send
    method: post
    url: http://{addr}/api/echo
    headers: {{X-Api-Key: \"'k-1'\"}}
    body: {{number: ani, tries: tries + 1, vip: \"tries > 1\"}}
    result: crm
    response: {{got_number: /received/number, got_tries: /received/tries, got_vip: /received/vip}}
"
    );
    let (r, _) = run(&h, &text, "+33612345678").await;
    assert_eq!(
        r.lines(),
        ["send (http_request): 200 got_number=+33612345678, got_tries=3, got_vip=true"]
    );
    assert_eq!(var(&r, "crm.status"), "200");
}

/// Runs one request to `path` with `extra` properties; (trace line, http.error, http.status).
async fn failing(
    h: &Harness,
    addr: SocketAddr,
    path: &str,
    extra: &str,
) -> (String, String, String) {
    let text = format!(
        "application: fail
type: default
self_service:
  - type: http_request
    id: call
    url_from: \"'http://{addr}{path}'\"
    response: {{x: /x}}
    on_error: sorry
{extra}  - type: terminate_call
  - type: play_message
    id: sorry
    prompts: [goodbye]
"
    );
    let (r, leg) = run(h, &text, "+33612345678").await;
    assert_eq!(r.lines().len(), 2, "{:?}", r.lines());
    assert_eq!(r.lines()[1], "sorry (play_message): played");
    assert_eq!(leg.transcript(), ["play goodbye", "hang up (Normal)"]);
    assert_eq!(var(&r, "http.ok"), "false");
    (
        r.lines()[0].clone(),
        var(&r, "http.error"),
        var(&r, "http.status"),
    )
}

#[tokio::test]
async fn every_failure_takes_the_error_branch_with_its_reason() {
    let (addr, _) = crm().await;
    let h = harness_for(addr).await;
    let slow = "    timeout_ms: 300\n";
    let started = boomerang::clock::monotonic_now();
    let (line, why, _) = failing(&h, addr, "/api/slow", slow).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout held"
    );
    assert_eq!(
        (line.as_str(), why.as_str()),
        ("call (http_request): failed: timeout", "timeout")
    );
    let (line, why, status) = failing(&h, addr, "/api/missing", "").await;
    assert_eq!(line, "call (http_request): failed: status 404");
    assert_eq!((why.as_str(), status.as_str()), ("status", "404"));
    let (_, why, _) = failing(&h, addr, "/api/text", "").await;
    assert_eq!(why, "bad_json");
    let (_, why, _) = failing(&h, addr, "/api/huge", "").await;
    assert_eq!(why, "too_large");
    // Outside the allow-list (a computed URL is checked when the block runs).
    let (_, why, _) = failing(&h, addr, "/other", "").await;
    assert_eq!(why, "not_allowed");
    let (_, why, _) = failing(&h, addr, "/apix/customers", "").await;
    assert_eq!(why, "not_allowed");
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_fails() {
    let dead = common::free_port();
    let h = harness_with(
        |spec| spec.flows.http.allow = vec![format!("http://127.0.0.1:{dead}/")],
        common::monday_9am_utc(),
    )
    .await;
    let text = format!(
        "application: dead
type: default
self_service:
  - type: http_request
    id: call
    url: http://127.0.0.1:{dead}/x
    retries: 2
    on_error: bye
  - type: play_message
    prompts: [welcome]
  - type: terminate_call
    id: bye
"
    );
    let (r, leg) = run(&h, &text, "+33612345678").await;
    assert_eq!(
        r.lines(),
        [
            "call (http_request): failed: connect after 3 attempts",
            "bye (terminate_call): end (normal)"
        ]
    );
    assert_eq!(leg.transcript(), ["hang up (Normal)"]);
}

#[tokio::test]
async fn a_5xx_is_retried_and_the_second_attempt_succeeds() {
    let (addr, flaky) = crm().await;
    let h = harness_for(addr).await;
    let text = format!(
        "application: retry
type: default
self_service:
  - type: http_request
    id: call
    url: http://{addr}/api/flaky
    retries: 1
    response: {{ok: ok}}
"
    );
    let (r, _) = run(&h, &text, "+33612345678").await;
    assert_eq!(r.lines(), ["call (http_request): 200 ok=yes (attempt 2)"]);
    assert_eq!(flaky.load(Ordering::SeqCst), 2);
    // Without retries the 503 is the answer.
    let (addr, _) = crm().await;
    let h = harness_for(addr).await;
    let text = format!(
        "application: retry
type: default
self_service:
  - type: http_request
    url: http://{addr}/api/flaky
"
    );
    let (r, _) = run(&h, &text, "+33612345678").await;
    assert_eq!(var(&r, "http.status"), "503");
    assert_eq!(var(&r, "http.error"), "status");
}

/// Each problem of `text`, against the demo configuration allowing `http://crm.example.com/api`.
pub fn problems(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let config = common::demo_config(dir.path(), |spec| {
        spec.flows.http.allow = vec!["http://crm.example.com/api".into()];
    });
    let names = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &config,
        prompts: Some(&names),
    };
    match flow::load_str(Path::new("flow.yaml"), text, &ctx) {
        Ok(f) => panic!("`{}` loaded without problems", f.name),
        Err(e) => e.diagnostics.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn a_disallowed_literal_url_and_other_mistakes_are_located() {
    let text = "application: t
type: default
self_service:
  - type: http_request
    url: http://crm.example.com/apix/customers
    body: {a: 1}
    timeout_ms: 50
    response: {tier: \"a..b\", 9x: /a}
    headers: {\"bad header\": \"'v'\"}
  - type: http_request
    url: https://crm.example.com/api/x
    url_from: \"'x'\"
  - type: http_request
    method: post
    url: not a url
    body: {n: \"ani +\"}
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:5:10: self_service[0].url: `http://crm.example.com/apix/customers` is not under `flows.http.allow` in the configuration (http://crm.example.com/api)",
            "flow.yaml:6:5: self_service[0].body: `body` needs `method: post`",
            "flow.yaml:7:17: self_service[0].timeout_ms: timeout_ms must be between 100 and 30000, not 50",
            "flow.yaml:8:22: self_service[0].response.tier: `a..b` is neither a JSON pointer (`/a/0/b`) nor a dotted path (`a.0.b`)",
            "flow.yaml:8:30: self_service[0].response.9x: `9x` is not a variable name (letters, digits, `_` and `.`, starting with a letter)",
            "flow.yaml:9:15: self_service[0].headers.bad header: not a header name",
            "flow.yaml:10:5: self_service[1]: give exactly one of `url` and `url_from`",
            "flow.yaml:15:10: self_service[2].url: `not a url` is not a URL",
            "flow.yaml:16:21: self_service[2].body.n: expression: the expression ends too early",
        ]
    );
}

/// A flow with one request to `path` taking up to `timeout_ms`.
fn one_request(addr: SocketAddr, path: &str, timeout_ms: u32) -> String {
    format!(
        "application: one
type: default
self_service:
  - type: http_request
    id: call
    url: http://{addr}{path}
    timeout_ms: {timeout_ms}
"
    )
}

#[tokio::test]
async fn a_slow_service_holds_only_its_own_call_and_past_the_bound_others_are_busy() {
    let (addr, _) = crm().await;
    // Slots to spare: a call waiting on the slow service does not delay another call's request.
    let h = harness_for(addr).await;
    let slow_flow = one_request(addr, "/api/slow", 1500);
    let slow = run(&h, &slow_flow, "+331");
    let fast = async {
        let t0 = boomerang::clock::monotonic_now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = run(&h, &one_request(addr, "/api/customers/1", 1000), "+332").await;
        (r, t0.elapsed())
    };
    let ((slow, _), ((fast, _), took)) = tokio::join!(slow, fast);
    assert_eq!(slow.lines(), ["call (http_request): failed: timeout"]);
    assert_eq!(fast.lines(), ["call (http_request): 200 ok"]);
    assert!(took < Duration::from_millis(1000), "{took:?}");
    // One slot: while the slow request holds it, another call's request is busy.
    let h = harness_with(
        |spec| {
            spec.flows.http.allow = vec![format!("http://{addr}/api")];
            spec.flows.http.max_concurrent = 1;
        },
        common::monday_9am_utc(),
    )
    .await;
    let slow_flow = one_request(addr, "/api/slow", 1500);
    let slow = run(&h, &slow_flow, "+331");
    let fast = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        run(&h, &one_request(addr, "/api/customers/1", 300), "+332").await
    };
    let ((slow, _), (fast, _)) = tokio::join!(slow, fast);
    assert_eq!(slow.lines(), ["call (http_request): failed: timeout"]);
    assert_eq!(fast.lines(), ["call (http_request): failed: busy"]);
    assert_eq!(var(&fast, "http.error"), "busy");
    // The slot is free again.
    let (after, _) = run(&h, &one_request(addr, "/api/customers/1", 1000), "+332").await;
    assert_eq!(after.lines(), ["call (http_request): 200 ok"]);
}

//! Prometheus metrics at `GET /metrics` (text exposition format), unauthenticated like the
//! probes. Built on `prometheus-client` (the Prometheus project's own crate, Apache-2.0 OR MIT):
//! an explicit registry per engine rather than a process-wide recorder, so engines started side
//! by side in tests keep their own figures, and only three small dependencies.
//!
//! Counters on hot paths are atomics behind a label lookup ([`SipMetrics`] in the user agent,
//! [`Metrics::http`] in a middleware); what can be read from the engine's state (calls active,
//! queues, agents, callbacks, process RSS and descriptors) is read at scrape time, costing the
//! hot paths nothing.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::callback::service::CallbackService;
use crate::routing::{Router, StateKind};
use crate::sip::ua::UaHandle;

/// A label set of one fixed name and value.
pub type Fixed = [(&'static str, &'static str); 1];

/// A label set with values taken from the configuration (queues, route points).
pub type Named = Vec<(&'static str, String)>;

/// The user agent's counters, updated as messages pass.
#[derive(Debug)]
pub struct SipMetrics {
    /// Requests received, by method (retransmissions included).
    pub requests: Family<Fixed, Counter>,
    /// Responses received, by class.
    pub responses_received: Family<Fixed, Counter>,
    /// Responses sent, by class.
    pub responses_sent: Family<Fixed, Counter>,
    /// New INVITEs refused with 503, by reason (`max_calls`, `max_setup_calls`, `draining`).
    pub refused: Family<Fixed, Counter>,
    /// Outbound dial attempts ended, by result (`CONNECTED`, `BUSY`, `NO_ANSWER`, …).
    pub dial_results: Family<Fixed, Counter>,
    /// Outbound call setup time: INVITE sent to answer, answered dials only.
    pub setup_seconds: Histogram,
    /// Post-dial delay: INVITE sent to the first provisional response with progress.
    pub post_dial_delay_seconds: Histogram,
    /// Set by `metrics.enabled: false`: nothing is counted.
    off: AtomicBool,
}

/// Buckets of the call-setup histograms, in seconds (a trunk's PDD to a slow answer).
const SETUP_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0,
];

impl Default for SipMetrics {
    fn default() -> Self {
        SipMetrics {
            requests: Family::default(),
            responses_received: Family::default(),
            responses_sent: Family::default(),
            refused: Family::default(),
            dial_results: Family::default(),
            setup_seconds: Histogram::new(SETUP_BUCKETS),
            post_dial_delay_seconds: Histogram::new(SETUP_BUCKETS),
            off: AtomicBool::new(false),
        }
    }
}

impl SipMetrics {
    /// An outbound dial ended (answered, or why not) `elapsed` after its INVITE; the setup
    /// time is recorded for answered dials.
    pub fn dial_ended(
        &self,
        result: Result<(), crate::call::DialResult>,
        elapsed: std::time::Duration,
    ) {
        use crate::call::DialResult as D;
        if self.off.load(Ordering::Relaxed) {
            return;
        }
        let name = match result {
            Ok(()) | Err(D::Connected) => "connected",
            Err(D::Busy) => "busy",
            Err(D::NoAnswer) => "no_answer",
            Err(D::Failed) => "failed",
            Err(D::Unreachable) => "unreachable",
            Err(D::AnsweringMachine) => "answering_machine",
        };
        self.dial_results.get_or_create(&[("result", name)]).inc();
        if name == "connected" {
            self.setup_seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// The first provisional response of an outbound dial arrived `elapsed` after its INVITE.
    pub fn post_dial_delay(&self, elapsed: std::time::Duration) {
        if !self.off.load(Ordering::Relaxed) {
            self.post_dial_delay_seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// Stops counting (`metrics.enabled: false`), so the SIP path pays one relaxed load.
    pub fn disable(&self) {
        self.off.store(true, Ordering::Relaxed);
    }

    /// Counts one event in `family` under the label `name=value`, unless switched off.
    fn bump(&self, family: &Family<Fixed, Counter>, name: &'static str, value: &'static str) {
        if !self.off.load(Ordering::Relaxed) {
            family.get_or_create(&[(name, value)]).inc();
        }
    }

    /// A request arrived.
    pub fn request(&self, method: &rsip::Method) {
        self.bump(&self.requests, "method", method_name(method));
    }

    /// A response arrived.
    pub fn response_received(&self, code: u16) {
        self.bump(&self.responses_received, "class", class(code));
    }

    /// We sent a response.
    pub fn response_sent(&self, code: u16) {
        self.bump(&self.responses_sent, "class", class(code));
    }

    /// A new INVITE was shed with 503.
    pub fn refused(&self, reason: &'static str) {
        self.bump(&self.refused, "reason", reason);
    }
}

/// Creates a counter family's series for its known label values, so that rates and
/// dashboards have them, at zero, from the start.
pub(crate) fn at_zero(
    family: &Family<Fixed, Counter>,
    label: &'static str,
    values: &[&'static str],
) {
    for value in values {
        let _ = family.get_or_create(&[(label, *value)]);
    }
}

fn method_name(m: &rsip::Method) -> &'static str {
    use rsip::Method as M;
    match m {
        M::Ack => "ACK",
        M::Bye => "BYE",
        M::Cancel => "CANCEL",
        M::Info => "INFO",
        M::Invite => "INVITE",
        M::Message => "MESSAGE",
        M::Notify => "NOTIFY",
        M::Options => "OPTIONS",
        M::PRack => "PRACK",
        M::Publish => "PUBLISH",
        M::Refer => "REFER",
        M::Register => "REGISTER",
        M::Subscribe => "SUBSCRIBE",
        M::Update => "UPDATE",
    }
}

/// `1xx` … `6xx` (anything else: `other`).
pub fn class(code: u16) -> &'static str {
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        6 => "6xx",
        _ => "other",
    }
}

/// What the scrape reads the engine's state from.
pub struct Sources {
    /// The user agent (calls active), when SIP runs.
    pub ua: Option<UaHandle>,
    /// Queues and agents.
    pub router: Arc<Router>,
    /// Callbacks.
    pub callbacks: Arc<CallbackService>,
}

/// The engine's metrics and their registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// HTTP requests answered, by status class.
    pub http: Family<Fixed, Counter>,
    /// HTTP requests refused by a rate limit (429).
    pub http_rate_limited: Counter,
    /// Inbound calls ended, by route point and flow ending.
    pub calls: Family<Named, Counter>,
    calls_active: Gauge,
    queue_waiting: Family<Named, Gauge>,
    queue_ewt: Family<Named, Gauge>,
    agents: Family<Fixed, Gauge>,
    callbacks: Family<Fixed, Gauge>,
    rss: Gauge,
    fds: Gauge,
    /// Configuration reloads (SIGHUP, `POST /admin/reload`), by result (`ok`, `failed`).
    pub config_reloads: Family<Fixed, Counter>,
    /// Store latency, by operation (see [`super::store_metrics`]).
    pub store: super::store_metrics::StoreMetrics,
    /// Push outbox depth and deliveries.
    pub push: crate::push::PushMetrics,
    sources: OnceLock<Sources>,
    off: AtomicBool,
}

impl Metrics {
    /// Every metric registered; the SIP counters join with [`Metrics::set_sources`].
    pub fn new() -> Arc<Self> {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("boomerang")),
            http: Family::default(),
            http_rate_limited: Counter::default(),
            calls: Family::default(),
            calls_active: Gauge::default(),
            queue_waiting: Family::default(),
            queue_ewt: Family::default(),
            agents: Family::default(),
            callbacks: Family::default(),
            rss: Gauge::default(),
            fds: Gauge::default(),
            config_reloads: Family::default(),
            store: super::store_metrics::StoreMetrics::default(),
            push: crate::push::PushMetrics::default(),
            sources: OnceLock::new(),
            off: AtomicBool::new(false),
        };
        {
            let mut r = m.lock();
            r.register(
                "http_requests",
                "HTTP requests answered, by status class",
                m.http.clone(),
            );
            r.register(
                "http_rate_limited",
                "HTTP requests refused with 429 by a rate limit",
                m.http_rate_limited.clone(),
            );
            r.register(
                "calls",
                "Inbound calls ended, by route point and how their flow ended",
                m.calls.clone(),
            );
            r.register(
                "calls_active",
                "SIP calls up or being set up (both directions)",
                m.calls_active.clone(),
            );
            r.register(
                "queue_waiting",
                "Interactions waiting in each virtual queue",
                m.queue_waiting.clone(),
            );
            r.register(
                "queue_ewt_seconds",
                "Estimated wait time of a new interaction per queue (-1: unknown)",
                m.queue_ewt.clone(),
            );
            r.register("agents", "Agents per state", m.agents.clone());
            r.register(
                "callbacks",
                "Unfinished callbacks in memory, per state",
                m.callbacks.clone(),
            );
            r.register(
                "process_resident_memory_bytes",
                "Resident memory of the process",
                m.rss.clone(),
            );
            r.register(
                "process_open_fds",
                "Open file descriptors of the process",
                m.fds.clone(),
            );
            at_zero(&m.http, "class", &["2xx", "3xx", "4xx", "5xx"]);
            at_zero(&m.config_reloads, "result", &["ok", "failed"]);
            super::media_metrics::media().register(&mut r);
            m.store.register(&mut r);
            m.push.register(&mut r);
            r.register(
                "config_reloads",
                "Configuration reloads (SIGHUP or POST /admin/reload), by result",
                m.config_reloads.clone(),
            );
        }
        Arc::new(m)
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Registry> {
        self.registry.lock()
    }

    /// Where scrapes read state from, and the user agent's counters; set once at start.
    pub fn set_sources(&self, sources: Sources) {
        if let Some(ua) = &sources.ua {
            let sip = ua.metrics();
            let mut r = self.lock();
            r.register(
                "sip_requests_received",
                "SIP requests received, by method (retransmissions included)",
                sip.requests.clone(),
            );
            r.register(
                "sip_responses_received",
                "SIP responses received, by class",
                sip.responses_received.clone(),
            );
            r.register(
                "sip_responses_sent",
                "SIP responses sent, by class",
                sip.responses_sent.clone(),
            );
            r.register(
                "sip_invites_refused",
                "New INVITEs refused with 503 (overload or shutdown), by reason",
                sip.refused.clone(),
            );
            // Known label values start at zero, so rates and dashboards have series at once.
            at_zero(
                &sip.refused,
                "reason",
                &["max_calls", "max_setup_calls", "draining"],
            );
            let results = ["connected", "busy", "no_answer", "failed", "unreachable"];
            at_zero(&sip.dial_results, "result", &results);
            let classes = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];
            at_zero(&sip.responses_sent, "class", &classes);
            at_zero(&sip.responses_received, "class", &classes);
            let methods = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER"];
            at_zero(&sip.requests, "method", &methods);
            r.register(
                "dial_attempts",
                "Outbound dial attempts ended, by result",
                sip.dial_results.clone(),
            );
            r.register(
                "call_setup_seconds",
                "Outbound call setup time, INVITE sent to answer",
                sip.setup_seconds.clone(),
            );
            r.register(
                "post_dial_delay_seconds",
                "Post-dial delay of outbound calls, INVITE sent to first progress",
                sip.post_dial_delay_seconds.clone(),
            );
        }
        let _ = self.sources.set(sources);
    }

    /// Stops counting calls (`metrics.enabled: false`; the engine serves no `/metrics` then).
    pub fn disable(&self) {
        self.off.store(true, Ordering::Relaxed);
    }

    /// A configuration reload ended (`ok` or `failed`); counted even with metrics off, as
    /// it is rare.
    pub fn config_reloaded(&self, result: &'static str) {
        self.config_reloads
            .get_or_create(&[("result", result)])
            .inc();
    }

    /// An inbound call ended.
    pub fn call_ended(&self, route_point: &str, outcome: &str) {
        if self.off.load(Ordering::Relaxed) {
            return;
        }
        self.calls
            .get_or_create(&vec![
                ("route_point", route_point.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }

    /// Reads the state-derived figures and renders the exposition text.
    pub async fn render(&self) -> Result<String, std::fmt::Error> {
        if let Some(s) = self.sources.get() {
            if let Some(ua) = &s.ua {
                self.calls_active.set(ua.active_calls().await as i64);
            }
            let router = &s.router;
            for q in router.queue_names() {
                let label = vec![("queue", q.to_string())];
                let waiting = router.waiting(q).unwrap_or(0);
                self.queue_waiting.get_or_create(&label).set(waiting as i64);
                let ewt = router
                    .ewt_for_new(q)
                    .ok()
                    .flatten()
                    .map(|d| d.num_seconds())
                    .unwrap_or(-1);
                self.queue_ewt.get_or_create(&label).set(ewt);
            }
            let mut agents = [0i64; 6];
            for (_, a) in router.agents().iter() {
                agents[agent_slot(a.state())] += 1;
            }
            for (i, n) in agents.into_iter().enumerate() {
                self.agents
                    .get_or_create(&[("state", AGENT_STATES[i])])
                    .set(n);
            }
            let mut callbacks = [0i64; CALLBACK_STATES.len()];
            for r in s.callbacks.active() {
                if let Some(i) = CALLBACK_STATES.iter().position(|n| *n == r.state.name()) {
                    callbacks[i] += 1;
                }
            }
            for (i, n) in callbacks.into_iter().enumerate() {
                self.callbacks
                    .get_or_create(&[("state", CALLBACK_STATES[i])])
                    .set(n);
            }
        }
        let (rss, fds) = process_figures();
        self.rss.set(rss);
        self.fds.set(fds);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.lock())?;
        Ok(out)
    }
}

const AGENT_STATES: [&str; 6] = [
    "logged_out",
    "not_ready",
    "ready",
    "reserved",
    "busy",
    "after_call_work",
];

fn agent_slot(k: StateKind) -> usize {
    match k {
        StateKind::LoggedOut => 0,
        StateKind::NotReady => 1,
        StateKind::Ready => 2,
        StateKind::Reserved => 3,
        StateKind::Busy => 4,
        StateKind::AfterCallWork => 5,
    }
}

const CALLBACK_STATES: [&str; 5] = ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING", "COMPLETED"];

/// Resident bytes and open descriptors, from `/proc/self` (0 where it is not available).
fn process_figures() -> (i64, i64) {
    let page = 4096i64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<i64>().ok())
        .map_or(0, |pages| pages * page);
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64);
    (rss, fds)
}

/// `GET /metrics`.
pub fn routes(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || scrape(metrics.clone())),
    )
}

async fn scrape(metrics: Arc<Metrics>) -> Response {
    match metrics.render().await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Serves `/metrics` and the probes on their own listener at `addr` (`metrics.listen`), with
/// the API's connection limits, tracked with the engine's tasks; the bound address.
pub async fn serve_separately(
    addr: std::net::SocketAddr,
    metrics: &Arc<Metrics>,
    health: &Arc<super::Health>,
    limits: crate::api::server::ServeLimits,
    tasks: &super::shutdown::Tasks,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = super::routes(health.clone()).merge(routes(metrics.clone()));
    tasks.tracker.spawn(crate::api::server::serve_until(
        listener,
        app,
        limits,
        tasks.token.clone(),
    ));
    tracing::info!(%bound, "metrics listening");
    Ok(bound)
}

/// Middleware counting every HTTP answer by status class (and 429s on their own).
pub async fn count_http(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let code = resp.status().as_u16();
    metrics.http.get_or_create(&[("class", class(code))]).inc();
    if code == 429 {
        metrics.http_rate_limited.inc();
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_sip_counters_count_nothing() {
        let m = SipMetrics::default();
        m.request(&rsip::Method::Invite);
        m.disable();
        m.request(&rsip::Method::Invite);
        m.response_sent(200);
        m.refused("draining");
        let invites = m.requests.get_or_create(&[("method", "INVITE")]).get();
        assert_eq!(invites, 1);
        assert_eq!(m.responses_sent.get_or_create(&[("class", "2xx")]).get(), 0);
        assert_eq!(m.refused.get_or_create(&[("reason", "draining")]).get(), 0);
    }

    #[tokio::test]
    async fn renders_counters_with_their_labels() {
        let m = Metrics::new();
        m.call_ended("8999", "CallerHungUp");
        let _ = m.http.get_or_create(&[("class", class(404))]).inc();
        let text = m.render().await.unwrap();
        assert!(
            text.contains("boomerang_calls_total{route_point=\"8999\",outcome=\"CallerHungUp\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("boomerang_http_requests_total{class=\"4xx\"} 1"),
            "{text}"
        );
        assert!(text.contains("boomerang_process_open_fds "), "{text}");
    }
}

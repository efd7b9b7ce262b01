//! Log output: the `logging.format` setting (text or JSON lines), and the span every call runs
//! in, so that all the lines one call causes — flow, routing, callback — carry its Call-ID and
//! an operator finds them with one search.

use tracing::Span;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the process's log subscriber on standard output: `RUST_LOG` filters (default
/// `info`), `format` shapes the lines. Does nothing if one is installed already (tests).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // `span` is the innermost span's fields, `spans` every enclosing one's.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// The span a call's work runs in: its SIP Call-ID and route point (the dialled number), with
/// `flow` and `callback` filled in by [`record_flow`] and [`record_callback`] once known.
pub fn call_span(call_id: &str, route_point: &str) -> Span {
    tracing::info_span!(
        "call",
        call_id = %call_id,
        route_point = %route_point,
        flow = tracing::field::Empty,
        callback = tracing::field::Empty,
    )
}

/// Names the flow (application) the current call runs; outside a call span it does nothing.
pub fn record_flow(name: &str) {
    Span::current().record("flow", tracing::field::display(name));
}

/// Names the callback the current call serves or matched; outside a call span it does nothing.
pub fn record_callback(id: &uuid::Uuid) {
    Span::current().record("callback", tracing::field::display(id));
}

/// The span a callback's dial and call run in: the same fields as [`call_span`], with the
/// callback id from the start and the Call-ID once the customer's leg exists.
pub fn callback_span(id: &uuid::Uuid) -> Span {
    tracing::info_span!(
        "call",
        call_id = tracing::field::Empty,
        route_point = tracing::field::Empty,
        flow = tracing::field::Empty,
        callback = %id,
    )
}

/// Names the SIP Call-ID of the current callback's customer leg once it was dialled.
pub fn record_call_id(call_id: &str) {
    Span::current().record("call_id", tracing::field::display(call_id));
}

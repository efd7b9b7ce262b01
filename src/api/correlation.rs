//! The correlation layer: a correlation id on every answer, errors rendered as JSON with it
//! (and logged), and the GES envelope `{status:{code,message,corrId},data}` on `/engagement`.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use super::{ApiError, ApiState, ErrorLogEntry, error};

/// Gives every request a correlation id (the caller's `x-correlation-id` if sane), renders
/// errors as JSON with it, and logs them.
pub(super) async fn correlate(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let corr = req
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let ges = is_ges_path(req.uri().path());
    let mut resp = next.run(req).await;
    let success = resp.extensions_mut().remove::<error::SuccessData>();
    let status = resp.status();
    let pending = match resp.extensions_mut().remove::<error::PendingError>() {
        Some(p) => Some(p.0),
        // Errors produced by layers and extractors (a path parameter that does not parse, a
        // body too large, …) arrive without a JSON body: their short text, if any, says what
        // is wrong.
        None if status.is_client_error() || status.is_server_error() => {
            let (parts, body) = resp.into_parts();
            let text = rejection_text(&parts.headers, body).await;
            resp = Response::from_parts(parts, axum::body::Body::empty());
            let message = text.unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("request refused")
                    .to_lowercase()
            });
            Some(ApiError::new(status, 0, message))
        }
        None => None,
    };
    let retry_after = resp.headers().get(axum::http::header::RETRY_AFTER).cloned();
    if let Some(err) = pending {
        state.errors.push(ErrorLogEntry {
            correlation_id: corr.clone(),
            at: state.clock.now(),
            method,
            uri,
            status: err.status.as_u16(),
            code: err.code,
            message: err.message.clone(),
        });
        resp = error::render(&err, &corr, ges);
        if let Some(v) = retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
    } else if let (true, Some(data)) = (ges, success) {
        // Same status and headers, the body now with `corrId`.
        let (mut parts, _) = resp.into_parts();
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        resp = Response::from_parts(parts, error::success_body(data.0, &corr));
    }
    if let Ok(v) = HeaderValue::from_str(&corr) {
        resp.headers_mut().insert("x-correlation-id", v);
    }
    resp
}

/// Longest rejection text taken up as an error's message.
const REJECTION_TEXT_BYTES: usize = 1024;

/// The plain-text body of a rejection (axum's extractors say there which parameter failed and
/// why), when it is short UTF-8.
async fn rejection_text(headers: &axum::http::HeaderMap, body: axum::body::Body) -> Option<String> {
    let plain = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !plain {
        return None;
    }
    let bytes = axum::body::to_bytes(body, REJECTION_TEXT_BYTES)
        .await
        .ok()?;
    let text = String::from_utf8(bytes.to_vec()).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// Whether `path` is on the GES v3 surface, whose answers wear the GES envelope (status with
/// `corrId`); the administration and the OpenAPI document keep their own format.
pub(crate) fn is_ges_path(path: &str) -> bool {
    path == "/engagement" || path.starts_with("/engagement/")
}

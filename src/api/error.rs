//! API errors: every non-2xx answer is JSON with a precise message, and is kept in a bounded log
//! that developers search by correlation id. The GES surface (`/engagement/…`) wraps it as GES
//! does, `{"status":{"code","message","corrId"}}` (plus `data` where GES adds one); the
//! administration keeps its flat `{code, message, correlationId}`.

use parking_lot::Mutex;
use std::collections::VecDeque;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Entries kept in the error log.
pub const ERROR_LOG_SIZE: usize = 1000;

/// Bytes of an entry's URI and of its message kept in the error log: both can echo what the
/// client sent (a 64 KiB request line, a 64 KiB queue name), and the log holds
/// [`ERROR_LOG_SIZE`] entries.
pub const ERROR_LOG_FIELD_BYTES: usize = 1024;

/// `text` cut to at most [`ERROR_LOG_FIELD_BYTES`] bytes on a character boundary, ending
/// with `…` when cut.
fn bounded(mut text: String) -> String {
    if text.len() <= ERROR_LOG_FIELD_BYTES {
        return text;
    }
    let mut end = ERROR_LOG_FIELD_BYTES - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    text
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Five-digit code: HTTP status × 100 + a sub-code (as GES codes look, e.g. 40001).
    pub code: u32,
    /// What is wrong: which field and why.
    pub message: String,
    /// What GES sends beside the status on some errors (429 on create: `{"slots":…}`).
    pub data: Option<serde_json::Value>,
}

impl ApiError {
    /// 400 with sub-code 1: the request is malformed or a field is invalid.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 1, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, 1, message)
    }

    /// 409: the request conflicts with the resource's state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, 1, message)
    }

    /// 401: no or wrong API key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            1,
            "a valid x-api-key header is required",
        )
    }

    /// 429 with a reason.
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, 1, message)
    }

    /// 500: something failed inside; the message says what, never a stack.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 1, message)
    }

    /// Any status with a sub-code.
    pub fn new(status: StatusCode, sub: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: status.as_u16() as u32 * 100 + sub,
            message: message.into(),
            data: None,
        }
    }

    /// The same error with a `data` member (GES surface only).
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    code: u32,
    message: &'a str,
    correlation_id: &'a str,
}

/// The error as it leaves, once the correlation id is known (added by the middleware).
#[derive(Debug, Clone)]
pub struct PendingError(pub ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The correlation middleware fills in the id and writes the body.
        let status = self.status;
        let mut resp = status.into_response();
        resp.extensions_mut().insert(PendingError(self));
        resp
    }
}

/// Renders the JSON body of an error with its correlation id: in the GES envelope when `ges`,
/// else flat (administration).
pub fn render(err: &ApiError, correlation_id: &str, ges: bool) -> Response {
    if ges {
        let mut body = serde_json::json!({
            "status": { "code": err.code, "message": err.message, "corrId": correlation_id }
        });
        if let Some(d) = &err.data {
            body["data"] = d.clone();
        }
        return (err.status, Json(body)).into_response();
    }
    let body = ErrorBody {
        code: err.code,
        message: &err.message,
        correlation_id,
    };
    (err.status, Json(body)).into_response()
}

/// The `data` of a success answer, kept so that the correlation layer can add `corrId` to
/// the GES envelope once the id is known.
#[derive(Debug, Clone)]
pub struct SuccessData(pub serde_json::Value);

/// The GES success envelope: `{"status":{"code":0,"message":"Successful","corrId"},"data"}`.
pub fn success_body(data: serde_json::Value, correlation_id: &str) -> axum::body::Body {
    let v = serde_json::json!({
        "status": { "code": 0, "message": "Successful", "corrId": correlation_id },
        "data": data,
    });
    axum::body::Body::from(serde_json::to_vec(&v).unwrap_or_default())
}

/// One failed request, as the Developer > Errors page lists them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorLogEntry {
    /// Correlation id.
    pub correlation_id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// HTTP status.
    pub status: u16,
    /// Error code.
    pub code: u32,
    /// Message.
    pub message: String,
}

/// The last [`ERROR_LOG_SIZE`] errors.
#[derive(Debug, Default)]
pub struct ErrorLog {
    entries: Mutex<VecDeque<ErrorLogEntry>>,
}

impl ErrorLog {
    /// Records an error (its URI and message cut to [`ERROR_LOG_FIELD_BYTES`]), dropping the
    /// oldest beyond the bound.
    pub fn push(&self, mut entry: ErrorLogEntry) {
        entry.uri = bounded(std::mem::take(&mut entry.uri));
        entry.message = bounded(std::mem::take(&mut entry.message));
        let mut e = self.entries.lock();
        e.push_back(entry);
        while e.len() > ERROR_LOG_SIZE {
            e.pop_front();
        }
    }

    /// Errors, newest first, optionally only one correlation id.
    pub fn search(&self, correlation_id: Option<&str>) -> Vec<ErrorLogEntry> {
        let e = self.entries.lock();
        e.iter()
            .rev()
            .filter(|x| correlation_id.is_none_or(|c| x.correlation_id == c))
            .cloned()
            .collect()
    }
}

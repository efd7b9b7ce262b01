//! What handlers share to read a request and shape an answer: the JSON body and query
//! extractors whose rejections name the problem, the queue lookup, the success envelope and
//! the mapping of callback-service errors to HTTP.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ApiError, ApiState, error};
use crate::callback::service::ServiceError;
use crate::config::QueueSpec;

/// What a handler answers: its response, or an error the correlation layer renders as JSON.
pub type Reply = Result<Response, ApiError>;

/// JSON body extractor whose rejections name the problem (unknown field, wrong type…).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::bad_request(e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::bad_request(
                "Content-Type must be application/json",
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    1,
                    "the request body is too large",
                ))
            }
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                1,
                "the request body did not arrive in full within api.body_timeout_seconds",
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// For optional body fields whose absence is an empty value (a map, a list): `null` reads as
/// absent, as it does for the `Option` fields (clients that write every field send `null`).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Option::unwrap_or_default)
}

/// A configured queue, or a 400 naming the request field that held the unknown name.
pub(crate) fn known_queue<'a>(
    s: &'a ApiState,
    name: &str,
    field: &str,
) -> Result<&'a QueueSpec, ApiError> {
    s.config
        .queue(name)
        .ok_or_else(|| ApiError::bad_request(format!("{field}: unknown virtual queue `{name}`")))
}

/// The GES success envelope around `data` (the correlation layer adds `corrId` on the GES
/// surface).
pub(crate) fn ok(data: impl Serialize) -> Response {
    let data = serde_json::to_value(data).unwrap_or(Value::Null);
    let mut resp =
        Json(json!({ "status": { "code": 0, "message": "Successful" }, "data": data.clone() }))
            .into_response();
    resp.extensions_mut().insert(error::SuccessData(data));
    resp
}

/// A callback-service error as the HTTP answer that names the field at fault.
pub(crate) fn service_error(e: ServiceError) -> ApiError {
    match e {
        ServiceError::UnknownQueue(_) => ApiError::bad_request(format!("serviceName: {e}")),
        ServiceError::NotFound(_) => ApiError::not_found(e.to_string()),
        ServiceError::Number(_) => ApiError::bad_request(format!("phoneNumber: {e}")),
        ServiceError::UserData(_) => ApiError::bad_request(format!("userData: {e}")),
        ServiceError::InPast(_) | ServiceError::TooFarAhead { .. } => {
            ApiError::bad_request(format!("desiredTime: {e}"))
        }
        ServiceError::Disabled { .. } => ApiError::conflict(e.to_string()),
        ServiceError::SlotUnavailable(_) => ApiError::too_many(e.to_string()),
        ServiceError::Lifecycle(_) | ServiceError::HeldElsewhere(_) => {
            ApiError::conflict(e.to_string())
        }
        // The database is away (restarting, unreachable): try again later.
        ServiceError::Store(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            2,
            format!("the callback could not be stored; nothing was changed ({e})"),
        ),
    }
}

/// Query-string extractor whose rejection is a 400 saying what is wrong (the query
/// counterpart of [`Body`]).
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

//! [`Posted`]: the one way a UI handler receives a form that changes something. It resolves the
//! session (like [`UiUser`]), reads the body (url-encoded, or `multipart/form-data` for file
//! uploads) within a bound, and checks the session's CSRF token before the handler runs, so no
//! state change can forget the check.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::fields::{field, form_fields, multipart};
use super::{UiUser, page_error};
use crate::api::ApiState;

/// Largest form body read: a CSV import of a full DNIS pool fits
/// (`api::admin::groups::MAX_CSV_BYTES`), with room for the multipart envelope.
pub const MAX_FORM_BYTES: usize = crate::api::admin::groups::MAX_CSV_BYTES + (64 << 10);

/// A form posted by a logged-in user, its CSRF token checked.
pub struct Posted {
    /// Who posted it.
    pub user: UiUser,
    /// Its fields, keys repeated as sent (checkbox lists); for a multipart form, its text parts.
    pub fields: Vec<(String, String)>,
    /// Every part of a multipart form (files included), raw.
    pub parts: Vec<(String, Vec<u8>)>,
}

impl Posted {
    /// The first value of field `key` (empty when absent).
    pub fn field(&self, key: &str) -> &str {
        field(&self.fields, key)
    }

    /// The fields as the struct `T` (its fields all strings; the last value of a key wins), or
    /// the 400 page.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Response> {
        let map: serde_json::Map<String, serde_json::Value> = self
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
            let why = format!("The form is incomplete: {e}.");
            page_error(StatusCode::BAD_REQUEST, &why, Some(&self.user))
        })
    }
}

impl FromRequest<ApiState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, s: &ApiState) -> Result<Self, Response> {
        let (mut head, body) = req.into_parts();
        let user = UiUser::from_request_parts(&mut head, s).await?;
        let kind = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                let why = "The form is too large (a CSV file may hold up to 2 MiB).";
                page_error(StatusCode::PAYLOAD_TOO_LARGE, why, Some(&user))
            })?;
        let (fields, parts) = if kind.starts_with("multipart/form-data") {
            let parts = multipart(&kind, &bytes);
            let text = parts
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            (text, parts)
        } else {
            (form_fields(&bytes), Vec::new())
        };
        user.check_csrf(field(&fields, "csrf"))?;
        Ok(Posted {
            user,
            fields,
            parts,
        })
    }
}

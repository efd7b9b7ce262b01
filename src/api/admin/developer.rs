//! The Developer tab (Administrator, Developer): recent API errors searched by correlation id,
//! API key validation, and the CORS origins in force (read-only: they come from the file).

use serde::Deserialize;
use serde_json::json;

use super::auth::{Admin, Permission};
use crate::api::{Body, Q, Reply, ok};

/// `GET /admin/developer/errors` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ErrorsQuery {
    /// Only the error with this correlation id.
    pub correlation_id: Option<String>,
    /// At most this many, newest first (1–1000, default 100).
    pub limit: Option<usize>,
}

/// Recent API errors (the last 1000), newest first.
#[utoipa::path(get, path = "/developer/errors", tag = "admin", params(ErrorsQuery),
    responses((status = 200, description = "errors with method, uri, status, code, message"), (status = 403)))]
pub async fn errors(Admin { s, user }: Admin, Q(q): Q<ErrorsQuery>) -> Reply {
    user.require(Permission::DeveloperTools)?;
    let limit = super::limit(q.limit, 100)?;
    let mut list = s.errors.search(q.correlation_id.as_deref());
    list.truncate(limit);
    Ok(ok(list))
}

/// `POST /admin/developer/api-keys/validate` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    /// The key to test.
    pub key: String,
}

/// Tells whether a key would be accepted in `x-api-key`, and under which configured name.
#[utoipa::path(post, path = "/developer/api-keys/validate", tag = "admin", request_body = KeyBody,
    responses((status = 200, description = "`data.valid` and `data.name`"), (status = 403)))]
pub async fn validate_key(Admin { s, user }: Admin, Body(b): Body<KeyBody>) -> Reply {
    user.require(Permission::DeveloperTools)?;
    let name = s.key_name(b.key.as_bytes());
    Ok(ok(json!({ "valid": name.is_some(), "name": name })))
}

/// Origins allowed by CORS (from `api.cors_origins`).
#[utoipa::path(get, path = "/developer/cors-origins", tag = "admin",
    responses((status = 200, description = "the configured origins"), (status = 403)))]
pub async fn cors_origins(Admin { s, user }: Admin) -> Reply {
    user.require(Permission::DeveloperTools)?;
    Ok(ok(
        json!({ "origins": s.config.spec.api.cors_origins, "editable": false }),
    ))
}

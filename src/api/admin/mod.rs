//! The administration API (`/admin/…`): what the seed's Callback UI does, as JSON endpoints a
//! web UI can sit on. Every route except `POST /admin/login` needs a bearer token from login;
//! the API's authentication layer resolves it into an [`auth::AdminUser`] (handlers receive it
//! with the state as an [`auth::Admin`]), and each handler checks the [`auth::Permission`] it needs and the queues the user may read.

pub mod agents;
pub mod audit;
pub mod auth;
pub mod callbacks;
pub(crate) mod crud;
pub mod developer;
pub mod groups;
pub mod push;

pub mod queues;
pub mod recordings;
pub mod reload;
pub mod rules;
pub mod surveys;
pub mod users;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ApiState;

pub use auth::{Admin, AdminAuth, AdminUser, Permission, Role};

/// Method and path of the only `/admin` route that answers without a token (the credentials
/// travel in its body).
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[("POST", "/admin/login")];

/// Every `/admin` route with its OpenAPI description, relative to `/admin`.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(audit::list))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::update, users::delete))
        .routes(routes!(callbacks::list, callbacks::create))
        .routes(routes!(callbacks::search))
        .routes(routes!(callbacks::detail))
        .routes(routes!(callbacks::cancel))
        .routes(routes!(callbacks::reschedule))
        .routes(routes!(callbacks::recreate))
        .routes(routes!(callbacks::bulk_preview))
        .routes(routes!(callbacks::bulk_cancel))
        .routes(routes!(callbacks::export_summary))
        .routes(routes!(developer::errors))
        .routes(routes!(developer::validate_key))
        .routes(routes!(developer::cors_origins))
        .routes(routes!(queues::list))
        .routes(routes!(agents::list, agents::create))
        .routes(routes!(agents::update, agents::delete))
        .routes(routes!(agents::set_state))
        .routes(routes!(reload::reload))
        .routes(routes!(push::outbox))
        .routes(routes!(recordings::list))
        .routes(routes!(recordings::download))
        .routes(routes!(surveys::export))
        .merge(rules_routes())
}

/// ─── Extension point for the `rules` branch ───────────────────────────────────────────────
/// Number validation, capacity and region affinity rules (`rules.rs`) and Click-to-Call-In
/// groups (`groups.rs`) live in their own files beside this one; merge their routers here, e.g.
/// `OpenApiRouter::new().merge(rules::router()).merge(groups::router())`. Handlers take an
/// [`Admin`] (state and caller) and call `user.require(Permission::WriteCapacityRules)?` (and
/// friends) first.
fn rules_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(rules::router())
        .merge(groups::router())
}

/// For update bodies: a field that is present (even as `null`) is `Some`, so `null` can mean
/// "clear" (or "every queue") while an absent field means "unchanged".
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// 201 with the usual GES envelope, for administration creates.
pub(super) fn created(data: impl serde::Serialize) -> axum::response::Response {
    use axum::response::IntoResponse;
    (axum::http::StatusCode::CREATED, crate::api::ok(data)).into_response()
}

/// A listing's `limit` query parameter: `default` when absent, else 1 to 1000 (a 400 naming
/// the field otherwise).
pub(super) fn limit(given: Option<usize>, default: usize) -> Result<usize, crate::api::ApiError> {
    let limit = given.unwrap_or(default);
    if !(1..=1000).contains(&limit) {
        return Err(crate::api::ApiError::bad_request(
            "limit: must be 1 to 1000",
        ));
    }
    Ok(limit)
}

/// A listing's `from`/`to` filters: `to` before `from` is a 400 naming `to` (an empty list
/// would read as "nothing there").
pub(super) fn ordered_range(
    from: Option<chrono::DateTime<chrono::FixedOffset>>,
    to: Option<chrono::DateTime<chrono::FixedOffset>>,
) -> Result<(), crate::api::ApiError> {
    match (from, to) {
        (Some(from), Some(to)) if to < from => Err(crate::api::ApiError::bad_request(
            "to: must not be before from",
        )),
        _ => Ok(()),
    }
}

/// A file to download: its bytes with their content type and a `filename` for the browser.
pub(super) fn attachment(
    content_type: &str,
    filename: &str,
    bytes: Vec<u8>,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

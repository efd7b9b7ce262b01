//! The administration API (`/admin/…`): what the seed's Callback UI does, as JSON endpoints a
//! web UI can sit on. Every route except `POST /admin/login` needs a bearer token from login;
//! the API's authentication layer resolves it into an [`auth::AdminUser`], and each handler
//! checks the [`auth::Permission`] it needs and the queues the user may read.

pub mod auth;
pub mod groups;
pub mod rules;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ApiState;

pub use auth::{AdminAuth, AdminUser, Permission, Role};

/// Method and path of the only `/admin` route that answers without a token (the credentials
/// travel in its body).
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[("POST", "/admin/login")];

/// Every `/admin` route with its OpenAPI description, relative to `/admin`.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .merge(rules_routes())
}

/// ─── Extension point for the `rules` branch ───────────────────────────────────────────────
/// Number validation, capacity and region affinity rules (`rules.rs`) and Click-to-Call-In
/// groups (`groups.rs`) live in their own files beside this one; merge their routers here, e.g.
/// `OpenApiRouter::new().merge(rules::router()).merge(groups::router())`. Handlers take an
/// [`AdminUser`] and call `user.require(Permission::WriteCapacityRules)?` (and friends) first.
fn rules_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(rules::router())
        .merge(groups::router())
}

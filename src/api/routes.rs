//! The route table with its OpenAPI description, and the layers every request passes
//! (authentication, correlation ids, body limits, CORS).

use std::sync::Arc;

use axum::http::{HeaderValue, Method};
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::correlation::correlate;
use super::gate::{Credential, authenticate, credential};
use super::{
    ApiError, ApiState, admin, availability, callbacks, callin, captcha, push, queues,
    statistic_ex, stats,
};

/// The OpenAPI document's frame: title, security schemes; paths come from the routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "boomerang", description = "GES v3-style callback API and administration"),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route with its OpenAPI description: the public v3 API and the administration API.
/// Routes are only ever added through `routes!`, so the document cannot miss one.
pub fn api_routes() -> OpenApiRouter<ApiState> {
    let v3 = OpenApiRouter::new()
        .routes(routes!(callbacks::create_callback))
        .routes(routes!(callbacks::retrieve_callback))
        .routes(routes!(callbacks::query_callbacks))
        .routes(routes!(callbacks::cancel_callback))
        .routes(routes!(callbacks::reschedule_callback))
        .routes(routes!(availability::availability_route))
        .routes(routes!(callbacks::open_for_route))
        .routes(routes!(queues::queue_status))
        .routes(routes!(callin::create_call_in))
        .routes(routes!(queues::estimated_wait_time))
        .routes(routes!(stats::statistics))
        .routes(routes!(statistic_ex::get_statistic_ex))
        .routes(routes!(captcha::captcha_verify))
        .routes(routes!(push::publish));
    let mut api = OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .nest("/engagement/v3", v3)
        .nest("/admin", admin::router());
    document_credentials(api.get_openapi_mut());
    api
}

/// Gives every operation of `doc` the security requirement of the credential the gate asks of
/// it ([`credential`]), so that no route's attribute has to repeat it.
fn document_credentials(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::SecurityRequirement;
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("DELETE", &mut item.delete),
            ("OPTIONS", &mut item.options),
            ("HEAD", &mut item.head),
            ("PATCH", &mut item.patch),
            ("TRACE", &mut item.trace),
        ];
        for (method, op) in operations {
            let Some(op) = op else { continue };
            let scheme = match credential(method, path) {
                Credential::Nothing => continue,
                Credential::Session => "bearer",
                Credential::ApiKey => "api_key",
            };
            op.security = Some(vec![SecurityRequirement::new(scheme, Vec::<String>::new())]);
        }
    }
}

/// The OpenAPI document of [`api_routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// The API's routes with authentication, correlation ids, body limits and CORS.
pub fn router(state: ApiState) -> Router {
    let (routes, doc) = api_routes().split_for_parts();
    let doc = Arc::new(doc);
    let max_body = state.config.spec.api.max_body_bytes.max(1024) as usize;
    let origins: Vec<HeaderValue> = state
        .config
        .spec
        .api
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        // What GES clients send: the statistics proxy's `cache-control: max-age=N`, and a
        // correlation id of their own, which the correlation layer takes up.
        .allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderName::from_static("x-api-key"),
            axum::http::header::AUTHORIZATION,
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderName::from_static("x-correlation-id"),
        ])
        .expose_headers([axum::http::HeaderName::from_static("x-correlation-id")]);
    routes
        .route(
            OPENAPI_PATH,
            get(move || {
                let doc = doc.clone();
                async move { Json((*doc).clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        // Applied by the body extractors, so a route may set its own (the DNIS pool import).
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), correlate))
        .layer(cors)
        .with_state(state)
}

/// Where the OpenAPI document is served (to holders of an API key or an admin token: it maps
/// the administration surface, which anonymous callers have no need to learn).
pub const OPENAPI_PATH: &str = "/openapi.json";

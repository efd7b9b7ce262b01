//! Swagger UI for the OpenAPI document at `GET /docs`, working offline: its JavaScript and CSS
//! are compiled into the binary (crate `swagger-ui-dist`, Apache-2.0, which embeds the
//! swagger-ui release with `include_str!`; nothing is downloaded at build or run time).
//!
//! The page and its two assets are public (they are the generic Swagger UI); the document at
//! `/openapi.json` still wants an API key or an administration token, so the page asks for one,
//! keeps it in the browser tab's session storage and sends it as `x-api-key` with every request
//! it makes, the document's included.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use swagger_ui_dist::{ApiDefinition, OpenApiSource};

/// Where the page is served.
pub const DOCS_PATH: &str = "/docs";

/// The page: Swagger UI from the embedded assets, on the engine's own OpenAPI document.
const INDEX: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>boomerang API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<style>#key{margin:1em;font-family:sans-serif}#key input{width:24em}</style>
</head>
<body>
<form id="key">API key (or <code>Bearer</code> token): <input id="k" type="password" autocomplete="off">
<button type="submit">Use</button></form>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
const stored = () => sessionStorage.getItem("boomerang-api-key") || "";
document.getElementById("key").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("boomerang-api-key", document.getElementById("k").value.trim());
  load();
});
function load() {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    requestInterceptor: (req) => {
      const k = stored();
      if (k.startsWith("Bearer ")) { req.headers["Authorization"] = k; }
      else if (k) { req.headers["x-api-key"] = k; }
      return req;
    },
  });
}
load();
</script>
</body>
</html>
"##;

/// `GET /docs` and its assets, without authentication.
pub fn routes() -> Router {
    // Only the two assets are taken from the crate's router (its own index page is not served).
    let assets = swagger_ui_dist::generate_routes(ApiDefinition {
        uri_prefix: DOCS_PATH,
        api_definition: OpenApiSource::Uri(crate::api::OPENAPI_PATH),
        title: Some("boomerang API"),
    });
    let asset = move || {
        let assets = assets.clone();
        tower::service_fn(move |req: axum::extract::Request| {
            tower::ServiceExt::oneshot(assets.clone(), req)
        })
    };
    Router::new()
        .route(DOCS_PATH, get(index))
        .route_service("/docs/swagger-ui.css", asset())
        .route_service("/docs/swagger-ui-bundle.js", asset())
}

async fn index() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; script-src 'self' 'unsafe-inline'; \
                     style-src 'self' 'unsafe-inline'; img-src 'self' data:",
                ),
            ),
        ],
        INDEX,
    )
}

//! The gate: who may call (an administration session or an API key) and how often.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState, OPENAPI_PATH, admin, ratelimit};

/// The one gate every request passes: `/admin/…` needs a live bearer session (resolved into an
/// [`admin::AdminUser`] for the handlers), everything else an API key; only CORS preflights
/// and `POST /admin/login` pass without either.
pub(super) async fn authenticate(
    State(state): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Response {
    if req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let per_second = state.config.spec.api.rate_limit_per_second.max(1) as f64;
    // Who is calling, as the rate limiter counts them.
    let needs = credential(req.method().as_str(), &path);
    let caller = if needs != Credential::ApiKey {
        if needs == Credential::Nothing {
            let ip = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_default();
            let limited = state.limits.check(
                &format!("login:{ip}"),
                ratelimit::LOGINS_PER_SECOND,
                ratelimit::LOGIN_BURST,
                state.clock.now(),
            );
            return match limited {
                Ok(()) => next.run(req).await,
                Err(l) => too_many(l),
            };
        }
        let user = match admin::auth::bearer(req.headers()) {
            None => Err(admin::auth::AuthError::NoToken),
            Some(token) => state.admin.resolve(token),
        };
        match user {
            Ok(u) => {
                let who = format!("user:{}", u.name);
                req.extensions_mut().insert(u);
                who
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else {
        let key = req
            .headers()
            .get("x-api-key")
            .and_then(|k| state.key_name(k.as_bytes()));
        match key {
            Some(name) => {
                let who = format!("key:{name}");
                req.extensions_mut().insert(KeyName(name.to_string()));
                who
            }
            // The OpenAPI document also opens to an administration token.
            None if path == OPENAPI_PATH => {
                match admin::auth::bearer(req.headers()).map(|t| state.admin.resolve(t)) {
                    Some(Ok(u)) => format!("user:{}", u.name),
                    _ => return ApiError::unauthorized().into_response(),
                }
            }
            None => return ApiError::unauthorized().into_response(),
        }
    };
    if let Err(l) = state
        .limits
        .check(&caller, per_second, per_second, state.clock.now())
    {
        return too_many(l);
    }
    next.run(req).await
}

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Credential {
    /// Nothing: the login, whose credentials travel in its body.
    Nothing,
    /// An administration session: a bearer token from login.
    Session,
    /// An API key in `x-api-key`.
    ApiKey,
}

/// The credential `method` on `path` needs: the one rule the gate enforces and the OpenAPI
/// document states (`/admin/…` a session but for [`admin::PUBLIC_ROUTES`], the rest a key).
pub(super) fn credential(method: &str, path: &str) -> Credential {
    if !(path == "/admin" || path.starts_with("/admin/")) {
        Credential::ApiKey
    } else if admin::PUBLIC_ROUTES.contains(&(method, path)) {
        Credential::Nothing
    } else {
        Credential::Session
    }
}

/// The name of the API key a request came with (for per-key CAPTCHA enforcement).
#[derive(Debug, Clone)]
pub struct KeyName(pub String);

/// 429 with `Retry-After`.
fn too_many(l: ratelimit::Limited) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        2,
        format!("rate limit exceeded; retry in {} s", l.retry_after_seconds),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&l.retry_after_seconds.to_string()) {
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    resp
}

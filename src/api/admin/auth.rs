//! The administration API's authentication: the bearer token of a request resolved into an
//! [`AdminUser`] (the users, roles and sessions themselves are the domain's, in `crate::users`),
//! and the login, logout and `me` endpoints.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::api::{ApiError, ApiState, Body, Reply, ok};
pub use crate::users::{
    AdminAuth, AdminUser, AuthError, LoginFailed, Permission, Permissions, Role, UserRecord,
    check_hash, hash_password, valid_user_name, verify_password,
};

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadCredentials => ApiError::new(StatusCode::UNAUTHORIZED, 3, e.to_string()),
            AuthError::NoToken => ApiError::new(StatusCode::UNAUTHORIZED, 2, e.to_string()),
            AuthError::Expired => ApiError::new(StatusCode::UNAUTHORIZED, 4, e.to_string()),
            AuthError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, 1, e.to_string()),
            AuthError::QueueDenied(_) => ApiError::new(StatusCode::FORBIDDEN, 2, e.to_string()),
            AuthError::BadHash(_) | AuthError::Hashing(_) => ApiError::bad_request(e.to_string()),
            AuthError::Locked(_) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, 3, e.to_string()),
            AuthError::Busy(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, 3, e.to_string()),
        }
    }
}

impl AdminUser {
    /// `Ok` when the user holds `p`, otherwise a 403 naming it.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.permissions.has(p) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(p).into())
        }
    }

    /// `Ok` when the user may read `queue`, otherwise a 403 naming it.
    pub fn require_queue(&self, queue: &str) -> Result<(), ApiError> {
        if self.can_read_queue(queue) {
            Ok(())
        } else {
            Err(AuthError::QueueDenied(queue.to_string()).into())
        }
    }
}

/// What an administration handler starts from: the API state and the caller (without a session
/// the gate has answered 401).
pub struct Admin {
    /// The API state.
    pub s: ApiState,
    /// The caller, whose permissions the handler checks.
    pub user: AdminUser,
}

impl Admin {
    /// The context of a call made on `user`'s behalf by a caller with a session of its own (the
    /// web UI).
    pub fn new(s: ApiState, user: AdminUser) -> Self {
        Admin { s, user }
    }
}

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let user = AdminUser::from_request_parts(parts, state).await?;
        Ok(Admin::new(state.clone(), user))
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &axum::http::HeaderMap) -> Option<&str> {
    parts
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<ApiState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        if let Some(u) = parts.extensions.get::<AdminUser>() {
            return Ok(u.clone());
        }
        let token = bearer(&parts.headers).ok_or(AuthError::NoToken)?;
        Ok(state.admin.resolve(token)?)
    }
}

/// `POST /admin/login` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Opens a session: user name and password in, bearer token out. Failed logins are logged and
/// audited (`login.failed`, `login.locked`) with the client's address.
#[utoipa::path(post, path = "/login", tag = "admin",
    request_body = LoginBody,
    responses((status = 200, description = "`data.accessToken` is the bearer token"),
              (status = 401, description = "wrong user name or password"),
              (status = 429, description = "the account is locked after failed logins; `Retry-After`"),
              (status = 503, description = "too many logins at once; `Retry-After`")))]
pub async fn login(
    State(s): State<ApiState>,
    extensions: axum::http::Extensions,
    Body(b): Body<LoginBody>,
) -> Reply {
    let address = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    // Names that could not be users are not tracked (the table's keys stay short and valid).
    let name = if valid_user_name(&b.username) {
        b.username.clone()
    } else {
        String::new()
    };
    let token = match s.admin.login_guarded(&name, b.password).await {
        Ok(t) => t,
        Err(failed) => return Ok(refused_login(&s, &name, &address, failed).await),
    };
    let u = s.admin.resolve(&token)?;
    Ok(ok(json!({
        "accessToken": token,
        "tokenType": "Bearer",
        "idleTimeoutSeconds": s.admin.idle_timeout().num_seconds(),
        "user": me_view(&u),
    })))
}

/// Failed logins audited per second, engine-wide, beyond the burst.
const FAILED_LOGIN_AUDITS_PER_SECOND: f64 = 1.0;

/// Failed logins audited at once before the per-second budget applies.
const FAILED_LOGIN_AUDIT_BURST: f64 = 300.0;

/// Logs, audits and renders a refused login (with `Retry-After` when it has one).
async fn refused_login(s: &ApiState, name: &str, address: &str, failed: LoginFailed) -> Response {
    let LoginFailed { error, locks_for } = failed;
    match &error {
        AuthError::BadCredentials => {
            tracing::warn!(user = name, %address, "failed administration login");
            // Audited up to a budget (a flood of guesses under rotating names would otherwise
            // grow the audit log without end); beyond it, the log line above remains.
            let budget = s.limits.check(
                "audit:login.failed",
                FAILED_LOGIN_AUDITS_PER_SECOND,
                FAILED_LOGIN_AUDIT_BURST,
                s.clock.now(),
            );
            let mut docs = Vec::new();
            if budget.is_ok() {
                docs.push(super::audit::entry_as(
                    s,
                    name,
                    "login.failed",
                    json!({ "address": address }),
                ));
            }
            if let Some(lock) = locks_for {
                tracing::warn!(user = name, %address, seconds = lock.num_seconds(), "administration account locked");
                docs.push(super::audit::entry_as(
                    s,
                    name,
                    "login.locked",
                    json!({ "address": address, "seconds": lock.num_seconds() }),
                ));
            }
            // The refusal stands even when the audit cannot be stored (the log line remains).
            if !docs.is_empty() {
                let _ = super::audit::save(s, docs).await;
            }
        }
        AuthError::Locked(_) => {
            tracing::warn!(user = name, %address, "login refused: account locked");
        }
        AuthError::Busy(_) => {
            tracing::warn!(user = name, %address, "login refused: every password-check slot busy");
        }
        _ => {}
    }
    let retry = error.retry_after();
    let mut resp = ApiError::from(error).into_response();
    if let Some(secs) = retry
        && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    resp
}

/// Ends the caller's session.
#[utoipa::path(post, path = "/logout", tag = "admin",
    responses((status = 200, description = "the token no longer works"), (status = 401)))]
pub async fn logout(
    State(s): State<ApiState>,
    headers: axum::http::HeaderMap,
    _user: AdminUser,
) -> Reply {
    let token = bearer(&headers).ok_or(AuthError::NoToken)?;
    s.admin.logout(token);
    Ok(ok(json!({ "loggedOut": true })))
}

fn me_view(u: &AdminUser) -> serde_json::Value {
    json!({
        "name": u.name,
        "roles": u.roles,
        "permissions": u.permissions.list(),
        "queues": u.queues.as_ref().map(|q| q.iter().collect::<Vec<_>>()),
    })
}

/// Who the token belongs to, their roles, permissions and readable queues.
#[utoipa::path(get, path = "/me", tag = "admin",
    responses((status = 200, description = "the caller's roles and permissions"), (status = 401)))]
pub async fn me(user: AdminUser) -> Reply {
    Ok(ok(me_view(&user)))
}

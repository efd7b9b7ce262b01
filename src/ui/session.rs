//! The UI's session: login and logout pages, the session cookie (the administration's bearer
//! token, HttpOnly, SameSite=Strict, Secure behind TLS), the CSRF token every form carries, and
//! the [`UiUser`] extractor that turns an absent or expired session into the login page.

use axum::extract::{ConnectInfo, Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{page_error, render_status};
use crate::api::ApiState;
use crate::users::{AdminUser, AuthError, Permission, valid_user_name};

/// Name of the session cookie.
pub const COOKIE: &str = "boomerang_ui";

/// Name of the pre-session cookie of the login form (login CSRF: a login posted from another
/// site carries no such cookie, or not the token that goes with it).
pub const LOGIN_COOKIE: &str = "boomerang_login";

/// The token the login form carries for pre-session `secret`.
pub fn login_csrf_token(secret: &str) -> String {
    csrf_token(&format!("login:{secret}"))
}

/// The CSRF token of a session: derived from its secret token, so it needs no storage, cannot be
/// guessed without the (HttpOnly) cookie, and dies with the session.
pub fn csrf_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"boomerang-ui-csrf:");
    h.update(session_token.as_bytes());
    hex::encode(h.finalize())
}

/// The logged-in user of a UI request.
#[derive(Debug, Clone)]
pub struct UiUser {
    /// Who, with roles and queues (the same as the JSON API resolves).
    pub user: AdminUser,
    /// The session token (from the cookie).
    pub token: String,
    /// The CSRF token forms must send back.
    pub csrf: String,
}

/// What templates know of the user: name, roles, and what the buttons need.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    /// Login name.
    pub name: String,
    /// Roles, as words.
    pub roles: Vec<String>,
    /// May create, cancel, reschedule, recreate, bulk-cancel.
    pub write_callbacks: bool,
    /// May export the bulk-cancel summary.
    pub export: bool,
    /// May change agents' states.
    pub manage_agents: bool,
}

impl UiUser {
    /// The template view.
    pub fn view(&self) -> UserView {
        let p = self.user.permissions;
        UserView {
            name: self.user.name.clone(),
            roles: self.user.roles.iter().map(|r| format!("{r:?}")).collect(),
            write_callbacks: p.has(Permission::WriteCallbacks),
            export: p.has(Permission::ExportCallbacks),
            manage_agents: p.has(Permission::ManageAgents),
        }
    }

    /// `Ok` when the user holds `p`, else the 403 page saying which permission is missing.
    pub fn require(&self, p: Permission) -> Result<(), Response> {
        if self.user.permissions.has(p) {
            Ok(())
        } else {
            Err(self.forbidden(&AuthError::Forbidden(p).to_string()))
        }
    }

    /// `Ok` when the user may read `queue`, else the 403 page.
    pub fn require_queue(&self, queue: &str) -> Result<(), Response> {
        if self.user.can_read_queue(queue) {
            Ok(())
        } else {
            Err(self.forbidden(&AuthError::QueueDenied(queue.to_string()).to_string()))
        }
    }

    /// The 403 page: "Not allowed: …".
    pub fn forbidden(&self, why: &str) -> Response {
        page_error(
            StatusCode::FORBIDDEN,
            &format!("Not allowed: {why}."),
            Some(self),
        )
    }

    /// `Ok` when `sent` is this session's CSRF token (compared in constant time).
    pub fn check_csrf(&self, sent: &str) -> Result<(), Response> {
        if bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(page_error(
                StatusCode::FORBIDDEN,
                "This form did not come from your session (or your session changed): reload the \
                 page and try again.",
                Some(self),
            ))
        }
    }
}

/// The session token in the request's cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// The value of cookie `name`, if any.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether the request reached us over TLS (a terminating proxy says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value holding `token` (empty: the cookie is removed).
fn session_cookie(token: &str, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    let age = if token.is_empty() { "; Max-Age=0" } else { "" };
    format!("{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict{secure}{age}")
}

/// To the login page (for htmx requests, through `HX-Redirect`), saying why.
fn to_login(parts: &Parts, why: &str) -> Response {
    let target = format!("/ui/login?why={why}");
    let mut resp = if parts.headers.contains_key("hx-request") {
        let mut r = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            r.headers_mut().insert("hx-redirect", v);
        }
        r
    } else {
        Redirect::to(&target).into_response()
    };
    if why == "expired"
        && let Ok(v) = HeaderValue::from_str(&session_cookie("", over_tls(&parts.headers)))
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

impl FromRequestParts<ApiState> for UiUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, Response> {
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(to_login(parts, "login"));
        };
        match s.admin.resolve(&token) {
            Ok(user) => Ok(UiUser {
                csrf: csrf_token(&token),
                user,
                token,
            }),
            Err(_) => Err(to_login(parts, "expired")),
        }
    }
}

/// `GET /ui/login` query.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Why the user is here: `expired`, `logout`, `login`.
    #[serde(default)]
    why: Option<String>,
}

/// The login page with a fresh pre-session cookie and its token in the form.
fn login_view(
    status: StatusCode,
    headers: &HeaderMap,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let mut resp = render_status(
        status,
        "login.html",
        minijinja::context! {
            title => "Log in", error => error, notice => notice,
            login_csrf => login_csrf_token(&secret),
        },
    );
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    let c = format!("{LOGIN_COOKIE}={secret}; Path=/ui/login; HttpOnly; SameSite=Strict{secure}");
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// The login form (with the reason the user was sent here).
pub async fn login_page(
    headers: HeaderMap,
    q: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let notice = match q.ok().and_then(|Query(q)| q.why).as_deref() {
        Some("expired") => Some("Your session has expired; please log in again."),
        Some("logout") => Some("You are logged out."),
        _ => None,
    };
    login_view(StatusCode::OK, &headers, None, notice)
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    /// The token of the login form's pre-session cookie.
    #[serde(default)]
    csrf: String,
}

/// Checks the password as `POST /admin/login` does (rate limit per address, lockout, the
/// password-check slots) and opens a session in the cookie.
pub async fn login(
    State(s): State<ApiState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(f): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).map(|c| login_csrf_token(&c));
    let genuine = expected.is_some_and(|t| bool::from(t.as_bytes().ct_eq(f.csrf.as_bytes())));
    if !genuine {
        return login_view(
            StatusCode::FORBIDDEN,
            &headers,
            Some(
                "This login form did not come from this site (or it expired): please log in again.",
            ),
            None,
        );
    }
    let address = extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|a| a.0.ip().to_string())
        .unwrap_or_default();
    if let Err(l) = s.limits.check(
        &format!("login:{address}"),
        crate::api::ratelimit::LOGINS_PER_SECOND,
        crate::api::ratelimit::LOGIN_BURST,
        s.clock.now(),
    ) {
        return login_view(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            Some(&format!(
                "Too many logins from your address; retry in {} s.",
                l.retry_after_seconds
            )),
            None,
        );
    }
    let name = if valid_user_name(&f.username) {
        f.username.clone()
    } else {
        String::new()
    };
    match s.admin.login_guarded(&name, f.password).await {
        Ok(token) => {
            let mut resp = Redirect::to("/ui/").into_response();
            if let Ok(v) = HeaderValue::from_str(&session_cookie(&token, over_tls(&headers))) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(failed) => {
            let (status, message) = match &failed.error {
                AuthError::BadCredentials => {
                    tracing::warn!(user = name, %address, "failed UI login");
                    audit_failed(&s, &name, &address).await;
                    (
                        StatusCode::UNAUTHORIZED,
                        "Wrong user name or password.".to_string(),
                    )
                }
                AuthError::Locked(secs) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Too many failed logins for this account; retry in {secs} s."),
                ),
                AuthError::Busy(secs) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("Too many logins at once; retry in {secs} s."),
                ),
                other => (StatusCode::UNAUTHORIZED, format!("Login refused: {other}.")),
            };
            login_view(status, &headers, Some(&message), None)
        }
    }
}

/// Audits a failed login as the API does, within the same engine-wide budget.
async fn audit_failed(s: &ApiState, name: &str, address: &str) {
    if s.limits
        .check("audit:login.failed", 1.0, 300.0, s.clock.now())
        .is_err()
    {
        return;
    }
    let store = &s.store;
    let doc = crate::audit::entry(
        s.clock.now(),
        name,
        "login.failed",
        json!({ "address": address, "via": "ui" }),
    );
    if let Err(e) = store.save_documents(vec![doc]).await {
        tracing::warn!(error = %e, "failed login not audited");
    }
}

/// Ends the session and removes the cookie.
pub async fn logout(
    State(s): State<ApiState>,
    headers: HeaderMap,
    p: super::posted::Posted,
) -> Response {
    let user = &p.user;
    s.admin.logout(&user.token);
    let mut resp = Redirect::to("/ui/login?why=logout").into_response();
    if let Ok(v) = HeaderValue::from_str(&session_cookie("", over_tls(&headers))) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

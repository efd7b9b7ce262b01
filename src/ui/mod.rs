//! The Callback UI: the administration in a browser, served by the engine at `/ui/`.
//!
//! Pages are rendered on the server from minijinja templates compiled into the binary, with
//! htmx (vendored in `static/`, served from `/ui/static/`) for the partial updates: no Node.js
//! to build or run, no JavaScript of our own, and the same domain services the JSON API calls
//! (callbacks, users, rules, agents), so the UI never allows what the API would refuse. The
//! session is the administration's own (a login opens an [`crate::users::AdminAuth`] session):
//! its token travels in an HttpOnly, SameSite=Strict cookie; every state change carries a CSRF
//! token derived from it; every answer carries a Content-Security-Policy without inline scripts.

// The checks return the refusal page itself as their error (it is what the handler answers,
// one level up), so the large `Response` error variant is intended here.
#![allow(clippy::result_large_err)]

mod admin;
mod bulk;
mod callback;
mod callbacks;
mod callin;
mod fields;
mod posted;
mod rules;
mod session;
mod tools;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, ApiState};
pub use session::{COOKIE, UiUser, csrf_token};

/// Where the UI lives.
pub const BASE: &str = "/ui";

/// The Content-Security-Policy of every UI answer: our own scripts and styles only (htmx is
/// served from here; no inline script or style, no eval), no framing, forms only to us.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The UI's routes on `state` (merged beside the API's; they carry no API-key or bearer layer:
/// the session cookie is checked by [`UiUser`]).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(home))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/static/{file}", get(asset))
        .route("/ui/callbacks", get(callbacks::list).post(callback::create))
        .route("/ui/callbacks/export.csv", get(callbacks::export))
        .route("/ui/callbacks/new", get(callback::new_form))
        .route("/ui/callbacks/slots", get(callback::slots))
        .route("/ui/callbacks/bulk", get(bulk::form))
        .route("/ui/callbacks/bulk/preview", post(bulk::preview))
        .route("/ui/callbacks/bulk/confirm", post(bulk::confirm))
        .route("/ui/callbacks/bulk/{id}/summary.csv", get(bulk::csv))
        .route("/ui/callbacks/{id}", get(callback::detail))
        // cancel, reschedule, recreate (GET: the slot forms of the last two).
        .route(
            "/ui/callbacks/{id}/{action}",
            get(callback::slot_form).post(callback::act),
        )
        .route("/ui/queues", get(tools::queues))
        .route("/ui/agents", get(tools::agents))
        .route("/ui/agents/{id}/state", post(tools::agent_state))
        .route("/ui/audit", get(tools::audit))
        .route("/ui/rules", get(rules::page))
        .route("/ui/rules/{kind}/new", get(rules::new_form))
        .route("/ui/rules/{kind}", post(rules::save))
        .route("/ui/rules/{kind}/{name}", get(rules::edit_form))
        .route("/ui/rules/{kind}/{name}/delete", post(rules::delete))
        .route("/ui/rules/queues/{queue}", post(rules::assign))
        .route("/ui/callin", get(callin::page))
        .route("/ui/callin/groups/new", get(callin::new_form))
        .route("/ui/callin/groups", post(callin::save))
        .route("/ui/callin/groups/{name}", get(callin::edit_form))
        .route("/ui/callin/groups/{name}/import", post(callin::import))
        .route("/ui/developer", get(admin::developer))
        .route("/ui/developer/key", post(admin::validate_key))
        .route("/ui/users", get(admin::users).post(admin::save_user))
        .route("/ui/users/{name}/delete", post(admin::delete_user))
        .route(
            "/ui/{*rest}",
            get(|| async { page_error(StatusCode::NOT_FOUND, "There is no such page.", None) }),
        )
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// The UI as mounted in the engine: under `/` and `/ui/`, beside `api` (the JSON API).
pub fn with_api(state: ApiState) -> Router {
    crate::api::router(state.clone()).merge(router(state))
}

async fn home(user: UiUser) -> Response {
    // The first tab the user's roles open.
    Redirect::to(
        tabs(&user)
            .first()
            .map(|t| t.href)
            .unwrap_or("/ui/callbacks"),
    )
    .into_response()
}

/// Headers on every UI answer: the CSP, no sniffing, no framing, no referrer, no caching of
/// pages (they hold callback data).
async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/ui/static/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The vendored and own static files, compiled in.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static str, &str) = match file.as_str() {
        "htmx.min.js" => (
            include_str!("static/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "ui.css" => (include_str!("static/ui.css"), "text/css; charset=utf-8"),
        _ => return page_error(StatusCode::NOT_FOUND, "There is no such file.", None),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A tab of the navigation bar.
#[derive(Debug, Clone, Serialize)]
pub struct Tab {
    /// Label.
    pub label: &'static str,
    /// Link.
    pub href: &'static str,
}

/// The tabs `user`'s roles open, in the guide's order.
pub fn tabs(user: &UiUser) -> Vec<Tab> {
    use crate::users::Permission::*;
    const TABS: [(crate::users::Permission, &str, &str); 8] = [
        (ReadCallbacks, "Callback", "/ui/callbacks"),
        (ReadRules, "Call-In", "/ui/callin"),
        (UseTools, "Queues", "/ui/queues"),
        (ReadRules, "Rules", "/ui/rules"),
        (UseTools, "Agents", "/ui/agents"),
        (DeveloperTools, "Developer", "/ui/developer"),
        (ManageUsers, "Users", "/ui/users"),
        (ReadAudit, "Audit", "/ui/audit"),
    ];
    TABS.into_iter()
        .filter(|(p, ..)| user.user.permissions.has(*p))
        .map(|(_, label, href)| Tab { label, href })
        .collect()
}

/// The compiled templates (parsed once).
fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, text) in [
            ("base.html", include_str!("templates/base.html")),
            ("login.html", include_str!("templates/login.html")),
            ("error.html", include_str!("templates/error.html")),
            ("callbacks.html", include_str!("templates/callbacks.html")),
            ("rows.html", include_str!("templates/rows.html")),
            ("detail.html", include_str!("templates/detail.html")),
            ("new.html", include_str!("templates/new.html")),
            ("slots.html", include_str!("templates/slots.html")),
            ("bulk.html", include_str!("templates/bulk.html")),
            ("queues.html", include_str!("templates/queues.html")),
            (
                "queue_table.html",
                include_str!("templates/queue_table.html"),
            ),
            ("agents.html", include_str!("templates/agents.html")),
            ("audit.html", include_str!("templates/audit.html")),
            ("rules.html", include_str!("templates/rules.html")),
            ("rule_table.html", include_str!("templates/rule_table.html")),
            ("callin.html", include_str!("templates/callin.html")),
            ("developer.html", include_str!("templates/developer.html")),
            ("users.html", include_str!("templates/users.html")),
            ("rule_edit.html", include_str!("templates/rule_edit.html")),
            ("group_edit.html", include_str!("templates/group_edit.html")),
        ] {
            if let Err(e) = env.add_template(name, text) {
                tracing::error!(template = name, error = %e, "UI template does not parse");
            }
        }
        env
    })
}

/// Renders template `name` with `ctx`; a template error becomes a 500 page (logged).
pub fn render(name: &str, ctx: minijinja::Value) -> Response {
    render_status(StatusCode::OK, name, ctx)
}

/// As [`render`], with `status`.
pub fn render_status(status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    match templates().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "UI template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>The page could not be rendered.</p>"),
            )
                .into_response()
        }
    }
}

/// An error page with `message` (and the navigation when a user is known).
pub fn page_error(status: StatusCode, message: &str, user: Option<&UiUser>) -> Response {
    let ctx = minijinja::context! {
        title => "Error",
        status => status.as_u16(),
        message => message,
        user => user.map(|u| u.view()),
        tabs => user.map(tabs).unwrap_or_default(),
        csrf => user.map(|u| u.csrf.clone()),
    };
    render_status(status, "error.html", ctx)
}

/// What every page of a logged-in user has: its title, the active tab, the user, the tabs and
/// the CSRF token (merged into each page's own context with `..chrome(…)`).
pub fn chrome(user: &UiUser, title: &str, active: &str) -> minijinja::Value {
    minijinja::context! {
        title => title,
        active => active,
        user => user.view(),
        tabs => tabs(user),
        csrf => user.csrf,
    }
}

/// Where an edit page is: its template, its tab, and how its title reads (`"{what} {name}"`
/// for a saved record, else `new`).
pub struct EditPage {
    /// Template.
    pub template: &'static str,
    /// Active tab.
    pub tab: &'static str,
    /// What is edited (`Rule`, `Group`).
    pub what: &'static str,
    /// Title of the form that creates one.
    pub new: &'static str,
}

impl EditPage {
    /// The form of `original` (none: a new record) showing `form` (`f` in the template), an
    /// `error` line when the last save was refused (400), and the page's `extra` context.
    pub fn render(
        &self,
        user: &UiUser,
        original: Option<&str>,
        form: serde_json::Value,
        error: Option<String>,
        extra: minijinja::Value,
    ) -> Response {
        let title = match original {
            Some(name) => format!("{} {name}", self.what),
            None => self.new.to_string(),
        };
        let ctx = minijinja::context! {
            original => original,
            f => form,
            ..minijinja::context! { ..extra, ..chrome(user, &title, self.tab) }
        };
        let ctx = minijinja::context! { error => error, ..ctx };
        render_status(status_of(&error), self.template, ctx)
    }
}

/// 400 when a form shows an `error`, else 200.
pub fn status_of(error: &Option<String>) -> StatusCode {
    if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// What the JSON API said when it refused: its message, for a form's error line (a 403 reads
/// "Not allowed: …").
pub fn refusal_text(e: &ApiError) -> String {
    if e.status == StatusCode::FORBIDDEN {
        format!("Not allowed: {}.", e.message)
    } else {
        format!("Not saved: {}.", e.message)
    }
}

/// The page for a refusal of the JSON API, with its status and message.
pub fn refusal(user: &UiUser, e: &ApiError) -> Response {
    page_error(e.status, &refusal_text(e), Some(user))
}

/// The `data` of an administration handler's answer: the UI calls the JSON API's own handlers
/// for its changes, so it refuses exactly what they refuse, with their messages.
pub fn api_data(answer: Result<Response, ApiError>) -> Result<serde_json::Value, ApiError> {
    answer.map(|r| {
        r.extensions()
            .get::<crate::api::error::SuccessData>()
            .map(|d| d.0.clone())
            .unwrap_or_default()
    })
}

/// Records a change made through the UI in the audit log (a failure is logged: the change
/// itself is already durable).
pub async fn audit(s: &ApiState, user: &UiUser, action: &str, detail: serde_json::Value) {
    let store = &s.store;
    let doc = crate::audit::entry(s.clock.now(), &user.user.name, action, detail);
    if let Err(e) = store.save_documents(vec![doc]).await {
        tracing::error!(error = %e, action, "UI change not audited");
    }
}

/// `?done=`: what was just done, for a notice.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    /// A short word the page turns into its notice.
    #[serde(default)]
    pub done: Option<String>,
}

impl DoneQuery {
    /// The `done` word of a query that may not parse.
    pub fn of(
        q: Result<axum::extract::Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
    ) -> Option<String> {
        q.ok().and_then(|axum::extract::Query(q)| q.done)
    }
}

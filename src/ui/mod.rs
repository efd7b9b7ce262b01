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
mod callbacks;
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
use serde::Serialize;

use crate::api::ApiState;
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
        .route(
            "/ui/callbacks",
            get(callbacks::list).post(callbacks::create),
        )
        .route("/ui/callbacks/new", get(callbacks::new_form))
        .route("/ui/callbacks/slots", get(callbacks::slots))
        .route("/ui/callbacks/bulk", get(callbacks::bulk_form))
        .route("/ui/callbacks/bulk/preview", post(callbacks::bulk_preview))
        .route("/ui/callbacks/bulk/confirm", post(callbacks::bulk_confirm))
        .route(
            "/ui/callbacks/bulk/{id}/summary.csv",
            get(callbacks::bulk_csv),
        )
        .route("/ui/callbacks/{id}", get(callbacks::detail))
        .route("/ui/callbacks/{id}/cancel", post(callbacks::cancel))
        .route(
            "/ui/callbacks/{id}/reschedule",
            get(callbacks::reschedule_form).post(callbacks::reschedule),
        )
        .route("/ui/callbacks/{id}/recreate", post(callbacks::recreate))
        .route("/ui/queues", get(tools::queues))
        .route("/ui/agents", get(tools::agents))
        .route("/ui/agents/{id}/state", post(tools::agent_state))
        .route("/ui/audit", get(tools::audit))
        .route("/ui/rules", get(admin::rules))
        .route("/ui/callin", get(admin::callin))
        .route("/ui/developer", get(admin::developer))
        .route("/ui/users", get(admin::users))
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
    let p = user.user.permissions;
    let mut out = Vec::new();
    if p.has(ReadCallbacks) {
        out.push(Tab {
            label: "Callback",
            href: "/ui/callbacks",
        });
    }
    if p.has(ReadRules) {
        out.push(Tab {
            label: "Call-In",
            href: "/ui/callin",
        });
    }
    if p.has(UseTools) {
        out.push(Tab {
            label: "Queues",
            href: "/ui/queues",
        });
    }
    if p.has(ReadRules) {
        out.push(Tab {
            label: "Rules",
            href: "/ui/rules",
        });
    }
    if p.has(UseTools) {
        out.push(Tab {
            label: "Agents",
            href: "/ui/agents",
        });
    }
    if p.has(DeveloperTools) {
        out.push(Tab {
            label: "Developer",
            href: "/ui/developer",
        });
    }
    if p.has(ManageUsers) {
        out.push(Tab {
            label: "Users",
            href: "/ui/users",
        });
    }
    if p.has(ReadAudit) {
        out.push(Tab {
            label: "Audit",
            href: "/ui/audit",
        });
    }
    out
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

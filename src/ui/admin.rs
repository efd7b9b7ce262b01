//! The Developer tab (recent errors by correlation id, API key validation, CORS origins, push
//! configuration and the push outbox) and the Users tab (create, edit roles, queues and
//! password, delete). Each calls the JSON API's own handler (`api::admin::developer`,
//! `api::admin::push`, `api::admin::users`) as the logged-in user: the same checks, the same
//! refusals, the same audit entries.

use std::collections::BTreeSet;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::fields::{all, field, when};
use super::posted::Posted;
use super::{UiUser, api_data, chrome, refusal, refusal_text, render, render_status};
use crate::api::ApiState;
use crate::api::Body;
use crate::api::Q;
use crate::api::admin::Admin;
use crate::api::admin::developer::{KeyBody, validate_key as api_validate_key};
use crate::api::admin::push::{OutboxQuery, outbox};
use crate::api::admin::users::{self as api_users, NewUserBody, UpdateUserBody};
use crate::users::{Permission, Role};

/// `GET /ui/developer?correlation=&outbox=`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct DevQuery {
    #[serde(default)]
    correlation: Option<String>,
    /// Outbox state: `pending`, `delivered`, `failed`, or empty for every one.
    #[serde(default)]
    outbox: Option<String>,
}

/// The Developer tab.
pub async fn developer(
    State(s): State<ApiState>,
    user: UiUser,
    q: Result<Query<DevQuery>, QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    dev_view(&s, &user, q, None).await
}

async fn dev_view(s: &ApiState, user: &UiUser, q: DevQuery, key: Option<String>) -> Response {
    if let Err(r) = user.require(Permission::DeveloperTools) {
        return r;
    }
    let wanted = q
        .correlation
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let errors: Vec<_> = s
        .errors
        .search(wanted)
        .into_iter()
        .take(200)
        .map(|e| {
            json!({
                "id": e.correlation_id, "at": when(e.at),
                "request": format!("{} {}", e.method, e.uri), "status": e.status, "message": e.message,
            })
        })
        .collect();
    let state = q.outbox.clone().filter(|o| !o.trim().is_empty());
    let oq = OutboxQuery {
        state,
        limit: Some(100),
    };
    let answer = outbox(Admin::new(s.clone(), user.user.clone()), Q(oq)).await;
    let (entries, outbox_error) = match api_data(answer) {
        Ok(v) => (v, None),
        Err(e) => (serde_json::Value::Null, Some(refusal_text(&e))),
    };
    let push = &s.config.spec.push;
    let webhooks: Vec<_> = s
        .config
        .spec
        .queues
        .iter()
        .filter(|q| user.user.can_read_queue(&q.name))
        .filter_map(|q| {
            q.push_webhook_url
                .as_ref()
                .map(|u| json!({ "queue": q.name, "url": u, "own_secret": q.push_webhook_secret.is_some() }))
        })
        .collect();
    render(
        "developer.html",
        context! {
            errors => errors,
            q => q,
            cors => s.config.spec.api.cors_origins.clone(),
            key_result => key,
            push => json!({
                "signed": push.webhook_secret.is_some(), "max_attempts": push.max_attempts,
                "initial_backoff": push.initial_backoff_seconds, "max_backoff": push.max_backoff_seconds,
                "timeout": push.timeout_seconds,
                "fcm": push.fcm.as_ref().map(|f| json!({ "base_url": f.base_url, "project": f.project_id })),
            }),
            webhooks => webhooks,
            outbox => entries,
            outbox_error => outbox_error,
            ..chrome(user, "Developer", "/ui/developer")
        },
    )
}

/// `POST /ui/developer/key`: whether a key would be accepted in `x-api-key`, and its name.
pub async fn validate_key(State(s): State<ApiState>, p: Posted) -> Response {
    let user = &p.user;
    let body = KeyBody {
        key: p.field("key").to_string(),
    };
    let answer = api_validate_key(Admin::new(s.clone(), user.user.clone()), Body(body)).await;
    let verdict = match api_data(answer) {
        Ok(v) => match v["name"].as_str() {
            Some(name) => format!("Valid: this is the API key “{name}”."),
            None => "Not valid: no configured API key matches.".to_string(),
        },
        Err(e) => return refusal(user, &e),
    };
    dev_view(&s, user, DevQuery::default(), Some(verdict)).await
}

/// The roles a form may tick, as their names.
const ROLES: [(&str, Role); 4] = [
    ("Administrator", Role::Administrator),
    ("Supervisor", Role::Supervisor),
    ("Monitor", Role::Monitor),
    ("Developer", Role::Developer),
];

/// The Users page (Administrators): the list, each with its edit form, and the create form.
pub async fn users(
    State(s): State<ApiState>,
    user: UiUser,
    q: Result<Query<super::DoneQuery>, QueryRejection>,
) -> Response {
    let notice = match super::DoneQuery::of(q).as_deref() {
        Some("created") => Some("User created."),
        Some("saved") => Some("User saved."),
        Some("deleted") => Some("User deleted: their sessions are ended."),
        _ => None,
    };
    users_view(&s, &user, notice, None)
}

fn users_view(
    s: &ApiState,
    user: &UiUser,
    notice: Option<&str>,
    error: Option<String>,
) -> Response {
    if let Err(r) = user.require(Permission::ManageUsers) {
        return r;
    }
    let list: Vec<_> = s
        .admin
        .users()
        .iter()
        .map(|u| {
            json!({
                "name": u.name,
                "roles": u.roles.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>(),
                "queues": u.queues.as_ref().map(|q| q.iter().cloned().collect::<Vec<_>>().join(", ")),
                "source": if u.from_config { "file" } else { "administration" },
                "editable": !u.from_config,
            })
        })
        .collect();
    render_status(
        super::status_of(&error),
        "users.html",
        context! {
            users => list,
            roles => ROLES.map(|(n, _)| n),
            notice => notice,
            error => error,
            ..chrome(user, "Users", "/ui/users")
        },
    )
}

/// `POST /ui/users`: creates a user, or changes the one named by `original` (roles, queues,
/// and the password when one is given), through the API's handlers.
pub async fn save_user(State(s): State<ApiState>, p: Posted) -> Response {
    let (user, f) = (&p.user, &p.fields);
    let roles: Vec<Role> = all(f, "role")
        .into_iter()
        .filter_map(|n| ROLES.iter().find(|(r, _)| *r == n).map(|(_, r)| *r))
        .collect();
    let queues: Option<BTreeSet<String>> = Some(
        field(f, "queues")
            .split([',', '\n'])
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_string)
            .collect::<BTreeSet<_>>(),
    )
    .filter(|q| !q.is_empty());
    let password = field(f, "password").to_string();
    let original = field(f, "original").trim().to_string();
    let au = user.user.clone();
    let (answer, done) = if original.is_empty() {
        let b = NewUserBody {
            name: field(f, "name").trim().to_string(),
            password,
            roles,
            queues,
        };
        (
            api_users::create(Admin::new(s.clone(), au), Body(b)).await,
            "created",
        )
    } else {
        let b = UpdateUserBody {
            password: Some(password).filter(|p| !p.is_empty()),
            roles: Some(roles),
            queues: Some(queues),
        };
        let answer = api_users::update(Admin::new(s.clone(), au), Path(original), Body(b)).await;
        (answer, "saved")
    };
    match api_data(answer) {
        Ok(_) => Redirect::to(&format!("/ui/users?done={done}")).into_response(),
        Err(e) if e.status == axum::http::StatusCode::FORBIDDEN => refusal(user, &e),
        Err(e) => {
            let mut page = users_view(&s, user, None, Some(refusal_text(&e)));
            *page.status_mut() = e.status;
            page
        }
    }
}

/// `POST /ui/users/{name}/delete`: deletes a user and ends their sessions.
pub async fn delete_user(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    p: Posted,
) -> Response {
    let user = &p.user;
    let answer = api_users::delete(Admin::new(s, user.user.clone()), Path(name)).await;
    match api_data(answer) {
        Ok(_) => Redirect::to("/ui/users?done=deleted").into_response(),
        Err(e) => refusal(user, &e),
    }
}

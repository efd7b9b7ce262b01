//! Read-mostly tabs: rules (number validation with "test a number", capacity, region affinity,
//! with the queues using them), Call-In groups, the Developer tab (recent errors by correlation
//! id, CORS origins) and Users. Each reads the same domain books the JSON API does, with the
//! same permissions; editing stays in the API for now.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::{UiUser, render, tabs};
use crate::api::ApiState;
use crate::users::Permission;

/// A rule as the page lists it: name, queues using it (those the user may read), its settings.
#[derive(Debug, Serialize)]
struct RuleRow {
    name: String,
    queues: Vec<String>,
    settings: String,
}

fn rows<T: Serialize>(user: &UiUser, list: Vec<crate::rules::book::Listed<T>>) -> Vec<RuleRow> {
    list.into_iter()
        .map(|l| {
            let mut v = serde_json::to_value(&l.rule).unwrap_or_default();
            let name = v
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            if let Some(m) = v.as_object_mut() {
                m.remove("name");
            }
            RuleRow {
                name,
                queues: l
                    .queues
                    .into_iter()
                    .filter(|q| user.user.can_read_queue(q))
                    .collect(),
                settings: serde_json::to_string_pretty(&v).unwrap_or_default(),
            }
        })
        .collect()
}

/// `GET /ui/rules?rule=&number=`: "test a number" against a number rule.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct TestQuery {
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    number: Option<String>,
}

/// The rules page.
pub async fn rules(
    State(s): State<ApiState>,
    user: UiUser,
    q: Result<Query<TestQuery>, QueryRejection>,
) -> Response {
    if let Err(r) = user.require(Permission::ReadRules) {
        return r;
    }
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let (number, capacity, affinity) = match &s.rules {
        Some(b) => (
            rows(&user, b.rules::<crate::rules::number::NumberRuleSpec>()),
            rows(&user, b.rules::<crate::rules::book::CapacityRule>()),
            rows(
                &user,
                b.rules::<crate::rules::affinity::RegionAffinityRule>(),
            ),
        ),
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    let verdict = match (&s.rules, q.rule.as_deref(), q.number.as_deref()) {
        (Some(b), Some(rule), Some(n)) if !n.trim().is_empty() => {
            Some(match b.test_number(rule, n.trim()) {
                Ok(Ok(e164)) => format!("Valid: {e164} passes rule “{rule}”."),
                Ok(Err(e)) => format!("Refused by rule “{rule}”: {e}."),
                Err(e) => format!("Cannot test: {e}."),
            })
        }
        _ => None,
    };
    render(
        "rules.html",
        context! {
            title => "Rules",
            active => "/ui/rules",
            user => user.view(),
            tabs => tabs(&user),
            csrf => user.csrf,
            number => number,
            capacity => capacity,
            affinity => affinity,
            q => q,
            verdict => verdict,
        },
    )
}

/// The Call-In groups page.
pub async fn callin(State(s): State<ApiState>, user: UiUser) -> Response {
    if let Err(r) = user.require(Permission::ReadRules) {
        return r;
    }
    let groups: Vec<_> = s
        .groups
        .as_ref()
        .map(|g| g.list())
        .unwrap_or_default()
        .into_iter()
        .map(|g| {
            serde_json::json!({
                "name": g.group.name,
                "dnis": g.group.dnis.iter().map(|d| d.number.clone()).collect::<Vec<_>>().join(", "),
                "dnis_count": g.group.dnis.len(),
                "codes": g.group.generate_access_code,
                "code_length": g.group.access_code_length,
                "expiry": g.group.expiry_seconds,
                "unique": g.group.unique_dnis,
                "source": format!("{:?}", g.source),
            })
        })
        .collect();
    render(
        "callin.html",
        context! {
            title => "Call-In",
            active => "/ui/callin",
            user => user.view(),
            tabs => tabs(&user),
            csrf => user.csrf,
            groups => groups,
        },
    )
}

/// `GET /ui/developer?correlation=`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ErrorsQuery {
    #[serde(default)]
    correlation: Option<String>,
}

/// The Developer tab: recent API errors (by correlation id) and the CORS origins.
pub async fn developer(
    State(s): State<ApiState>,
    user: UiUser,
    q: Result<Query<ErrorsQuery>, QueryRejection>,
) -> Response {
    if let Err(r) = user.require(Permission::DeveloperTools) {
        return r;
    }
    let q = q.map(|Query(q)| q).unwrap_or_default();
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
            serde_json::json!({
                "id": e.correlation_id, "at": e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                "request": format!("{} {}", e.method, e.uri), "status": e.status, "message": e.message,
            })
        })
        .collect();
    render(
        "developer.html",
        context! {
            title => "Developer",
            active => "/ui/developer",
            user => user.view(),
            tabs => tabs(&user),
            csrf => user.csrf,
            errors => errors,
            q => q,
            cors => s.config.spec.api.cors_origins.clone(),
        },
    )
}

/// The Users page (Administrators).
pub async fn users(State(s): State<ApiState>, user: UiUser) -> Response {
    if let Err(r) = user.require(Permission::ManageUsers) {
        return r;
    }
    let list: Vec<_> = s
        .admin
        .users()
        .iter()
        .map(|u| {
            serde_json::json!({
                "name": u.name,
                "roles": u.roles.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(", "),
                "queues": u.queues.as_ref().map(|q| q.iter().cloned().collect::<Vec<_>>().join(", ")),
                "source": if u.from_config { "file" } else { "administration" },
            })
        })
        .collect();
    render(
        "users.html",
        context! {
            title => "Users",
            active => "/ui/users",
            user => user.view(),
            tabs => tabs(&user),
            csrf => user.csrf,
            users => list,
        },
    )
}

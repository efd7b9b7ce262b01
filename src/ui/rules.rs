//! The Rules tab: number validation rules (with "test a number"), capacity rules (the weekly
//! grid and the JSON statement), region affinity rules, and their assignment to queues. Every
//! change calls the JSON API's own handler (`api::admin::rules`, `api::admin::crud`) as the
//! logged-in user, so the UI refuses exactly what the API refuses, with its message.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::fields::{all, field};
use super::posted::Posted;
use super::{UiUser, api_data, chrome, page_error, refusal, refusal_text, render};
use crate::api::admin::crud::{self, Named};
use crate::api::admin::rules::{AssignBody, Rules, assign_rules};
use crate::api::{ApiError, ApiState, Body};
use crate::rules::affinity::RegionAffinityRule;
use crate::rules::book::{BookRule, CapacityRule, Listed};
use crate::rules::number::NumberRuleSpec;
use crate::users::Permission;

/// The days of the capacity grid, as the statement names them.
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A rule as the page lists it: name, queues using it (those the user may read), its settings.
#[derive(Debug, Serialize)]
struct RuleRow {
    name: String,
    queues: Vec<String>,
    settings: String,
}

fn rows<T: Serialize>(user: &UiUser, list: Vec<Listed<T>>) -> Vec<RuleRow> {
    list.into_iter()
        .map(|l| {
            let mut v = serde_json::to_value(&l.rule).unwrap_or_default();
            let name = v["name"].as_str().unwrap_or_default().to_string();
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
    #[serde(default)]
    done: Option<String>,
}

/// What the user may change, for the buttons.
fn may(user: &UiUser) -> serde_json::Value {
    let p = user.user.permissions;
    json!({
        "number": p.has(Permission::WriteNumberRules),
        "capacity": p.has(Permission::WriteCapacityRules),
        "affinity": p.has(Permission::WriteRegionRules),
    })
}

/// The rules page.
pub async fn page(
    State(s): State<ApiState>,
    user: UiUser,
    q: Result<Query<TestQuery>, QueryRejection>,
) -> Response {
    if let Err(r) = user.require(Permission::ReadRules) {
        return r;
    }
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let b = &s.rules;
    let (number, capacity, affinity) = (
        rows(&user, b.rules::<NumberRuleSpec>()),
        rows(&user, b.rules::<CapacityRule>()),
        rows(&user, b.rules::<RegionAffinityRule>()),
    );
    let assignments = b
        .assignments()
        .into_iter()
        .filter(|(q, _)| user.user.can_read_queue(q))
        .collect::<BTreeMap<_, _>>();
    let verdict = match (q.rule.as_deref(), q.number.as_deref()) {
        (Some(rule), Some(n)) if !n.trim().is_empty() => {
            Some(match b.test_number(rule, n.trim()) {
                Ok(Ok(e164)) => format!("Valid: {e164} passes rule “{rule}”."),
                Ok(Err(e)) => format!("Refused by rule “{rule}”: {e}."),
                Err(e) => format!("Cannot test: {e}."),
            })
        }
        _ => None,
    };
    let notice = q.done.as_deref().map(|d| match d {
        "deleted" => "Rule deleted.",
        "assigned" => "Queue rules saved.",
        _ => "Rule saved.",
    });
    render(
        "rules.html",
        context! {
            number => number,
            capacity => capacity,
            affinity => affinity,
            assignments => assignments,
            may => may(&user),
            q => q,
            verdict => verdict,
            notice => notice,
            ..chrome(&user, "Rules", "/ui/rules")
        },
    )
}

/// The permission that changes rules of `kind` (`number`, `capacity`, `affinity`).
fn write_permission(kind: &str) -> Option<Permission> {
    match kind {
        "number" => Some(Permission::WriteNumberRules),
        "capacity" => Some(Permission::WriteCapacityRules),
        "affinity" => Some(Permission::WriteRegionRules),
        _ => None,
    }
}

/// The kind of a path, with the check that `user` may change such rules.
fn writable(user: &UiUser, kind: &str) -> Result<(), Response> {
    match write_permission(kind) {
        Some(p) => user.require(p),
        None => Err(page_error(
            StatusCode::NOT_FOUND,
            "There is no such kind of rule.",
            Some(user),
        )),
    }
}

/// The edit form of a rule of `kind`; `form` holds the fields to show (the saved rule, or what
/// was sent when it was refused).
fn edit_view(
    user: &UiUser,
    kind: &str,
    original: Option<&str>,
    form: serde_json::Value,
    error: Option<String>,
) -> Response {
    let duration = form["duration"].as_u64().unwrap_or(60) as u32;
    let times: Vec<String> = (0..24 * 60)
        .step_by(duration.max(30) as usize)
        .map(|m| format!("{:02}:{:02}", m / 60, m % 60))
        .collect();
    let page = super::EditPage {
        template: "rule_edit.html",
        tab: "/ui/rules",
        what: "Rule",
        new: "New rule",
    };
    let extra = context! { kind => kind, days => DAYS, times => times };
    page.render(user, original, form, error, extra)
}

/// The fields of a saved rule as the form shows them.
fn form_of(kind: &str, rule: serde_json::Value) -> serde_json::Value {
    let lines = |v: &serde_json::Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    match kind {
        "number" => json!({
            "name": rule["name"], "countries": lines(&rule["countries"]),
            "patterns": lines(&rule["blockedPatterns"]),
        }),
        "capacity" => json!({
            "name": rule["name"], "duration": rule["capacity"]["duration"],
            "days": rule["capacity"]["days"],
            "statement": serde_json::to_string_pretty(&rule["capacity"]).unwrap_or_default(),
        }),
        _ => json!({
            "name": rule["name"], "preferred": lines(&rule["preferred"]),
            "fallback": lines(&rule["fallback"]), "ignored": lines(&rule["ignored"]),
        }),
    }
}

/// `GET /ui/rules/{kind}/new`.
pub async fn new_form(user: UiUser, Path(kind): Path<String>) -> Response {
    if let Err(r) = writable(&user, &kind) {
        return r;
    }
    let blank = json!({ "duration": 60, "statement": "{\"days\": {}, \"duration\": 60}" });
    edit_view(&user, &kind, None, blank, None)
}

/// `GET /ui/rules/{kind}/{name}`: the edit form of a saved rule.
pub async fn edit_form(
    State(s): State<ApiState>,
    user: UiUser,
    Path((kind, name)): Path<(String, String)>,
) -> Response {
    if let Err(r) = writable(&user, &kind) {
        return r;
    }
    let au = user.user.clone();
    let found: Result<serde_json::Value, ApiError> = match kind.as_str() {
        "number" => Rules::<NumberRuleSpec>::get(&s, &au, &name).map(|r| json!(r.rule)),
        "capacity" => Rules::<CapacityRule>::get(&s, &au, &name).map(|r| json!(r.rule)),
        _ => Rules::<RegionAffinityRule>::get(&s, &au, &name).map(|r| json!(r.rule)),
    };
    match found {
        Ok(rule) => edit_view(&user, &kind, Some(&name), form_of(&kind, rule), None),
        Err(e) => refusal(&user, &e),
    }
}

/// The lines (or comma-separated items) of a text area.
fn items(text: &str) -> Vec<String> {
    text.split(['\n', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The rule a form describes, as the API's body (its JSON), and the fields to show again.
fn rule_of(kind: &str, f: &[(String, String)]) -> Result<serde_json::Value, String> {
    let name = field(f, "name").trim();
    match kind {
        "number" => Ok(json!({
            "name": name,
            "countries": items(&field(f, "countries").to_uppercase()),
            "blockedPatterns": field(f, "patterns").lines().map(str::trim)
                .filter(|l| !l.is_empty()).collect::<Vec<_>>(),
        })),
        "capacity" => {
            let statement: serde_json::Value = if field(f, "mode") == "json" {
                serde_json::from_str(field(f, "statement"))
                    .map_err(|e| format!("JSON statement: {e}."))?
            } else {
                let duration: u32 = field(f, "duration").parse().unwrap_or(60);
                let mut days = serde_json::Map::new();
                for (k, v) in f {
                    let (Some(cell), v) = (k.strip_prefix("c_"), v.trim()) else {
                        continue;
                    };
                    let Some((day, time)) = cell.split_once('_') else {
                        continue;
                    };
                    if v.is_empty() {
                        continue;
                    }
                    let n: i64 = v
                        .parse()
                        .map_err(|_| format!("Grid: {day} {time}: “{v}” is not a number."))?;
                    days.entry(day.to_string())
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                        .map(|m| m.insert(time.to_string(), json!(n)));
                }
                json!({ "days": days, "duration": duration })
            };
            Ok(json!({ "name": name, "capacity": statement }))
        }
        _ => Ok(json!({
            "name": name,
            "preferred": items(field(f, "preferred")),
            "fallback": items(field(f, "fallback")),
            "ignored": items(field(f, "ignored")),
        })),
    }
}

/// Creates (no `original`) or replaces a rule of kind `R` through the API's handlers.
async fn save_as<R: BookRule + for<'de> Deserialize<'de>>(
    s: ApiState,
    user: &UiUser,
    original: &str,
    body: serde_json::Value,
) -> Result<(), ApiError> {
    let rule: R = serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let au = user.user.clone();
    let answer = if original.is_empty() {
        crud::create::<Rules<R>>(State(s), au, Body(rule)).await
    } else {
        let name = Path(original.to_string());
        crud::update::<Rules<R>>(State(s), au, name, Body(rule)).await
    };
    api_data(answer).map(|_| ())
}

/// `POST /ui/rules/{kind}`: creates or replaces a rule (the field `original` names the rule
/// replaced).
pub async fn save(State(s): State<ApiState>, Path(kind): Path<String>, p: Posted) -> Response {
    let (user, f) = (&p.user, &p.fields);
    if write_permission(&kind).is_none() {
        return writable(user, &kind)
            .err()
            .unwrap_or_else(|| StatusCode::NOT_FOUND.into_response());
    }
    let original = field(f, "original").to_string();
    let shown = |rule: &serde_json::Value| {
        let mut v = form_of(&kind, rule.clone());
        if kind == "capacity" {
            v["statement"] = json!(field(f, "statement"));
        }
        v
    };
    let rule = match rule_of(&kind, f) {
        Ok(r) => r,
        Err(e) => {
            let blank = json!({ "name": field(f, "name"), "statement": field(f, "statement") });
            return edit_view(user, &kind, opt(&original), blank, Some(e));
        }
    };
    let saved = match kind.as_str() {
        "number" => save_as::<NumberRuleSpec>(s, user, &original, rule.clone()).await,
        "capacity" => save_as::<CapacityRule>(s, user, &original, rule.clone()).await,
        _ => save_as::<RegionAffinityRule>(s, user, &original, rule.clone()).await,
    };
    match saved {
        Ok(()) => Redirect::to("/ui/rules?done=saved").into_response(),
        Err(e) if e.status == StatusCode::FORBIDDEN => refusal(user, &e),
        Err(e) => {
            let status = e.status;
            let mut resp = edit_view(
                user,
                &kind,
                opt(&original),
                shown(&rule),
                Some(refusal_text(&e)),
            );
            *resp.status_mut() = status;
            resp
        }
    }
}

fn opt(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

/// `POST /ui/rules/{kind}/{name}/delete`.
pub async fn delete(
    State(s): State<ApiState>,
    Path((kind, name)): Path<(String, String)>,
    p: Posted,
) -> Response {
    let user = &p.user;
    let (au, n) = (user.user.clone(), Path(name));
    let answer = match kind.as_str() {
        "number" => crud::delete::<Rules<NumberRuleSpec>>(State(s), au, n).await,
        "capacity" => crud::delete::<Rules<CapacityRule>>(State(s), au, n).await,
        "affinity" => crud::delete::<Rules<RegionAffinityRule>>(State(s), au, n).await,
        _ => Err(ApiError::not_found("there is no such kind of rule")),
    };
    match api_data(answer) {
        Ok(_) => Redirect::to("/ui/rules?done=deleted").into_response(),
        Err(e) => refusal(user, &e),
    }
}

/// `POST /ui/rules/queues/{queue}`: assigns or clears the rules whose select the form has
/// (empty = none), through `PUT /admin/rules/queues/{queue}`'s handler.
pub async fn assign(State(s): State<ApiState>, Path(queue): Path<String>, p: Posted) -> Response {
    let (user, f) = (&p.user, &p.fields);
    let pick = |k: &str| {
        f.iter()
            .any(|(n, _)| n == k)
            .then(|| all(f, k).first().map(|v| v.to_string()))
    };
    let b = AssignBody {
        number_rule: pick("number_rule"),
        capacity_rule: pick("capacity_rule"),
        affinity_rule: pick("affinity_rule"),
    };
    let answer = assign_rules(State(s), user.user.clone(), Path(queue), Body(b)).await;
    match api_data(answer) {
        Ok(_) => Redirect::to("/ui/rules?done=assigned").into_response(),
        Err(e) => refusal(user, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::capacity::CapacityStatement;
    use crate::ui::fields::form_fields;

    #[test]
    fn the_grid_becomes_the_statement() {
        let f = form_fields(
            b"name=Peak&mode=grid&duration=60&c_mon_09%3A00=5&c_mon_10%3A00=&c_tue_09%3A00=2",
        );
        let rule = rule_of("capacity", &f).unwrap();
        let st: CapacityStatement = serde_json::from_value(rule["capacity"].clone()).unwrap();
        assert_eq!(st.duration, 60);
        assert_eq!(st.days["mon"]["09:00"], 5);
        assert!(!st.days["mon"].contains_key("10:00"));
        assert_eq!(st.days["tue"]["09:00"], 2);
        let bad = form_fields(b"name=P&mode=grid&c_mon_09%3A00=many");
        assert!(rule_of("capacity", &bad).unwrap_err().contains("mon 09:00"));
    }
}

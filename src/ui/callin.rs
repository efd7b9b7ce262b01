//! The Call-In tab: Click-to-Call-In groups (create and edit: DNIS list, CSV import, access
//! codes, expiry, unique DNIS) and the call-in request records (filtered by state and creation
//! time, sorted, in pages of 500). Changes and reads call the JSON API's own handlers
//! (`api::admin::groups`) as the logged-in user, so the UI refuses what the API refuses.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde_json::{Value, json};

use super::fields::{field, form_fields, parse_time, ticked};
use super::posted::Posted;
use super::{UiUser, api_data, chrome, refusal, refusal_text, render_status};
use crate::api::Q;
use crate::api::admin::Admin;
use crate::api::admin::crud;
use crate::api::admin::groups::{GroupBody, Groups, RecordsQuery, import_dnis, list_records};
use crate::api::{ApiError, ApiState, Body};
use crate::callin::DnisEntry;
use crate::users::Permission;

/// The Call-In page: groups, then the request records filtered as asked.
pub async fn page(State(s): State<ApiState>, user: UiUser, RawQuery(raw): RawQuery) -> Response {
    if let Err(r) = user.require(Permission::ReadRules) {
        return r;
    }
    let f = form_fields(raw.unwrap_or_default().as_bytes());
    let groups =
        api_data(crud::list::<Groups>(State(s.clone()), user.user.clone())).unwrap_or_default();
    let p = user.user.permissions;
    let (records, total, records_error) = if p.has(Permission::ReadCallIn) {
        match records(&s, &user, &f).await {
            Ok((r, t)) => (r, t, None),
            Err(e) => (Value::Null, 0, Some(e)),
        }
    } else {
        (Value::Null, 0, None)
    };
    let notice = match field(&f, "done") {
        "saved" => Some("Group saved."),
        "imported" => Some("DNIS list imported."),
        _ => None,
    };
    render_status(
        if records_error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "callin.html",
        context! {
            groups => groups,
            write => p.has(Permission::WriteCallInGroups),
            read_records => p.has(Permission::ReadCallIn),
            records => records,
            total => total,
            records_error => records_error,
            rq => json!({
                "state": field(&f, "state"), "from": field(&f, "from"), "to": field(&f, "to"),
                "sort": field(&f, "sort"), "order": field(&f, "order"),
            }),
            notice => notice,
            ..chrome(&user, "Call-In", "/ui/callin")
        },
    )
}

/// The records the filters ask for, through `GET /admin/callin/records`'s handler.
async fn records(
    s: &ApiState,
    user: &UiUser,
    f: &[(String, String)],
) -> Result<(Value, u64), String> {
    let time = |k: &str, what: &str| match field(f, k).trim() {
        "" => Ok(None),
        t => parse_time(t)
            .map(|t| Some(t.fixed_offset()))
            .ok_or_else(|| format!("{what}: “{t}” is not a date and time.")),
    };
    let word = |k: &str| Some(field(f, k).trim()).filter(|v| !v.is_empty());
    let q = json!({ "state": word("state"), "sort": word("sort"), "order": word("order") });
    let mut q: RecordsQuery = serde_json::from_value(q).map_err(|e| format!("Filters: {e}."))?;
    q.from = time("from", "From")?;
    q.to = time("to", "To")?;
    let answer = list_records(Admin::new(s.clone(), user.user.clone()), Q(q)).await;
    let data = api_data(answer).map_err(|e| refusal_text(&e))?;
    let total = data["total"].as_u64().unwrap_or(0);
    Ok((data["records"].clone(), total))
}

/// The group form's fields as the page shows them again.
fn group_form(f: &[(String, String)]) -> Value {
    json!({
        "name": field(f, "name"), "dnis": field(f, "dnis"),
        "generate_access_code": ticked(f, "generate_access_code"),
        "access_code_length": field(f, "access_code_length"),
        "expiry_seconds": field(f, "expiry_seconds"),
        "unique_dnis": ticked(f, "unique_dnis"),
    })
}

fn edit_view(
    user: &UiUser,
    original: Option<&str>,
    form: Value,
    error: Option<String>,
) -> Response {
    let page = super::EditPage {
        template: "group_edit.html",
        tab: "/ui/callin",
        what: "Group",
        new: "New call-in group",
    };
    page.render(user, original, form, error, context! {})
}

/// `GET /ui/callin/groups/new`.
pub async fn new_form(user: UiUser) -> Response {
    if let Err(r) = user.require(Permission::WriteCallInGroups) {
        return r;
    }
    let blank = json!({ "access_code_length": 6, "expiry_seconds": 30 });
    edit_view(&user, None, blank, None)
}

/// `GET /ui/callin/groups/{name}`: the edit form, with the CSV import.
pub async fn edit_form(
    State(s): State<ApiState>,
    user: UiUser,
    Path(name): Path<String>,
) -> Response {
    if let Err(r) = user.require(Permission::WriteCallInGroups) {
        return r;
    }
    let g = match api_data(crud::get::<Groups>(
        State(s),
        user.user.clone(),
        Path(name.clone()),
    )) {
        Ok(g) => g,
        Err(e) => return refusal(&user, &e),
    };
    let dnis: Vec<String> = g["dnis"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    let n = d["number"].as_str().unwrap_or_default();
                    match d["description"].as_str().unwrap_or_default() {
                        "" => n.to_string(),
                        desc => format!("{n},{desc}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let form = json!({
        "name": g["name"], "dnis": dnis.join("\n"),
        "generate_access_code": g["generateAccessCode"], "access_code_length": g["accessCodeLength"],
        "expiry_seconds": g["expirySeconds"], "unique_dnis": g["uniqueDnis"], "source": g["source"],
    });
    edit_view(&user, Some(&name), form, None)
}

/// The DNIS lines of the form (`number[,description]` per line).
fn dnis_of(text: &str) -> Vec<DnisEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (number, description) = l.split_once(',').unwrap_or((l, ""));
            DnisEntry {
                number: number.trim().to_string(),
                description: description.trim().to_string(),
            }
        })
        .collect()
}

/// `POST /ui/callin/groups`: creates a group, or replaces the one named by `original`, through
/// the API's handlers (their checks: limits, unique DNIS across groups, read-only groups).
pub async fn save(State(s): State<ApiState>, p: Posted) -> Response {
    let (user, f) = (&p.user, &p.fields);
    let number = |k: &str, what: &str| {
        field(f, k)
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("{what}: give a whole number."))
    };
    let original = field(f, "original").to_string();
    let body = number("access_code_length", "Access code length").and_then(|len| {
        Ok(GroupBody {
            name: field(f, "name").trim().to_string(),
            dnis: dnis_of(field(f, "dnis")),
            generate_access_code: ticked(f, "generate_access_code"),
            access_code_length: u8::try_from(len)
                .map_err(|_| "Access code length: 4 to 12 digits.".to_string())?,
            expiry_seconds: number("expiry_seconds", "Expiry")?,
            unique_dnis: ticked(f, "unique_dnis"),
        })
    });
    let opt = Some(original.as_str()).filter(|o| !o.is_empty());
    let body = match body {
        Ok(b) => b,
        Err(e) => return edit_view(user, opt, group_form(f), Some(e)),
    };
    let au = user.user.clone();
    let answer = match opt {
        None => crud::create::<Groups>(State(s), au, Body(body)).await,
        Some(o) => crud::update::<Groups>(State(s), au, Path(o.to_string()), Body(body)).await,
    };
    match api_data(answer) {
        Ok(_) => Redirect::to("/ui/callin?done=saved").into_response(),
        Err(e) if e.status == StatusCode::FORBIDDEN => refusal(user, &e),
        Err(e) => {
            let mut page = edit_view(user, opt, group_form(f), Some(refusal_text(&e)));
            *page.status_mut() = e.status;
            page
        }
    }
}

/// `POST /ui/callin/groups/{name}/import`: a CSV file (`multipart/form-data`, field `file`)
/// replaces the group's DNIS pool, through `POST /admin/callin/groups/{name}/dnis/import`'s
/// handler (every bad row reported with its line number, then nothing imported).
pub async fn import(State(s): State<ApiState>, Path(name): Path<String>, p: Posted) -> Response {
    let user = &p.user;
    let part = |k: &str| p.parts.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(file) = part("file").filter(|f| !f.is_empty()) else {
        let e = ApiError::bad_request("file: choose a CSV file (number,description per line)");
        return refusal(user, &e);
    };
    let answer = import_dnis(
        Admin::new(s, user.user.clone()),
        Path(name.clone()),
        Bytes::from(file),
    )
    .await;
    match api_data(answer) {
        Ok(_) => Redirect::to("/ui/callin?done=imported").into_response(),
        Err(e) => refusal(user, &e),
    }
}

//! `/admin/callin/…`: the Tools tab's Click-To-Call-In Config (groups, their DNIS pool and
//! access code settings, CSV bulk import) and the Call-In tab's request records.
//!
//! Groups are read with `ReadRules` (every role; the guide gives Developer, Supervisor and
//! Monitor read-only access) and changed with `WriteCallInGroups` (Administrator). Records need
//! `ReadCallIn` (Administrator, Developer). Groups from the configuration file are listed with
//! `source: config` and cannot be changed here (409).

use axum::extract::{DefaultBodyLimit, Path};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::crud::{self, Named, record};
use super::{Admin, AdminUser, Permission};
use crate::api::{ApiError, ApiState, Q, Reply, ok};
use crate::callin::group::CallInGroup;
use crate::callin::{
    CallInRequest, CallInState, DnisEntry, GroupBookError, GroupSource, GroupView, RecordColumn,
    RecordQuery,
};
use crate::store::Document;

/// Largest CSV file accepted by the pool import, whatever `api.max_body_bytes` says: a full pool
/// of 10,000 numbers with 32-character descriptions fits.
pub const MAX_CSV_BYTES: usize = 2 << 20;

/// The Click-to-Call-In routes, relative to `/admin`.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(group_routes())
        .merge(
            OpenApiRouter::new()
                .routes(routes!(import_dnis))
                .layer(DefaultBodyLimit::max(MAX_CSV_BYTES)),
        )
        .routes(routes!(list_records))
}

fn group_error(e: GroupBookError) -> ApiError {
    let message = crud::with_field(e.field(), &e);
    match e {
        GroupBookError::Unknown(_) => ApiError::not_found(message),
        GroupBookError::Exists(_) | GroupBookError::ReadOnly(_) => ApiError::conflict(message),
        GroupBookError::Rename { .. } | GroupBookError::Invalid(_) | GroupBookError::Csv(_) => {
            ApiError::bad_request(message)
        }
        GroupBookError::Store(_) => ApiError::internal(format!("{message}; nothing was changed")),
        GroupBookError::NotRecorded(_) => ApiError::internal(message),
    }
}

/// The HTTP side of call-in groups: their routes are [`crud`]'s over the group book.
pub struct Groups;

impl Named for Groups {
    type Body = GroupBody;
    type Out = GroupOut;
    type Saved = GroupOut;
    const ACTION: &'static str = "callin_group";
    const BODY_KEY: &'static str = "group";
    const WRITE: Permission = Permission::WriteCallInGroups;

    fn list(s: &ApiState, _: &AdminUser) -> Result<Vec<GroupOut>, ApiError> {
        Ok(s.groups.list().into_iter().map(out).collect())
    }

    fn get(s: &ApiState, _: &AdminUser, name: &str) -> Result<GroupOut, ApiError> {
        Ok(out(s.groups.get(name).map_err(group_error)?))
    }

    async fn create(s: &ApiState, b: GroupBody, also: Vec<Document>) -> Result<GroupOut, ApiError> {
        let v = s.groups.create(b.into(), also).await;
        Ok(out(v.map_err(group_error)?))
    }

    async fn update(
        s: &ApiState,
        name: &str,
        b: GroupBody,
        also: Vec<Document>,
    ) -> Result<GroupOut, ApiError> {
        let v = s.groups.update(name, b.into(), also).await;
        Ok(out(v.map_err(group_error)?))
    }

    async fn delete(s: &ApiState, name: &str, also: Vec<Document>) -> Result<(), ApiError> {
        s.groups.delete(name, also).await.map_err(group_error)
    }
}

/// A group as the API writes it (camelCase; the configuration file's `callin_groups` entries
/// have the same fields in snake_case).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupBody {
    /// Name: letters, digits and symbols, no spaces; immutable once saved.
    pub name: String,
    /// DNIS pool: 1 to 10,000 numbers in E.164 (`+` optional, ≤ 16 characters), each with an
    /// optional description of at most 32 characters.
    pub dnis: Vec<DnisEntry>,
    /// Give each request a random access code.
    #[serde(default)]
    pub generate_access_code: bool,
    /// Digits of the access code, 4–12.
    #[serde(default = "crate::callin::group::d_len")]
    pub access_code_length: u8,
    /// Seconds a request may match, 10–1800.
    #[serde(default = "crate::callin::group::d_expiry")]
    pub expiry_seconds: u32,
    /// Do not hand a number out again while a live request holds it.
    #[serde(default)]
    pub unique_dnis: bool,
}

impl From<GroupBody> for CallInGroup {
    fn from(b: GroupBody) -> Self {
        CallInGroup {
            name: b.name,
            dnis: b.dnis,
            generate_access_code: b.generate_access_code,
            access_code_length: b.access_code_length,
            expiry_seconds: b.expiry_seconds,
            unique_dnis: b.unique_dnis,
        }
    }
}

/// A group as listed: its fields and where it is defined.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupOut {
    #[serde(flatten)]
    group: GroupBody,
    source: GroupSource,
}

impl From<CallInGroup> for GroupBody {
    fn from(g: CallInGroup) -> Self {
        GroupBody {
            name: g.name,
            dnis: g.dnis,
            generate_access_code: g.generate_access_code,
            access_code_length: g.access_code_length,
            expiry_seconds: g.expiry_seconds,
            unique_dnis: g.unique_dnis,
        }
    }
}

fn out(v: GroupView) -> GroupOut {
    GroupOut {
        group: v.group.into(),
        source: v.source,
    }
}

crud::handlers! {
    Groups, body = GroupBody, tag = "callin", path = "/callin/groups",
    item = "/callin/groups/{name}", name = "group name", routes = group_routes;
    /// Every Click-to-Call-In group.
    list list_groups((status = 200, description = "`data`: groups with `source` (`config` or `admin`)"));
    /// Creates a group; its name cannot change afterwards.
    create create_group((status = 201), (status = 400, description = "a limit is broken; the message names the field"),
        (status = 409, description = "the name is taken"));
    /// One group.
    get get_group((status = 200), (status = 404));
    /// Replaces a group's pool and settings (the name in the body must be the group's); live
    /// requests keep their numbers and codes.
    update update_group((status = 200), (status = 400), (status = 404), (status = 409, description = "defined in the configuration file"));
    /// Deletes a group: no new requests; requests already handed out still match until they expire.
    delete delete_group((status = 200), (status = 404), (status = 409, description = "defined in the configuration file"));
}

/// Replaces a group's DNIS pool from a CSV file sent as the body (`number,description` per
/// line; the description may be empty; one group per file). Every bad row is reported with its
/// line number and then nothing is imported.
#[utoipa::path(post, path = "/callin/groups/{name}/dnis/import", tag = "callin",
    request_body(content = String, content_type = "text/csv"),
    params(("name" = String, Path, description = "group name")),
    responses((status = 200, description = "the group with its new pool"),
              (status = 400, description = "`file: … line N: …` for every bad row"),
              (status = 404), (status = 409)))]
pub async fn import_dnis(
    Admin { s, user }: Admin,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Reply {
    user.require(Permission::WriteCallInGroups)?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request(format!("file: not UTF-8 text: {e}")))?;
    let rows = text.lines().filter(|l| !l.trim().is_empty()).count();
    let also = record(
        &s,
        &user,
        "callin_group.import",
        json!({ "name": &name, "rows": rows }),
    );
    let v = s
        .groups
        .import_csv(&name, text, also)
        .await
        .map_err(group_error)?;
    Ok(ok(out(v)))
}

/// Sort order of the records list.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Smallest first.
    Asc,
    /// Largest first (the default).
    #[default]
    Desc,
}

/// `GET /callin/records` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecordsQuery {
    /// `PENDING`, `COMPLETED`, `EXPIRED` or `CANCELLED`.
    #[param(value_type = Option<String>)]
    pub state: Option<CallInState>,
    /// Created at or after (ISO 8601 with offset).
    pub from: Option<DateTime<FixedOffset>>,
    /// Created before (ISO 8601 with offset).
    pub to: Option<DateTime<FixedOffset>>,
    /// Column: `id`, `state`, `created` (default), `ani`, `dnis`, `expiry`, `group`.
    #[param(value_type = Option<String>)]
    pub sort: Option<RecordColumn>,
    /// `asc` or `desc` (default).
    #[param(value_type = Option<String>)]
    pub order: Option<Order>,
    /// Records to skip (default 0).
    pub offset: Option<usize>,
    /// Page size, 1–500 (default 500, the Call-In tab's page).
    pub limit: Option<usize>,
}

/// A record as the Call-In tab lists it (the access code is not shown).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordOut {
    id: Uuid,
    state: CallInState,
    time_created: DateTime<Utc>,
    ani: Option<String>,
    dnis: String,
    expiry_time: DateTime<Utc>,
    group_name: String,
    matched_at: Option<DateTime<Utc>>,
}

fn record_out(r: CallInRequest) -> RecordOut {
    RecordOut {
        id: r.id,
        state: r.state,
        time_created: r.created_at,
        ani: r.ani,
        dnis: r.dnis,
        expiry_time: r.expires_at,
        group_name: r.group,
        matched_at: r.matched_at,
    }
}

/// The last 5,000 call-in requests, filtered by state and creation time, sorted by a column
/// and paged (500 per page).
#[utoipa::path(get, path = "/callin/records", tag = "callin", params(RecordsQuery),
    responses((status = 200, description = "`data.total` and `data.records`"), (status = 400), (status = 403)))]
pub async fn list_records(Admin { s, user }: Admin, Q(q): Q<RecordsQuery>) -> Reply {
    user.require(Permission::ReadCallIn)?;
    let limit = q.limit.unwrap_or(500);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: must be 1 to 500, got {limit}"
        )));
    }
    super::ordered_range(q.from, q.to)?;
    let page = s.callin.query_records(&RecordQuery {
        state: q.state,
        from: q.from.map(|t| t.with_timezone(&Utc)),
        to: q.to.map(|t| t.with_timezone(&Utc)),
        sort: q.sort.unwrap_or_default(),
        descending: matches!(q.order.unwrap_or_default(), Order::Desc),
        offset: q.offset.unwrap_or(0),
        limit,
    });
    let records: Vec<RecordOut> = page.records.into_iter().map(record_out).collect();
    Ok(ok(json!({ "total": page.total, "records": records })))
}

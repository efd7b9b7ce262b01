//! The audit log: every administrative change, durable, with who made it, when and what.
//! Handlers of other admin files record theirs with [`audit`] (or put [`entry`] in the same
//! `save_documents` call as the change, so both are stored in one transaction).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::{AdminUser, Permission};
use crate::api::{ApiError, ApiState, ok, query};
use crate::store::Document;

/// Document kind of audit entries in the store.
pub const DOC_KIND: &str = "admin_audit";

/// One administrative change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Sortable id: the time in nanoseconds, a sequence number for changes at the same instant,
    /// then a random part.
    pub id: String,
    /// When (the engine's clock).
    pub at: DateTime<Utc>,
    /// Who (login name).
    pub user: String,
    /// What kind of change, e.g. `user.create`, `callback.cancel`.
    pub action: String,
    /// The change's particulars (ids, fields, counts).
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// Orders entries written at the same clock reading (a manual clock, a coarse system clock).
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The stored form of an audit entry, for saving it together with the change it records.
pub fn entry(state: &ApiState, user: &AdminUser, action: &str, detail: Value) -> Document {
    entry_as(state, &user.name, action, detail)
}

/// As [`entry`], for an event without a logged-in user (a failed login: the attempted name).
pub fn entry_as(state: &ApiState, user: &str, action: &str, detail: Value) -> Document {
    let at = state.clock.now();
    let nanos = at.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let e = AuditEntry {
        id: format!(
            "{nanos:020}-{:010}-{}",
            SEQUENCE.fetch_add(1, Ordering::Relaxed),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
        at,
        user: user.to_string(),
        action: action.to_string(),
        detail,
    };
    Document {
        kind: DOC_KIND.into(),
        id: e.id.clone(),
        body: serde_json::to_value(&e).unwrap_or(Value::Null),
    }
}

/// Records a change made by `user`; fails (500) when the store cannot keep it.
pub async fn audit(
    state: &ApiState,
    user: &AdminUser,
    action: &str,
    detail: Value,
) -> Result<(), ApiError> {
    save(state, vec![entry(state, user, action, detail)]).await
}

/// Stores documents (a change and its audit entry) in one durable write.
pub async fn save(state: &ApiState, docs: Vec<Document>) -> Result<(), ApiError> {
    let Some(store) = &state.store else {
        return Err(ApiError::internal(
            "no store is configured: administrative changes cannot be made durable",
        ));
    };
    store.save_documents(docs).await.map_err(|e| {
        tracing::error!(error = %e, "administrative change not stored");
        ApiError::internal("the change could not be stored; nothing was changed")
    })
}

/// `GET /admin/audit` filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditQuery {
    /// Only this user's changes.
    pub user: Option<String>,
    /// Only actions starting with this, e.g. `user.` or `callback.cancel`.
    pub action: Option<String>,
    /// At or after (ISO 8601 with offset).
    pub from: Option<DateTime<FixedOffset>>,
    /// Before.
    pub to: Option<DateTime<FixedOffset>>,
    /// At most this many, newest first (1–1000, default 250).
    pub limit: Option<usize>,
}

/// The audit log, newest first (Administrator).
#[utoipa::path(get, path = "/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = [AuditEntry]), (status = 403)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<ApiState>,
    user: AdminUser,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    user.require(Permission::ReadAudit)?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(250);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be 1 to 1000"));
    }
    let Some(store) = &s.store else {
        return Ok(ok(Vec::<AuditEntry>::new()));
    };
    let docs = store
        .documents(DOC_KIND)
        .await
        .map_err(|e| ApiError::internal(format!("reading the audit log: {e}")))?;
    let out: Vec<AuditEntry> = docs
        .into_iter()
        .rev()
        .filter_map(|d| serde_json::from_value::<AuditEntry>(d.body).ok())
        .filter(|e| q.user.as_ref().is_none_or(|u| &e.user == u))
        .filter(|e| {
            q.action
                .as_ref()
                .is_none_or(|a| e.action.starts_with(a.as_str()))
        })
        .filter(|e| q.from.is_none_or(|t| e.at >= t))
        .filter(|e| q.to.is_none_or(|t| e.at < t))
        .take(limit)
        .collect();
    Ok(ok(out))
}

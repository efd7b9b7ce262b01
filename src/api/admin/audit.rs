//! The audit log over HTTP (the log itself is `crate::audit`). Handlers of other admin files
//! record their changes with [`audit`] (or put [`entry`] in the same `save_documents` call as the
//! change, so both are stored in one transaction).

use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::auth::{Admin, AdminUser, Permission};
use crate::api::{ApiError, ApiState, Q, Reply, ok};
use crate::store::Document;

pub use crate::audit::{AuditEntry, DOC_KIND};

/// The stored form of an audit entry, for saving it together with the change it records.
pub fn entry(state: &ApiState, user: &AdminUser, action: &str, detail: Value) -> Document {
    entry_as(state, &user.name, action, detail)
}

/// As [`entry`], for an event without a logged-in user (a failed login: the attempted name).
pub fn entry_as(state: &ApiState, user: &str, action: &str, detail: Value) -> Document {
    crate::audit::entry(state.clock.now(), user, action, detail)
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
    state.store.save_documents(docs).await.map_err(|e| {
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
    responses((status = 200, body = [AuditEntry]), (status = 403)))]
pub async fn list(Admin { s, user }: Admin, Q(q): Q<AuditQuery>) -> Reply {
    user.require(Permission::ReadAudit)?;
    let limit = super::limit(q.limit, 250)?;
    super::ordered_range(q.from, q.to)?;
    let store = &s.store;
    let filter = crate::audit::AuditFilter {
        user: q.user,
        action: q.action,
        from: q.from.map(|t| t.with_timezone(&Utc)),
        to: q.to.map(|t| t.with_timezone(&Utc)),
        limit,
    };
    let out = crate::audit::read(store.as_ref(), &filter)
        .await
        .map_err(|e| ApiError::internal(format!("reading the audit log: {e}")))?;
    Ok(ok(out))
}

//! The audit log: every administrative change, durable, with who made it, when and what. An
//! entry is a store document (`admin_audit`), saved in the same write as the change it records
//! so both are stored in one transaction; the log is read back newest first, filtered.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{Document, Store, StoreError};

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

/// The stored form of an entry made at `at` by `user` (a login name, or the attempted name of a
/// failed login).
pub fn entry(at: DateTime<Utc>, user: &str, action: &str, detail: Value) -> Document {
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

/// Which entries [`read`] returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this user's changes.
    pub user: Option<String>,
    /// Only actions starting with this, e.g. `user.` or `callback.cancel`.
    pub action: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// At most this many.
    pub limit: usize,
}

/// The entries matching `f`, newest first; unreadable ones are left out.
pub async fn read(store: &dyn Store, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
    let docs = store.documents(DOC_KIND).await?;
    Ok(docs
        .into_iter()
        .rev()
        .filter_map(|d| serde_json::from_value::<AuditEntry>(d.body).ok())
        .filter(|e| f.user.as_ref().is_none_or(|u| &e.user == u))
        .filter(|e| {
            f.action
                .as_ref()
                .is_none_or(|a| e.action.starts_with(a.as_str()))
        })
        .filter(|e| f.from.is_none_or(|t| e.at >= t))
        .filter(|e| f.to.is_none_or(|t| e.at < t))
        .take(f.limit)
        .collect())
}

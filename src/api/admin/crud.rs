//! The five routes every named administration record has — list, read, create, replace,
//! delete — written once. Number, capacity and region affinity rules and Click-to-Call-In
//! groups differ only in their book, their write permission and what they answer; each route
//! file keeps its documented handlers, one line each, over these.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{AdminUser, Permission};
use crate::api::{ApiError, ApiState, Body, Reply, ok};
use crate::store::Document;

/// A kind of named record the administration lists, reads, creates, replaces and deletes.
pub trait Named: Send + Sync + 'static {
    /// The body of create and replace.
    type Body: Serialize + Send + 'static;
    /// What a read answers with.
    type Out: Serialize + Send;
    /// What a create or a replace answers with.
    type Saved: Serialize + Send;
    /// The audit action's prefix: `number_rule` gives `number_rule.create`.
    const ACTION: &'static str;
    /// The audit detail's key for the body (`rule`, `group`).
    const BODY_KEY: &'static str;
    /// The permission a change needs (reading needs `ReadRules`).
    const WRITE: Permission;
    /// Every record, as `user` may see it.
    fn list(s: &ApiState, user: &AdminUser) -> Result<Vec<Self::Out>, ApiError>;
    /// One record, as `user` may see it.
    fn get(s: &ApiState, user: &AdminUser, name: &str) -> Result<Self::Out, ApiError>;
    /// Creates a record, stored with `also` (its audit entry) in one write.
    fn create(
        s: &ApiState,
        body: Self::Body,
        also: Vec<Document>,
    ) -> impl Future<Output = Result<Self::Saved, ApiError>> + Send;
    /// Replaces a record, stored with `also`.
    fn update(
        s: &ApiState,
        name: &str,
        body: Self::Body,
        also: Vec<Document>,
    ) -> impl Future<Output = Result<Self::Saved, ApiError>> + Send;
    /// Deletes a record, then stores `also`.
    fn delete(
        s: &ApiState,
        name: &str,
        also: Vec<Document>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// A book the API was started without (no engine store): 503.
pub(crate) fn present<'a, T>(book: &'a Option<Arc<T>>, what: &str) -> Result<&'a Arc<T>, ApiError> {
    book.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            1,
            format!("{what} are not available: this API runs without the engine's store"),
        )
    })
}

/// An error's message with the request field at fault in front, when there is one.
pub(crate) fn with_field(field: impl AsRef<str>, e: &dyn std::fmt::Display) -> String {
    let field = field.as_ref();
    if field.is_empty() {
        e.to_string()
    } else {
        format!("{field}: {e}")
    }
}

/// The audit entry of a change, to be stored in the same write as the change.
pub(crate) fn record(s: &ApiState, user: &AdminUser, action: &str, detail: Value) -> Vec<Document> {
    vec![super::audit::entry(s, user, action, detail)]
}

/// The audit entry of a change to a `K` record: `{"name": …, "<body key>": …}`, either part
/// only when the change has it.
fn audit<K: Named>(
    s: &ApiState,
    user: &AdminUser,
    verb: &str,
    name: Option<&str>,
    body: Option<&K::Body>,
) -> Vec<Document> {
    let mut detail = Map::new();
    if let Some(name) = name {
        detail.insert("name".into(), json!(name));
    }
    if let Some(body) = body {
        detail.insert(K::BODY_KEY.into(), json!(body));
    }
    let action = format!("{}.{verb}", K::ACTION);
    record(s, user, &action, Value::Object(detail))
}

/// `GET /…`: every record.
pub(crate) fn list<K: Named>(State(s): State<ApiState>, user: AdminUser) -> Reply {
    user.require(Permission::ReadRules)?;
    Ok(ok(K::list(&s, &user)?))
}

/// `GET /…/{name}`: one record.
pub(crate) fn get<K: Named>(
    State(s): State<ApiState>,
    user: AdminUser,
    name: Path<String>,
) -> Reply {
    user.require(Permission::ReadRules)?;
    Ok(ok(K::get(&s, &user, &name)?))
}

/// `POST /…`: 201 with the record as saved.
pub(crate) async fn create<K: Named>(
    s: State<ApiState>,
    user: AdminUser,
    b: Body<K::Body>,
) -> Reply {
    user.require(K::WRITE)?;
    let also = audit::<K>(&s, &user, "create", None, Some(&b.0));
    Ok(super::created(K::create(&s, b.0, also).await?))
}

/// `PUT /…/{name}`: the record as saved.
pub(crate) async fn update<K: Named>(
    s: State<ApiState>,
    user: AdminUser,
    name: Path<String>,
    b: Body<K::Body>,
) -> Reply {
    user.require(K::WRITE)?;
    let also = audit::<K>(&s, &user, "update", Some(&name), Some(&b.0));
    Ok(ok(K::update(&s, &name, b.0, also).await?))
}

/// `DELETE /…/{name}`: `{"deleted": name}`.
pub(crate) async fn delete<K: Named>(
    s: State<ApiState>,
    user: AdminUser,
    name: Path<String>,
) -> Reply {
    user.require(K::WRITE)?;
    let also = audit::<K>(&s, &user, "delete", Some(&name), None);
    K::delete(&s, &name, also).await?;
    Ok(ok(json!({ "deleted": name.0 })))
}

//! The five routes every named administration record has — list, read, create, replace,
//! delete — written once. Number, capacity and region affinity rules and Click-to-Call-In
//! groups differ only in their book, their write permission and what they answer; each route
//! file keeps its documented handlers, one line each, over these.

use std::future::Future;

use axum::extract::{Path, State};
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

/// The five documented handlers of a [`Named`] kind (list, create, read, replace, delete) over
/// [`list`], [`create`], [`get`], [`update`] and [`delete`], and the router of their routes
/// (`routes`): the one definition of the surface every kind of record repeats. The kind gives
/// its type, its body, its OpenAPI tag, its collection path, its record path (with `{name}`)
/// and the description of `{name}`; each handler gives its name, its doc comment (the
/// operation's summary and description) and its responses.
macro_rules! handlers {
    (
        $kind:ident, body = $body:ident, tag = $tag:literal, path = $path:literal,
        item = $item:literal, name = $name:literal, routes = $routes:ident;
        $(#[doc = $list_doc:literal])* list $list:ident $list_r:tt;
        $(#[doc = $create_doc:literal])* create $create:ident $create_r:tt;
        $(#[doc = $get_doc:literal])* get $get:ident $get_r:tt;
        $(#[doc = $update_doc:literal])* update $update:ident $update_r:tt;
        $(#[doc = $delete_doc:literal])* delete $delete:ident $delete_r:tt;
    ) => {
        $(#[doc = $list_doc])*
        #[utoipa::path(get, path = $path, tag = $tag, responses $list_r)]
        pub async fn $list(
            s: axum::extract::State<$crate::api::ApiState>,
            u: $crate::api::admin::AdminUser,
        ) -> $crate::api::Reply {
            $crate::api::admin::crud::list::<$kind>(s, u)
        }

        $(#[doc = $create_doc])*
        #[utoipa::path(post, path = $path, tag = $tag, request_body = $body, responses $create_r)]
        pub async fn $create(
            s: axum::extract::State<$crate::api::ApiState>,
            u: $crate::api::admin::AdminUser,
            b: $crate::api::Body<$body>,
        ) -> $crate::api::Reply {
            $crate::api::admin::crud::create::<$kind>(s, u, b).await
        }

        $crate::api::admin::crud::handlers!(@by_name $kind, get, $item, $tag, $name, $get_r,
            [$(#[doc = $get_doc])*], $get, get, []);

        $(#[doc = $update_doc])*
        #[utoipa::path(put, path = $item, tag = $tag, request_body = $body,
            params(("name" = String, Path, description = $name)), responses $update_r)]
        pub async fn $update(
            s: axum::extract::State<$crate::api::ApiState>,
            u: $crate::api::admin::AdminUser,
            n: axum::extract::Path<String>,
            b: $crate::api::Body<$body>,
        ) -> $crate::api::Reply {
            $crate::api::admin::crud::update::<$kind>(s, u, n, b).await
        }

        $crate::api::admin::crud::handlers!(@by_name $kind, delete, $item, $tag, $name, $delete_r,
            [$(#[doc = $delete_doc])*], $delete, delete, [.await]);

        /// The routes of these handlers.
        fn $routes() -> utoipa_axum::router::OpenApiRouter<$crate::api::ApiState> {
            utoipa_axum::router::OpenApiRouter::new()
                .routes(utoipa_axum::routes!($list, $create))
                .routes(utoipa_axum::routes!($get, $update, $delete))
        }
    };
    // A handler of one record named in the path (read, delete): `crud::$op` over `{name}`.
    (@by_name $kind:ident, $method:ident, $item:literal, $tag:literal, $name:literal, $r:tt,
        [$($doc:tt)*], $handler:ident, $op:ident, [$($then:tt)*]) => {
        $($doc)*
        #[utoipa::path($method, path = $item, tag = $tag,
            params(("name" = String, Path, description = $name)), responses $r)]
        pub async fn $handler(
            s: axum::extract::State<$crate::api::ApiState>,
            u: $crate::api::admin::AdminUser,
            n: axum::extract::Path<String>,
        ) -> $crate::api::Reply {
            $crate::api::admin::crud::$op::<$kind>(s, u, n)$($then)*
        }
    };
}

pub(crate) use handlers;

//! Administration users over HTTP (Administrator only): list, create, change, delete (the users
//! themselves, their checks and their stored form are `crate::users`). Users written in
//! the configuration file stay as written; users made here are stored durably and come back
//! after a restart. Every change is audited in the same write.

use std::collections::BTreeSet;

use axum::extract::Path;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit;
use super::auth::{Admin, AdminUser, Permission, Role, UserRecord, hash_password, valid_user_name};
use crate::api::{ApiError, ApiState, Body, Reply, ok};
pub use crate::users::DOC_KIND;
use crate::users::{UserError, check_password, check_roles, document};

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// A user as the API shows it (never the hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// Login name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Readable queues; absent = every queue.
    pub queues: Option<BTreeSet<String>>,
    /// Written in the configuration file (not changeable here).
    pub from_config: bool,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        UserView {
            name: u.name.clone(),
            roles: u.roles.clone(),
            queues: u.queues.clone(),
            from_config: u.from_config,
        }
    }
}

/// `POST /admin/users` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// Login name: 1–64 letters, digits, `_ - . @`.
    pub name: String,
    /// 8–256 characters.
    pub password: String,
    /// At least one role.
    pub roles: Vec<Role>,
    /// Readable queues; absent = every queue.
    #[serde(default)]
    pub queues: Option<BTreeSet<String>>,
}

/// `PUT /admin/users/{name}` body: what to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    /// New password.
    #[serde(default)]
    pub password: Option<String>,
    /// New roles.
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    /// New readable queues; `null` = every queue.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub queues: Option<Option<BTreeSet<String>>>,
}

fn check_queues(s: &ApiState, queues: &Option<BTreeSet<String>>) -> Result<(), ApiError> {
    for q in queues.iter().flatten() {
        if s.config.queue(q).is_none() {
            return Err(ApiError::bad_request(format!(
                "queues: unknown virtual queue `{q}`"
            )));
        }
    }
    Ok(())
}

async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(format!("hashing task failed: {e}")))?
        .map_err(ApiError::from)
}

/// Refuses to leave no Administrator: once the last one lost the role or was deleted, nobody
/// could manage users any more (short of editing the file and restarting).
fn keeps_an_administrator(s: &ApiState, name: &str, roles_after: &[Role]) -> Result<(), ApiError> {
    if roles_after.contains(&Role::Administrator) || s.admin.another_administrator(name) {
        return Ok(());
    }
    Err(ApiError::conflict(format!(
        "user `{name}` is the last Administrator; give another user that role first"
    )))
}

fn changeable(s: &ApiState, name: &str) -> Result<UserRecord, ApiError> {
    let u = s
        .admin
        .user(name)
        .ok_or_else(|| ApiError::not_found(format!("no user named `{name}`")))?;
    if u.from_config {
        return Err(ApiError::conflict(format!(
            "user `{name}` is defined in the configuration file; change it there"
        )));
    }
    Ok((*u).clone())
}

/// Every user.
#[utoipa::path(get, path = "/users", tag = "admin",
    responses((status = 200, body = [UserView]), (status = 403)))]
pub async fn list(Admin { s, user }: Admin) -> Reply {
    user.require(Permission::ManageUsers)?;
    let users: Vec<UserView> = s
        .admin
        .users()
        .iter()
        .map(|u| UserView::from(&**u))
        .collect();
    Ok(ok(users))
}

/// Creates a user.
#[utoipa::path(post, path = "/users", tag = "admin", request_body = NewUserBody,
    responses((status = 200, body = UserView), (status = 400), (status = 403), (status = 409)))]
pub async fn create(Admin { s, user }: Admin, Body(b): Body<NewUserBody>) -> Reply {
    user.require(Permission::ManageUsers)?;
    if !valid_user_name(&b.name) {
        return Err(UserError::BadName.into());
    }
    check_password(&b.password)?;
    check_roles(&b.roles)?;
    check_queues(&s, &b.queues)?;
    let _changing = s.admin.lock_changes().await;
    if s.admin.user(&b.name).is_some() {
        return Err(ApiError::conflict(format!("user `{}` exists", b.name)));
    }
    let rec = UserRecord {
        name: b.name,
        password_hash: hash(b.password).await?,
        roles: b.roles,
        queues: b.queues,
        from_config: false,
    };
    let detail = json!({ "name": rec.name, "roles": rec.roles, "queues": rec.queues });
    save(&s, &user, rec, "user.create", detail).await
}

/// Changes a user's password, roles or queues; open sessions follow at their next request
/// (a new password ends them). The last Administrator keeps that role.
#[utoipa::path(put, path = "/users/{name}", tag = "admin", request_body = UpdateUserBody,
    params(("name" = String, Path, description = "login name")),
    responses((status = 200, body = UserView), (status = 404), (status = 409)))]
pub async fn update(
    Admin { s, user }: Admin,
    Path(name): Path<String>,
    Body(b): Body<UpdateUserBody>,
) -> Reply {
    user.require(Permission::ManageUsers)?;
    let _changing = s.admin.lock_changes().await;
    let mut rec = changeable(&s, &name)?;
    let mut changed = Vec::new();
    if let Some(roles) = b.roles {
        check_roles(&roles)?;
        keeps_an_administrator(&s, &name, &roles)?;
        rec.roles = roles;
        changed.push("roles");
    }
    if let Some(queues) = b.queues {
        check_queues(&s, &queues)?;
        rec.queues = queues;
        changed.push("queues");
    }
    if let Some(p) = b.password {
        check_password(&p)?;
        rec.password_hash = hash(p).await?;
        changed.push("password");
    }
    let new_password = changed.contains(&"password");
    let detail =
        json!({ "name": name, "changed": changed, "roles": rec.roles, "queues": rec.queues });
    let answer = save(&s, &user, rec, "user.update", detail).await?;
    if new_password {
        s.admin.end_sessions(&name);
    }
    Ok(answer)
}

/// Stores a user with the audit entry of its change in one write, then puts it in force and
/// answers with its view.
async fn save(
    s: &ApiState,
    user: &AdminUser,
    rec: UserRecord,
    action: &str,
    detail: serde_json::Value,
) -> Reply {
    audit::save(
        s,
        vec![document(&rec), audit::entry(s, user, action, detail)],
    )
    .await?;
    let view = UserView::from(&rec);
    s.admin.put_user(rec);
    Ok(ok(view))
}

/// Deletes a user and ends their sessions (not the last Administrator).
#[utoipa::path(delete, path = "/users/{name}", tag = "admin",
    params(("name" = String, Path, description = "login name")),
    responses((status = 200), (status = 404), (status = 409)))]
pub async fn delete(Admin { s, user }: Admin, Path(name): Path<String>) -> Reply {
    user.require(Permission::ManageUsers)?;
    let _changing = s.admin.lock_changes().await;
    changeable(&s, &name)?;
    keeps_an_administrator(&s, &name, &[])?;
    s.store
        .delete_document(DOC_KIND, &name)
        .await
        .map_err(|e| ApiError::internal(format!("deleting the user: {e}")))?;
    s.admin.remove_user(&name);
    audit::audit(&s, &user, "user.delete", json!({ "name": name })).await?;
    Ok(ok(json!({ "name": name, "deleted": true })))
}

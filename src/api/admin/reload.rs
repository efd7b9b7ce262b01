//! `POST /admin/reload`: the same reload as SIGHUP (see [`crate::ops::reload`]): re-reads the
//! configuration file, validates it, applies what can change while the engine runs and lists
//! the sections whose changes need a restart. An invalid file changes nothing and the answer
//! lists every problem with its line and column.

use serde_json::json;

use super::audit;
use super::auth::{Admin, Permission};
use crate::api::{ApiError, Reply, ok};
use crate::ops::reload::{self, Applied, ReloadError};

impl From<ReloadError> for ApiError {
    fn from(e: ReloadError) -> Self {
        match e {
            ReloadError::NoFile => ApiError::conflict(e.to_string()),
            ReloadError::Invalid(_) => ApiError::bad_request(e.to_string()),
            ReloadError::Task(_) | ReloadError::Apply(_) => ApiError::internal(e.to_string()),
        }
    }
}

/// Re-reads and applies the configuration file.
#[utoipa::path(post, path = "/reload", tag = "admin",
    responses((status = 200, description = "`data.applied` and `data.restartNeeded`"),
              (status = 400, description = "the file is invalid; nothing changed"), (status = 409)))]
pub async fn reload(Admin { s, user }: Admin) -> Reply {
    user.require(Permission::ReloadConfig)?;
    let live = s.live.get().and_then(std::sync::Weak::upgrade);
    let done: Applied = match live {
        // The engine: the same reload as SIGHUP (the HTTP app is swapped too).
        Some(live) => live.reload().await?,
        // An API without an engine: the shared state only.
        None => {
            let path = s.config.file.clone().ok_or(ReloadError::NoFile)?;
            let mut new = reload::load(&path).await?;
            reload::apply_to_state(&s, &s.config.spec, &mut new)?
        }
    };
    audit::audit(
        &s,
        &user,
        "config.reload",
        json!({ "applied": done.applied, "restartNeeded": done.restart_needed }),
    )
    .await?;
    Ok(ok(json!({
        "applied": done.applied,
        "restartNeeded": done.restart_needed,
        "note": "flow files are reloaded on their own when they change",
    })))
}

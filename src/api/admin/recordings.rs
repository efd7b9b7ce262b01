//! Recordings made by the Record block over HTTP: `GET /admin/recordings` lists them (any role
//! that reads callbacks), `GET /admin/recordings/{id}` downloads the WAV (roles that may export
//! callbacks: Administrator, Supervisor). A user restricted to some queues sees only the
//! recordings of callbacks in those queues. The files themselves are `crate::recordings`.

use axum::extract::Path;
use serde::Deserialize;
use uuid::Uuid;

use super::auth::{Admin, AdminUser, Permission};
use crate::api::{ApiError, ApiState, Q, Reply, ok};
use crate::recordings::{self, Recording};

/// `GET /admin/recordings` filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecordingQuery {
    /// Only the recordings of this callback.
    pub callback_id: Option<Uuid>,
    /// Only the recordings of this call (SIP Call-ID).
    pub call_id: Option<String>,
}

async fn all(s: &ApiState) -> Result<Vec<Recording>, ApiError> {
    recordings::list(s.store.as_ref())
        .await
        .map_err(|e| ApiError::internal(format!("reading recordings: {e}")))
}

/// Whether `user` may see recording `r`: every recording without a queue restriction; with
/// one, only those of callbacks in the user's queues (a call that served no callback has no
/// known queue).
async fn readable(s: &ApiState, user: &AdminUser, r: &Recording) -> bool {
    if user.queues.is_none() {
        return true;
    }
    match r.callback_id {
        Some(id) => s
            .callbacks
            .get(id)
            .await
            .is_ok_and(|c| user.can_read_queue(&c.queue)),
        None => false,
    }
}

/// Recordings the user may see, newest first.
#[utoipa::path(get, path = "/recordings", tag = "admin", params(RecordingQuery),
    responses((status = 200, body = [Recording]), (status = 403)))]
pub async fn list(Admin { s, user }: Admin, Q(q): Q<RecordingQuery>) -> Reply {
    user.require(Permission::ReadCallbacks)?;
    let mut list: Vec<Recording> = Vec::new();
    for r in all(&s).await? {
        if q.callback_id.is_none_or(|c| r.callback_id == Some(c))
            && q.call_id.as_ref().is_none_or(|c| &r.call_id == c)
            && readable(&s, &user, &r).await
        {
            list.push(r);
        }
    }
    Ok(ok(list))
}

/// One recording's WAV file.
#[utoipa::path(get, path = "/recordings/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "recording id")),
    responses((status = 200, content_type = "audio/wav", description = "8 kHz 16-bit mono WAV"), (status = 403), (status = 404)))]
pub async fn download(Admin { s, user }: Admin, Path(id): Path<Uuid>) -> Reply {
    user.require(Permission::ExportCallbacks)?;
    let found = all(&s).await?.into_iter().find(|r| r.id == id);
    let Some(rec) = found else {
        return Err(ApiError::not_found(format!("no recording {id}")));
    };
    if !readable(&s, &user, &rec).await {
        // As if it did not exist: its queue is outside the user's line of business.
        return Err(ApiError::not_found(format!("no recording {id}")));
    }
    let path = recordings::path_of(&s.config.data_dir(), id);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::not_found(format!("the file of recording {id} is missing")))?;
    Ok(super::attachment("audio/wav", &format!("{id}.wav"), bytes))
}

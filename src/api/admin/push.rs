//! The push outbox in the administration (`GET /admin/push/outbox`): what is waiting, what
//! was delivered and what was given up, with attempts and the last error; only the events of
//! the queues the user may read.

use serde::Deserialize;

use super::auth::{Admin, Permission};
use crate::api::{ApiError, Q, Reply, ok};
use crate::push::OutboxState;

/// `GET /admin/push/outbox` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// `pending`, `delivered` or `failed` (default: every state).
    pub state: Option<String>,
    /// At most this many, newest first (1–1000, default 100).
    pub limit: Option<usize>,
}

/// Push events of the user's queues in the durable outbox, newest first.
#[utoipa::path(get, path = "/push/outbox", tag = "admin", params(OutboxQuery),
    responses((status = 200, description = "entries with event, target, state, attempts, last error"), (status = 400), (status = 403)))]
pub async fn outbox(Admin { s, user }: Admin, Q(q): Q<OutboxQuery>) -> Reply {
    user.require(Permission::DeveloperTools)?;
    let limit = super::limit(q.limit, 100)?;
    let state = match q.state.as_deref() {
        None => None,
        Some(name) => Some(OutboxState::parse(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "state: `{name}` is not one of pending, delivered, failed"
            ))
        })?),
    };
    // A user restricted to some queues sees only their events, found among the newest 1000.
    let fetch = if user.queues.is_some() { 1000 } else { limit };
    let mut list = s
        .store
        .outbox_list(state, fetch)
        .await
        .map_err(|e| ApiError::internal(format!("the outbox cannot be read: {e}")))?;
    list.retain(|e| user.can_read_queue(&e.event.queue));
    list.truncate(limit);
    Ok(ok(list))
}

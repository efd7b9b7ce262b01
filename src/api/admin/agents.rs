//! Agents (Tools) over HTTP: list with state and skills; create, change, delete (Administrator),
//! durable in the store (the definitions are `crate::agents`); state changes through the dispatch, so work waiting for the agent is handed
//! over at once. Skill changes apply at once; the router's agent table is sized at start, so a
//! new agent (or a deleted one's removal, or a new display name) takes effect at the next start:
//! answers say so in `appliesAt`.

use std::collections::BTreeMap;

use axum::extract::Path;
use serde::Deserialize;
use serde_json::json;

use super::audit;
use super::auth::{Admin, AdminUser, Permission};
pub use crate::agents::{AgentBook, DOC_KIND, StoredAgent, apply_stored};
use crate::agents::{AgentError, check_id, check_skills};
use crate::api::stats::state_name;
use crate::api::{ApiError, ApiState, Body, Reply, ok};
use crate::config::AgentSpec;
use crate::routing::StateKind;

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// An agent defined and not deleted, or a 404.
fn defined(s: &ApiState, id: &str) -> Result<StoredAgent, ApiError> {
    s.agent_book
        .get(id)
        .filter(|a| !a.deleted)
        .ok_or_else(|| ApiError::not_found(format!("no agent `{id}`")))
}

fn view(s: &ApiState, a: &StoredAgent) -> serde_json::Value {
    let live = s.router.agents().index_of(&a.spec.id).ok();
    let agent = live.map(|i| s.router.agents().get(i));
    let applies = match (&agent, a.deleted) {
        (None, false) => Some("restart"),
        (Some(_), true) => Some("restart"),
        (Some(x), false) if x.name != a.spec.name => Some("restart"),
        _ => None,
    };
    json!({
        "id": a.spec.id,
        "name": a.spec.name,
        "sipUser": a.sip_user(),
        "skills": a.spec.skills,
        "state": agent.map(|x| state_name(x.state())).unwrap_or_else(|| "not_started".into()),
        "notReadyReason": agent.map(|x| x.not_ready_reason()).filter(|r| !r.is_empty()),
        // Where the agent goes when the current call ends, when asked during it.
        "stateAfterCall": agent.and_then(|x| x.pending_state()).map(state_name),
        "deleted": a.deleted,
        "appliesAt": applies,
    })
}

/// Stores an agent with the audit entry of its change in one write, then puts it in force.
async fn save(
    s: &ApiState,
    user: &AdminUser,
    a: &StoredAgent,
    action: &str,
) -> Result<(), ApiError> {
    let detail = json!({ "id": a.spec.id, "name": a.spec.name, "skills": a.spec.skills });
    audit::save(s, vec![a.document(), audit::entry(s, user, action, detail)]).await?;
    s.agent_book.put(a.clone());
    Ok(())
}

/// As [`save`], then answers with the agent's view.
async fn saved(s: &ApiState, user: &AdminUser, a: &StoredAgent, action: &str) -> Reply {
    save(s, user, a, action).await?;
    Ok(ok(view(s, a)))
}

/// Every agent with state and skills.
#[utoipa::path(get, path = "/agents", tag = "admin",
    responses((status = 200, description = "agents; `appliesAt: restart` marks changes waiting for a start"), (status = 403)))]
pub async fn list(Admin { s, user }: Admin) -> Reply {
    user.require(Permission::UseTools)?;
    let out: Vec<_> = s.agent_book.all().iter().map(|a| view(&s, a)).collect();
    Ok(ok(out))
}

/// `POST /admin/agents` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewAgentBody {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// SIP user (default: the id).
    #[serde(default)]
    pub sip_user: Option<String>,
    /// Skill name → level 0–10.
    #[serde(default)]
    pub skills: BTreeMap<String, i64>,
}

/// Defines a new agent (durable; routed from the next start).
#[utoipa::path(post, path = "/agents", tag = "admin", request_body = NewAgentBody,
    responses((status = 200), (status = 400), (status = 403), (status = 409)))]
pub async fn create(Admin { s, user }: Admin, Body(b): Body<NewAgentBody>) -> Reply {
    user.require(Permission::ManageAgents)?;
    check_id(&b.id)?;
    check_skills(&b.skills)?;
    if s.agent_book.get(&b.id).is_some_and(|a| !a.deleted) {
        return Err(ApiError::conflict(format!("agent `{}` exists", b.id)));
    }
    let sip = b.sip_user.clone().unwrap_or_else(|| b.id.clone());
    if s.agent_book
        .all()
        .iter()
        .any(|a| !a.deleted && a.sip_user() == sip)
    {
        return Err(ApiError::conflict(format!(
            "sipUser: `{sip}` belongs to another agent"
        )));
    }
    let a = StoredAgent {
        spec: AgentSpec {
            id: b.id,
            name: b.name,
            sip_user: b.sip_user,
            password: None,
            skills: b.skills,
        },
        deleted: false,
    };
    saved(&s, &user, &a, "agent.create").await
}

/// `PUT /admin/agents/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentBody {
    /// New display name (shown after the next start).
    #[serde(default)]
    pub name: Option<String>,
    /// New skills, replacing the old ones (applied at once).
    #[serde(default)]
    pub skills: Option<BTreeMap<String, i64>>,
}

/// Changes an agent's skills (at once: eligibility is recomputed and a ready agent is offered
/// the work it now qualifies for) or display name.
#[utoipa::path(put, path = "/agents/{id}", tag = "admin", request_body = UpdateAgentBody,
    params(("id" = String, Path, description = "agent id")),
    responses((status = 200), (status = 400), (status = 404)))]
pub async fn update(
    Admin { s, user }: Admin,
    Path(id): Path<String>,
    Body(b): Body<UpdateAgentBody>,
) -> Reply {
    user.require(Permission::ManageAgents)?;
    let mut a = defined(&s, &id)?;
    if let Some(skills) = &b.skills {
        check_skills(skills)?;
        a.spec.skills = skills.clone();
    }
    if let Some(name) = b.name {
        a.spec.name = name;
    }
    save(&s, &user, &a, "agent.update").await?;
    if b.skills.is_some() && s.router.agents().index_of(&id).is_ok() {
        let levels: Vec<(String, u8)> = a
            .spec
            .skills
            .iter()
            .map(|(k, v)| (k.clone(), (*v).clamp(0, 10) as u8))
            .collect();
        s.router
            .set_agent_skills(&id, &levels)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        redispatch_if_ready(&s, &id);
    }
    Ok(ok(view(&s, &a)))
}

/// A ready agent whose skills changed is taken out and put back, so the router looks at the
/// queues the agent now serves (the agent goes to the back of the longest-idle order).
fn redispatch_if_ready(s: &ApiState, id: &str) {
    let d = &s.dispatch;
    let ready = s
        .router
        .agents()
        .index_of(id)
        .is_ok_and(|i| s.router.agents().get(i).state() == StateKind::Ready);
    if ready {
        let _ = d.set_agent_state(id, StateKind::NotReady, Some("skills changed"));
        if let Err(e) = d.set_agent_state(id, StateKind::Ready, None) {
            tracing::warn!(agent = id, error = %e, "agent not made ready again after a skill change");
        }
    }
}

/// Deletes an agent: logged out now (refused while on a call), left out from the next start.
#[utoipa::path(delete, path = "/agents/{id}", tag = "admin",
    params(("id" = String, Path, description = "agent id")),
    responses((status = 200), (status = 404), (status = 409)))]
pub async fn delete(Admin { s, user }: Admin, Path(id): Path<String>) -> Reply {
    user.require(Permission::ManageAgents)?;
    let mut a = defined(&s, &id)?;
    if let Ok(i) = s.router.agents().index_of(&id) {
        let st = s.router.agents().get(i).state();
        if matches!(st, StateKind::Reserved | StateKind::Busy) {
            return Err(ApiError::conflict(format!(
                "agent `{id}` is on an interaction ({}); try when it ends",
                state_name(st)
            )));
        }
        if st != StateKind::LoggedOut {
            s.dispatch
                .set_agent_state(&id, StateKind::LoggedOut, Some("deleted"))
                .map_err(|e| ApiError::conflict(e.to_string()))?;
        }
    }
    a.deleted = true;
    saved(&s, &user, &a, "agent.delete").await
}

/// `POST /admin/agents/{id}/state` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateBody {
    /// `ready`, `not_ready` or `logged_out`.
    pub state: String,
    /// Why (for not_ready).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Changes an agent's state; becoming ready hands over waiting work at once.
#[utoipa::path(post, path = "/agents/{id}/state", tag = "admin", request_body = StateBody,
    params(("id" = String, Path, description = "agent id")),
    responses((status = 200), (status = 400), (status = 404), (status = 409)))]
pub async fn set_state(
    Admin { s, user }: Admin,
    Path(id): Path<String>,
    Body(b): Body<StateBody>,
) -> Reply {
    user.require(Permission::ManageAgents)?;
    let to = match b.state.as_str() {
        "ready" => StateKind::Ready,
        "not_ready" => StateKind::NotReady,
        "logged_out" => StateKind::LoggedOut,
        other => {
            return Err(ApiError::bad_request(format!(
                "state: `{other}` is not one of ready, not_ready, logged_out"
            )));
        }
    };
    let Ok(idx) = s.router.agents().index_of(&id) else {
        return Err(ApiError::not_found(format!("no running agent `{id}`")));
    };
    // With SIP on, calls reach an agent only through a registered phone.
    let listeners = &s.config.spec.listeners;
    let sip = !(listeners.sip_udp.is_empty() && listeners.sip_tcp.is_empty());
    let agent = s.router.agents().get(idx);
    if to == StateKind::Ready && sip && !agent.has_phone() && agent.state() != StateKind::Ready {
        return Err(ApiError::conflict(format!(
            "agent `{id}` has no registered phone: register it before making the agent ready"
        )));
    }
    // On a call, the state is applied when the call ends.
    s.dispatch
        .request_agent_state(&id, to, b.reason.as_deref())
        .map_err(|e| ApiError::conflict(e.to_string()))?;
    audit::audit(
        &s,
        &user,
        "agent.state",
        json!({ "id": id, "state": b.state, "reason": b.reason }),
    )
    .await?;
    let a = s
        .agent_book
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no agent `{id}`")))?;
    Ok(ok(view(&s, &a)))
}

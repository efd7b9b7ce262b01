//! `POST /admin/reload`: re-reads the configuration file, validates it, applies what can change
//! while the engine runs (administration users written in the file, the skills of running
//! agents) and lists the sections whose changes need a restart. An invalid file changes
//! nothing and the answer lists every problem with its line and column.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::audit;
use super::auth::{AdminUser, Permission, UserRecord};
use crate::api::{ApiError, ApiState, ok};
use crate::config::{Config, ConfigSpec};

/// Sections compared as a whole; a difference in any of them needs a restart.
fn restart_sections(old: &ConfigSpec, new: &ConfigSpec) -> Vec<&'static str> {
    let pairs: [(&'static str, Value, Value); 11] = [
        ("listeners", json!(old.listeners), json!(new.listeners)),
        ("sip", json!(old.sip), json!(new.sip)),
        ("media", json!(old.media), json!(new.media)),
        ("store", json!(old.store), json!(new.store)),
        ("flows_dir", json!(old.flows_dir), json!(new.flows_dir)),
        (
            "business_hours",
            json!(old.business_hours),
            json!(new.business_hours),
        ),
        (
            "route_points",
            json!(old.route_points),
            json!(new.route_points),
        ),
        ("trunks", json!(old.trunks), json!(new.trunks)),
        ("queues", json!(old.queues), json!(new.queues)),
        ("api", json!(old.api), json!(new.api)),
        (
            "callin_groups",
            json!(old.callin_groups),
            json!(new.callin_groups),
        ),
    ];
    let mut out: Vec<&'static str> = pairs
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(n, _, _)| n)
        .collect();
    if old.admin.session_idle_minutes != new.admin.session_idle_minutes {
        out.push("admin.session_idle_minutes");
    }
    out
}

/// Re-reads and applies the configuration file.
#[utoipa::path(post, path = "/reload", tag = "admin",
    responses((status = 200, description = "`data.applied` and `data.restartNeeded`"),
              (status = 400, description = "the file is invalid; nothing changed"), (status = 409)),
    security(("bearer" = [])))]
pub async fn reload(State(s): State<ApiState>, user: AdminUser) -> Result<Response, ApiError> {
    user.require(Permission::ReloadConfig)?;
    let Some(path) = s.config.file.clone() else {
        return Err(ApiError::conflict(
            "the engine was not started from a file; nothing to re-read",
        ));
    };
    let loaded = tokio::task::spawn_blocking(move || Config::load(&path))
        .await
        .map_err(|e| ApiError::internal(format!("reload task failed: {e}")))?;
    let new = match loaded {
        Ok(c) => c,
        Err(errors) => {
            let problems: Vec<String> = errors
                .diagnostics
                .iter()
                .map(|d| format!("{}:{}: {}: {}", d.pos.line, d.pos.column, d.path, d.message))
                .collect();
            return Err(ApiError::bad_request(format!(
                "the configuration file is invalid; nothing changed: {}",
                problems.join("; ")
            )));
        }
    };
    let old = &s.config.spec;
    let mut applied: Vec<String> = Vec::new();

    // Administration users written in the file.
    let file_users: Vec<UserRecord> = new.spec.admin.users.iter().map(UserRecord::from).collect();
    for u in s.admin.users() {
        if u.from_config && !file_users.iter().any(|f| f.name == u.name) {
            s.admin.remove_user(&u.name);
            applied.push(format!("admin user `{}` removed", u.name));
        }
    }
    for u in file_users {
        let before = s.admin.user(&u.name);
        if before.as_deref() != Some(&u) {
            applied.push(format!("admin user `{}` updated", u.name));
            s.admin.put_user(u);
        }
    }

    // Skills of agents the router knows.
    let mut agents_need_restart = false;
    for a in &new.spec.agents {
        let before = old.agents.iter().find(|o| o.id == a.id);
        match before {
            Some(o) if o.skills != a.skills && s.router.agents().index_of(&a.id).is_ok() => {
                let levels: Vec<(String, u8)> = a
                    .skills
                    .iter()
                    .map(|(k, v)| (k.clone(), (*v).clamp(0, 10) as u8))
                    .collect();
                s.router
                    .set_agent_skills(&a.id, &levels)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                s.agent_book.replace_spec(a.clone());
                applied.push(format!("agent `{}` skills", a.id));
            }
            Some(o) if o.name != a.name || o.sip_user != a.sip_user || o.password != a.password => {
                agents_need_restart = true;
            }
            None => agents_need_restart = true,
            _ => {}
        }
    }
    if old
        .agents
        .iter()
        .any(|o| !new.spec.agents.iter().any(|a| a.id == o.id))
    {
        agents_need_restart = true;
    }
    let mut restart = restart_sections(old, &new.spec);
    if agents_need_restart {
        restart.push("agents (added, removed, names, SIP users or passwords)");
    }
    audit::audit(
        &s,
        &user,
        "config.reload",
        json!({ "applied": applied, "restartNeeded": restart }),
    )
    .await?;
    Ok(ok(json!({
        "applied": applied,
        "restartNeeded": restart,
        "note": "flow files are reloaded on their own when they change",
    })))
}

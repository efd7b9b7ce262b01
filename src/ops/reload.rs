//! Configuration reload, on SIGHUP and on `POST /admin/reload`, with `check-config` semantics:
//! the file is re-read and validated first, and an invalid file changes nothing (every problem
//! is logged with its line and column, and `boomerang_config_reloads_total{result="failed"}`
//! counts it).
//!
//! What an operator changes often applies at once: API keys and CORS origins (the HTTP app is
//! rebuilt from the new file and swapped in for the next request), queues' settings and business
//! hours (the callback service, the v3 and administration API and the flows' Business Hours
//! block read the configuration in force), administration users written in the file and the
//! skills of running agents. Sections that need a restart are listed, not applied: listeners,
//! SIP, media, store, flows directory, route points, trunks, queues added or removed, the
//! other `api` settings, call-in groups, agents added or removed.

use parking_lot::RwLock;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use thiserror::Error;

use crate::api::ApiState;
use crate::api::admin::auth::UserRecord;
use crate::config::{Config, ConfigSpec};

/// Why a reload changed nothing.
#[derive(Debug, Error)]
pub enum ReloadError {
    /// The engine was started from a configuration built in memory.
    #[error("the engine was not started from a file; nothing to re-read")]
    NoFile,
    /// The file does not validate (every problem, with its line and column).
    #[error("the configuration file is invalid; nothing changed: {0}")]
    Invalid(String),
    /// The task reading the file failed.
    #[error("reload task failed: {0}")]
    Task(String),
    /// A change could not be applied to the router.
    #[error("applying the configuration: {0}")]
    Apply(String),
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// Changes in force now, one line each.
    pub applied: Vec<String>,
    /// Sections whose changes wait for a restart.
    pub restart_needed: Vec<&'static str>,
}

/// Reads and validates `path` off the runtime's threads.
pub async fn load(path: &Path) -> Result<Config, ReloadError> {
    let path = path.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || Config::load(&path))
        .await
        .map_err(|e| ReloadError::Task(e.to_string()))?;
    loaded.map_err(|errors| {
        let problems: Vec<String> = errors
            .diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.pos.line, d.pos.column, d.path, d.message))
            .collect();
        ReloadError::Invalid(problems.join("; "))
    })
}

/// `value` of a section with the hot-reloadable parts of the `api` section blanked.
fn api_cold(spec: &ConfigSpec) -> Value {
    let mut v = json!(spec.api);
    if let Some(o) = v.as_object_mut() {
        o.remove("keys");
        o.remove("cors_origins");
    }
    v
}

/// Sections whose differences need a restart: `queues` when queues are added or removed (their
/// settings are hot), `api` for its settings other than keys and CORS origins.
pub fn restart_sections(old: &ConfigSpec, new: &ConfigSpec) -> Vec<&'static str> {
    let names =
        |s: &ConfigSpec| -> Vec<String> { s.queues.iter().map(|q| q.name.clone()).collect() };
    let pairs: [(&'static str, Value, Value); 11] = [
        ("listeners", json!(old.listeners), json!(new.listeners)),
        ("sip", json!(old.sip), json!(new.sip)),
        ("media", json!(old.media), json!(new.media)),
        ("store", json!(old.store), json!(new.store)),
        ("cluster", json!(old.cluster), json!(new.cluster)),
        ("flows_dir", json!(old.flows_dir), json!(new.flows_dir)),
        (
            "route_points",
            json!(old.route_points),
            json!(new.route_points),
        ),
        ("trunks", json!(old.trunks), json!(new.trunks)),
        ("queues", json!(names(old)), json!(names(new))),
        ("api", api_cold(old), api_cold(new)),
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

/// Applies what the shared state takes in place: administration users written in the file and
/// the skills of agents the router knows. Returns what changed and whether agents changed in a
/// way that needs a restart. `new`'s agents become `old`'s with the applied skills.
pub fn apply_to_state(
    s: &ApiState,
    old: &ConfigSpec,
    new: &mut Config,
) -> Result<Applied, ReloadError> {
    let mut applied: Vec<String> = Vec::new();
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
    // Agents: only the skills of agents the router knows change in place; the agent list in
    // force (which includes agents defined through the API) is kept otherwise.
    let mut agents = old.agents.clone();
    let mut agents_need_restart = false;
    for a in &new.spec.agents {
        match agents.iter_mut().find(|o| o.id == a.id) {
            Some(o) if o.skills != a.skills && s.router.agents().index_of(&a.id).is_ok() => {
                let levels: Vec<(String, u8)> = a
                    .skills
                    .iter()
                    .map(|(k, v)| (k.clone(), (*v).clamp(0, 10) as u8))
                    .collect();
                s.router
                    .set_agent_skills(&a.id, &levels)
                    .map_err(|e| ReloadError::Apply(e.to_string()))?;
                s.agent_book.replace_spec(a.clone());
                o.skills = a.skills.clone();
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
    new.spec.agents = agents;
    let mut restart_needed = restart_sections(old, &new.spec);
    if agents_need_restart {
        restart_needed.push("agents (added, removed, names, SIP users or passwords)");
    }
    Ok(Applied {
        applied,
        restart_needed,
    })
}

/// Lines for the hot sections that differ between `old` and `new`.
fn hot_changes(old: &ConfigSpec, new: &ConfigSpec) -> Vec<String> {
    let mut out = Vec::new();
    if json!(old.api.keys) != json!(new.api.keys) {
        out.push("api.keys".to_string());
    }
    if old.api.cors_origins != new.api.cors_origins {
        out.push("api.cors_origins".to_string());
    }
    if json!(old.business_hours) != json!(new.business_hours) {
        out.push("business_hours".to_string());
    }
    for q in &new.queues {
        if let Some(o) = old.queues.iter().find(|o| o.name == q.name)
            && json!(o) != json!(q)
        {
            out.push(format!("queue `{}` settings", q.name));
        }
    }
    out
}

/// Builds the HTTP app from the API state (the engine's probes, metrics and API).
pub type BuildApp = Box<dyn Fn(ApiState) -> axum::Router + Send + Sync>;

/// The engine's configuration in force and the HTTP app built from it.
pub struct Live {
    state: RwLock<ApiState>,
    app: RwLock<axum::Router>,
    build: BuildApp,
    metrics: Arc<super::metrics::Metrics>,
    /// One reload at a time.
    running: tokio::sync::Mutex<()>,
}

impl Live {
    /// Builds the first app from `state`; `state.live` points here afterwards.
    pub fn new(
        state: ApiState,
        build: BuildApp,
        metrics: Arc<super::metrics::Metrics>,
    ) -> Arc<Live> {
        let app = build(state.clone());
        let live = Arc::new(Live {
            state: RwLock::new(state.clone()),
            app: RwLock::new(app),
            build,
            metrics,
            running: tokio::sync::Mutex::new(()),
        });
        let _ = state.live.set(Arc::downgrade(&live));
        live
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.state.read().config.clone()
    }

    /// A router that hands every request to the app in force at that moment.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        let live = self.clone();
        axum::Router::new().fallback_service(tower::service_fn(
            move |req: axum::extract::Request| {
                let app = live.app.read().clone();
                tower::ServiceExt::oneshot(app, req)
            },
        ))
    }

    /// Re-reads the file the engine started from and applies it; logs and counts the outcome.
    pub async fn reload(&self) -> Result<Applied, ReloadError> {
        let result = self.reload_inner().await;
        let label = if result.is_ok() { "ok" } else { "failed" };
        self.metrics.config_reloaded(label);
        match &result {
            Ok(a) => tracing::info!(
                applied = ?a.applied,
                restart_needed = ?a.restart_needed,
                "configuration reloaded"
            ),
            Err(e) => tracing::error!(error = %e, "configuration reload refused"),
        }
        result
    }

    async fn reload_inner(&self) -> Result<Applied, ReloadError> {
        let _one = self.running.lock().await;
        let old = self.config();
        let path = old.file.clone().ok_or(ReloadError::NoFile)?;
        let mut new = load(&path).await?;
        let template = self.state.read().clone();
        let mut done = apply_to_state(&template, &old.spec, &mut new)?;
        let mut hot = hot_changes(&old.spec, &new.spec);
        hot.append(&mut done.applied);
        done.applied = hot;
        let new = Arc::new(new);
        template.callbacks.set_config(new.clone());
        let core = crate::engine::Core {
            config: new.clone(),
            ..template.core.clone()
        };
        let state = ApiState {
            core,
            key_hashes: Arc::new(crate::api::key_hashes(&new)),
            ..template
        };
        let app = (self.build)(state.clone());
        *self.state.write() = state;
        *self.app.write() = app;
        Ok(done)
    }
}

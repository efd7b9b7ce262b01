//! Start-up and shutdown order: config → store → callbacks (recovered) → scheduler → API. SIP,
//! media and the router join here as they land.

pub mod callbacks;
pub mod node;
pub mod sip;
mod sip_start;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::TimeDelta;
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::call::Dialer;
use crate::callback::service::{CallbackService, QueueEvent};
use crate::callin::{CallIn, GroupBook};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::flow::FlowServices;
use crate::push::{LogNotifier, Notifier};
use crate::routing::{Dispatch, Router, Waiting};
use crate::rules::RuleBook;
use crate::store::{SqliteStore, Store, StoreError};

/// Why the engine could not start.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The store could not be opened or read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Callbacks could not be recovered.
    #[error("recovering callbacks: {0}")]
    Recover(String),
    /// The router could not be built from the configuration.
    #[error("routing: {0}")]
    Routing(#[from] crate::routing::RouterError),
    /// The stored rules could not be read or no longer validate.
    #[error("rules: {0}")]
    Rules(#[from] crate::rules::BookError),
    /// The stored Click-to-Call-In groups could not be read.
    #[error("call-in groups: {0}")]
    Groups(#[from] crate::callin::GroupBookError),
    /// The prompt library could not be loaded.
    #[error("prompts: {0}")]
    Prompts(String),
    /// A flow file is invalid.
    #[error("flows:\n{0}")]
    Flows(String),
    /// `sip.public_host` is a host name that does not resolve to an address.
    #[error("sip.public_host `{host}` does not resolve to an address: {why}")]
    PublicHost {
        /// The configured name.
        host: String,
        /// The resolver's answer.
        why: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// The engine's parts that do not touch the network: callbacks (recovered from the store),
/// call-in groups and requests, and the router with its assignment dispatch. The engine, flow
/// tests and the simulator's virtual mode all build it the same way. The one set of service
/// handles: the [`Engine`], the API's state and the flows' services each embed it.
#[derive(Clone)]
pub struct Core {
    /// Configuration.
    pub config: Arc<Config>,
    /// Time.
    pub clock: SharedClock,
    /// Callbacks.
    pub callbacks: Arc<CallbackService>,
    /// Click-to-Call-In.
    pub callin: Arc<CallIn>,
    /// The router, for EWT, positions and agent counts (the one `dispatch` delivers from).
    pub router: Arc<Router>,
    /// The router and its assignment delivery.
    pub dispatch: Arc<Dispatch>,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Number validation, capacity and region affinity rules and their queues.
    pub rules: Arc<RuleBook>,
    /// Click-to-Call-In group administration.
    pub groups: Arc<GroupBook>,
    /// The last agent each caller talked to (Route Agent), shared by the flows.
    pub last_agents: Arc<crate::flow::last_agent::LastAgents>,
}

impl Core {
    /// Builds the parts and recovers callbacks; waiting callbacks re-enter their queues.
    pub async fn build(
        config: Arc<Config>,
        clock: SharedClock,
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Core, EngineError> {
        Core::build_with(config, clock, store, notifier, None).await
    }

    /// [`Self::build`] as one node of a cluster when `leases` is given: nothing is recovered,
    /// callbacks are claimed as they fall due (see `engine::node`).
    pub async fn build_with(
        config: Arc<Config>,
        clock: SharedClock,
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
        leases: Option<Arc<dyn crate::callback::lease::Leases>>,
    ) -> Result<Core, EngineError> {
        let callbacks = Arc::new(CallbackService::new(
            config.clone(),
            clock.clone(),
            store.clone(),
            notifier,
        ));
        if let Some(leases) = leases {
            callbacks.set_leases(leases);
        }
        let router = Arc::new(Router::from_config(&config)?);
        let dispatch = Arc::new(Dispatch::new(router, clock.clone()));
        {
            let dispatch = dispatch.clone();
            callbacks.set_queue_sink(Arc::new(move |event| apply_queue_event(&dispatch, event)));
        }
        let recovered = callbacks
            .recover()
            .await
            .map_err(|e| EngineError::Recover(e.to_string()))?;
        tracing::info!(recovered, "callbacks recovered from the store");
        let rules = Arc::new(RuleBook::load(&config, store.clone(), callbacks.clone()).await?);
        let callin = Arc::new(CallIn::new());
        let groups = Arc::new(
            GroupBook::load(&config.spec.callin_groups, store.clone(), callin.clone()).await?,
        );
        let saved: Vec<crate::callin::CallInRequest> = store
            .documents(crate::callin::DOC_KIND)
            .await?
            .into_iter()
            .filter_map(|d| serde_json::from_value(d.body).ok())
            .collect();
        tracing::info!(
            requests = saved.len(),
            "call-in requests recovered from the store"
        );
        callin.restore(saved);
        Ok(Core {
            config,
            clock,
            callbacks,
            callin,
            router: dispatch.router().clone(),
            dispatch,
            store,
            rules,
            groups,
            last_agents: Default::default(),
        })
    }

    /// Services for flows, ringing agents through `agents`.
    pub fn flow_services(&self, agents: Arc<dyn Dialer>) -> FlowServices {
        FlowServices {
            core: self.clone(),
            agents,
            http: Arc::new(crate::flow::http::HttpGate::new(
                &self.config.spec.flows.http,
            )),
            flows: Default::default(),
        }
    }

    /// The router.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// Starts the retention sweep of completed callback records (`store.retention_days`).
    pub fn spawn_retention(&self) -> JoinHandle<()> {
        tokio::spawn(crate::store::retention::retention_loop(
            self.store.clone(),
            self.clock.clone(),
            self.config.spec.store.clone(),
        ))
    }

    /// Starts the scheduler task (activations, retries, purges, call-in expiry).
    pub fn spawn_scheduler(&self) -> JoinHandle<()> {
        tokio::spawn(scheduler_loop(
            self.callbacks.clone(),
            self.callin.clone(),
            self.clock.clone(),
            self.store.clone(),
        ))
    }
}

/// A running engine: its [`Core`] (reached as fields through `Deref`) and what it serves on.
pub struct Engine {
    /// The service handles (callbacks, call-in, router and dispatch, rules, groups, store).
    pub core: Core,
    /// The address the API listens on.
    pub http_addr: SocketAddr,
    /// Where SIP listens (empty without SIP listeners).
    pub sip: sip::SipAddrs,
    /// The separate metrics listener (`metrics.listen`), if any.
    pub metrics_addr: Option<SocketAddr>,
    /// What `/readyz` reports.
    pub health: Arc<crate::ops::Health>,
    tasks: crate::ops::shutdown::Tasks,
    ua: Option<crate::sip::ua::UaHandle>,
    calls: tokio_util::task::TaskTracker,
    live: Arc<crate::ops::reload::Live>,
}

impl std::ops::Deref for Engine {
    type Target = Core;

    /// The engine's services, as `engine.router`, `engine.callbacks`, ...
    fn deref(&self) -> &Core {
        &self.core
    }
}

/// What an engine is started with: its configuration, and the store, notifier, clock and
/// shutdown signal, each replaceable (tests, the simulator, another store backend).
#[must_use = "an engine builder does nothing until `start`"]
pub struct EngineBuilder {
    config: Arc<Config>,
    store: Option<Arc<dyn Store>>,
    notifier: Option<Arc<dyn Notifier>>,
    clock: Option<SharedClock>,
    shutdown: Option<CancellationToken>,
}

impl EngineBuilder {
    /// The store to use instead of SQLite in the configured data directory.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Where customer notifications go instead of the log.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The clock to use instead of the system's.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A token whose cancellation stops the engine's tasks (as [`Engine::shutdown`] does).
    pub fn shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = Some(token);
        self
    }

    /// Starts every part in order; returns once the API is listening.
    pub async fn start(self) -> Result<Engine, EngineError> {
        let config = self.config;
        let clock = self.clock.unwrap_or_else(crate::clock::SystemClock::shared);
        let (store, node): (Arc<dyn Store>, _) = match self.store {
            Some(s) => (s, None),
            None => open_store(&config, &clock).await?,
        };
        let notifier = self
            .notifier
            .unwrap_or_else(|| Arc::new(LogNotifier) as Arc<dyn Notifier>);
        let token = self.shutdown.map(|t| t.child_token()).unwrap_or_default();
        let tasks = crate::ops::shutdown::Tasks::new(token);
        Engine::run(config, clock, store, node, notifier, tasks).await
    }
}

/// The store the configuration names: SQLite in the data directory, or PostgreSQL at
/// `store.url` (fails at once, with the reason, when the database cannot be reached), where
/// this engine joins the cluster as `cluster.node_id`.
async fn open_store(
    config: &Config,
    clock: &SharedClock,
) -> Result<(Arc<dyn Store>, Option<Arc<node::Node>>), StoreError> {
    let st = &config.spec.store;
    Ok(match st.kind {
        crate::config::StoreKind::Sqlite => {
            (Arc::new(SqliteStore::open(&config.data_dir())?), None)
        }
        crate::config::StoreKind::Postgres => {
            let pg = crate::store::PostgresStore::connect(&st.url, st.pool_size as usize).await?;
            let node = node::Node::join(&pg, &config.spec.cluster, clock.clone()).await?;
            (Arc::new(pg), Some(node))
        }
    })
}

impl Engine {
    /// A builder for an engine of `config`; by default SQLite in its data directory, the log
    /// notifier, the system clock and no outside shutdown signal.
    pub fn builder(config: Arc<Config>) -> EngineBuilder {
        EngineBuilder {
            config,
            store: None,
            notifier: None,
            clock: None,
            shutdown: None,
        }
    }

    /// Starts every part in order with the configured store and `clock`; returns once the API
    /// is listening (the builder with a clock).
    pub async fn start(config: Arc<Config>, clock: SharedClock) -> Result<Engine, EngineError> {
        Engine::builder(config).clock(clock).start().await
    }

    async fn run(
        config: Arc<Config>,
        clock: SharedClock,
        store: Arc<dyn Store>,
        node: Option<Arc<node::Node>>,
        notifier: Arc<dyn Notifier>,
        tasks: crate::ops::shutdown::Tasks,
    ) -> Result<Engine, EngineError> {
        let health = crate::ops::Health::new();
        let metrics = crate::ops::metrics::Metrics::new();
        let calls = tokio_util::task::TaskTracker::new();
        let store: Arc<dyn Store> = Arc::new(crate::ops::store_metrics::MeteredStore::new(
            store,
            metrics.store.clone(),
        ));
        // Agents defined or changed through the administration API join the file's.
        let stored_agents = store.documents(crate::agents::DOC_KIND).await?;
        let config = if stored_agents.is_empty() {
            config
        } else {
            let mut c = (*config).clone();
            let n = crate::agents::apply_stored(&mut c.spec, stored_agents);
            tracing::info!(agents = n, "agent definitions recovered from the store");
            Arc::new(c)
        };
        let leases = node
            .clone()
            .map(|n| n as Arc<dyn crate::callback::lease::Leases>);
        let core = Core::build_with(config.clone(), clock.clone(), store, notifier, leases).await?;
        health.set_store_open();
        if let Some(node) = &node {
            let url = &config.spec.store.url;
            let books = (&core.rules, &core.groups);
            crate::cluster::share_counts_and_config(
                url,
                &core.store,
                &clock,
                &core.callbacks,
                books,
                &tasks,
            )
            .await;
            let settled = node.settle_own(&core.callbacks).await?;
            tracing::info!(
                settled,
                "callbacks left by this node's previous run resolved"
            );
            tasks.spawn(
                node.clone()
                    .heartbeat_loop(core.callbacks.clone(), health.clone()),
            );
        }
        // The scheduler dials callbacks: it stops when a shutdown starts.
        tasks.spawn_until(
            tasks.intake.clone(),
            scheduler_loop(
                core.callbacks.clone(),
                core.callin.clone(),
                clock.clone(),
                core.store.clone(),
            ),
        );
        // Push delivery: the outbox left by a previous run is delivered first.
        let channels = crate::push::Channels::from_config(&config, clock.clone());
        core.callbacks.push_hub().set_channels(channels.clone());
        let worker = Arc::new(crate::push::Worker {
            store: core.store.clone(),
            clock: clock.clone(),
            channels,
            hub: core.callbacks.push_hub().clone(),
            settings: config.spec.push.clone(),
            metrics: metrics.push.clone(),
        });
        tasks.spawn(worker.run());
        tasks.spawn(upcoming_loop(
            core.callbacks.clone(),
            core.router.clone(),
            clock.clone(),
        ));
        tasks.spawn(crate::store::retention::retention_loop(
            core.store.clone(),
            clock.clone(),
            config.spec.store.clone(),
        ));
        let state = ApiState::new(core.clone());
        let users = crate::users::restore(
            &state.admin,
            core.store.documents(crate::users::DOC_KIND).await?,
        );
        tracing::info!(users, "administration users recovered from the store");
        let addr = config.spec.listeners.http;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| EngineError::Bind { addr, source })?;
        let http_addr = listener
            .local_addr()
            .map_err(|source| EngineError::Bind { addr, source })?;
        // Agents across nodes: the view, this node's arbiter and its internal endpoints.
        let cluster =
            crate::cluster::Node::start(&config, &core.dispatch, &clock, http_addr, &tasks).await?;
        if let Some(node) = &node {
            // Claiming leads to dialling: it stops when a shutdown starts.
            tasks.spawn_until(
                tasks.intake.clone(),
                node.clone().claim_loop(
                    core.callbacks.clone(),
                    core.dispatch.clone(),
                    core.rules.clone(),
                    config.clone(),
                    cluster.view.clone(),
                ),
            );
        }
        let metrics_on = config.spec.metrics.enabled;
        // The API is rebuilt from the configuration on a reload (SIGHUP, POST /admin/reload).
        let live =
            crate::ops::reload::Live::new(state, Box::new(crate::ui::with_api), metrics.clone());
        let app = if metrics_on {
            crate::ops::routes(health.clone())
                .merge(crate::ops::docs::routes())
                .merge(crate::ops::metrics::routes(metrics.clone()))
                .merge(live.router())
                .layer(axum::middleware::from_fn_with_state(
                    metrics.clone(),
                    crate::ops::metrics::count_http,
                ))
        } else {
            metrics.disable();
            crate::ops::routes(health.clone())
                .merge(crate::ops::docs::routes())
                .merge(live.router())
        };
        let app = app.merge(cluster.arbiter.routes());
        let limits = api::server::ServeLimits::from_settings(&config.spec.api);
        // Tracked but not cut by the token: the server stops itself gracefully on it.
        tasks.tracker.spawn(api::server::serve_until(
            listener,
            app,
            limits,
            tasks.token.clone(),
        ));
        tracing::info!(%http_addr, "REST API listening");
        let metrics_addr = match config.spec.metrics.listen.filter(|_| metrics_on) {
            Some(addr) => Some(
                crate::ops::metrics::serve_separately(addr, &metrics, &health, limits, &tasks)
                    .await
                    .map_err(|source| EngineError::Bind { addr, source })?,
            ),
            None => None,
        };
        let listeners = &config.spec.listeners;
        let mut sip_addrs = sip::SipAddrs::default();
        let mut ua = None;
        if !(listeners.sip_udp.is_empty() && listeners.sip_tcp.is_empty()) {
            let parts = sip_start::SipParts {
                tasks: &tasks,
                calls: &calls,
                metrics: &metrics,
            };
            let (addrs, handle) = sip_start::start_sip(&core, parts).await?;
            sip_addrs = addrs;
            if !metrics_on {
                handle.metrics().disable();
            }
            cluster.arbiter.set_ua(handle.clone());
            ua = Some(handle);
        }
        metrics.set_sources(crate::ops::metrics::Sources {
            ua: ua.clone(),
            router: core.router.clone(),
            callbacks: core.callbacks.clone(),
        });
        health.set_flows_loaded();
        health.set_listeners_bound();
        Ok(Engine {
            core,
            http_addr,
            sip: sip_addrs,
            metrics_addr,
            health,
            tasks,
            ua,
            calls,
            live,
        })
    }

    /// Re-reads the configuration file and applies it (SIGHUP); an invalid file changes
    /// nothing. Logged and counted either way.
    pub async fn reload(
        &self,
    ) -> Result<crate::ops::reload::Applied, crate::ops::reload::ReloadError> {
        self.live.reload().await
    }

    /// Stops the engine's tasks at once (HTTP answers the requests in flight).
    pub fn shutdown(self) {
        self.tasks.token.cancel();
    }

    /// Graceful shutdown (SIGTERM): refuses new calls, lets live ones run for up to
    /// `shutdown.drain_seconds`, hangs up the rest, flushes the store and stops every task.
    pub async fn drain(&self, config: &Config) -> crate::ops::shutdown::DrainReport {
        crate::ops::shutdown::Drain {
            health: &self.health,
            ua: self.ua.as_ref(),
            calls: &self.calls,
            store: &self.store,
            tasks: &self.tasks,
            limit: std::time::Duration::from_secs(config.spec.shutdown.drain_seconds.into()),
            clock: self.dispatch.clock(),
        }
        .run()
        .await
    }
}

/// Sleeps on the clock until the next callback deadline (or at most one second, so that new
/// deadlines and call-in expiries are picked up) and handles what is due.
async fn scheduler_loop(
    callbacks: Arc<CallbackService>,
    callin: Arc<CallIn>,
    clock: SharedClock,
    store: Arc<dyn Store>,
) {
    loop {
        let now = clock.now();
        let wake = callbacks
            .next_deadline()
            .into_iter()
            .chain(callin.next_expiry())
            .min()
            .unwrap_or(now + TimeDelta::seconds(1))
            .min(now + TimeDelta::seconds(1));
        clock.sleep_until(wake).await;
        if let Err(e) = callbacks.tick().await {
            tracing::error!(error = %e, "callback scheduler");
        }
        let expired: Vec<_> = callin
            .expire_due(clock.now())
            .into_iter()
            .filter_map(|id| callin.get(id))
            .collect();
        crate::callin::persist_later(&store, expired);
    }
}

/// Every 5 s on the clock: raises CALLBACK_UPCOMING for callbacks whose EWT (their place in
/// their queue, as `/callbacks/retrieve` reports it) dropped under their queue's threshold.
async fn upcoming_loop(callbacks: Arc<CallbackService>, router: Arc<Router>, clock: SharedClock) {
    loop {
        clock.sleep(TimeDelta::seconds(5)).await;
        let ewt_of = |rec: &crate::callback::model::CallbackRecord| {
            let pos = router.position(&rec.queue, rec.id).ok().flatten()?;
            router
                .ewt(&rec.queue, pos)
                .ok()
                .flatten()
                .map(|d| d.num_seconds())
        };
        callbacks.check_upcoming(ewt_of).await;
    }
}

/// Applies one of the callback service's queue changes to the router; assignments of
/// callbacks go to the dispatch's sink (the outbound dialer).
fn apply_queue_event(dispatch: &Dispatch, event: QueueEvent) {
    let result = match event {
        QueueEvent::Enqueue {
            id,
            queue,
            priority,
            queue_time,
        } => dispatch.enqueue(
            &queue,
            Waiting {
                id,
                priority,
                enqueued_at: queue_time,
            },
        ),
        QueueEvent::Withdraw { id, queue } => dispatch.withdraw(&queue, id).map(|_| ()),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "router refused a callback queue event");
    }
}

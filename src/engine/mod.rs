//! Start-up and shutdown order: config → store → callbacks (recovered) → scheduler → API. SIP,
//! media and the router join here as they land.

pub mod callbacks;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::TimeDelta;
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::api::{self, ApiState};
use crate::call::Dialer;
use crate::callback::service::{CallbackService, QueueEvent};
use crate::callin::CallIn;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::flow::FlowServices;
use crate::push::{LogNotifier, Notifier};
use crate::routing::{Dispatch, Router, Waiting};
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
/// tests and the simulator's virtual mode all build it the same way.
pub struct Core {
    /// Configuration.
    pub config: Arc<Config>,
    /// Time.
    pub clock: SharedClock,
    /// Callbacks.
    pub callbacks: Arc<CallbackService>,
    /// Click-to-Call-In.
    pub callin: Arc<CallIn>,
    /// The router and its assignment delivery.
    pub dispatch: Arc<Dispatch>,
}

impl Core {
    /// Builds the parts and recovers callbacks; waiting callbacks re-enter their queues.
    pub async fn build(
        config: Arc<Config>,
        clock: SharedClock,
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Core, EngineError> {
        let callbacks = Arc::new(CallbackService::new(
            config.clone(),
            clock.clone(),
            store,
            notifier,
        ));
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
        let callin = Arc::new(CallIn::new());
        for g in &config.spec.callin_groups {
            if let Err(e) = callin.add_group(g.clone()) {
                tracing::warn!(group = %g.name, error = %e, "call-in group refused");
            }
        }
        Ok(Core {
            config,
            clock,
            callbacks,
            callin,
            dispatch,
        })
    }

    /// Services for flows, ringing agents through `agents`.
    pub fn flow_services(&self, agents: Arc<dyn Dialer>) -> FlowServices {
        FlowServices {
            config: self.config.clone(),
            clock: self.clock.clone(),
            callbacks: self.callbacks.clone(),
            callin: self.callin.clone(),
            dispatch: self.dispatch.clone(),
            agents,
        }
    }

    /// The router.
    pub fn router(&self) -> &Arc<Router> {
        self.dispatch.router()
    }

    /// Starts the scheduler task (activations, retries, purges, call-in expiry).
    pub fn spawn_scheduler(&self) -> JoinHandle<()> {
        tokio::spawn(scheduler_loop(
            self.callbacks.clone(),
            self.callin.clone(),
            self.clock.clone(),
        ))
    }
}

/// A running engine.
pub struct Engine {
    /// Callbacks.
    pub callbacks: Arc<CallbackService>,
    /// Click-to-Call-In.
    pub callin: Arc<CallIn>,
    /// The router.
    pub router: Arc<Router>,
    /// The address the API listens on.
    pub http_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Engine {
    /// Starts every part in order; returns once the API is listening.
    pub async fn start(config: Arc<Config>, clock: SharedClock) -> Result<Engine, EngineError> {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir())?);
        let notifier: Arc<dyn Notifier> = Arc::new(LogNotifier);
        let core = Core::build(config.clone(), clock.clone(), store, notifier).await?;
        let Core {
            callbacks,
            callin,
            dispatch,
            ..
        } = core;
        let router = dispatch.router().clone();
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(scheduler_loop(
            callbacks.clone(),
            callin.clone(),
            clock.clone(),
        )));
        let state = ApiState::new(
            config.clone(),
            clock.clone(),
            callbacks.clone(),
            callin.clone(),
            router.clone(),
        );
        let addr = config.spec.listeners.http;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| EngineError::Bind { addr, source })?;
        let http_addr = listener
            .local_addr()
            .map_err(|source| EngineError::Bind { addr, source })?;
        let app = api::router(state);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        }));
        tracing::info!(%http_addr, "REST API listening");
        Ok(Engine {
            callbacks,
            callin,
            router,
            http_addr,
            tasks,
        })
    }

    /// Stops the engine's tasks.
    pub fn shutdown(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Sleeps on the clock until the next callback deadline (or at most one second, so that new
/// deadlines and call-in expiries are picked up) and handles what is due.
async fn scheduler_loop(callbacks: Arc<CallbackService>, callin: Arc<CallIn>, clock: SharedClock) {
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
        callin.expire_due(clock.now());
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

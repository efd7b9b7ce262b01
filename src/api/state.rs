//! What every handler shares: the API's state (configuration, services, stores, limits) and
//! the hashed API keys it checks.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ErrorLog, admin, ratelimit};
use crate::callback::service::CallbackService;
use crate::callin::CallIn;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::routing::Router as RoutingCore;

/// Everything the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Configuration in force.
    pub config: Arc<Config>,
    /// Time.
    pub clock: SharedClock,
    /// Callbacks.
    pub callbacks: Arc<CallbackService>,
    /// Click-to-Call-In.
    pub callin: Arc<CallIn>,
    /// The router, for EWT, positions and agent counts.
    pub router: Arc<RoutingCore>,
    /// Recent errors.
    pub errors: Arc<ErrorLog>,
    /// Name and SHA-256 of every accepted API key.
    pub key_hashes: Arc<Vec<(String, [u8; 32])>>,
    /// Where accepted call-in requests are made durable before they are returned.
    pub store: Option<Arc<dyn crate::store::Store>>,
    /// Administration users and sessions.
    pub admin: Arc<admin::AdminAuth>,
    /// Rules and their queues (`/admin/rules`); absent when the API runs without a store.
    pub rules: Option<Arc<crate::rules::RuleBook>>,
    /// Click-to-Call-In group administration (`/admin/callin`); absent without a store.
    pub groups: Option<Arc<crate::callin::GroupBook>>,
    /// Per-key, per-user and per-address request budgets.
    pub limits: Arc<ratelimit::RateLimiter>,
    /// The router with assignment delivery: agent changes made here re-dispatch waiting work.
    pub dispatch: Option<Arc<crate::routing::Dispatch>>,
    /// Agent definitions with the changes made through the API.
    pub agent_book: Arc<crate::agents::AgentBook>,
    /// The engine's reloadable configuration (`POST /admin/reload`, SIGHUP), once it runs.
    pub live: Arc<std::sync::OnceLock<std::sync::Weak<crate::ops::reload::Live>>>,
}

/// Name and SHA-256 of every API key of `config` (plain keys are hashed here and never kept).
pub fn key_hashes(config: &Config) -> Vec<(String, [u8; 32])> {
    config
        .spec
        .api
        .keys
        .iter()
        .filter_map(|k| {
            let hash: Option<[u8; 32]> = match (&k.key, &k.key_sha256) {
                (Some(plain), _) => Some(Sha256::digest(plain.as_bytes()).into()),
                (None, Some(hex_hash)) => {
                    hex::decode(hex_hash).ok().and_then(|v| v.try_into().ok())
                }
                _ => None,
            };
            hash.map(|h| (k.name.clone(), h))
        })
        .collect()
}

impl ApiState {
    /// State for `config`'s API keys (plain keys are hashed here and never kept).
    pub fn new(
        config: Arc<Config>,
        clock: SharedClock,
        callbacks: Arc<CallbackService>,
        callin: Arc<CallIn>,
        router: Arc<RoutingCore>,
    ) -> Self {
        let key_hashes = key_hashes(&config);
        let admin = Arc::new(admin::AdminAuth::new(&config.spec.admin, clock.clone()));
        ApiState {
            agent_book: Arc::new(crate::agents::AgentBook::new(&config.spec)),
            dispatch: None,
            limits: Arc::new(ratelimit::RateLimiter::default()),
            admin,
            config,
            clock,
            callbacks,
            callin,
            router,
            errors: Arc::new(ErrorLog::default()),
            key_hashes: Arc::new(key_hashes),
            store: None,
            rules: None,
            groups: None,
            live: Arc::default(),
        }
    }

    /// A queue's outcome counters (answered, abandoned, service level); zero without dispatch.
    pub fn outcomes(&self, queue: &str) -> crate::routing::stats::QueueOutcomes {
        self.dispatch
            .as_ref()
            .map(|d| d.stats().get(queue))
            .unwrap_or_default()
    }

    /// The name of the configured key `key` is, if any. Every key is compared in constant
    /// time and none is skipped, so timing reveals neither the key nor which one matched.
    pub fn key_name(&self, key: &[u8]) -> Option<&str> {
        let h: [u8; 32] = Sha256::digest(key).into();
        let mut found = None;
        for (name, k) in self.key_hashes.iter() {
            if bool::from(k.ct_eq(&h)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

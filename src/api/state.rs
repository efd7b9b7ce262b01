//! What every handler shares: the API's state (configuration, services, stores, limits) and
//! the hashed API keys it checks.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ErrorLog, admin, ratelimit};
use crate::config::Config;
use crate::engine::Core;

/// Everything the handlers share: the engine's [`Core`] (reached as fields through `Deref`:
/// `state.config`, `state.store`, ...) and the API's own parts.
#[derive(Clone)]
pub struct ApiState {
    /// The service handles; `config` is the configuration in force (replaced on a reload).
    pub core: Core,
    /// Recent errors.
    pub errors: Arc<ErrorLog>,
    /// Name and SHA-256 of every accepted API key.
    pub key_hashes: Arc<Vec<(String, [u8; 32])>>,
    /// Administration users and sessions.
    pub admin: Arc<admin::AdminAuth>,
    /// Per-key, per-user and per-address request budgets.
    pub limits: Arc<ratelimit::RateLimiter>,
    /// Agent definitions with the changes made through the API.
    pub agent_book: Arc<crate::agents::AgentBook>,
    /// The engine's reloadable configuration (`POST /admin/reload`, SIGHUP), once it runs.
    pub live: Arc<std::sync::OnceLock<std::sync::Weak<crate::ops::reload::Live>>>,
}

impl std::ops::Deref for ApiState {
    type Target = Core;

    /// The engine's services, as `state.config`, `state.router`, ...
    fn deref(&self) -> &Core {
        &self.core
    }
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
    /// State over the engine's `core`, for its configuration's API keys (plain keys are hashed
    /// here and never kept).
    pub fn new(core: Core) -> Self {
        let config = &core.config;
        let key_hashes = key_hashes(config);
        let admin = Arc::new(admin::AdminAuth::new(
            &config.spec.admin,
            core.clock.clone(),
        ));
        ApiState {
            agent_book: Arc::new(crate::agents::AgentBook::new(&config.spec)),
            limits: Arc::new(ratelimit::RateLimiter::default()),
            admin,
            errors: Arc::new(ErrorLog::default()),
            key_hashes: Arc::new(key_hashes),
            live: Arc::default(),
            core,
        }
    }

    /// A queue's outcome counters (answered, abandoned, service level).
    pub fn outcomes(&self, queue: &str) -> crate::routing::stats::QueueOutcomes {
        self.dispatch.stats().get(queue)
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

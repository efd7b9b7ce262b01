//! What a queue's callbacks are held to: the configuration in force (a reload swaps it), and
//! the rules the rule book assigns — number validation and capacity grids — kept by the service
//! and consulted at creation and before every dial.

use std::sync::Arc;

use super::CallbackService;
use crate::config::Config;
use crate::rules::NumberRejection;
use crate::rules::capacity::CapacityGrid;
use crate::rules::number::{NumberRule, parse_e164};

impl CallbackService {
    /// The configuration in force (a reload swaps it).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    /// Takes a reloaded configuration: queues' settings and business hours apply from now on.
    pub fn set_config(&self, config: Arc<Config>) {
        *self.config.write() = config;
    }

    /// Assigns (or clears) a queue's number validation rule.
    pub fn set_number_rule(&self, queue: &str, rule: Option<NumberRule>) {
        let mut rules = self.number_rules.write();
        match rule {
            Some(r) => rules.insert(queue.to_string(), Arc::new(r)),
            None => rules.remove(queue),
        };
    }

    /// Assigns (or clears) a queue's capacity rule.
    pub fn set_capacity_rule(&self, queue: &str, grid: Option<CapacityGrid>) {
        let mut rules = self.capacity_rules.write();
        match grid {
            Some(g) => rules.insert(queue.to_string(), Arc::new(g)),
            None => rules.remove(queue),
        };
    }

    /// The number validation rule in force for a queue (for the queues page).
    pub fn assigned_number_rule(&self, queue: &str) -> Option<Arc<NumberRule>> {
        self.number_rules.read().get(queue).cloned()
    }

    /// Whether a capacity rule overrides the queue's slot capacity (for the queues page).
    pub fn has_capacity_rule(&self, queue: &str) -> bool {
        self.capacity_rules.read().contains_key(queue)
    }

    /// Checks a number against the queue's rule (or that it is E.164 when the queue has none);
    /// returns the E.164 form. Called at creation and again before every dial.
    pub fn check_number(&self, queue: &str, number: &str) -> Result<String, NumberRejection> {
        let rule = self.number_rules.read().get(queue).cloned();
        match rule {
            Some(r) => r.check(number),
            None => parse_e164(number).map(|n| n.e164),
        }
    }
}

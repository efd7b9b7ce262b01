//! Rules an administrator assigns to queues: number validation (countries and blocked
//! patterns), and as they land capacity and region affinity.

pub mod affinity;
pub mod capacity;
pub mod number;

pub use number::{NumberRejection, NumberRule, NumberRuleSpec};

//! Rules an administrator assigns to queues: number validation (countries and blocked
//! patterns), capacity grids and region affinity, kept durable and in force by the rule book.

pub(crate) mod affinity;
pub(crate) mod book;
pub(crate) mod capacity;
pub mod number;

pub use book::{BookError, RuleBook, RuleKind};
pub use number::{NumberRejection, NumberRule, NumberRuleSpec};

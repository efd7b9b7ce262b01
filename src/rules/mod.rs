//! Rules an administrator assigns to queues: number validation (countries and blocked
//! patterns), capacity grids and region affinity, kept durable and in force by the rule book.

pub mod affinity;
pub mod book;
pub mod capacity;
pub mod number;

pub use book::{BookError, RuleBook, RuleKind};
pub use number::{NumberRejection, NumberRule, NumberRuleSpec};

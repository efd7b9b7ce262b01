//! Callback records and their lifecycle: creation, states, cancel/reschedule/recreate, and (as
//! they land) availability, the scheduler and the outbound dialer.

pub mod availability;
pub mod bulk;
pub mod desired;
pub mod dialer;
pub mod model;
pub mod restart;
pub mod scheduler;
pub mod service;

pub use model::{
    CallbackRecord, CallbackState, CallbackType, CompletionReason, NewCallback, Origin,
};

//! Callback records and their lifecycle: creation, states, cancel/reschedule/recreate, and (as
//! they land) availability, the scheduler and the outbound dialer.

pub(crate) mod amd;
pub(crate) mod availability;
pub mod bulk;
pub mod calling_hours;
pub(crate) mod desired;
pub(crate) mod dialer;
pub mod ges;
pub mod lease;
pub mod model;
pub(crate) mod restart;
pub mod scheduler;
pub mod service;

pub use model::{
    CallbackRecord, CallbackState, CallbackType, CompletionReason, NewCallback, Origin,
};

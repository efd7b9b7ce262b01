//! SIP signalling pieces that do no I/O: message parsing and validation, transactions, digest
//! authentication, the registrar and dialogs. Transport and UA layers drive these.

pub mod auth_guard;
pub(crate) mod deadlines;
pub(crate) mod dialog;
pub mod digest;
mod driver;
mod endpoint;
pub mod in_process;
pub mod leg;
pub mod message;
pub(crate) mod overload;
pub mod registrar;
pub(crate) mod session_timer;
pub(crate) mod shard;
pub(crate) mod time;
pub mod transaction;
pub mod transport;
pub mod ua;

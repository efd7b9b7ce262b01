//! The REST API in the spirit of GES v3 (`/engagement/v3/…`): callbacks, availability, open-for,
//! queue status and call-in requests, authenticated by `x-api-key`, with a correlation id on
//! every answer and JSON errors that say which field is wrong and why.

pub mod admin;
pub(crate) mod availability;
mod callbacks;
pub(crate) mod callin;
pub(crate) mod captcha;
mod correlation;
pub(crate) mod error;
mod extract;
mod gate;
pub(crate) mod push;
pub(crate) mod queues;
pub mod ratelimit;
mod routes;
pub(crate) mod server;
mod state;
pub(crate) mod statistic_ex;
pub(crate) mod stats;

pub use callbacks::{CallbackView, CreateCallbackBody, IdBody, OpenForQuery, RescheduleBody};
pub use error::{ApiError, ErrorLog, ErrorLogEntry};
pub use extract::{Body, Q, Reply};
pub(crate) use extract::{known_queue, ok, service_error};
pub use gate::KeyName;
pub(crate) use queues::ewt_seconds;
pub use routes::{OPENAPI_PATH, api_routes, openapi, router};
pub use state::{ApiState, key_hashes};

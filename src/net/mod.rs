//! Network plumbing shared by the engine's listeners (HTTP and SIP over TCP).

pub mod admission;
pub mod backoff;
pub mod failures;

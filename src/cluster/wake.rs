//! Wake-ups for claimable callbacks through PostgreSQL `LISTEN/NOTIFY`: the channel and how
//! often the claim loop's listener resyncs; the listening itself is `cluster::listen`.
//!
//! A notification is only a hint: it can be lost while the listener reconnects, so the claim
//! loop re-reads every queue on `Hint::Resync` and keeps a slower poll besides.
//! The channel is raised by a trigger on the `callbacks` table (schema migration 3) whenever a
//! row becomes claimable — booked, rescheduled, back to QUEUED, its lease released — in the
//! very transaction that writes it, with the queue's name as payload.

use std::time::Duration;

/// The channel a claimable callback is announced on (payload: its queue).
pub const CALLBACKS: &str = "boomerang_callbacks";

/// A quiet listener asks for a full pass this often; the claim loop polls more often anyway.
pub const RESYNC_EVERY: Duration = Duration::from_secs(60);

//! RFC 3261 §17 transactions (with the RFC 6026 Accepted states) as sans-I/O state machines.
//!
//! Each machine is fed messages and the time (`handle_message`, `handle_timeout`) and asked
//! what to do (`poll_transmit`, `poll_timeout`, `poll_event`). A driver owns sockets and
//! sleeps; tests and the simulator drive the same code in virtual time.

mod client_invite;
mod client_non_invite;
mod key;
mod server_invite;
mod server_non_invite;
mod table;
mod timers;
mod two_xx;

use std::time::Instant;

use rsip::SipMessage;

pub use client_invite::{ClientInvite, ClientInviteState, ack_for};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::{Side, TransactionKey};
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};
pub use table::{Routed, Transactions};
pub use timers::{Event, Timers, TransactionError};
pub use two_xx::TwoXxRetransmitter;

use timers::code_of;

/// Any of the four transaction kinds, so one table can hold them.
#[derive(Debug)]
pub enum Transaction {
    /// Client INVITE.
    ClientInvite(ClientInvite),
    /// Client non-INVITE.
    ClientNonInvite(ClientNonInvite),
    /// Server INVITE.
    ServerInvite(ServerInvite),
    /// Server non-INVITE.
    ServerNonInvite(ServerNonInvite),
}

macro_rules! each {
    ($self:expr, $t:ident => $body:expr) => {
        match $self {
            Transaction::ClientInvite($t) => $body,
            Transaction::ClientNonInvite($t) => $body,
            Transaction::ServerInvite($t) => $body,
            Transaction::ServerNonInvite($t) => $body,
        }
    };
}

impl Transaction {
    /// Feeds a message matched to this transaction.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage) {
        each!(self, t => t.handle_message(now, msg))
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        each!(self, t => t.handle_timeout(now))
    }

    /// Reports a failed send.
    pub fn handle_transport_error(&mut self) {
        each!(self, t => t.handle_transport_error())
    }

    /// Sends a TU response through a server transaction.
    pub fn send_response(
        &mut self,
        now: Instant,
        resp: rsip::Response,
    ) -> Result<(), TransactionError> {
        match self {
            Transaction::ServerInvite(t) => t.send_response(now, resp),
            Transaction::ServerNonInvite(t) => t.send_response(now, resp),
            _ => Err(TransactionError::InvalidResponse {
                code: code_of(&resp),
                state: "client transaction",
            }),
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<SipMessage> {
        each!(self, t => t.poll_transmit())
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        each!(self, t => t.poll_timeout())
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        each!(self, t => t.poll_event())
    }

    /// True once the machine reached Terminated.
    pub fn is_terminated(&self) -> bool {
        each!(self, t => t.is_terminated())
    }
}

#[cfg(test)]
mod test_support;

//! The RFC 3261 timer values, one named timer, and the outbox every machine queues into.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rsip::SipMessage;
use thiserror::Error;

/// RFC 3261 timer base values; configurable so tests and odd networks can change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate (default 500 ms).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (default 5 s).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64*T1: timers B, F, H, J, L and M.
    pub fn t64(&self) -> Duration {
        self.t1 * 64
    }
}

/// What a transaction tells its transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A response for the TU (client transactions; 2xx retransmissions included in Accepted).
    Response(rsip::Response),
    /// An ACK arrived for our final response (server INVITE).
    AckReceived,
    /// Timer B, F or H fired: the peer never answered (or never ACKed).
    TimedOut,
    /// The driver reported that sending failed.
    TransportError,
    /// The transaction is over and may be dropped.
    Terminated,
}

/// Misuse of a transaction by its TU.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransactionError {
    /// The TU sent a response the current state does not allow.
    #[error("cannot send a {code} response in state {state}")]
    InvalidResponse {
        /// The status code the TU tried to send.
        code: u16,
        /// The state the transaction was in.
        state: &'static str,
    },
    /// The request lacks what a transaction needs (Via branch, CSeq).
    #[error("request unusable for a transaction: {0}")]
    BadRequest(&'static str),
}

/// One named RFC 3261 timer: when it fires next and its current interval.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timer {
    pub(super) at: Option<Instant>,
    pub(super) interval: Duration,
}

impl Timer {
    /// A timer firing `interval` after `now`.
    pub(super) fn start(now: Instant, interval: Duration) -> Timer {
        Timer {
            at: Some(now + interval),
            interval,
        }
    }

    /// A retransmission timer (A, E, G): none over a reliable transport (RFC 3261 §17.1.1.2).
    pub(super) fn retransmit(now: Instant, reliable: bool, interval: Duration) -> Timer {
        if reliable {
            Timer::default()
        } else {
            Timer::start(now, interval)
        }
    }

    /// An absorb timer (D, I, J, K): it fires at once over a reliable transport.
    pub(super) fn absorb(now: Instant, reliable: bool, wait: Duration) -> Timer {
        Timer::start(now, if reliable { Duration::ZERO } else { wait })
    }

    /// Restarts the timer with its interval doubled, capped at `cap` (exponential back-off).
    pub(super) fn back_off(&mut self, now: Instant, cap: Duration) {
        *self = Timer::start(now, (self.interval * 2).min(cap));
    }

    pub(super) fn due(&self, now: Instant) -> bool {
        self.at.is_some_and(|at| at <= now)
    }

    pub(super) fn stop(&mut self) {
        self.at = None;
    }
}

/// What every machine holds besides its state and timers: the request it serves, whether
/// the transport is reliable (no retransmissions, absorb timers at zero), the timer values
/// and the outbox.
#[derive(Debug)]
pub(super) struct Core {
    pub(super) request: rsip::Request,
    pub(super) reliable: bool,
    pub(super) timers: Timers,
    pub(super) out: Outbox,
}

impl Core {
    /// The core of a machine started for `request`, nothing queued yet.
    pub(super) fn new(request: rsip::Request, reliable: bool, timers: Timers) -> Core {
        Core {
            request,
            reliable,
            timers,
            out: Outbox::default(),
        }
    }
}

/// The messages and events a machine has queued for its driver and its TU.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    transmits: VecDeque<SipMessage>,
    events: VecDeque<Event>,
}

impl Outbox {
    pub(super) fn send(&mut self, msg: impl Into<SipMessage>) {
        self.transmits.push_back(msg.into());
    }

    /// Sends a copy of `msg` again, if there is one (a retransmitted request's last answer).
    pub(super) fn resend<M: Clone + Into<SipMessage>>(&mut self, msg: Option<&M>) {
        if let Some(m) = msg {
            self.send(m.clone());
        }
    }

    pub(super) fn emit(&mut self, e: Event) {
        self.events.push_back(e);
    }

    pub(super) fn next_transmit(&mut self) -> Option<SipMessage> {
        self.transmits.pop_front()
    }

    pub(super) fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

pub(super) fn earliest(timers: &[&Timer]) -> Option<Instant> {
    timers.iter().filter_map(|t| t.at).min()
}

pub(super) fn code_of(r: &rsip::Response) -> u16 {
    r.status_code.code()
}

/// The methods the four machines share, written once: each has a `state`, an `out` box and
/// the named timers listed, which terminating stops. The timers are listed by what their
/// firing does: `retransmit` (A, E, G: the machine's own `retransmit` sends again), `time_out`
/// (B, F, H: the peer never answered) or `end` (D, I, J, K, L, M: the wait is over). Each
/// timer runs only in the states it serves, so a due timer is one that must fire.
macro_rules! machine_common {
    (
        $state:ident,
        retransmit: [$($rt:ident),*],
        time_out: [$($to:ident),*],
        end: [$($end:ident),+]
    ) => {
        /// Current state.
        pub fn state(&self) -> $state {
            self.state
        }

        /// The request the transaction was started for (the TU builds a CANCEL from an INVITE's).
        pub fn request(&self) -> &rsip::Request {
            &self.core.request
        }

        /// True once the machine reached Terminated.
        pub fn is_terminated(&self) -> bool {
            self.state == $state::Terminated
        }

        /// The next message to send, if any.
        pub fn poll_transmit(&mut self) -> Option<SipMessage> {
            self.core.out.next_transmit()
        }

        /// When `handle_timeout` must next be called.
        pub fn poll_timeout(&self) -> Option<Instant> {
            super::timers::earliest(&[$(&self.$rt,)* $(&self.$to,)* $(&self.$end,)+])
        }

        /// The next event for the TU, if any.
        pub fn poll_event(&mut self) -> Option<Event> {
            self.core.out.next_event()
        }

        /// Fires every timer due at `now`: a retransmission, a time-out or the end.
        pub fn handle_timeout(&mut self, now: Instant) {
            $(if self.$rt.due(now) {
                self.retransmit(now);
            })*
            $(if self.$to.due(now) {
                self.time_out();
            })*
            $(if self.$end.due(now) {
                self.terminate();
            })+
        }

        fn terminate(&mut self) {
            self.state = $state::Terminated;
            $(self.$rt.stop();)*
            $(self.$to.stop();)*
            $(self.$end.stop();)+
            self.core.out.emit(Event::Terminated);
        }

        /// Timer B, F or H fired: the TU is told and the transaction ends.
        #[allow(dead_code)] // the server non-INVITE machine has no such timer
        fn time_out(&mut self) {
            self.core.out.emit(Event::TimedOut);
            self.terminate();
        }

        /// The transport failed: the TU is told and the transaction ends.
        fn fail(&mut self) {
            self.core.out.emit(Event::TransportError);
            self.terminate();
        }
    };
}
pub(super) use machine_common;

/// `send_response` of the two server machines, written once: the machine's own `respond`
/// moves it for the response's status code (or names the state refusing it), and says whether
/// the response is the one a retransmitted request gets again.
macro_rules! server_common {
    () => {
        /// Sends a response from the TU, if the state allows it.
        pub fn send_response(
            &mut self,
            now: Instant,
            resp: rsip::Response,
        ) -> Result<(), TransactionError> {
            let code = code_of(&resp);
            let again = self
                .respond(now, code)
                .map_err(|state| TransactionError::InvalidResponse { code, state })?;
            if again {
                self.last_response = Some(resp.clone());
            }
            self.core.out.send(resp);
            Ok(())
        }
    };
}
pub(super) use server_common;

//! The `CallLeg` seam: everything a flow, the dialer or the router may do with a call, without
//! knowing whether it is a SIP/RTP leg on the wire or an in-memory leg in a test or the simulator.

pub mod memory;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

/// Which way a leg was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A caller dialled one of our route points.
    Inbound,
    /// We dialled a customer or an agent.
    Outbound,
}

/// Facts about a leg that flows read as system variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegInfo {
    /// Unique id of the call (the SIP Call-ID on the wire).
    pub call_id: String,
    /// Calling number (caller id), as presented.
    pub ani: String,
    /// Dialled number.
    pub dnis: String,
    /// Inbound or outbound.
    pub direction: Direction,
}

/// One item of a play list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayItem {
    /// A named prompt from the prompt library (a WAV file decoded at load).
    Prompt(String),
    /// Digits read one by one (`"0"`…`"9"`, `*`, `#` prompts), e.g. a number to confirm.
    Digits(String),
    /// Silence of the given length.
    Silence(Duration),
}

/// How a prompt is played.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlayOptions {
    /// A key press stops the prompt (the digit stays buffered for the next collection).
    pub barge_in: bool,
    /// Repeat the play list until stopped (music on hold).
    pub looped: bool,
}

/// How a play ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayOutcome {
    /// Every item was played.
    Completed,
    /// A digit arrived while barge-in was allowed.
    Interrupted(char),
    /// The other party hung up during the prompt.
    HungUp,
}

/// What to collect from the caller's key presses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitSpec {
    /// Stop after this many digits.
    pub max_digits: usize,
    /// A key that ends input early (not included in the result), typically `#`.
    pub terminator: Option<char>,
    /// How long to wait for the first digit.
    pub first_digit_timeout: Duration,
    /// How long to wait between digits.
    pub inter_digit_timeout: Duration,
}

/// How a digit collection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigitOutcome {
    /// Digits entered (possibly fewer than the maximum if the terminator or a timeout ended it);
    /// `terminated` says whether the terminator key was pressed.
    Digits {
        /// The digits, without the terminator.
        digits: String,
        /// True when the terminator ended the input.
        terminated: bool,
    },
    /// Nothing entered before the first-digit timeout.
    NoInput,
    /// The other party hung up.
    HungUp,
}

/// Something that happened on a leg outside of a request from the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// A DTMF digit (RFC 4733, SIP INFO or in-band).
    Dtmf(char),
    /// The other party hung up.
    HungUp,
    /// The other party put the call on hold (true) or resumed it (false).
    Hold(bool),
}

/// How a bridge between two legs ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeEnd {
    /// This leg hung up first.
    ThisSide,
    /// The other leg hung up first.
    OtherSide,
}

/// Why hanging up, for the signalling (SIP status or BYE reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupCause {
    /// Normal clearing.
    Normal,
    /// Refuse an unanswered call as busy.
    Busy,
    /// Refuse an unanswered call as unavailable (e.g. queue closed).
    Unavailable,
    /// Refuse because the number dialled is not served.
    NotFound,
}

/// Why a leg operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The leg has ended; nothing more can be done on it.
    #[error("the call has ended")]
    Ended,
    /// A prompt name that the prompt library does not hold.
    #[error("unknown prompt `{0}`")]
    UnknownPrompt(String),
    /// The media or signalling layer failed.
    #[error("media or signalling failure: {0}")]
    Transport(String),
}

/// A call that flows and the dialer drive; implemented by the SIP/RTP leg and the in-memory leg.
#[async_trait]
pub trait CallLeg: Send + Sync {
    /// Ids and numbers of the call.
    fn info(&self) -> &LegInfo;

    /// Answers an inbound call (200 OK with SDP); no effect on an answered or outbound leg.
    async fn answer(&self) -> Result<(), CallError>;

    /// Plays a list of prompts; returns early on hang-up, or on a digit if barge-in is allowed.
    async fn play(&self, items: &[PlayItem], opts: &PlayOptions) -> Result<PlayOutcome, CallError>;

    /// Stops whatever is playing (music on hold) without waiting for it to end.
    fn stop_playing(&self);

    /// Collects key presses, starting with any already buffered.
    async fn collect_digits(&self, spec: &DigitSpec) -> Result<DigitOutcome, CallError>;

    /// Discards buffered key presses.
    fn flush_digits(&self);

    /// Sends DTMF digits to the other party (RFC 4733 on the wire).
    async fn send_digits(&self, digits: &str) -> Result<(), CallError>;

    /// Connects this leg's media with `other`'s until one side hangs up.
    async fn bridge(&self, other: Arc<dyn CallLeg>) -> Result<BridgeEnd, CallError>;

    /// Ends the call (BYE, or a final response if not answered).
    async fn hang_up(&self, cause: HangupCause) -> Result<(), CallError>;

    /// Waits until the other party hangs up (or the leg ends).
    async fn hung_up(&self);

    /// True once the leg has ended.
    fn is_ended(&self) -> bool;

    /// The leg's audio, when it has any, so two bridged legs can relay it to each other.
    fn media(&self) -> Option<Arc<dyn LegMedia>> {
        None
    }

    /// True while the other party holds the call (its last offer was sendonly or inactive);
    /// nothing is sent to it meanwhile.
    fn is_held(&self) -> bool {
        false
    }

    /// True when the other party can be transferred by REFER (its INVITE allowed it).
    fn accepts_refer(&self) -> bool {
        false
    }

    /// Asks the other party to call `target` (a SIP URI) by REFER and waits up to `wait` for
    /// the final status of that call; a leg that cannot refers nothing.
    async fn refer(&self, target: &str, wait: Duration) -> Result<ReferOutcome, CallError> {
        let _ = (target, wait);
        Ok(ReferOutcome::Refused(501))
    }

    /// What the other party says from now on, as 20 ms frames of 8 kHz linear samples, until
    /// the receiver is dropped: recordings and answering-machine detection read it. `None`
    /// for a leg without audio.
    fn listen(&self) -> Option<tokio::sync::mpsc::Receiver<Vec<i16>>> {
        None
    }
}

/// Collects keys by `spec`, taking each from `wait` (the next key within a timeout, `None` at
/// the timeout or the hang-up): the one way every leg kind reads a caller's digits.
pub async fn collect_keys<W, F>(
    spec: &DigitSpec,
    ended: impl Fn() -> bool,
    mut wait: W,
) -> DigitOutcome
where
    W: FnMut(Duration) -> F,
    F: std::future::Future<Output = Option<char>>,
{
    let mut digits = String::new();
    let mut timeout = spec.first_digit_timeout;
    loop {
        match wait(timeout).await {
            Some(k) if Some(k) == spec.terminator => {
                return DigitOutcome::Digits {
                    digits,
                    terminated: true,
                };
            }
            Some(k) => {
                digits.push(k);
                if digits.len() >= spec.max_digits {
                    return DigitOutcome::Digits {
                        digits,
                        terminated: false,
                    };
                }
                timeout = spec.inter_digit_timeout;
            }
            None if ended() => return DigitOutcome::HungUp,
            None if digits.is_empty() => return DigitOutcome::NoInput,
            None => {
                return DigitOutcome::Digits {
                    digits,
                    terminated: false,
                };
            }
        }
    }
}

/// How a transfer by REFER went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferOutcome {
    /// The other party refused the REFER (its status): the call is still ours.
    Refused(u16),
    /// The other party's call to the target ended with this final status.
    Final(u16),
    /// Accepted, but no final status was reported in time.
    NoReport,
}

/// A leg's audio as its bridge partner sees it, so two legs relay to each other whatever they
/// are made of (an RTP session on the wire, an in-memory leg), without knowing the other's type.
pub trait LegMedia: Send + Sync {
    /// Stops this leg's own playback (the bridged party's audio takes over).
    fn stop(&self);

    /// Sends what this leg hears to `other` until [`LegMedia::unbridge`].
    fn relay_to(&self, other: &Arc<dyn LegMedia>);

    /// Stops relaying.
    fn unbridge(&self);

    /// Plays one 20 ms frame of audio heard by the bridged party, encoded in `law`.
    fn relay_in(&self, law: crate::media::g711::Law, payload: &[u8]);
}

/// Result of trying to reach a party with an outbound call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DialResult {
    /// Answered.
    Connected,
    /// 486 / 600.
    Busy,
    /// No answer within the ring timeout (408 / 480 / 487 after our CANCEL).
    NoAnswer,
    /// Any other 4xx–6xx.
    Failed,
    /// No response at all, or the transport failed.
    Unreachable,
    /// Answered by an answering machine (answering-machine detection), not served.
    AnsweringMachine,
}

/// Where an outbound call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// A customer number through a trunk (the queue's, or the first configured one).
    Customer {
        /// E.164 number to call.
        number: String,
        /// Trunk name; `None` means the default trunk.
        trunk: Option<String>,
    },
    /// An agent's registered phone.
    Agent {
        /// Agent id from the configuration.
        agent_id: String,
    },
    /// A SIP URI called directly, not through a trunk (a Transfer block's target).
    Uri {
        /// `sip:user@host[:port]`.
        uri: String,
    },
    /// An agent's phone registered with another node of the cluster, at the contact its home
    /// node gave with the reservation.
    Contact {
        /// Agent id from the configuration.
        agent_id: String,
        /// The registered contact URI.
        uri: String,
        /// Where requests to it are sent.
        peer: std::net::SocketAddr,
        /// Over TCP rather than UDP.
        tcp: bool,
    },
}

/// One outbound call to place: whom, as whom, how long to let it ring, and extra headers (a
/// call's attached data on the agent leg, as SIP headers; empty for most calls).
#[derive(Debug, Clone, Copy)]
pub struct Dial<'a> {
    /// Who is called.
    pub target: &'a DialTarget,
    /// The calling number presented.
    pub caller_id: &'a str,
    /// Give up after this long without an answer.
    pub ring_timeout: Duration,
    /// Extra headers on the call.
    pub headers: &'a [(String, String)],
}

impl<'a> Dial<'a> {
    /// A call to `target` presenting `caller_id`, ringing at most `ring_timeout`, no headers.
    pub fn new(target: &'a DialTarget, caller_id: &'a str, ring_timeout: Duration) -> Self {
        Dial {
            target,
            caller_id,
            ring_timeout,
            headers: &[],
        }
    }

    /// The same call carrying `headers`.
    pub fn with_headers(self, headers: &'a [(String, String)]) -> Self {
        Dial { headers, ..self }
    }
}

/// Places outbound calls; the SIP user agent implements it for real, the simulator in memory.
#[async_trait]
pub trait Dialer: Send + Sync {
    /// Places `call`; a dialer without headers (the simulator) only notes them.
    async fn dial(&self, call: Dial<'_>) -> Result<Arc<dyn CallLeg>, DialResult>;
}

//! Media building blocks for SIP legs, all sans-I/O so they are tested without sockets:
//! G.711 ([`g711`]), RFC 4733 / SIP INFO / in-band DTMF ([`dtmf`]), RTP and RTCP ([`rtp`]),
//! SDP offer/answer ([`sdp`]), the shared prompt library ([`prompts`]) and the one-timer frame
//! scheduler ([`pacer`]), the RTP inactivity watch ([`inactivity`]). [`session`] binds them to sockets; its shared pacing thread uses a
//! simpler fixed 20 ms grid in slots (every session is always owed exactly one frame per
//! period there), while [`pacer`]'s per-session deadlines are not used yet (they suit a
//! virtual-time driver).

pub mod dtmf;
pub mod g711;
pub(crate) mod inactivity;
pub mod pacer;
pub mod prompts;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod voice;

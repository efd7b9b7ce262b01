//! Media building blocks for SIP legs: G.711, RTP/RTCP, RFC 4733 DTMF, SDP offer/answer and the
//! shared prompt library. Everything here is sans-I/O so it can be tested without sockets.

pub mod dtmf;
pub mod g711;
pub mod pacer;
pub mod prompts;
pub mod rtp;
pub mod sdp;

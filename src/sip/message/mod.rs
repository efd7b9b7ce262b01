//! Parsing SIP messages off the wire with limits and the RFC 3261 checks that rsip skips.
//!
//! rsip is lenient and knows neither header folding, compact names nor LWS around the colon, so
//! [`parse`] first splits and normalises the header section itself (unfolding, expanding
//! compact forms, one Via per hop), validates it, and only then hands canonical bytes to rsip.

mod build;
mod framing;
mod headers;
mod indexed;
mod parse;
mod syntax;

pub use build::{new_branch, random_token, response_for, response_with_tag, to_bytes};
pub use framing::{Frame, framing, framing_limited, has_header_end};
pub use headers::{
    branch, cseq, header_name, header_str, header_strs, header_text, header_value, header_values,
    is_rfc3261_branch, name_addr_parts, param_value, stamp_via, tag_of, top_via, vias,
};
pub use indexed::{HeaderIndex, IndexedMessage, long_name};
pub use parse::{parse, parse_limited, parse_uri};
#[allow(unused_imports)] // kept reachable at `message::find_unquoted`, where it always was
pub(crate) use syntax::find_unquoted;
pub(crate) use syntax::split_commas;
pub use syntax::{Params, Via};

use thiserror::Error;

/// Datagrams and stream messages above this size are refused before any parsing work.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Bounds the work and memory one message may cost us.
pub const MAX_HEADERS: usize = 256;
/// RFC 3261 §8.1.1.5: CSeq sequence numbers must stay below 2**31.
pub const MAX_CSEQ: u64 = (1 << 31) - 1;
/// The magic cookie that marks an RFC 3261 branch, unique across space and time.
pub const BRANCH_MAGIC: &str = "z9hG4bK";

/// Why a message was refused; `Display` is a short phrase fit for a 400 reason.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// More bytes than [`MAX_MESSAGE_SIZE`].
    #[error("Message Too Large")]
    TooLarge,
    /// More header lines than [`MAX_HEADERS`].
    #[error("Too Many Headers")]
    TooManyHeaders,
    /// No blank line ending the header section.
    #[error("Incomplete Header Section")]
    Incomplete,
    /// Request-Line or Status-Line not in the RFC 3261 form.
    #[error("Malformed Start Line")]
    BadStartLine,
    /// Anything but SIP/2.0.
    #[error("Unsupported SIP Version")]
    BadVersion,
    /// A header line or value that does not follow its grammar.
    #[error("Malformed {0} Header")]
    MalformedHeader(String),
    /// A header RFC 3261 §8.1.1 requires is absent.
    #[error("Missing {0} Header")]
    MissingHeader(&'static str),
    /// The CSeq method differs from the request method.
    #[error("CSeq Method Mismatch")]
    CSeqMismatch,
    /// A numeric field outside its allowed range.
    #[error("{0} Out Of Range")]
    OutOfRange(&'static str),
    /// Content-Length absent on a stream, unparseable, or duplicated with different values.
    #[error("Bad Content-Length")]
    BadContentLength,
    /// Content-Length announces more bytes than arrived.
    #[error("Body Shorter Than Content-Length")]
    TruncatedBody,
    /// rsip refused the normalised message.
    #[error("Unparseable Message")]
    Syntax(String),
    /// A well-formed request with an extension method we do not know: 501 (RFC 3261 §8.2.1).
    #[error("Not Implemented")]
    UnknownMethod(String),
    /// A well-formed request whose Request-URI scheme we do not serve: 416 (RFC 3261 §8.2.2.1).
    #[error("Unsupported URI Scheme")]
    UnsupportedScheme,
}

impl ParseError {
    /// Reason phrase for the 400 response a server sends back for this error.
    pub fn reason_phrase(&self) -> String {
        match self {
            ParseError::Syntax(_) => "Bad Request".to_string(),
            ParseError::BadVersion => "Version Not Supported".to_string(),
            other => other.to_string(),
        }
    }

    /// The status a server answers a request refused for this reason with: 501 for an unknown
    /// method, 416 for an unknown URI scheme, 505 for another SIP version, 513 for a message
    /// too large, else 400.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::UnknownMethod(_) => 501,
            ParseError::UnsupportedScheme => 416,
            ParseError::BadVersion => 505,
            ParseError::TooLarge => 513,
            _ => 400,
        }
    }
}

/// How much one message may cost: `sip.max_message_bytes` and `sip.max_headers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest message, bytes.
    pub max_bytes: usize,
    /// Most header lines (after unfolding, one per Via hop).
    pub max_headers: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bytes: MAX_MESSAGE_SIZE,
            max_headers: MAX_HEADERS,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support;

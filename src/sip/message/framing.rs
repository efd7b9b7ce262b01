//! Finding message boundaries on a stream (RFC 3261 §18.3), keep-alives included.

use super::parse::{content_length, find, split_headers};
use super::{ParseError, ParseLimits};

/// What a stream buffer holds at its front, as found by [`framing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Only CRLF keep-alives (RFC 5626 §3.5.1); drop `len` bytes.
    KeepAlive {
        /// Bytes of CRLF to drop.
        len: usize,
    },
    /// A whole message at `buf[skip..skip + len]`, after `skip` bytes of keep-alive CRLFs.
    Message {
        /// Leading CRLF bytes before the message.
        skip: usize,
        /// Length of the message, headers and body.
        len: usize,
    },
}

/// Finds where the next message on a TCP stream ends; `Ok(None)` means read more.
pub fn framing(buf: &[u8]) -> Result<Option<Frame>, ParseError> {
    framing_limited(buf, &ParseLimits::default())
}

/// True once `buf` holds the end of a header section (the blank line).
pub fn has_header_end(buf: &[u8]) -> bool {
    find(buf, b"\r\n\r\n").is_some()
}

/// As [`framing`], with messages above `limits.max_bytes` refused (`sip.max_message_bytes`).
pub fn framing_limited(buf: &[u8], limits: &ParseLimits) -> Result<Option<Frame>, ParseError> {
    let max = limits.max_bytes;
    let skip = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    let rest = &buf[skip..];
    if rest.is_empty() {
        return Ok((skip > 0).then_some(Frame::KeepAlive { len: skip }));
    }
    let Some(head_end) = find(rest, b"\r\n\r\n") else {
        if rest.len() > max {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    if head_end > max {
        return Err(ParseError::TooLarge);
    }
    let head = std::str::from_utf8(&rest[..head_end])
        .map_err(|_| ParseError::MalformedHeader("UTF-8".into()))?;
    let (_, lines) = head.split_once("\r\n").unwrap_or((head, ""));
    let headers = split_headers(lines, limits.max_headers)?;
    let length = content_length(&headers)?.ok_or(ParseError::BadContentLength)?;
    let len = head_end + 4 + length;
    if len > max {
        return Err(ParseError::TooLarge);
    }
    Ok((rest.len() >= len).then_some(Frame::Message { skip, len }))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn framing_waits_for_the_body_and_skips_keepalives() {
        let msg = OPTIONS.replace("Content-Length: 0", "Content-Length: 4") + "abcd";
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(msg.as_bytes());
        assert_eq!(framing(&buf[..buf.len() - 1]), Ok(None));
        assert_eq!(
            framing(&buf),
            Ok(Some(Frame::Message {
                skip: 4,
                len: msg.len()
            }))
        );
        assert_eq!(framing(b"\r\n\r\n"), Ok(Some(Frame::KeepAlive { len: 4 })));
        assert_eq!(framing(b""), Ok(None));
        assert_eq!(framing(b"OPTIONS sip:a SIP/2.0\r\nVia: x"), Ok(None));
    }

    #[test]
    fn framing_needs_content_length_on_streams() {
        let msg = OPTIONS.replace("Content-Length: 0\r\n", "");
        assert_eq!(framing(msg.as_bytes()), Err(ParseError::BadContentLength));
        let endless = vec![b'a'; MAX_MESSAGE_SIZE + 2];
        assert_eq!(framing(&endless), Err(ParseError::TooLarge));
    }
}

//! Matching (RFC 3261 §17.1.3 and §17.2.3): the key naming a transaction.

use rsip::SipMessage;

use super::super::message::{cseq, header_str, is_rfc3261_branch, tag_of, top_via};

/// Names a transaction (RFC 3261 §17.1.3 and §17.2.3): top Via branch and sent-by, plus the
/// method, where ACK maps to INVITE and CANCEL stays its own transaction.
///
/// For pre-RFC 3261 branches (no magic cookie) the branch is replaced by Call-ID, From tag
/// and CSeq number, which is how RFC 2543 peers' retransmissions still match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// Which end we are: a request that loops back to us must not hit our client transaction.
    pub side: Side,
    /// The branch (or the RFC 2543 substitute).
    pub branch: String,
    /// host[:port] of the top Via.
    pub sent_by: String,
    /// INVITE, CANCEL, BYE…; ACK is stored as INVITE.
    pub method: String,
}

impl TransactionKey {
    /// The key of a request or response; None when it has no usable Via or CSeq.
    pub fn of(msg: &SipMessage) -> Option<TransactionKey> {
        let top = top_via(msg)?;
        let method = match msg {
            SipMessage::Request(r) => r.method.to_string(),
            SipMessage::Response(_) => cseq(msg)?.1,
        };
        let method = if method.eq_ignore_ascii_case("ACK") {
            "INVITE".to_string()
        } else {
            method.to_ascii_uppercase()
        };
        let branch = match top.branch() {
            Some(b) if is_rfc3261_branch(b) => b.to_string(),
            _ => {
                let call_id = header_str(msg, "Call-ID")?;
                let from_tag = header_str(msg, "From").and_then(tag_of).unwrap_or_default();
                let (n, _) = cseq(msg)?;
                format!("2543:{call_id}:{from_tag}:{n}")
            }
        };
        let side = if msg.is_request() {
            Side::Server
        } else {
            Side::Client
        };
        Some(TransactionKey {
            side,
            branch,
            sent_by: top.sent_by.to_ascii_lowercase(),
            method,
        })
    }

    /// For a CANCEL's key, the key of the INVITE transaction it cancels (RFC 3261 §9.2).
    pub fn cancelled_invite(&self) -> Option<TransactionKey> {
        (self.method == "CANCEL").then(|| TransactionKey {
            method: "INVITE".to_string(),
            ..self.clone()
        })
    }
}

/// Whether a transaction was started by us (client) or by a received request (server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// We sent the request; responses match it.
    Client,
    /// We received the request; retransmissions and ACKs match it.
    Server,
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn keys_map_ack_to_invite_and_keep_cancel_apart() {
        let inv = invite();
        let k = TransactionKey::of(&inv.clone().into()).unwrap();
        assert_eq!(k.method, "INVITE");
        assert_eq!(k.branch, "z9hG4bK776asdhds");
        assert_eq!(k.sent_by, "pc33.example.com");
        assert_eq!(TransactionKey::of(&ack_of(&inv).into()), Some(k.clone()));
        let cancel = req(&invite_text()
            .replacen("INVITE sip:", "CANCEL sip:", 1)
            .replace("314159 INVITE", "314159 CANCEL"));
        let cancel_key = TransactionKey::of(&cancel.into()).unwrap();
        assert_eq!(cancel_key.method, "CANCEL");
        assert_eq!(cancel_key.cancelled_invite(), Some(k.clone()));
        assert_eq!(k.cancelled_invite(), None);
        let resp_key = TransactionKey::of(&resp(&inv, 180).into()).unwrap();
        assert_eq!(resp_key.side, Side::Client);
        assert_eq!(
            resp_key,
            TransactionKey {
                side: Side::Client,
                ..k
            }
        );
        // RFC 2543 branch: keyed on Call-ID, From tag and CSeq instead.
        let old = req(&invite_text().replace("branch=z9hG4bK776asdhds", "branch=1"));
        let k = TransactionKey::of(&old.into()).unwrap();
        assert!(
            k.branch
                .starts_with("2543:a84b4c76e66710@pc33.example.com:1928301774:314159")
        );
    }
}

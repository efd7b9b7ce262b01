//! Where a call's in-dialog requests go: behind proxies that record-routed, to the first route
//! of the dialog's route set (RFC 3261 §12.2.1.1), so those proxies stay on the dialog's path.

use super::*;

impl Call {
    /// Where the call's in-dialog requests go: the first route of the dialog's route set when
    /// it names an address (the proxies that record-routed stay on the path, RFC 3261
    /// §12.2.1.1), else where the call's messages come from (NAT-safe).
    pub(super) fn next_hop(&self) -> Peer {
        next_hop(self.dialog.as_ref(), self.peer)
    }
}

/// Where in-dialog requests of `dialog` go: its first route's address (with the route's
/// transport, else `peer`'s), or `peer` when it has no route set or one we cannot address
/// without a resolver (a host name).
pub(super) fn next_hop(dialog: Option<&Dialog>, peer: Peer) -> Peer {
    let Some(uri) = dialog.and_then(Dialog::next_hop) else {
        return peer;
    };
    let Some(addr) = contact_addr(uri) else {
        return peer;
    };
    let transport = match uri_transport(uri).as_deref() {
        Some("tcp") => Transport::Tcp,
        Some("udp") => Transport::Udp,
        _ => peer.transport,
    };
    Peer { addr, transport }
}

/// The `transport` parameter of a SIP URI, lower-cased.
fn uri_transport(uri: &str) -> Option<String> {
    let uri = uri.split(['>', '?']).next().unwrap_or(uri);
    let (_, params) = uri.split_once(';')?;
    message::param_value(params, "transport").map(|t| t.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_parameter_of_a_route() {
        assert_eq!(
            uri_transport("sip:10.0.0.1:5060;lr;transport=TCP").as_deref(),
            Some("tcp")
        );
        assert_eq!(
            uri_transport("sip:10.0.0.1;transport=udp;lr").as_deref(),
            Some("udp")
        );
        assert_eq!(uri_transport("sip:10.0.0.1:5060;lr"), None);
    }
}

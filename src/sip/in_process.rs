//! The user agent with no socket, for the simulator: the same endpoint workers and driver as in
//! service, with the network replaced by channels. Whatever runs beside it in the process hands
//! it datagrams ([`Network::deliver`], as the UDP listener would) and receives what it sends
//! ([`Datagram`]s on a channel); its timers run on the injected clock, so under tokio's paused
//! clock an hour of SIP passes in moments.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::time::SipClock;
use super::transport::{Inbound, Peer, Received, Transport};
use super::ua::{CallHandler, UaConfig, UaHandle};

/// A SIP message between the user agent and a party in the same process.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Sender.
    pub from: SocketAddr,
    /// Addressee.
    pub to: SocketAddr,
    /// One encoded SIP message.
    pub bytes: Vec<u8>,
}

/// The user agent's side of the in-process network: where datagrams for it are handed in.
#[derive(Clone)]
pub struct Network {
    inbound: Inbound,
    local: SocketAddr,
    time: SipClock,
}

impl Network {
    /// The user agent's address (its only "listener", UDP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Hands a datagram from `from` to the user agent, to the worker owning its Call-ID;
    /// false once the user agent has stopped.
    pub fn deliver(&self, from: SocketAddr, bytes: Vec<u8>) -> bool {
        self.inbound
            .send(Received {
                bytes,
                peer: Peer {
                    addr: from,
                    transport: Transport::Udp,
                },
                local: self.local,
                framing_error: None,
                at: self.time.now(),
            })
            .is_ok()
    }
}

/// Starts the user agent of `config` with no socket, at `config.udp`'s first address (default
/// 127.0.0.1:5060), every timer on `clock`. Returns the handle (as [`super::ua::start`] does),
/// the network side to deliver to, and the receiver of everything the user agent sends.
pub fn start(
    config: UaConfig,
    handler: Arc<dyn CallHandler>,
    clock: crate::clock::SharedClock,
) -> (UaHandle, Network, mpsc::UnboundedReceiver<Datagram>) {
    let local = config
        .udp
        .first()
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)));
    let time = SipClock::of(clock);
    let (wire, sent) = mpsc::unbounded_channel();
    let (handle, inbound) =
        super::driver::start_in_process(config, handler, time.clone(), local, wire);
    (
        handle,
        Network {
            inbound,
            local,
            time,
        },
        sent,
    )
}

//! Ports for the programs a test starts (SIPp, baresip), reserved for this process so that no
//! other test takes one between the moment it is picked and the moment the program binds it.
//!
//! A port the OS picked (`bind(:0)`) and released can be handed to the next `bind(:0)` of any
//! process at once. The ports here come instead from 10000–19999: below the OS's ephemeral
//! range (so no `bind(:0)` ever gets one) and below the engine's RTP range (20000+). That range
//! is cut into blocks; a test process claims a block by binding the block's first port and
//! keeping that socket until it exits (the OS frees it even on a crash): the bind is the lock,
//! so two test processes — of this checkout or another — never share a block. Within the
//! process a port is handed out once. Each port is checked free on UDP and TCP before it is handed out,
//! against programs that bind in the range on their own.

use std::net::{TcpListener, UdpSocket};
use std::sync::Mutex;

/// First port of the range.
const FIRST: u16 = 10_000;
/// Ports in one block.
const BLOCK: u16 = 400;
/// Blocks in the range (10000–19999).
const BLOCKS: u16 = 25;
/// Ports reserved per hand-out, from an even port: SIPp's media port and the ones it adds
/// (RTCP, video), or an RTP/RTCP pair and the next pair.
const STRIDE: u16 = 4;

struct Ports {
    /// The sockets bound on the claimed blocks' first ports: their locks, held for the life of
    /// the process.
    locks: Vec<UdpSocket>,
    next: u16,
    end: u16,
}

static PORTS: Mutex<Ports> = Mutex::new(Ports {
    locks: Vec::new(),
    next: 0,
    end: 0,
});

/// Claims a block no other process holds; returns its first port to hand out.
fn claim_block(locks: &mut Vec<UdpSocket>) -> u16 {
    let start = std::process::id() as u16 % BLOCKS;
    for i in 0..BLOCKS {
        let first = FIRST + (start + i) % BLOCKS * BLOCK;
        if let Ok(lock) = UdpSocket::bind(("127.0.0.1", first)) {
            locks.push(lock);
            return first + STRIDE;
        }
    }
    panic!("every block of test ports (10000-19999) is held by another test process");
}

/// Whether `port` can be bound on loopback over UDP and TCP right now.
fn bindable(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// An even loopback port (SIPp's media port must be even), with the three above it, reserved
/// for this process: no other test process is handed it, and no `bind(:0)` gets it.
pub fn free_port() -> u16 {
    let mut ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if ports.next >= ports.end {
            let first = claim_block(&mut ports.locks);
            ports.next = first;
            ports.end = first - STRIDE + BLOCK;
        }
        let port = ports.next;
        ports.next += STRIDE;
        if (port..port + STRIDE).all(bindable) {
            return port;
        }
    }
}

//! The user agent's async driver: binds the transports, then runs one worker task per shard,
//! each feeding its I/O-free [`Endpoint`] what arrives (messages, commands) and the time,
//! sending what it asks to send and sleeping on the injected clock until its next deadline.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::endpoint::Endpoint;
use super::shard::{Shared, workers_for};
use super::time::SipClock;
use super::transport::{Inbound, Received, Transports};
use super::ua::{CallHandler, Cmd, UaConfig, UaHandle};

/// Binds the listeners of `config` and starts the user agent's workers (`limits.workers`, 0:
/// one per available core), every timer on `time`.
pub(crate) async fn start(
    config: UaConfig,
    handler: Arc<dyn CallHandler>,
    time: SipClock,
) -> std::io::Result<UaHandle> {
    let n = workers_for(config.limits.workers);
    let (in_txs, in_rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::unbounded_channel()).unzip();
    let transports = Transports::bind(
        &config.udp,
        &config.tcp,
        Inbound::new(in_txs),
        config.limits.transport.clone(),
        time.clone(),
    )
    .await?;
    Ok(spawn_workers(config, handler, time, transports, in_rxs))
}

/// The user agent's workers with no socket: they are at `local`, what arrives is handed to
/// the returned [`Inbound`] and what they send goes to `wire` (see `sip::in_process`).
pub(crate) fn start_in_process(
    config: UaConfig,
    handler: Arc<dyn CallHandler>,
    time: SipClock,
    local: std::net::SocketAddr,
    wire: mpsc::UnboundedSender<super::in_process::Datagram>,
) -> (UaHandle, Inbound) {
    let n = workers_for(config.limits.workers);
    let (in_txs, in_rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::unbounded_channel()).unzip();
    let inbound = Inbound::new(in_txs);
    let transports = Transports::in_process(
        local,
        inbound.clone(),
        wire,
        config.limits.transport.clone(),
        time.clone(),
    );
    (
        spawn_workers(config, handler, time, transports, in_rxs),
        inbound,
    )
}

/// One worker task per receiver of `in_rxs`, each with its endpoint, sending through
/// `transports`; the handle commanding them.
fn spawn_workers(
    config: UaConfig,
    handler: Arc<dyn CallHandler>,
    time: SipClock,
    transports: Arc<Transports>,
    in_rxs: Vec<mpsc::UnboundedReceiver<Received>>,
) -> UaHandle {
    let n = in_rxs.len();
    let first = transports
        .udp_addrs()
        .first()
        .or(transports.tcp_addrs().first())
        .copied();
    let public_ip = config.public_ip.unwrap_or(match first {
        Some(a) if !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::from([127, 0, 0, 1]),
    });
    let metrics = Arc::new(crate::ops::metrics::SipMetrics::default());
    let shared = Arc::new(Shared::default());
    let local = (
        transports.udp_addrs().first().copied(),
        transports.tcp_addrs().first().copied(),
    );
    let mut host = String::new();
    let mut cmd_txs = Vec::with_capacity(n);
    for in_rx in in_rxs {
        let (tx, rx) = mpsc::unbounded_channel();
        let endpoint = Endpoint::new(
            config.clone(),
            local,
            handler.clone(),
            metrics.clone(),
            time.now(),
            public_ip,
            shared.clone(),
        );
        host = endpoint.host();
        tokio::spawn(run(
            endpoint,
            rx,
            in_rx,
            transports.clone(),
            handler.clone(),
            time.clone(),
        ));
        cmd_txs.push(tx);
    }
    tracing::debug!(workers = n, "SIP endpoint workers started");
    UaHandle::from_parts(cmd_txs, shared, host, public_ip, transports, metrics)
}

/// Drives `endpoint` until every handle is gone: one input at a time (a command, a received
/// message or a deadline), then everything it has to send and to tell `handler`.
async fn run(
    mut endpoint: Endpoint,
    mut commands: mpsc::UnboundedReceiver<Cmd>,
    mut inbound: mpsc::UnboundedReceiver<Received>,
    transports: Arc<Transports>,
    handler: Arc<dyn CallHandler>,
    time: SipClock,
) {
    loop {
        let wake = endpoint.poll_timeout();
        let sleep = async {
            match wake {
                Some(at) => time.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(c) => endpoint.handle_command(time.now(), c),
                None => return,
            },
            Some(r) = inbound.recv() => endpoint.handle_command(time.now(), Cmd::Received(r)),
            () = sleep => endpoint.handle_timeout(time.now()),
        }
        while let Some(t) = endpoint.poll_transmit() {
            transports.send(t.peer, t.bytes);
        }
        while let Some(notice) = endpoint.poll_event() {
            notice.deliver(handler.as_ref());
        }
        if endpoint.poll_trim(time.now()) {
            tokio::task::spawn_blocking(crate::ops::heap::release_free);
        }
    }
}

//! The HTTP listener: accepts connections itself rather than through `axum::serve`, so that a
//! client cannot hold the engine's descriptors and memory. A connection must deliver each
//! request's headers within `api.header_timeout_seconds` of opening or of the previous answer
//! (which also closes idle keep-alive connections), and its body within
//! `api.body_timeout_seconds`, and must take each answer within that time too (a client that
//! stops reading is cut off rather than holding the connection and its send buffers); at most
//! `api.max_connections` are open, and at most
//! `api.max_connections_per_address` from one client address (beyond, the connection gets a
//! 503 and is closed). Accept errors (descriptors exhausted) are retried after a growing pause
//! instead of spinning. Only HTTP/1.1 is served: the protocol detection of HTTP/2 without TLS
//! waits for its preface without a timeout.
//!
//! These deadlines are network timeouts on the runtime's monotonic timer, not business time:
//! the injected clock (frozen in tests) does not drive them.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ApiSettings;
use crate::net::admission::{Admission, Admitted};
use crate::net::backoff::AcceptBackoff;

/// Largest buffer per connection (request head, queued response bytes): bounds what an open
/// connection can hold; request heads above it are refused with 431.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// First pause after an accept error.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);

/// Longest pause after repeated accept errors.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Deadlines and caps of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// From connection open (or the previous answer) to the end of the request's headers.
    pub header_timeout: Duration,
    /// From the request's headers to the end of its body; also the longest a write of an
    /// answer may wait for the client to read.
    pub body_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_address: usize,
}

impl ServeLimits {
    /// The limits of the `api` section.
    pub fn from_settings(a: &ApiSettings) -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(a.header_timeout_seconds.max(1) as u64),
            body_timeout: Duration::from_secs(a.body_timeout_seconds.max(1) as u64),
            max_connections: a.max_connections.max(1) as usize,
            max_per_address: a.max_connections_per_address.max(1) as usize,
        }
    }
}

/// What a connection over the caps gets before it is closed (written without waiting).
fn refusal() -> &'static [u8] {
    static TEXT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let body = r#"{"code":50304,"message":"too many connections; retry in 1 s"}"#;
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

/// How long open connections may take to finish their requests once `stop` is cancelled.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `stop` is cancelled, then stops gracefully: no more
/// connections are accepted, idle keep-alive connections close, requests in flight get their
/// answers (for at most [`STOP_GRACE`]).
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    stop: CancellationToken,
) {
    let table = Admission::new(limits.max_connections, limits.max_per_address);
    let _trimmer = TrimOnDrop(tokio::spawn(give_back_memory(table.clone())));
    let open = TaskTracker::new();
    let mut backoff = AcceptBackoff::new(MIN_ACCEPT_BACKOFF, MAX_ACCEPT_BACKOFF);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff.succeeded();
                accepted
            }
            Err(e) => {
                let pause = backoff.failed();
                tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "HTTP accept failed");
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        let Some(ticket) = table.admit(peer.ip()) else {
            tracing::debug!(%peer, "HTTP connection refused: over the connection caps");
            let _ = stream.try_write(refusal());
            continue;
        };
        open.spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            ticket,
            stop.clone(),
        ));
    }
    drop(listener);
    open.close();
    if tokio::time::timeout(STOP_GRACE, open.wait()).await.is_err() {
        tracing::warn!(
            connections = open.len(),
            "HTTP stopped with requests still unanswered"
        );
    }
}

/// Closed connections after which the allocator is asked to give memory back.
const TRIM_AFTER_CLOSED: usize = 512;

/// Aborts the memory task with the listener.
struct TrimOnDrop(tokio::task::JoinHandle<()>);

impl Drop for TrimOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every few seconds, once many connections have closed, asks glibc to return the free pages
/// of its heaps: the buffers of thousands of connections, spread over the worker threads'
/// arenas, otherwise stay resident after the connections are gone (benches/http_connections.sh).
async fn give_back_memory(table: Arc<Admission>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let closed = table.take_closed();
        if closed >= TRIM_AFTER_CLOSED {
            let _ = tokio::task::spawn_blocking(crate::ops::heap::release_free).await;
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ServeLimits,
    _ticket: Admitted,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let body_timeout = limits.body_timeout;
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(|b| axum::body::Body::new(DeadlineBody::new(b, body_timeout)));
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_BUF_BYTES);
    let stream = WriteDeadline::new(stream, body_timeout);
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "HTTP connection ended");
    }
}

/// The connection's stream, whose writes fail once one has waited `limit` for the client to
/// read: a client that sends requests and never takes the answers would otherwise hold the
/// connection, its place under the caps and its send buffers for ever.
struct WriteDeadline {
    inner: TcpStream,
    limit: Duration,
    /// Armed while a write waits; cleared when one goes through.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteDeadline {
    fn new(inner: TcpStream, limit: Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            stalled: None,
        }
    }

    /// What a write that could not proceed answers: wait, or fail once the limit has passed.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let limit = self.limit;
        let stall = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not read its answer within the body timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// A write's outcome: progress disarms the stall timer, no progress arms it.
    fn outcome<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.waiting(cx),
        }
    }
}

impl tokio::io::AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.outcome(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.outcome(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.outcome(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.outcome(cx, polled)
    }
}

/// A request body that fails once its deadline (set when the headers arrived) passes, so a
/// client cannot hold a handler by sending a body slowly or not at all.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

/// The body did not arrive within `api.body_timeout_seconds`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body timeout")]
pub struct BodyTimeout;

impl Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

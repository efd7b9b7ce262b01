//! One way for a node to follow PostgreSQL `NOTIFY` hints, shared by every cluster listener
//! (agent presence, configuration changes; reusable for any other channel): LISTEN on a
//! connection of its own, reconnect with back-off when it breaks, and since a hint can be lost
//! while away, ask for a full re-read after every (re)connection and after `resync_every`
//! without a hint (the safety net). Hints are never state: the handler re-reads the store.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};

/// What the handler is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Re-read everything: the listener (re)connected, or nothing was heard for a while.
    Resync,
    /// These notifications arrived (payloads, in order, repeats removed).
    Changed(Vec<String>),
}

/// First wait before reconnecting; doubled up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between reconnection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Listens on `channel` at `url` for ever, calling `handle` with each batch of hints (see
/// [`Hint`]). Runs until its task is dropped.
pub async fn listen_loop<F, Fut>(
    url: String,
    channel: &'static str,
    resync_every: Duration,
    mut handle: F,
) where
    F: FnMut(Hint) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut backoff = BACKOFF_MIN;
    loop {
        match tokio_postgres::connect(&url, NoTls).await {
            Ok((client, mut conn)) => {
                backoff = BACKOFF_MIN;
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                        match m {
                            Ok(AsyncMessage::Notification(n)) => {
                                if tx.send(n.payload().to_string()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(channel, error = %e, "listener connection lost");
                                break;
                            }
                        }
                    }
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {channel}")).await {
                    tracing::warn!(channel, error = %e, "LISTEN refused");
                } else {
                    // Whatever was announced while away is read now.
                    handle(Hint::Resync).await;
                    loop {
                        match tokio::time::timeout(resync_every, rx.recv()).await {
                            Ok(Some(first)) => {
                                let mut payloads = vec![first];
                                while let Ok(p) = rx.try_recv() {
                                    if !payloads.contains(&p) {
                                        payloads.push(p);
                                    }
                                }
                                handle(Hint::Changed(payloads)).await;
                            }
                            Ok(None) => break,
                            Err(_) => handle(Hint::Resync).await,
                        }
                    }
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(channel, error = %e, "listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

//! Wake-ups through PostgreSQL `LISTEN/NOTIFY`: a listener on a connection of its own
//! (reconnecting with back-off) that reports each (re)connection and each notification, for
//! the agent view (`boomerang_agents`) and for due callbacks (`boomerang_callbacks`).
//!
//! A notification is only a hint: it can be lost while the listener reconnects, so whoever
//! listens re-reads what it caches on [`Heard::Connected`] and keeps a slower poll besides.
//! The callbacks channel is raised by a trigger on the `callbacks` table (schema migration 3)
//! whenever a row becomes claimable — booked, rescheduled, back to QUEUED, its lease released
//! — in the very transaction that writes it, with the queue's name as payload.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel a claimable callback is announced on (payload: its queue).
pub const CALLBACKS: &str = "boomerang_callbacks";

/// What a listener heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// LISTEN is in place (first time, or after a reconnection): whatever was announced while
    /// away is lost, so re-read everything.
    Connected,
    /// One notification, with its payload.
    Payload(String),
}

/// LISTENs on `channel` at `url` and sends what it hears to `tx`, reconnecting with back-off
/// (200 ms doubling to 5 s) whenever the connection is lost; returns once `tx` is closed.
pub async fn listen(url: &str, channel: &str, tx: &UnboundedSender<Heard>) {
    let mut backoff = Duration::from_millis(200);
    while !tx.is_closed() {
        match tokio_postgres::connect(url, NoTls).await {
            Ok((client, mut conn)) => {
                backoff = Duration::from_millis(200);
                let heard = tx.clone();
                let name = channel.to_string();
                let driver = tokio::spawn(async move {
                    while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                        match m {
                            Ok(AsyncMessage::Notification(n)) => {
                                if heard.send(Heard::Payload(n.payload().to_string())).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(channel = %name, error = %e, "listener lost");
                                break;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {channel}")).await {
                    Ok(()) => {
                        // After LISTEN is in place, so nothing falls between the two.
                        let _ = tx.send(Heard::Connected);
                        let _ = driver.await;
                    }
                    Err(e) => {
                        tracing::warn!(channel, error = %e, "LISTEN refused");
                        driver.abort();
                    }
                }
            }
            Err(e) => tracing::warn!(channel, error = %e, "listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

//! The webhook channel: the event as JSON in a POST, signed with HMAC-SHA256 of the exact
//! body under a configured secret in `X-Boomerang-Signature: sha256=<hex>`, with the event id
//! in `X-Boomerang-Event-Id` so the receiver can drop a repeat (delivery is at least once).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::channels::DeliveryError;

/// Header carrying `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "x-boomerang-signature";

/// Header carrying the event id (also in the body as `eventId`).
pub const EVENT_ID_HEADER: &str = "x-boomerang-event-id";

/// True for an `http://` or `https://` URL with a host.
pub fn is_http_url(s: &str) -> bool {
    match reqwest::Url::parse(s) {
        Ok(u) => {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        }
        Err(_) => false,
    }
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` to `url`, signed with `secret` when one is configured. 2xx is delivered;
/// 408, 429 and 5xx and network errors may be retried; other answers are permanent.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    secret: Option<&str>,
    event_id: &str,
    body: Vec<u8>,
) -> Result<(), DeliveryError> {
    let mut req = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_ID_HEADER, event_id);
    if let Some(s) = secret {
        req = req.header(SIGNATURE_HEADER, signature(s.as_bytes(), &body));
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| DeliveryError::retry(format!("webhook {url}: {}", describe(&e))))?;
    DeliveryError::from_status(resp.status().as_u16(), || format!("webhook {url}"))
}

/// A reqwest error in a few words (timeouts and refused connections named as such).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect ({e})")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `https://` receiver is reached over TLS: against a server that answers in plain text
    /// the handshake fails (a connection error), where a client without TLS refuses the URL.
    #[tokio::test]
    async fn an_https_receiver_is_spoken_to_over_tls() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let err = reqwest::Client::new()
            .post(format!("https://{addr}/hook"))
            .body("{}")
            .send()
            .await
            .expect_err("a plain-text server cannot complete a TLS handshake");
        assert!(!err.is_builder(), "{err:?}");
        assert!(err.is_connect(), "{err:?}");
    }

    #[test]
    fn signature_is_the_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_http_urls_with_a_host_are_webhooks() {
        assert!(is_http_url("http://127.0.0.1:9/hook"));
        assert!(is_http_url("https://example.com/x"));
        assert!(!is_http_url("ftp://example.com/x"));
        assert!(!is_http_url("not a url"));
        assert!(!is_http_url("http://"));
    }
}

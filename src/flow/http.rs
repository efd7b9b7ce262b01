//! Outbound HTTP for flows (the HTTP Request block): the configured allow-list, one shared
//! client with bounded concurrency, and a fetch with timeout, retries and a bounded body, so a
//! slow or hostile service can neither hold other calls nor fill memory.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// `flows`: settings of what flows may do beyond the call.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FlowsSettings {
    /// HTTP Request blocks.
    pub http: FlowHttpSettings,
}

/// `flows.http`: where HTTP Request blocks may go and how much they may take.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FlowHttpSettings {
    /// URL prefixes a request may start with (scheme, host, port and a path prefix); empty:
    /// no HTTP request is allowed.
    pub allow: Vec<String>,
    /// Requests in flight at once, across all calls (1 to 1024).
    pub max_concurrent: u32,
    /// Largest response body read, in bytes (1024 to 10485760).
    pub max_response_bytes: u32,
}

impl Default for FlowHttpSettings {
    fn default() -> Self {
        FlowHttpSettings {
            allow: Vec::new(),
            max_concurrent: 32,
            max_response_bytes: 65_536,
        }
    }
}

/// Why a prefix of `flows.http.allow` is unusable, if it is.
pub fn prefix_problem(prefix: &str) -> Option<String> {
    match reqwest::Url::parse(prefix) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            Some(format!("`{prefix}` is not an http:// or https:// URL"))
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => {
            Some(format!("`{prefix}` names no host"))
        }
        Ok(u) if u.query().is_some() || u.fragment().is_some() => {
            Some(format!("`{prefix}` has a query or fragment"))
        }
        Ok(_) => None,
        Err(e) => Some(format!("`{prefix}` is not a URL: {e}")),
    }
}

/// Whether `url` is under one of the `allow` prefixes: same scheme, host and port, and a path
/// that starts with the prefix's path at a segment boundary (`/api` allows `/api/x`, not
/// `/apix`). User names and passwords in the URL are refused.
pub fn allowed(url: &str, allow: &[String]) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    if !u.username().is_empty() || u.password().is_some() {
        return false;
    }
    allow.iter().any(|p| {
        let Ok(p) = reqwest::Url::parse(p) else {
            return false;
        };
        let (pp, up) = (p.path(), u.path());
        p.scheme() == u.scheme()
            && p.host_str() == u.host_str()
            && p.port_or_known_default() == u.port_or_known_default()
            && up.starts_with(pp)
            && (pp.ends_with('/') || matches!(up.as_bytes().get(pp.len()), None | Some(b'/')))
    })
}

/// Why a request failed: the `reason` variable's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL is not under the allow-list.
    #[error("not_allowed")]
    NotAllowed,
    /// The URL does not parse.
    #[error("bad_url")]
    BadUrl,
    /// Every slot was taken for the whole timeout (`max_concurrent` requests in flight).
    #[error("busy")]
    Busy,
    /// No answer in time.
    #[error("timeout")]
    Timeout,
    /// No connection.
    #[error("connect")]
    Connect,
    /// An answer other than 2xx (the status is kept).
    #[error("status")]
    Status(u16),
    /// The body was larger than `max_response_bytes`.
    #[error("too_large")]
    TooLarge,
    /// The body is not JSON.
    #[error("bad_json")]
    BadJson,
}

impl FetchError {
    /// Whether another attempt may succeed (time-outs, no connection, 5xx).
    fn transient(&self) -> bool {
        matches!(
            self,
            FetchError::Timeout | FetchError::Connect | FetchError::Status(500..=599)
        )
    }
}

/// One request as a block asks for it.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// POST (with `body`) or GET.
    pub post: bool,
    /// Full URL, query included.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The JSON body of a POST.
    pub body: Option<serde_json::Value>,
    /// Per attempt.
    pub timeout: Duration,
    /// Further attempts after a transient failure.
    pub retries: u32,
    /// Whether the answer must be JSON.
    pub want_json: bool,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchResponse {
    /// The HTTP status (2xx).
    pub status: u16,
    /// The body as JSON (`Null` when empty and not wanted).
    pub json: serde_json::Value,
    /// Attempts made.
    pub attempts: u32,
}

/// The shared client of HTTP Request blocks and its concurrency bound.
pub struct HttpGate {
    client: reqwest::Client,
    slots: Semaphore,
    max_body: usize,
}

impl HttpGate {
    /// A gate with the limits of `settings`; redirects are not followed (a 3xx is a failure),
    /// so an allowed service cannot send a request elsewhere.
    pub fn new(settings: &FlowHttpSettings) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        HttpGate {
            client,
            slots: Semaphore::new(settings.max_concurrent.clamp(1, 1024) as usize),
            max_body: settings.max_response_bytes.max(1) as usize,
        }
    }

    /// Sends `req` if its URL is allowed, with its retries (200 ms, then 400 ms… between
    /// attempts); each attempt waits at most its timeout for a slot, and holds it at most its
    /// timeout.
    pub async fn fetch(
        &self,
        req: &FetchRequest,
        allow: &[String],
    ) -> Result<FetchResponse, (FetchError, u32)> {
        if reqwest::Url::parse(&req.url).is_err() {
            return Err((FetchError::BadUrl, 0));
        }
        if !allowed(&req.url, allow) {
            return Err((FetchError::NotAllowed, 0));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.once(req).await {
                Ok((status, json)) => {
                    return Ok(FetchResponse {
                        status,
                        json,
                        attempts: attempt,
                    });
                }
                Err(e) if e.transient() && attempt <= req.retries => {
                    tokio::time::sleep(Duration::from_millis(200 << (attempt - 1).min(4))).await;
                }
                Err(e) => return Err((e, attempt)),
            }
        }
    }

    async fn once(&self, req: &FetchRequest) -> Result<(u16, serde_json::Value), FetchError> {
        // A slot within the timeout, else busy; then the answer within a timeout of its own.
        let slot = tokio::time::timeout(req.timeout, self.slots.acquire()).await;
        let Ok(Ok(_slot)) = slot else {
            return Err(FetchError::Busy);
        };
        let work = async {
            let mut b = if req.post {
                self.client.post(&req.url)
            } else {
                self.client.get(&req.url)
            };
            b = b.header("accept", "application/json");
            for (k, v) in &req.headers {
                b = b.header(k.as_str(), v.as_str());
            }
            if let Some(body) = &req.body {
                b = b.json(body);
            }
            let mut resp = b.send().await.map_err(|e| {
                if e.is_timeout() {
                    FetchError::Timeout
                } else {
                    FetchError::Connect
                }
            })?;
            let status = resp.status().as_u16();
            if !resp.status().is_success() {
                return Err(FetchError::Status(status));
            }
            if resp
                .content_length()
                .is_some_and(|n| n > self.max_body as u64)
            {
                return Err(FetchError::TooLarge);
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|_| FetchError::Connect)? {
                if body.len() + chunk.len() > self.max_body {
                    return Err(FetchError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            let json = if body.iter().all(u8::is_ascii_whitespace) && !req.want_json {
                serde_json::Value::Null
            } else {
                serde_json::from_slice(&body).map_err(|_| FetchError::BadJson)?
            };
            Ok((status, json))
        };
        // The answer and the body both count against the timeout.
        match tokio::time::timeout(req.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout),
        }
    }
}

/// The value at `path` in `json`: a JSON pointer (`/items/0/name`) or a dotted path
/// (`items.0.name`); `None` when absent.
pub fn lookup<'a>(json: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    if path.is_empty() || path.starts_with('/') {
        return json.pointer(path);
    }
    path.split('.').try_fold(json, |v, part| match v {
        serde_json::Value::Object(m) => m.get(part),
        serde_json::Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Whether `path` is a usable response path (a JSON pointer or a dotted path of non-empty
/// parts).
pub fn valid_path(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix('/') {
        // `~` must be `~0` or `~1` in a pointer.
        let b = rest.as_bytes();
        return b
            .iter()
            .enumerate()
            .all(|(i, c)| *c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')));
    }
    !path.is_empty() && path.split('.').all(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_matches_scheme_host_port_and_whole_path_segments() {
        let allow = vec![
            "http://127.0.0.1:8088/api".to_string(),
            "https://crm.example.com/".to_string(),
        ];
        assert!(allowed("http://127.0.0.1:8088/api", &allow));
        assert!(allowed("http://127.0.0.1:8088/api/x?y=1", &allow));
        assert!(!allowed("http://127.0.0.1:8088/apix", &allow));
        assert!(!allowed("http://127.0.0.1:8089/api/x", &allow));
        assert!(!allowed("https://127.0.0.1:8088/api/x", &allow));
        assert!(allowed("https://crm.example.com/a", &allow));
        assert!(allowed("https://crm.example.com:443/a", &allow));
        assert!(!allowed("https://crm.example.com.evil.org/a", &allow));
        assert!(!allowed("https://user:pw@crm.example.com/a", &allow));
        assert!(!allowed("not a url", &allow));
        assert!(prefix_problem("ftp://x/").is_some());
        assert!(prefix_problem("http://x/?q=1").is_some());
        assert!(prefix_problem("http://x/api").is_none());
    }

    #[test]
    fn paths_are_json_pointers_or_dotted() {
        let j = serde_json::json!({"a": {"b": [10, {"c": "x"}]}, "d/e": 1});
        assert_eq!(lookup(&j, "/a/b/0"), Some(&serde_json::json!(10)));
        assert_eq!(lookup(&j, "a.b.1.c"), Some(&serde_json::json!("x")));
        assert_eq!(lookup(&j, "/d~1e"), Some(&serde_json::json!(1)));
        assert_eq!(lookup(&j, "a.zz"), None);
        assert!(valid_path("/d~1e") && !valid_path("/d~2") && !valid_path("a..b"));
    }
}

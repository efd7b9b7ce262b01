//! Local push receivers for the push tests: a webhook that records what it is sent (answering
//! a scripted status per request), and a fake FCM (OAuth2 token endpoint + HTTP v1 send) that
//! checks what real FCM would: the JWT assertion's RS256 signature against the test's public
//! key and its claims, the bearer token, and the message shape (data values are strings).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// One request a webhook received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `X-Boomerang-Event-Id`.
    pub event_id: String,
    /// `X-Boomerang-Signature` (empty when unsigned).
    pub signature: String,
    /// The raw body.
    pub raw: Vec<u8>,
    /// The body as JSON.
    pub body: Value,
    /// The status it was answered.
    pub answered: u16,
}

/// A webhook receiver on a loopback port the OS chose.
#[derive(Clone)]
pub struct Webhook {
    /// Its URL.
    pub url: String,
    seen: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

async fn hook(State(w): State<Webhook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let code = w.script.lock().unwrap().pop_front().unwrap_or(200);
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    w.seen.lock().unwrap().push(Received {
        event_id: header("x-boomerang-event-id"),
        signature: header("x-boomerang-signature"),
        raw: body.to_vec(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered: code,
    });
    StatusCode::from_u16(code).unwrap()
}

impl Webhook {
    /// Starts a receiver answering `script`'s statuses in turn, then 200.
    pub async fn start(script: Vec<u16>) -> Webhook {
        Self::start_on(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            script,
        )
    }

    /// Starts a receiver on `listener` (a port chosen before the engine was configured).
    pub fn start_on(listener: tokio::net::TcpListener, script: Vec<u16>) -> Webhook {
        let addr = listener.local_addr().unwrap();
        let w = Webhook {
            url: format!("http://{addr}/hook"),
            seen: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
        };
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(w.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        w
    }

    /// Everything received so far.
    pub fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until `n` requests were received; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            let s = self.seen();
            if s.len() >= n {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the webhook received {:?}, not {n} requests", self.seen());
    }
}

/// What the fake FCM received.
#[derive(Default)]
struct FcmLog {
    token_requests: usize,
    messages: Vec<Value>,
}

/// A fake FCM: `POST /token` (RFC 7523 JWT bearer) and
/// `POST /v1/projects/{project}/messages:send`.
#[derive(Clone)]
pub struct FakeFcm {
    /// FCM base URL (for `push.fcm.base_url`).
    pub base_url: String,
    /// Token endpoint (in the service-account file's `token_uri`).
    pub token_url: String,
    /// The service-account JSON file the engine is given.
    pub service_account: PathBuf,
    public_key: Arc<rsa::RsaPublicKey>,
    log: Arc<Mutex<FcmLog>>,
}

/// The project id of the fake's service account.
pub const PROJECT: &str = "boomerang-test";
/// The client e-mail of the fake's service account.
pub const CLIENT_EMAIL: &str = "push@boomerang-test.iam.gserviceaccount.com";
/// The bearer token the fake hands out.
pub const BEARER: &str = "ya29.test-token";

fn form_value<'a>(form: &'a str, key: &str) -> Option<&'a str> {
    form.split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

async fn token(State(f): State<FakeFcm>, body: String) -> (StatusCode, axum::Json<Value>) {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let refuse = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": why})),
        )
    };
    if form_value(&body, "grant_type")
        != Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
    {
        return refuse("grant_type");
    }
    let Some(jwt) = form_value(&body, "assertion") else {
        return refuse("no assertion");
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return refuse("not a JWT");
    }
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap_or_default())
            .unwrap_or_default();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap_or_default())
            .unwrap_or_default();
    let Ok(sig) = Signature::try_from(
        URL_SAFE_NO_PAD
            .decode(parts[2])
            .unwrap_or_default()
            .as_slice(),
    ) else {
        return refuse("bad signature encoding");
    };
    let key = VerifyingKey::<sha2::Sha256>::new((*f.public_key).clone());
    let signed = format!("{}.{}", parts[0], parts[1]);
    if key.verify(signed.as_bytes(), &sig).is_err() {
        return refuse("signature does not verify");
    }
    let iat = claims["iat"].as_i64().unwrap_or_default();
    if header["alg"] != "RS256"
        || claims["iss"] != CLIENT_EMAIL
        || claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging"
        || claims["aud"] != f.token_url.as_str()
        || claims["exp"].as_i64() != Some(iat + 3600)
    {
        return refuse("claims");
    }
    f.log.lock().unwrap().token_requests += 1;
    (
        StatusCode::OK,
        axum::Json(json!({"access_token": BEARER, "expires_in": 3599, "token_type": "Bearer"})),
    )
}

async fn send(
    State(f): State<FakeFcm>,
    axum::extract::Path(project): axum::extract::Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    let bad = |code: StatusCode, why: &str| {
        (
            code,
            axum::Json(json!({"error": {"code": code.as_u16(), "message": why}})),
        )
    };
    if project != PROJECT {
        return bad(StatusCode::NOT_FOUND, "project");
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {BEARER}"))
    {
        return bad(StatusCode::UNAUTHORIZED, "bearer");
    }
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    let m = &v["message"];
    let token_ok = m["token"].as_str().is_some_and(|t| !t.is_empty());
    let data_ok = m.get("data").is_none_or(|d| {
        d.as_object()
            .is_some_and(|o| o.values().all(Value::is_string))
    });
    let has_content = m.get("data").is_some() || m.get("notification").is_some();
    if !(token_ok && data_ok && has_content) {
        return bad(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    }
    let mut log = f.log.lock().unwrap();
    log.messages.push(v.clone());
    let n = log.messages.len();
    (
        StatusCode::OK,
        axum::Json(json!({"name": format!("projects/{PROJECT}/messages/{n}")})),
    )
}

impl FakeFcm {
    /// Starts the fake; writes a fresh RSA key's service-account file into `dir`.
    pub async fn start(dir: &Path) -> FakeFcm {
        use rsa::pkcs8::DecodePrivateKey;
        let pem_path = dir.join("fcm-key.pem");
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&pem_path)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = std::fs::read_to_string(&pem_path).unwrap();
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base_url = format!("http://{addr}");
        let token_url = format!("{base_url}/token");
        let service_account = dir.join("service-account.json");
        std::fs::write(
            &service_account,
            json!({
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": CLIENT_EMAIL,
                "token_uri": token_url,
            })
            .to_string(),
        )
        .unwrap();
        let f = FakeFcm {
            base_url,
            token_url,
            service_account,
            public_key: Arc::new(private.to_public_key()),
            log: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/messages:send", post(send))
            .with_state(f.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        f
    }

    /// Messages accepted so far (each the whole request body).
    pub fn messages(&self) -> Vec<Value> {
        self.log.lock().unwrap().messages.clone()
    }

    /// Tokens handed out so far.
    pub fn token_requests(&self) -> usize {
        self.log.lock().unwrap().token_requests
    }

    /// Waits (up to 10 s) until `n` messages were accepted.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..500 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("FCM accepted {:?}, not {n} messages", self.messages());
    }
}

//! Shared by the wire tests: the demo configuration on loopback ports, free ports, SIPp runs,
//! and a log capture to read what the engine recorded (flow traces) from a test.

#![allow(dead_code)]

use std::net::SocketAddr;

mod ports;
pub use ports::free_port;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped `boomerang.yaml` on loopback ports chosen by the OS (SIP over UDP and TCP,
/// HTTP), with the repository's flows and prompts, and `edit` applied to the text first.
pub fn demo_config_text(edit: impl FnOnce(String) -> String) -> String {
    let text = std::fs::read_to_string(repo().join("boomerang.yaml"))
        .unwrap_or_else(|e| panic!("boomerang.yaml: {e}"));
    edit(text)
        .replace("sip_udp: [\"0.0.0.0:5060\"]", "sip_udp: [\"127.0.0.1:0\"]")
        .replace("sip_tcp: [\"0.0.0.0:5060\"]", "sip_tcp: [\"127.0.0.1:0\"]")
        .replace("http: \"0.0.0.0:8080\"", "http: \"127.0.0.1:0\"")
        .replace(
            "flows_dir: ivr-flows",
            &format!("flows_dir: {}", repo().join("ivr-flows").display()),
        )
        .replace(
            "prompts_dir: prompts",
            &format!("prompts_dir: {}", repo().join("prompts").display()),
        )
}

/// Runs a SIPp client scenario file for one call against `target` and returns its output
/// (the caller checks success: some scenarios are expected to fail).
pub async fn sipp_client(scenario: &Path, target: SocketAddr, extra: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.arg("-sf")
        .arg(scenario)
        .arg(target.to_string())
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin", "-timeout", "90s"])
        .args(["-p", &free_port().to_string()])
        .args(["-mp", &free_port().to_string()])
        .args(extra)
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("sipp did not finish")
        .unwrap_or_else(|e| panic!("cannot run sipp (apt-get install -y sip-tester): {e}"))
}

/// SIPp's report lines worth reading when a scenario failed.
pub fn sipp_report(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("call") || l.contains("rror") || l.contains("nexpected"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts a SIPp server scenario from `tests/sipp` on `port` that serves `calls` calls.
pub fn sipp_server(scenario: &str, port: u16, calls: u32) -> tokio::process::Child {
    tokio::process::Command::new("sipp")
        .arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .args(["-m", &calls.to_string(), "-i", "127.0.0.1", "-nostdin"])
        .args(["-timeout", "120s"])
        .args(["-p", &port.to_string()])
        .args(["-mp", &free_port().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sipp (apt-get install -y sip-tester): {e}"))
}

/// Waits (up to 30 s) for a SIPp server to finish and asserts it played its scenario through.
pub async fn sipp_succeeded(child: &mut tokio::process::Child, who: &str) {
    let done = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    assert!(
        done.is_ok_and(|s| s.is_ok_and(|s| s.success())),
        "{who}'s SIPp failed"
    );
}

/// Registers agent alice's phone (SIP user 1001) at `contact` with the engine at `target`.
pub async fn register_alice(target: SocketAddr, contact: &str) {
    sipp_register(
        &repo().join("tests/sipp/agent-register.xml"),
        target,
        contact,
        &alice_credentials(),
    )
    .await;
}

/// Runs a SIPp REGISTER `scenario` (with `extra` arguments, e.g. credentials) against
/// `target` for a phone at `contact`, and asserts it succeeded.
pub async fn sipp_register(scenario: &Path, target: SocketAddr, contact: &str, extra: &[&str]) {
    let out = tokio::process::Command::new("sipp")
        .arg("-sf")
        .arg(scenario)
        .arg(target.to_string())
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin", "-timeout", "20s"])
        .args(["-p", &free_port().to_string()])
        .args(["-set", "contact", contact])
        .args(extra)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run sipp: {e}"));
    assert!(
        out.status.success(),
        "REGISTER failed: {}",
        sipp_report(&out)
    );
}

static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();

struct Capture(&'static Mutex<Vec<u8>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the engine's logs (flow traces at debug, call-in attempts at info) for
/// [`log_lines`]; safe to call from every test.
pub fn capture_logs() {
    capture_logs_with("warn,boomerang::engine::sip=debug,boomerang::callin=info");
}

/// As [`capture_logs`] with the binary's own `filter` (the first call in a binary wins).
pub fn capture_logs_with(filter: &str) {
    LOGS.get_or_init(|| {
        let buf: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(move || Capture(buf))
            .try_init();
        buf
    });
}

/// Captured log lines that contain every one of `needles`.
pub fn log_lines(needles: &[&str]) -> Vec<String> {
    let Some(buf) = LOGS.get() else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).to_string();
    text.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

/// Books an API callback (immediate, no slot check) in `queue` for `phone`.
pub async fn book_callback(
    engine: &boomerang::engine::Engine,
    queue: &str,
    phone: &str,
) -> boomerang::callback::model::CallbackRecord {
    use boomerang::callback::service::{CreateRequest, api_callback};
    engine
        .callbacks
        .create(CreateRequest {
            callback: api_callback(queue, phone, None),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap_or_else(|e| panic!("callback refused: {e}"))
}

/// Waits (up to 30 s) for a callback to complete; its reason and final record.
pub async fn until_completed(
    engine: &boomerang::engine::Engine,
    id: uuid::Uuid,
) -> (
    boomerang::callback::model::CompletionReason,
    boomerang::callback::model::CallbackRecord,
) {
    use boomerang::callback::model::CallbackState;
    for _ in 0..300 {
        let r = engine
            .callbacks
            .get(id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if let CallbackState::Completed(why) = r.state {
            return (why, r);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("callback {id} never completed");
}

/// SIPp arguments that answer a digest challenge as alice's phone (SIP user 1001 of the demo).
pub fn alice_credentials() -> [&'static str; 4] {
    ["-au", "1001", "-ap", ALICE_PASSWORD]
}

/// Alice's SIP password in the shipped boomerang.yaml.
pub const ALICE_PASSWORD: &str = "alice-1001";

/// The demo engine (shipped configuration with `edit` applied, on loopback ports, system
/// clock) with its store in a fresh temporary directory: the guard comes first, so that it is
/// dropped after the engine.
pub async fn start_demo_engine(
    edit: impl FnOnce(String) -> String,
) -> (tempfile::TempDir, boomerang::engine::Engine) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let config = boomerang::config::Config::from_str_in(&demo_config_text(edit), dir.path())
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = boomerang::engine::Engine::start(
        std::sync::Arc::new(config),
        boomerang::clock::SystemClock::shared(),
    )
    .await
    .unwrap_or_else(|e| panic!("engine start: {e}"));
    (dir, engine)
}

/// Polls a callback every 10 ms, `tries` times at most, until it is in `state`; whether it got
/// there.
pub async fn until_state(
    engine: &boomerang::engine::Engine,
    id: uuid::Uuid,
    state: boomerang::callback::model::CallbackState,
    tries: u32,
) -> bool {
    for _ in 0..tries {
        if engine.callbacks.get(id).await.ok().map(|r| r.state) == Some(state) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// An engine started on `yaml` written to `dir`/boomerang.yaml (as `serve --config` reads it),
/// on `clock`; with the base URL of its HTTP listener.
pub async fn start_engine_from_file(
    dir: &Path,
    yaml: String,
    clock: boomerang::clock::SharedClock,
) -> (boomerang::engine::Engine, String) {
    let file = dir.join("boomerang.yaml");
    std::fs::write(&file, yaml).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let cfg = boomerang::config::Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let e = boomerang::engine::Engine::start(std::sync::Arc::new(cfg), clock)
        .await
        .unwrap_or_else(|e| panic!("engine start: {e}"));
    let url = format!("http://{}", e.http_addr);
    (e, url)
}

/// A SIPp caller from `tests/sipp` dialling 8999, running in the background.
pub fn sipp_caller(scenario: &str, target: SocketAddr) -> tokio::process::Child {
    tokio::process::Command::new("sipp")
        .arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .arg(target.to_string())
        .args(["-s", "8999", "-m", "1", "-i", "127.0.0.1", "-nostdin"])
        .args(["-timeout", "40s"])
        .args(["-p", &free_port().to_string()])
        .args(["-mp", &free_port().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sipp (apt-get install -y sip-tester): {e}"))
}

/// Sends `bytes` from `sock` to `target` and returns the first final response's text (1xx
/// skipped), or `None` after 3 s.
pub async fn final_response_on(
    sock: &tokio::net::UdpSocket,
    target: SocketAddr,
    bytes: &[u8],
) -> Option<String> {
    sock.send_to(bytes, target)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let mut buf = vec![0u8; 65536];
    let until = boomerang::clock::tokio_now() + Duration::from_secs(3);
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if !text.starts_with("SIP/2.0 1") {
            return Some(text);
        }
    }
    None
}

/// A copy of the repository's flows plus `ringing-queue.yaml`, a flow that queues in Sales_VQ
/// without answering (the call rings until an agent comes).
pub fn flows_with_ringing_queue() -> tempfile::TempDir {
    flows_plus(&[(
        "ringing-queue.yaml",
        "application: ringing-queue\ntype: default\nassisted_service:\n  - type: route_call\n    queue: Sales_VQ\n    timeout_seconds: 600\n",
    )])
}

/// POSTs `body` to the public callbacks API (`{base}/engagement/v3/callbacks/{op}`) with API
/// key `key`; the status and the JSON answer (null when there is none).
pub async fn callbacks_api(
    base: &str,
    key: &str,
    op: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/engagement/v3/callbacks/{op}"))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST callbacks/{op}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// The shipped `boomerang.yaml` as the configuration model, on loopback ports chosen by the OS,
/// with the repository's flows and prompts: a test changes the fields it needs, then
/// [`config_of`] validates it as the engine would read it.
pub fn demo_spec() -> boomerang::config::ConfigSpec {
    let mut spec = boomerang::config::Config::load(&repo().join("boomerang.yaml"))
        .unwrap_or_else(|e| panic!("boomerang.yaml: {e}"))
        .spec;
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    spec.listeners.sip_udp = vec![any_port];
    spec.listeners.sip_tcp = vec![any_port];
    spec.listeners.http = any_port;
    spec.flows_dir = repo().join("ivr-flows").display().to_string();
    spec.media.prompts_dir = repo().join("prompts").display().to_string();
    spec
}

/// `spec` as a configuration file's text, for `serve --config` and `Config::from_str_in`.
pub fn spec_text(spec: &boomerang::config::ConfigSpec) -> String {
    // JSON is YAML: the model's own serialisation is a configuration file (absent, not null,
    // where a setting is unset).
    fn strip_nulls(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|_, v| !v.is_null());
                m.values_mut().for_each(strip_nulls);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(spec).unwrap_or_else(|e| panic!("serialise: {e}"));
    strip_nulls(&mut value);
    value.to_string()
}

/// `spec` written out and read back as the engine reads a file (every check, business hours
/// resolved), relative paths (the store's `data_dir`) under `dir`.
pub fn config_of(spec: &boomerang::config::ConfigSpec, dir: &Path) -> boomerang::config::Config {
    let text = spec_text(spec);
    boomerang::config::Config::from_str_in(&text, dir).unwrap_or_else(|e| panic!("{e}"))
}

/// The demo configuration ([`demo_spec`]) with `edit` applied to the model, store under `dir`.
pub fn demo_config(
    dir: &Path,
    edit: impl FnOnce(&mut boomerang::config::ConfigSpec),
) -> boomerang::config::Config {
    let mut spec = demo_spec();
    edit(&mut spec);
    config_of(&spec, dir)
}

/// The demo engine ([`demo_config`] with `edit`, system clock) with its store in a fresh
/// temporary directory, dropped after the engine.
pub async fn start_demo(
    edit: impl FnOnce(&mut boomerang::config::ConfigSpec),
) -> (tempfile::TempDir, boomerang::engine::Engine) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let config = demo_config(dir.path(), edit);
    let engine = boomerang::engine::Engine::start(
        std::sync::Arc::new(config),
        boomerang::clock::SystemClock::shared(),
    )
    .await
    .unwrap_or_else(|e| panic!("engine start: {e}"));
    (dir, engine)
}

/// The demo's trunk (`pstn`), for tests that point it at a SIPp or in-process carrier.
pub fn demo_trunk(spec: &mut boomerang::config::ConfigSpec) -> &mut boomerang::config::TrunkSpec {
    spec.trunks
        .iter_mut()
        .find(|t| t.name == "pstn")
        .unwrap_or_else(|| panic!("the demo has a trunk `pstn`"))
}

/// A demo queue by name, to change its settings.
pub fn demo_queue<'a>(
    spec: &'a mut boomerang::config::ConfigSpec,
    name: &str,
) -> &'a mut boomerang::config::QueueSpec {
    spec.queues
        .iter_mut()
        .find(|q| q.name == name)
        .unwrap_or_else(|| panic!("the demo has no queue {name}"))
}

/// An API key in clear (demo style) named `name`.
pub fn api_key(name: &str, key: &str) -> boomerang::config::ApiKeySpec {
    boomerang::config::ApiKeySpec {
        name: name.to_string(),
        key_sha256: None,
        key: Some(key.to_string()),
    }
}

/// An administrator `name` with `password_hash`.
pub fn administrator(name: &str, password_hash: &str) -> boomerang::config::AdminUserSpec {
    boomerang::config::AdminUserSpec {
        name: name.to_string(),
        password_hash: password_hash.to_string(),
        roles: vec![boomerang::api::admin::auth::Role::Administrator],
        queues: None,
    }
}

/// Signs `user` in to the administration at `url` with `password` (the answer must be 200);
/// the session's bearer token.
pub async fn admin_login(url: &str, user: &str, password: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{url}/admin/login"))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("login as {user}: {e}"));
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    assert_eq!(status, 200, "login as {user}: {v}");
    v["data"]["accessToken"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Sends an administration request, with the bearer `token` when given and `body` as JSON:
/// the status, and the answer as JSON (`Null` when it is not JSON).
pub async fn admin_call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("request to {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Monday 2 March 2026, 09:00 UTC (10:00 in Paris): the admin tests' start time.
pub fn monday_9am_utc() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap_or_else(|e| panic!("{e}"))
        .with_timezone(&chrono::Utc)
}

/// A demo agent by id, to change its settings (e.g. its phone's password).
pub fn demo_agent<'a>(
    spec: &'a mut boomerang::config::ConfigSpec,
    id: &str,
) -> &'a mut boomerang::config::AgentSpec {
    spec.agents
        .iter_mut()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("the demo has no agent {id}"))
}

/// Route point 8009 to `ringing-queue.yaml`, with the flows of `flows` (a copy from
/// [`flows_with_ringing_queue`]).
pub fn route_8009_to_ringing_queue(spec: &mut boomerang::config::ConfigSpec, flows: &Path) {
    route_point_to(spec, "8009", "ringing-queue.yaml", flows);
}

/// A queue from its settings as an operator writes them in the file (the others at their
/// defaults), e.g. `json!({"name": "X_VQ_CB", "business_hours": "always"})`.
pub fn queue_spec(settings: serde_json::Value) -> boomerang::config::QueueSpec {
    serde_json::from_value(settings).unwrap_or_else(|e| panic!("queue settings: {e}"))
}

/// Business hours in `time_zone` open on the `weekly` days (`"sun"` → `"09:00-18:00"`).
pub fn hours_spec(
    time_zone: &str,
    weekly: &[(&str, &str)],
) -> boomerang::config::BusinessHoursSpec {
    boomerang::config::BusinessHoursSpec {
        time_zone: time_zone.to_string(),
        weekly: weekly
            .iter()
            .map(|(d, h)| (d.to_string(), h.to_string()))
            .collect(),
        special_days: Vec::new(),
    }
}

/// Adds `queue` to the demo's queues just before `Support_VQ` (where the tests wrote it).
pub fn insert_queue(spec: &mut boomerang::config::ConfigSpec, queue: boomerang::config::QueueSpec) {
    let at = spec
        .queues
        .iter()
        .position(|q| q.name == "Support_VQ")
        .unwrap_or(spec.queues.len());
    spec.queues.insert(at, queue);
}

/// Local push receivers (webhook, fake FCM).
pub mod push;

/// Starts the real `boomerang serve --config file` (its configuration must listen on UDP), waits
/// for its listener lines and keeps reading what it prints afterwards, so it never writes into a
/// full pipe; (the process, the API's URL, the SIP UDP address). `name` names it in a failure
/// and in its log: `BOOMERANG_TEST_NODE_LOGS=<dir>` keeps every engine's output there and shows
/// its stderr, `BOOMERANG_TEST_NODE_LOG_LEVEL` sets its `RUST_LOG` (default warn).
pub fn serve(file: &Path, name: &str) -> (std::process::Child, String, std::net::SocketAddr) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let logs = std::env::var_os("BOOMERANG_TEST_NODE_LOGS");
    let mut child = Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(["serve", "--config"])
        .arg(file)
        .env(
            "RUST_LOG",
            std::env::var("BOOMERANG_TEST_NODE_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
        )
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(if logs.is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start boomerang: {e}"));
    let mut out = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
    let (mut url, mut sip) = (None, None);
    while sip.is_none() {
        let mut line = String::new();
        let n = out.read_line(&mut line).unwrap_or(0);
        assert!(n > 0, "engine {name} stopped before listening");
        let last = line.trim().rsplit(' ').next().unwrap_or("").to_string();
        if line.contains("REST API") {
            url = Some(last);
        } else if line.contains("SIP on udp") {
            sip = last.parse::<std::net::SocketAddr>().ok();
        }
    }
    let keep = logs.map(|d| {
        let f = Path::new(&d).join(format!("{name}-{}.log", std::process::id()));
        std::fs::File::create(f).unwrap_or_else(|e| panic!("{e}"))
    });
    std::thread::spawn(move || match keep {
        Some(mut f) => std::io::copy(&mut out, &mut f),
        None => std::io::copy(&mut out, &mut std::io::sink()),
    });
    let url = url.unwrap_or_else(|| panic!("engine {name} printed no API URL"));
    (child, url, sip.unwrap_or_else(|| panic!("no SIP address")))
}

/// Starts the real `boomerang serve` on `dir/boomerang.yaml` (stdout piped, logs at warn) and
/// waits for its first line, which names the HTTP URL; (the process, that URL).
pub fn start_engine_in(dir: &Path) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(["serve", "--config"])
        .arg(dir.join("boomerang.yaml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    // Keep reading what it prints, so it never writes into a full or closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    assert!(url.starts_with("http://127.0.0.1:"), "engine said: {line}");
    (child, url)
}

/// A copy of the repository's flows plus `extra` files (name, YAML text), for tests that
/// route a number to a flow of their own with [`route_point_to`].
pub fn flows_plus(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let flows = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    for f in std::fs::read_dir(repo().join("ivr-flows")).unwrap_or_else(|e| panic!("{e}")) {
        let f = f.unwrap_or_else(|e| panic!("{e}")).path();
        std::fs::copy(&f, flows.path().join(f.file_name().unwrap_or_default()))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for (name, text) in extra {
        std::fs::write(flows.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    flows
}

/// Route point `number` to `flow` in the flows directory `flows` (from [`flows_plus`]).
pub fn route_point_to(
    spec: &mut boomerang::config::ConfigSpec,
    number: &str,
    flow: &str,
    flows: &Path,
) {
    spec.route_points.insert(
        0,
        boomerang::config::RoutePointSpec {
            number: number.to_string(),
            flow: flow.to_string(),
            description: String::new(),
        },
    );
    spec.flows_dir = flows.display().to_string();
}
/// Several nodes: Kamailio in front, the traced customer, bookings through each node.
pub mod cluster;
/// Speech made with espeak-ng and sox at test time, packed as RTP in pcap files for SIPp.
pub mod pcap;
/// A private PostgreSQL server for the multi-node tests.
pub mod pg;

/// Polls `ok` every 50 ms for up to `secs` seconds; whether it came true. For state a test must
/// see before going on (a call up, a queue emptied): a fixed sleep races a loaded machine.
pub async fn wait_until<F, Fut>(secs: u64, mut ok: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = boomerang::clock::monotonic_now() + Duration::from_secs(secs);
    loop {
        if ok().await {
            return true;
        }
        if boomerang::clock::monotonic_now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the sample `series` (name and labels as rendered, e.g.
/// `boomerang_sip_requests_received_total{method="ACK"}`) of the engine's `/metrics` on the
/// HTTP listener `http`; `None` when it cannot be read or is not there.
pub async fn metric(http: SocketAddr, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{http}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The engine's calls up or being set up (`boomerang_calls_active` of its `/metrics` on the
/// HTTP listener `http`); `None` when it cannot be read.
pub async fn calls_active(http: SocketAddr) -> Option<u64> {
    metric(http, "boomerang_calls_active")
        .await
        .map(|v| v as u64)
}

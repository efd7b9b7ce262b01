//! Operations through the real binary: `/healthz` and `/readyz` over HTTP without credentials,
//! and the graceful shutdown on SIGTERM checked with SIPp — a call in progress finishes
//! normally, a new INVITE gets 503 with Retry-After, `/readyz` answers 503 while draining,
//! the process exits 0 after the last call; with a short drain the remaining call gets our
//! BYE; a second SIGTERM exits at once. The engine runs the benchmark configuration (route
//! point 8999 answers and plays silence) on loopback ports chosen by the OS.

use crate::common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::repo;

/// The benchmark configuration with `shutdown.drain_seconds` set.
fn config_text(drain_seconds: u32) -> String {
    format!(
        "listeners:\n  sip_udp: [\"127.0.0.1:0\"]\n  sip_tcp: []\n  http: \"127.0.0.1:0\"\n\
         sip:\n  realm: boomerang\n\
         media:\n  prompts_dir: {prompts}\n\
         store:\n  data_dir: data\n\
         flows_dir: {flows}\n\
         shutdown:\n  drain_seconds: {drain_seconds}\n\
         api:\n  keys: [{{name: t, key: ops-test-key}}]\n\
         queues:\n  - name: Sales_VQ_CB\n\
         route_points:\n  - number: \"8999\"\n    flow: answer.yaml\n",
        prompts = repo().join("prompts").display(),
        flows = repo().join("benches/sip/flows").display(),
    )
}

/// The engine binary, its HTTP base URL, SIP UDP address, and every line it printed so far.
struct Running {
    child: Child,
    url: String,
    sip: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
    /// The configuration file the engine was started from.
    file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(drain_seconds: u32) -> Running {
        Running::start_with(drain_seconds, "", "warn,boomerang=info")
    }

    /// With `extra` appended to the configuration and `rust_log` as the log filter.
    fn start_with(drain_seconds: u32, extra: &str, rust_log: &str) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("boomerang.yaml");
        std::fs::write(&file, config_text(drain_seconds) + extra).unwrap();
        let mut child = spawn(&file, rust_log);
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let lines = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let plain = strip_ansi(&line);
                lines.lock().unwrap().push(plain.clone());
                let _ = tx.send(plain);
            }
        });
        let (mut url, mut sip) = (None, None);
        while url.is_none() || sip.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the engine did not print its listeners");
            if let Some(u) = line.strip_prefix("boomerang: REST API on ") {
                url = Some(u.trim().to_string());
            }
            if let Some(a) = line.strip_prefix("boomerang: SIP on udp ") {
                sip = Some(a.trim().parse().unwrap());
            }
        }
        Running {
            child,
            url: url.unwrap(),
            sip: sip.unwrap(),
            output,
            file,
            _dir: dir,
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill only sends a signal to our own child process.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits (up to `limit`) for the process to exit; its exit code.
    async fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let until = boomerang::clock::monotonic_now() + limit;
        while boomerang::clock::monotonic_now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    fn lines(&self, needle: &str) -> Vec<String> {
        self.output
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &Path, rust_log: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn strip_ansi(s: &str) -> String {
    regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(s, "")
        .into_owned()
}

async fn sipp_ok(child: &mut tokio::process::Child, limit: Duration) -> bool {
    tokio::time::timeout(limit, child.wait())
        .await
        .is_ok_and(|s| s.is_ok_and(|s| s.success()))
}

fn invite(call_id: &str, port: u16) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
    format!(
        "INVITE sip:8999@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:8999@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:a@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Sends one INVITE and returns the first final response's text (1xx skipped).
async fn final_response(target: SocketAddr, call_id: &str) -> Option<String> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    common::final_response_on(&sock, target, invite(call_id, port).as_bytes()).await
}

async fn get(url: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// Waits (up to 30 s) until the engine at `url` got SIPp's ACK of its answer (the call is then
/// up), as its `/metrics` counts it: a fixed 1.2 s was outlasted by a slow SIPp start on a
/// loaded machine, and the test then signalled or scraped an engine with no call.
async fn call_up(url: &str) {
    let ack = "boomerang_sip_requests_received_total{method=\"ACK\"}";
    for _ in 0..300 {
        if value(&scrape(url).await, ack) >= 1.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the engine at {url} never got SIPp's ACK");
}

/// Waits (up to 10 s) until the engine at `url` says it is draining (`/readyz` 503): the
/// signal is handled asynchronously, which a fixed 300 ms could outlast on a loaded machine.
async fn until_draining(url: &str) {
    for _ in 0..100 {
        if get(&format!("{url}/readyz")).await.0 == 503 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the engine at {url} never started draining");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_without_credentials() {
    let r = Running::start(30);
    let (status, body) = get(&format!("{}/healthz", r.url)).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "alive");
    let (status, body) = get(&format!("{}/readyz", r.url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["draining"], false);
    for check in ["store", "listeners", "flows"] {
        assert_eq!(body[check], true, "{check}: {body}");
    }
    // The rest of the API still wants its key.
    let (status, _) = get(&format!("{}/openapi.json", r.url)).await;
    assert_eq!(status, 401);
}

/// A reader that goes away after the first line (`boomerang serve | head -1`, or a supervisor
/// that stops reading its child's output) must not stop the engine: its listener lines and
/// any later output are best effort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_keeps_serving_when_its_stdout_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let file = dir.path().join("boomerang.yaml");
    let text = config_text(30).replace(
        "http: \"127.0.0.1:0\"",
        &format!("http: \"127.0.0.1:{port}\""),
    );
    std::fs::write(&file, text).unwrap();
    let mut child = spawn(&file, "warn");
    // The read end is closed before the engine has printed anything.
    drop(child.stdout.take());
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut status = None;
    for _ in 0..150 {
        if let Ok(r) = reqwest::get(&url).await {
            status = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The listener lines are printed right after the listeners open, and a failed print
    // takes the engine down within a second or two: give it three.
    for _ in 0..30 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = match reqwest::get(&url).await {
        Ok(r) => Some(r.status().as_u16()),
        Err(_) => None,
    };
    let exited = child.try_wait().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(exited, None, "the engine exited when its stdout closed");
    assert_eq!(status, Some(200));
    assert_eq!(
        again,
        Some(200),
        "the engine stopped serving when its stdout closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_live_calls_refuses_new_ones_and_exits_zero() {
    let mut r = Running::start(30);
    let mut held = common::sipp_caller("hold-drain.xml", r.sip);
    call_up(&r.url).await;
    let signalled = boomerang::clock::monotonic_now();
    r.signal(libc::SIGTERM);
    until_draining(&r.url).await;
    let resp = final_response(r.sip, "after-sigterm")
        .await
        .expect("no answer to an INVITE after SIGTERM");
    assert!(resp.starts_with("SIP/2.0 503 "), "{resp}");
    assert!(resp.contains("\r\nRetry-After: "), "{resp}");
    let (status, body) = get(&format!("{}/readyz", r.url)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["draining"], true);
    let (status, _) = get(&format!("{}/healthz", r.url)).await;
    assert_eq!(status, 200);
    let text = scrape(&r.url).await;
    assert_eq!(
        value(
            &text,
            "boomerang_sip_invites_refused_total{reason=\"draining\"}"
        ),
        1.0,
        "{text}"
    );
    // The call in progress ends as its caller decides: the caller's BYE gets its 200.
    assert!(
        sipp_ok(&mut held, Duration::from_secs(20)).await,
        "the call in progress did not finish normally"
    );
    // The engine exits 0 once the last call is gone, well before the 30 s drain limit.
    let code = r.exit_code(Duration::from_secs(15)).await;
    assert_eq!(code, Some(0), "exit code");
    assert!(signalled.elapsed() < Duration::from_secs(20));
    let done = r.lines("shutdown complete");
    assert_eq!(done.len(), 1, "{:?}", r.output.lock().unwrap());
    assert!(done[0].contains("calls=1"), "{}", done[0]);
    assert!(done[0].contains("hung_up=0"), "{}", done[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_short_drain_the_remaining_call_gets_our_bye() {
    let mut r = Running::start(1);
    // SIPp is answered, then waits (up to 20 s) for the engine's BYE and answers it.
    let mut caller = common::sipp_caller("silent-caller.xml", r.sip);
    call_up(&r.url).await;
    r.signal(libc::SIGTERM);
    assert!(
        sipp_ok(&mut caller, Duration::from_secs(15)).await,
        "the remaining call received no BYE"
    );
    assert_eq!(r.exit_code(Duration::from_secs(15)).await, Some(0));
    let done = r.lines("shutdown complete");
    assert_eq!(done.len(), 1, "{:?}", r.output.lock().unwrap());
    assert!(done[0].contains("hung_up=1"), "{}", done[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once() {
    let mut r = Running::start(30);
    let _caller = common::sipp_caller("silent-caller.xml", r.sip);
    call_up(&r.url).await;
    r.signal(libc::SIGTERM);
    until_draining(&r.url).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Still draining: the call is up and the drain lasts 30 s.
    assert_eq!(r.child.try_wait().unwrap(), None);
    let second = boomerang::clock::monotonic_now();
    r.signal(libc::SIGTERM);
    let code = r.exit_code(Duration::from_secs(5)).await;
    assert_eq!(code, Some(1), "exit code after a second SIGTERM");
    assert!(second.elapsed() < Duration::from_secs(3));
    assert!(r.lines("shutdown complete").is_empty());
}

#[test]
fn check_config_refuses_a_drain_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let bad =
        boomerang::config::Config::from_str_in("shutdown:\n  drain_seconds: 90000\n", dir.path())
            .expect_err("a 25 h drain was accepted");
    let text = bad.to_string();
    assert!(text.contains("shutdown.drain_seconds"), "{text}");
    let ok = boomerang::config::Config::from_str_in(
        "listeners: {sip_udp: [], sip_tcp: []}\n",
        dir.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.spec.shutdown.drain_seconds, 30);
}

/// The exposition text of `/metrics`, fetched without credentials.
async fn scrape(url: &str) -> String {
    let resp = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    resp.text().await.unwrap()
}

/// The value of the sample `series` (name with its labels as rendered), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_counters_move_after_a_sipp_call() {
    let r = Running::start(30);
    let before = scrape(&r.url).await;
    assert!(value(&before, "boomerang_process_resident_memory_bytes") > 1e6);
    assert!(value(&before, "boomerang_process_open_fds") >= 3.0);
    let invites = "boomerang_sip_requests_received_total{method=\"INVITE\"}";
    let byes = "boomerang_sip_requests_received_total{method=\"BYE\"}";
    let ended = "boomerang_calls_total{route_point=\"8999\",outcome=\"CallerHungUp\"}";
    let ok_sent = "boomerang_sip_responses_sent_total{class=\"2xx\"}";
    assert_eq!(value(&before, invites), 0.0);
    assert_eq!(value(&before, ended), 0.0);
    let mut caller = common::sipp_caller("hold-open.xml", r.sip);
    call_up(&r.url).await;
    let during = scrape(&r.url).await;
    assert_eq!(value(&during, "boomerang_calls_active"), 1.0, "{during}");
    assert!(
        sipp_ok(&mut caller, Duration::from_secs(20)).await,
        "the call failed"
    );
    // The engine's end of the call follows SIPp's: wait (up to 10 s) for it to be counted.
    for _ in 0..100 {
        let now = scrape(&r.url).await;
        if value(&now, ended) >= 1.0 && value(&now, "boomerang_calls_active") == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = scrape(&r.url).await;
    assert!(value(&after, invites) >= 1.0, "{after}");
    assert!(value(&after, byes) >= 1.0, "{after}");
    assert!(value(&after, ok_sent) >= 2.0, "{after}");
    assert_eq!(value(&after, ended), 1.0, "{after}");
    assert_eq!(value(&after, "boomerang_calls_active"), 0.0, "{after}");
    assert_eq!(
        value(&after, "boomerang_queue_waiting{queue=\"Sales_VQ_CB\"}"),
        0.0
    );
    for name in [
        "boomerang_calls_active",
        "boomerang_queue_waiting",
        "boomerang_queue_ewt_seconds",
        "boomerang_agents",
        "boomerang_callbacks",
        "boomerang_process_resident_memory_bytes",
        "boomerang_process_open_fds",
        "boomerang_http_requests_total",
        "boomerang_http_rate_limited_total",
        "boomerang_sip_requests_received_total",
        "boomerang_sip_responses_sent_total",
        "boomerang_calls_total",
    ] {
        assert!(
            after.contains(&format!("# TYPE {name} "))
                || after.contains(&format!("# TYPE {} ", name.trim_end_matches("_total"))),
            "{name} missing:\n{after}"
        );
    }
    // The two earlier scrapes were counted as HTTP 2xx answers (a scrape is counted once
    // answered, so not in its own text).
    assert!(
        value(&after, "boomerang_http_requests_total{class=\"2xx\"}") >= 2.0,
        "{after}"
    );
}

/// With `logging.format: json` every line is a JSON object, and the lines a call causes in its
/// flow carry its SIP Call-ID (and route point and flow) in their span fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_call_id_on_every_line_of_the_call() {
    let r = Running::start_with(30, "logging:\n  format: json\n", "warn,boomerang=debug");
    let call_id = format!("json-log-{}", std::process::id());
    let out = common::sipp_client(
        &repo().join("tests/sipp/hold-open.xml"),
        r.sip,
        &["-s", "8999", "-cid_str", &call_id],
    )
    .await;
    assert!(out.status.success(), "{}", common::sipp_report(&out));
    // The call's last lines come through the engine's stdout after SIPp's end: wait (up to
    // 10 s) for its closing line rather than a fixed 500 ms.
    for _ in 0..100 {
        if r.lines("call ended").iter().any(|l| l.contains(&call_id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines = r.output.lock().unwrap().clone();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| !l.starts_with("boomerang: "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of_call: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["span"]["call_id"] == call_id.as_str())
        .collect();
    let messages: Vec<&str> = of_call
        .iter()
        .filter_map(|e| e["fields"]["message"].as_str())
        .collect();
    // The interpreter's own line and the front's closing line, both inside the call's span.
    for wanted in ["flow ended", "call ended"] {
        assert!(
            messages.contains(&wanted),
            "{wanted} not in {messages:?}\n{lines:#?}"
        );
    }
    let flow_line = of_call
        .iter()
        .find(|e| e["fields"]["message"] == "flow ended")
        .unwrap();
    assert_eq!(flow_line["target"], "boomerang::flow::interpreter");
    assert_eq!(flow_line["span"]["route_point"], "8999");
    assert_eq!(flow_line["span"]["flow"], "answer-and-wait");
    assert_eq!(flow_line["spans"][0]["name"], "call");
    // No line of the flow escapes the span: every interpreter line belongs to this call.
    let loose: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["target"] == "boomerang::flow::interpreter" && e["span"].is_null())
        .collect();
    assert!(loose.is_empty(), "{loose:?}");
}

#[test]
fn check_config_refuses_an_unknown_log_format() {
    let dir = tempfile::tempdir().unwrap();
    let bad = boomerang::config::Config::from_str_in("logging:\n  format: xml\n", dir.path())
        .expect_err("logging.format xml was accepted");
    let text = bad.to_string();
    assert!(text.contains("logging") && text.contains("xml"), "{text}");
}

/// `metrics.enabled: false` takes `/metrics` away (the path falls to the API: 401 without a
/// key) and calls still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_switched_off() {
    let r = Running::start_with(30, "metrics:\n  enabled: false\n", "warn,boomerang=info");
    let resp = reqwest::get(format!("{}/metrics", r.url)).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert!(
        status == 404 || status == 401,
        "/metrics answered {status} with metrics off: {body}"
    );
    assert!(!body.contains("# TYPE"), "{body}");
    let out = common::sipp_client(
        &repo().join("tests/sipp/hold-open.xml"),
        r.sip,
        &["-s", "8999"],
    )
    .await;
    assert!(out.status.success(), "{}", common::sipp_report(&out));
    let (status, _) = get(&format!("{}/healthz", r.url)).await;
    assert_eq!(status, 200);
}

/// GET with an API key: status and JSON body.
async fn get_keyed(url: &str, key: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .get(url)
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// The `access-control-allow-origin` a CORS preflight from `origin` gets, if any.
async fn cors_allowed(url: &str, origin: &str) -> Option<String> {
    let resp = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    resp.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string())
}

/// Polls (up to 10 s) until the engine printed a line containing `needle`; that line.
async fn until_line(r: &Running, needle: &str) -> String {
    let until = boomerang::clock::monotonic_now() + Duration::from_secs(10);
    loop {
        if let Some(l) = r.lines(needle).pop() {
            return l;
        }
        assert!(
            boomerang::clock::monotonic_now() < until,
            "no line with {needle:?}: {:?}",
            r.output.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGHUP re-reads the file: a new API key replaces the old, a CORS origin is allowed and a
/// queue's setting changes, all observed over HTTP; then a broken file changes nothing, the
/// log says why (the setting and its line) and the failure is counted in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_keys_cors_and_queue_settings_and_a_broken_file_changes_nothing() {
    let r = Running::start(30);
    let status_url = format!("{}/engagement/v3/callbacks/queue-status/Sales_VQ_CB", r.url);
    let origin = "https://ops.example";
    let (code, body) = get_keyed(&status_url, "ops-test-key").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["offerScheduledCallback"], true, "{body}");
    assert_eq!(get_keyed(&status_url, "reloaded-key").await.0, 401);
    assert_eq!(cors_allowed(&status_url, origin).await, None);

    let edited = config_text(30)
        .replace(
            "key: ops-test-key}]\n",
            "key: reloaded-key}]\n  cors_origins: [\"https://ops.example\"]\n",
        )
        .replace(
            "- name: Sales_VQ_CB\n",
            "- name: Sales_VQ_CB\n    scheduled_enabled: false\n",
        );
    assert!(edited.contains("reloaded-key") && edited.contains("scheduled_enabled"));
    std::fs::write(&r.file, &edited).unwrap();
    r.signal(libc::SIGHUP);
    let line = until_line(&r, "configuration reloaded").await;
    assert!(
        line.contains("api.keys") && line.contains("api.cors_origins"),
        "{line}"
    );
    assert!(line.contains("queue `Sales_VQ_CB` settings"), "{line}");
    let (code, body) = get_keyed(&status_url, "reloaded-key").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["offerScheduledCallback"], false, "{body}");
    assert_eq!(get_keyed(&status_url, "ops-test-key").await.0, 401);
    assert_eq!(
        cors_allowed(&status_url, origin).await.as_deref(),
        Some(origin)
    );
    let text = scrape(&r.url).await;
    assert_eq!(
        value(&text, "boomerang_config_reloads_total{result=\"ok\"}"),
        1.0,
        "{text}"
    );

    // A broken file: the old key back, and a drain of 25 hours. Nothing changes.
    let broken = config_text(90000);
    std::fs::write(&r.file, broken).unwrap();
    r.signal(libc::SIGHUP);
    let line = until_line(&r, "configuration reload refused").await;
    assert!(line.contains("nothing changed"), "{line}");
    assert!(line.contains("shutdown.drain_seconds"), "{line}");
    let (code, body) = get_keyed(&status_url, "reloaded-key").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["offerScheduledCallback"], false, "{body}");
    assert_eq!(get_keyed(&status_url, "ops-test-key").await.0, 401);
    let text = scrape(&r.url).await;
    assert_eq!(
        value(&text, "boomerang_config_reloads_total{result=\"failed\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "boomerang_config_reloads_total{result=\"ok\"}"),
        1.0,
        "{text}"
    );
    // The engine still serves and still stops on SIGTERM.
    let (status, _) = get(&format!("{}/readyz", r.url)).await;
    assert_eq!(status, 200);
}

/// Swagger UI at `/docs` works offline: the page and its assets come from the binary (no
/// address outside the engine in the page), and the document it loads answers with a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_is_served_from_the_binary_with_the_openapi_document() {
    let r = Running::start(30);
    let resp = reqwest::get(format!("{}/docs", r.url)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = resp.text().await.unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    assert!(page.contains("url: \"/openapi.json\""), "{page}");
    for (asset, ctype, min) in [
        ("/docs/swagger-ui-bundle.js", "text/javascript", 500_000),
        ("/docs/swagger-ui.css", "text/css", 50_000),
    ] {
        assert!(page.contains(asset), "{asset} not referenced: {page}");
        let resp = reqwest::get(format!("{}{asset}", r.url)).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{asset}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ctype)
        );
        let body = resp.text().await.unwrap();
        assert!(body.len() > min, "{asset}: {} bytes", body.len());
    }
    // The crate's own index page (which echoes the request's URI) is not served.
    let resp = reqwest::get(format!("{}/docs/", r.url)).await.unwrap();
    assert_ne!(resp.status().as_u16(), 200);
    // The document the page loads, with the key the page sends as x-api-key.
    let (code, doc) = get_keyed(&format!("{}/openapi.json", r.url), "ops-test-key").await;
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert!(doc["paths"]["/engagement/v3/callbacks/create"].is_object());
}

/// With `metrics.listen` the figures are also on a port of their own; during a SIP flood
/// (SIPp's built-in caller at 300 calls/s) every scrape on both listeners still answers within
/// 2 s, and the flood shows in the counters and the store and media figures exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_answer_during_a_sip_flood_on_the_api_and_the_metrics_listener() {
    let r = Running::start_with(
        30,
        "metrics:\n  listen: \"127.0.0.1:0\"\n",
        "warn,boomerang=info",
    );
    let line = until_line(&r, "boomerang: metrics on ").await;
    let metrics_url = line
        .trim()
        .strip_prefix("boomerang: metrics on ")
        .unwrap()
        .to_string();
    assert_ne!(metrics_url, r.url);
    let text = scrape(&metrics_url).await;
    assert!(
        text.contains("# TYPE boomerang_process_open_fds gauge"),
        "{text}"
    );
    let (status, _) = get(&format!("{metrics_url}/readyz")).await;
    assert_eq!(status, 200);
    // Only the figures and probes there: the API is not on the metrics port.
    let resp = reqwest::get(format!("{metrics_url}/openapi.json"))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    let mut flood = tokio::process::Command::new("sipp")
        .args([
            "-sn", "uac", "-s", "8999", "-r", "300", "-m", "3000", "-d", "200",
        ])
        .args(["-i", "127.0.0.1", "-nostdin", "-timeout", "25s"])
        .args(["-p", &common::free_port().to_string()])
        .args(["-mp", &common::free_port().to_string()])
        .arg(r.sip.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut slowest = Duration::ZERO;
    for i in 0..8 {
        let base = if i % 2 == 0 { &r.url } else { &metrics_url };
        let started = boomerang::clock::monotonic_now();
        let resp = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("scrape {i} on {base} during the flood: {e}"));
        assert_eq!(resp.status().as_u16(), 200);
        let text = resp.text().await.unwrap();
        assert!(text.contains("boomerang_sip_requests_received_total"));
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let during = scrape(&metrics_url).await;
    let _ = flood.kill().await;
    let invites = value(
        &during,
        "boomerang_sip_requests_received_total{method=\"INVITE\"}",
    );
    assert!(invites > 300.0, "{invites} INVITEs counted\n{during}");
    eprintln!("slowest scrape during the flood: {slowest:?}, {invites} INVITEs");
    for name in [
        "boomerang_store_latency_seconds",
        "boomerang_media_sessions",
        "boomerang_media_ports_in_use",
        "boomerang_rtp_packets_received_total",
        "boomerang_rtp_packets_lost_total",
        "boomerang_rtp_jitter_seconds",
    ] {
        assert!(during.contains(name), "{name} missing:\n{during}");
    }
    // The store was used at start (documents read): its latency was recorded.
    assert!(
        value(
            &during,
            "boomerang_store_latency_seconds_count{op=\"documents\"}"
        ) >= 1.0,
        "{during}"
    );
}

/// The demo engine (with `extra` appended to its configuration) whose trunk is a SIPp customer
/// that rings for 3 s then answers; a callback booked and alice's phone registered, which
/// triggers its dial. The store's directory, the engine, its URL, the callback, the trunk's
/// SIPp and the configuration text.
async fn dialling_engine(
    extra: &str,
) -> (
    tempfile::TempDir,
    boomerang::engine::Engine,
    String,
    boomerang::callback::model::CallbackRecord,
    tokio::process::Child,
    String,
) {
    let trunk_port = common::free_port();
    let trunk = common::sipp_server("customer-rings-then-answers.xml", trunk_port, 1);
    let edit = |t: String| t.replace("port: 5080", &format!("port: {trunk_port}")) + extra;
    let text = common::demo_config_text(edit);
    let (dir, engine) = common::start_demo_engine(edit).await;
    let url = format!("http://{}", engine.http_addr);
    let rec = common::book_callback(&engine, "Sales_VQ_CB", "+33612345678").await;
    common::register_alice(
        engine.sip.udp[0],
        &format!("127.0.0.1:{}", common::free_port()),
    )
    .await;
    (dir, engine, url, rec, trunk, text)
}

/// A callback dial through a SIPp trunk whose customer rings for 3 s then answers: the dial
/// is counted as connected, its post-dial delay (INVITE to 180) is short and its setup time
/// (INVITE to 200) about 3 s, read over HTTP from `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_dial_records_its_result_setup_time_and_post_dial_delay() {
    let (_dir, engine, url, rec, _trunk, _) = dialling_engine("").await;
    let connected = "boomerang_dial_attempts_total{result=\"connected\"}";
    let until = boomerang::clock::monotonic_now() + Duration::from_secs(15);
    let text = loop {
        let text = scrape(&url).await;
        if value(&text, connected) >= 1.0 {
            break text;
        }
        assert!(
            boomerang::clock::monotonic_now() < until,
            "no connected dial of {}:\n{text}",
            rec.id
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(value(&text, connected), 1.0, "{text}");
    assert_eq!(value(&text, "boomerang_call_setup_seconds_count"), 1.0);
    let setup = value(&text, "boomerang_call_setup_seconds_sum");
    assert!((2.9..8.0).contains(&setup), "setup {setup}\n{text}");
    assert_eq!(value(&text, "boomerang_post_dial_delay_seconds_count"), 1.0);
    let pdd = value(&text, "boomerang_post_dial_delay_seconds_sum");
    assert!(pdd < 1.5, "post-dial delay {pdd}\n{text}");
    // The customer's leg holds a media session while up.
    assert!(value(&text, "boomerang_media_sessions") >= 1.0, "{text}");
    assert!(
        value(&text, "boomerang_media_ports_in_use") >= 1.0,
        "{text}"
    );
    engine.shutdown();
}

/// Whether the exposition `text` exports the series name `name`: a sample of it, or the
/// `# TYPE` of the counter or histogram it belongs to (families with no label set yet have no
/// samples, only their TYPE line).
fn exported(text: &str, name: &str) -> bool {
    let sample = text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    });
    let family = [
        ("_total", "counter"),
        ("_bucket", "histogram"),
        ("_sum", "histogram"),
        ("_count", "histogram"),
    ]
    .iter()
    .any(|(suffix, kind)| {
        name.strip_suffix(suffix)
            .is_some_and(|base| text.contains(&format!("# TYPE {base} {kind}\n")))
    });
    let plain = text
        .lines()
        .any(|l| l.starts_with(&format!("# TYPE {name} ")) && !l.ends_with(" counter"));
    sample || family || plain
}

/// The Grafana dashboard shipped in packaging/grafana uses only metric names a running engine
/// exports: every `boomerang_…` name in its PromQL is checked against a real `/metrics` scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_uses_only_exported_metric_names() {
    let text = std::fs::read_to_string(repo().join("packaging/grafana/boomerang.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut exprs = Vec::new();
    fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(s)) => {
                            out.push(s.clone())
                        }
                        ("query", serde_json::Value::String(s)) => out.push(s.clone()),
                        _ => collect(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&dash, &mut exprs);
    let names: std::collections::BTreeSet<String> = regex::Regex::new(r"\bboomerang_[a-z0-9_]+")
        .unwrap()
        .find_iter(&exprs.join("\n"))
        .map(|m| m.as_str().to_string())
        .collect();
    assert!(names.len() >= 25, "{names:?}");
    let r = Running::start(30);
    // One call, so that the families labelled from the configuration (route points) exist.
    let out = common::sipp_client(
        &repo().join("tests/sipp/hold-open.xml"),
        r.sip,
        &["-s", "8999"],
    )
    .await;
    assert!(out.status.success(), "{}", common::sipp_report(&out));
    let scraped = scrape(&r.url).await;
    let missing: Vec<&String> = names.iter().filter(|n| !exported(&scraped, n)).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{scraped}");
    // And the check can fail: a misspelt name is caught.
    assert!(!exported(&scraped, "boomerang_sip_request_received_total"));
    assert!(!exported(&scraped, "boomerang_calls_active_total"));
}

/// SIGTERM while a callback's customer is being dialled (their phone, a SIPp trunk, rings
/// for 3 s): with a 1 s drain the ringing dial is hung up (CANCEL) and the engine stops; the callback
/// stays ROUTING in the store, not lost nor completed, and after the restart it counts as one
/// failed attempt and waits for its retry. (The drain is what SIGTERM runs; `Engine::drain`
/// is called here on an engine in the test process.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_dial_hangs_it_up_and_keeps_the_callback() {
    use boomerang::callback::model::CallbackState;
    let (dir, engine, url, rec, _trunk, text) =
        dialling_engine("\nshutdown:\n  drain_seconds: 1\n").await;
    assert!(
        common::until_state(&engine, rec.id, CallbackState::Routing, 300).await,
        "the callback was never dialled"
    );
    // ROUTING comes before the dial's INVITE: wait (up to 10 s) for the call, not 300 ms.
    for _ in 0..100 {
        if value(&scrape(&url).await, "boomerang_calls_active") == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cfg = boomerang::config::Config::from_str_in(&text, dir.path()).unwrap();
    let before = scrape(&url).await;
    assert_eq!(value(&before, "boomerang_calls_active"), 1.0, "{before}");
    let started = boomerang::clock::monotonic_now();
    let report = engine.drain(&cfg).await;
    assert!(started.elapsed() < Duration::from_secs(10), "{report:?}");
    assert_eq!(report.calls_at_start, 1, "{report:?}");
    assert_eq!(report.hung_up, 1, "{report:?}");
    assert!(report.store_flushed && report.tasks_stopped, "{report:?}");
    // The dial was cut while ringing: the callback is still ROUTING, durable in the store.
    let after = engine.callbacks.get(rec.id).await.unwrap();
    assert_eq!(after.state, CallbackState::Routing, "{:?}", after.history);
    drop(engine);
    // After the restart it counts as one failed attempt and waits for its retry.
    let again = boomerang::engine::Engine::start(
        std::sync::Arc::new(cfg),
        boomerang::clock::SystemClock::shared(),
    )
    .await
    .unwrap();
    let back = again.callbacks.get(rec.id).await.unwrap();
    assert_eq!(back.state, CallbackState::Queued, "{:?}", back.history);
    assert_eq!(back.attempts(), 1, "{:?}", back.history);
    assert!(back.next_attempt_at.is_some(), "{back:?}");
    again.shutdown();
}

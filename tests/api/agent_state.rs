//! Agent state around a call, over real SIP (SIPp phones and trunk) and the administration
//! HTTP API: what an agent asks for during a call — Not Ready from an administrator, logged out
//! by the phone unregistering — is where the call leaves them, and a queue's wrap-up time is
//! after-call work before the agent is Ready again.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use boomerang::api::admin::auth::hash_password;
use boomerang::callback::model::CompletionReason;
use boomerang::config::ConfigSpec;
use boomerang::engine::Engine;
use boomerang::routing::StateKind;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "correct horse";

struct Running {
    engine: Engine,
    trunk: tokio::process::Child,
    phone: tokio::process::Child,
    agent_port: u16,
    _dir: tempfile::TempDir,
}

/// The demo with an administrator, a SIPp trunk whose customer answers and a SIPp phone for
/// alice that answers and talks three seconds; `edit` applies to the configuration.
async fn engine(edit: impl FnOnce(&mut ConfigSpec)) -> Running {
    common::capture_logs();
    let trunk_port = common::free_port();
    let agent_port = common::free_port();
    let trunk = common::sipp_server("customer-answers.xml", trunk_port, 1);
    let phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    let hash = hash_password(ADMIN_PASSWORD).expect("hash");
    let (dir, engine) = common::start_demo(|spec| {
        common::demo_trunk(spec).port = trunk_port;
        spec.admin.users.push(common::administrator("root", &hash));
        edit(spec);
    })
    .await;
    Running {
        engine,
        trunk,
        phone,
        agent_port,
        _dir: dir,
    }
}

impl Running {
    fn alice(&self) -> StateKind {
        let agents = self.engine.router.agents();
        agents.get(agents.index_of("alice").expect("alice")).state()
    }

    /// Waits (up to 10 s) for alice to be in `state`.
    async fn until_alice(&self, state: StateKind) -> bool {
        for _ in 0..1000 {
            if self.alice() == state {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Books a callback, registers alice and waits until she talks with the customer.
    async fn alice_on_a_call(&self) -> uuid::Uuid {
        let rec = common::book_callback(&self.engine, "Sales_VQ_CB", "+33612345678").await;
        common::register_alice(
            self.engine.sip.udp[0],
            &format!("127.0.0.1:{}", self.agent_port),
        )
        .await;
        assert!(
            self.until_alice(StateKind::Busy).await,
            "alice never took the call"
        );
        rec.id
    }

    /// Waits for the callback served by alice to complete and both SIPp sides to finish.
    async fn call_ends(&mut self, id: uuid::Uuid) {
        let (why, r) = common::until_completed(&self.engine, id).await;
        assert_eq!(why, CompletionReason::Agent, "{:?}", r.history);
        common::sipp_succeeded(&mut self.phone, "the agent").await;
        common::sipp_succeeded(&mut self.trunk, "the customer").await;
    }

    async fn admin(&self, path: &str, body: Value) -> (u16, Value) {
        let url = format!("http://{}", self.engine.http_addr);
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{url}/admin/login"))
            .json(&json!({"username": "root", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login body");
        let token = login["data"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {login}"))
            .to_string();
        let resp = http
            .post(format!("{url}/admin{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_set_not_ready_during_a_call_is_not_ready_when_it_ends() {
    let mut r = engine(|_| {}).await;
    let id = r.alice_on_a_call().await;
    let (status, v) = r
        .admin(
            "/agents/alice/state",
            json!({"state": "not_ready", "reason": "training"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["data"]["state"].as_str(),
            v["data"]["stateAfterCall"].as_str()
        ),
        (Some("busy"), Some("not_ready")),
        "still on the call, Not Ready after it: {v}"
    );
    r.call_ends(id).await;
    // She leaves the call (the release may follow the callback's completion), then a wrong
    // Ready gets time to show up.
    assert!(
        r.until_alice(StateKind::NotReady).await,
        "alice never left the call: {:?}",
        r.alice()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agents = r.engine.router.agents();
    let alice = agents.get(agents.index_of("alice").expect("alice"));
    assert_eq!(
        (alice.state(), alice.not_ready_reason().as_str()),
        (StateKind::NotReady, "training")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_phone_unregisters_during_a_call_is_logged_out_when_it_ends() {
    let mut r = engine(|_| {}).await;
    let id = r.alice_on_a_call().await;
    common::sipp_register(
        &common::repo().join("tests/sipp/agent-unregister.xml"),
        r.engine.sip.udp[0],
        &format!("127.0.0.1:{}", r.agent_port),
        &common::alice_credentials(),
    )
    .await;
    assert_eq!(r.alice(), StateKind::Busy, "the call goes on");
    r.call_ends(id).await;
    // The release may follow the callback's completion: wait for it (up to 10 s).
    r.until_alice(StateKind::LoggedOut).await;
    assert_eq!(r.alice(), StateKind::LoggedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_wrap_up_time_is_after_call_work_before_ready() {
    let mut r = engine(|spec| {
        common::demo_queue(spec, "Sales_VQ_CB").wrap_up_seconds = 5;
        common::demo_queue(spec, "Sales_VQ").wrap_up_seconds = 5;
    })
    .await;
    let id = r.alice_on_a_call().await;
    // Looked for as soon as the callback completes, and polled; 5 s of wrap-up leave a loaded
    // machine time to see it before it ends.
    let (why, rec) = common::until_completed(&r.engine, id).await;
    assert_eq!(why, CompletionReason::Agent, "{:?}", rec.history);
    r.until_alice(StateKind::AfterCallWork).await;
    assert_eq!(r.alice(), StateKind::AfterCallWork, "wrapping up");
    r.call_ends(id).await;
    assert!(r.until_alice(StateKind::Ready).await, "never Ready again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_a_registered_phone_cannot_be_made_ready() {
    let r = engine(|_| {}).await;
    let (status, v) = r
        .admin("/agents/alice/state", json!({"state": "ready"}))
        .await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("no registered phone")),
        "{v}"
    );
    assert_eq!(r.alice(), StateKind::LoggedOut);
    // Not Ready needs no phone; once the phone registers, Ready is accepted.
    let (status, v) = r
        .admin("/agents/alice/state", json!({"state": "not_ready"}))
        .await;
    assert_eq!(status, 200, "{v}");
    common::register_alice(r.engine.sip.udp[0], "127.0.0.1:9").await;
    let (status, v) = r
        .admin("/agents/alice/state", json!({"state": "ready"}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(r.alice(), StateKind::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_that_change_nothing_log_no_warning() {
    let r = engine(|_| {}).await;
    common::register_alice(r.engine.sip.udp[0], "127.0.0.1:9").await;
    assert_eq!(r.alice(), StateKind::Ready);
    // Ready again: nothing to do, no error.
    let (status, v) = r
        .admin("/agents/alice/state", json!({"state": "ready"}))
        .await;
    assert_eq!(status, 200, "{v}");
    // Logged out by an administrator, then the phone unregisters: already logged out.
    let (status, v) = r
        .admin("/agents/alice/state", json!({"state": "logged_out"}))
        .await;
    assert_eq!(status, 200, "{v}");
    common::sipp_register(
        &common::repo().join("tests/sipp/agent-unregister.xml"),
        r.engine.sip.udp[0],
        "127.0.0.1:9",
        &common::alice_credentials(),
    )
    .await;
    assert_eq!(r.alice(), StateKind::LoggedOut);
    let warnings: Vec<String> = common::log_lines(&["WARN", "alice"]);
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_agents_stay_logged_in_across_a_restart_until_the_registration_expires() {
    use boomerang::clock::ManualClock;
    use chrono::{TimeDelta, TimeZone, Utc};
    common::capture_logs();
    let dir = tempfile::tempdir().expect("temporary directory");
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let start = || async {
        let config = common::demo_config(dir.path(), |_| {});
        Engine::start(Arc::new(config), clock.shared())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let alice = |e: &Engine| {
        let agents = e.router.agents();
        agents.get(agents.index_of("alice").expect("alice")).state()
    };
    let first = start().await;
    // Alice's phone registers for 300 s.
    common::register_alice(first.sip.udp[0], "127.0.0.1:9").await;
    assert_eq!(alice(&first), StateKind::Ready);
    // The registration is written to the store in the background: wait (up to 10 s) until it
    // is there before stopping, or the restart would have nothing to find.
    for _ in 0..1000 {
        let kept = first
            .store
            .documents(boomerang::engine::sip::REGISTRATION_KIND)
            .await
            .unwrap_or_default();
        if !kept.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.shutdown();
    // After a restart within those 300 s she is still logged in, without re-registering.
    clock.advance(TimeDelta::seconds(200));
    let second = start().await;
    // Up to 10 s: the restart brings her back in the background.
    let mut back = false;
    for _ in 0..1000 {
        if alice(&second) == StateKind::Ready {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(back, "alice's registration was lost by the restart");
    assert_eq!(alice(&second), StateKind::Ready);
    second.shutdown();
    // After it expired, a restart does not bring her back.
    clock.advance(TimeDelta::seconds(101));
    let third = start().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alice(&third), StateKind::LoggedOut);
    third.shutdown();
}

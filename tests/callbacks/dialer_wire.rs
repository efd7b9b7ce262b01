//! The outbound dialer over real SIP on loopback, as the seed describes it: the ready agent who
//! triggers a callback's dial is not reserved while the customer's phone (a SIPp trunk) rings —
//! an inbound caller can take them — and the customer who answers and presses 1 is routed to
//! the next ready agent (alice's SIPp phone) and bridged, completing the callback as AGENT.

use crate::common;

use std::time::Duration;

use boomerang::callback::model::{CallbackState, CompletionReason};
use boomerang::clock::{Clock, SystemClock};
use boomerang::routing::{StateKind, Waiting};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_is_free_while_the_customer_rings_and_the_answered_customer_gets_the_next_agent()
{
    common::capture_logs();
    let trunk_port = common::free_port();
    let agent_port = common::free_port();
    let mut trunk = common::sipp_server("customer-rings-then-answers.xml", trunk_port, 1);
    let mut phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    let (_dir, engine) =
        common::start_demo(|spec| common::demo_trunk(spec).port = trunk_port).await;
    let rec = common::book_callback(&engine, "Sales_VQ_CB", "+33612345678").await;
    // Alice's phone registers: she is ready and her readiness triggers the dial.
    common::register_alice(engine.sip.udp[0], &format!("127.0.0.1:{agent_port}")).await;
    let routing = common::until_state(&engine, rec.id, CallbackState::Routing, 200).await;
    assert!(routing, "the callback was never dialled");
    // The customer's phone rings for three seconds: alice is Ready, not reserved, and an
    // inbound caller on the sales line is given her at once.
    let agents = engine.router.agents();
    let alice = agents.index_of("alice").expect("alice");
    assert_eq!(agents.get(alice).state(), StateKind::Ready);
    assert_eq!(engine.router.in_flight("Sales_VQ_CB").ok(), Some(1));
    let caller = Uuid::new_v4();
    let mut rx = engine
        .dispatch
        .enqueue_waiter(
            "Sales_VQ",
            Waiting {
                id: caller,
                priority: 0,
                enqueued_at: SystemClock.now(),
            },
        )
        .expect("queued");
    let a = rx
        .try_recv()
        .expect("alice was not free while the customer's phone rang");
    assert_eq!(
        (a.interaction, a.agent.as_str(), a.reserved),
        (caller, "alice", true)
    );
    // That caller leaves before being connected: alice is back to Ready.
    engine.dispatch.release(&a);
    assert_eq!(
        engine.callbacks.get(rec.id).await.ok().map(|r| r.state),
        Some(CallbackState::Routing),
        "still ringing"
    );
    let (why, r) = common::until_completed(&engine, rec.id).await;
    assert_eq!(why, CompletionReason::Agent, "{:?}", r.history);
    assert_eq!(r.metrics.connected_agent.as_deref(), Some("alice"));
    let states: Vec<&str> = r.history.iter().map(|e| e.to.name()).collect();
    assert_eq!(states, ["QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]);
    assert_eq!(engine.router.in_flight("Sales_VQ_CB").ok(), Some(0));
    common::sipp_succeeded(&mut trunk, "the customer").await;
    common::sipp_succeeded(&mut phone, "the agent").await;
}

/// The customer answers the callback and never presses a key: after the greeting's attempts
/// the engine hangs up, and the callback says so (NOT_CONFIRMED over the API), instead of
/// claiming the customer left before an agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_never_confirms_completes_as_not_confirmed() {
    let trunk_port = common::free_port();
    let mut trunk = common::sipp_server("customer-silent.xml", trunk_port, 1);
    let (_dir, engine) = common::start_demo(|spec| {
        common::demo_trunk(spec).port = trunk_port;
        spec.api.keys.push(common::api_key("t", "wire-key"));
    })
    .await;
    let base = format!("http://{}", engine.http_addr);
    let (_, v) = common::callbacks_api(
        &base,
        "wire-key",
        "create",
        serde_json::json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345679"}),
    )
    .await;
    let id: Uuid = v["data"]["id"].as_str().unwrap().parse().unwrap();
    common::register_alice(
        engine.sip.udp[0],
        &format!("127.0.0.1:{}", common::free_port()),
    )
    .await;
    let mut done = serde_json::Value::Null;
    for _ in 0..900 {
        let (_, v) = common::callbacks_api(
            &base,
            "wire-key",
            "retrieve",
            serde_json::json!({ "id": id }),
        )
        .await;
        if v["data"]["callbackState"] == "COMPLETED" {
            done = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["data"]["callbackReason"], "NOT_CONFIRMED", "{done}");
    let rec = engine.callbacks.get(id).await.unwrap();
    assert_eq!(rec.metrics.connected_agent, None);
    common::sipp_succeeded(&mut trunk, "the customer").await;
}

/// While the customer talks with alice (PROCESSING), the app's cancel is refused (409) but an
/// administrator's is taken: any record not COMPLETED can be ended by an administrator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_can_cancel_a_callback_in_processing() {
    let trunk_port = common::free_port();
    let agent_port = common::free_port();
    let _trunk = common::sipp_server("customer-answers.xml", trunk_port, 1);
    let _phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    let hash = boomerang::api::admin::auth::hash_password("pw-root").unwrap();
    let (_dir, engine) = common::start_demo(|spec| {
        common::demo_trunk(spec).port = trunk_port;
        spec.api.keys.push(common::api_key("t", "wire-key"));
        spec.admin.users.push(common::administrator("root", &hash));
    })
    .await;
    let base = format!("http://{}", engine.http_addr);
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("{base}/admin/login"))
        .json(&serde_json::json!({"username": "root", "password": "pw-root"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["accessToken"].as_str().unwrap().to_string();
    let rec = common::book_callback(&engine, "Sales_VQ_CB", "+33612345678").await;
    common::register_alice(engine.sip.udp[0], &format!("127.0.0.1:{agent_port}")).await;
    let processing = common::until_state(&engine, rec.id, CallbackState::Processing, 400).await;
    assert!(processing, "the customer was never bridged");
    let (app, _) = common::callbacks_api(
        &base,
        "wire-key",
        "cancel",
        serde_json::json!({ "id": rec.id }),
    )
    .await;
    assert_eq!(app, 409);
    // A bulk cancel leaves it alone, as the guide says.
    let span = chrono::TimeDelta::hours(1);
    let bulk: serde_json::Value = client
        .post(format!("{base}/admin/callbacks/bulk-cancel"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "serviceName": "Sales_VQ_CB",
            "from": (rec.desired_time - span).to_rfc3339(),
            "to": (rec.desired_time + span).to_rfc3339(),
            "ids": [rec.id],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bulk["data"]["cancelled"], serde_json::json!([]), "{bulk}");
    assert_eq!(
        bulk["data"]["skipped"][0]["id"],
        rec.id.to_string(),
        "{bulk}"
    );
    let admin = client
        .post(format!("{base}/admin/callbacks/{}/cancel", rec.id))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = admin.status().as_u16();
    let v: serde_json::Value = admin.json().await.unwrap_or_default();
    assert_eq!(status, 200, "{v}");
    let (why, _) = common::until_completed(&engine, rec.id).await;
    assert_eq!(why, CompletionReason::CancelledByAdmin);
    // The call's end afterwards does not overwrite the administrator's decision.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = engine.callbacks.get(rec.id).await.unwrap();
    assert_eq!(
        r.state,
        CallbackState::Completed(CompletionReason::CancelledByAdmin)
    );
}

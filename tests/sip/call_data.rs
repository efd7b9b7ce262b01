//! Call Data over SIP: a callback's `userData` (or a flow's Call Data block) reaches the agent's
//! phone as `X-Boomerang-*` headers and a `User-to-User` header on the agent leg's INVITE. The
//! agent's phone is a SIPp UAS that fails its scenario unless the headers carry the data.

use std::time::Duration;

use boomerang::callback::model::{CallbackState, CompletionReason};
use boomerang::callback::service::{CreateRequest, api_callback};

use crate::common::{self, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callbacks_user_data_reaches_the_agents_phone_as_sip_headers() {
    common::capture_logs();
    let trunk_port = free_port();
    let agent_port = free_port();
    let mut trunk = common::sipp_server("customer-answers.xml", trunk_port, 1);
    let mut phone = common::sipp_server("agent-checks-call-data.xml", agent_port, 1);
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        spec.sip.call_data_user_to_user = true;
        common::demo_trunk(spec).port = trunk_port;
    })
    .await;
    let mut callback = api_callback("Sales_VQ_CB", "+33612345678", None);
    callback.user_data = [
        ("order".to_string(), "A-17".to_string()),
        ("tier".to_string(), "gold".to_string()),
    ]
    .into();
    let rec = engine
        .callbacks
        .create(CreateRequest {
            callback,
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap();
    // Alice's phone registers: she becomes ready, the router gives her the callback.
    common::register_alice(engine.sip.udp[0], &format!("127.0.0.1:{agent_port}")).await;
    let mut reason = None;
    for _ in 0..300 {
        let r = engine.callbacks.get(rec.id).await.unwrap();
        if let CallbackState::Completed(why) = r.state {
            reason = Some((why, r));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some((why, r)) = reason else {
        phone.start_kill().ok();
        let out = phone.wait_with_output().await.unwrap();
        panic!(
            "the callback never completed; agent's SIPp: {}\n{}\nlogs: {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            common::log_lines(&["INVITE"])
        );
    };
    assert_eq!(why, CompletionReason::Agent, "{:?}", r.history);
    let out = tokio::time::timeout(Duration::from_secs(30), phone.wait_with_output())
        .await
        .expect("the agent's SIPp did not finish")
        .unwrap();
    assert!(
        out.status.success(),
        "the agent's phone did not see the call data: {}\n{}",
        common::sipp_report(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    common::sipp_succeeded(&mut trunk, "the customer's SIPp").await;
}

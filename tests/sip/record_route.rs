//! The engine behind a record-routing proxy (RFC 3261 §12.1.1, §12.2.1.1): its 200 copies the
//! INVITE's Record-Route headers in their order, and its own in-dialog requests (the BYE a flow
//! sends when it ends the call) follow the route set: sent to the first route's address, with
//! the Route headers, the caller's Contact as Request-URI (loose routing).

use std::time::Duration;

use crate::common::{self, free_port};

const PLAY_AND_HANG_UP: &str = "application: play-and-hang-up
type: default
self_service:
  - type: play_message
    prompts: [beep]
  - type: terminate_call
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_200_echoes_record_route_and_the_engines_bye_follows_the_route_set() {
    let flows = common::flows_plus(&[("play-and-hang-up.yaml", PLAY_AND_HANG_UP)]);
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        common::route_point_to(spec, "8999", "play-and-hang-up.yaml", flows.path());
    })
    .await;
    // The first proxy of the route set: a SIPp waiting for the engine's BYE.
    let proxy_port = free_port();
    let proxy = common::sipp_server("proxy-gets-bye.xml", proxy_port, 1);
    let proxy_addr = format!("127.0.0.1:{proxy_port}");
    let caller = common::sipp_client(
        &common::repo().join("tests/sipp/caller-record-route.xml"),
        engine.sip.udp[0],
        &["-s", "8999", "-set", "proxy", &proxy_addr],
    )
    .await;
    assert!(
        caller.status.success(),
        "the 200 did not carry both Record-Route headers in order: {}",
        common::sipp_report(&caller)
    );
    let out = tokio::time::timeout(Duration::from_secs(30), proxy.wait_with_output())
        .await
        .expect("the proxy's SIPp did not finish")
        .unwrap();
    assert!(
        out.status.success(),
        "the engine's BYE did not reach the first route with its Route headers: {}",
        common::sipp_report(&out)
    );
}

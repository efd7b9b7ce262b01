//! OPTIONS over real SIP (SIPp on loopback): the engine answers what an INVITE to the same
//! Request-URI would, so a monitor probing a number learns whether it can be called.

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_to_a_number_that_is_not_a_route_point_gets_404_and_the_engine_itself_200() {
    let (_dir, engine) = common::start_demo(|_| {}).await;
    let sip = engine.sip.udp[0];
    let scenario = |name: &str| common::repo().join("tests/sipp").join(name);
    let out = common::sipp_client(&scenario("options-not-found.xml"), sip, &[]).await;
    assert!(out.status.success(), "{}", common::sipp_report(&out));
    // A route point still answers 200 with Allow.
    let out = common::sipp_client(&scenario("options.xml"), sip, &[]).await;
    assert!(out.status.success(), "{}", common::sipp_report(&out));
}

//! In-dialog CSeq ordering over real SIP (RFC 3261 §12.2.2): a request inside a call whose CSeq
//! is lower than the caller's last one gets 500 and is not acted on.

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_dialog_bye_with_a_lower_cseq_gets_500_and_the_call_stays_up() {
    let (_dir, engine) = common::start_demo(|_| {}).await;
    let sip = engine.sip.udp[0];
    let scenario = common::repo().join("tests/sipp/cseq-out-of-order.xml");
    // The scenario expects 200 to INFO (CSeq 10), 500 to BYE (CSeq 5) and 200 to the BYE with
    // CSeq 11, which a call already ended by the first BYE would answer with 481.
    let out = common::sipp_client(&scenario, sip, &[]).await;
    assert!(out.status.success(), "{}", common::sipp_report(&out));
}

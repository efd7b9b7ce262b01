//! The calling-hours window over real SIP: a callback booked through the API for a French
//! number while it is 10:00 in Paris, on a queue that calls customers from 11:00 their time, is
//! not dialled — the customer's SIPp phone gets no INVITE though alice is ready — until the
//! engine's (manual) clock reaches the opening; then the phone is called.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use boomerang::callback::calling_hours::CallingHours;
use boomerang::callback::model::CallbackState;
use boomerang::clock::ManualClock;
use boomerang::engine::Engine;
use chrono::{TimeDelta, TimeZone, Utc};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_outside_the_customers_calling_hours_is_dialled_only_once_they_open() {
    common::capture_logs();
    let trunk_port = common::free_port();
    // The customer's phone: answers its one INVITE busy and ends.
    let mut trunk = common::sipp_server("customer-busy.xml", trunk_port, 1);
    let dir = tempfile::tempdir().unwrap();
    let config = common::demo_config(dir.path(), |spec| {
        common::demo_trunk(spec).port = trunk_port;
        spec.api.keys.push(common::api_key("t", "hours-key"));
        common::demo_queue(spec, "Sales_VQ_CB").calling_hours = Some(CallingHours {
            start: "11:00".into(),
            end: "20:00".into(),
            days: Vec::new(),
            time_zone: None,
        });
    });
    // Monday 09:00 UTC: 10:00 in Paris, an hour before the window opens.
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let engine = Engine::start(Arc::new(config), clock.shared())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let base = format!("http://{}", engine.http_addr);
    let (status, v) = common::callbacks_api(
        &base,
        "hours-key",
        "create",
        serde_json::json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let id: Uuid = v["data"]["id"].as_str().unwrap().parse().unwrap();
    // Alice's phone registers: she is ready, which would trigger the dial.
    common::register_alice(
        engine.sip.udp[0],
        &format!("127.0.0.1:{}", common::free_port()),
    )
    .await;
    let opens = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
    let mut deferred = None;
    for _ in 0..100 {
        let rec = engine.callbacks.get(id).await.unwrap();
        if rec.next_attempt_at.is_some() {
            deferred = Some(rec);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rec = deferred.expect("the dialler never looked at the callback");
    assert_eq!(rec.next_attempt_at, Some(opens), "deferred to the opening");
    assert_eq!(rec.state, CallbackState::Queued);
    // Two real seconds later the customer's phone still has had no INVITE.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        trunk.try_wait().unwrap().is_none(),
        "the customer was called outside their calling hours"
    );
    assert_eq!(engine.callbacks.get(id).await.unwrap().attempts(), 0);
    // The window opens: the phone is called (and answers busy: one attempt counted).
    clock.advance(TimeDelta::hours(1));
    // The hour's jump outlived alice's registration: her phone registers again.
    common::register_alice(
        engine.sip.udp[0],
        &format!("127.0.0.1:{}", common::free_port()),
    )
    .await;
    common::sipp_succeeded(&mut trunk, "the customer").await;
    let mut attempts = 0;
    for _ in 0..100 {
        attempts = engine.callbacks.get(id).await.unwrap().attempts();
        if attempts > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts, 1);
}

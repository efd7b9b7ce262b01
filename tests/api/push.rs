//! Push notifications over real HTTP on loopback: `pushTargets` on create, events raised by
//! callback changes delivered to a signed webhook (per target and per queue) and to FCM HTTP
//! v1 (a local fake that checks the JWT signature, the token and the message as FCM would),
//! retries with backoff on the engine's manual clock, the outbox in the administration,
//! `/notification/publish`, and the outbox metrics.

use crate::common;
use crate::common::push::{FakeFcm, Webhook};

use std::path::Path;

use boomerang::api::admin::auth::hash_password;
use boomerang::clock::ManualClock;
use boomerang::engine::Engine;
use chrono::TimeDelta;
use serde_json::{Value, json};

const KEY: &str = "push-key";
const PASSWORD: &str = "correct horse";

struct Running {
    engine: Engine,
    url: String,
    clock: ManualClock,
}

/// An engine on a manual clock with `push` (YAML lines of the `push:` section) and queues
/// Sales_VQ_CB (purge after 60 min, `sales_extra` appended to its line) and Service_VQ_CB.
async fn engine(dir: &Path, push: &str, sales_extra: &str) -> Running {
    let hash = hash_password(PASSWORD).unwrap();
    let yaml = format!(
        "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
api:
  keys: [{{name: app, key: {KEY}}}]
admin:
  users:
    - {{name: dev, password_hash: '{hash}', roles: [Developer]}}
    - {{name: mon, password_hash: '{hash}', roles: [Monitor]}}
queues:
  - {{name: Sales_VQ_CB, callback_purge_time_minutes: 60{sales_extra}}}
  - {{name: Service_VQ_CB}}
push:
{push}
"
    );
    let clock = ManualClock::new(common::monday_9am_utc());
    let (engine, url) = common::start_engine_from_file(dir, yaml, clock.shared()).await;
    Running { engine, url, clock }
}

impl Running {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/engagement/v3{path}", self.url))
            .header("x-api-key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn book(&self, targets: Value) -> String {
        let (s, v) = self
            .post(
                "/callbacks/create",
                json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678", "pushTargets": targets}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["data"]["id"].as_str().unwrap().to_string()
    }

    async fn admin(&self, user: &str, path: &str) -> (u16, Value) {
        let c = reqwest::Client::new();
        let login: Value = c
            .post(format!("{}/admin/login", self.url))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["data"]["accessToken"].as_str().unwrap();
        let r = c
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Moves the clock past the Sales queue's purge time (60 min).
    fn past_purge(&self) {
        self.clock.advance(TimeDelta::minutes(61));
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_targets_are_stored_returned_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let r = engine(dir.path(), "  max_attempts: 3", "").await;
    let targets = json!([
        {"channel": "FCM", "target": "token-abc"},
        {"channel": "WEBHOOK", "target": "http://127.0.0.1:9/hook"}
    ]);
    let id = r.book(targets.clone()).await;
    let (s, v) = r.post("/callbacks/retrieve", json!({"id": id})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["pushTargets"], targets, "{v}");
    // Bad targets are refused with the field named, and nothing is booked.
    for (bad, needle) in [
        (
            json!([{"channel": "SMS", "target": "x"}]),
            "pushTargets[0]: channel `SMS`",
        ),
        (
            json!([{"channel": "WEBHOOK", "target": "ftp://x/y"}]),
            "pushTargets[0]: a WEBHOOK target",
        ),
        (
            json!([{"channel": "FCM", "target": ""}]),
            "pushTargets[0]: target",
        ),
        (json!([{"channel": "FCM"}]), "target"),
        (
            json!(
                (0..11)
                    .map(|i| json!({"channel": "FCM", "target": format!("t{i}")}))
                    .collect::<Vec<_>>()
            ),
            "at most 10",
        ),
    ] {
        let (s, v) = r
            .post(
                "/callbacks/create",
                json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678", "pushTargets": bad}),
            )
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(v.to_string().contains(needle), "{needle}: {v}");
    }
    assert_eq!(r.engine.callbacks.active().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_is_pushed_to_a_signed_webhook_retried_with_backoff_and_listed_in_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    // The app's webhook fails twice; the queue's own webhook answers at once.
    let app_hook = Webhook::start(vec![503, 503]).await;
    let queue_hook = Webhook::start(vec![]).await;
    let r = engine(
        dir.path(),
        "  webhook_secret: global-secret\n  initial_backoff_seconds: 30\n  max_backoff_seconds: 600",
        &format!(
            ", push_webhook_url: '{}', push_webhook_secret: queue-secret",
            queue_hook.url
        ),
    )
    .await;
    let id = r
        .book(json!([{"channel": "WEBHOOK", "target": app_hook.url}]))
        .await;
    assert!(app_hook.seen().is_empty(), "nothing to tell yet");
    r.past_purge();

    // The queue's webhook: one delivery, signed with the queue's secret.
    let q = queue_hook.wait_for(1).await;
    assert_eq!(q[0].body["event"], "CALLBACK_PURGED");
    assert_eq!(q[0].body["callbackId"], id.as_str());
    assert_eq!(q[0].body["serviceName"], "Sales_VQ_CB");
    assert_eq!(q[0].body["data"]["callbackState"], "COMPLETED");
    assert_eq!(q[0].body["data"]["callbackReason"], "PURGED");
    assert_eq!(q[0].event_id, q[0].body["eventId"].as_str().unwrap());
    assert_eq!(
        q[0].signature,
        boomerang::push::webhook::signature(b"queue-secret", &q[0].raw)
    );

    // The app's webhook: refused once (503); the retry waits its backoff on the clock.
    let a = app_hook.wait_for(1).await;
    assert_eq!(a[0].answered, 503);
    assert_eq!(
        a[0].signature,
        boomerang::push::webhook::signature(b"global-secret", &a[0].raw)
    );
    let (s, v) = r.admin("dev", "/admin/push/outbox?state=pending").await;
    assert_eq!(s, 200, "{v}");
    let pending = v["data"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{v}");
    assert_eq!(pending[0]["attempts"], 1);
    assert!(
        pending[0]["lastError"].as_str().unwrap().contains("503"),
        "{v}"
    );
    assert!(
        r.metrics()
            .await
            .contains("boomerang_push_outbox_pending 1")
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app_hook.seen().len(), 1, "not retried before its backoff");
    r.clock.advance(TimeDelta::seconds(30));
    app_hook.wait_for(2).await;
    r.clock.advance(TimeDelta::seconds(60));
    let a = app_hook.wait_for(3).await;
    assert_eq!(
        a.iter().map(|x| x.answered).collect::<Vec<_>>(),
        vec![503, 503, 200]
    );
    // The same event id on every attempt: the receiver can drop repeats.
    assert!(a.iter().all(|x| x.event_id == a[0].event_id));
    assert_ne!(a[0].event_id, q[0].event_id, "one id per delivery");
    // Up to 10 s (was 2 s) for the outbox to record the delivery.
    for _ in 0..500 {
        let (_, v) = r.admin("dev", "/admin/push/outbox?state=delivered").await;
        if v["data"].as_array().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, v) = r.admin("dev", "/admin/push/outbox?state=delivered").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = r.admin("dev", "/admin/push/outbox?state=pending").await;
    assert_eq!(v["data"], json!([]));
    let m = r.metrics().await;
    assert!(m.contains("boomerang_push_outbox_pending 0"), "{m}");
    assert!(
        m.contains("boomerang_push_deliveries_total{result=\"delivered\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("boomerang_push_deliveries_total{result=\"retry\"} 2"),
        "{m}"
    );
    // The outbox is for developers: a monitor may not read it; a bad state is named.
    let (s, _) = r.admin("mon", "/admin/push/outbox").await;
    assert_eq!(s, 403);
    let (s, v) = r.admin("dev", "/admin/push/outbox?state=lost").await;
    assert_eq!(s, 400);
    assert!(v.to_string().contains("state"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_pushes_use_a_signed_jwt_a_cached_token_and_the_v1_message_shape() {
    let dir = tempfile::tempdir().unwrap();
    let fcm = FakeFcm::start(dir.path()).await;
    let r = engine(
        dir.path(),
        &format!(
            "  fcm: {{service_account_file: '{}', base_url: '{}'}}",
            fcm.service_account.display(),
            fcm.base_url
        ),
        "",
    )
    .await;
    let id = r
        .book(json!([{"channel": "FCM", "target": "device-token-1"}]))
        .await;
    r.past_purge();
    let m = fcm.wait_for(1).await;
    let msg = &m[0]["message"];
    assert_eq!(msg["token"], "device-token-1");
    assert_eq!(msg["data"]["event"], "CALLBACK_PURGED");
    assert_eq!(msg["data"]["callbackId"], id.as_str());
    assert_eq!(msg["data"]["serviceName"], "Sales_VQ_CB");
    assert_eq!(msg["data"]["callbackReason"], "PURGED");
    assert!(msg["data"]["eventId"].as_str().is_some());

    // GES's push test goes through the same account; the token is reused (cached).
    let (s, v) = r
        .post(
            "/notification/publish",
            json!({"channel": "FCM", "target": "device-token-2",
                   "event": {"title": "Hello", "body": "Your callback"}, "validate_only": false}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["name"], "projects/boomerang-test/messages/2");
    let m = fcm.wait_for(2).await;
    assert_eq!(m[1]["message"]["notification"]["title"], "Hello");
    assert_eq!(m[1]["message"]["token"], "device-token-2");
    assert_eq!(fcm.token_requests(), 1, "the bearer token is cached");
    // An hour later the token has expired: a new one is asked for.
    r.clock.advance(TimeDelta::hours(1));
    let (s, _) = r
        .post(
            "/notification/publish",
            json!({"channel": "FCM", "target": "t3", "event": {"title": "x"}}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(fcm.token_requests(), 2);
    // Bad requests are named.
    let (s, v) = r
        .post(
            "/notification/publish",
            json!({"channel": "APNS", "target": "t", "event": {}}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v.to_string().contains("channel"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fcm_configured_publish_and_fcm_targets_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let r = engine(dir.path(), "  max_attempts: 3", "").await;
    let (s, v) = r
        .post(
            "/notification/publish",
            json!({"channel": "FCM", "target": "t", "event": {"title": "x"}}),
        )
        .await;
    assert_eq!(s, 500, "{v}");
    assert!(v.to_string().contains("FCM is not configured"), "{v}");
    r.book(json!([{"channel": "FCM", "target": "t"}])).await;
    r.past_purge();
    for _ in 0..200 {
        let (_, v) = r.admin("dev", "/admin/push/outbox?state=failed").await;
        if let Some(e) = v["data"].as_array().and_then(|a| a.first()) {
            assert!(
                e["lastError"]
                    .as_str()
                    .unwrap()
                    .contains("FCM is not configured")
            );
            assert_eq!(e["attempts"], 1, "a permanent error is not retried");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the FCM event was never marked failed");
}

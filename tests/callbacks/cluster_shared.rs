//! What several nodes on one PostgreSQL must see alike (issue #21), over HTTP against two
//! `boomerang serve` processes: a scheduled slot's capacity holds across nodes booking it at
//! once; callbacks booked through one node are counted by the other's queue status and queues
//! page; a rule created through one node's administration is in force on the other within
//! seconds, without a restart.
//!
//! Needs PostgreSQL (`source .ci/pg-cluster.sh; pg_start`, or `./test.sh`); skipped otherwise.

use crate::common;
use crate::common::cluster::rule_for_queue;

use std::time::Duration;

use super::cluster_nodes::{EngineNode, KEY, admin_token, start_node_with};

/// Two nodes on a private database; `None` (test skipped) without PostgreSQL.
async fn two_nodes(
    dir: &std::path::Path,
    tweak: fn(&mut boomerang::config::ConfigSpec),
) -> Option<(common::pg::PgServer, EngineNode, EngineNode)> {
    let pg = tokio::task::spawn_blocking(common::pg::PgServer::start)
        .await
        .unwrap()?;
    let trunk = common::free_port();
    let a = start_node_with(dir, "a", "", &pg.url(), trunk, true, tweak).await;
    let b = start_node_with(dir, "b", "", &pg.url(), trunk, true, tweak).await;
    Some((pg, a, b))
}

/// Books through `url`; the HTTP status.
async fn create(url: &str, body: serde_json::Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/engagement/v3/callbacks/create"))
        .header("x-api-key", KEY)
        .json(&body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Tomorrow at 12:00 UTC: the start of a 15-minute slot of an always-open queue.
fn tomorrow_noon() -> String {
    let now = boomerang::clock::SystemClock::shared().now();
    let day = now.date_naive() + chrono::TimeDelta::days(1);
    format!("{day}T12:00:00Z")
}

/// Polls `check` every 100 ms for up to 10 s; true once it holds.
async fn within_seconds<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = boomerang::clock::monotonic_now();
    while start.elapsed() < Duration::from_secs(10) {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

const CAPACITY: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_booking_one_slot_at_once_never_overbook_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some((pg, a, b)) = two_nodes(dir.path(), |spec| {
        common::demo_queue(spec, "Sales_VQ_CB").slot_capacity = CAPACITY as i64;
    })
    .await
    else {
        return;
    };
    let at = tomorrow_noon();
    // 2N bookings of the slot at once, half through each node.
    let mut tasks = Vec::new();
    for i in 0..2 * CAPACITY {
        let url = if i % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let body = serde_json::json!({
            "serviceName": "Sales_VQ_CB",
            "phoneNumber": format!("+3367200{i:04}"),
            "desiredTime": at,
            "alwaysCheckCapacity": true,
        });
        tasks.push(tokio::spawn(async move { create(&url, body).await }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    let full = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (accepted, full),
        (CAPACITY, CAPACITY),
        "statuses: {statuses:?}"
    );
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM callbacks WHERE queue = 'Sales_VQ_CB'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, CAPACITY as i64, "refused bookings were stored");
}

/// `GET path` on `url` with the administrator's token; the JSON answer.
async fn admin_get(url: &str, token: &str, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callbacks_booked_on_one_node_are_counted_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_pg, a, b)) = two_nodes(dir.path(), |_| {}).await else {
        return;
    };
    // Support_VQ_CB: no agent of it is registered anywhere, so its callbacks stay QUEUED.
    for i in 0..3 {
        let body = serde_json::json!({"serviceName": "Support_VQ_CB", "phoneNumber": format!("+3367300{i:04}")});
        assert_eq!(create(&a.url, body).await, 200);
    }
    for i in 0..2 {
        let body = serde_json::json!({"serviceName": "Sales_VQ_CB", "phoneNumber": format!("+3367400{i:04}"), "desiredTime": tomorrow_noon()});
        assert_eq!(create(&a.url, body).await, 200);
    }
    let token = admin_token(&b.url).await;
    let last = std::sync::Arc::new(std::sync::Mutex::new(serde_json::Value::Null));
    let counted = within_seconds(|| {
        let (url, token, last) = (b.url.clone(), token.clone(), last.clone());
        async move {
            let v = admin_get(&url, &token, "/admin/queues").await;
            let by = |q: &str| {
                v["data"]
                    .as_array()
                    .and_then(|qs| qs.iter().find(|x| x["name"] == q))
                    .map(|x| x["callbacksByState"].clone())
                    .unwrap_or_default()
            };
            let ok = by("Support_VQ_CB")["QUEUED"] == 3 && by("Sales_VQ_CB")["SCHEDULED"] == 2;
            *last.lock().unwrap() = v;
            ok
        }
    })
    .await;
    let last = last.lock().unwrap().clone();
    assert!(counted, "node b's queues page: {last}");
    let status = admin_get(
        &b.url,
        &token,
        "/engagement/v3/callbacks/queue-status/Support_VQ_CB",
    )
    .await;
    assert_eq!(status["data"]["waiting"], 3, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_number_rule_created_on_one_node_is_in_force_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_pg, a, b)) = two_nodes(dir.path(), |_| {}).await else {
        return;
    };
    let book_uk = |url: String, i: u32| async move {
        let body = serde_json::json!({"serviceName": "Support_VQ_CB", "phoneNumber": format!("+4420794{i:05}")});
        create(&url, body).await
    };
    assert_eq!(book_uk(b.url.clone(), 0).await, 200, "no rule yet");
    let token = admin_token(&a.url).await;
    let rule = serde_json::json!({"name": "fr-only", "countries": ["FR"], "blockedPatterns": []});
    let assignment = serde_json::json!({"numberRule": "fr-only"});
    rule_for_queue(&a.url, &token, "number", rule, "Support_VQ_CB", assignment).await;
    // Node b refuses a UK number within seconds, with no restart.
    let mut i = 0;
    let refused = within_seconds(|| {
        i += 1;
        let url = b.url.clone();
        async move { book_uk(url, i).await == 400 }
    })
    .await;
    assert!(refused, "node b still books UK numbers on Support_VQ_CB");
    // And b's administration lists the rule with its queue.
    let token_b = admin_token(&b.url).await;
    let v = admin_get(&b.url, &token_b, "/admin/rules/number/fr-only").await;
    assert_eq!(
        v["data"]["queues"],
        serde_json::json!(["Support_VQ_CB"]),
        "{v}"
    );
}

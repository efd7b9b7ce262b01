//! The Callback tab's first page with 100,000 callbacks in the store: the UI's HTML page
//! (`GET /ui/callbacks`, 250 rows rendered by minijinja) against the JSON list endpoint
//! (`GET /admin/callbacks`, the same 250 rows as JSON) in the same run, both over loopback HTTP
//! to a running engine (SQLite store). Target: the page in < 200 ms.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use boomerang::api::admin::auth::{Role, hash_password};
use boomerang::callback::model::CallbackRecord;
use boomerang::callback::model::{CallbackState, CompletionReason};
use boomerang::callback::service::api_callback;
use boomerang::config::{AdminUserSpec, Config};
use boomerang::store::{SqliteStore, Store};
use chrono::TimeDelta;
use criterion::{Criterion, criterion_group, criterion_main};

const RECORDS: usize = 100_000;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/boomerang.yaml"))
        .unwrap()
        .replace("sip_udp: [\"0.0.0.0:5060\"]", "sip_udp: []")
        .replace("sip_tcp: [\"0.0.0.0:5060\"]", "sip_tcp: []")
        .replace("http: \"0.0.0.0:8080\"", "http: \"127.0.0.1:0\"")
        .replace(
            "flows_dir: ivr-flows",
            concat!("flows_dir: ", env!("CARGO_MANIFEST_DIR"), "/ivr-flows"),
        )
        .replace(
            "prompts_dir: prompts",
            concat!("prompts_dir: ", env!("CARGO_MANIFEST_DIR"), "/prompts"),
        );
    let mut config = Config::from_str_in(&text, dir.path()).unwrap();
    config.spec.api.rate_limit_per_second = 1_000_000;
    config.spec.admin.users = vec![AdminUserSpec {
        name: "root".into(),
        password_hash: hash_password("correct horse").unwrap(),
        roles: vec![Role::Administrator],
        queues: None,
    }];
    let (engine, base, token, cookie) = rt.block_on(async {
        // 100,000 callbacks over a year of desired times (completed, as most of a long-running
        // store is), written to the store before the engine opens it.
        {
            let store = SqliteStore::open(&config.data_dir()).unwrap();
            let now = boomerang::clock::SystemClock::shared().now();
            let queues = ["Sales_VQ_CB", "Support_VQ_CB"];
            let mut batch = Vec::new();
            for i in 0..RECORDS {
                let mut r = CallbackRecord::create(
                    api_callback(queues[i % 2], &format!("+336{i:08}"), None),
                    now,
                )
                .unwrap();
                r.desired_time = now - TimeDelta::minutes(5 * i as i64);
                r.state = CallbackState::Completed(CompletionReason::Agent);
                batch.push(r);
                if batch.len() == 1000 {
                    store
                        .save_callbacks(std::mem::take(&mut batch))
                        .await
                        .unwrap();
                }
            }
            store.save_callbacks(batch).await.unwrap();
        }
        let e = boomerang::engine::Engine::start(
            Arc::new(config),
            boomerang::clock::SystemClock::shared(),
        )
        .await
        .unwrap();
        let base = format!("http://{}", e.http_addr);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let v: serde_json::Value = http
            .post(format!("{base}/admin/login"))
            .json(&serde_json::json!({"username": "root", "password": "correct horse"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = v["data"]["accessToken"].as_str().unwrap().to_string();
        // The UI session is the administration's: its cookie holds the same token.
        let cookie = format!("boomerang_ui={token}");
        (e, base, token, cookie)
    });
    let http = reqwest::Client::new();
    let get = |url: String, auth: (&'static str, String)| {
        let http = http.clone();
        async move {
            let r = http.get(url).header(auth.0, auth.1).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap().len()
        }
    };
    // Both answer 250 rows.
    rt.block_on(async {
        let page = get(format!("{base}/ui/callbacks"), ("cookie", cookie.clone())).await;
        let json = get(
            format!("{base}/admin/callbacks"),
            ("authorization", format!("Bearer {token}")),
        )
        .await;
        eprintln!("first page: HTML {page} bytes, JSON {json} bytes");
    });
    let mut g = c.benchmark_group("callback_tab_first_page_100k");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    g.bench_function("ui_html_page", |b| {
        b.iter(|| {
            rt.block_on(get(
                format!("{base}/ui/callbacks"),
                ("cookie", cookie.clone()),
            ))
        })
    });
    g.bench_function("baseline_admin_json_list", |b| {
        b.iter(|| {
            rt.block_on(get(
                format!("{base}/admin/callbacks"),
                ("authorization", format!("Bearer {token}")),
            ))
        })
    });
    g.bench_function("ui_html_page_filtered_state_queue", |b| {
        b.iter(|| {
            rt.block_on(get(
                format!("{base}/ui/callbacks?state=COMPLETED&queue=Support_VQ_CB"),
                ("cookie", cookie.clone()),
            ))
        })
    });
    g.finish();
    drop(engine);
}

criterion_group!(benches, bench);
criterion_main!(benches);

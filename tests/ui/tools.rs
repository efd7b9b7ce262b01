//! Tools in the browser: the Callback Queues page follows the figures without a reload (short
//! polling), agents and their states (changed by an Administrator only), the audit log; and
//! screenshots of the main pages (into `$BOOMERANG_UI_SCREENSHOTS` when set, e.g. `docs`).

use std::time::Duration;

use boomerang::routing::StateKind;
use chrono::TimeDelta;
use fantoccini::Locator;

use crate::browser::Browser;
use crate::common;
use crate::{PASSWORD, users};

/// The text of a cell of the queue `q`'s row in the queues table.
async fn cell(b: &Browser, q: &str, class: &str) -> String {
    match b
        .c
        .find(Locator::Css(&format!("tr[data-queue='{q}'] td.{class}")))
        .await
    {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queues_page_follows_new_callbacks_without_a_reload() {
    let (_dir, e) = common::start_demo(|spec| spec.admin.users = users()).await;
    let url = format!("http://{}", e.http_addr);
    let b = Browser::start(&url).await;
    b.login("sup", PASSWORD).await;
    b.wait_text("Log out").await;
    b.go("/ui/queues").await;
    assert_eq!(cell(&b, "Sales_VQ_CB", "queued").await, "0");
    assert!(b.body().await.contains("Today's hours"));
    // Marks this page load: a reload would lose it.
    b.c.execute("window.marker = 42;", vec![]).await.unwrap();
    common::book_callback(&e, "Sales_VQ_CB", "+33612345678").await;
    common::book_callback(&e, "Sales_VQ_CB", "+33612345679").await;
    // The table polls every 5 s: give a loaded machine several polls (30 s).
    let mut seen = String::new();
    for _ in 0..300 {
        seen = cell(&b, "Sales_VQ_CB", "queued").await;
        if seen == "2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "2", "the poll brought the new figure");
    let marker = b.c.execute("return window.marker;", vec![]).await.unwrap();
    assert_eq!(
        marker,
        serde_json::json!(42),
        "updated in place, not reloaded"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_their_states_changed_by_an_administrator_only() {
    let (_dir, e) = common::start_demo(|spec| spec.admin.users = users()).await;
    let url = format!("http://{}", e.http_addr);
    let b = Browser::start(&url).await;
    b.login("dev", PASSWORD).await;
    b.wait_text("Log out").await;
    b.go("/ui/agents").await;
    b.wait_text("alice").await;
    assert!(
        !b.has("st-alice").await,
        "a developer sees no state buttons"
    );
    b.click("logout").await;
    // The next login opens the form while the logout may still be loading its own form, whose
    // pre-session cookie could then replace the one the filled form's token belongs to.
    b.wait_text("You are logged out.").await;

    b.login("root", PASSWORD).await;
    b.wait_text("Log out").await;
    b.go("/ui/agents").await;
    b.select("st-alice", "not ready").await;
    b.c.find(Locator::Css("tr[data-agent='alice'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_text("not_ready").await;
    let idx = e.router.agents().index_of("alice").unwrap();
    assert_eq!(e.router.agents().get(idx).state(), StateKind::NotReady);
    // Ready needs a registered phone (SIP is on): the page says so.
    b.select("st-alice", "ready").await;
    b.c.find(Locator::Css("tr[data-agent='alice'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The click returns before the answer's page is there: wait for its message.
    assert!(
        b.wait_id_text("error", "no registered phone")
            .await
            .contains("no registered phone")
    );
    // The audit log shows the change.
    b.go("/ui/audit").await;
    b.wait_text("agent.state").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_the_main_pages() {
    let (_dir, e) = common::start_demo(|spec| spec.admin.users = users()).await;
    let url = format!("http://{}", e.http_addr);
    let out = match std::env::var("BOOMERANG_UI_SCREENSHOTS") {
        Ok(d) => common::repo().join(d),
        Err(_) => std::env::temp_dir().join(format!("boomerang-ui-{}", std::process::id())),
    };
    std::fs::create_dir_all(&out).unwrap();
    for (i, phone) in ["+33612345678", "+33698765432", "+442071838750"]
        .iter()
        .enumerate()
    {
        let rec = common::book_callback(&e, "Sales_VQ_CB", phone).await;
        if i == 1 {
            e.callbacks.cancel(rec.id, "sup", true).await.unwrap();
        }
    }
    let tomorrow =
        (boomerang::clock::SystemClock::shared().now() + TimeDelta::days(1)).date_naive();
    let slot = e
        .callbacks
        .availability("Sales_VQ_CB", tomorrow, tomorrow)
        .unwrap()[40]
        .start;
    let sched = e
        .callbacks
        .create(boomerang::callback::service::CreateRequest {
            callback: boomerang::callback::service::api_callback(
                "Sales_VQ_CB",
                "+33611112222",
                Some(slot),
            ),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap();
    let b = Browser::start_sized(&url, 1280, 800).await;
    b.go("/ui/login").await;
    b.screenshot(&out.join("ui-login.png")).await;
    b.login("root", PASSWORD).await;
    b.wait_text("Log out").await;
    b.screenshot(&out.join("ui-callbacks.png")).await;
    b.go(&format!(
        "/ui/callbacks/{}/reschedule?date={tomorrow}",
        sched.id
    ))
    .await;
    b.screenshot(&out.join("ui-reschedule.png")).await;
    b.go("/ui/queues").await;
    b.screenshot(&out.join("ui-queues.png")).await;
    b.go("/ui/agents").await;
    b.screenshot(&out.join("ui-agents.png")).await;
    // The pages that edit: a capacity rule's weekly grid, Call-In, Users, Developer.
    b.go("/ui/rules/capacity/new").await;
    b.fill("name", "Weekdays").await;
    for day in ["mon", "tue", "wed", "thu", "fri"] {
        for hour in ["09", "10", "11", "14", "15", "16"] {
            b.fill(&format!("c_{day}_{hour}:00"), "4").await;
        }
    }
    b.screenshot(&out.join("ui-capacity-grid.png")).await;
    b.go("/ui/callin").await;
    b.screenshot(&out.join("ui-callin.png")).await;
    b.go("/ui/users").await;
    b.screenshot(&out.join("ui-users.png")).await;
    b.go("/ui/developer").await;
    b.screenshot(&out.join("ui-developer.png")).await;
    b.close().await;
    // A tablet: the same tab, narrower.
    let t = Browser::start_sized(&url, 820, 1000).await;
    t.login("sup", PASSWORD).await;
    t.wait_text("Log out").await;
    t.screenshot(&out.join("ui-callbacks-tablet.png")).await;
    // Nothing wider than the window but the table's own scroller.
    let overflow =
        t.c.execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, serde_json::json!(true), "the page fits a tablet");
    t.close().await;
    for f in [
        "ui-login.png",
        "ui-callbacks.png",
        "ui-queues.png",
        "ui-callbacks-tablet.png",
        "ui-capacity-grid.png",
        "ui-users.png",
    ] {
        assert!(std::fs::metadata(out.join(f)).unwrap().len() > 1000, "{f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_with_test_a_number_call_in_groups_developer_errors_and_users() {
    let (_dir, e) = common::start_demo(|spec| spec.admin.users = users()).await;
    let url = format!("http://{}", e.http_addr);
    // A number rule made through the JSON API shows in the UI.
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{url}/admin/login"))
        .json(&serde_json::json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["accessToken"].as_str().unwrap().to_string();
    let made = http
        .post(format!("{url}/admin/rules/number"))
        .bearer_auth(&token)
        .json(
            &serde_json::json!({"name": "eu", "countries": ["FR"], "blockedPatterns": ["^33899"]}),
        )
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.text().await.unwrap());
    // An API error to find by its correlation id.
    let bad = http
        .get(format!("{url}/admin/callbacks?state=NOPE"))
        .bearer_auth(&token)
        .header("x-correlation-id", "ui-test-corr-1")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let b = Browser::start(&url).await;
    b.login("mon", PASSWORD).await;
    b.wait_text("Log out").await;
    b.go("/ui/rules").await;
    b.wait_text("Number validation rules").await;
    b.fill("number", "+33 6 12 34 56 78").await;
    b.click("test").await;
    assert_eq!(
        b.wait_id_text("verdict", "+33612345678").await,
        "Valid: +33612345678 passes rule “eu”."
    );
    b.fill("number", "+44 20 7183 8750").await;
    b.click("test").await;
    assert!(
        b.wait_id_text("verdict", "Refused")
            .await
            .starts_with("Refused by rule “eu”")
    );
    b.go("/ui/callin").await;
    b.wait_text("DemoApp").await;
    b.go("/ui/developer").await;
    assert!(
        b.text("error").await.unwrap().starts_with("Not allowed:"),
        "a monitor"
    );
    b.click("logout").await;
    // The next login opens the form while the logout may still be loading its own form, whose
    // pre-session cookie could then replace the one the filled form's token belongs to.
    b.wait_text("You are logged out.").await;

    b.login("root", PASSWORD).await;
    b.wait_text("Log out").await;
    b.go("/ui/developer?correlation=ui-test-corr-1").await;
    let rows =
        b.c.find_all(Locator::Css("#errors tbody tr"))
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].text().await.unwrap().contains("NOPE"));
    b.go("/ui/users").await;
    let users = b.text("users").await.unwrap();
    assert!(
        users.contains("sales") && users.contains("Sales_VQ_CB"),
        "{users}"
    );
    b.close().await;
}

//! The Callback tab in the browser: a callback booked through SIP (SIPp) appears; create,
//! cancel, reschedule on a slot and bulk cancel through the UI, checked in the engine's store;
//! filters, search, pages of 250 and the line-of-business restriction.

use std::time::Duration;

use boomerang::callback::model::{CallbackState, CompletionReason};
use boomerang::callback::service::{CreateRequest, api_callback};
use boomerang::engine::Engine;
use chrono::{TimeDelta, Utc};
use fantoccini::Locator;

use crate::browser::Browser;
use crate::common;
use crate::{PASSWORD, users};

/// The demo engine (SIP on, system clock) with the test users; its store directory and URL.
async fn engine() -> (tempfile::TempDir, Engine, String) {
    let (dir, e) = common::start_demo(|spec| spec.admin.users = users()).await;
    let url = format!("http://{}", e.http_addr);
    (dir, e, url)
}

/// A SCHEDULED callback in Sales_VQ_CB at `at`.
async fn scheduled(e: &Engine, phone: &str, at: chrono::DateTime<Utc>) -> uuid::Uuid {
    e.callbacks
        .create(CreateRequest {
            callback: api_callback("Sales_VQ_CB", phone, Some(at)),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap()
        .id
}

/// The rows' `data-id`s of the callbacks table.
async fn row_ids(b: &Browser) -> Vec<String> {
    let mut out = Vec::new();
    for r in
        b.c.find_all(Locator::Css("#callbacks tbody tr"))
            .await
            .unwrap()
    {
        out.push(r.attr("data-id").await.unwrap().unwrap_or_default());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_booked_through_sip_appears_and_is_cancelled_from_the_ui() {
    let (_dir, e, url) = engine().await;
    let b = Browser::start(&url).await;
    b.login("sup", PASSWORD).await;
    b.wait_text("Log out").await;
    assert!(row_ids(&b).await.is_empty());

    // A caller dials the sales line and books a callback with RFC 4733 keys.
    let out = common::sipp_client(
        &common::repo().join("tests/sipp/book-callback.xml"),
        e.sip.udp[0],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", common::sipp_report(&out));
    let booked = e.callbacks.active();
    assert_eq!(booked.len(), 1);
    let id = booked[0].id.to_string();

    b.go("/ui/callbacks").await;
    assert_eq!(row_ids(&b).await, vec![id.clone()]);
    let body = b.body().await;
    assert!(
        body.contains("+33612345678") && body.contains("Sales_VQ_CB") && body.contains("QUEUED"),
        "{body}"
    );

    // Its detail, with the history the IVR wrote; then cancel it.
    b.c.find(Locator::Css(&format!("tr[data-id='{id}'] a")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_text("History").await;
    assert_eq!(b.text("cb-state").await.as_deref(), Some("QUEUED"));
    assert!(
        !b.c.find_all(Locator::Css("#history tbody tr"))
            .await
            .unwrap()
            .is_empty()
    );
    b.click("cancel").await;
    b.wait_text("Callback cancelled.").await;
    // The detail's metrics say who cancelled it.
    assert_eq!(b.text("m-cancelled-by").await.as_deref(), Some("sup"));
    assert_eq!(
        b.text("cb-state").await.as_deref(),
        Some("COMPLETED (CANCELLED_BY_ADMIN)")
    );
    let rec = e.callbacks.get(booked[0].id).await.unwrap();
    assert_eq!(
        rec.state,
        CallbackState::Completed(CompletionReason::CancelledByAdmin)
    );
    assert_eq!(rec.updated_by, "sup");
    // Filtering on COMPLETED finds it; on QUEUED it is gone (htmx swaps the table).
    b.go("/ui/callbacks").await;
    b.click("state-QUEUED").await;
    b.wait_text("0 callbacks on page 1").await;
    b.click("state-QUEUED").await;
    b.click("state-COMPLETED").await;
    // The filter is in the address.
    b.wait_path(|p| p.contains("state=COMPLETED") && !p.contains("state=QUEUED"))
        .await;
    b.wait_text("1 callback on page 1").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_then_reschedule_on_a_slot_then_bulk_cancel_with_confirmation() {
    let (_dir, e, url) = engine().await;
    let b = Browser::start(&url).await;
    b.login("sup", PASSWORD).await;
    b.wait_text("Log out").await;

    // Create an immediate callback through the form.
    b.click("create").await;
    b.wait_text("Create callback").await;
    b.select("queue", "Sales_VQ_CB").await;
    b.fill("phone", "+33698765432").await;
    b.click("create-submit").await;
    b.wait_text("Callback created.").await;
    let id: uuid::Uuid = b.text("cb-id").await.unwrap().parse().unwrap();
    let rec = e.callbacks.get(id).await.unwrap();
    assert_eq!(
        (rec.phone.as_str(), rec.created_by.as_str()),
        ("+33698765432", "sup")
    );
    assert_eq!(rec.state, CallbackState::Queued);

    // A scheduled callback tomorrow, moved to another free slot the page offers.
    let tomorrow =
        (boomerang::clock::SystemClock::shared().now() + TimeDelta::days(1)).date_naive();
    let slots = e
        .callbacks
        .availability("Sales_VQ_CB", tomorrow, tomorrow)
        .unwrap();
    let first = slots[4].start;
    let sched = scheduled(&e, "+33611111111", first).await;
    b.go(&format!("/ui/callbacks/{sched}")).await;
    b.click("reschedule-link").await;
    b.wait_text("Change desired time").await;
    b.set_value("date", &tomorrow.to_string()).await;
    b.click("show-slots").await;
    // The page before the click shows the same label: wait for the address the form asked for,
    // or the slot select below may be the old page's, stale once the new page replaces it.
    b.wait_path(|p| p.contains("date=")).await;
    b.wait_text("Available time slot").await;
    let select = b.c.find(Locator::Id("slot")).await.unwrap();
    select.select_by_index(8).await.unwrap();
    let chosen = select.prop("value").await.unwrap().unwrap();
    b.click("reschedule").await;
    b.wait_text("Callback rescheduled").await;
    let new_id: uuid::Uuid = b.text("cb-id").await.unwrap().parse().unwrap();
    let old = e.callbacks.get(sched).await.unwrap();
    assert_eq!(
        old.state,
        CallbackState::Completed(CompletionReason::Rescheduled)
    );
    let new = e.callbacks.get(new_id).await.unwrap();
    assert_eq!(new.state, CallbackState::Scheduled);
    assert_eq!(
        new.desired_time,
        chrono::DateTime::parse_from_rfc3339(&chosen).unwrap()
    );
    assert_ne!(new.desired_time, first);

    // Bulk cancel of tomorrow: two more; the confirmation lists three, one is unticked.
    let keep = scheduled(&e, "+33622222222", first).await;
    let gone = scheduled(&e, "+33633333333", first).await;
    b.go("/ui/callbacks").await;
    b.click("bulk").await;
    // The list page has #from and #to filters too: set them on the bulk form, not on the list
    // page the link is leaving.
    b.wait_id("preview").await;
    b.select("queue", "Sales_VQ_CB").await;
    b.set_value("from", &format!("{tomorrow}T00:00")).await;
    b.set_value("to", &format!("{}T00:00", tomorrow + TimeDelta::days(1)))
        .await;
    b.click("preview").await;
    b.wait_text("Confirm: 3 callbacks of Sales_VQ_CB to cancel")
        .await;
    b.click(&format!("c-{keep}")).await;
    b.click("confirm").await;
    b.wait_text("Summary").await;
    assert_eq!(
        b.text("summary-counts").await.as_deref(),
        Some("2 cancelled, 0 skipped.")
    );
    assert!(
        b.has("summary-csv").await,
        "a supervisor may export the summary"
    );
    for (id, cancelled) in [(keep, false), (gone, true), (new_id, true)] {
        let r = e.callbacks.get(id).await.unwrap();
        assert_eq!(r.state.is_completed(), cancelled, "{id}: {:?}", r.state);
    }
    // The immediate callback outside the range was left alone.
    assert_eq!(
        e.callbacks.get(id).await.unwrap().state,
        CallbackState::Queued
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_250_search_and_the_line_of_business() {
    let (_dir, e, url) = engine().await;
    for i in 0..255 {
        common::book_callback(&e, "Sales_VQ_CB", &format!("+336{:08}", i)).await;
    }
    common::book_callback(&e, "Support_VQ_CB", "+33799999999").await;
    let b = Browser::start(&url).await;
    b.login("sup", PASSWORD).await;
    b.wait_text("Log out").await;
    assert_eq!(
        b.text("count").await.as_deref(),
        Some("250 callbacks on page 1")
    );
    assert_eq!(row_ids(&b).await.len(), 250);
    b.click("next").await;
    b.wait_text("6 callbacks on page 2").await;
    assert!(!b.has("next").await);

    // Search by number (formatted as a person types it), then by id.
    b.go("/ui/callbacks").await;
    b.fill("q", "+33 6 00 00 01 23").await;
    b.click("search").await;
    b.wait_text("1 callback on page 1").await;
    assert!(b.body().await.contains("+33600000123"));
    let support = e
        .callbacks
        .active()
        .into_iter()
        .find(|r| r.queue == "Support_VQ_CB")
        .unwrap();
    b.fill("q", &support.id.to_string()).await;
    b.click("search").await;
    // The page before (the search by number) also shows one callback: wait for the search's
    // address, or the rows read may be the old page's.
    let by_id = format!("q={}", support.id);
    b.wait_path(|p| p.contains(&by_id)).await;
    b.wait_text("1 callback on page 1").await;
    assert_eq!(row_ids(&b).await, vec![support.id.to_string()]);
    b.fill("q", "call me maybe").await;
    b.click("search").await;
    b.wait_id_text("filter-error", "neither a callback id nor a phone number")
        .await;

    // A Sales-only supervisor never sees Support's callbacks, even by id.
    b.click("logout").await;
    // The next login opens the form while the logout may still be loading its own form, whose
    // pre-session cookie could then replace the one the filled form's token belongs to.
    b.wait_text("You are logged out.").await;
    b.login("sales", PASSWORD).await;
    b.wait_text("Log out").await;
    b.go(&format!("/ui/callbacks?q={}", support.id)).await;
    b.wait_text("0 callbacks on page 1").await;
    b.go(&format!("/ui/callbacks/{}", support.id)).await;
    assert!(
        b.text("error")
            .await
            .unwrap()
            .contains("There is no callback")
    );
    b.go("/ui/callbacks?queue=Support_VQ_CB").await;
    assert!(
        b.text("filter-error")
            .await
            .unwrap()
            .contains("you may not read queue")
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_on_several_states_and_queues_export_the_list_and_recreate_at_a_chosen_time() {
    let (_dir, e, url) = engine().await;
    let queued = common::book_callback(&e, "Sales_VQ_CB", "+33612340001").await;
    let done = common::book_callback(&e, "Sales_VQ_CB", "+33612340002").await;
    e.callbacks.cancel(done.id, "sup", true).await.unwrap();
    let support = common::book_callback(&e, "Support_VQ_CB", "+33612340003").await;
    let b = Browser::start(&url).await;
    b.login("sup", PASSWORD).await;
    b.wait_text("Log out").await;
    b.wait_text("3 callbacks on page 1").await;
    // QUEUED or COMPLETED, in Sales only: the two Sales callbacks.
    b.click("state-QUEUED").await;
    b.click("state-COMPLETED").await;
    b.click("queue-Sales_VQ_CB").await;
    b.wait_path(|p| {
        p.contains("state=QUEUED") && p.contains("state=COMPLETED") && p.contains("queue=Sales")
    })
    .await;
    b.wait_text("2 callbacks on page 1").await;
    let mut ids = row_ids(&b).await;
    ids.sort();
    let mut want = vec![queued.id.to_string(), done.id.to_string()];
    want.sort();
    assert_eq!(ids, want);
    // Both queues, QUEUED only: the two waiting ones.
    b.click("state-COMPLETED").await;
    b.click("queue-Support_VQ_CB").await;
    b.wait_path(|p| !p.contains("state=COMPLETED") && p.contains("queue=Support"))
        .await;
    b.wait_text("2 callbacks on page 1").await;
    assert!(row_ids(&b).await.contains(&support.id.to_string()));
    assert!(!row_ids(&b).await.contains(&done.id.to_string()));
    // Advanced option: the Callback ID column.
    b.click("advanced").await;
    b.click("show-id").await;
    // The opened options already say "Include Callback ID": wait for the table's new column
    // (htmx updates the address in the same step as the table).
    b.wait_css_text("#callbacks thead", "Callback ID").await;
    b.wait_text("Callback ID").await;
    let path = b.path().await;
    assert!(
        path.contains("state=QUEUED") && path.contains("show_id=1"),
        "{path}"
    );

    // The export is the filtered list as CSV.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (cookie, _) = crate::http_session(&http, &url, "sup").await;
    let csv = http
        .get(format!(
            "{url}/ui/callbacks/export.csv?state=QUEUED&state=COMPLETED&queue=Sales_VQ_CB"
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "id,state,reason,desiredTime,phoneNumber,serviceName,timeUpdated"
    );
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        text.contains(&format!("{},COMPLETED,CANCELLED_BY_ADMIN", done.id)),
        "{text}"
    );
    assert!(!text.contains(&support.id.to_string()));
    // A monitor may not export (the API's ExportCallbacks).
    let (mon, _) = crate::http_session(&http, &url, "mon").await;
    let refused = http
        .get(format!("{url}/ui/callbacks/export.csv"))
        .header("cookie", &mon)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("Not allowed"));

    // Recreate the cancelled callback tomorrow at a chosen slot.
    let tomorrow =
        (boomerang::clock::SystemClock::shared().now() + TimeDelta::days(1)).date_naive();
    b.go(&format!("/ui/callbacks/{}", done.id)).await;
    b.click("recreate-link").await;
    // The detail page's link says "Recreate at a chosen time…" too: wait for its address.
    b.wait_path(|p| p.ends_with("/recreate")).await;
    b.wait_text("Recreate at a chosen time").await;
    b.go(&format!(
        "/ui/callbacks/{}/recreate?date={tomorrow}",
        done.id
    ))
    .await;
    let slot =
        b.c.find(Locator::Css("#slot option:nth-child(3)"))
            .await
            .unwrap();
    let value = slot.attr("value").await.unwrap().unwrap();
    slot.click().await.unwrap();
    b.click("recreate").await;
    b.wait_text("Callback recreated").await;
    let new_id: uuid::Uuid = b.text("cb-id").await.unwrap().parse().unwrap();
    let new = e.callbacks.get(new_id).await.unwrap();
    assert_eq!(new.state, CallbackState::Scheduled);
    assert_eq!(new.previous_id, Some(done.id));
    assert_eq!(new.desired_time.to_rfc3339(), value);
    // Recreating a callback that is not finished is refused with the service's reason.
    let (sup, csrf2) = crate::http_session(&http, &url, "sup").await;
    let r = crate::http_post(
        &http,
        &url,
        &sup,
        &format!("/ui/callbacks/{}/recreate", queued.id),
        &format!("csrf={csrf2}"),
    )
    .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("was not recreated"));
    b.close().await;
}

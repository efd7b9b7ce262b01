//! The one contract every [`Store`] backend keeps, as a test suite: each check is a function
//! taking a fresh, empty store, and [`store_contract!`] runs them all against a backend. SQLite
//! memory and PostgreSQL run it below; a new backend adds one `store_contract!` line.
//!
//! The checks cover what the engine persists: callback records (upsert, reload order, listings
//! and keyset pages, retention) and the documents of every kind (call-in requests, phone
//! registrations, agents, users, audit entries, bulk-cancel jobs, rules and groups).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{CallbackFilter, Document, Store};
use crate::callback::{CallbackRecord, CallbackState, CompletionReason, NewCallback, Origin};
use crate::config::CallDirection;

/// Runs every contract check against stores made by `$make`, an expression giving
/// `(Arc<dyn Store>, guard)` (the guard keeps the backend's resources alive for the test).
macro_rules! store_contract {
    ($make:expr) => {
        $crate::store::contract::store_contract!(@each $make;
            callbacks_round_trip_and_upsert_in_place,
            concurrent_saves_are_all_acknowledged,
            active_callbacks_leave_out_completed_ones,
            queries_filter_and_page,
            keyset_pages_walk_every_callback_once,
            retention_removes_records_14_days_after_their_desired_time,
            documents_round_trip_and_delete,
            domain_documents_are_kept_per_kind,
            a_change_and_its_audit_entry_are_saved_together,
            ges_fields_are_kept_with_the_callback,
            a_change_and_its_push_events_are_saved_together,
            outbox_entries_are_due_in_order_and_leave_when_settled,
            a_slot_takes_no_more_bookings_than_its_capacity,
            unfinished_callbacks_are_counted_by_queue_and_state,
        );
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (store, _guard) = $make;
                $crate::store::contract::$check(store).await;
            }
        )*
    };
}
pub(crate) use store_contract;

mod sqlite {
    super::store_contract!({
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(dir.path()).unwrap();
        (
            std::sync::Arc::new(store) as std::sync::Arc<dyn crate::store::Store>,
            dir,
        )
    });
}

mod postgres {
    // Skipped, with a notice, when BOOMERANG_TEST_PG_URL is not set (./test.sh sets it).
    super::store_contract!(match crate::store::postgres::tests::fresh_store().await {
        Some(s) => (
            std::sync::Arc::new(s) as std::sync::Arc<dyn crate::store::Store>,
            (),
        ),
        None => return,
    });
}

mod memory {
    super::store_contract!((
        std::sync::Arc::new(crate::store::MemoryStore::new())
            as std::sync::Arc<dyn crate::store::Store>,
        ()
    ));
}

/// A callback booked through the API at `now` (immediate: its desired time is `now`).
pub(crate) fn rec(phone: &str, now: DateTime<Utc>) -> CallbackRecord {
    booked("Sales_VQ_CB", phone, None, now)
}

/// A callback of `queue` booked through the API at `now`, scheduled when `desired` is given.
fn booked(
    queue: &str,
    phone: &str,
    desired: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> CallbackRecord {
    CallbackRecord::create(
        NewCallback {
            queue: queue.into(),
            phone: phone.into(),
            desired_time: desired,
            origin: Origin::Api,
            direction: CallDirection::BusinessToCustomer,
            priority: 0,
            queue_time: None,
            user_data: BTreeMap::new(),
            created_by: "test".into(),
        },
        now,
    )
    .unwrap()
}

/// The suite's fixed start time.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap()
}

/// `r` cancelled by the customer at the suite's start time (COMPLETED, two history entries).
pub(crate) fn cancelled(mut r: CallbackRecord) -> CallbackRecord {
    r.transition(
        CallbackState::Completed(CompletionReason::Cancelled),
        t0(),
        "x",
        "y",
    )
    .unwrap();
    r
}

fn doc(kind: &str, id: &str, body: serde_json::Value) -> Document {
    Document {
        kind: kind.into(),
        id: id.into(),
        body,
    }
}

/// A saved callback reads back equal; saving it again replaces it in place (the reload keeps
/// creation order); an unknown id is `None`.
pub(crate) async fn callbacks_round_trip_and_upsert_in_place(store: Arc<dyn Store>) {
    let first = rec("+33100000001", t0());
    let second = rec("+33100000002", t0());
    store
        .save_callbacks(vec![first.clone(), second.clone()])
        .await
        .unwrap();
    assert_eq!(store.callback(first.id).await.unwrap(), Some(first.clone()));
    let mut moved = first.clone();
    moved
        .transition(CallbackState::Routing, t0(), "test", "moved")
        .unwrap();
    store.save_callbacks(vec![moved.clone()]).await.unwrap();
    assert_eq!(store.callback(first.id).await.unwrap(), Some(moved.clone()));
    let ids: Vec<Uuid> = store
        .active_callbacks()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![first.id, second.id]);
    assert_eq!(store.callback(Uuid::new_v4()).await.unwrap(), None);
}

/// Saves made at once are all acknowledged and all readable.
pub(crate) async fn concurrent_saves_are_all_acknowledged(store: Arc<dyn Store>) {
    let recs: Vec<_> = (0..50)
        .map(|i| rec(&format!("+3312345{i:04}"), t0()))
        .collect();
    let mut tasks = Vec::new();
    for r in recs.clone() {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.save_callbacks(vec![r]).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for r in &recs {
        assert_eq!(store.callback(r.id).await.unwrap().as_ref(), Some(r));
    }
    assert_eq!(store.active_callbacks().await.unwrap().len(), 50);
}

/// The reload after a restart gets every callback not COMPLETED; the completed one stays
/// readable by id with its history.
pub(crate) async fn active_callbacks_leave_out_completed_ones(store: Arc<dyn Store>) {
    let recs: Vec<_> = (0..5)
        .map(|i| rec(&format!("+3312345{i:04}"), t0()))
        .collect();
    store.save_callbacks(recs.clone()).await.unwrap();
    store
        .save_callbacks(vec![cancelled(recs[3].clone())])
        .await
        .unwrap();
    let active = store.active_callbacks().await.unwrap();
    assert_eq!(active.len(), 4);
    assert!(active.iter().all(|r| r.id != recs[3].id));
    let got = store.callback(recs[3].id).await.unwrap().unwrap();
    assert_eq!(
        got.state,
        CallbackState::Completed(CompletionReason::Cancelled)
    );
    assert_eq!(got.history.len(), 2);
}

/// Listings filter by phone, state, time window and queues, newest desired time first, and page
/// by offset and limit.
pub(crate) async fn queries_filter_and_page(store: Arc<dyn Store>) {
    let mut recs = Vec::new();
    for i in 0..10 {
        recs.push(rec(
            if i % 2 == 0 {
                "+33100000000"
            } else {
                "+33200000000"
            },
            t0() + TimeDelta::minutes(i),
        ));
    }
    store.save_callbacks(recs).await.unwrap();
    let by_phone = store
        .query_callbacks(&CallbackFilter {
            phone: Some("+33100000000".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_phone.len(), 5);
    assert!(
        by_phone
            .windows(2)
            .all(|w| w[0].desired_time > w[1].desired_time)
    );
    let page = store
        .query_callbacks(&CallbackFilter {
            limit: 3,
            offset: 3,
            state: Some("QUEUED".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 3);
    assert_eq!(page[0].desired_time, t0() + TimeDelta::minutes(6));
    let window = store
        .query_callbacks(&CallbackFilter {
            from: Some(t0() + TimeDelta::minutes(2)),
            to: Some(t0() + TimeDelta::minutes(4)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(window.len(), 2);
    let in_queues = |qs: &[&str]| CallbackFilter {
        queues: Some(qs.iter().map(|q| q.to_string()).collect()),
        ..Default::default()
    };
    let all = store
        .query_callbacks(&in_queues(&["Sales_VQ_CB", "Other"]))
        .await
        .unwrap();
    assert_eq!(all.len(), 10);
    assert!(
        store
            .query_callbacks(&in_queues(&["Other"]))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .query_callbacks(&CallbackFilter {
                queue: Some("Other".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
}

/// Keyset pages (several callbacks sharing a desired time) give every callback exactly once,
/// in the listing's order, and the last page's cursor ends the walk.
pub(crate) async fn keyset_pages_walk_every_callback_once(store: Arc<dyn Store>) {
    let recs: Vec<_> = (0..7)
        .map(|i| rec(&format!("+3361000{i:04}"), t0() + TimeDelta::minutes(i / 3)))
        .collect();
    store.save_callbacks(recs.clone()).await.unwrap();
    let listing: Vec<Uuid> = store
        .query_callbacks(&CallbackFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listing.len(), 7);
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let (page, cursor) = store
            .query_callbacks_page(&CallbackFilter {
                limit: 3,
                after,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        walked.extend(page.iter().map(|r| r.id));
        after = cursor;
        assert!(after.is_some(), "a non-empty page has a cursor");
    }
    assert_eq!(walked, listing);
    let distinct: BTreeSet<Uuid> = walked.iter().copied().collect();
    assert_eq!(distinct.len(), 7);
}

/// Completed records go `retention` after their desired time, never before, and records not
/// completed stay.
pub(crate) async fn retention_removes_records_14_days_after_their_desired_time(
    store: Arc<dyn Store>,
) {
    let mut done = rec("+33100000000", t0());
    done.cancel(t0(), "app", false).unwrap();
    // A record not COMPLETED is never removed.
    let waiting = rec("+33100000001", t0());
    store.save_callbacks(vec![done, waiting]).await.unwrap();
    assert_eq!(
        store
            .remove_expired(t0() + TimeDelta::days(14), TimeDelta::days(14))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .remove_expired(
                t0() + TimeDelta::days(14) + TimeDelta::seconds(1),
                TimeDelta::days(14)
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.active_callbacks().await.unwrap().len(), 1);
    // A shorter configured retention removes earlier.
    let mut short = rec("+33100000002", t0());
    short.cancel(t0(), "app", false).unwrap();
    store.save_callbacks(vec![short]).await.unwrap();
    let three = TimeDelta::days(3);
    assert_eq!(store.remove_expired(t0() + three, three).await.unwrap(), 0);
    assert_eq!(
        store
            .remove_expired(t0() + three + TimeDelta::seconds(1), three)
            .await
            .unwrap(),
        1
    );
}

/// A document reads back as saved; deleting says whether it existed.
pub(crate) async fn documents_round_trip_and_delete(store: Arc<dyn Store>) {
    let doc = doc("rule", "fr-only", json!({"countries": ["FR"]}));
    store.save_documents(vec![doc.clone()]).await.unwrap();
    assert_eq!(store.documents("rule").await.unwrap(), vec![doc]);
    assert!(store.delete_document("rule", "fr-only").await.unwrap());
    assert!(!store.delete_document("rule", "fr-only").await.unwrap());
    assert!(store.documents("rule").await.unwrap().is_empty());
}

/// Every kind the engine stores keeps its own documents, by id, replaced in place; deleting one
/// kind's document leaves another kind's with the same id.
pub(crate) async fn domain_documents_are_kept_per_kind(store: Arc<dyn Store>) {
    let kinds = [
        crate::callin::DOC_KIND,
        crate::callin::book::GROUP_KIND,
        crate::engine::sip::REGISTRATION_KIND,
        crate::agents::DOC_KIND,
        crate::users::DOC_KIND,
        crate::audit::DOC_KIND,
        crate::callback::bulk::DOC_KIND,
        crate::rules::book::RuleKind::Number.doc_kind(),
    ];
    let mut docs = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        // Ids saved out of order, and one id shared by every kind.
        docs.push(doc(kind, "b", json!({ "kind": kind, "n": i })));
        docs.push(doc(
            kind,
            "a",
            json!({ "kind": kind, "n": i, "first": true }),
        ));
        docs.push(doc(kind, "shared", json!({ "kind": kind })));
    }
    store.save_documents(docs).await.unwrap();
    for kind in kinds {
        let got = store.documents(kind).await.unwrap();
        let ids: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "shared"], "{kind}");
        assert!(got.iter().all(|d| d.kind == kind && d.body["kind"] == kind));
    }
    let replaced = doc(crate::users::DOC_KIND, "a", json!({ "replaced": true }));
    store.save_documents(vec![replaced.clone()]).await.unwrap();
    let users = store.documents(crate::users::DOC_KIND).await.unwrap();
    assert_eq!(users.len(), 3);
    assert_eq!(users[0], replaced);
    assert!(
        store
            .delete_document(crate::audit::DOC_KIND, "shared")
            .await
            .unwrap()
    );
    assert_eq!(
        store.documents(crate::audit::DOC_KIND).await.unwrap().len(),
        2
    );
    for kind in kinds.iter().filter(|k| **k != crate::audit::DOC_KIND) {
        assert_eq!(store.documents(kind).await.unwrap().len(), 3, "{kind}");
    }
    assert!(store.documents("no_such_kind").await.unwrap().is_empty());
}

/// A change and its audit entry, saved in one call, are both there afterwards.
pub(crate) async fn a_change_and_its_audit_entry_are_saved_together(store: Arc<dyn Store>) {
    let user = doc(crate::users::DOC_KIND, "alice", json!({ "name": "alice" }));
    let entry = doc(
        crate::audit::DOC_KIND,
        "00000000000000000001-0000000000-abcdef01",
        json!({ "action": "user.create" }),
    );
    store
        .save_documents(vec![user.clone(), entry.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.documents(crate::users::DOC_KIND).await.unwrap(),
        vec![user]
    );
    assert_eq!(
        store.documents(crate::audit::DOC_KIND).await.unwrap(),
        vec![entry]
    );
}

/// The GES create fields (offer type, language, channel, route points, reporting figures) read
/// back as saved, through the single-record read and the active reload.
pub(crate) async fn ges_fields_are_kept_with_the_callback(store: Arc<dyn Store>) {
    use crate::callback::ges::{GesAttributes, OfferTiming, OfferType};
    let mut r = rec("+33100000009", t0());
    r.ges = GesAttributes {
        cb_offer_type: Some(OfferType::CombinedScheduledAndAsap),
        language: Some("fr-CA".into()),
        inbound_vq: Some("Sales_VQ".into()),
        offer_threshold: Some(300),
        channel: Some("WEB".into()),
        offer_timing: Some(OfferTiming::OffHours),
        cb_origination_ixn_id: Some("ixn-1".into()),
        survey_rp: Some("9100".into()),
        route_point: Some("8123".into()),
    };
    store.save_callbacks(vec![r.clone()]).await.unwrap();
    assert_eq!(
        store.callback(r.id).await.unwrap().map(|x| x.ges),
        Some(r.ges.clone())
    );
    let active = store.active_callbacks().await.unwrap();
    assert_eq!(
        active.iter().find(|x| x.id == r.id).map(|x| &x.ges),
        Some(&r.ges)
    );
}

/// A pending outbox entry for `rec`, raised at `at`, to a webhook.
fn outbox_entry(rec: &CallbackRecord, at: DateTime<Utc>) -> crate::push::OutboxEntry {
    let event = crate::push::PushEvent {
        id: Uuid::new_v4(),
        kind: crate::push::PushKind::CallbackPurged,
        callback_id: rec.id,
        queue: rec.queue.clone(),
        at,
        targets: Vec::new(),
        data: json!({ "callbackState": "COMPLETED" }),
    };
    crate::push::OutboxEntry::new(
        &event,
        crate::push::PushTarget {
            channel: "WEBHOOK".into(),
            target: "http://127.0.0.1:9/hook".into(),
        },
    )
}

/// A state change and the push events it raised, saved in one call, are both there: the
/// callback in its new state and the events pending, due at once, counted in the depth.
pub(crate) async fn a_change_and_its_push_events_are_saved_together(store: Arc<dyn Store>) {
    use crate::push::OutboxState;
    let now = t0();
    let done = cancelled(rec("+33123450001", now));
    let events = vec![outbox_entry(&done, now), outbox_entry(&done, now)];
    store
        .save_callbacks_with_outbox(vec![done.clone()], events.clone())
        .await
        .unwrap();
    assert_eq!(store.callback(done.id).await.unwrap(), Some(done.clone()));
    let mut pending = store
        .outbox_list(Some(OutboxState::Pending), 0)
        .await
        .unwrap();
    pending.reverse();
    assert_eq!(pending, events, "newest first, as stored");
    assert_eq!(store.outbox_pending().await.unwrap(), 2);
    assert_eq!(store.outbox_next_due().await.unwrap(), Some(now));
    let due = store.outbox_due(now, 10).await.unwrap();
    assert_eq!(due, events, "due in the order raised");
    assert!(
        store
            .outbox_due(now - TimeDelta::seconds(1), 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before it was raised"
    );
    assert!(
        store
            .outbox_list(Some(OutboxState::Delivered), 0)
            .await
            .unwrap()
            .is_empty()
    );
    // Without events, the same call is a plain save.
    let other = rec("+33123450002", now);
    store
        .save_callbacks_with_outbox(vec![other.clone()], Vec::new())
        .await
        .unwrap();
    assert_eq!(store.callback(other.id).await.unwrap(), Some(other));
    assert_eq!(store.outbox_pending().await.unwrap(), 2);
}

/// Entries are due by their next attempt time; a retried one waits for its time, a delivered
/// or failed one is never due again and is listed under its state; updates replace in place.
pub(crate) async fn outbox_entries_are_due_in_order_and_leave_when_settled(store: Arc<dyn Store>) {
    use crate::push::OutboxState;
    let now = t0();
    let r = rec("+33123450003", now);
    let mut a = outbox_entry(&r, now);
    let mut b = outbox_entry(&r, now + TimeDelta::seconds(1));
    let mut c = outbox_entry(&r, now + TimeDelta::seconds(2));
    store
        .save_outbox(vec![a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    // a: retry in 10 s; b: delivered; c: failed.
    a.attempts = 1;
    a.next_attempt_at = now + TimeDelta::seconds(10);
    a.last_error = Some("webhook answered 503".into());
    b.attempts = 1;
    b.state = OutboxState::Delivered;
    b.delivered_at = Some(now + TimeDelta::seconds(1));
    c.attempts = 10;
    c.state = OutboxState::Failed;
    c.last_error = Some("gave up".into());
    store
        .save_outbox(vec![a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    let later = now + TimeDelta::seconds(5);
    assert!(store.outbox_due(later, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .outbox_due(now + TimeDelta::seconds(10), 10)
            .await
            .unwrap(),
        vec![a.clone()]
    );
    assert_eq!(
        store.outbox_next_due().await.unwrap(),
        Some(now + TimeDelta::seconds(10))
    );
    assert_eq!(store.outbox_pending().await.unwrap(), 1);
    for (state, entry) in [(OutboxState::Delivered, &b), (OutboxState::Failed, &c)] {
        let listed = store.outbox_list(Some(state), 0).await.unwrap();
        assert_eq!(listed, vec![entry.clone()], "{state:?}");
    }
    assert_eq!(
        store.outbox_list(None, 2).await.unwrap(),
        vec![c, b],
        "newest first, limited"
    );
    // A due batch is limited too.
    let many: Vec<_> = (0..5).map(|_| outbox_entry(&r, now)).collect();
    store.save_outbox(many).await.unwrap();
    assert_eq!(store.outbox_due(later, 3).await.unwrap().len(), 3);
}

/// A scheduled callback of `queue` desired at `at`.
fn scheduled(queue: &str, phone: &str, at: DateTime<Utc>) -> CallbackRecord {
    booked(queue, phone, Some(at), t0())
}

pub(crate) async fn a_slot_takes_no_more_bookings_than_its_capacity(store: Arc<dyn Store>) {
    let start = t0() + TimeDelta::days(1);
    let hold = super::SlotHold {
        queue: "Sales_VQ_CB".into(),
        slot: start..start + TimeDelta::minutes(15),
        capacity: 2,
    };
    // What does not count: another queue, the next slot, an immediate callback, a cancelled one.
    let mut others = vec![
        scheduled("Other_VQ", "+33100000001", start),
        scheduled("Sales_VQ_CB", "+33100000002", hold.slot.end),
        rec("+33100000003", t0()),
        cancelled(scheduled("Sales_VQ_CB", "+33100000004", start)),
    ];
    others[2].desired_time = start;
    store.save_callbacks(others).await.unwrap();
    let first = scheduled("Sales_VQ_CB", "+33100000005", start);
    assert!(
        store
            .save_callback_in_slot(first.clone(), &hold)
            .await
            .unwrap()
    );
    let second = scheduled(
        "Sales_VQ_CB",
        "+33100000006",
        start + TimeDelta::minutes(14),
    );
    assert!(store.save_callback_in_slot(second, &hold).await.unwrap());
    let third = scheduled("Sales_VQ_CB", "+33100000007", start);
    assert!(
        !store
            .save_callback_in_slot(third.clone(), &hold)
            .await
            .unwrap(),
        "a full slot took a third booking"
    );
    assert_eq!(
        store.callback(third.id).await.unwrap(),
        None,
        "a refused booking was stored"
    );
    assert_eq!(store.callback(first.id).await.unwrap(), Some(first.clone()));
    // A cancellation gives its place back.
    store.save_callbacks(vec![cancelled(first)]).await.unwrap();
    assert!(store.save_callback_in_slot(third, &hold).await.unwrap());
}

pub(crate) async fn unfinished_callbacks_are_counted_by_queue_and_state(store: Arc<dyn Store>) {
    let later = t0() + TimeDelta::days(1);
    let mut retrying = rec("+33100000011", t0());
    retrying.next_attempt_at = Some(later);
    store
        .save_callbacks(vec![
            rec("+33100000010", t0()),
            retrying,
            scheduled("Sales_VQ_CB", "+33100000012", later),
            scheduled("Other_VQ", "+33100000013", later),
            cancelled(rec("+33100000014", t0())),
        ])
        .await
        .unwrap();
    let counts = store.count_active().await.unwrap();
    let row = |queue: &str, state: &str, count, held_for_retry| super::StateCount {
        queue: queue.into(),
        state: state.into(),
        count,
        held_for_retry,
    };
    assert_eq!(
        counts,
        vec![
            row("Other_VQ", "SCHEDULED", 1, 0),
            row("Sales_VQ_CB", "QUEUED", 2, 1),
            row("Sales_VQ_CB", "SCHEDULED", 1, 0),
        ]
    );
}

//! Creating, cancelling, rescheduling and recreating callbacks, with the queue's rules applied,
//! every change made durable before it is acknowledged, and the scheduler's deadlines kept in
//! step. The service tells the router what to queue or withdraw through [`QueueEvent`]s.

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use thiserror::Error;
use uuid::Uuid;

use super::availability::{self, SlotBook};
pub use super::desired::{DESIRED_TIME_GRACE, check_desired_time};
use super::model::{
    CallbackRecord, CallbackState, CallbackType, LifecycleError, NewCallback, Origin, UserDataError,
};
use super::scheduler::{Timers, Wake};
use crate::clock::SharedClock;
use crate::config::{CallDirection, Config, QueueSpec};
use crate::push::{Notifier, OutboxEntry, PushHub};
use crate::rules::NumberRejection;
use crate::rules::capacity::CapacityGrid;
use crate::rules::number::NumberRule;
use crate::store::{Store, StoreError};

mod create;
mod events;
mod lifecycle;
mod query;
mod rules;
mod timers;

/// What the router must do after a callback changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEvent {
    /// Put (or put back) the callback in its queue, ordered by priority then `queue_time`.
    Enqueue {
        /// Callback id.
        id: Uuid,
        /// Virtual queue.
        queue: String,
        /// Routing priority.
        priority: i64,
        /// Place in the queue.
        queue_time: DateTime<Utc>,
    },
    /// Take it out of its queue (cancelled, purged, expired).
    Withdraw {
        /// Callback id.
        id: Uuid,
        /// Virtual queue.
        queue: String,
    },
}

/// Why a callback request was refused.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// No such queue.
    #[error("unknown virtual queue `{0}`")]
    UnknownQueue(String),
    /// No such callback.
    #[error("no callback with id {0}")]
    NotFound(Uuid),
    /// The queue does not take this type of callback.
    #[error("queue `{queue}` does not accept {kind} callbacks")]
    Disabled {
        /// Queue.
        queue: String,
        /// `immediate` or `scheduled`.
        kind: &'static str,
    },
    /// The desired time is not in an available slot (IVR bookings only).
    #[error("no place left at {0} in this queue; choose another time")]
    SlotUnavailable(DateTime<Utc>),
    /// The desired time has passed (beyond [`DESIRED_TIME_GRACE`]).
    #[error("{0} is in the past; leave it out for an immediate callback")]
    InPast(DateTime<Utc>),
    /// The desired time is beyond the queue's `max_days_ahead`.
    #[error("{at} is more than {max_days} days ahead (the queue's max_days_ahead)")]
    TooFarAhead {
        /// The time asked for.
        at: DateTime<Utc>,
        /// The queue's limit.
        max_days: i64,
    },
    /// The number may not be called.
    #[error(transparent)]
    Number(#[from] NumberRejection),
    /// User data over the limits.
    #[error(transparent)]
    UserData(#[from] UserDataError),
    /// Not allowed in the callback's state.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// Could not be made durable: nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another node of the cluster holds the callback (it is dialling it): not changed.
    #[error("callback {0} is being dialled by another node; try again once its attempt ends")]
    HeldElsewhere(Uuid),
}

/// A request to create a callback.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The callback itself.
    pub callback: NewCallback,
    /// A slot must be free (IVR and UI bookings, API with `alwaysCheckCapacity`); for an API
    /// booking it also applies the Immediate/Scheduled Enabled flags, which IVR offers always
    /// obey and UI bookings never do, as in GES (the number rule applies to every booking).
    pub check_slot: bool,
    /// EWT when offered, for metrics.
    pub ewt_at_offer_seconds: Option<u32>,
    /// Position when offered, for metrics.
    pub position_at_offer: Option<u32>,
}

/// A request without a slot check or offer figures (API bookings, tests).
impl From<NewCallback> for CreateRequest {
    fn from(callback: NewCallback) -> Self {
        CreateRequest {
            callback,
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        }
    }
}

/// Outcome of a bulk cancel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkCancel {
    /// Cancelled callbacks.
    pub cancelled: Vec<Uuid>,
    /// Callbacks left alone, with the reason.
    pub skipped: Vec<(Uuid, String)>,
}

/// The callback service.
pub struct CallbackService {
    /// Swapped whole by a configuration reload (queues' settings, business hours).
    config: RwLock<Arc<Config>>,
    clock: SharedClock,
    store: Arc<dyn Store>,
    push: Arc<PushHub>,
    records: DashMap<Uuid, CallbackRecord>,
    slots: SlotBook,
    timers: Mutex<Timers>,
    number_rules: RwLock<HashMap<String, Arc<NumberRule>>>,
    capacity_rules: RwLock<HashMap<String, Arc<CapacityGrid>>>,
    events: Mutex<Vec<QueueEvent>>,
    sink: RwLock<Option<QueueSink>>,
    /// Serialises read-modify-write per callback (striped by id): without it two changes at
    /// once, each awaiting its save, could overwrite each other.
    locks: [tokio::sync::Mutex<()>; LOCK_STRIPES],
    /// In a cluster, this node's leases: `records` then holds only the callbacks it claimed,
    /// and their changes are fenced writes.
    leases: std::sync::OnceLock<Arc<dyn super::lease::Leases>>,
    /// In a cluster, the whole cluster's callbacks counted by queue and state (query.rs).
    shared_counts: std::sync::OnceLock<Arc<crate::cluster::counts::SharedCounts>>,
}

/// How many per-callback lock stripes: a change waits only behind another on the same stripe.
const LOCK_STRIPES: usize = 64;

/// Receives queue events as they happen (the engine hands them to the router).
pub type QueueSink = Arc<dyn Fn(QueueEvent) + Send + Sync>;

impl CallbackService {
    /// A service over `store`, with `config`'s queues.
    pub fn new(
        config: Arc<Config>,
        clock: SharedClock,
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
    ) -> Self {
        CallbackService {
            config: RwLock::new(config),
            clock,
            store,
            push: Arc::new(PushHub::new(notifier)),
            records: DashMap::new(),
            slots: SlotBook::new(),
            timers: Mutex::new(Timers::new()),
            number_rules: RwLock::new(HashMap::new()),
            capacity_rules: RwLock::new(HashMap::new()),
            events: Mutex::new(Vec::new()),
            sink: RwLock::new(None),
            locks: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
            leases: std::sync::OnceLock::new(),
            shared_counts: std::sync::OnceLock::new(),
        }
    }

    /// Makes this service one node of a cluster: it holds only the callbacks it claims (handed
    /// to it by [`Self::adopt`]), writes them fenced by its lease, and leaves the others to
    /// whichever node claims them. Set before [`Self::recover`], once.
    pub fn set_leases(&self, leases: Arc<dyn super::lease::Leases>) {
        let _ = self.leases.set(leases);
    }

    /// Takes callbacks this node just claimed into its care: each enters its queue (or waits
    /// for its retry or activation deadline) as a recovered one would.
    pub fn adopt(&self, claimed: Vec<CallbackRecord>) {
        for rec in claimed {
            if rec.state.is_completed() || self.records.contains_key(&rec.id) {
                continue;
            }
            self.records.insert(rec.id, rec.clone());
            self.arm(&rec);
        }
    }

    /// Takes a callback just written into this node's care (its deadlines, its place in
    /// the queue); in a cluster it is left to whichever node claims it when due.
    fn keep(&self, rec: &CallbackRecord) {
        if self.leases.get().is_none() {
            self.arm(rec);
            self.records.insert(rec.id, rec.clone());
        }
    }

    /// The ids of every callback this node holds (in a cluster: the leases it renews).
    pub fn held_ids(&self) -> Vec<Uuid> {
        self.records.iter().map(|r| r.id).collect()
    }

    /// Callbacks of `queue` this node holds (claimed and not yet released, in a cluster).
    pub fn held(&self, queue: &str) -> usize {
        self.records.iter().filter(|r| r.queue == queue).count()
    }

    /// The lock stripe of a callback; held by [`Self::change`] only, never two at once.
    fn lock_of(&self, id: Uuid) -> &tokio::sync::Mutex<()> {
        let (hi, lo) = id.as_u64_pair();
        &self.locks[((hi ^ lo) % LOCK_STRIPES as u64) as usize]
    }

    fn queue(&self, name: &str) -> Result<QueueSpec, ServiceError> {
        self.config()
            .queue(name)
            .cloned()
            .ok_or_else(|| ServiceError::UnknownQueue(name.to_string()))
    }

    fn capacity_at(&self, queue: &QueueSpec) -> impl Fn(DateTime<Utc>) -> u32 + use<> {
        let grid = self.capacity_rules.read().get(&queue.name).cloned();
        let tz = self.config().queue_hours(queue).tz;
        let flat = queue.slot_capacity.max(0) as u32;
        move |t| grid.as_ref().map(|g| g.capacity_at(tz, t)).unwrap_or(flat)
    }

    fn slot_of(&self, rec: &CallbackRecord) -> DateTime<Utc> {
        let config = self.config();
        match config.queue(&rec.queue) {
            Some(q) => {
                let hours = config.queue_hours(q);
                availability::slot_start(&hours, q.slot_duration_minutes as u32, rec.desired_time)
            }
            None => rec.desired_time,
        }
    }

    fn emit(&self, e: QueueEvent) {
        let sink = self.sink.read().clone();
        match sink {
            Some(f) => f(e),
            None => self.events.lock().push(e),
        }
    }

    /// Delivers queue events to `sink` as they happen, starting with any buffered ones.
    pub fn set_queue_sink(&self, sink: QueueSink) {
        for e in self.drain_queue_events() {
            sink(e);
        }
        *self.sink.write() = Some(sink);
    }

    /// Queue events produced since the last call, for the router.
    pub fn drain_queue_events(&self) -> Vec<QueueEvent> {
        std::mem::take(&mut *self.events.lock())
    }

    /// A callback by id (in memory for unfinished ones, else from the store).
    pub async fn get(&self, id: Uuid) -> Result<CallbackRecord, ServiceError> {
        if let Some(r) = self.records.get(&id) {
            return Ok(r.clone());
        }
        self.store
            .callback(id)
            .await?
            .ok_or(ServiceError::NotFound(id))
    }

    /// Applies a change to a record durably: on a store failure nothing changes.
    ///
    /// The callback's lock is held from the read through the save and the in-memory update, so
    /// `f` always sees the current record and concurrent changes apply one after the other. A
    /// change that leaves the record as it was (a check that decided to skip) saves nothing.
    async fn change(
        &self,
        id: Uuid,
        f: impl FnOnce(&mut CallbackRecord) -> Result<Option<CallbackRecord>, ServiceError>,
    ) -> Result<(CallbackRecord, Option<CallbackRecord>), ServiceError> {
        let _serial = self.lock_of(id).lock().await;
        let mut rec = self.get(id).await?;
        let before = rec.clone();
        let extra = f(&mut rec)?;
        if extra.is_none() && rec == before {
            return Ok((rec, None));
        }
        let events = self.raised(&before, &rec);
        let entries: Vec<OutboxEntry> = events
            .iter()
            .flat_map(|e| e.targets.iter().map(|t| OutboxEntry::new(e, t.clone())))
            .collect();
        let leases = self.leases.get();
        let owned = leases.filter(|_| self.records.contains_key(&id));
        // A claimed callback gives its lease up when it leaves this node's hands: completed,
        // or back in its queue after a failed attempt (any node may claim its retry).
        let release = rec.state.is_completed()
            || (before.state == CallbackState::Routing && rec.state == CallbackState::Queued);
        let fresh: Vec<CallbackRecord> = extra.iter().cloned().collect();
        // In a cluster, the events are stored in the same write as the change that raised them.
        let write = super::lease::OwnedWrite {
            record: &rec,
            fresh: &fresh,
            entries: &entries,
            release,
        };
        if let Some(leases) = owned {
            if rec.state == CallbackState::Routing
                && before.state != CallbackState::Routing
                && !leases.may_dial()
            {
                // The router has already taken it out of its queue: kept here, it would be
                // neither dialled nor given up (its lease renewed by every heartbeat). Let it
                // go: its lease lapses and any node claims it again.
                self.forget(&before);
                return Err(StoreError::Database(
                    "this node is fenced (no heartbeat for half a lease): not dialling".into(),
                )
                .into());
            }
            let saved = leases.save_owned(write).await;
            if saved.is_err() {
                // The database is away: this node lets the callback go (its lease is no
                // longer renewed) and whoever takes it over applies the restart rule.
                self.forget(&before);
            }
            if !saved? {
                self.forget(&before);
                return Err(StoreError::NotStored(format!(
                    "callback {id} was taken over by another node"
                ))
                .into());
            }
        } else if let Some(leases) = leases {
            // A row this node does not hold: written only while no live node holds it, so it
            // never races another node's claim (the claim wins; the caller is told to retry).
            if !leases.save_unheld(write).await? {
                return Err(ServiceError::HeldElsewhere(id));
            }
        } else {
            let mut batch = vec![rec.clone()];
            batch.extend(extra.clone());
            // The events are stored in the same write as the change that raised them.
            self.store
                .save_callbacks_with_outbox(batch, entries)
                .await?;
        }
        self.announce(events).await;
        if leases.is_some() && (release || owned.is_none()) {
            // Not (or no longer) this node's: keep no copy.
            self.forget(&before);
            if let Some(n) = &extra
                && n.kind == CallbackType::Scheduled
            {
                self.slots.force_book(&n.queue, self.slot_of(n));
            }
            if before.kind == CallbackType::Scheduled
                && before.state == CallbackState::Scheduled
                && rec.state.is_completed()
            {
                self.slots.release(&rec.queue, self.slot_of(&before));
            }
            return Ok((rec, extra));
        }
        if rec.state.is_completed() {
            self.records.remove(&id);
            self.timers.lock().cancel_all(id);
            if matches!(before.state, CallbackState::Queued | CallbackState::Routing) {
                self.emit(QueueEvent::Withdraw {
                    id,
                    queue: rec.queue.clone(),
                });
            }
            if before.kind == CallbackType::Scheduled && before.state == CallbackState::Scheduled {
                self.slots.release(&rec.queue, self.slot_of(&before));
            }
        } else {
            self.records.insert(id, rec.clone());
        }
        if let Some(n) = &extra {
            if n.kind == CallbackType::Scheduled {
                self.slots.force_book(&n.queue, self.slot_of(n));
            }
            self.arm(n);
            self.records.insert(n.id, n.clone());
        }
        Ok((rec, extra))
    }

    /// Drops this node's copy of a callback (released, or lost to another node): its
    /// deadlines, and its place in the router's queue.
    fn forget(&self, before: &CallbackRecord) {
        if self.records.remove(&before.id).is_none() {
            return;
        }
        self.timers.lock().cancel_all(before.id);
        if before.state == CallbackState::Queued {
            self.emit(QueueEvent::Withdraw {
                id: before.id,
                queue: before.queue.clone(),
            });
        }
    }

    /// Applies a state change durably and arms a retry deadline when one was set.
    pub(crate) async fn update(
        &self,
        id: Uuid,
        f: impl FnOnce(&mut CallbackRecord) -> Result<(), ServiceError>,
    ) -> Result<CallbackRecord, ServiceError> {
        let (rec, _) = self
            .change(id, |r| {
                f(r)?;
                Ok(None)
            })
            .await?;
        if let (CallbackState::Queued, Some(at)) = (rec.state, rec.next_attempt_at)
            && self.records.contains_key(&id)
        {
            self.timers.lock().schedule(id, Wake::Retry, at);
        }
        Ok(rec)
    }

    /// The clock (answering-machine detection waits on it).
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The clock's now.
    pub(crate) fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A queue's settings (cloned, so no borrow outlives an await).
    pub(crate) fn queue_spec(&self, name: &str) -> Result<QueueSpec, ServiceError> {
        self.queue(name)
    }
}

/// Builds a [`NewCallback`] the way an app's API call would (immediate when `at` is `None`).
pub fn api_callback(queue: &str, phone: &str, at: Option<DateTime<Utc>>) -> NewCallback {
    NewCallback {
        queue: queue.into(),
        phone: phone.into(),
        desired_time: at,
        origin: Origin::Api,
        direction: CallDirection::BusinessToCustomer,
        priority: 0,
        queue_time: None,
        user_data: Default::default(),
        created_by: "api".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::CompletionReason;
    use crate::clock::ManualClock;
    use crate::push::MemoryNotifier;
    use crate::push::PushKind;
    use crate::rules::NumberRuleSpec;
    use crate::store::SqliteStore;
    use chrono::TimeDelta;
    use chrono::TimeZone;
    use std::path::Path;

    fn t0() -> DateTime<Utc> {
        // Monday 2 March 2026, 09:00 UTC.
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap()
    }

    struct Fixture {
        svc: Arc<CallbackService>,
        clock: ManualClock,
        notifier: Arc<MemoryNotifier>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        fixture_over(|s| s)
    }

    /// The fixture with its store wrapped (e.g. to hold a save).
    fn fixture_over(wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>) -> Fixture {
        let config = Config::from_str_in(
            "business_hours:
  office:
    time_zone: UTC
    weekly: {mon: '08:00-18:00', tue: '08:00-18:00'}
queues:
  - name: S_VQ_CB
    business_hours: office
    slot_capacity: 2
    slot_duration_minutes: 30
    callback_purge_time_minutes: 60
  - name: N_VQ_CB
    immediate_enabled: false
",
            Path::new("/"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = wrap(Arc::new(SqliteStore::open(dir.path()).unwrap()));
        let clock = ManualClock::new(t0());
        let notifier = Arc::new(MemoryNotifier::new());
        let svc = Arc::new(CallbackService::new(
            Arc::new(config),
            clock.shared(),
            store,
            notifier.clone(),
        ));
        Fixture {
            svc,
            clock,
            notifier,
            _dir: dir,
        }
    }

    fn req(at: Option<DateTime<Utc>>, check_slot: bool) -> CreateRequest {
        CreateRequest {
            callback: api_callback("S_VQ_CB", "+33612345678", at),
            check_slot,
            ewt_at_offer_seconds: Some(120),
            position_at_offer: Some(3),
        }
    }

    #[tokio::test]
    async fn upcoming_is_raised_once_when_ewt_drops_under_the_threshold_and_stored_with_the_mark() {
        use crate::push::{OutboxState, PushTarget};
        let f = fixture();
        let hook = vec![PushTarget {
            channel: "WEBHOOK".into(),
            target: "http://127.0.0.1:9/hook".into(),
        }];
        let rec = f
            .svc
            .create_with(req(None, false), Default::default(), hook.clone())
            .await
            .unwrap();
        // S_VQ_CB's threshold is the default 5 minutes.
        assert_eq!(f.svc.check_upcoming(|_| None).await, 0, "unknown EWT");
        assert_eq!(f.svc.check_upcoming(|_| Some(600)).await, 0);
        assert_eq!(f.svc.check_upcoming(|_| Some(299)).await, 1);
        assert_eq!(f.svc.check_upcoming(|_| Some(600)).await, 0);
        assert_eq!(f.svc.check_upcoming(|_| Some(10)).await, 0, "only once");
        let stored = f.svc.store.callback(rec.id).await.unwrap().unwrap();
        assert!(stored.push.upcoming_done && stored.push.upcoming_armed);
        let out = f
            .svc
            .store
            .outbox_list(Some(OutboxState::Pending), 0)
            .await
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].event.kind, PushKind::CallbackUpcoming);
        assert_eq!(out[0].event.callback_id, rec.id);
        assert_eq!(out[0].target, hook[0]);
        // Already under the threshold at the first look: never raised.
        let low = f
            .svc
            .create_with(req(None, false), Default::default(), hook.clone())
            .await
            .unwrap();
        assert_eq!(f.svc.check_upcoming(|_| Some(60)).await, 0);
        assert_eq!(f.svc.check_upcoming(|_| Some(600)).await, 0);
        assert_eq!(f.svc.check_upcoming(|_| Some(60)).await, 0);
        assert!(
            f.svc
                .store
                .callback(low.id)
                .await
                .unwrap()
                .unwrap()
                .push
                .upcoming_done
        );
        // Without anywhere to push, nothing is looked at.
        let silent = f.svc.create(req(None, false)).await.unwrap();
        f.svc.check_upcoming(|_| Some(600)).await;
        assert!(!f.svc.get(silent.id).await.unwrap().push.upcoming_armed);
        assert_eq!(f.svc.store.outbox_pending().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn immediate_callback_is_queued_and_purged_when_unserved() {
        let f = fixture();
        let rec = f.svc.create(req(None, false)).await.unwrap();
        assert_eq!(rec.state, CallbackState::Queued);
        assert_eq!(
            f.svc.drain_queue_events(),
            vec![QueueEvent::Enqueue {
                id: rec.id,
                queue: "S_VQ_CB".into(),
                priority: 0,
                queue_time: t0()
            }]
        );
        f.clock.advance(TimeDelta::minutes(60));
        assert_eq!(f.svc.tick().await.unwrap(), 1);
        let purged = f.svc.get(rec.id).await.unwrap();
        assert_eq!(
            purged.state,
            CallbackState::Completed(CompletionReason::Purged)
        );
        assert_eq!(
            f.svc.drain_queue_events(),
            vec![QueueEvent::Withdraw {
                id: rec.id,
                queue: "S_VQ_CB".into()
            }]
        );
        assert_eq!(f.notifier.kinds_for(rec.id), vec![PushKind::CallbackPurged]);
    }

    #[tokio::test]
    async fn scheduled_callback_activates_at_its_time() {
        let f = fixture();
        let at = t0() + TimeDelta::hours(2);
        let rec = f.svc.create(req(Some(at), true)).await.unwrap();
        assert_eq!(rec.state, CallbackState::Scheduled);
        assert!(f.svc.drain_queue_events().is_empty());
        assert_eq!(f.svc.next_deadline(), Some(at));
        f.clock.set(at);
        f.svc.tick().await.unwrap();
        assert_eq!(
            f.svc.get(rec.id).await.unwrap().state,
            CallbackState::Queued
        );
        assert!(matches!(
            f.svc.drain_queue_events()[..],
            [QueueEvent::Enqueue { .. }]
        ));
    }

    #[tokio::test]
    async fn ivr_bookings_respect_capacity_api_bookings_do_not() {
        let f = fixture();
        let at = t0() + TimeDelta::hours(1);
        f.svc.create(req(Some(at), true)).await.unwrap();
        f.svc
            .create(req(Some(at + TimeDelta::minutes(5)), true))
            .await
            .unwrap();
        assert!(matches!(
            f.svc.create(req(Some(at), true)).await,
            Err(ServiceError::SlotUnavailable(_))
        ));
        f.svc.create(req(Some(at), false)).await.unwrap();
        let day = t0().date_naive();
        let slots = f.svc.availability("S_VQ_CB", day, day).unwrap();
        let s = slots.iter().find(|s| s.start == at).unwrap();
        assert_eq!((s.capacity, s.booked), (2, 3));
        // Closed at 20:00: an IVR booking is refused.
        assert!(matches!(
            f.svc
                .create(req(Some(t0() + TimeDelta::hours(11)), true))
                .await,
            Err(ServiceError::SlotUnavailable(_))
        ));
    }

    #[tokio::test]
    async fn capacity_under_a_thousand_concurrent_bookings_is_exact() {
        let f = fixture();
        let at = t0() + TimeDelta::hours(1);
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let svc = f.svc.clone();
            tasks.push(tokio::spawn(async move {
                svc.create(req(Some(at), true)).await.is_ok()
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += t.await.unwrap() as usize;
        }
        assert_eq!(ok, 2);
    }

    #[tokio::test]
    async fn rules_and_flags_refuse_with_reasons() {
        let f = fixture();
        f.svc.set_number_rule(
            "S_VQ_CB",
            Some(
                NumberRule::new(NumberRuleSpec {
                    name: "fr".into(),
                    countries: ["FR".to_string()].into(),
                    blocked_patterns: vec!["^33899".into()],
                })
                .unwrap(),
            ),
        );
        let mut r = req(None, false);
        r.callback.phone = "+442079460000".into();
        assert!(matches!(
            f.svc.create(r).await,
            Err(ServiceError::Number(
                NumberRejection::CountryNotAllowed { .. }
            ))
        ));
        let mut r = req(None, false);
        r.callback.phone = "+33899123456".into();
        assert!(matches!(
            f.svc.create(r).await,
            Err(ServiceError::Number(NumberRejection::Blocked { .. }))
        ));
        // The flags apply to an API booking only when it asks for the checks.
        let mut r = req(None, true);
        r.callback.queue = "N_VQ_CB".into();
        assert!(matches!(
            f.svc.create(r).await,
            Err(ServiceError::Disabled {
                kind: "immediate",
                ..
            })
        ));
        let mut r = req(None, false);
        r.callback.queue = "nope".into();
        assert!(matches!(
            f.svc.create(r).await,
            Err(ServiceError::UnknownQueue(_))
        ));
    }

    #[tokio::test]
    async fn cancel_reschedule_recreate_and_bulk_cancel() {
        let f = fixture();
        let at = t0() + TimeDelta::hours(1);
        let a = f.svc.create(req(Some(at), true)).await.unwrap();
        let b = f
            .svc
            .reschedule(a.id, at + TimeDelta::hours(1), "supervisor")
            .await
            .unwrap();
        assert_eq!(
            f.svc.get(a.id).await.unwrap().state,
            CallbackState::Completed(CompletionReason::Rescheduled)
        );
        assert_eq!(b.previous_id, Some(a.id));
        let c = f.svc.create(req(None, false)).await.unwrap();
        assert!(matches!(
            f.svc.reschedule(c.id, at, "x").await,
            Err(ServiceError::Lifecycle(LifecycleError::NotScheduled(_)))
        ));
        let cancelled = f.svc.cancel(c.id, "app", false).await.unwrap();
        assert_eq!(
            cancelled.state,
            CallbackState::Completed(CompletionReason::Cancelled)
        );
        let again = f.svc.recreate(c.id, None, "admin").await.unwrap();
        assert_eq!(again.state, CallbackState::Queued);
        let bulk = f
            .svc
            .cancel_range("S_VQ_CB", t0(), t0() + TimeDelta::days(1), "admin")
            .await
            .unwrap();
        assert_eq!(bulk.cancelled.len(), 2);
        assert!(f.svc.active().is_empty());
    }

    #[tokio::test]
    async fn recovery_resolves_records_left_in_flight_by_the_restart_rule() {
        let f = fixture();
        let mut ids = Vec::new();
        // Ringing at the stop: one with attempts left, one on its last allowed attempt (3).
        for earlier in [0, 2] {
            let rec = f.svc.create(req(None, false)).await.unwrap();
            f.svc
                .update(rec.id, |r| {
                    for _ in 0..earlier {
                        r.record_attempt(t0(), crate::call::DialResult::Busy, 1);
                    }
                    r.transition(CallbackState::Routing, t0(), "router", "agent a")?;
                    Ok(())
                })
                .await
                .unwrap();
            ids.push(rec.id);
        }
        // With an agent at the stop.
        let talking = f.svc.create(req(None, false)).await.unwrap();
        f.svc.begin_attempt(talking.id, "a").await.unwrap();
        f.svc.connected(talking.id, "a").await.unwrap();
        let store = Arc::new(SqliteStore::open(f._dir.path()).unwrap());
        let svc2 =
            CallbackService::new(f.svc.config(), f.clock.shared(), store, f.notifier.clone());
        svc2.recover().await.unwrap();
        let again = svc2.get(ids[0]).await.unwrap();
        assert_eq!(again.state, CallbackState::Queued);
        assert_eq!(again.attempts(), 1);
        assert_eq!(again.queue_time, t0(), "keeps its place");
        assert!(again.next_attempt_at.is_some());
        assert_eq!(
            svc2.get(ids[1]).await.unwrap().state,
            CallbackState::Completed(CompletionReason::RedialLimitReached)
        );
        assert_eq!(
            svc2.get(talking.id).await.unwrap().state,
            CallbackState::Completed(CompletionReason::EngineRestarted)
        );
        assert_eq!(svc2.active().len(), 1);
    }

    #[tokio::test]
    async fn recovery_restores_queue_places_slots_and_deadlines() {
        let f = fixture();
        let at = t0() + TimeDelta::hours(1);
        let s = f.svc.create(req(Some(at), true)).await.unwrap();
        let q = f.svc.create(req(None, false)).await.unwrap();
        // A second service on the same store, as after a crash.
        let store = Arc::new(SqliteStore::open(f._dir.path()).unwrap());
        let config = f.svc.config();
        let svc2 = CallbackService::new(config, f.clock.shared(), store, f.notifier.clone());
        assert_eq!(svc2.recover().await.unwrap(), 2);
        assert_eq!(
            svc2.drain_queue_events(),
            vec![QueueEvent::Enqueue {
                id: q.id,
                queue: "S_VQ_CB".into(),
                priority: 0,
                queue_time: t0()
            }]
        );
        let day = t0().date_naive();
        let slot = svc2
            .availability("S_VQ_CB", day, day)
            .unwrap()
            .into_iter()
            .find(|x| x.start == at)
            .unwrap();
        assert_eq!(slot.booked, 1);
        // The engine was down past the desired time: the next tick queues it.
        f.clock.set(at + TimeDelta::minutes(5));
        svc2.tick().await.unwrap();
        assert_eq!(svc2.get(s.id).await.unwrap().state, CallbackState::Queued);
    }

    /// A store whose next callback save, once armed, waits for a release (a slow fsync).
    struct GatedStore {
        inner: Arc<dyn Store>,
        armed: std::sync::atomic::AtomicBool,
        entered: tokio::sync::Notify,
        release: tokio::sync::Notify,
    }

    #[async_trait::async_trait]
    impl Store for GatedStore {
        async fn save_callbacks(&self, records: Vec<CallbackRecord>) -> Result<(), StoreError> {
            if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
                self.entered.notify_one();
                self.release.notified().await;
            }
            self.inner.save_callbacks(records).await
        }
        async fn callback(&self, id: Uuid) -> Result<Option<CallbackRecord>, StoreError> {
            self.inner.callback(id).await
        }
        async fn active_callbacks(&self) -> Result<Vec<CallbackRecord>, StoreError> {
            self.inner.active_callbacks().await
        }
        async fn query_callbacks_page(
            &self,
            filter: &crate::store::CallbackFilter,
        ) -> Result<(Vec<CallbackRecord>, Option<crate::store::PageCursor>), StoreError> {
            self.inner.query_callbacks_page(filter).await
        }
        async fn remove_completed_before(
            &self,
            cutoff: DateTime<Utc>,
        ) -> Result<usize, StoreError> {
            self.inner.remove_completed_before(cutoff).await
        }
        async fn save_documents(
            &self,
            docs: Vec<crate::store::Document>,
        ) -> Result<(), StoreError> {
            self.inner.save_documents(docs).await
        }
        async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
            self.inner.delete_document(kind, id).await
        }
        async fn documents(&self, kind: &str) -> Result<Vec<crate::store::Document>, StoreError> {
            self.inner.documents(kind).await
        }
    }

    /// The end-of-day purge fires while the dialer's QUEUED → ROUTING write is being made
    /// durable: the purge must see ROUTING ("call in progress") and leave the callback alone,
    /// never purge it on the stale QUEUED record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn purge_during_a_routing_write_sees_routing_and_skips() {
        let gate = Arc::new(std::sync::OnceLock::<Arc<GatedStore>>::new());
        let g = gate.clone();
        let f = fixture_over(move |inner| {
            let s = Arc::new(GatedStore {
                inner,
                armed: std::sync::atomic::AtomicBool::new(false),
                entered: tokio::sync::Notify::new(),
                release: tokio::sync::Notify::new(),
            });
            let _ = g.set(s.clone());
            s
        });
        let gate = gate.get().unwrap().clone();
        let rec = f.svc.create(req(None, false)).await.unwrap();
        f.svc.drain_queue_events();

        // A: the router picks it; its save is held.
        gate.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        let svc = f.svc.clone();
        let a = tokio::spawn(async move { svc.begin_attempt(rec.id, "agent1").await });
        gate.entered.notified().await;

        // B: the purge deadline fires meanwhile.
        f.clock.advance(TimeDelta::minutes(60));
        let svc = f.svc.clone();
        let b = tokio::spawn(async move { svc.tick().await });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        gate.release.notify_one();
        let routed = a.await.unwrap().unwrap();
        assert_eq!(routed.state, CallbackState::Routing);
        assert_eq!(b.await.unwrap().unwrap(), 1);

        let now = f.svc.get(rec.id).await.unwrap();
        assert_eq!(now.state, CallbackState::Routing, "memory: {now:?}");
        let stored = gate.inner.callback(rec.id).await.unwrap().unwrap();
        assert_eq!(stored.state, CallbackState::Routing, "store: {stored:?}");
        assert!(f.svc.is_alive(rec.id));
        assert!(f.notifier.kinds_for(rec.id).is_empty());
        assert!(
            !f.svc
                .drain_queue_events()
                .iter()
                .any(|e| matches!(e, QueueEvent::Withdraw { .. })),
            "a callback being dialled was withdrawn"
        );
    }
}

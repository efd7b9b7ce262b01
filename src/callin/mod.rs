//! Click-to-Call-In: an app asks for a number to call (and an access code); when the customer
//! dials it, the Click-to-Call-In Match block recognises them by DNIS, ANI and code and routes
//! them with the priority and data of their request.
//!
//! All state sits behind one mutex that is never held across an await: requests arrive at human
//! rates, and one lock makes DNIS uniqueness and match-at-most-once exact under concurrency.

pub(crate) mod book;
pub(crate) mod group;

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

pub use book::{GroupBook, GroupBookError, GroupSource, GroupView};
pub use group::{CallInGroup, DnisEntry, GroupError, import_pool_csv};

/// Call-in records kept for listing.
pub const KEPT_RECORDS: usize = 5000;
/// Wrong access codes accepted in one call before it is dropped.
pub const MAX_WRONG_CODES_PER_CALL: u32 = 3;
/// Wrong access codes accepted from one calling number per minute.
pub const MAX_WRONG_CODES_PER_ANI_PER_MINUTE: usize = 5;

/// Where a call-in request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallInState {
    /// Waiting for the customer to call.
    Pending,
    /// Matched by a call.
    Completed,
    /// Not called before its expiry.
    Expired,
    /// Withdrawn (its callback ended).
    Cancelled,
}

/// Store document kind of call-in requests.
pub const DOC_KIND: &str = "callin_request";

/// A request as a store document.
pub fn to_document(r: &CallInRequest) -> crate::store::Document {
    crate::store::Document {
        kind: DOC_KIND.to_string(),
        id: r.id.to_string(),
        body: serde_json::to_value(r).unwrap_or_default(),
    }
}

/// Saves requests in the background (state changes after creation: matched, expired); a crash
/// before the write leaves the previous state, which expiry corrects.
pub fn persist_later(
    store: &std::sync::Arc<dyn crate::store::Store>,
    requests: Vec<CallInRequest>,
) {
    if requests.is_empty() {
        return;
    }
    let store = store.clone();
    let docs = requests.iter().map(to_document).collect();
    tokio::spawn(async move {
        if let Err(e) = store.save_documents(docs).await {
            tracing::warn!(error = %e, "call-in request state not saved");
        }
    });
}

/// How the matched call is to be routed (the Match block's routing parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingData {
    /// Virtual queue to route to.
    pub queue: Option<String>,
    /// Skill expression for the agent.
    pub skill_expression: Option<String>,
    /// Routing priority.
    pub priority: i64,
    /// Data attached to the call.
    pub user_data: BTreeMap<String, String>,
}

/// A call-in request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInRequest {
    /// Id.
    pub id: Uuid,
    /// The group it was made for.
    pub group: String,
    /// The number the customer must dial.
    pub dnis: String,
    /// The code the customer must enter, when the group generates codes.
    pub access_code: Option<String>,
    /// The customer's number, when the app sent it.
    pub ani: Option<String>,
    /// How to route the matched call.
    pub routing: RoutingData,
    /// The callback it belongs to (Click-to-Call-In delayed).
    pub callback_id: Option<Uuid>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// After this instant it no longer matches.
    pub expires_at: DateTime<Utc>,
    /// State.
    pub state: CallInState,
    /// When it was matched.
    pub matched_at: Option<DateTime<Utc>>,
}

/// What an app sends to get a number to call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCallIn {
    /// Group name.
    pub group: String,
    /// The customer's number, if known.
    pub ani: Option<String>,
    /// Routing parameters for the matched call.
    pub routing: RoutingData,
    /// The callback this request serves.
    pub callback_id: Option<Uuid>,
}

/// Which facts of a call the Match block compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MatchCriteria {
    /// Compare the access code the caller entered.
    pub access_code: bool,
    /// Compare the calling number.
    pub ani: bool,
    /// Compare the dialled number.
    pub dnis: bool,
}

/// The facts of an inbound call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFacts {
    /// Dialled number.
    pub dnis: String,
    /// Calling number.
    pub ani: String,
    /// Code entered, if collected.
    pub access_code: Option<String>,
}

/// Why a call-in request could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallInError {
    /// No such group.
    #[error("no Click-to-Call-In group named `{0}`")]
    UnknownGroup(String),
    /// Every number of a unique-DNIS group is held by a live request.
    #[error("every number of group `{0}` is in use by a live request; try again shortly")]
    NoFreeDnis(String),
    /// A group with this name exists (names are immutable, so a save cannot rename).
    #[error("a group named `{0}` already exists")]
    GroupExists(String),
    /// The group definition is invalid.
    #[error(transparent)]
    Group(#[from] GroupError),
}

/// Why a call was not matched; the flow tells the caller and drops or retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MatchFailure {
    /// Nothing matches the criteria (e.g. a wrong code).
    #[error("no request matches")]
    NoMatch,
    /// The matching request has expired.
    #[error("the request has expired")]
    Expired,
    /// The matching request was already used by a call.
    #[error("the request was already used")]
    AlreadyUsed,
    /// The request's callback has ended (purged, cancelled, completed).
    #[error("the callback of this request has ended")]
    CallbackEnded,
    /// Too many wrong codes from this number: the call is dropped.
    #[error("too many wrong access codes from this number")]
    TooManyAttempts,
    /// The Match block has no criterion configured.
    #[error("no match criterion configured")]
    NoCriteria,
    /// The request matched but has nowhere to go (no queue, or its queue or callback is
    /// unknown): it is kept for a later call and the caller hears an apology.
    #[error("the matched request cannot be routed")]
    Unroutable,
}

#[derive(Default)]
struct Inner {
    groups: HashMap<String, GroupState>,
    requests: HashMap<Uuid, CallInRequest>,
    order: VecDeque<Uuid>,
    failures: HashMap<String, VecDeque<DateTime<Utc>>>,
}

struct GroupState {
    group: CallInGroup,
    leased: HashSet<String>,
    cursor: usize,
}

/// The Click-to-Call-In registry: groups, live requests and matching.
#[derive(Default)]
pub struct CallIn {
    inner: Mutex<Inner>,
}

impl CallIn {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// Adds a group (names are immutable: an existing name is refused).
    pub fn add_group(&self, group: CallInGroup) -> Result<(), CallInError> {
        group.validate()?;
        let mut inner = self.lock();
        if inner.groups.contains_key(&group.name) {
            return Err(CallInError::GroupExists(group.name));
        }
        // A group deleted and created again keeps the numbers its live requests still hold.
        let leased = inner
            .requests
            .values()
            .filter(|r| r.group == group.name && r.state == CallInState::Pending)
            .map(|r| group::normalize_dnis(&r.dnis))
            .collect();
        inner.groups.insert(
            group.name.clone(),
            GroupState {
                group,
                leased,
                cursor: 0,
            },
        );
        Ok(())
    }

    /// One group by name.
    pub fn group(&self, name: &str) -> Option<CallInGroup> {
        self.lock().groups.get(name).map(|g| g.group.clone())
    }

    /// Replaces a group's pool and settings, keeping its name and live leases.
    pub fn update_group(&self, group: CallInGroup) -> Result<(), CallInError> {
        group.validate()?;
        let mut inner = self.lock();
        let state = inner
            .groups
            .get_mut(&group.name)
            .ok_or_else(|| CallInError::UnknownGroup(group.name.clone()))?;
        state.group = group;
        Ok(())
    }

    /// Removes a group; true if it existed.
    pub fn remove_group(&self, name: &str) -> bool {
        self.lock().groups.remove(name).is_some()
    }

    /// Every group, by name.
    pub fn groups(&self) -> Vec<CallInGroup> {
        let mut v: Vec<_> = self
            .lock()
            .groups
            .values()
            .map(|g| g.group.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Makes a request: picks a DNIS (a free one for unique-DNIS groups), generates a random
    /// access code when the group wants one, and records it until its expiry.
    pub fn request(
        &self,
        new: NewCallIn,
        now: DateTime<Utc>,
    ) -> Result<CallInRequest, CallInError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let state = inner
            .groups
            .get_mut(&new.group)
            .ok_or_else(|| CallInError::UnknownGroup(new.group.clone()))?;
        let pool = &state.group.dnis;
        let mut chosen = None;
        for step in 0..pool.len() {
            let i = (state.cursor + step) % pool.len();
            // Handed out as configured; leased and matched by the routed form (with `+`).
            let number = pool[i].number.trim().to_string();
            if !state.group.unique_dnis || !state.leased.contains(&group::normalize_dnis(&number)) {
                chosen = Some(number);
                state.cursor = i + 1;
                break;
            }
        }
        let dnis = chosen.ok_or_else(|| CallInError::NoFreeDnis(new.group.clone()))?;
        let access_code = state.group.generate_access_code.then(|| {
            let len = state.group.access_code_length as usize;
            loop {
                let code = random_code(len);
                let taken = inner.requests.values().any(|r| {
                    r.group == new.group
                        && r.state == CallInState::Pending
                        && r.access_code.as_deref() == Some(&code)
                });
                if !taken {
                    break code;
                }
            }
        });
        if state.group.unique_dnis {
            state.leased.insert(group::normalize_dnis(&dnis));
        }
        let req = CallInRequest {
            id: Uuid::new_v4(),
            group: new.group,
            dnis,
            access_code,
            ani: new.ani,
            routing: new.routing,
            callback_id: new.callback_id,
            created_at: now,
            expires_at: now + TimeDelta::seconds(state.group.expiry_seconds as i64),
            state: CallInState::Pending,
            matched_at: None,
        };
        inner.requests.insert(req.id, req.clone());
        inner.order.push_back(req.id);
        while inner.order.len() > KEPT_RECORDS {
            if let Some(old) = inner.order.pop_front()
                && let Some(r) = inner.requests.remove(&old)
            {
                release(inner, &r);
            }
        }
        Ok(req)
    }

    /// Matches an inbound call; a request matches at most once, and only while pending and
    /// unexpired. Wrong codes are counted per calling number and refused past the limit.
    pub fn match_call(
        &self,
        criteria: MatchCriteria,
        call: &CallFacts,
        now: DateTime<Utc>,
        callback_alive: &dyn Fn(Uuid) -> bool,
    ) -> Result<CallInRequest, MatchFailure> {
        self.match_routable(criteria, call, now, callback_alive, &|_| Ok(()))
    }

    /// [`CallIn::match_call`], and the matched request is used up only when `route` finds
    /// where to send the call; otherwise it stays pending, a warning is logged and the caller
    /// is refused with [`MatchFailure::Unroutable`].
    pub fn match_routable(
        &self,
        criteria: MatchCriteria,
        call: &CallFacts,
        now: DateTime<Utc>,
        callback_alive: &dyn Fn(Uuid) -> bool,
        route: &dyn Fn(&CallInRequest) -> Result<(), String>,
    ) -> Result<CallInRequest, MatchFailure> {
        self.match_first_of(&[criteria], call, now, callback_alive, route)
            .map(|(r, _)| r)
    }

    /// [`CallIn::match_routable`] trying each combination of criteria in turn (Designer's
    /// outcome per combination of matched criteria): the first that finds a live request
    /// matches, and says which it was. The failure, when none does, is the first one's.
    pub fn match_first_of(
        &self,
        combos: &[MatchCriteria],
        call: &CallFacts,
        now: DateTime<Utc>,
        callback_alive: &dyn Fn(Uuid) -> bool,
        route: &dyn Fn(&CallInRequest) -> Result<(), String>,
    ) -> Result<(CallInRequest, MatchCriteria), MatchFailure> {
        let Some(&criteria) = combos.first() else {
            return Err(MatchFailure::NoCriteria);
        };
        if combos.iter().any(|c| !(c.access_code || c.ani || c.dnis)) {
            return Err(MatchFailure::NoCriteria);
        }
        let mut guard = self.lock();
        let inner = &mut *guard;
        let recent = inner.failures.entry(call.ani.clone()).or_default();
        while recent
            .front()
            .is_some_and(|t| *t <= now - TimeDelta::minutes(1))
        {
            recent.pop_front();
        }
        if combos.iter().any(|c| c.access_code)
            && recent.len() >= MAX_WRONG_CODES_PER_ANI_PER_MINUTE
        {
            tracing::warn!(ani = %call.ani, "call-in refused: too many wrong access codes");
            return Err(MatchFailure::TooManyAttempts);
        }
        let dnis = group::normalize_dnis(&call.dnis);
        let candidates_of = |criteria: &MatchCriteria| -> Vec<Uuid> {
            inner
                .order
                .iter()
                .rev()
                .filter_map(|id| inner.requests.get(id))
                .filter(|r| {
                    (!criteria.access_code
                        || call.access_code.is_some() && r.access_code == call.access_code)
                        && (!criteria.ani || r.ani.as_deref() == Some(call.ani.as_str()))
                        && (!criteria.dnis || group::normalize_dnis(&r.dnis) == dnis)
                })
                .map(|r| r.id)
                .collect()
        };
        let is_live = |id: &Uuid| {
            inner
                .requests
                .get(id)
                .is_some_and(|r| r.state == CallInState::Pending && r.expires_at > now)
        };
        let candidates = candidates_of(&criteria);
        let live = candidates
            .iter()
            .find(|id| is_live(id))
            .map(|id| (*id, criteria))
            .or_else(|| {
                combos[1..].iter().find_map(|c| {
                    candidates_of(c)
                        .into_iter()
                        .find(|id| is_live(id))
                        .map(|id| (id, *c))
                })
            });
        let Some((id, matched_by)) = live else {
            let failure = candidates
                .iter()
                .filter_map(|id| inner.requests.get(id))
                .map(|r| match r.state {
                    CallInState::Pending | CallInState::Expired => MatchFailure::Expired,
                    CallInState::Completed => MatchFailure::AlreadyUsed,
                    CallInState::Cancelled => MatchFailure::CallbackEnded,
                })
                .next()
                .unwrap_or(MatchFailure::NoMatch);
            if criteria.access_code && failure == MatchFailure::NoMatch {
                if let Some(q) = inner.failures.get_mut(&call.ani) {
                    q.push_back(now);
                }
                tracing::info!(ani = %call.ani, dnis = %call.dnis, "call-in: wrong access code");
            }
            return Err(failure);
        };
        let Some(req) = inner.requests.get_mut(&id) else {
            return Err(MatchFailure::NoMatch);
        };
        if let Some(cb) = req.callback_id
            && !callback_alive(cb)
        {
            req.state = CallInState::Cancelled;
            let r = req.clone();
            release(inner, &r);
            return Err(MatchFailure::CallbackEnded);
        }
        if let Err(why) = route(req) {
            tracing::warn!(request = %req.id, group = %req.group, ani = %call.ani, reason = %why,
                "call-in: matched request cannot be routed; kept for another call");
            return Err(MatchFailure::Unroutable);
        }
        req.state = CallInState::Completed;
        req.matched_at = Some(now);
        // The record shows who called: the app may not have known the number.
        if req.ani.is_none() && !call.ani.is_empty() {
            req.ani = Some(call.ani.clone());
        }
        let r = req.clone();
        release(inner, &r);
        Ok((r, matched_by))
    }

    /// Marks pending requests past their expiry as EXPIRED and frees their numbers.
    pub fn expire_due(&self, now: DateTime<Utc>) -> Vec<Uuid> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let due: Vec<Uuid> = inner
            .requests
            .values()
            .filter(|r| r.state == CallInState::Pending && r.expires_at <= now)
            .map(|r| r.id)
            .collect();
        for id in &due {
            if let Some(r) = inner.requests.get_mut(id) {
                r.state = CallInState::Expired;
                let r = r.clone();
                release(inner, &r);
            }
        }
        due
    }

    /// Puts back requests read from the store after a restart: pending ones keep their DNIS
    /// (for unique-DNIS groups) until they match or expire; past ones are kept for listing.
    pub fn restore(&self, requests: Vec<CallInRequest>) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut requests = requests;
        requests.sort_by_key(|r| r.created_at);
        for r in requests {
            if r.state == CallInState::Pending
                && let Some(g) = inner.groups.get_mut(&r.group)
            {
                g.leased.insert(group::normalize_dnis(&r.dnis));
            }
            inner.order.push_back(r.id);
            inner.requests.insert(r.id, r);
        }
        while inner.order.len() > KEPT_RECORDS {
            if let Some(old) = inner.order.pop_front()
                && let Some(r) = inner.requests.remove(&old)
            {
                release(inner, &r);
            }
        }
    }

    /// Drops a request that could not be made durable (it was never handed out).
    pub fn forget(&self, id: Uuid) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Some(r) = inner.requests.remove(&id) {
            inner.order.retain(|x| *x != id);
            release(inner, &r);
        }
    }

    /// The earliest expiry among pending requests (for the scheduler).
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.lock()
            .requests
            .values()
            .filter(|r| r.state == CallInState::Pending)
            .map(|r| r.expires_at)
            .min()
    }

    /// One request.
    pub fn get(&self, id: Uuid) -> Option<CallInRequest> {
        self.lock().requests.get(&id).cloned()
    }

    /// The kept records (last 5,000), filtered by state and creation time, newest first.
    pub fn records(
        &self,
        state: Option<CallInState>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Vec<CallInRequest> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .rev()
            .filter_map(|id| inner.requests.get(id))
            .filter(|r| state.is_none_or(|s| r.state == s))
            .filter(|r| {
                from.is_none_or(|f| r.created_at >= f) && to.is_none_or(|t| r.created_at < t)
            })
            .cloned()
            .collect()
    }
}

/// A column of the Call-In records list, to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordColumn {
    /// Request id.
    Id,
    /// State name.
    State,
    /// Creation time (the default).
    #[default]
    Created,
    /// Calling number (requests without one first).
    Ani,
    /// Number handed out.
    Dnis,
    /// Expiry time.
    Expiry,
    /// Group name.
    Group,
}

/// Which kept records to list, in what order, and which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordQuery {
    /// Only this state.
    pub state: Option<CallInState>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// Sort column.
    pub sort: RecordColumn,
    /// Largest first.
    pub descending: bool,
    /// Records skipped (paging).
    pub offset: usize,
    /// Most records returned.
    pub limit: usize,
}

impl Default for RecordQuery {
    fn default() -> Self {
        RecordQuery {
            state: None,
            from: None,
            to: None,
            sort: RecordColumn::Created,
            descending: true,
            offset: 0,
            limit: 500,
        }
    }
}

/// One page of records and how many matched in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordPage {
    /// Records matching the filter, before paging.
    pub total: usize,
    /// This page.
    pub records: Vec<CallInRequest>,
}

fn state_name(s: CallInState) -> &'static str {
    match s {
        CallInState::Pending => "PENDING",
        CallInState::Completed => "COMPLETED",
        CallInState::Expired => "EXPIRED",
        CallInState::Cancelled => "CANCELLED",
    }
}

impl CallIn {
    /// The kept records filtered, sorted by a column (ties by creation time, then id) and paged.
    pub fn query_records(&self, q: &RecordQuery) -> RecordPage {
        let mut rows = self.records(q.state, q.from, q.to);
        rows.sort_by(|a, b| {
            let by = match q.sort {
                RecordColumn::Id => a.id.cmp(&b.id),
                RecordColumn::State => state_name(a.state).cmp(state_name(b.state)),
                RecordColumn::Created => std::cmp::Ordering::Equal,
                RecordColumn::Ani => a.ani.cmp(&b.ani),
                RecordColumn::Dnis => a.dnis.cmp(&b.dnis),
                RecordColumn::Expiry => a.expires_at.cmp(&b.expires_at),
                RecordColumn::Group => a.group.cmp(&b.group),
            };
            let ord = by
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id));
            if q.descending { ord.reverse() } else { ord }
        });
        let total = rows.len();
        let records = rows.into_iter().skip(q.offset).take(q.limit).collect();
        RecordPage { total, records }
    }
}

fn release(inner: &mut Inner, r: &CallInRequest) {
    if let Some(g) = inner.groups.get_mut(&r.group) {
        g.leased.remove(&group::normalize_dnis(&r.dnis));
    }
}

/// A uniformly random numeric code from the thread's CSPRNG (ChaCha, seeded by the OS).
fn random_code(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::clock::test_t0 as t0;

    /// A call from `ani` to the number `r` handed out, keying `code`.
    fn facts(r: &CallInRequest, ani: &str, code: Option<String>) -> CallFacts {
        CallFacts {
            dnis: r.dnis.clone(),
            ani: ani.into(),
            access_code: code,
        }
    }

    fn group(unique: bool, pool: usize) -> CallInGroup {
        CallInGroup {
            name: "app".into(),
            dnis: (0..pool)
                .map(|i| DnisEntry {
                    number: format!("+3318000000{i}"),
                    description: String::new(),
                })
                .collect(),
            generate_access_code: true,
            access_code_length: 6,
            expiry_seconds: 30,
            unique_dnis: unique,
        }
    }

    fn registry(unique: bool, pool: usize) -> CallIn {
        let c = CallIn::new();
        c.add_group(group(unique, pool)).unwrap();
        c
    }

    fn new(ani: &str) -> NewCallIn {
        NewCallIn {
            group: "app".into(),
            ani: Some(ani.into()),
            routing: RoutingData {
                queue: Some("Sales_VQ".into()),
                priority: 7,
                ..Default::default()
            },
            callback_id: None,
        }
    }

    const CODE: MatchCriteria = MatchCriteria {
        access_code: true,
        ani: false,
        dnis: true,
    };
    fn alive(_: Uuid) -> bool {
        true
    }

    #[test]
    fn a_request_returns_number_code_and_expiry_and_matches_once() {
        let c = registry(false, 2);
        let r = c.request(new("+33611111111"), t0()).unwrap();
        let code = r.access_code.clone().unwrap();
        assert_eq!(code.len(), 6);
        assert!(code.chars().all(|ch| ch.is_ascii_digit()));
        assert_eq!(r.expires_at, t0() + TimeDelta::seconds(30));
        let call = facts(&r, "+33611111111", Some(code));
        let m = c
            .match_call(CODE, &call, t0() + TimeDelta::seconds(10), &alive)
            .unwrap();
        assert_eq!((m.id, m.routing.priority), (r.id, 7));
        assert_eq!(
            c.match_call(CODE, &call, t0() + TimeDelta::seconds(11), &alive),
            Err(MatchFailure::AlreadyUsed)
        );
        assert_eq!(c.get(r.id).unwrap().state, CallInState::Completed);
    }

    #[test]
    fn expired_requests_do_not_match() {
        let c = registry(false, 1);
        let r = c.request(new("+33611111111"), t0()).unwrap();
        let call = facts(&r, "+33611111111", r.access_code.clone());
        assert_eq!(
            c.match_call(CODE, &call, t0() + TimeDelta::seconds(30), &alive),
            Err(MatchFailure::Expired)
        );
        assert_eq!(c.expire_due(t0() + TimeDelta::seconds(30)), vec![r.id]);
        assert_eq!(c.records(Some(CallInState::Expired), None, None).len(), 1);
        assert_eq!(
            c.match_call(CODE, &call, t0() + TimeDelta::seconds(31), &alive),
            Err(MatchFailure::Expired)
        );
    }

    #[test]
    fn match_by_ani_and_dnis_without_code() {
        let c = registry(false, 3);
        let r = c.request(new("+33622222222"), t0()).unwrap();
        let crit = MatchCriteria {
            access_code: false,
            ani: true,
            dnis: true,
        };
        let wrong_ani = facts(&r, "+33699999999", None);
        assert_eq!(
            c.match_call(crit, &wrong_ani, t0(), &alive),
            Err(MatchFailure::NoMatch)
        );
        let right = facts(&r, "+33622222222", None);
        assert_eq!(c.match_call(crit, &right, t0(), &alive).unwrap().id, r.id);
        assert_eq!(
            c.match_call(MatchCriteria::default(), &right, t0(), &alive),
            Err(MatchFailure::NoCriteria)
        );
    }

    #[test]
    fn a_request_of_an_ended_callback_fails() {
        let c = registry(false, 1);
        let mut n = new("+33611111111");
        n.callback_id = Some(Uuid::new_v4());
        let r = c.request(n, t0()).unwrap();
        let call = facts(&r, "+33611111111", r.access_code.clone());
        assert_eq!(
            c.match_call(CODE, &call, t0(), &|_| false),
            Err(MatchFailure::CallbackEnded)
        );
        assert_eq!(c.get(r.id).unwrap().state, CallInState::Cancelled);
    }

    #[test]
    fn wrong_codes_are_limited_per_ani_per_minute() {
        let c = registry(false, 1);
        let r = c.request(new("+33611111111"), t0()).unwrap();
        let right = r.access_code.clone().unwrap();
        let wrong = if right == "000000" {
            "111111"
        } else {
            "000000"
        };
        let mut call = facts(&r, "+33655555555", Some(wrong.into()));
        for _ in 0..MAX_WRONG_CODES_PER_ANI_PER_MINUTE {
            assert_eq!(
                c.match_call(CODE, &call, t0(), &alive),
                Err(MatchFailure::NoMatch)
            );
        }
        call.access_code = Some(right);
        assert_eq!(
            c.match_call(CODE, &call, t0() + TimeDelta::seconds(5), &alive),
            Err(MatchFailure::TooManyAttempts)
        );
        // A minute later the number may try again.
        assert_eq!(
            c.match_call(CODE, &call, t0() + TimeDelta::seconds(61), &alive),
            Err(MatchFailure::Expired)
        );
    }

    #[test]
    fn unique_dnis_is_never_handed_out_twice_even_concurrently() {
        let c = Arc::new(registry(true, 50));
        let got: Vec<Result<CallInRequest, CallInError>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let c = c.clone();
                    s.spawn(move || {
                        (0..10)
                            .map(|j| c.request(new(&format!("+336{i}{j:07}")), t0()))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let ok: Vec<_> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ok.len(), 50);
        let numbers: HashSet<_> = ok.iter().map(|r| r.dnis.clone()).collect();
        assert_eq!(numbers.len(), 50);
        assert!(
            got.iter()
                .filter(|r| r.is_err())
                .all(|r| matches!(r, Err(CallInError::NoFreeDnis(_))))
        );
        // Expiry frees the numbers.
        c.expire_due(t0() + TimeDelta::seconds(30));
        assert!(
            c.request(new("+33600000000"), t0() + TimeDelta::seconds(31))
                .is_ok()
        );
    }

    #[test]
    fn group_names_are_immutable_and_unknown_groups_refused() {
        let c = registry(false, 1);
        assert_eq!(
            c.add_group(group(false, 1)),
            Err(CallInError::GroupExists("app".into()))
        );
        let mut n = new("+33611111111");
        n.group = "nope".into();
        assert_eq!(
            c.request(n, t0()),
            Err(CallInError::UnknownGroup("nope".into()))
        );
    }

    #[test]
    fn a_group_deleted_and_created_again_keeps_the_numbers_live_requests_hold() {
        let c = registry(true, 2);
        let held = c.request(new("+33611111111"), t0()).unwrap();
        assert!(c.remove_group("app"));
        c.add_group(group(true, 2)).unwrap();
        let next = c.request(new("+33622222222"), t0()).unwrap();
        assert_ne!(next.dnis, held.dnis, "a held number was handed out again");
        assert_eq!(
            c.request(new("+33633333333"), t0()),
            Err(CallInError::NoFreeDnis("app".into()))
        );
    }

    #[test]
    fn only_the_last_5000_records_are_kept() {
        let c = registry(false, 1);
        let first = c.request(new("+33611111111"), t0()).unwrap();
        for _ in 0..KEPT_RECORDS {
            c.request(new("+33611111111"), t0()).unwrap();
        }
        assert!(c.get(first.id).is_none());
        assert_eq!(c.records(None, None, None).len(), KEPT_RECORDS);
    }

    #[test]
    fn records_are_filtered_sorted_by_column_and_paged() {
        let c = registry(false, 3);
        let anis = [
            "+33622222222",
            "+33611111111",
            "+33633333333",
            "+33644444444",
        ];
        let made: Vec<CallInRequest> = anis
            .iter()
            .enumerate()
            .map(|(i, a)| {
                c.request(new(a), t0() + TimeDelta::seconds(10 * i as i64))
                    .unwrap()
            })
            .collect();
        // The first two (created at 0 s and 10 s, expiry 30 s) have expired at 45 s.
        c.expire_due(t0() + TimeDelta::seconds(45));
        let ani_of = |p: &RecordPage| -> Vec<String> {
            p.records
                .iter()
                .map(|r| r.ani.clone().unwrap_or_default())
                .collect()
        };
        let by_ani = c.query_records(&RecordQuery {
            sort: RecordColumn::Ani,
            descending: false,
            ..Default::default()
        });
        assert_eq!(by_ani.total, 4);
        assert_eq!(
            ani_of(&by_ani),
            vec![
                "+33611111111",
                "+33622222222",
                "+33633333333",
                "+33644444444"
            ]
        );
        let newest_first = c.query_records(&RecordQuery::default());
        assert_eq!(newest_first.records[0].id, made[3].id);
        let expired = c.query_records(&RecordQuery {
            state: Some(CallInState::Expired),
            sort: RecordColumn::Ani,
            descending: true,
            ..Default::default()
        });
        assert_eq!(ani_of(&expired), vec!["+33622222222", "+33611111111"]);
        let window = c.query_records(&RecordQuery {
            from: Some(t0() + TimeDelta::seconds(10)),
            to: Some(t0() + TimeDelta::seconds(30)),
            sort: RecordColumn::Created,
            descending: false,
            ..Default::default()
        });
        assert_eq!(ani_of(&window), vec!["+33611111111", "+33633333333"]);
        let page = c.query_records(&RecordQuery {
            sort: RecordColumn::State,
            descending: false,
            offset: 1,
            limit: 2,
            ..Default::default()
        });
        assert_eq!(page.total, 4);
        // EXPIRED sorts before PENDING; ties by creation time.
        assert_eq!(
            page.records.iter().map(|r| r.state).collect::<Vec<_>>(),
            vec![CallInState::Expired, CallInState::Pending]
        );
        assert_eq!(page.records[0].id, made[1].id);
    }
}

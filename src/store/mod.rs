//! The only path to durable state. The engine acknowledges a callback (or a call-in request, a
//! rule…) only after the store has made it durable. The embedded implementation is SQLite in WAL
//! mode with group commit; the trait is the seam for PostgreSQL when several nodes share state.
//! [`MemoryStore`] keeps the same contract without a disk; `contract` is the one test suite every
//! backend runs (a new backend adds one line there). [`StoreError`] names no backend's types.

/// The documents of `kind` decoded as `T` (one that cannot be read is logged and skipped).
pub(crate) async fn documents_as<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    kind: &str,
) -> Result<Vec<T>, StoreError> {
    let docs = store.documents(kind).await?;
    Ok(decode_bodies(
        docs.into_iter().map(|d| d.body.to_string()),
        kind,
    ))
}

/// Stored JSON bodies into values. An unreadable one is logged (naming `what`) and left out:
/// one bad record never hides the others (the reload after a restart, a query, the outbox).
pub(crate) fn decode_bodies<T: serde::de::DeserializeOwned>(
    bodies: impl IntoIterator<Item = String>,
    what: &str,
) -> Vec<T> {
    bodies
        .into_iter()
        .filter_map(|b| match serde_json::from_str(&b) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "stored {what} cannot be read; skipped");
                None
            }
        })
        .collect()
}

/// A listing's `limit` as SQL takes it: 0 means no limit.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    if limit == 0 {
        i64::MAX
    } else {
        i64::try_from(limit).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod contract;
pub(crate) mod memory;
pub mod postgres;
pub(crate) mod retention;
pub(crate) mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use thiserror::Error;
use uuid::Uuid;

use crate::callback::CallbackRecord;
use crate::push::{OutboxEntry, OutboxState};

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Why the store could not do what was asked.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database refused or failed (the backend's own message).
    #[error("database error: {0}")]
    Database(String),
    /// A stored document could not be encoded or decoded.
    #[error("stored data is not valid: {0}")]
    Encoding(#[from] serde_json::Error),
    /// The data directory could not be created or opened.
    #[error("cannot open the data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The transaction holding this write failed, so nothing in it was stored.
    #[error("the write was not stored: {0}")]
    NotStored(String),
    /// The writer has stopped (the engine is shutting down, or a commit panicked).
    #[error("the store is closed")]
    Closed,
}

/// Which callbacks a query returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackFilter {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only these queues (a user's line of business); `None` = every queue.
    pub queues: Option<Vec<String>>,
    /// Only this GES state name (`SCHEDULED`, `QUEUED`, …, `COMPLETED`).
    pub state: Option<String>,
    /// Only this phone number.
    pub phone: Option<String>,
    /// Desired time at or after.
    pub from: Option<DateTime<Utc>>,
    /// Desired time before.
    pub to: Option<DateTime<Utc>>,
    /// Skip this many (paging).
    pub offset: usize,
    /// At most this many.
    pub limit: usize,
    /// Keyset paging: only callbacks after this one in the listing's order (see
    /// [`Store::query_callbacks_page`]); cheap however deep, unlike `offset`.
    pub after: Option<PageCursor>,
}

/// Where a page of callbacks ended: the last one's desired time (ms) and row, in the listing's
/// order (newest desired time first, then newest row first). Opaque to API callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    /// Desired time of the last callback of the page, milliseconds since the epoch.
    pub desired_ms: i64,
    /// Its row number in the store.
    pub row: i64,
}

impl PageCursor {
    /// The token given to API callers.
    pub fn token(&self) -> String {
        format!("{}_{}", self.desired_ms, self.row)
    }

    /// A token back into a cursor; `None` when it is not one.
    pub fn parse(token: &str) -> Option<Self> {
        let (ms, row) = token.split_once('_')?;
        Some(PageCursor {
            desired_ms: ms.parse().ok()?,
            row: row.parse().ok()?,
        })
    }
}

/// A generic durable document (rules, Click-to-Call-In groups and requests, audit entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Kind, e.g. `rule`, `callin_group`.
    pub kind: String,
    /// Id within the kind.
    pub id: String,
    /// JSON body.
    pub body: serde_json::Value,
}

impl Document {
    /// A document of `kind` and `id` with `body` as its JSON (a book's rule, group…).
    pub fn of<T: serde::Serialize>(kind: &str, id: &str, body: &T) -> Result<Self, StoreError> {
        Ok(Document {
            kind: kind.to_string(),
            id: id.to_string(),
            body: serde_json::to_value(body)?,
        })
    }
}

/// Stores `doc` together with `also` (the change's audit entry) in one durable write, so a
/// change is never in force without its record.
pub async fn save_with(
    store: &dyn Store,
    doc: Document,
    also: Vec<Document>,
) -> Result<(), StoreError> {
    let mut docs = Vec::with_capacity(1 + also.len());
    docs.push(doc);
    docs.extend(also);
    store.save_documents(docs).await
}

/// Stores what records a deletion (its audit entry) once the deletion is made: the store has
/// no write that deletes and saves at once, so the record follows.
pub async fn record_after(store: &dyn Store, also: Vec<Document>) -> Result<(), StoreError> {
    if also.is_empty() {
        return Ok(());
    }
    store.save_documents(also).await
}

/// A scheduled slot a new callback must fit in: at most `capacity` unfinished scheduled
/// callbacks of `queue` with a desired time in `slot` (see
/// [`Store::save_callback_in_slot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotHold {
    /// The queue.
    pub queue: String,
    /// The slot: its start to its end (excluded).
    pub slot: std::ops::Range<DateTime<Utc>>,
    /// How many the slot takes.
    pub capacity: u32,
}

impl SlotHold {
    /// True when `r` takes a place in this slot: a scheduled callback of the queue, not
    /// completed, desired within the slot.
    pub fn counts(&self, r: &CallbackRecord) -> bool {
        r.queue == self.queue
            && r.kind == crate::callback::CallbackType::Scheduled
            && !r.state.is_completed()
            && self.slot.contains(&r.desired_time)
    }
}

/// Unfinished callbacks of one queue in one state (a row of [`Store::count_active`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StateCount {
    /// The queue.
    pub queue: String,
    /// The GES state name (`SCHEDULED`, `QUEUED`, …).
    pub state: String,
    /// How many.
    pub count: usize,
    /// Of the QUEUED ones, how many wait for a retry time (held out of the line).
    pub held_for_retry: usize,
}

/// Durable state for the engine.
#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts or replaces callbacks; returns once they are durable.
    async fn save_callbacks(&self, records: Vec<CallbackRecord>) -> Result<(), StoreError>;

    /// One callback by id.
    async fn callback(&self, id: Uuid) -> Result<Option<CallbackRecord>, StoreError>;

    /// Every callback not yet COMPLETED, ordered as it was created (the reload after a restart).
    async fn active_callbacks(&self) -> Result<Vec<CallbackRecord>, StoreError>;

    /// Callbacks matching a filter, newest desired time first: the rows of
    /// [`Store::query_callbacks_page`] without the cursor.
    async fn query_callbacks(
        &self,
        filter: &CallbackFilter,
    ) -> Result<Vec<CallbackRecord>, StoreError> {
        self.query_callbacks_page(filter)
            .await
            .map(|(rows, _)| rows)
    }

    /// Callbacks matching a filter, newest desired time first, honouring `filter.after`, with
    /// the cursor of the page's last callback.
    async fn query_callbacks_page(
        &self,
        filter: &CallbackFilter,
    ) -> Result<(Vec<CallbackRecord>, Option<PageCursor>), StoreError>;

    /// Removes COMPLETED callbacks whose desired time is more than `retention` before `now`;
    /// returns how many.
    async fn remove_expired(
        &self,
        now: DateTime<Utc>,
        retention: TimeDelta,
    ) -> Result<usize, StoreError> {
        self.remove_completed_before(crate::store::retention::expiry_cutoff(now, retention))
            .await
    }

    /// Removes COMPLETED callbacks whose retain-until instant is before `cutoff` (the rule of
    /// [`Store::remove_expired`], one comparison for every backend); returns how many.
    async fn remove_completed_before(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Inserts or replaces documents; returns once they are durable.
    async fn save_documents(&self, docs: Vec<Document>) -> Result<(), StoreError>;

    /// Deletes a document; true if it existed.
    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError>;

    /// Every document of a kind, by id.
    async fn documents(&self, kind: &str) -> Result<Vec<Document>, StoreError>;

    /// Saves callbacks and the outbox entries their changes raised in ONE transaction: both
    /// are stored or neither is. The default (for a backend without transactions) writes the
    /// callbacks first; SQLite and memory override it.
    async fn save_callbacks_with_outbox(
        &self,
        records: Vec<CallbackRecord>,
        entries: Vec<OutboxEntry>,
    ) -> Result<(), StoreError> {
        self.save_callbacks(records).await?;
        if entries.is_empty() {
            return Ok(());
        }
        self.save_outbox(entries).await
    }

    /// Saves a new callback only while its slot has room (`hold`); false, and nothing saved,
    /// when the slot is full. Stores shared by several processes (PostgreSQL) make the count
    /// and the insert atomic against every other booking of the slot; this default counts then
    /// saves, which is exact only under one writer (memory overrides it under its lock).
    async fn save_callback_in_slot(
        &self,
        record: CallbackRecord,
        hold: &SlotHold,
    ) -> Result<bool, StoreError> {
        let filter = CallbackFilter {
            queue: Some(hold.queue.clone()),
            from: Some(hold.slot.start),
            to: Some(hold.slot.end),
            ..Default::default()
        };
        let taken = self
            .query_callbacks(&filter)
            .await?
            .iter()
            .filter(|r| hold.counts(r))
            .count();
        if taken >= hold.capacity as usize {
            return Ok(false);
        }
        self.save_callbacks(vec![record]).await?;
        Ok(true)
    }

    /// Unfinished callbacks counted by queue and state, sorted (the cluster-wide queue
    /// figures). The default reads them all; PostgreSQL counts in one grouped statement.
    async fn count_active(&self) -> Result<Vec<StateCount>, StoreError> {
        let mut by: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
        for r in self.active_callbacks().await? {
            let e = by
                .entry((r.queue.clone(), r.state.name().to_string()))
                .or_default();
            e.0 += 1;
            if r.state == crate::callback::CallbackState::Queued && r.next_attempt_at.is_some() {
                e.1 += 1;
            }
        }
        Ok(by
            .into_iter()
            .map(|((queue, state), (count, held_for_retry))| StateCount {
                queue,
                state,
                count,
                held_for_retry,
            })
            .collect())
    }

    /// Inserts or replaces outbox entries (a delivery's outcome).
    async fn save_outbox(&self, _entries: Vec<OutboxEntry>) -> Result<(), StoreError> {
        Err(StoreError::Database(
            "this store keeps no push outbox".into(),
        ))
    }

    /// Pending entries due at or before `now`, oldest due first, at most `limit`.
    async fn outbox_due(
        &self,
        _now: DateTime<Utc>,
        _limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(Vec::new())
    }

    /// When the earliest pending entry is due.
    async fn outbox_next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(None)
    }

    /// Entries in `state` (every state when `None`), newest first, at most `limit`.
    async fn outbox_list(
        &self,
        _state: Option<OutboxState>,
        _limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(Vec::new())
    }

    /// How many entries are pending (the outbox depth).
    async fn outbox_pending(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
}

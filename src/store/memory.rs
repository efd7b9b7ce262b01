//! An in-memory [`Store`]: the same contract as SQLite (see `store::contract`), nothing durable.
//! For the simulator and tests that need no data directory, and the reference the contract
//! suite holds every other backend to.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{CallbackFilter, Document, PageCursor, Store, StoreError};
use crate::callback::CallbackRecord;
use crate::push::{OutboxEntry, OutboxState};

/// [`Store`] kept in memory; lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Tables>,
}

/// The callbacks by row (creation order), their rows by id, and the documents by kind and id.
#[derive(Debug, Default)]
struct Tables {
    rows: BTreeMap<i64, CallbackRecord>,
    ids: HashMap<Uuid, i64>,
    last_row: i64,
    documents: BTreeMap<(String, String), serde_json::Value>,
    /// Outbox entries by insertion row, and their rows by id.
    outbox: BTreeMap<i64, OutboxEntry>,
    outbox_ids: HashMap<Uuid, i64>,
    outbox_last: i64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> parking_lot::MutexGuard<'_, Tables> {
        self.inner.lock()
    }

    /// One page of a listing, newest desired time first (then newest row), keyset `after` the
    /// cursor, with the cursor of its last callback: SQLite's order and paging.
    fn page(&self, f: &CallbackFilter) -> (Vec<CallbackRecord>, Option<PageCursor>) {
        let t = self.tables();
        let mut hits: Vec<(i64, i64, &CallbackRecord)> = t
            .rows
            .iter()
            .map(|(row, r)| (r.desired_time.timestamp_millis(), *row, r))
            .filter(|(ms, row, r)| {
                matches(f, r) && f.after.is_none_or(|c| (*ms, *row) < (c.desired_ms, c.row))
            })
            .collect();
        hits.sort_by_key(|h| std::cmp::Reverse((h.0, h.1)));
        let limit = if f.limit == 0 { usize::MAX } else { f.limit };
        let page: Vec<_> = hits.into_iter().skip(f.offset).take(limit).collect();
        let cursor = page.last().map(|(ms, row, _)| PageCursor {
            desired_ms: *ms,
            row: *row,
        });
        (
            page.into_iter().map(|(_, _, r)| r.clone()).collect(),
            cursor,
        )
    }
}

/// Inserts or replaces `value` under `id` in a table kept in insertion order: an id keeps its
/// row, a new one gets the next (`last` + 1), as SQLite's rowid.
fn upsert<T>(
    rows: &mut BTreeMap<i64, T>,
    ids: &mut HashMap<Uuid, i64>,
    last: &mut i64,
    id: Uuid,
    value: T,
) {
    let row = *ids.entry(id).or_insert_with(|| {
        *last += 1;
        *last
    });
    rows.insert(row, value);
}

/// Whether `r` passes every filter given (all but paging).
fn matches(f: &CallbackFilter, r: &CallbackRecord) -> bool {
    let desired = r.desired_time.timestamp_millis();
    f.queue.as_ref().is_none_or(|q| &r.queue == q)
        && f.state.as_ref().is_none_or(|s| r.state.name() == s)
        && f.phone.as_ref().is_none_or(|p| &r.phone == p)
        && f.from.is_none_or(|t| desired >= t.timestamp_millis())
        && f.to.is_none_or(|t| desired < t.timestamp_millis())
        && f.queues.as_ref().is_none_or(|qs| qs.contains(&r.queue))
}

impl Tables {
    /// Inserts or replaces callbacks in place (a new one gets the next row).
    fn put_callbacks(&mut self, records: Vec<CallbackRecord>) {
        for r in records {
            upsert(&mut self.rows, &mut self.ids, &mut self.last_row, r.id, r);
        }
    }

    /// Inserts or replaces outbox entries in place.
    fn put_outbox(&mut self, entries: Vec<OutboxEntry>) {
        for e in entries {
            let (rows, ids) = (&mut self.outbox, &mut self.outbox_ids);
            upsert(rows, ids, &mut self.outbox_last, e.id, e);
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn save_callbacks(&self, records: Vec<CallbackRecord>) -> Result<(), StoreError> {
        self.tables().put_callbacks(records);
        Ok(())
    }

    async fn save_callbacks_with_outbox(
        &self,
        records: Vec<CallbackRecord>,
        entries: Vec<OutboxEntry>,
    ) -> Result<(), StoreError> {
        // Under one lock: both land together.
        let mut t = self.tables();
        t.put_outbox(entries);
        t.put_callbacks(records);
        Ok(())
    }

    async fn save_callback_in_slot(
        &self,
        record: CallbackRecord,
        hold: &super::SlotHold,
    ) -> Result<bool, StoreError> {
        // Counted and saved under one lock: no other booking interleaves.
        let mut t = self.tables();
        let taken = t.rows.values().filter(|r| hold.counts(r)).count();
        if taken >= hold.capacity as usize {
            return Ok(false);
        }
        t.put_callbacks(vec![record]);
        Ok(true)
    }

    async fn save_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError> {
        self.tables().put_outbox(entries);
        Ok(())
    }

    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let t = self.tables();
        let mut due: Vec<(DateTime<Utc>, i64, &OutboxEntry)> = t
            .outbox
            .iter()
            .filter(|(_, e)| e.state == OutboxState::Pending && e.next_attempt_at <= now)
            .map(|(row, e)| (e.next_attempt_at, *row, e))
            .collect();
        due.sort_by_key(|d| (d.0, d.1));
        Ok(due.into_iter().take(limit).map(|d| d.2.clone()).collect())
    }

    async fn outbox_next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .tables()
            .outbox
            .values()
            .filter(|e| e.state == OutboxState::Pending)
            .map(|e| e.next_attempt_at)
            .min())
    }

    async fn outbox_list(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        Ok(self
            .tables()
            .outbox
            .values()
            .rev()
            .filter(|e| state.is_none_or(|s| e.state == s))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn outbox_pending(&self) -> Result<usize, StoreError> {
        Ok(self
            .tables()
            .outbox
            .values()
            .filter(|e| e.state == OutboxState::Pending)
            .count())
    }

    async fn callback(&self, id: Uuid) -> Result<Option<CallbackRecord>, StoreError> {
        let t = self.tables();
        Ok(t.ids.get(&id).and_then(|row| t.rows.get(row)).cloned())
    }

    async fn active_callbacks(&self) -> Result<Vec<CallbackRecord>, StoreError> {
        Ok(self
            .tables()
            .rows
            .values()
            .filter(|r| r.state.name() != "COMPLETED")
            .cloned()
            .collect())
    }

    async fn query_callbacks_page(
        &self,
        filter: &CallbackFilter,
    ) -> Result<(Vec<CallbackRecord>, Option<PageCursor>), StoreError> {
        Ok(self.page(filter))
    }

    async fn remove_completed_before(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        // The same comparison as SQLite's, in milliseconds.
        let cutoff = cutoff.timestamp_millis();
        let mut t = self.tables();
        let expired: Vec<(i64, Uuid)> = t
            .rows
            .iter()
            .filter(|(_, r)| {
                r.state.name() == "COMPLETED" && r.retain_until().timestamp_millis() < cutoff
            })
            .map(|(row, r)| (*row, r.id))
            .collect();
        for (row, id) in &expired {
            t.rows.remove(row);
            t.ids.remove(id);
        }
        Ok(expired.len())
    }

    async fn save_documents(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        let mut t = self.tables();
        for d in docs {
            t.documents.insert((d.kind, d.id), d.body);
        }
        Ok(())
    }

    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .tables()
            .documents
            .remove(&(kind.to_string(), id.to_string()))
            .is_some())
    }

    async fn documents(&self, kind: &str) -> Result<Vec<Document>, StoreError> {
        let start = (kind.to_string(), String::new());
        Ok(self
            .tables()
            .documents
            .range(start..)
            .take_while(|((k, _), _)| k == kind)
            .map(|((k, id), body)| Document {
                kind: k.clone(),
                id: id.clone(),
                body: body.clone(),
            })
            .collect())
    }
}

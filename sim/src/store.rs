//! Stores for simulated runs. [`MemoryStore`] keeps callbacks in memory: nothing leaves the
//! runtime, so virtual time never jumps while a write is in flight and a seed always gives the
//! same run. [`BlockingStore`] wraps the engine's SQLite store so that each call runs as a
//! blocking task, which stops tokio's paused clock from advancing while SQLite works.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use async_trait::async_trait;
use boomerang::callback::CallbackRecord;
use boomerang::store::{CallbackFilter, Document, SqliteStore, Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

#[derive(Default)]
struct Inner {
    seq: u64,
    callbacks: HashMap<Uuid, (u64, CallbackRecord)>,
    documents: BTreeMap<(String, String), serde_json::Value>,
}

/// Callbacks and documents in memory.
#[derive(Default, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }
}

fn sorted(mut v: Vec<(u64, CallbackRecord)>) -> Vec<CallbackRecord> {
    v.sort_by_key(|(s, _)| *s);
    v.into_iter().map(|(_, r)| r).collect()
}

#[async_trait]
impl Store for MemoryStore {
    async fn save_callbacks(&self, records: Vec<CallbackRecord>) -> Result<(), StoreError> {
        let mut g = self.lock();
        for r in records {
            let seq = match g.callbacks.get(&r.id) {
                Some((s, _)) => *s,
                None => {
                    g.seq += 1;
                    g.seq
                }
            };
            g.callbacks.insert(r.id, (seq, r));
        }
        Ok(())
    }

    async fn callback(&self, id: Uuid) -> Result<Option<CallbackRecord>, StoreError> {
        Ok(self.lock().callbacks.get(&id).map(|(_, r)| r.clone()))
    }

    async fn active_callbacks(&self) -> Result<Vec<CallbackRecord>, StoreError> {
        let g = self.lock();
        Ok(sorted(
            g.callbacks
                .values()
                .filter(|(_, r)| !r.state.is_completed())
                .cloned()
                .collect(),
        ))
    }

    async fn query_callbacks(&self, f: &CallbackFilter) -> Result<Vec<CallbackRecord>, StoreError> {
        let g = self.lock();
        let mut v: Vec<(u64, CallbackRecord)> = g
            .callbacks
            .values()
            .filter(|(_, r)| {
                f.queue.as_ref().is_none_or(|q| *q == r.queue)
                    && f.queues.as_ref().is_none_or(|qs| qs.contains(&r.queue))
                    && f.state.as_ref().is_none_or(|s| s == r.state.name())
                    && f.phone.as_ref().is_none_or(|p| *p == r.phone)
                    && f.from.is_none_or(|t| r.desired_time >= t)
                    && f.to.is_none_or(|t| r.desired_time < t)
            })
            .cloned()
            .collect();
        v.sort_by(|(sa, a), (sb, b)| b.desired_time.cmp(&a.desired_time).then(sb.cmp(sa)));
        let limit = if f.limit == 0 { usize::MAX } else { f.limit };
        Ok(v.into_iter()
            .skip(f.offset)
            .take(limit)
            .map(|(_, r)| r)
            .collect())
    }

    async fn remove_expired(
        &self,
        now: DateTime<Utc>,
        retention: TimeDelta,
    ) -> Result<usize, StoreError> {
        let mut g = self.lock();
        let before = g.callbacks.len();
        g.callbacks
            .retain(|_, (_, r)| !r.state.is_completed() || r.desired_time + retention >= now);
        Ok(before - g.callbacks.len())
    }

    async fn save_documents(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        let mut g = self.lock();
        for d in docs {
            g.documents.insert((d.kind, d.id), d.body);
        }
        Ok(())
    }

    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .documents
            .remove(&(kind.to_string(), id.to_string()))
            .is_some())
    }

    async fn documents(&self, kind: &str) -> Result<Vec<Document>, StoreError> {
        Ok(self
            .lock()
            .documents
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((k, id), body)| Document {
                kind: k.clone(),
                id: id.clone(),
                body: body.clone(),
            })
            .collect())
    }
}

/// The engine's SQLite store, each call run as a blocking task (see the module docs).
pub struct BlockingStore {
    inner: Arc<SqliteStore>,
}

impl BlockingStore {
    /// Opens SQLite in `dir`.
    pub fn open(dir: &std::path::Path) -> Result<Self, StoreError> {
        Ok(BlockingStore {
            inner: Arc::new(SqliteStore::open(dir)?),
        })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<SqliteStore>) -> futures_lite::BoxFuture<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || handle.block_on(f(inner)))
            .await
            .map_err(|_| StoreError::Closed)
    }
}

mod futures_lite {
    /// A boxed, sendable future.
    pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

#[async_trait]
impl Store for BlockingStore {
    async fn save_callbacks(&self, records: Vec<CallbackRecord>) -> Result<(), StoreError> {
        self.run(move |s| Box::pin(async move { s.save_callbacks(records).await }))
            .await?
    }

    async fn callback(&self, id: Uuid) -> Result<Option<CallbackRecord>, StoreError> {
        self.run(move |s| Box::pin(async move { s.callback(id).await }))
            .await?
    }

    async fn active_callbacks(&self) -> Result<Vec<CallbackRecord>, StoreError> {
        self.run(move |s| Box::pin(async move { s.active_callbacks().await }))
            .await?
    }

    async fn query_callbacks(
        &self,
        filter: &CallbackFilter,
    ) -> Result<Vec<CallbackRecord>, StoreError> {
        let f = filter.clone();
        self.run(move |s| Box::pin(async move { s.query_callbacks(&f).await }))
            .await?
    }

    async fn remove_expired(
        &self,
        now: DateTime<Utc>,
        retention: TimeDelta,
    ) -> Result<usize, StoreError> {
        self.run(move |s| Box::pin(async move { s.remove_expired(now, retention).await }))
            .await?
    }

    async fn save_documents(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        self.run(move |s| Box::pin(async move { s.save_documents(docs).await }))
            .await?
    }

    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        let (k, i) = (kind.to_string(), id.to_string());
        self.run(move |s| Box::pin(async move { s.delete_document(&k, &i).await }))
            .await?
    }

    async fn documents(&self, kind: &str) -> Result<Vec<Document>, StoreError> {
        let k = kind.to_string();
        self.run(move |s| Box::pin(async move { s.documents(&k).await }))
            .await?
    }
}

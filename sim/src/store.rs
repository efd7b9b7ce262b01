//! The SQLite store for simulated runs. The `memory` store is the library's
//! [`boomerang::store::MemoryStore`]: nothing leaves the runtime, so virtual time never jumps
//! while a write is in flight and a seed always gives the same run. [`BlockingStore`] wraps the
//! engine's SQLite store so that each call runs as a blocking task, which stops tokio's paused
//! clock from advancing while SQLite works.

use std::sync::Arc;

use async_trait::async_trait;
use boomerang::callback::CallbackRecord;
use boomerang::store::{CallbackFilter, Document, PageCursor, SqliteStore, Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

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

    async fn query_callbacks_page(
        &self,
        filter: &CallbackFilter,
    ) -> Result<(Vec<CallbackRecord>, Option<PageCursor>), StoreError> {
        let f = filter.clone();
        self.run(move |s| Box::pin(async move { s.query_callbacks_page(&f).await }))
            .await?
    }

    async fn remove_completed_before(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        self.run(move |s| Box::pin(async move { s.remove_completed_before(cutoff).await }))
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

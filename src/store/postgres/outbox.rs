//! The push outbox on PostgreSQL: entries are saved in the same transaction as the callback
//! changes that raised them, and read back by due time for the delivery worker.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PostgresStore, Rows, not_stored, upsert_callbacks_sql};
use crate::callback::CallbackRecord;
use crate::push::{OutboxEntry, OutboxState};
use crate::store::StoreError;

/// Upserts outbox entries inside `tx` (nothing when there are none).
pub(super) async fn insert_entries(
    store: &PostgresStore,
    tx: &deadpool_postgres::Transaction<'_>,
    entries: &[OutboxEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<Uuid> = Vec::with_capacity(entries.len());
    let mut states: Vec<&'static str> = Vec::with_capacity(entries.len());
    let mut next: Vec<i64> = Vec::with_capacity(entries.len());
    let mut bodies: Vec<String> = Vec::with_capacity(entries.len());
    for e in entries {
        ids.push(e.id);
        states.push(e.state.name());
        next.push(e.next_attempt_at.timestamp_millis());
        bodies.push(serde_json::to_string(e)?);
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO outbox (id, state, next_ms, body)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::text[])
             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                 next_ms = excluded.next_ms, body = excluded.body",
        )
        .await
        .map_err(not_stored)?;
    store.count();
    tx.execute(&stmt, &[&ids, &states, &next, &bodies])
        .await
        .map_err(not_stored)?;
    Ok(())
}

impl PostgresStore {
    /// Upserts callbacks and outbox entries in ONE transaction: both are stored or neither.
    pub(super) async fn save_with_outbox(
        &self,
        records: Vec<CallbackRecord>,
        entries: Vec<OutboxEntry>,
    ) -> Result<(), StoreError> {
        if records.is_empty() && entries.is_empty() {
            return Ok(());
        }
        let rows = Rows::of(&records)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(not_stored)?;
        if !records.is_empty() {
            let stmt = tx
                .prepare_cached(&upsert_callbacks_sql())
                .await
                .map_err(not_stored)?;
            self.count();
            tx.execute(&stmt, &rows.params())
                .await
                .map_err(not_stored)?;
        }
        insert_entries(self, &tx, &entries).await?;
        self.count();
        tx.commit().await.map_err(not_stored)
    }

    /// Pending entries due at or before `now`, oldest due first.
    pub(super) async fn due_entries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .read(
                "SELECT body FROM outbox WHERE state = 'pending' AND next_ms <= $1
                 ORDER BY next_ms, seq LIMIT $2",
                &[&now.timestamp_millis(), &limit],
            )
            .await?;
        Ok(decode(rows))
    }

    /// When the earliest pending entry is due.
    pub(super) async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let sql = "SELECT MIN(next_ms) FROM outbox WHERE state = 'pending'";
        let rows = self.read(sql, &[]).await?;
        Ok((rows.first())
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .and_then(DateTime::from_timestamp_millis))
    }

    /// Entries in `state` (all when `None`), newest first; `limit` 0 is no limit.
    pub(super) async fn list_entries(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = crate::store::sql_limit(limit);
        let rows = match state {
            Some(st) => {
                let sql = "SELECT body FROM outbox WHERE state = $1 ORDER BY seq DESC LIMIT $2";
                self.read(sql, &[&st.name(), &limit]).await?
            }
            None => {
                let sql = "SELECT body FROM outbox ORDER BY seq DESC LIMIT $1";
                self.read(sql, &[&limit]).await?
            }
        };
        Ok(decode(rows))
    }

    /// How many entries are pending.
    pub(super) async fn pending_entries(&self) -> Result<usize, StoreError> {
        let sql = "SELECT COUNT(*) FROM outbox WHERE state = 'pending'";
        let rows = self.read(sql, &[]).await?;
        Ok((rows.first()).map_or(0, |r| usize::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }
}

/// Outbox rows into entries; an unreadable one is logged and left out.
fn decode(rows: Vec<tokio_postgres::Row>) -> Vec<OutboxEntry> {
    crate::store::decode_bodies(rows.iter().map(|r| r.get::<_, String>(0)), "push event")
}

//! The shared store: PostgreSQL through `tokio-postgres` with a `deadpool-postgres` pool, for
//! several nodes on one database (see ARCHITECTURE.md, "Several nodes on PostgreSQL").
//!
//! Every write is one statement (a batch goes in as arrays through `UNNEST`), so it commits
//! atomically in one round trip, and concurrent writers share WAL flushes through PostgreSQL's
//! own group commit. The schema is versioned (`schema.rs`) and brought up to date at start.
//! A broken connection (the server restarted) is dropped when it goes back to the pool and a
//! new one is opened at the next checkout, so the store reconnects by itself; while the server
//! is away, calls fail with [`StoreError::Database`] after the pool's timeout instead of
//! hanging. `cluster.rs` holds the node primitives: heartbeats, leases and claims.
//!
//! Adding a method to the [`Store`] trait: write its SQL here with `self.client()`, count the
//! round trip with `self.count()`, map errors with [`db`] (reads) or [`not_stored`] (writes);
//! a new table or column is a new entry at the end of `schema::MIGRATIONS`.

pub(crate) mod cluster;
mod outbox;
mod schema;
pub mod shared;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{CallbackFilter, Document, PageCursor, Store, StoreError};
use crate::callback::CallbackRecord;
use crate::push::{OutboxEntry, OutboxState};

pub use cluster::{Cluster, NodeInfo};

/// How long a statement may wait for a connection, or for one to open, before it fails.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    statements: Arc<AtomicU64>,
}

/// A database failure, with the server's own message when it sent one.
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::Database(describe(&e))
}

/// A failed write: nothing of it was stored.
pub(crate) fn not_stored(e: tokio_postgres::Error) -> StoreError {
    StoreError::NotStored(describe(&e))
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        // "error connecting to server" alone hides why: add the cause (connection refused…).
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => {
            StoreError::Database(format!("cannot reach PostgreSQL: {}", describe(&e)))
        }
        PoolError::Timeout(_) => StoreError::Database(
            "cannot reach PostgreSQL: timed out waiting for a connection".into(),
        ),
        PoolError::Closed => StoreError::Closed,
        other => StoreError::Database(format!("cannot reach PostgreSQL: {other}")),
    }
}

impl PostgresStore {
    /// Connects to `url` with at most `pool_size` connections and applies the migrations the
    /// database lacks. Fails (without retrying) when the database cannot be reached.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("not a PostgreSQL URL: {e}")))?;
        Self::connect_with(config, pool_size).await
    }

    /// As [`Self::connect`], from a parsed configuration (tests set a schema search path).
    pub async fn connect_with(
        mut config: tokio_postgres::Config,
        pool_size: usize,
    ) -> Result<Self, StoreError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_TIMEOUT);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let store = PostgresStore {
            pool,
            statements: Arc::new(AtomicU64::new(0)),
        };
        let mut client = store.client().await?;
        schema::migrate(&mut client).await?;
        Ok(store)
    }

    /// Round trips to the database so far (for the statements-per-callback figure).
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Answers whether the database answers now (for readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        self.count();
        client.simple_query("SELECT 1").await.map_err(db)?;
        Ok(())
    }

    /// This node's handle on the cluster tables: heartbeats, leases and claims.
    pub fn cluster(&self, node_id: &str, region: &str, lease: Duration) -> Cluster {
        Cluster::new(self.clone(), node_id, region, lease)
    }

    /// A pooled connection (a new one if the pooled ones broke).
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Counts one round trip.
    pub(crate) fn count(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// One counted read: `sql` (prepared once per connection) run with `params`, its rows.
    pub(crate) async fn read(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(db)?;
        self.count();
        client.query(&stmt, params).await.map_err(db)
    }
}

/// The columns of a callback row besides its body, as arrays for one `UNNEST` upsert.
#[derive(Default)]
pub(crate) struct Rows {
    pub(crate) ids: Vec<Uuid>,
    pub(crate) queues: Vec<String>,
    pub(crate) states: Vec<String>,
    pub(crate) phones: Vec<String>,
    pub(crate) desired: Vec<i64>,
    pub(crate) retain: Vec<i64>,
    pub(crate) due: Vec<i64>,
    pub(crate) priority: Vec<i64>,
    pub(crate) queue_ms: Vec<i64>,
    pub(crate) bodies: Vec<String>,
}

impl Rows {
    /// The rows of `records`; a record saved twice in one batch keeps its last version (one
    /// statement may not update a row twice).
    pub(crate) fn of(records: &[CallbackRecord]) -> Result<Rows, StoreError> {
        let mut last = std::collections::HashMap::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            last.insert(r.id, i);
        }
        let mut rows = Rows::default();
        for (i, r) in records.iter().enumerate() {
            if last.get(&r.id) != Some(&i) {
                continue;
            }
            rows.ids.push(r.id);
            rows.queues.push(r.queue.clone());
            rows.states.push(r.state.name().to_string());
            rows.phones.push(r.phone.clone());
            rows.desired.push(r.desired_time.timestamp_millis());
            rows.retain.push(r.retain_until().timestamp_millis());
            rows.due.push(
                r.next_attempt_at
                    .unwrap_or(r.desired_time)
                    .timestamp_millis(),
            );
            rows.priority.push(r.priority);
            rows.queue_ms.push(r.queue_time.timestamp_millis());
            rows.bodies.push(serde_json::to_string(r)?);
        }
        Ok(rows)
    }

    /// The parameters $1..$10 in the order of [`UNNEST_ROWS`].
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.ids,
            &self.queues,
            &self.states,
            &self.phones,
            &self.desired,
            &self.retain,
            &self.due,
            &self.priority,
            &self.queue_ms,
            &self.bodies,
        ]
    }
}

/// The rows of a [`Rows`] as a table `r`.
pub(crate) const UNNEST_ROWS: &str = "UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], \
     $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[]) \
     AS r(id, queue, state, phone, desired_ms, retain_ms, due_ms, priority, queue_ms, body)";

/// The one-statement upsert of a batch of callbacks, its rows as [`Rows::params`].
pub(crate) fn upsert_callbacks_sql() -> String {
    format!(
        "INSERT INTO callbacks (id, queue, state, phone, desired_ms, retain_ms, due_ms,
             priority, queue_ms, body)
         SELECT * FROM {UNNEST_ROWS}
         ON CONFLICT (id) DO UPDATE SET queue = excluded.queue, state = excluded.state,
             phone = excluded.phone, desired_ms = excluded.desired_ms,
             retain_ms = excluded.retain_ms, due_ms = excluded.due_ms,
             priority = excluded.priority, queue_ms = excluded.queue_ms,
             body = excluded.body"
    )
}

/// Decodes the `body` column (the first) of each row.
pub(crate) fn bodies(rows: Vec<tokio_postgres::Row>) -> Vec<CallbackRecord> {
    super::decode_bodies(rows.into_iter().map(|r| r.get::<_, String>(0)), "callback")
}

#[async_trait]
impl Store for PostgresStore {
    async fn save_callbacks(&self, records: Vec<CallbackRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let rows = Rows::of(&records)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&upsert_callbacks_sql())
            .await
            .map_err(not_stored)?;
        self.count();
        client
            .execute(&stmt, &rows.params())
            .await
            .map_err(not_stored)?;
        Ok(())
    }

    async fn callback(&self, id: Uuid) -> Result<Option<CallbackRecord>, StoreError> {
        let rows = self
            .read("SELECT body FROM callbacks WHERE id = $1", &[&id])
            .await?;
        rows.into_iter()
            .next()
            .map(|r| serde_json::from_str(&r.get::<_, String>(0)).map_err(StoreError::from))
            .transpose()
    }

    async fn active_callbacks(&self) -> Result<Vec<CallbackRecord>, StoreError> {
        let sql = "SELECT body FROM callbacks WHERE state <> 'COMPLETED' ORDER BY seq";
        Ok(bodies(self.read(sql, &[]).await?))
    }

    async fn query_callbacks_page(
        &self,
        f: &CallbackFilter,
    ) -> Result<(Vec<CallbackRecord>, Option<PageCursor>), StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut add = |clause: &str, value: Box<dyn ToSql + Sync + Send>| {
            args.push(value);
            clauses.push(clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(q) = &f.queue {
            add("queue = ?", Box::new(q.clone()));
        }
        if let Some(st) = &f.state {
            add("state = ?", Box::new(st.clone()));
        }
        if let Some(p) = &f.phone {
            add("phone = ?", Box::new(p.clone()));
        }
        if let Some(t) = f.from {
            add("desired_ms >= ?", Box::new(t.timestamp_millis()));
        }
        if let Some(t) = f.to {
            add("desired_ms < ?", Box::new(t.timestamp_millis()));
        }
        if let Some(qs) = &f.queues {
            add("queue = ANY(?)", Box::new(qs.clone()));
        }
        if let Some(cur) = f.after {
            // (desired, seq) < (cursor), so the index on both serves it.
            args.push(Box::new(cur.desired_ms));
            args.push(Box::new(cur.row));
            let n = args.len();
            clauses.push(format!("(desired_ms, seq) < (${}, ${n})", n - 1));
        }
        let mut sql = String::from("SELECT body, desired_ms, seq FROM callbacks");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        let limit: Option<i64> = (f.limit != 0).then(|| i64::try_from(f.limit).unwrap_or(i64::MAX));
        args.push(Box::new(limit));
        args.push(Box::new(i64::try_from(f.offset).unwrap_or(i64::MAX)));
        sql.push_str(&format!(
            " ORDER BY desired_ms DESC, seq DESC LIMIT ${} OFFSET ${}",
            args.len() - 1,
            args.len()
        ));
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(db)?;
        let params: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        self.count();
        let rows = client.query(&stmt, &params).await.map_err(db)?;
        let cursor = rows.last().map(|r| PageCursor {
            desired_ms: r.get(1),
            row: r.get(2),
        });
        let records = rows
            .iter()
            .map(|r| serde_json::from_str(&r.get::<_, String>(0)).map_err(StoreError::from))
            .collect::<Result<Vec<CallbackRecord>, _>>()?;
        Ok((records, cursor))
    }

    async fn remove_completed_before(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let cutoff = cutoff.timestamp_millis();
        let client = self.client().await?;
        self.count();
        let n = client
            .execute(
                "DELETE FROM callbacks WHERE retain_ms < $1 AND state = 'COMPLETED'",
                &[&cutoff],
            )
            .await
            .map_err(not_stored)?;
        Ok(n as usize)
    }

    async fn save_documents(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        if docs.is_empty() {
            return Ok(());
        }
        // The last version of a (kind, id) saved twice in one call wins.
        let mut last = std::collections::HashMap::new();
        for (i, d) in docs.iter().enumerate() {
            last.insert((d.kind.as_str(), d.id.as_str()), i);
        }
        let (mut kinds, mut ids, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
        for (i, d) in docs.iter().enumerate() {
            if last.get(&(d.kind.as_str(), d.id.as_str())) == Some(&i) {
                kinds.push(d.kind.clone());
                ids.push(d.id.clone());
                bodies.push(d.body.to_string());
            }
        }
        let client = self.client().await?;
        let upsert = "INSERT INTO documents (kind, id, body)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[])
                 ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body";
        if !kinds
            .iter()
            .any(|k| shared::CONFIG_KINDS.contains(&k.as_str()))
        {
            let stmt = client.prepare_cached(upsert).await.map_err(not_stored)?;
            self.count();
            client
                .execute(&stmt, &[&kinds, &ids, &bodies])
                .await
                .map_err(not_stored)?;
            return Ok(());
        }
        // A configuration change is announced by the statement that writes it.
        let stmt = client
            .prepare_cached(&format!(
                "WITH up AS ({upsert} RETURNING kind)
                 SELECT pg_notify($4, k.kind)
                 FROM (SELECT DISTINCT kind FROM up WHERE kind = ANY($5)) k"
            ))
            .await
            .map_err(not_stored)?;
        let config: Vec<&str> = shared::CONFIG_KINDS.to_vec();
        self.count();
        client
            .query(
                &stmt,
                &[&kinds, &ids, &bodies, &shared::CONFIG_CHANNEL, &config],
            )
            .await
            .map_err(not_stored)?;
        Ok(())
    }

    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        self.count();
        if shared::CONFIG_KINDS.contains(&kind) {
            // Announced by the statement that deletes it.
            let rows = client
                .query(
                    "WITH del AS (DELETE FROM documents WHERE kind = $1 AND id = $2
                         RETURNING kind)
                     SELECT pg_notify($3, kind) FROM del",
                    &[&kind, &id, &shared::CONFIG_CHANNEL],
                )
                .await
                .map_err(not_stored)?;
            return Ok(!rows.is_empty());
        }
        let n = client
            .execute(
                "DELETE FROM documents WHERE kind = $1 AND id = $2",
                &[&kind, &id],
            )
            .await
            .map_err(not_stored)?;
        Ok(n > 0)
    }

    async fn save_callbacks_with_outbox(
        &self,
        records: Vec<CallbackRecord>,
        entries: Vec<OutboxEntry>,
    ) -> Result<(), StoreError> {
        self.save_with_outbox(records, entries).await
    }

    async fn save_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError> {
        self.save_with_outbox(Vec::new(), entries).await
    }

    async fn save_callback_in_slot(
        &self,
        record: CallbackRecord,
        hold: &super::SlotHold,
    ) -> Result<bool, StoreError> {
        self.save_in_slot(&record, hold).await
    }

    async fn count_active(&self) -> Result<Vec<super::StateCount>, StoreError> {
        self.count_by_queue_state().await
    }

    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.due_entries(now, limit).await
    }

    async fn outbox_next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.next_due().await
    }

    async fn outbox_list(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.list_entries(state, limit).await
    }

    async fn outbox_pending(&self) -> Result<usize, StoreError> {
        self.pending_entries().await
    }

    async fn documents(&self, kind: &str) -> Result<Vec<Document>, StoreError> {
        let sql = "SELECT id, body FROM documents WHERE kind = $1 ORDER BY id";
        let rows = self.read(sql, &[&kind]).await?;
        rows.into_iter()
            .map(|r| {
                Ok(Document {
                    kind: kind.to_string(),
                    id: r.get(0),
                    body: serde_json::from_str(&r.get::<_, String>(1))?,
                })
            })
            .collect()
    }
}

//! The node primitives of a cluster on one PostgreSQL database: a heartbeat row per node, a
//! lease per claimed callback, the claim of due callbacks (exactly once, `FOR UPDATE SKIP
//! LOCKED`), writes fenced by ownership, and the takeover of a dead node's in-flight work.
//!
//! Leases are compared with the database's `now()`, never a node's clock. A node's heartbeat
//! renews, in the same statement, every lease it still owns; a row a survivor took names the
//! survivor, so the old owner's renewals and fenced writes miss it (zero rows: it lost it).
//! A node that was away from the database for a lease or more (`up_since` is reset) waits one
//! more lease before it takes anyone's work over, so that every live node has renewed first.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::{PostgresStore, Rows, UNNEST_ROWS, bodies, db, not_stored};
use crate::callback::CallbackRecord;
use crate::store::StoreError;

/// The fenced update of callbacks this node owns ($11), releasing the lease when $12; when
/// $13, of callbacks nobody holds instead (unowned, this node's, or under a lapsed lease).
fn fenced_update_sql() -> String {
    format!(
        "UPDATE callbacks c SET queue = r.queue, state = r.state, phone = r.phone,
             desired_ms = r.desired_ms, retain_ms = r.retain_ms, due_ms = r.due_ms,
             priority = r.priority, queue_ms = r.queue_ms, body = r.body,
             owner = CASE WHEN $12 THEN NULL ELSE c.owner END,
             lease_until = CASE WHEN $12 THEN NULL ELSE c.lease_until END
         FROM {UNNEST_ROWS}
         WHERE c.id = r.id AND (c.owner = $11 OR ($13 AND (c.owner IS NULL
             OR c.lease_until IS NULL OR c.lease_until < now())))
         RETURNING c.id"
    )
}

/// One node as its heartbeat row shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's name (`cluster.node_id`).
    pub node_id: String,
    /// Its region.
    pub region: String,
    /// Whether its last heartbeat is within the lease.
    pub alive: bool,
    /// Alive and up for a lease or more (not just back from an outage of the database, when
    /// the other nodes may not have beaten again yet): its view of who is dead can be acted on.
    pub settled: bool,
}

/// This node's handle on the cluster tables.
#[derive(Clone)]
pub struct Cluster {
    store: PostgresStore,
    node: String,
    region: String,
    lease_ms: i64,
}

impl Cluster {
    pub(super) fn new(store: PostgresStore, node: &str, region: &str, lease: Duration) -> Self {
        Cluster {
            store,
            node: node.to_string(),
            region: region.to_string(),
            lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// This node's name.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// Marks this node alive and renews the lease of every callback it owns, in one statement;
    /// returns how many leases it renewed. Call it every third of the lease.
    pub async fn heartbeat(&self) -> Result<u64, StoreError> {
        self.beat(None).await
    }

    /// [`Self::heartbeat`] renewing only the leases of `held` (what the node still has in
    /// hand): a callback it dropped (its write failed while the database was away) lapses
    /// and is resolved by the restart rule, by a survivor or by itself.
    pub async fn heartbeat_holding(&self, held: &[uuid::Uuid]) -> Result<u64, StoreError> {
        self.beat(Some(held)).await
    }

    async fn beat(&self, held: Option<&[uuid::Uuid]>) -> Result<u64, StoreError> {
        let client = self.store.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH beat AS (
                     INSERT INTO nodes (node_id, region, heartbeat_at, up_since)
                     VALUES ($1, $2, now(), now())
                     ON CONFLICT (node_id) DO UPDATE SET region = excluded.region,
                         up_since = CASE
                             WHEN nodes.heartbeat_at < now() - $3::bigint * interval '1 millisecond'
                             THEN now() ELSE nodes.up_since END,
                         heartbeat_at = now())
                 UPDATE callbacks SET lease_until = now() + $3::bigint * interval '1 millisecond'
                 WHERE owner = $1 AND ($4::uuid[] IS NULL OR id = ANY($4))",
            )
            .await
            .map_err(db)?;
        self.store.count();
        let held: Option<Vec<uuid::Uuid>> = held.map(<[uuid::Uuid]>::to_vec);
        client
            .execute(&stmt, &[&self.node, &self.region, &self.lease_ms, &held])
            .await
            .map_err(db)
    }

    /// Every node that ever beat, with whether it is alive now.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        let client = self.store.client().await?;
        self.store.count();
        let rows = client
            .query(
                "SELECT node_id, region,
                     heartbeat_at >= now() - $1::bigint * interval '1 millisecond',
                     up_since <= now() - $1::bigint * interval '1 millisecond'
                 FROM nodes ORDER BY node_id",
                &[&self.lease_ms],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| NodeInfo {
                node_id: r.get(0),
                region: r.get(1),
                alive: r.get(2),
                settled: r.get::<_, bool>(2) && r.get::<_, bool>(3),
            })
            .collect())
    }

    /// Claims up to `limit` QUEUED callbacks due at `now`, and SCHEDULED ones whose desired
    /// time has come (the claimer activates them), of `queues` (or of any queue when `None`),
    /// best first (priority, then queue time): each is given to one node only, under a lease. The caller dials them and saves them through [`Self::save_owned`]. Walks the
    /// partial index of unclaimed QUEUED rows, so claimed rows cost nothing to skip.
    pub async fn claim_due(
        &self,
        queues: Option<&[String]>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CallbackRecord>, StoreError> {
        let queues: Option<Vec<String>> = queues.map(<[String]>::to_vec);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut got = self
            .claim_by(
                "UPDATE callbacks c SET owner = $1,
                     lease_until = now() + $2::bigint * interval '1 millisecond'
                 FROM (SELECT id FROM callbacks
                       WHERE state IN ('QUEUED', 'SCHEDULED') AND owner IS NULL
                         AND due_ms <= $3
                         AND ($4::text[] IS NULL OR queue = ANY($4))
                       ORDER BY priority DESC, queue_ms, seq
                       LIMIT $5
                       FOR UPDATE SKIP LOCKED) due
                 WHERE c.id = due.id
                 RETURNING c.body",
                &[
                    &self.node,
                    &self.lease_ms,
                    &now.timestamp_millis(),
                    &queues,
                    &limit,
                ],
            )
            .await?;
        got.sort_by(|a, b| (b.priority, a.queue_time).cmp(&(a.priority, b.queue_time)));
        Ok(got)
    }

    /// Saves callbacks this node owns, keeping the lease (`release: false`) or giving it up
    /// (`release: true`: the callback went back to QUEUED or completed). Fenced: a callback
    /// this node no longer owns is not written. Returns the ids that were written.
    pub async fn save_owned(
        &self,
        records: &[CallbackRecord],
        release: bool,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let rows = Rows::of(records)?;
        let client = self.store.client().await?;
        let written = self.fenced_update(&client, &rows, release, false).await?;
        Ok(written.into_iter().map(|r| r.get(0)).collect())
    }

    /// The fenced update of `rows` on `client` (a connection or a transaction).
    async fn fenced_update(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        rows: &Rows,
        release: bool,
        unowned: bool,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let stmt = client
            .prepare_cached(&fenced_update_sql())
            .await
            .map_err(not_stored)?;
        let mut params = rows.params().to_vec();
        params.push(&self.node);
        params.push(&release);
        params.push(&unowned);
        self.store.count();
        client.query(&stmt, &params).await.map_err(not_stored)
    }

    /// Saves one callback this node owns (fenced, as [`Self::save_owned`]) with `fresh`
    /// callbacks nobody owns yet (a rescheduled callback's successor) and the outbox entries
    /// the change raised, in one transaction: when the fenced write misses (the node lost the
    /// callback) nothing is written and the answer is false.
    pub async fn save_owned_with(
        &self,
        record: &CallbackRecord,
        fresh: &[CallbackRecord],
        entries: &[crate::push::OutboxEntry],
        release: bool,
    ) -> Result<bool, StoreError> {
        self.fenced_write(record, fresh, entries, release, false)
            .await
    }

    /// [`Self::save_owned_with`] when `unowned` is false; when true, for a callback this node
    /// does not hold (an API cancel or reschedule): written only while no live node holds it
    /// (no owner, or a lapsed lease), so it never races a node's claim; false (nothing written)
    /// while another node has it.
    pub async fn fenced_write(
        &self,
        record: &CallbackRecord,
        fresh: &[CallbackRecord],
        entries: &[crate::push::OutboxEntry],
        release: bool,
        unowned: bool,
    ) -> Result<bool, StoreError> {
        let rows = Rows::of(std::slice::from_ref(record))?;
        let mut client = self.store.client().await?;
        if fresh.is_empty() && entries.is_empty() {
            // The common case: one statement, no transaction round trips.
            let written = self.fenced_update(&client, &rows, release, unowned).await?;
            return Ok(!written.is_empty());
        }
        self.store.count();
        let tx = client.transaction().await.map_err(not_stored)?;
        let written = self.fenced_update(&tx, &rows, release, unowned).await?;
        if written.is_empty() {
            // Dropping the transaction rolls it back.
            return Ok(false);
        }
        if !fresh.is_empty() {
            let rows = Rows::of(fresh)?;
            let stmt = tx
                .prepare_cached(&super::upsert_callbacks_sql())
                .await
                .map_err(not_stored)?;
            self.store.count();
            tx.execute(&stmt, &rows.params())
                .await
                .map_err(not_stored)?;
        }
        super::outbox::insert_entries(&self.store, &tx, entries).await?;
        self.store.count();
        tx.commit().await.map_err(not_stored)?;
        Ok(true)
    }

    /// Every callback this node still owns (left by its previous life under the same name,
    /// which it resolves by the restart rule at start).
    pub async fn owned(&self) -> Result<Vec<CallbackRecord>, StoreError> {
        let client = self.store.client().await?;
        self.store.count();
        let rows = client
            .query(
                "SELECT body FROM callbacks WHERE owner = $1 ORDER BY seq",
                &[&self.node],
            )
            .await
            .map_err(db)?;
        Ok(bodies(rows))
    }

    /// Takes over up to `limit` callbacks left in flight (ROUTING or PROCESSING) whose lease
    /// lapsed, under a new lease of this node's, and returns lapsed claims of callbacks still
    /// QUEUED to the pool; none while this node has been back for less
    /// than a lease. The caller applies the restart rule
    /// (`callback::restart::resolve_in_flight`) and saves them with [`Self::save_owned`],
    /// releasing them.
    pub async fn take_over_lapsed(&self, limit: usize) -> Result<Vec<CallbackRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Claims still QUEUED (the owner died before dialling) simply go back to the pool.
        self.claim_by(
            "WITH settled AS (
                     SELECT 1 FROM nodes WHERE node_id = $1
                         AND heartbeat_at >= now() - $2::bigint * interval '1 millisecond'
                         AND up_since <= now() - $2::bigint * interval '1 millisecond'),
                 freed AS (
                     UPDATE callbacks SET owner = NULL, lease_until = NULL
                     WHERE state = 'QUEUED' AND owner IS NOT NULL AND lease_until < now()
                       AND EXISTS (SELECT 1 FROM settled))
                 UPDATE callbacks c SET owner = $1,
                     lease_until = now() + $2::bigint * interval '1 millisecond'
                 FROM (SELECT id FROM callbacks
                       WHERE state IN ('ROUTING', 'PROCESSING') AND lease_until < now()
                         AND EXISTS (SELECT 1 FROM settled)
                       ORDER BY lease_until
                       LIMIT $3
                       FOR UPDATE SKIP LOCKED) lapsed
                 WHERE c.id = lapsed.id
                 RETURNING c.body",
            &[&self.node, &self.lease_ms, &limit],
        )
        .await
    }

    /// Runs a claiming statement (`owner = $1`, a lease of `$2` ms) and answers the callbacks
    /// it claimed.
    async fn claim_by(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<CallbackRecord>, StoreError> {
        let client = self.store.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(db)?;
        self.store.count();
        let rows = client.query(&stmt, params).await.map_err(not_stored)?;
        Ok(bodies(rows))
    }
}

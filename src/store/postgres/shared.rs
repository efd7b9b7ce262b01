//! What several nodes must see alike from the shared database rather than from their own
//! memory: scheduled-slot capacity (counted and booked in one transaction under a per-slot
//! advisory lock, so two nodes booking the last place at once cannot both get it), the
//! unfinished callbacks counted by queue and state (one grouped statement), and the
//! announcement of configuration changes (`pg_notify` on [`CONFIG_CHANNEL`] in the statement
//! that writes or deletes the document, so a node never hears of a change that did not commit).

use super::{PostgresStore, Rows, UNNEST_ROWS, db, not_stored};
use crate::callback::CallbackRecord;
use crate::store::{SlotHold, StateCount, StoreError};

/// The channel configuration changes are announced on (payload: the document kind).
pub const CONFIG_CHANNEL: &str = "boomerang_config";

/// The document kinds whose changes are announced on [`CONFIG_CHANNEL`]: the rule book's
/// (rules of each kind, queue assignments) and the Click-to-Call-In groups.
pub const CONFIG_KINDS: &[&str] = &[
    crate::rules::RuleKind::Number.doc_kind(),
    crate::rules::RuleKind::Capacity.doc_kind(),
    crate::rules::RuleKind::Affinity.doc_kind(),
    crate::rules::book::ASSIGNMENT_KIND,
    crate::callin::book::GROUP_KIND,
];

impl PostgresStore {
    /// Inserts `record` only while fewer than `hold.capacity` unfinished scheduled callbacks of
    /// the queue are desired in the slot; false (nothing written) when it is full. The slot's
    /// advisory lock serialises every booking of that slot across nodes until the commit, and
    /// the count runs after the lock is held, so it sees every booking committed before.
    pub(super) async fn save_in_slot(
        &self,
        record: &CallbackRecord,
        hold: &SlotHold,
    ) -> Result<bool, StoreError> {
        let rows = Rows::of(std::slice::from_ref(record))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(not_stored)?;
        let key = format!("{}/{}", hold.queue, hold.slot.start.timestamp_millis());
        self.count();
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(not_stored)?;
        let sql = format!(
            "INSERT INTO callbacks (id, queue, state, phone, desired_ms, retain_ms, due_ms,
                 priority, queue_ms, body)
             SELECT * FROM {UNNEST_ROWS}
             WHERE (SELECT count(*) FROM callbacks c WHERE c.queue = $11
                    AND c.desired_ms >= $12 AND c.desired_ms < $13
                    AND c.state <> 'COMPLETED'
                    AND c.body::jsonb->>'kind' = 'SCHEDULED') < $14"
        );
        let stmt = tx.prepare_cached(&sql).await.map_err(not_stored)?;
        let capacity = i64::from(hold.capacity);
        let (start, end) = (
            hold.slot.start.timestamp_millis(),
            hold.slot.end.timestamp_millis(),
        );
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = rows.params().to_vec();
        params.extend([
            &hold.queue as &(dyn tokio_postgres::types::ToSql + Sync),
            &start,
            &end,
            &capacity,
        ]);
        self.count();
        let n = tx.execute(&stmt, &params).await.map_err(not_stored)?;
        self.count();
        tx.commit().await.map_err(not_stored)?;
        Ok(n == 1)
    }

    /// Unfinished callbacks by queue and state in one grouped statement (the partial index of
    /// unfinished rows serves it), with the QUEUED ones waiting for a retry time.
    pub(super) async fn count_by_queue_state(&self) -> Result<Vec<StateCount>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT queue, state, count(*),
                        count(*) FILTER (WHERE state = 'QUEUED'
                            AND body::jsonb->>'next_attempt_at' IS NOT NULL)
                 FROM callbacks WHERE state <> 'COMPLETED'
                 GROUP BY queue, state ORDER BY queue, state",
            )
            .await
            .map_err(db)?;
        self.count();
        let rows = client.query(&stmt, &[]).await.map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| StateCount {
                queue: r.get(0),
                state: r.get(1),
                count: usize::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                held_for_retry: usize::try_from(r.get::<_, i64>(3)).unwrap_or(0),
            })
            .collect())
    }
}

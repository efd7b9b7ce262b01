//! The PostgreSQL schema as numbered migrations, applied at start in one transaction under an
//! advisory lock (so nodes starting together apply each migration once) and recorded in
//! `schema_version`. A database newer than this build is refused rather than guessed at.
//!
//! Adding a migration: append `(next number, "SQL")` to [`MIGRATIONS`]; never edit one that
//! has shipped. Text keys are `COLLATE "C"` so listings order by bytes, as SQLite does.

use deadpool_postgres::Client;

use super::db;
use crate::store::StoreError;

/// Key of the advisory lock held while migrating (any constant unique to boomerang).
const MIGRATION_LOCK: i64 = 0x626f_6f6d_6572;

/// Every migration, in order: (version, SQL).
pub(super) const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE callbacks (
    id UUID PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    queue TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL,
    phone TEXT COLLATE "C" NOT NULL,
    desired_ms BIGINT NOT NULL,
    retain_ms BIGINT NOT NULL,
    due_ms BIGINT NOT NULL,
    priority BIGINT NOT NULL,
    queue_ms BIGINT NOT NULL,
    body TEXT NOT NULL,
    owner TEXT COLLATE "C",
    lease_until TIMESTAMPTZ
);
CREATE INDEX callbacks_active ON callbacks (seq) WHERE state <> 'COMPLETED';
CREATE INDEX callbacks_due ON callbacks (priority DESC, queue_ms, seq)
    WHERE state = 'QUEUED' AND owner IS NULL;
CREATE INDEX callbacks_in_flight ON callbacks (lease_until)
    WHERE state IN ('ROUTING', 'PROCESSING');
CREATE INDEX callbacks_owner ON callbacks (owner) WHERE owner IS NOT NULL;
CREATE INDEX callbacks_queue ON callbacks (queue, desired_ms);
CREATE INDEX callbacks_phone ON callbacks (phone);
CREATE INDEX callbacks_retain ON callbacks (retain_ms) WHERE state = 'COMPLETED';
CREATE INDEX callbacks_desired ON callbacks (desired_ms DESC, seq DESC);
CREATE TABLE documents (
    kind TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE nodes (
    node_id TEXT COLLATE "C" PRIMARY KEY,
    region TEXT NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    up_since TIMESTAMPTZ NOT NULL
);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE outbox (
    id UUID PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    state TEXT NOT NULL,
    next_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_ms, seq) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (state, seq DESC);
"#,
    ),
    (
        3,
        // A callback that becomes claimable (booked, rescheduled, back to QUEUED, its lease
        // released) wakes the nodes up in the transaction that writes it (`cluster::wake`).
        r#"
CREATE FUNCTION boomerang_callback_claimable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('boomerang_callbacks', NEW.queue);
    RETURN NULL;
END
$$;
CREATE TRIGGER callbacks_claimable AFTER INSERT OR UPDATE OF state, owner, due_ms ON callbacks
    FOR EACH ROW WHEN (NEW.owner IS NULL AND NEW.state IN ('QUEUED', 'SCHEDULED'))
    EXECUTE FUNCTION boomerang_callback_claimable();
"#,
    ),
];

/// The newest schema version this build knows.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map(|(v, _)| *v).unwrap_or(0)
}

/// Brings the database to [`latest`]; returns the version it was at.
pub(super) async fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(db)?;
    let row = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .map_err(db)?;
    let found: i32 = row.get(0);
    if found > latest() {
        return Err(StoreError::Database(format!(
            "the database schema is version {found}, newer than this build's {}: \
             run the newer boomerang, or restore a database of this version",
            latest()
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await.map_err(db)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(found)
}

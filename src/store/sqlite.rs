//! The embedded store: SQLite (bundled) in WAL mode with `synchronous=FULL`, easy for an operator
//! to inspect with the `sqlite3` shell and safe across crashes and power loss.
//!
//! Writes queue up for one writer task on tokio's blocking pool, started when the first write
//! arrives and ending once none is left: it drains every request waiting and commits them in a
//! single transaction (group commit), then acknowledges each, so durability costs one fsync per
//! batch, not per callback. Being a blocking-pool task (not a thread of its own), a write in
//! flight keeps a runtime with paused time (`start_paused`, the simulator) from jumping to its
//! next timer: virtual time cannot pass while a write has not landed. Reads use a small pool of their own connections, which
//! WAL lets run alongside the writer and each other, so a long read (a deep page, an export)
//! holds one reader, not every caller's reads.
//!
//! Listings walk the `desired_time` index newest first and page by keyset (the last row's
//! desired time and row number), so a deep page costs what the first does; the SQL names only
//! the filters given, so SQLite can pick the index that fits them.
//!
//! Callback ids are UUID v7 (time first), so the id index, like the others, grows at its end:
//! a commit dirties a handful of index pages, not one random page per new callback.
//! `synchronous=FULL` stays: with group commit the per-commit fsync is shared by the batch, and
//! `NORMAL` (durable against a process crash, not a power loss) measured no faster.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{CallbackFilter, Document, PageCursor, Store, StoreError};
use crate::callback::CallbackRecord;
use crate::push::{OutboxEntry, OutboxState};

/// Most write requests committed in one transaction.
const MAX_BATCH: usize = 4096;

/// Reader connections: reads beyond these wait for one to free up.
const READERS: usize = 4;

enum Write {
    Callbacks(Vec<CallbackRecord>),
    /// Callbacks and the outbox entries their changes raised, in the same transaction.
    CallbacksWithOutbox(Vec<CallbackRecord>, Vec<OutboxEntry>),
    Outbox(Vec<OutboxEntry>),
    Documents(Vec<Document>),
    DeleteDocument(String, String),
    RemoveExpired(DateTime<Utc>),
}

struct Request {
    write: Write,
    done: oneshot::Sender<Result<usize, String>>,
}

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
    path: PathBuf,
}

/// The writes waiting to be committed and the connection that commits them.
struct Writer {
    pending: Mutex<Pending>,
    /// The writer connection and the last row sequence number, used by one drain at a time.
    conn: Mutex<(Connection, i64)>,
}

/// Requests not yet taken by the writer task, and whether that task is running.
struct Pending {
    queue: VecDeque<Request>,
    running: bool,
}

/// The reader connections and a count of the free ones.
struct Readers {
    free: Mutex<Vec<Connection>>,
    available: tokio::sync::Semaphore,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS callbacks (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    phone TEXT NOT NULL,
    desired_time INTEGER NOT NULL,
    retain_until INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS callbacks_state ON callbacks(state, seq);
CREATE INDEX IF NOT EXISTS callbacks_queue ON callbacks(queue, desired_time);
CREATE INDEX IF NOT EXISTS callbacks_phone ON callbacks(phone);
CREATE INDEX IF NOT EXISTS callbacks_retain ON callbacks(retain_until);
CREATE INDEX IF NOT EXISTS callbacks_desired ON callbacks(desired_time);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    next_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_at);
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
";

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

fn open(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) `boomerang.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        private_files(data_dir)?;
        let path = data_dir.join("boomerang.db");
        let writer = open(&path)?;
        writer.execute_batch(SCHEMA)?;
        let readers = (0..READERS)
            .map(|_| open(&path))
            .collect::<Result<Vec<_>, _>>()?;
        let seq: i64 = writer
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM callbacks", [], |r| {
                r.get(0)
            })
            .unwrap_or(0);
        Ok(SqliteStore {
            writer: Arc::new(Writer {
                pending: Mutex::new(Pending {
                    queue: VecDeque::new(),
                    running: false,
                }),
                conn: Mutex::new((writer, seq)),
            }),
            readers: Arc::new(Readers {
                free: Mutex::new(readers),
                available: tokio::sync::Semaphore::new(READERS),
            }),
            path,
        })
    }

    /// The database file, for operators and tests.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write(&self, write: Write) -> Result<usize, StoreError> {
        let (done, wait) = oneshot::channel();
        let start = {
            let mut p = self.writer.pending.lock();
            p.queue.push_back(Request { write, done });
            !std::mem::replace(&mut p.running, true)
        };
        if start {
            let mut guard = DrainGuard {
                writer: self.writer.clone(),
                armed: true,
            };
            tokio::task::spawn_blocking(move || {
                drain(&guard.writer);
                guard.disarm();
            });
        }
        match wait.await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(msg)) => Err(StoreError::NotStored(msg)),
            Err(_) => Err(StoreError::Closed),
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        let permit = readers
            .available
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        permit.forget();
        tokio::task::spawn_blocking(move || {
            let conn = readers.free.lock().pop();
            // The lease gives the connection and the permit back even if `f` panics.
            let lease = Lease { readers, conn };
            match &lease.conn {
                Some(c) => f(c),
                None => Err(StoreError::Closed),
            }
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

/// A reader connection in use.
struct Lease {
    readers: Arc<Readers>,
    conn: Option<Connection>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.readers.free.lock().push(c);
        }
        self.readers.available.add_permits(1);
    }
}

/// The files of the store hold phone numbers and user data: the data directory is created
/// `0700`, and the database is created (or narrowed, if an older version left it wider) `0600`
/// before SQLite opens it. SQLite gives its `-wal` and `-shm` files the database's mode, and the
/// existing ones are narrowed here too.
fn private_files(data_dir: &Path) -> Result<(), std::io::Error> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if !data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)?;
    }
    let db = data_dir.join("boomerang.db");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&db)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let f = data_dir.join(format!("boomerang.db{suffix}"));
        match std::fs::metadata(&f) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Owned by a writer task: if the task panics, or is dropped unrun (its runtime shutting
/// down), the writes it held fail as [`StoreError::Closed`] and the next write starts afresh.
struct DrainGuard {
    writer: Arc<Writer>,
    armed: bool,
}

impl DrainGuard {
    /// The task drained the queue and marked the writer idle itself.
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        if self.armed {
            let mut p = self.writer.pending.lock();
            p.running = false;
            p.queue.clear();
        }
    }
}

/// Commits the waiting writes batch after batch until none is left, then marks the writer
/// idle (under the same lock as the queue, so a write queued meanwhile starts a new drain).
fn drain(writer: &Writer) {
    loop {
        let batch: Vec<Request> = {
            let mut p = writer.pending.lock();
            if p.queue.is_empty() {
                p.running = false;
                return;
            }
            let n = p.queue.len().min(MAX_BATCH);
            p.queue.drain(..n).collect()
        };
        let outcome = {
            let mut guard = writer.conn.lock();
            let (conn, seq) = &mut *guard;
            apply(conn, &batch, seq)
        };
        match outcome {
            Ok(counts) => {
                for (req, n) in batch.into_iter().zip(counts) {
                    let _ = req.done.send(Ok(n));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for req in batch {
                    let _ = req.done.send(Err(msg.clone()));
                }
            }
        }
    }
}

fn apply(
    conn: &mut Connection,
    batch: &[Request],
    seq: &mut i64,
) -> Result<Vec<usize>, StoreError> {
    let tx = conn.transaction()?;
    let mut counts = Vec::with_capacity(batch.len());
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO callbacks (id, seq, queue, state, phone, desired_time, retain_until, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET queue = ?3, state = ?4, phone = ?5,
                 desired_time = ?6, retain_until = ?7, body = ?8",
        )?;
        let mut put_outbox = tx.prepare_cached(
            "INSERT INTO outbox (id, state, next_at, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET state = ?2, next_at = ?3, body = ?4",
        )?;
        let mut outbox = |entries: &[OutboxEntry]| -> Result<usize, StoreError> {
            for e in entries {
                put_outbox.execute(params![
                    e.id.to_string(),
                    e.state.name(),
                    e.next_attempt_at.timestamp_millis(),
                    serde_json::to_string(e)?,
                ])?;
            }
            Ok(entries.len())
        };
        let mut put_doc = tx.prepare_cached(
            "INSERT INTO documents (kind, id, body) VALUES (?1, ?2, ?3)
             ON CONFLICT(kind, id) DO UPDATE SET body = ?3",
        )?;
        for req in batch {
            let n = match &req.write {
                Write::Outbox(entries) => outbox(entries)?,
                Write::Callbacks(recs) | Write::CallbacksWithOutbox(recs, _) => {
                    if let Write::CallbacksWithOutbox(_, entries) = &req.write {
                        outbox(entries)?;
                    }
                    for r in recs {
                        *seq += 1;
                        upsert.execute(params![
                            r.id.to_string(),
                            *seq,
                            r.queue,
                            r.state.name(),
                            r.phone,
                            r.desired_time.timestamp_millis(),
                            r.retain_until().timestamp_millis(),
                            serde_json::to_string(r)?,
                        ])?;
                    }
                    recs.len()
                }
                Write::Documents(docs) => {
                    for d in docs {
                        put_doc.execute(params![d.kind, d.id, d.body.to_string()])?;
                    }
                    docs.len()
                }
                Write::DeleteDocument(kind, id) => tx.execute(
                    "DELETE FROM documents WHERE kind = ?1 AND id = ?2",
                    params![kind, id],
                )?,
                // `retain_until` is the desired time plus the fixed RETENTION: comparing it
                // with the shifted cutoff uses its index for any configured retention.
                Write::RemoveExpired(cutoff) => tx.execute(
                    "DELETE FROM callbacks WHERE retain_until < ?1 AND state = 'COMPLETED'",
                    params![cutoff.timestamp_millis()],
                )?,
            };
            counts.push(n);
        }
    }
    tx.commit()?;
    Ok(counts)
}

/// Rows whose first column is a stored JSON body into values; an unreadable one is logged
/// (naming `what`) and left out.
fn decode_rows<T: serde::de::DeserializeOwned>(
    stmt: &mut rusqlite::Statement<'_>,
    args: impl rusqlite::Params,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let bodies = stmt
        .query_map(args, |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(super::decode_bodies(bodies, what))
}

/// One page of a listing: SQL naming only the filters given (so SQLite can use the index that
/// fits them, `desired_time` by default, walked newest first), keyset `after` the cursor.
fn select_page(
    c: &Connection,
    f: &CallbackFilter,
) -> Result<(Vec<CallbackRecord>, Option<PageCursor>), StoreError> {
    use rusqlite::types::Value;
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut add = |clause: &'static str, values: Vec<Value>| {
        clauses.push(clause);
        args.extend(values);
    };
    if let Some(q) = &f.queue {
        add("queue = ?", vec![Value::Text(q.clone())]);
    }
    if let Some(st) = &f.state {
        add("state = ?", vec![Value::Text(st.clone())]);
    }
    if let Some(p) = &f.phone {
        add("phone = ?", vec![Value::Text(p.clone())]);
    }
    if let Some(t) = f.from {
        add(
            "desired_time >= ?",
            vec![Value::Integer(t.timestamp_millis())],
        );
    }
    if let Some(t) = f.to {
        add(
            "desired_time < ?",
            vec![Value::Integer(t.timestamp_millis())],
        );
    }
    if let Some(qs) = &f.queues {
        add(
            "queue IN (SELECT value FROM json_each(?))",
            vec![Value::Text(serde_json::to_string(qs)?)],
        );
    }
    if let Some(cur) = f.after {
        add(
            "(desired_time, rowid) < (?, ?)",
            vec![Value::Integer(cur.desired_ms), Value::Integer(cur.row)],
        );
    }
    let mut sql = String::from("SELECT body, desired_time, rowid FROM callbacks");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY desired_time DESC, rowid DESC LIMIT ? OFFSET ?");
    let limit = if f.limit == 0 {
        i64::MAX
    } else {
        f.limit as i64
    };
    args.push(Value::Integer(limit));
    args.push(Value::Integer(i64::try_from(f.offset).unwrap_or(i64::MAX)));
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let cursor = rows.last().map(|(_, ms, row)| PageCursor {
        desired_ms: *ms,
        row: *row,
    });
    let records = rows
        .iter()
        .map(|(b, _, _)| serde_json::from_str(b).map_err(StoreError::from))
        .collect::<Result<Vec<CallbackRecord>, _>>()?;
    Ok((records, cursor))
}

#[async_trait]
impl Store for SqliteStore {
    async fn save_callbacks(&self, records: Vec<CallbackRecord>) -> Result<(), StoreError> {
        self.write(Write::Callbacks(records)).await.map(|_| ())
    }

    async fn callback(&self, id: Uuid) -> Result<Option<CallbackRecord>, StoreError> {
        self.read(move |c| {
            let body: Option<String> = c
                .query_row(
                    "SELECT body FROM callbacks WHERE id = ?1",
                    [id.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            body.map(|b| serde_json::from_str(&b).map_err(StoreError::from))
                .transpose()
        })
        .await
    }

    async fn active_callbacks(&self) -> Result<Vec<CallbackRecord>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT body FROM callbacks WHERE state != 'COMPLETED' ORDER BY rowid")?;
            decode_rows(&mut stmt, params![], "callback")
        })
        .await
    }

    async fn query_callbacks_page(
        &self,
        filter: &CallbackFilter,
    ) -> Result<(Vec<CallbackRecord>, Option<PageCursor>), StoreError> {
        let f = filter.clone();
        self.read(move |c| select_page(c, &f)).await
    }

    async fn remove_completed_before(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        self.write(Write::RemoveExpired(cutoff)).await
    }

    async fn save_documents(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        self.write(Write::Documents(docs)).await.map(|_| ())
    }

    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        self.write(Write::DeleteDocument(kind.into(), id.into()))
            .await
            .map(|n| n > 0)
    }

    async fn save_callbacks_with_outbox(
        &self,
        records: Vec<CallbackRecord>,
        entries: Vec<OutboxEntry>,
    ) -> Result<(), StoreError> {
        self.write(Write::CallbacksWithOutbox(records, entries))
            .await
            .map(|_| ())
    }

    async fn save_outbox(&self, entries: Vec<OutboxEntry>) -> Result<(), StoreError> {
        self.write(Write::Outbox(entries)).await.map(|_| ())
    }

    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT body FROM outbox WHERE state = 'pending' AND next_at <= ?1
                 ORDER BY next_at, rowid LIMIT ?2",
            )?;
            decode_rows(
                &mut stmt,
                params![now.timestamp_millis(), limit],
                "push event",
            )
        })
        .await
    }

    async fn outbox_next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|c| {
            let ms: Option<i64> = c.query_row(
                "SELECT MIN(next_at) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )?;
            Ok(ms.and_then(DateTime::from_timestamp_millis))
        })
        .await
    }

    async fn outbox_list(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = super::sql_limit(limit);
        self.read(move |c| match state {
            Some(st) => {
                let mut stmt = c.prepare_cached(
                    "SELECT body FROM outbox WHERE state = ?1 ORDER BY rowid DESC LIMIT ?2",
                )?;
                decode_rows(&mut stmt, params![st.name(), limit], "push event")
            }
            None => {
                let mut stmt =
                    c.prepare_cached("SELECT body FROM outbox ORDER BY rowid DESC LIMIT ?1")?;
                decode_rows(&mut stmt, params![limit], "push event")
            }
        })
        .await
    }

    async fn outbox_pending(&self) -> Result<usize, StoreError> {
        self.read(|c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn documents(&self, kind: &str) -> Result<Vec<Document>, StoreError> {
        let kind = kind.to_string();
        self.read(move |c| {
            let mut stmt =
                c.prepare("SELECT id, body FROM documents WHERE kind = ?1 ORDER BY id")?;
            let rows = stmt
                .query_map([&kind], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(id, body)| {
                    Ok(Document {
                        kind: kind.clone(),
                        id,
                        body: serde_json::from_str(&body)?,
                    })
                })
                .collect()
        })
        .await
    }
}

/// The contract every backend keeps is checked in `store::contract`; these are SQLite's own.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::{CallbackState, CompletionReason};
    use crate::store::contract::{cancelled, rec, t0};

    #[tokio::test]
    async fn saved_callbacks_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<Uuid>;
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            let recs: Vec<_> = (0..50)
                .map(|i| rec(&format!("+3312345{i:04}"), t0()))
                .collect();
            ids = recs.iter().map(|r| r.id).collect();
            // Concurrent saves are grouped into few transactions but all acknowledged.
            let mut tasks = Vec::new();
            for r in recs {
                let s = store.clone();
                tasks.push(tokio::spawn(async move { s.save_callbacks(vec![r]).await }));
            }
            for t in tasks {
                t.await.unwrap().unwrap();
            }
            let done = cancelled(store.callback(ids[3]).await.unwrap().unwrap());
            store.save_callbacks(vec![done]).await.unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let active = store.active_callbacks().await.unwrap();
        assert_eq!(active.len(), 49);
        assert!(active.iter().all(|r| r.id != ids[3]));
        let got = store.callback(ids[3]).await.unwrap().unwrap();
        assert_eq!(
            got.state,
            CallbackState::Completed(CompletionReason::Cancelled)
        );
        assert_eq!(got.history.len(), 2);
    }

    /// Regression: the writer was a thread of its own, so while a commit was in flight a runtime
    /// with paused time saw itself idle and jumped to its next timer: virtual time passed before
    /// the write landed (the flaky "never completed" callback lifecycle scenarios).
    #[tokio::test(start_paused = true)]
    async fn paused_time_does_not_pass_while_a_write_is_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // A task with a timer every millisecond: the next timer auto-advance would jump to.
        let ticker = tokio::spawn(async {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        });
        for i in 0..20 {
            let before = crate::clock::tokio_now();
            store
                .save_callbacks(vec![rec(&format!("+3361000{i:04}"), t0())])
                .await
                .unwrap();
            assert_eq!(crate::clock::tokio_now(), before, "write {i}");
        }
        ticker.abort();
    }
}

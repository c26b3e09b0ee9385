//! The SQLite store backend: one file in the data dir (WAL mode), the
//! embedded default.
//!
//! Schema changes are numbered migrations applied at open, tracked with
//! `PRAGMA user_version`, so an old data dir upgrades in place; the version
//! is read and the migrations applied in one IMMEDIATE transaction, so two
//! processes opening one file at once do not both migrate. Calls run on
//! tokio's blocking pool; a single connection behind a mutex is enough for
//! the write rates a broker sees, and SQLite serializes writers anyway.
//! Read-check-write methods (`decide`, `transition`, `consume_review`,
//! `claim_expired_requests`, `apply_policy`) run in IMMEDIATE transactions:
//! the write lock is taken before the read, so another writer (another
//! process on the same file) cannot slip in between.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{
    DecideError, Decided, Decision, Event, PolicyVersion, RequestRow, RequestState, SessionFilter,
    SessionRow, StoreError,
};

/// The store's file name in the data dir (the audit log's tables live in it too).
pub const DB_FILE: &str = "hoop.sqlite3";

/// Migrations, in order; index + 1 is the schema version after applying it.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: sessions and events.
    "CREATE TABLE sessions (
        id            TEXT PRIMARY KEY,
        subject       TEXT NOT NULL,
        user_name     TEXT NOT NULL,
        connection    TEXT NOT NULL,
        reason        TEXT,
        secret_sha256 TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        closed_at     INTEGER
     );
     CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        at         INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        user_name  TEXT,
        connection TEXT,
        session_id TEXT,
        detail     TEXT NOT NULL DEFAULT ''
     );
     CREATE INDEX events_at ON events(at);",
    // 2: policy versions, access requests and their approvals.
    "CREATE TABLE policies (
        version    INTEGER PRIMARY KEY,
        text       TEXT NOT NULL,
        applied_by TEXT NOT NULL,
        applied_at INTEGER NOT NULL
     );
     CREATE TABLE access_requests (
        id               TEXT PRIMARY KEY,
        subject          TEXT NOT NULL,
        user_name        TEXT NOT NULL,
        connection       TEXT NOT NULL,
        reason           TEXT,
        duration_secs    INTEGER NOT NULL,
        rule             TEXT NOT NULL,
        approvals_needed INTEGER NOT NULL,
        approvers_json   TEXT NOT NULL,
        state            TEXT NOT NULL,
        created_at       INTEGER NOT NULL,
        expires_at       INTEGER NOT NULL,
        decided_at       INTEGER,
        grant_ends_at    INTEGER
     );
     CREATE INDEX access_requests_state ON access_requests(state);
     CREATE TABLE approvals (
        request_id TEXT NOT NULL REFERENCES access_requests(id),
        approver   TEXT NOT NULL,
        decision   TEXT NOT NULL,
        comment    TEXT,
        at         INTEGER NOT NULL,
        PRIMARY KEY (request_id, approver)
     );
     ALTER TABLE sessions ADD COLUMN request_id TEXT;",
    // 3: when a pending request's expiry was announced to webhooks. Requests
    // already expired at upgrade count as announced: no burst of stale notices.
    "ALTER TABLE access_requests ADD COLUMN expiry_notified_at INTEGER;
     UPDATE access_requests SET expiry_notified_at = expires_at
      WHERE state = 'pending' AND expires_at <= CAST(strftime('%s', 'now') AS INTEGER);",
    // 4: statement reviews ride on the access-request machinery (approvals,
    // N-of-M, expiry, webhooks): `kind` tells them apart; a review carries
    // the statement, its fingerprint, the session it came from, and when
    // its one run was used. Old rows are access requests.
    "ALTER TABLE access_requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'access';
     ALTER TABLE access_requests ADD COLUMN statement TEXT;
     ALTER TABLE access_requests ADD COLUMN fingerprint TEXT;
     ALTER TABLE access_requests ADD COLUMN session_id TEXT;
     ALTER TABLE access_requests ADD COLUMN consumed_at INTEGER;
     CREATE INDEX access_requests_review
        ON access_requests(kind, subject, connection, fingerprint);",
    // 5: when a grant was revoked (brokers sharing the store end their
    // sessions under it), sessions listed by time, and recordings' bodies
    // and indexes by session.
    "ALTER TABLE access_requests ADD COLUMN revoked_at INTEGER;
     CREATE INDEX access_requests_revoked ON access_requests(revoked_at);
     CREATE INDEX sessions_created ON sessions(created_at);
     CREATE TABLE recordings (
        session_id TEXT NOT NULL,
        name       TEXT NOT NULL,
        body       BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (session_id, name)
     );",
];

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        subject: r.get(1)?,
        user_name: r.get(2)?,
        connection: r.get(3)?,
        reason: r.get(4)?,
        secret_sha256: r.get(5)?,
        created_at: r.get::<_, i64>(6)? as u64,
        expires_at: r.get::<_, i64>(7)? as u64,
        closed_at: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        request_id: r.get(9)?,
    })
}

const REQUEST_COLUMNS: &str = "id, subject, user_name, connection, reason, duration_secs, rule,
    approvals_needed, approvers_json, state, created_at, expires_at, decided_at, grant_ends_at,
    kind, statement, fingerprint, session_id, consumed_at";

fn request_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        subject: r.get(1)?,
        user_name: r.get(2)?,
        connection: r.get(3)?,
        reason: r.get(4)?,
        duration_secs: r.get::<_, i64>(5)? as u64,
        rule: r.get(6)?,
        approvals_needed: r.get::<_, i64>(7)? as u32,
        approvers_json: r.get(8)?,
        state: r.get(9)?,
        created_at: r.get::<_, i64>(10)? as u64,
        expires_at: r.get::<_, i64>(11)? as u64,
        decided_at: r.get::<_, Option<i64>>(12)?.map(|v| v as u64),
        grant_ends_at: r.get::<_, Option<i64>>(13)?.map(|v| v as u64),
        approvals: Vec::new(),
        kind: r.get(14)?,
        statement: r.get(15)?,
        fingerprint: r.get(16)?,
        session_id: r.get(17)?,
        consumed_at: r.get::<_, Option<i64>>(18)?.map(|v| v as u64),
    })
}

fn load_request(c: &Connection, id: &str) -> rusqlite::Result<Option<RequestRow>> {
    let Some(mut row) = c
        .query_row(
            &format!("SELECT {REQUEST_COLUMNS} FROM access_requests WHERE id = ?1"),
            params![id],
            request_from_row,
        )
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = c.prepare(
        "SELECT approver, decision, comment, at FROM approvals WHERE request_id = ?1 ORDER BY at, approver",
    )?;
    row.approvals = stmt
        .query_map(params![id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as u64))
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(row))
}

/// The SQLite backend: one connection behind a mutex.
pub struct SqliteStoreBackend {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStoreBackend {
    /// Opens (creating if needed) the file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<SqliteStoreBackend, StoreError> {
        Self::init(Connection::open(path)?)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<SqliteStoreBackend, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<SqliteStoreBackend, StoreError> {
        // The busy timeout first: switching to WAL and migrating wait for
        // another process holding the file instead of failing at once (the
        // switch retries where SQLite will not wait: see `sqlite_wal`).
        conn.busy_timeout(crate::store::sqlite_wal::BUSY_WAIT)?;
        crate::store::sqlite_wal::enable(&conn)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Version read and migrations in one IMMEDIATE transaction: of two
        // processes opening a fresh file at once, the second waits and then
        // finds the schema current.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let applied = usize::try_from(version).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::SchemaTooNew {
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(SqliteStoreBackend {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Poisoned)?;
            f(&mut guard).map_err(StoreError::from)
        })
        .await?
    }

    /// Inserts a new session.
    pub async fn insert_session(&self, s: SessionRow) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO sessions (id, subject, user_name, connection, reason, secret_sha256,
                                       created_at, expires_at, closed_at, request_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9)",
                params![
                    s.id,
                    s.subject,
                    s.user_name,
                    s.connection,
                    s.reason,
                    s.secret_sha256,
                    s.created_at as i64,
                    s.expires_at as i64,
                    s.request_id
                ],
            )
            .map(|_| ())
        })
        .await
    }

    /// The session with this id.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let id = id.to_owned();
        self.with(move |c| {
            c.query_row(
                "SELECT id, subject, user_name, connection, reason, secret_sha256,
                        created_at, expires_at, closed_at, request_id
                 FROM sessions WHERE id = ?1",
                params![id],
                session_from_row,
            )
            .optional()
        })
        .await
    }

    /// Marks a session closed; returns false when it was unknown or already closed.
    pub async fn close_session(&self, id: &str, at: u64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.with(move |c| {
            c.execute(
                "UPDATE sessions SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL",
                params![id, at as i64],
            )
            .map(|n| n == 1)
        })
        .await
    }

    /// Sessions matching `f`, newest first (then by id).
    pub async fn list_sessions(&self, f: SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, subject, user_name, connection, reason, secret_sha256,
                        created_at, expires_at, closed_at, request_id
                 FROM sessions
                 WHERE (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR user_name = ?2)
                   AND (?3 IS NULL OR connection = ?3) AND (?4 IS NULL OR created_at >= ?4)
                 ORDER BY created_at DESC, id LIMIT ?5",
            )?;
            let rows = stmt.query_map(
                params![
                    f.subject,
                    f.user_name,
                    f.connection,
                    f.since.map(|v| v as i64),
                    f.limit as i64
                ],
                session_from_row,
            )?;
            rows.collect()
        })
        .await
    }

    /// Stores (or replaces) the recording part `name` of `session_id`.
    pub async fn put_recording(
        &self,
        session_id: &str,
        name: &str,
        body: Vec<u8>,
        at: u64,
    ) -> Result<(), StoreError> {
        let (session_id, name) = (session_id.to_owned(), name.to_owned());
        self.with(move |c| {
            c.execute(
                "INSERT INTO recordings (session_id, name, body, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (session_id, name) DO UPDATE SET body = excluded.body,
                    created_at = excluded.created_at",
                params![session_id, name, body, at as i64],
            )
            .map(|_| ())
        })
        .await
    }

    /// The recording part `name` of `session_id`.
    pub async fn recording(
        &self,
        session_id: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (session_id, name) = (session_id.to_owned(), name.to_owned());
        self.with(move |c| {
            c.query_row(
                "SELECT body FROM recordings WHERE session_id = ?1 AND name = ?2",
                params![session_id, name],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }

    /// The names of `session_id`'s recording parts, in name order.
    pub async fn recording_names(&self, session_id: &str) -> Result<Vec<String>, StoreError> {
        let session_id = session_id.to_owned();
        self.with(move |c| {
            let mut stmt =
                c.prepare("SELECT name FROM recordings WHERE session_id = ?1 ORDER BY name")?;
            let rows = stmt.query_map(params![session_id], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }

    /// [`super::Store::prune_recordings`] on this backend.
    pub async fn prune_recordings(&self, before: u64) -> Result<u64, StoreError> {
        self.with(move |c| {
            c.execute(
                "DELETE FROM recordings WHERE created_at < ?1",
                params![before as i64],
            )
            .map(|n| n as u64)
        })
        .await
    }

    /// Appends an event; durable when this returns.
    pub async fn append_event(&self, e: Event) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO events (at, kind, user_name, connection, session_id, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    e.at as i64,
                    e.kind,
                    e.user_name,
                    e.connection,
                    e.session_id,
                    e.detail
                ],
            )
            .map(|_| ())
        })
        .await
    }

    /// The most recent `limit` events, oldest first.
    pub async fn recent_events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT at, kind, user_name, connection, session_id, detail FROM
                   (SELECT * FROM events ORDER BY id DESC LIMIT ?1) ORDER BY id ASC",
            )?;
            let rows = stmt.query_map(params![limit as i64], |r| {
                Ok(Event {
                    at: r.get::<_, i64>(0)? as u64,
                    kind: r.get(1)?,
                    user_name: r.get(2)?,
                    connection: r.get(3)?,
                    session_id: r.get(4)?,
                    detail: r.get(5)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
    /// The newest policy version, if any was ever stored.
    pub async fn active_policy(&self) -> Result<Option<PolicyVersion>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT version, text, applied_by, applied_at FROM policies
                 ORDER BY version DESC LIMIT 1",
                [],
                |r| {
                    Ok(PolicyVersion {
                        version: r.get::<_, i64>(0)? as u64,
                        text: r.get(1)?,
                        applied_by: r.get(2)?,
                        applied_at: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .optional()
        })
        .await
    }

    /// Stores `text` as the next version, unless the newest version is no
    /// longer `expected` (someone applied in between): then `Ok(None)`.
    pub async fn apply_policy(
        &self,
        expected: Option<u64>,
        text: String,
        applied_by: String,
        at: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let current: Option<i64> =
                tx.query_row("SELECT MAX(version) FROM policies", [], |r| r.get(0))?;
            if current.map(|v| v as u64) != expected {
                return Ok(None);
            }
            let next = current.unwrap_or(0) + 1;
            tx.execute(
                "INSERT INTO policies (version, text, applied_by, applied_at) VALUES (?1, ?2, ?3, ?4)",
                params![next, text, applied_by, at as i64],
            )?;
            tx.commit()?;
            Ok(Some(next as u64))
        })
        .await
    }
    /// Stores a new pending request.
    pub async fn insert_request(&self, r: RequestRow) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO access_requests ({REQUEST_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                             ?15, ?16, ?17, ?18, ?19)"
                ),
                params![
                    r.id,
                    r.subject,
                    r.user_name,
                    r.connection,
                    r.reason,
                    r.duration_secs as i64,
                    r.rule,
                    i64::from(r.approvals_needed),
                    r.approvers_json,
                    r.state,
                    r.created_at as i64,
                    r.expires_at as i64,
                    r.decided_at.map(|v| v as i64),
                    r.grant_ends_at.map(|v| v as i64),
                    r.kind,
                    r.statement,
                    r.fingerprint,
                    r.session_id,
                    r.consumed_at.map(|v| v as i64)
                ],
            )
            .map(|_| ())
        })
        .await
    }

    /// The request with this id, with its decisions.
    pub async fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        let id = id.to_owned();
        self.with(move |c| load_request(c, &id)).await
    }

    /// Requests matching `filter` (`subject = ?` or `state = 'pending'`), newest first.
    async fn requests_where(
        &self,
        clause: &'static str,
        arg: String,
        limit: usize,
    ) -> Result<Vec<RequestRow>, StoreError> {
        self.with(move |c| {
            let ids: Vec<String> = {
                let mut stmt = c.prepare(&format!(
                    "SELECT id FROM access_requests WHERE {clause} ORDER BY created_at DESC, id LIMIT ?2"
                ))?;
                stmt.query_map(params![arg, limit as i64], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(r) = load_request(c, &id)? {
                    out.push(r);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Requests made by `subject`, newest first.
    pub async fn requests_of(
        &self,
        subject: &str,
        limit: usize,
    ) -> Result<Vec<RequestRow>, StoreError> {
        self.requests_where("subject = ?1", subject.to_owned(), limit)
            .await
    }

    /// Pending requests, newest first.
    pub async fn pending_requests(&self, limit: usize) -> Result<Vec<RequestRow>, StoreError> {
        self.requests_where(
            "state = ?1",
            RequestState::Pending.as_str().to_owned(),
            limit,
        )
        .await
    }

    /// Pending requests whose decision deadline has passed (`expires_at <=
    /// now`) and whose expiry was not announced yet, oldest first; marks them
    /// announced in the same transaction, so each expiry is handed out once,
    /// even to several brokers sharing the store.
    pub async fn claim_expired_requests(
        &self,
        now: u64,
        limit: usize,
    ) -> Result<Vec<RequestRow>, StoreError> {
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let ids: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT id FROM access_requests WHERE state = 'pending' AND expires_at <= ?1
                       AND expiry_notified_at IS NULL ORDER BY expires_at, id LIMIT ?2",
                )?;
                stmt.query_map(params![now as i64, limit as i64], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                tx.execute(
                    "UPDATE access_requests SET expiry_notified_at = ?2 WHERE id = ?1",
                    params![id, now as i64],
                )?;
                if let Some(r) = load_request(&tx, &id)? {
                    out.push(r);
                }
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Records `approver`'s decision (`approve` or `deny`) atomically: the
    /// request must still be pending and before its deadline, each approver
    /// decides once, and the approval that reaches the needed count turns the
    /// request into a grant of `duration_secs` from `now`. Writers are
    /// serialized (IMMEDIATE transaction), so two approvers at once can never
    /// grant twice.
    pub async fn decide(
        &self,
        id: &str,
        approver: &str,
        decision: Decision,
        comment: Option<String>,
        now: u64,
    ) -> Result<Decided, StoreError> {
        let (id, approver) = (id.to_owned(), approver.to_owned());
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(row) = load_request(&tx, &id)? else {
                return Ok(Err(DecideError::Unknown));
            };
            if let Err(e) = DecideError::check(&row, &approver, now) {
                return Ok(Err(e));
            }
            tx.execute(
                "INSERT INTO approvals (request_id, approver, decision, comment, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, approver, decision, comment, now as i64],
            )?;
            if decision == Decision::Deny {
                tx.execute(
                    "UPDATE access_requests SET state = 'denied', decided_at = ?2 WHERE id = ?1",
                    params![id, now as i64],
                )?;
            } else {
                let approvals: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM approvals WHERE request_id = ?1 AND decision = 'approve'",
                    params![id],
                    |r| r.get(0),
                )?;
                if approvals >= i64::from(row.approvals_needed) {
                    tx.execute(
                        "UPDATE access_requests SET state = 'approved', decided_at = ?2,
                                grant_ends_at = ?3 WHERE id = ?1",
                        params![id, now as i64, (now + row.duration_secs) as i64],
                    )?;
                }
            }
            let updated = load_request(&tx, &id)?;
            tx.commit()?;
            Ok(updated.ok_or(DecideError::Unknown))
        })
        .await
    }

    /// Uses the approval of a statement review: the oldest approved, unused
    /// review of `subject` on `connection` for `fingerprint` whose run window
    /// (`grant_ends_at`) is still open is marked used at `now` and returned.
    /// One IMMEDIATE transaction: of two runs racing for one approval, exactly
    /// one gets it.
    pub async fn consume_review(
        &self,
        subject: &str,
        connection: &str,
        fingerprint: &str,
        now: u64,
    ) -> Result<Option<RequestRow>, StoreError> {
        let (subject, connection, fingerprint) = (
            subject.to_owned(),
            connection.to_owned(),
            fingerprint.to_owned(),
        );
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let id: Option<String> = tx
                .query_row(
                    "SELECT id FROM access_requests
                      WHERE kind = 'statement' AND subject = ?1 AND connection = ?2
                        AND fingerprint = ?3 AND state = 'approved' AND consumed_at IS NULL
                        AND grant_ends_at > ?4
                      ORDER BY decided_at, id LIMIT 1",
                    params![subject, connection, fingerprint, now as i64],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE access_requests SET consumed_at = ?2 WHERE id = ?1 AND consumed_at IS NULL",
                params![id, now as i64],
            )?;
            let row = load_request(&tx, &id)?;
            tx.commit()?;
            Ok(row)
        })
        .await
    }

    /// A pending, undecided statement review of `subject` on `connection`
    /// for `fingerprint` whose decision deadline is after `now` (so running
    /// the statement again while it waits does not ask twice).
    pub async fn pending_review(
        &self,
        subject: &str,
        connection: &str,
        fingerprint: &str,
        now: u64,
    ) -> Result<Option<RequestRow>, StoreError> {
        let (subject, connection, fingerprint) = (
            subject.to_owned(),
            connection.to_owned(),
            fingerprint.to_owned(),
        );
        self.with(move |c| {
            let id: Option<String> = c
                .query_row(
                    "SELECT id FROM access_requests
                      WHERE kind = 'statement' AND subject = ?1 AND connection = ?2
                        AND fingerprint = ?3 AND state = 'pending' AND expires_at > ?4
                      ORDER BY created_at DESC, id LIMIT 1",
                    params![subject, connection, fingerprint, now as i64],
                    |r| r.get(0),
                )
                .optional()?;
            match id {
                Some(id) => load_request(c, &id),
                None => Ok(None),
            }
        })
        .await
    }

    /// Moves a request from `from` to `to` (cancel: pending → cancelled;
    /// revoke: approved → revoked). Returns the row after, or the state it
    /// was in when the move did not apply.
    pub async fn transition(
        &self,
        id: &str,
        from: RequestState,
        to: RequestState,
        now: u64,
    ) -> Result<Decided, StoreError> {
        let id = id.to_owned();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(row) = load_request(&tx, &id)? else {
                return Ok(Err(DecideError::Unknown));
            };
            if row.state != from {
                return Ok(Err(DecideError::Closed(row.state.into())));
            }
            tx.execute(
                "UPDATE access_requests SET state = ?2, decided_at = COALESCE(decided_at, ?3),
                        revoked_at = CASE WHEN ?2 = 'revoked' THEN ?3 ELSE revoked_at END
                  WHERE id = ?1",
                params![id, to, now as i64],
            )?;
            let updated = load_request(&tx, &id)?;
            tx.commit()?;
            Ok(updated.ok_or(DecideError::Unknown))
        })
        .await
    }
    /// Ids of grants revoked at or after `since` (Unix seconds), oldest
    /// first: how a broker learns of revocations made through another
    /// broker sharing the store.
    pub async fn revoked_since(&self, since: u64) -> Result<Vec<String>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT id FROM access_requests WHERE revoked_at >= ?1 ORDER BY revoked_at, id",
            )?;
            let rows = stmt.query_map(params![since as i64], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }
}

//! The embedded store: one SQLite file in the data dir (WAL mode).
//!
//! Schema changes are numbered migrations applied at open, tracked with
//! `PRAGMA user_version`, so an old data dir upgrades in place. Calls run on
//! tokio's blocking pool; a single connection behind a mutex is enough for
//! the write rates a broker sees, and SQLite serializes writers anyway.
//!
//! Sessions keep the SHA-256 of their one-time tunnel secret, never the
//! secret. The `events` table is the start of the audit trail (the
//! hash-chained log comes with the evidence work).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension as _, params};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task failed.
    #[error("store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The store mutex was poisoned by a panic elsewhere.
    #[error("store lock poisoned")]
    Poisoned,
}

/// Migrations, in order; index + 1 is the schema version after applying it.
const MIGRATIONS: &[&str] = &[
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
];

/// `kind` of an access request.
pub const KIND_ACCESS: &str = "access";
/// `kind` of a statement review.
pub const KIND_STATEMENT: &str = "statement";

/// One session row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Session id.
    pub id: String,
    /// Token subject of the owner.
    pub subject: String,
    /// Owner's user name.
    pub user_name: String,
    /// Connection name.
    pub connection: String,
    /// Justification given.
    pub reason: Option<String>,
    /// Hex SHA-256 of the one-time tunnel secret.
    pub secret_sha256: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
    /// Unix seconds, when closed.
    pub closed_at: Option<u64>,
    /// The access request (grant) the session was opened under.
    pub request_id: Option<String>,
}

/// One event for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unix seconds.
    pub at: u64,
    /// e.g. `session.open`, `tunnel.open`, `token.refused`.
    pub kind: String,
    /// Who, when known.
    pub user_name: Option<String>,
    /// Which connection, when relevant.
    pub connection: Option<String>,
    /// Which session, when relevant.
    pub session_id: Option<String>,
    /// Free text; never secrets.
    pub detail: String,
}

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) `dir/hoop.sqlite3` and migrates it.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(dir.join("hoop.sqlite3"))?;
        Self::init(conn)
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let applied = usize::try_from(version).unwrap_or(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(Store {
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
                |r| {
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
                },
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
}

/// One stored policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// 1, 2, ...
    pub version: u64,
    /// The document as applied.
    pub text: String,
    /// Who applied it (`bootstrap` for the first one).
    pub applied_by: String,
    /// Unix seconds.
    pub applied_at: u64,
}

impl Store {
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
}

/// One access request row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// Request id.
    pub id: String,
    /// Requester's token subject.
    pub subject: String,
    /// Requester's user name.
    pub user_name: String,
    /// Connection.
    pub connection: String,
    /// Justification.
    pub reason: Option<String>,
    /// Grant length, seconds.
    pub duration_secs: u64,
    /// Rule that required approval.
    pub rule: String,
    /// Distinct approvals needed.
    pub approvals_needed: u32,
    /// Approvers (JSON of `hoop_shared::policy::Approvers`).
    pub approvers_json: String,
    /// pending | approved | denied | cancelled | revoked (expiry is computed on read).
    pub state: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Deadline for a decision, Unix seconds.
    pub expires_at: u64,
    /// When decided, Unix seconds.
    pub decided_at: Option<u64>,
    /// When the grant ends, Unix seconds.
    pub grant_ends_at: Option<u64>,
    /// Decisions: (approver, decision, comment, at).
    pub approvals: Vec<(String, String, Option<String>, u64)>,
    /// [`KIND_ACCESS`] or [`KIND_STATEMENT`].
    pub kind: String,
    /// Statement reviews: the SQL text as the client sent it.
    pub statement: Option<String>,
    /// Statement reviews: the normalized fingerprint an approval covers.
    pub fingerprint: Option<String>,
    /// Statement reviews: the session the statement arrived in.
    pub session_id: Option<String>,
    /// Statement reviews: when the approved statement ran (its one use).
    pub consumed_at: Option<u64>,
}

/// Why a decision on a request was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideError {
    /// No such request.
    Unknown,
    /// Not pending any more (or past its deadline); the current state.
    Closed(String),
    /// This approver already decided on it.
    AlreadyDecided,
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

impl Store {
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
        self.requests_where("state = ?1", "pending".to_owned(), limit)
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
        decision: &'static str,
        comment: Option<String>,
        now: u64,
    ) -> Result<Result<RequestRow, DecideError>, StoreError> {
        let (id, approver) = (id.to_owned(), approver.to_owned());
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(row) = load_request(&tx, &id)? else {
                return Ok(Err(DecideError::Unknown));
            };
            if row.state != "pending" {
                return Ok(Err(DecideError::Closed(row.state)));
            }
            if now >= row.expires_at {
                return Ok(Err(DecideError::Closed("expired".into())));
            }
            if row.approvals.iter().any(|(who, ..)| who == &approver) {
                return Ok(Err(DecideError::AlreadyDecided));
            }
            tx.execute(
                "INSERT INTO approvals (request_id, approver, decision, comment, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, approver, decision, comment, now as i64],
            )?;
            if decision == "deny" {
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
        from: &'static str,
        to: &'static str,
        now: u64,
    ) -> Result<Result<RequestRow, DecideError>, StoreError> {
        let id = id.to_owned();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(row) = load_request(&tx, &id)? else {
                return Ok(Err(DecideError::Unknown));
            };
            if row.state != from {
                return Ok(Err(DecideError::Closed(row.state)));
            }
            tx.execute(
                "UPDATE access_requests SET state = ?2, decided_at = COALESCE(decided_at, ?3) WHERE id = ?1",
                params![id, to, now as i64],
            )?;
            let updated = load_request(&tx, &id)?;
            tx.commit()?;
            Ok(updated.ok_or(DecideError::Unknown))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn policy_versions_apply_only_on_top_of_the_expected_one() {
        let store = Store::in_memory().unwrap();
        assert_eq!(store.active_policy().await.unwrap(), None);
        let v1 = store
            .apply_policy(None, "a".into(), "bootstrap".into(), 1)
            .await
            .unwrap();
        assert_eq!(v1, Some(1));
        // A writer that read version 0 (none) loses against the one that applied first.
        assert_eq!(
            store
                .apply_policy(None, "b".into(), "x".into(), 2)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .apply_policy(Some(1), "c".into(), "carol".into(), 3)
                .await
                .unwrap(),
            Some(2)
        );
        let active = store.active_policy().await.unwrap().unwrap();
        assert_eq!(
            (
                active.version,
                active.text.as_str(),
                active.applied_by.as_str()
            ),
            (2, "c", "carol")
        );
    }

    fn request(id: &str, needed: u32) -> RequestRow {
        RequestRow {
            id: id.into(),
            subject: "dev:alice".into(),
            user_name: "alice".into(),
            connection: "pg".into(),
            reason: Some("INC-42".into()),
            duration_secs: 60,
            rule: "r".into(),
            approvals_needed: needed,
            approvers_json: "{}".into(),
            state: "pending".into(),
            created_at: 100,
            expires_at: 200,
            decided_at: None,
            grant_ends_at: None,
            approvals: Vec::new(),
            kind: KIND_ACCESS.into(),
            statement: None,
            fingerprint: None,
            session_id: None,
            consumed_at: None,
        }
    }

    fn review(id: &str) -> RequestRow {
        RequestRow {
            kind: KIND_STATEMENT.into(),
            statement: Some("DELETE FROM orders WHERE id = 1".into()),
            fingerprint: Some("fp1".into()),
            session_id: Some("s1".into()),
            ..request(id, 1)
        }
    }

    #[tokio::test]
    async fn an_approved_review_runs_once_and_only_within_its_window() {
        let store = Store::in_memory().unwrap();
        store.insert_request(review("v1")).await.unwrap();
        // Pending: nothing to use yet, but it is found as the one to wait for.
        assert!(
            store
                .consume_review("dev:alice", "pg", "fp1", 110)
                .await
                .unwrap()
                .is_none()
        );
        let waiting = store.pending_review("dev:alice", "pg", "fp1", 110).await;
        assert_eq!(waiting.unwrap().unwrap().id, "v1");
        store
            .decide("v1", "bob", "approve", None, 120)
            .await
            .unwrap()
            .unwrap(); // the run window ends at 180
        // Another statement, another user, another connection: not covered.
        for (subject, conn, fp) in [
            ("dev:alice", "pg", "fp2"),
            ("dev:mallory", "pg", "fp1"),
            ("dev:alice", "other", "fp1"),
        ] {
            assert!(
                store
                    .consume_review(subject, conn, fp, 130)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        let used = store
            .consume_review("dev:alice", "pg", "fp1", 130)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((used.id.as_str(), used.consumed_at), ("v1", Some(130)));
        assert!(
            store
                .consume_review("dev:alice", "pg", "fp1", 131)
                .await
                .unwrap()
                .is_none(),
            "a second run needs a new review"
        );
        // An approval whose window has passed is not used.
        store.insert_request(review("v2")).await.unwrap();
        store
            .decide("v2", "bob", "approve", None, 140)
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .consume_review("dev:alice", "pg", "fp1", 200)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn two_runs_racing_for_one_approval_use_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_request(review("v")).await.unwrap();
        store
            .decide("v", "bob", "approve", None, 120)
            .await
            .unwrap()
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .consume_review("dev:alice", "pg", "fp1", 130)
                    .await
                    .unwrap()
            }));
        }
        let mut used = 0;
        for t in tasks {
            used += usize::from(t.await.unwrap().is_some());
        }
        assert_eq!(used, 1);
    }

    #[test]
    fn an_old_data_dir_upgrades_and_keeps_its_requests_as_access_requests() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A data dir as schema version 3 left it.
            let mut c = Connection::open(dir.path().join("hoop.sqlite3")).unwrap();
            let tx = c.transaction().unwrap();
            for sql in &MIGRATIONS[..3] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", 3i64).unwrap();
            tx.execute(
                "INSERT INTO access_requests (id, subject, user_name, connection, reason,
                   duration_secs, rule, approvals_needed, approvers_json, state, created_at,
                   expires_at) VALUES ('old', 's', 'u', 'pg', NULL, 60, 'r', 1, '{}', 'pending',
                   1, 2)",
                [],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let old = rt.block_on(store.request("old")).unwrap().unwrap();
        assert_eq!(old.kind, KIND_ACCESS);
        assert_eq!(old.statement, None);
    }

    #[tokio::test]
    async fn n_of_m_approvals_grant_once_and_closed_requests_refuse_decisions() {
        let store = Store::in_memory().unwrap();
        store.insert_request(request("r1", 2)).await.unwrap();
        let r = store
            .decide("r1", "bob", "approve", None, 110)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((r.state.as_str(), r.grant_ends_at), ("pending", None));
        assert_eq!(
            store
                .decide("r1", "bob", "approve", None, 111)
                .await
                .unwrap(),
            Err(DecideError::AlreadyDecided)
        );
        let r = store
            .decide("r1", "dave", "approve", Some("ok".into()), 120)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((r.state.as_str(), r.grant_ends_at), ("approved", Some(180)));
        assert_eq!(r.approvals.len(), 2);
        assert_eq!(
            store
                .decide("r1", "erin", "approve", None, 121)
                .await
                .unwrap(),
            Err(DecideError::Closed("approved".into()))
        );
        // Past the deadline nobody can decide.
        store.insert_request(request("r2", 1)).await.unwrap();
        assert_eq!(
            store
                .decide("r2", "bob", "approve", None, 200)
                .await
                .unwrap(),
            Err(DecideError::Closed("expired".into()))
        );
        // Cancel only while pending; revoke only once approved.
        let r = store
            .transition("r2", "pending", "cancelled", 150)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.state, "cancelled");
        assert_eq!(
            store
                .transition("r2", "approved", "revoked", 151)
                .await
                .unwrap(),
            Err(DecideError::Closed("cancelled".into()))
        );
        assert_eq!(
            store
                .transition("r1", "approved", "revoked", 151)
                .await
                .unwrap()
                .unwrap()
                .state,
            "revoked"
        );
        assert_eq!(
            store
                .decide("nope", "bob", "approve", None, 1)
                .await
                .unwrap(),
            Err(DecideError::Unknown)
        );
    }

    #[tokio::test]
    async fn concurrent_approvers_never_double_grant() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_request(request("r", 1)).await.unwrap();
        let mut tasks = Vec::new();
        for approver in ["a", "b", "c", "d", "e", "f"] {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .decide("r", approver, "approve", None, 150)
                    .await
                    .unwrap()
            }));
        }
        let mut granted = 0;
        for t in tasks {
            if let Ok(row) = t.await.unwrap() {
                assert_eq!(row.state, "approved");
                granted += 1;
            }
        }
        assert_eq!(
            granted, 1,
            "exactly one approval turns the request into a grant"
        );
        let r = store.request("r").await.unwrap().unwrap();
        assert_eq!(r.approvals.len(), 1);
    }

    #[tokio::test]
    async fn each_expiry_is_claimed_once_and_only_while_undecided() {
        let store = Store::in_memory().unwrap();
        store.insert_request(request("late", 1)).await.unwrap(); // expires at 200
        store.insert_request(request("decided", 1)).await.unwrap();
        store
            .decide("decided", "bob", "approve", None, 150)
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .claim_expired_requests(199, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let claimed = store.claim_expired_requests(200, 10).await.unwrap();
        let ids: Vec<_> = claimed.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["late"]);
        assert!(
            store
                .claim_expired_requests(300, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    fn row(id: &str) -> SessionRow {
        SessionRow {
            id: id.into(),
            subject: "dev:alice".into(),
            user_name: "alice".into(),
            connection: "demo-pg".into(),
            reason: Some("debugging".into()),
            secret_sha256: "00".repeat(32),
            created_at: 10,
            expires_at: 20,
            closed_at: None,
            request_id: None,
        }
    }

    #[tokio::test]
    async fn sessions_survive_reopen_and_close_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_session(row("s1")).await.unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.session("s1").await.unwrap(), Some(row("s1")));
        assert!(store.close_session("s1", 15).await.unwrap());
        assert!(!store.close_session("s1", 16).await.unwrap());
        assert_eq!(
            store.session("s1").await.unwrap().unwrap().closed_at,
            Some(15)
        );
        assert_eq!(store.session("nope").await.unwrap(), None);
    }

    #[tokio::test]
    async fn events_append_in_order() {
        let store = Store::in_memory().unwrap();
        for kind in ["a", "b", "c"] {
            store
                .append_event(Event {
                    at: 1,
                    kind: kind.into(),
                    user_name: None,
                    connection: None,
                    session_id: None,
                    detail: String::new(),
                })
                .await
                .unwrap();
        }
        let kinds: Vec<_> = store
            .recent_events(2)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["b", "c"]);
    }
}

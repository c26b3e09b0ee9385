//! The PostgreSQL store backend: several brokers share one database and so
//! see the same requests, approvals, grants, sessions and policies.
//!
//! Migrations are the SQLite ones, numbered the same (version N means the
//! same tables on both backends), recorded as rows of `store_schema`; they
//! run at start under a session advisory lock, so two brokers starting
//! together do not race (the second waits, then finds the schema current).
//!
//! Where brokers race, each method says how it stays correct; in short
//! (READ COMMITTED throughout, the server's default):
//!
//! - `decide`, `transition`: `SELECT ... FOR UPDATE` on the request row.
//!   Concurrent deciders on one request queue on that row lock, and each
//!   reads the approvals after the previous one committed (every statement
//!   takes a fresh snapshot), so exactly one approval reaches the count.
//! - `consume_review`, `claim_expired_requests`: one `UPDATE ... WHERE id
//!   IN (SELECT ... FOR UPDATE SKIP LOCKED)`: a row another transaction is
//!   taking is skipped rather than waited for, and the `UPDATE` re-checks
//!   "not used yet" / "not announced yet" on the row it locks, so each run
//!   or expiry is handed out once.
//! - `apply_policy`: `LOCK TABLE policies IN EXCLUSIVE MODE` (writers
//!   queue, readers do not wait), then the optimistic version check and the
//!   insert in the same transaction.
//!
//! Every other write is a single statement in its own transaction.
//!
//! Connections: a small pool ([`POOL_SIZE`] per broker). A connection that
//! dropped (server restart, failover, `pg_terminate_backend`) is not used
//! again; a call that finds its pooled connection gone before anything of
//! it could commit is retried once on a fresh connection, so the first call
//! after a drop succeeds when the server is back. A connection lost during
//! `COMMIT` is reported as [`StoreError::CommitUnknown`] and never retried:
//! the change may have been applied. Every call has a deadline
//! ([`CALL_TIMEOUT`]); a timed-out call's connection is closed, so the
//! server rolls its transaction back.
//!
//! TLS to the database as the URL's `sslmode`/`sslrootcert` ask, the same
//! way as for the audit log ([`crate::store::pg_conn`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use hoop_shared::Secret;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Row, Transaction};

use super::{
    DecideError, Decided, Decision, Event, PolicyVersion, RequestRow, RequestState, SessionFilter,
    SessionRow, StoreError, to_i64, to_u64,
};

/// A boxed future borrowing the connection (one attempt of a call).
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Key of the advisory lock held while migrating ("hoopstor").
const MIGRATION_LOCK: i64 = 0x686f_6f70_7374_6f72;

/// How long one store call may take, retry and lock waits included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per broker.
pub const POOL_SIZE: usize = 8;

/// Migrations, in order; index + 1 is the version after applying it. The
/// same steps as [`super::sqlite::MIGRATIONS`], in PostgreSQL's dialect:
/// BIGINT for Unix seconds and counts, BYTEA for bodies, and `COLLATE "C"`
/// on ids and names so that ordering by them is byte order, as in SQLite.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: sessions and events.
    r#"CREATE TABLE sessions (
        id            TEXT COLLATE "C" PRIMARY KEY,
        subject       TEXT NOT NULL,
        user_name     TEXT NOT NULL,
        connection    TEXT NOT NULL,
        reason        TEXT,
        secret_sha256 TEXT NOT NULL,
        created_at    BIGINT NOT NULL,
        expires_at    BIGINT NOT NULL,
        closed_at     BIGINT
     );
     CREATE TABLE events (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at         BIGINT NOT NULL,
        kind       TEXT NOT NULL,
        user_name  TEXT,
        connection TEXT,
        session_id TEXT,
        detail     TEXT NOT NULL DEFAULT ''
     );
     CREATE INDEX events_at ON events(at);"#,
    // 2: policy versions, access requests and their approvals.
    r#"CREATE TABLE policies (
        version    BIGINT PRIMARY KEY,
        text       TEXT NOT NULL,
        applied_by TEXT NOT NULL,
        applied_at BIGINT NOT NULL
     );
     CREATE TABLE access_requests (
        id               TEXT COLLATE "C" PRIMARY KEY,
        subject          TEXT NOT NULL,
        user_name        TEXT NOT NULL,
        connection       TEXT NOT NULL,
        reason           TEXT,
        duration_secs    BIGINT NOT NULL,
        rule             TEXT NOT NULL,
        approvals_needed BIGINT NOT NULL,
        approvers_json   TEXT NOT NULL,
        state            TEXT NOT NULL,
        created_at       BIGINT NOT NULL,
        expires_at       BIGINT NOT NULL,
        decided_at       BIGINT,
        grant_ends_at    BIGINT
     );
     CREATE INDEX access_requests_state ON access_requests(state);
     CREATE TABLE approvals (
        request_id TEXT COLLATE "C" NOT NULL REFERENCES access_requests(id),
        approver   TEXT COLLATE "C" NOT NULL,
        decision   TEXT NOT NULL,
        comment    TEXT,
        at         BIGINT NOT NULL,
        PRIMARY KEY (request_id, approver)
     );
     ALTER TABLE sessions ADD COLUMN request_id TEXT;"#,
    // 3: when a pending request's expiry was announced to webhooks. Requests
    // already expired at upgrade count as announced: no burst of stale notices.
    "ALTER TABLE access_requests ADD COLUMN expiry_notified_at BIGINT;
     UPDATE access_requests SET expiry_notified_at = expires_at
      WHERE state = 'pending' AND expires_at <= EXTRACT(EPOCH FROM now())::BIGINT;",
    // 4: statement reviews ride on the access-request machinery; `kind`
    // tells them apart (old rows are access requests).
    "ALTER TABLE access_requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'access';
     ALTER TABLE access_requests ADD COLUMN statement TEXT;
     ALTER TABLE access_requests ADD COLUMN fingerprint TEXT;
     ALTER TABLE access_requests ADD COLUMN session_id TEXT;
     ALTER TABLE access_requests ADD COLUMN consumed_at BIGINT;
     CREATE INDEX access_requests_review
        ON access_requests(kind, subject, connection, fingerprint);",
    // 5: when a grant was revoked, sessions listed by time, recordings.
    r#"ALTER TABLE access_requests ADD COLUMN revoked_at BIGINT;
     CREATE INDEX access_requests_revoked ON access_requests(revoked_at);
     CREATE INDEX sessions_created ON sessions(created_at);
     CREATE TABLE recordings (
        session_id TEXT COLLATE "C" NOT NULL,
        name       TEXT COLLATE "C" NOT NULL,
        body       BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (session_id, name)
     );"#,
];

/// Why one attempt at a call failed.
enum OpError {
    /// Before COMMIT (or in a read, or in an idempotent write): nothing of
    /// the call was stored, so a lost connection can be retried.
    Pg(tokio_postgres::Error),
    /// At COMMIT (or in a single-statement write that is its own commit):
    /// a lost connection leaves the outcome unknown.
    Commit(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for OpError {
    fn from(e: tokio_postgres::Error) -> Self {
        OpError::Pg(e)
    }
}

type Attempt<'c, T> = BoxFuture<'c, Result<T, OpError>>;

/// Commits, marking a failure as one whose outcome is unknown.
async fn commit(tx: Transaction<'_>) -> Result<(), OpError> {
    tx.commit().await.map_err(OpError::Commit)
}

/// Whether `e` means the connection is gone (rather than the statement
/// being refused): closed, an I/O error, SQLSTATE class 08, or the server
/// shutting the session down (57P01..57P03).
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(code);
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// A client error as a [`StoreError`]: the server's SQLSTATE and message,
/// or the client's own text (neither carries a credential).
fn pg_error(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map_or_else(
        || e.to_string(),
        |d| format!("{}: {}", d.code().code(), d.message()),
    )
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Postgres(pg_error(&e))
    }
}

/// Idle connections, and a bound on how many exist.
struct Pool {
    target: crate::store::pg_conn::PgTarget,
    idle: Mutex<Vec<Client>>,
    permits: tokio::sync::Semaphore,
    /// Owns the connection tasks.
    tasks: tokio_util::task::TaskTracker,
}

/// A connection taken from the pool. It goes back only when the call that
/// used it said so ([`Conn::keep`]); a call that failed on it, timed out or
/// was cancelled drops it, and the server rolls back what was open.
struct Conn<'p> {
    pool: &'p Pool,
    client: Option<Client>,
    /// Connected for this call (not taken from the idle list).
    fresh: bool,
    keep: bool,
    _permit: tokio::sync::SemaphorePermit<'p>,
}

impl Conn<'_> {
    fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && self.keep
            && !client.is_closed()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(client);
        }
    }
}

impl Pool {
    async fn get(&self) -> Result<Conn<'_>, StoreError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Postgres("the connection pool is closed".into()))?;
        let reused = {
            let mut idle = self.idle.lock().map_err(|_| StoreError::Poisoned)?;
            let mut found = None;
            while let Some(c) = idle.pop() {
                if !c.is_closed() {
                    found = Some(c);
                    break;
                }
            }
            found
        };
        if let Some(client) = reused {
            return Ok(Conn {
                pool: self,
                client: Some(client),
                fresh: false,
                keep: false,
                _permit: permit,
            });
        }
        let client = self
            .target
            .connect("store", &self.tasks)
            .await
            .map_err(|e| match e {
                crate::store::pg_conn::PgConnectError::Postgres(e) => StoreError::from(e),
                timeout => StoreError::Postgres(timeout.to_string()),
            })?;
        Ok(Conn {
            pool: self,
            client: Some(client),
            fresh: true,
            keep: false,
            _permit: permit,
        })
    }

    /// Drops every idle connection: after one was found dead (a server
    /// restart or failover), the others most likely are too.
    fn clear_idle(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

/// The PostgreSQL backend.
pub struct PgStoreBackend {
    pool: Pool,
}

impl std::fmt::Debug for PgStoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStoreBackend").finish_non_exhaustive()
    }
}

impl PgStoreBackend {
    /// Connects to `url` (the password from `password` when given, else
    /// from the URL) and runs the migrations.
    pub async fn connect(url: &str, password: Option<Secret>) -> Result<Self, StoreError> {
        let target = crate::store::pg_conn::PgTarget::parse(url, password.as_ref())
            .map_err(|e| StoreError::Config(format!("url: {e}")))?
            .with_application_name("hoop-broker store");
        if password.is_none() && url::Url::parse(url).is_ok_and(|u| u.password().is_some()) {
            tracing::warn!("[store] url carries a password; prefer password_env or password_file");
        }
        let backend = PgStoreBackend {
            pool: Pool {
                target,
                idle: Mutex::new(Vec::new()),
                permits: tokio::sync::Semaphore::new(POOL_SIZE),
                tasks: tokio_util::task::TaskTracker::new(),
            },
        };
        backend.migrate().await?;
        Ok(backend)
    }

    /// Applies the migrations not applied yet, under the advisory lock.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        let client = conn
            .client
            .as_mut()
            .ok_or_else(|| StoreError::Postgres("not connected".into()))?;
        let result =
            crate::store::pg_conn::migrate(client, MIGRATION_LOCK, "store_schema", MIGRATIONS)
                .await
                .map_err(|e| match e {
                    crate::store::pg_conn::MigrateError::Postgres(e) => StoreError::from(e),
                    crate::store::pg_conn::MigrateError::TooNew { found, known, .. } => {
                        StoreError::SchemaTooNew { found, known }
                    }
                });
        if result.is_ok() {
            conn.keep();
        }
        result
    }

    /// Runs `op` on a pooled connection within [`CALL_TIMEOUT`]; retries
    /// it once on a fresh connection when the pooled one turned out to be
    /// gone before anything of the call could commit.
    async fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send,
        F: for<'c> Fn(&'c mut Client) -> Attempt<'c, T> + Send + Sync,
    {
        let call = async {
            let mut retried = false;
            loop {
                let mut conn = self.pool.get().await?;
                let fresh = conn.fresh;
                let client = conn
                    .client
                    .as_mut()
                    .ok_or_else(|| StoreError::Postgres("not connected".into()))?;
                match op(client).await {
                    Ok(v) => {
                        conn.keep();
                        return Ok(v);
                    }
                    Err(OpError::Pg(e)) if connection_lost(&e) && !fresh && !retried => {
                        tracing::info!(
                            "store database connection lost ({}); reconnecting",
                            pg_error(&e)
                        );
                        self.pool.clear_idle();
                        retried = true;
                    }
                    Err(OpError::Pg(e)) => {
                        if !connection_lost(&e) {
                            conn.keep();
                        }
                        return Err(StoreError::from(e));
                    }
                    Err(OpError::Commit(e)) if connection_lost(&e) => {
                        return Err(StoreError::CommitUnknown(pg_error(&e)));
                    }
                    Err(OpError::Commit(e)) => {
                        conn.keep();
                        return Err(StoreError::from(e));
                    }
                }
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| StoreError::Timeout(CALL_TIMEOUT))?
    }
}

const SESSION_COLUMNS: &str = "id, subject, user_name, connection, reason, secret_sha256,
    created_at, expires_at, closed_at, request_id";

fn session_from_row(r: &Row) -> Result<SessionRow, tokio_postgres::Error> {
    Ok(SessionRow {
        id: r.try_get(0)?,
        subject: r.try_get(1)?,
        user_name: r.try_get(2)?,
        connection: r.try_get(3)?,
        reason: r.try_get(4)?,
        secret_sha256: r.try_get(5)?,
        created_at: to_u64(r.try_get(6)?),
        expires_at: to_u64(r.try_get(7)?),
        closed_at: r.try_get::<_, Option<i64>>(8)?.map(to_u64),
        request_id: r.try_get(9)?,
    })
}

/// A request row with its decisions, in one statement (so one snapshot):
/// the approvals come as four arrays in the same order.
const REQUEST_SELECT: &str = "SELECT r.id, r.subject, r.user_name, r.connection, r.reason,
    r.duration_secs, r.rule, r.approvals_needed, r.approvers_json, r.state, r.created_at,
    r.expires_at, r.decided_at, r.grant_ends_at, r.kind, r.statement, r.fingerprint,
    r.session_id, r.consumed_at,
    ARRAY(SELECT a.approver FROM approvals a WHERE a.request_id = r.id ORDER BY a.at, a.approver),
    ARRAY(SELECT a.decision FROM approvals a WHERE a.request_id = r.id ORDER BY a.at, a.approver),
    ARRAY(SELECT a.comment FROM approvals a WHERE a.request_id = r.id ORDER BY a.at, a.approver),
    ARRAY(SELECT a.at FROM approvals a WHERE a.request_id = r.id ORDER BY a.at, a.approver)
    FROM access_requests r";

fn request_from_row(r: &Row) -> Result<RequestRow, tokio_postgres::Error> {
    let approvers: Vec<String> = r.try_get(19)?;
    let decisions: Vec<Decision> = r.try_get(20)?;
    let comments: Vec<Option<String>> = r.try_get(21)?;
    let ats: Vec<i64> = r.try_get(22)?;
    let approvals = approvers
        .into_iter()
        .zip(decisions)
        .zip(comments)
        .zip(ats)
        .map(|(((who, decision), comment), at)| (who, decision, comment, to_u64(at)))
        .collect();
    Ok(RequestRow {
        id: r.try_get(0)?,
        subject: r.try_get(1)?,
        user_name: r.try_get(2)?,
        connection: r.try_get(3)?,
        reason: r.try_get(4)?,
        duration_secs: to_u64(r.try_get(5)?),
        rule: r.try_get(6)?,
        approvals_needed: u32::try_from(r.try_get::<_, i64>(7)?).unwrap_or(u32::MAX),
        approvers_json: r.try_get(8)?,
        state: r.try_get(9)?,
        created_at: to_u64(r.try_get(10)?),
        expires_at: to_u64(r.try_get(11)?),
        decided_at: r.try_get::<_, Option<i64>>(12)?.map(to_u64),
        grant_ends_at: r.try_get::<_, Option<i64>>(13)?.map(to_u64),
        approvals,
        kind: r.try_get(14)?,
        statement: r.try_get(15)?,
        fingerprint: r.try_get(16)?,
        session_id: r.try_get(17)?,
        consumed_at: r.try_get::<_, Option<i64>>(18)?.map(to_u64),
    })
}

fn requests_from_rows(rows: &[Row]) -> Result<Vec<RequestRow>, tokio_postgres::Error> {
    rows.iter().map(request_from_row).collect()
}

/// The request `id` as the transaction (or client) sees it now.
async fn load_request(
    c: &impl tokio_postgres::GenericClient,
    id: &str,
) -> Result<Option<RequestRow>, tokio_postgres::Error> {
    c.query_opt(&format!("{REQUEST_SELECT} WHERE r.id = $1"), &[&id])
        .await?
        .as_ref()
        .map(request_from_row)
        .transpose()
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgStoreBackend {
    /// [`super::Store::insert_session`] on this backend.
    pub async fn insert_session(&self, s: SessionRow) -> Result<(), StoreError> {
        self.run(move |c| {
            let s = s.clone();
            Box::pin(async move {
                let tx = c.transaction().await?;
                tx.execute(
                    "INSERT INTO sessions (id, subject, user_name, connection, reason,
                        secret_sha256, created_at, expires_at, closed_at, request_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
                    &[
                        &s.id,
                        &s.subject,
                        &s.user_name,
                        &s.connection,
                        &s.reason,
                        &s.secret_sha256,
                        &to_i64(s.created_at),
                        &to_i64(s.expires_at),
                        &s.request_id,
                    ],
                )
                .await?;
                commit(tx).await
            })
        })
        .await
    }

    /// [`super::Store::session`] on this backend.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        self.run(move |c| {
            let id = id.to_owned();
            Box::pin(async move {
                let row = c
                    .query_opt(
                        &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"),
                        &[&id],
                    )
                    .await?;
                Ok(row.as_ref().map(session_from_row).transpose()?)
            })
        })
        .await
    }

    /// [`super::Store::close_session`] on this backend.
    pub async fn close_session(&self, id: &str, at: u64) -> Result<bool, StoreError> {
        self.run(move |c| {
            let id = id.to_owned();
            Box::pin(async move {
                let tx = c.transaction().await?;
                let n = tx
                    .execute(
                        "UPDATE sessions SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL",
                        &[&id, &to_i64(at)],
                    )
                    .await?;
                commit(tx).await?;
                Ok(n == 1)
            })
        })
        .await
    }

    /// [`super::Store::list_sessions`] on this backend.
    pub async fn list_sessions(&self, f: SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        self.run(move |c| {
            let f = f.clone();
            Box::pin(async move {
                let rows = c
                    .query(
                        &format!(
                            "SELECT {SESSION_COLUMNS} FROM sessions
                             WHERE ($1::text IS NULL OR subject = $1)
                               AND ($2::text IS NULL OR user_name = $2)
                               AND ($3::text IS NULL OR connection = $3)
                               AND ($4::bigint IS NULL OR created_at >= $4)
                             ORDER BY created_at DESC, id LIMIT $5"
                        ),
                        &[
                            &f.subject,
                            &f.user_name,
                            &f.connection,
                            &f.since.map(to_i64),
                            &limit(f.limit),
                        ],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(session_from_row)
                    .collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    /// [`super::Store::put_recording`] on this backend.
    pub async fn put_recording(
        &self,
        session_id: &str,
        name: &str,
        body: Vec<u8>,
        at: u64,
    ) -> Result<(), StoreError> {
        // An upsert: running it twice stores the same thing, so a lost
        // connection may retry it (its errors count as "before COMMIT").
        self.run(move |c| {
            let (session_id, name, body) = (session_id.to_owned(), name.to_owned(), body.clone());
            Box::pin(async move {
                c.execute(
                    "INSERT INTO recordings (session_id, name, body, created_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (session_id, name) DO UPDATE SET body = excluded.body,
                        created_at = excluded.created_at",
                    &[&session_id, &name, &body, &to_i64(at)],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// [`super::Store::recording`] on this backend.
    pub async fn recording(
        &self,
        session_id: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(move |c| {
            let (session_id, name) = (session_id.to_owned(), name.to_owned());
            Box::pin(async move {
                let row = c
                    .query_opt(
                        "SELECT body FROM recordings WHERE session_id = $1 AND name = $2",
                        &[&session_id, &name],
                    )
                    .await?;
                Ok(row.map(|r| r.try_get(0)).transpose()?)
            })
        })
        .await
    }

    /// [`super::Store::recording_names`] on this backend.
    pub async fn recording_names(&self, session_id: &str) -> Result<Vec<String>, StoreError> {
        self.run(move |c| {
            let session_id = session_id.to_owned();
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT name FROM recordings WHERE session_id = $1 ORDER BY name",
                        &[&session_id],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    /// [`super::Store::prune_recordings`] on this backend.
    pub async fn prune_recordings(&self, before: u64) -> Result<u64, StoreError> {
        // Idempotent: a retry after a lost connection deletes nothing twice.
        self.run(move |c| {
            Box::pin(async move {
                Ok(c.execute(
                    "DELETE FROM recordings WHERE created_at < $1",
                    &[&to_i64(before)],
                )
                .await?)
            })
        })
        .await
    }

    /// [`super::Store::append_event`] on this backend.
    pub async fn append_event(&self, e: Event) -> Result<(), StoreError> {
        self.run(move |c| {
            let e = e.clone();
            Box::pin(async move {
                let tx = c.transaction().await?;
                tx.execute(
                    "INSERT INTO events (at, kind, user_name, connection, session_id, detail)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &to_i64(e.at),
                        &e.kind,
                        &e.user_name,
                        &e.connection,
                        &e.session_id,
                        &e.detail,
                    ],
                )
                .await?;
                commit(tx).await
            })
        })
        .await
    }

    /// [`super::Store::recent_events`] on this backend.
    pub async fn recent_events(&self, n: usize) -> Result<Vec<Event>, StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT at, kind, user_name, connection, session_id, detail FROM
                           (SELECT * FROM events ORDER BY id DESC LIMIT $1) newest
                         ORDER BY id ASC",
                        &[&limit(n)],
                    )
                    .await?;
                let events = rows
                    .iter()
                    .map(|r| {
                        Ok(Event {
                            at: to_u64(r.try_get(0)?),
                            kind: r.try_get(1)?,
                            user_name: r.try_get(2)?,
                            connection: r.try_get(3)?,
                            session_id: r.try_get(4)?,
                            detail: r.try_get(5)?,
                        })
                    })
                    .collect::<Result<_, tokio_postgres::Error>>()?;
                Ok(events)
            })
        })
        .await
    }

    /// [`super::Store::active_policy`] on this backend.
    pub async fn active_policy(&self) -> Result<Option<PolicyVersion>, StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                let row = c
                    .query_opt(
                        "SELECT version, text, applied_by, applied_at FROM policies
                         ORDER BY version DESC LIMIT 1",
                        &[],
                    )
                    .await?;
                let policy = row
                    .map(|r| {
                        Ok::<_, tokio_postgres::Error>(PolicyVersion {
                            version: to_u64(r.try_get(0)?),
                            text: r.try_get(1)?,
                            applied_by: r.try_get(2)?,
                            applied_at: to_u64(r.try_get(3)?),
                        })
                    })
                    .transpose()?;
                Ok(policy)
            })
        })
        .await
    }

    /// [`super::Store::apply_policy`] on this backend.
    pub async fn apply_policy(
        &self,
        expected: Option<u64>,
        text: String,
        applied_by: String,
        at: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.run(move |c| {
            let (text, applied_by) = (text.clone(), applied_by.clone());
            Box::pin(async move {
                let tx = c.transaction().await?;
                // LOCK TABLE: appliers (in any broker) queue here, so the
                // version read below is still the newest at the insert.
                // EXCLUSIVE MODE lets readers through.
                tx.batch_execute("LOCK TABLE policies IN EXCLUSIVE MODE")
                    .await?;
                let current: Option<i64> = tx
                    .query_one("SELECT MAX(version) FROM policies", &[])
                    .await?
                    .try_get(0)?;
                if current.map(to_u64) != expected {
                    return Ok(None);
                }
                let next = current.unwrap_or(0).saturating_add(1);
                tx.execute(
                    "INSERT INTO policies (version, text, applied_by, applied_at)
                     VALUES ($1, $2, $3, $4)",
                    &[&next, &text, &applied_by, &to_i64(at)],
                )
                .await?;
                commit(tx).await?;
                Ok(Some(to_u64(next)))
            })
        })
        .await
    }

    /// [`super::Store::insert_request`] on this backend.
    pub async fn insert_request(&self, r: RequestRow) -> Result<(), StoreError> {
        self.run(move |c| {
            let r = r.clone();
            Box::pin(async move {
                let tx = c.transaction().await?;
                tx.execute(
                    "INSERT INTO access_requests (id, subject, user_name, connection, reason,
                        duration_secs, rule, approvals_needed, approvers_json, state, created_at,
                        expires_at, decided_at, grant_ends_at, kind, statement, fingerprint,
                        session_id, consumed_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                             $15, $16, $17, $18, $19)",
                    &[
                        &r.id,
                        &r.subject,
                        &r.user_name,
                        &r.connection,
                        &r.reason,
                        &to_i64(r.duration_secs),
                        &r.rule,
                        &i64::from(r.approvals_needed),
                        &r.approvers_json,
                        &r.state,
                        &to_i64(r.created_at),
                        &to_i64(r.expires_at),
                        &r.decided_at.map(to_i64),
                        &r.grant_ends_at.map(to_i64),
                        &r.kind,
                        &r.statement,
                        &r.fingerprint,
                        &r.session_id,
                        &r.consumed_at.map(to_i64),
                    ],
                )
                .await?;
                commit(tx).await
            })
        })
        .await
    }

    /// [`super::Store::request`] on this backend.
    pub async fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        self.run(move |c| {
            let id = id.to_owned();
            Box::pin(async move { Ok(load_request(&*c, &id).await?) })
        })
        .await
    }

    /// [`super::Store::requests_of`] on this backend.
    pub async fn requests_of(
        &self,
        subject: &str,
        n: usize,
    ) -> Result<Vec<RequestRow>, StoreError> {
        self.run(move |c| {
            let subject = subject.to_owned();
            Box::pin(async move {
                let rows = c
                    .query(
                        &format!(
                            "{REQUEST_SELECT} WHERE r.subject = $1
                             ORDER BY r.created_at DESC, r.id LIMIT $2"
                        ),
                        &[&subject, &limit(n)],
                    )
                    .await?;
                Ok(requests_from_rows(&rows)?)
            })
        })
        .await
    }

    /// [`super::Store::pending_requests`] on this backend.
    pub async fn pending_requests(&self, n: usize) -> Result<Vec<RequestRow>, StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        &format!(
                            "{REQUEST_SELECT} WHERE r.state = 'pending'
                             ORDER BY r.created_at DESC, r.id LIMIT $1"
                        ),
                        &[&limit(n)],
                    )
                    .await?;
                Ok(requests_from_rows(&rows)?)
            })
        })
        .await
    }

    /// [`super::Store::claim_expired_requests`] on this backend.
    pub async fn claim_expired_requests(
        &self,
        now: u64,
        n: usize,
    ) -> Result<Vec<RequestRow>, StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                // FOR UPDATE SKIP LOCKED: a request another broker is
                // claiming (or deciding) right now is left to it; the outer
                // UPDATE re-checks "not announced" on the row it locks.
                let claimed: Vec<String> = tx
                    .query(
                        "UPDATE access_requests SET expiry_notified_at = $1
                          WHERE id IN (SELECT id FROM access_requests
                                        WHERE state = 'pending' AND expires_at <= $1
                                          AND expiry_notified_at IS NULL
                                        ORDER BY expires_at, id LIMIT $2
                                        FOR UPDATE SKIP LOCKED)
                            AND expiry_notified_at IS NULL
                          RETURNING id",
                        &[&to_i64(now), &limit(n)],
                    )
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                let rows = tx
                    .query(
                        &format!(
                            "{REQUEST_SELECT} WHERE r.id = ANY($1) ORDER BY r.expires_at, r.id"
                        ),
                        &[&claimed],
                    )
                    .await?;
                let out = requests_from_rows(&rows)?;
                commit(tx).await?;
                Ok(out)
            })
        })
        .await
    }

    /// [`super::Store::decide`] on this backend.
    pub async fn decide(
        &self,
        id: &str,
        approver: &str,
        decision: Decision,
        comment: Option<String>,
        now: u64,
    ) -> Result<Decided, StoreError> {
        self.run(move |c| {
            let (id, approver, comment) = (id.to_owned(), approver.to_owned(), comment.clone());
            Box::pin(async move {
                let tx = c.transaction().await?;
                // FOR UPDATE: deciders on this request (in any broker) queue
                // here; the row and its approvals are read after the lock,
                // by statements that see what the previous decider committed.
                let locked = tx
                    .query_opt(
                        "SELECT 1 FROM access_requests WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await?;
                if locked.is_none() {
                    return Ok(Err(DecideError::Unknown));
                }
                let Some(row) = load_request(&tx, &id).await? else {
                    return Ok(Err(DecideError::Unknown));
                };
                if let Err(e) = DecideError::check(&row, &approver, now) {
                    return Ok(Err(e));
                }
                tx.execute(
                    "INSERT INTO approvals (request_id, approver, decision, comment, at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&id, &approver, &decision, &comment, &to_i64(now)],
                )
                .await?;
                if decision == Decision::Deny {
                    tx.execute(
                        "UPDATE access_requests SET state = 'denied', decided_at = $2
                          WHERE id = $1",
                        &[&id, &to_i64(now)],
                    )
                    .await?;
                } else {
                    let approvals: i64 = tx
                        .query_one(
                            "SELECT COUNT(*) FROM approvals
                              WHERE request_id = $1 AND decision = 'approve'",
                            &[&id],
                        )
                        .await?
                        .try_get(0)?;
                    if approvals >= i64::from(row.approvals_needed) {
                        tx.execute(
                            "UPDATE access_requests SET state = 'approved', decided_at = $2,
                                    grant_ends_at = $3 WHERE id = $1",
                            &[
                                &id,
                                &to_i64(now),
                                &to_i64(now.saturating_add(row.duration_secs)),
                            ],
                        )
                        .await?;
                    }
                }
                let updated = load_request(&tx, &id).await?;
                commit(tx).await?;
                Ok(updated.ok_or(DecideError::Unknown))
            })
        })
        .await
    }

    /// [`super::Store::consume_review`] on this backend.
    pub async fn consume_review(
        &self,
        subject: &str,
        connection: &str,
        fingerprint: &str,
        now: u64,
    ) -> Result<Option<RequestRow>, StoreError> {
        self.run(move |c| {
            let (subject, connection, fingerprint) = (
                subject.to_owned(),
                connection.to_owned(),
                fingerprint.to_owned(),
            );
            Box::pin(async move {
                let tx = c.transaction().await?;
                // FOR UPDATE SKIP LOCKED: of two runs racing for one
                // approval, the second skips the row the first holds (and
                // takes another approval if there is one); the UPDATE
                // re-checks "unused" on the row it locks.
                let used: Option<String> = tx
                    .query_opt(
                        "UPDATE access_requests SET consumed_at = $4
                          WHERE id = (SELECT id FROM access_requests
                                       WHERE kind = 'statement' AND subject = $1
                                         AND connection = $2 AND fingerprint = $3
                                         AND state = 'approved' AND consumed_at IS NULL
                                         AND grant_ends_at > $4
                                       ORDER BY decided_at, id LIMIT 1
                                       FOR UPDATE SKIP LOCKED)
                            AND consumed_at IS NULL
                          RETURNING id",
                        &[&subject, &connection, &fingerprint, &to_i64(now)],
                    )
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                let Some(id) = used else {
                    return Ok(None);
                };
                let row = load_request(&tx, &id).await?;
                commit(tx).await?;
                Ok(row)
            })
        })
        .await
    }

    /// [`super::Store::pending_review`] on this backend.
    pub async fn pending_review(
        &self,
        subject: &str,
        connection: &str,
        fingerprint: &str,
        now: u64,
    ) -> Result<Option<RequestRow>, StoreError> {
        self.run(move |c| {
            let (subject, connection, fingerprint) = (
                subject.to_owned(),
                connection.to_owned(),
                fingerprint.to_owned(),
            );
            Box::pin(async move {
                let row = c
                    .query_opt(
                        &format!(
                            "{REQUEST_SELECT} WHERE r.kind = 'statement' AND r.subject = $1
                               AND r.connection = $2 AND r.fingerprint = $3
                               AND r.state = 'pending' AND r.expires_at > $4
                             ORDER BY r.created_at DESC, r.id LIMIT 1"
                        ),
                        &[&subject, &connection, &fingerprint, &to_i64(now)],
                    )
                    .await?;
                Ok(row.as_ref().map(request_from_row).transpose()?)
            })
        })
        .await
    }

    /// [`super::Store::transition`] on this backend.
    pub async fn transition(
        &self,
        id: &str,
        from: RequestState,
        to: RequestState,
        now: u64,
    ) -> Result<Decided, StoreError> {
        self.run(move |c| {
            let id = id.to_owned();
            Box::pin(async move {
                let tx = c.transaction().await?;
                // FOR UPDATE, as in `decide`: a cancel or revoke and a
                // decision on one request never interleave.
                let locked = tx
                    .query_opt(
                        "SELECT state FROM access_requests WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await?;
                let Some(locked) = locked else {
                    return Ok(Err(DecideError::Unknown));
                };
                let state: RequestState = locked.try_get(0)?;
                if state != from {
                    return Ok(Err(DecideError::Closed(state.into())));
                }
                tx.execute(
                    "UPDATE access_requests SET state = $2, decided_at = COALESCE(decided_at, $3),
                            revoked_at = CASE WHEN $2 = 'revoked' THEN $3 ELSE revoked_at END
                      WHERE id = $1",
                    &[&id, &to, &to_i64(now)],
                )
                .await?;
                let updated = load_request(&tx, &id).await?;
                commit(tx).await?;
                Ok(updated.ok_or(DecideError::Unknown))
            })
        })
        .await
    }

    /// [`super::Store::revoked_since`] on this backend.
    pub async fn revoked_since(&self, since: u64) -> Result<Vec<String>, StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT id FROM access_requests WHERE revoked_at >= $1
                          ORDER BY revoked_at, id",
                        &[&to_i64(since)],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?)
            })
        })
        .await
    }
}

//! The broker's state store: sessions, access requests and their approvals
//! (grants, statement reviews), policy versions, events, recordings.
//!
//! One interface, [`Store`], over two backends:
//!
//! - [`sqlite`]: one SQLite file in the data dir, the embedded default.
//!   Schema versions are tracked with `PRAGMA user_version`.
//! - [`postgres`]: a PostgreSQL database several brokers share. Schema
//!   versions are rows of `store_schema`, migrated at start under an
//!   advisory lock.
//!
//! Both apply the same numbered migrations (version N means the same
//! tables on both), and both make the same promises where brokers race:
//! [`Store::decide`] never grants twice, [`Store::consume_review`] hands an
//! approved run out once, [`Store::claim_expired_requests`] hands each
//! expiry out once, [`Store::apply_policy`] applies only on top of the
//! version the caller read. How each backend keeps them is written at each
//! method; `docs/store.md` is the reference.
//!
//! Sessions keep the SHA-256 of their one-time tunnel secret, never the
//! secret. States and kinds are typed ([`state`]) and stored as the words
//! they always were.
//!
//! Also here, because the store is what they serve (the audit log uses
//! them too): [`pg_conn`], connections to the broker's own PostgreSQL
//! (URL, TLS, migrations under an advisory lock), and [`sqlite_wal`], the
//! switch of a fresh SQLite file to WAL mode.
//!
//! ## Why an enum over the backends, not a trait
//!
//! There are exactly two backends and no third in sight; tests use the
//! real ones (a throwaway PostgreSQL server, never a mock). So [`Store`]
//! holds `enum Backend { Sqlite(..), Postgres(..) }`, and each operation is
//! written once per backend, as a plain `async fn` of that backend with its
//! SQL and its concurrency argument, plus one `match` in the [`Store`]
//! method that carries the contract (its doc). No trait object, no boxed
//! futures, no forwarding methods: adding an operation means one `async
//! fn` in each backend and one method here, and the compiler names a
//! backend that lacks it. (A trait with `async fn` would cost the same
//! per-backend code plus a trait declaration that repeats every signature,
//! and could not be used as `dyn` without boxing again.) The audit log
//! ([`crate::audit`]) is built the same way.

pub mod pg_conn;
pub mod postgres;
pub mod sqlite;
pub mod sqlite_wal;
pub mod state;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hoop_shared::Secret;

use crate::config::StoreConfig;

pub use state::{Decision, RequestKind, RequestState, SessionState, UnknownWord};

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
    /// PostgreSQL said no, or could not be reached. The text is the server's
    /// SQLSTATE and message or the client's error; never a credential.
    #[error("store (postgres): {0}")]
    Postgres(String),
    /// The connection was lost while a COMMIT was in flight: the change may
    /// or may not have been applied.
    #[error("store (postgres): connection lost during COMMIT; the outcome is unknown: {0}")]
    CommitUnknown(String),
    /// No answer within the deadline (the database hangs or is unreachable).
    #[error("store (postgres): no answer within {0:?}")]
    Timeout(Duration),
    /// The `[store]` settings cannot be used (bad URL, missing password).
    #[error("[store] {0}")]
    Config(String),
    /// The stored schema is newer than this broker knows (a newer broker
    /// migrated it).
    #[error(
        "store schema version {found} is newer than this broker knows ({known}); upgrade the broker"
    )]
    SchemaTooNew {
        /// Version found in the store.
        found: i64,
        /// Newest version this broker knows.
        known: usize,
    },
}

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

impl SessionRow {
    /// Where the session stands at `now`: closed, past its end, or open.
    pub fn state(&self, now: u64) -> SessionState {
        if self.closed_at.is_some() {
            SessionState::Closed
        } else if self.expires_at <= now {
            SessionState::Expired
        } else {
            SessionState::Open
        }
    }
}

/// Which sessions [`Store::list_sessions`] returns; `None` matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only this owner (token subject): what non-auditors may see.
    pub subject: Option<String>,
    /// Only this user name.
    pub user_name: Option<String>,
    /// Only this connection.
    pub connection: Option<String>,
    /// Only sessions created at or after this (Unix seconds).
    pub since: Option<u64>,
    /// At most this many, newest first.
    pub limit: usize,
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
    /// Where it stands (expiry is computed on read).
    pub state: RequestState,
    /// Unix seconds.
    pub created_at: u64,
    /// Deadline for a decision, Unix seconds.
    pub expires_at: u64,
    /// When decided, Unix seconds.
    pub decided_at: Option<u64>,
    /// When the grant ends, Unix seconds.
    pub grant_ends_at: Option<u64>,
    /// Decisions: (approver, decision, comment, at).
    pub approvals: Vec<(String, Decision, Option<String>, u64)>,
    /// An access request or a statement review.
    pub kind: RequestKind,
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
    /// Not pending any more (or past its deadline): the state a reader
    /// sees now (`expired` past the deadline).
    Closed(hoop_shared::api::RequestState),
    /// This approver already decided on it.
    AlreadyDecided,
}

impl DecideError {
    /// Whether `approver` may still decide on `row` at `now`: pending,
    /// before its deadline, and not decided by them yet. Both backends ask
    /// this inside the transaction that holds the request.
    pub fn check(row: &RequestRow, approver: &str, now: u64) -> Result<(), DecideError> {
        if row.state != RequestState::Pending {
            return Err(DecideError::Closed(row.state.into()));
        }
        if now >= row.expires_at {
            return Err(DecideError::Closed(hoop_shared::api::RequestState::Expired));
        }
        if row.approvals.iter().any(|(who, ..)| who == approver) {
            return Err(DecideError::AlreadyDecided);
        }
        Ok(())
    }
}

/// The outcome of a decision or transition: the row after it, or why not.
pub type Decided = Result<RequestRow, DecideError>;

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

/// The two backends. Each operation is written once per backend, as an
/// inherent `async fn` of [`sqlite::SqliteStoreBackend`] and
/// [`postgres::PgStoreBackend`]; the [`Store`] method holding its contract
/// picks one with a `match` (`on_backend!`).
#[expect(
    clippy::large_enum_variant,
    reason = "one per store, allocated once behind the Arc"
)]
enum Backend {
    Sqlite(sqlite::SqliteStoreBackend),
    Postgres(postgres::PgStoreBackend),
}

/// `match`es the store's backend and evaluates `$call` with `$b` bound to
/// it: both arms are the same text, type-checked against each backend.
macro_rules! on_backend {
    ($store:expr, $b:ident => $call:expr) => {
        match &*$store.backend {
            Backend::Sqlite($b) => $call,
            Backend::Postgres($b) => $call,
        }
    };
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish()
    }
}

impl Store {
    /// Opens the store `config` names: `DATA_DIR/hoop.sqlite3` (created if
    /// needed) by default, or the PostgreSQL database of `[store] url`
    /// with the password from `password_env`/`password_file`. Runs the
    /// migrations either way.
    pub async fn open(config: &StoreConfig, data_dir: &Path) -> Result<Store, StoreError> {
        match config.postgres_url() {
            Some(url) => {
                let password = config
                    .credential()
                    .map(|r| crate::secrets::resolve(&r))
                    .transpose()
                    .map_err(|e| StoreError::Config(format!("password: {e}")))?;
                Store::connect_postgres(url, password).await
            }
            None => {
                let path = data_dir.join(sqlite::DB_FILE);
                tokio::task::spawn_blocking(move || Store::open_sqlite(&path)).await?
            }
        }
    }

    /// Opens (creating if needed) the SQLite store at `path` and migrates it.
    pub fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::on(Backend::Sqlite(
            sqlite::SqliteStoreBackend::open(path)?,
        )))
    }

    /// Connects to the PostgreSQL store at `url` (the password from
    /// `password` when given, else from the URL) and migrates it.
    pub async fn connect_postgres(
        url: &str,
        password: Option<Secret>,
    ) -> Result<Store, StoreError> {
        Ok(Store::on(Backend::Postgres(
            postgres::PgStoreBackend::connect(url, password).await?,
        )))
    }

    /// An in-memory SQLite store, for tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        Ok(Store::on(Backend::Sqlite(
            sqlite::SqliteStoreBackend::in_memory()?,
        )))
    }

    fn on(backend: Backend) -> Store {
        Store {
            backend: Arc::new(backend),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Inserts a new session.
    pub async fn insert_session(&self, s: SessionRow) -> Result<(), StoreError> {
        on_backend!(self, b => b.insert_session(s).await)
    }

    /// The session with this id.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        on_backend!(self, b => b.session(id).await)
    }

    /// Marks a session closed; returns false when it was unknown or already closed.
    pub async fn close_session(&self, id: &str, at: u64) -> Result<bool, StoreError> {
        on_backend!(self, b => b.close_session(id, at).await)
    }

    /// Sessions matching `f`, newest first (then by id).
    pub async fn list_sessions(&self, f: SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        on_backend!(self, b => b.list_sessions(f).await)
    }

    /// Stores (or replaces) the recording part `name` of `session_id`.
    pub async fn put_recording(
        &self,
        session_id: &str,
        name: &str,
        body: Vec<u8>,
        at: u64,
    ) -> Result<(), StoreError> {
        on_backend!(self, b => b.put_recording(session_id, name, body, at).await)
    }

    /// The recording part `name` of `session_id`.
    pub async fn recording(
        &self,
        session_id: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        on_backend!(self, b => b.recording(session_id, name).await)
    }

    /// The names of `session_id`'s recording parts, in name order.
    pub async fn recording_names(&self, session_id: &str) -> Result<Vec<String>, StoreError> {
        on_backend!(self, b => b.recording_names(session_id).await)
    }

    /// Deletes the recording parts last written before `before` (Unix
    /// seconds): retention. Returns how many went.
    pub async fn prune_recordings(&self, before: u64) -> Result<u64, StoreError> {
        on_backend!(self, b => b.prune_recordings(before).await)
    }

    /// Appends an event; durable when this returns.
    pub async fn append_event(&self, e: Event) -> Result<(), StoreError> {
        on_backend!(self, b => b.append_event(e).await)
    }

    /// The most recent `limit` events, oldest first.
    pub async fn recent_events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        on_backend!(self, b => b.recent_events(limit).await)
    }

    /// The newest policy version, if any was ever stored.
    pub async fn active_policy(&self) -> Result<Option<PolicyVersion>, StoreError> {
        on_backend!(self, b => b.active_policy().await)
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
        on_backend!(self, b => b.apply_policy(expected, text, applied_by, at).await)
    }

    /// Stores a new pending request.
    pub async fn insert_request(&self, r: RequestRow) -> Result<(), StoreError> {
        on_backend!(self, b => b.insert_request(r).await)
    }

    /// The request with this id, with its decisions.
    pub async fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        on_backend!(self, b => b.request(id).await)
    }

    /// Requests made by `subject`, newest first.
    pub async fn requests_of(
        &self,
        subject: &str,
        limit: usize,
    ) -> Result<Vec<RequestRow>, StoreError> {
        on_backend!(self, b => b.requests_of(subject, limit).await)
    }

    /// Pending requests, newest first.
    pub async fn pending_requests(&self, limit: usize) -> Result<Vec<RequestRow>, StoreError> {
        on_backend!(self, b => b.pending_requests(limit).await)
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
        on_backend!(self, b => b.claim_expired_requests(now, limit).await)
    }

    /// Records `approver`'s decision atomically: the
    /// request must still be pending and before its deadline, each approver
    /// decides once, and the approval that reaches the needed count turns the
    /// request into a grant of `duration_secs` from `now`. Two approvers at
    /// once (in one broker or two) can never grant twice.
    pub async fn decide(
        &self,
        id: &str,
        approver: &str,
        decision: Decision,
        comment: Option<String>,
        now: u64,
    ) -> Result<Result<RequestRow, DecideError>, StoreError> {
        on_backend!(self, b => b.decide(id, approver, decision, comment, now).await)
    }

    /// Uses the approval of a statement review: the oldest approved, unused
    /// review of `subject` on `connection` for `fingerprint` whose run window
    /// (`grant_ends_at`) is still open is marked used at `now` and returned.
    /// Of two runs racing for one approval, exactly one gets it.
    pub async fn consume_review(
        &self,
        subject: &str,
        connection: &str,
        fingerprint: &str,
        now: u64,
    ) -> Result<Option<RequestRow>, StoreError> {
        on_backend!(self, b => b.consume_review(subject, connection, fingerprint, now).await)
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
        on_backend!(self, b => b.pending_review(subject, connection, fingerprint, now).await)
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
    ) -> Result<Result<RequestRow, DecideError>, StoreError> {
        on_backend!(self, b => b.transition(id, from, to, now).await)
    }

    /// Ids of grants revoked at or after `since` (Unix seconds), oldest
    /// first: how a broker learns of revocations made through another
    /// broker sharing the store.
    pub async fn revoked_since(&self, since: u64) -> Result<Vec<String>, StoreError> {
        on_backend!(self, b => b.revoked_since(since).await)
    }
}

/// Unix seconds as stored (both backends keep BIGINT/INTEGER columns).
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer as Unix seconds (or a count); negative reads as 0.
fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests;

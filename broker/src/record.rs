//! The recording interface: what the data path tells the audit trail about
//! each statement, and the promise it relies on (a statement's record is
//! durable before the statement is forwarded).
//!
//! Three parties meet here, each in its own file:
//!
//! - the client→server hook of the Postgres relay (`proxy/postgres/guarded.rs`)
//!   judges each `Query`/`Parse`, then calls [`SessionLog::begin`] with the
//!   statement and the decision, and answers the relay with
//!   `Verdict::Wait(..)` until the record is durable; only then does it
//!   forward (or replace) the message. If the record cannot be written the
//!   statement is refused: no audit, no statement.
//! - the masking hook (`proxy/postgres/masked.rs`) calls
//!   [`SessionLog::masked`] with each column it masked in the current
//!   statement's results;
//! - the server→client outcome hook (`proxy/postgres/recorded.rs`) watches
//!   `CommandComplete`, `ErrorResponse` and `ReadyForQuery` and calls
//!   [`SessionLog::finish`] once per statement with rows, error and duration.
//!
//! The [`Recorder`] behind a `SessionLog` is the audit issue's (hash-chained
//! log, group commit); [`NullRecorder`] records nothing (unit tests).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Identifies one recorded statement (assigned by the recorder).
pub type StatementId = u64;

/// A future resolving when a statement's record is durable.
pub type Durable = Pin<Box<dyn Future<Output = Result<StatementId, RecordError>> + Send + 'static>>;

/// Why a record could not be written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the audit trail is not available: {0}")]
pub struct RecordError(pub String);

/// What the broker decided about a statement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum StatementDecision {
    /// Forwarded (no rule objected, or a rule allowed it).
    Allowed,
    /// Refused by a guardrail rule (or because it could not be parsed).
    Blocked,
    /// Held for review; not forwarded. `request_id` is the review request.
    HeldForReview {
        /// The review request's id.
        request_id: String,
    },
    /// Forwarded because an approved review covered it.
    ReviewApproved {
        /// The review request's id.
        request_id: String,
    },
}

/// One statement as it arrived, with the decision, recorded before it is
/// forwarded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatementRecord {
    /// When the broker received it.
    pub at: SystemTime,
    /// The session it belongs to.
    pub session_id: String,
    /// The hoop identity.
    pub user: String,
    /// The connection.
    pub connection: String,
    /// The statement text exactly as received (a `Query` or a `Parse`).
    pub sql: String,
    /// `Q` for a simple query, `P` for an extended-protocol Parse.
    pub protocol: char,
    /// The decision.
    pub decision: StatementDecision,
    /// The guardrail set and rule that decided (`"no-destructive/drop"`), if any.
    pub rule: Option<String>,
}

/// How a recorded statement ended.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct StatementOutcome {
    /// From forwarding to the server's answer being complete.
    pub duration: Duration,
    /// Rows affected or returned (from CommandComplete), when the server said.
    pub rows: Option<u64>,
    /// Columns whose values were masked in the results.
    pub masked_columns: Vec<String>,
    /// The error the client saw, if any (SQLSTATE and message).
    pub error: Option<String>,
    /// The statement's session, user and connection (so the outcome
    /// record names who and where, like the statement record).
    pub session_id: String,
    /// The hoop identity.
    pub user: String,
    /// The connection.
    pub connection: String,
}

/// Where statement records go.
pub trait Recorder: Send + Sync + 'static {
    /// Appends a statement record; the future resolves once it is durable.
    fn statement(&self, record: StatementRecord) -> Durable;
    /// Appends how a statement ended (best effort; never blocks the relay).
    fn outcome(&self, id: StatementId, outcome: StatementOutcome);
}

/// Records nothing (durable at once). For tests and tools.
#[derive(Debug, Default)]
pub struct NullRecorder;

impl Recorder for NullRecorder {
    fn statement(&self, _record: StatementRecord) -> Durable {
        Box::pin(async { Ok(0) })
    }

    fn outcome(&self, _id: StatementId, _outcome: StatementOutcome) {}
}

/// The recording side of one session: shared by the session's hooks.
pub struct SessionLog {
    recorder: Arc<dyn Recorder>,
    session_id: String,
    user: String,
    connection: String,
    inflight: std::sync::Mutex<InFlight>,
}

#[derive(Default)]
struct InFlight {
    /// Statements forwarded and not yet answered, oldest first.
    queue: std::collections::VecDeque<(StatementId, std::time::Instant)>,
    /// Columns masked since the oldest in-flight statement began.
    masked: std::collections::BTreeSet<String>,
}

impl std::fmt::Debug for SessionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLog")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl SessionLog {
    /// The log of one session.
    pub fn new(
        recorder: Arc<dyn Recorder>,
        session_id: &str,
        user: &str,
        connection: &str,
    ) -> Arc<SessionLog> {
        Arc::new(SessionLog {
            recorder,
            session_id: session_id.to_owned(),
            user: user.to_owned(),
            connection: connection.to_owned(),
            inflight: std::sync::Mutex::new(InFlight::default()),
        })
    }

    /// Records a statement with its decision. The returned future resolves
    /// when the record is durable; a forwarded statement must not reach the
    /// server before. The caller must call [`SessionLog::forwarded`] with the
    /// id when (and only when) it forwards the statement.
    pub fn begin(
        &self,
        sql: &str,
        protocol: char,
        decision: StatementDecision,
        rule: Option<String>,
    ) -> Durable {
        self.recorder.statement(StatementRecord {
            at: SystemTime::now(),
            session_id: self.session_id.clone(),
            user: self.user.clone(),
            connection: self.connection.clone(),
            sql: sql.to_owned(),
            protocol,
            decision,
            rule,
        })
    }

    /// The statement `id` went to the server; its outcome comes with the
    /// next unanswered ReadyForQuery.
    pub fn forwarded(&self, id: StatementId) {
        let mut f = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        f.queue.push_back((id, std::time::Instant::now()));
    }

    /// The masking hook masked values of `column` in the current results.
    pub fn masked(&self, column: &str) {
        let mut f = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if !f.masked.contains(column) {
            f.masked.insert(column.to_owned());
        }
    }

    /// The oldest in-flight statement ended with `rows` / `error`.
    pub fn finish(&self, rows: Option<u64>, error: Option<String>) {
        let (id, started, masked) = {
            let mut f = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            let Some((id, started)) = f.queue.pop_front() else {
                return;
            };
            (id, started, std::mem::take(&mut f.masked))
        };
        self.recorder.outcome(
            id,
            StatementOutcome {
                duration: started.elapsed(),
                rows,
                masked_columns: masked.into_iter().collect(),
                error,
                session_id: self.session_id.clone(),
                user: self.user.clone(),
                connection: self.connection.clone(),
            },
        );
    }
}

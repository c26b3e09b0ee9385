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
//!   statement's results and, on a connection with `record_results`,
//!   [`SessionLog::result_row`] with each row's values as the client
//!   received them (after masking);
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

pub use hoop_shared::api::RecordedResults;

/// The largest `record_results` a connection may set (rows per statement).
pub const MAX_RECORD_RESULTS: u32 = 1000;
/// Bytes of one recorded value at most; longer values are cut (at a
/// character boundary) and marked with [`cut_marker`].
pub const MAX_RESULT_VALUE_BYTES: usize = 256;
/// Bytes of recorded values per statement at most, whatever the row cap:
/// a statement's outcome is one audit record and must stay small.
pub const MAX_RESULT_BYTES: usize = 1 << 20;
/// What a binary-format value is recorded as (never decoded).
pub const BINARY_PLACEHOLDER: &str = "<binary>";

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
    /// The first result rows, when the connection records them.
    pub results: Option<RecordedResults>,
}

/// What follows a cut value: how many bytes were left out.
pub fn cut_marker(dropped: usize) -> String {
    format!("…[+{dropped} bytes]")
}

/// A text-format value as recorded: UTF-8 (invalid bytes replaced), cut to
/// [`MAX_RESULT_VALUE_BYTES`] with a [`cut_marker`].
pub fn result_value(bytes: &[u8]) -> String {
    if bytes.len() <= MAX_RESULT_VALUE_BYTES {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut head = bytes.get(..MAX_RESULT_VALUE_BYTES).unwrap_or(bytes);
    // Do not keep half a character: an incomplete sequence at the cut goes.
    if let Err(e) = std::str::from_utf8(head)
        && e.error_len().is_none()
    {
        head = head.get(..e.valid_up_to()).unwrap_or(head);
    }
    let mut out = String::from_utf8_lossy(head).into_owned();
    out.push_str(&cut_marker(bytes.len() - head.len()));
    out
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
    /// Result rows kept per statement (the connection's `record_results`).
    keep_results: usize,
    inflight: std::sync::Mutex<InFlight>,
}

#[derive(Default)]
struct InFlight {
    /// Statements forwarded and not yet answered, oldest first.
    queue: std::collections::VecDeque<(StatementId, std::time::Instant)>,
    /// Columns masked since the oldest in-flight statement began.
    masked: std::collections::BTreeSet<String>,
    /// Result rows kept since the oldest in-flight statement began (at
    /// most `keep_results`), and the bytes of their values.
    results: Option<RecordedResults>,
    result_bytes: usize,
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
        SessionLog::keeping_results(recorder, session_id, user, connection, 0)
    }

    /// The log of one session that keeps up to `rows` result rows per
    /// statement (capped at [`MAX_RECORD_RESULTS`]; 0 keeps none).
    pub fn keeping_results(
        recorder: Arc<dyn Recorder>,
        session_id: &str,
        user: &str,
        connection: &str,
        rows: u32,
    ) -> Arc<SessionLog> {
        Arc::new(SessionLog {
            recorder,
            session_id: session_id.to_owned(),
            user: user.to_owned(),
            connection: connection.to_owned(),
            keep_results: usize::try_from(rows.min(MAX_RECORD_RESULTS)).unwrap_or(0),
            inflight: std::sync::Mutex::new(InFlight::default()),
        })
    }

    /// Result rows kept per statement (0: values are not recorded).
    pub fn keeps_results(&self) -> usize {
        self.keep_results
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

    /// A result row of the current statement as the client received it:
    /// `columns` from its RowDescription, each value as [`result_value`]
    /// made it (or [`BINARY_PLACEHOLDER`]; `None` is NULL). Kept while the
    /// statement has fewer than `keep_results` rows; returns whether more
    /// rows are wanted (false once a row was refused, until the statement
    /// finishes). A later result set with other columns (a multi-statement
    /// query) is not kept: the statement is marked truncated.
    pub fn result_row(&self, columns: &[String], values: Vec<Option<String>>) -> bool {
        if self.keep_results == 0 {
            return false;
        }
        let mut f = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let InFlight {
            results,
            result_bytes,
            ..
        } = &mut *f;
        let r = results.get_or_insert_with(|| RecordedResults {
            columns: columns.to_vec(),
            rows: Vec::new(),
            truncated: false,
        });
        if r.truncated {
            return false;
        }
        let size: usize = values.iter().flatten().map(String::len).sum();
        if r.columns != columns
            || r.rows.len() >= self.keep_results
            || result_bytes.saturating_add(size) > MAX_RESULT_BYTES
        {
            r.truncated = true;
            return false;
        }
        *result_bytes += size;
        r.rows.push(values);
        true
    }

    /// The oldest in-flight statement ended with `rows` / `error`.
    pub fn finish(&self, rows: Option<u64>, error: Option<String>) {
        let (id, started, masked, results) = {
            let mut f = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            // Rows belong to the statement being answered; with none in
            // flight they belong to nobody.
            let results = f.results.take();
            f.result_bytes = 0;
            let Some((id, started)) = f.queue.pop_front() else {
                return;
            };
            (id, started, std::mem::take(&mut f.masked), results)
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
                results,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Outcomes(Mutex<Vec<(StatementId, StatementOutcome)>>);

    impl Recorder for Outcomes {
        fn statement(&self, _record: StatementRecord) -> Durable {
            Box::pin(async { Ok(0) })
        }
        fn outcome(&self, id: StatementId, outcome: StatementOutcome) {
            self.0.lock().unwrap().push((id, outcome));
        }
    }

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn row(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[test]
    fn rows_go_with_the_statement_answered_and_stop_at_the_cap() {
        let outcomes = Arc::new(Outcomes::default());
        let log = SessionLog::keeping_results(outcomes.clone(), "s", "alice", "pg", 2);
        assert_eq!(log.keeps_results(), 2);
        // Two statements in flight (pipelined); the first's rows arrive,
        // then its ReadyForQuery, then the second's.
        log.forwarded(1);
        log.forwarded(2);
        let c = cols(&["id", "email"]);
        assert!(log.result_row(&c, row(&[Some("1"), Some("****@example.com")])));
        assert!(log.result_row(&c, row(&[Some("2"), None])));
        assert!(
            !log.result_row(&c, row(&[Some("3"), Some("x")])),
            "past the cap"
        );
        assert!(!log.result_row(&c, row(&[Some("4"), Some("y")])));
        log.finish(Some(4), None);
        let n = cols(&["n"]);
        assert!(log.result_row(&n, row(&[Some("42")])));
        log.finish(Some(1), None);
        // No statement in flight: rows are dropped, not given to the next.
        assert!(log.result_row(&n, row(&[Some("stray")])));
        log.finish(None, None);
        log.forwarded(3);
        log.finish(Some(0), None);

        let got = outcomes.0.lock().unwrap();
        assert_eq!(got.len(), 3);
        let first = got[0].1.results.as_ref().unwrap();
        assert_eq!(got[0].0, 1);
        assert_eq!(first.columns, ["id", "email"]);
        assert_eq!(
            first.rows,
            [
                row(&[Some("1"), Some("****@example.com")]),
                row(&[Some("2"), None])
            ]
        );
        assert!(first.truncated);
        let second = got[1].1.results.as_ref().unwrap();
        assert_eq!(
            (got[1].0, second.rows.clone()),
            (2, vec![row(&[Some("42")])])
        );
        assert!(!second.truncated);
        assert_eq!((got[2].0, got[2].1.results.clone()), (3, None));
    }

    #[test]
    fn a_second_result_set_with_other_columns_is_not_mixed_in() {
        let outcomes = Arc::new(Outcomes::default());
        let log = SessionLog::keeping_results(outcomes.clone(), "s", "u", "c", 10);
        log.forwarded(7);
        assert!(log.result_row(&cols(&["a"]), row(&[Some("1")])));
        assert!(!log.result_row(&cols(&["b"]), row(&[Some("2")])));
        log.finish(Some(2), None);
        let got = outcomes.0.lock().unwrap();
        let r = got[0].1.results.as_ref().unwrap();
        assert_eq!(
            (r.columns.clone(), r.rows.len(), r.truncated),
            (cols(&["a"]), 1, true)
        );
    }

    #[test]
    fn without_record_results_nothing_is_kept() {
        let outcomes = Arc::new(Outcomes::default());
        let log = SessionLog::new(outcomes.clone(), "s", "u", "c");
        log.forwarded(1);
        assert!(!log.result_row(&cols(&["a"]), row(&[Some("1")])));
        log.finish(Some(1), None);
        assert!(outcomes.0.lock().unwrap()[0].1.results.is_none());
        let capped = SessionLog::keeping_results(outcomes, "s", "u", "c", u32::MAX);
        assert_eq!(capped.keeps_results(), MAX_RECORD_RESULTS as usize);
    }

    #[test]
    fn long_values_are_cut_at_a_character_with_a_marker() {
        assert_eq!(result_value(b"short"), "short");
        let exact = "x".repeat(MAX_RESULT_VALUE_BYTES);
        assert_eq!(result_value(exact.as_bytes()), exact);
        let long = "y".repeat(1000);
        assert_eq!(
            result_value(long.as_bytes()),
            format!("{}…[+744 bytes]", "y".repeat(256))
        );
        // "é" is two bytes; the 256th byte would split one.
        let accents = format!("a{}", "é".repeat(200));
        let cut = result_value(accents.as_bytes());
        assert!(cut.starts_with(&format!("a{}", "é".repeat(127))), "{cut}");
        assert!(cut.ends_with("…[+146 bytes]"), "{cut}");
        assert!(!cut.contains('\u{fffd}'), "{cut}");
    }
}

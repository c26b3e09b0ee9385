//! The server→client outcome hook: tells the session's recording how each
//! forwarded statement ended.
//!
//! Between two ReadyForQuery messages the server answers one client
//! `Query` (which may hold several statements) or one extended-protocol
//! batch up to `Sync`. The hook adds up the row counts of the
//! `CommandComplete` tags (`SELECT 5`, `INSERT 0 3`, `DELETE 3`: the last
//! number; `CREATE TABLE` has none), keeps the first `ErrorResponse` as
//! `SQLSTATE: message` (fields `C` and `M`), and at `ReadyForQuery` calls
//! [`SessionLog::finish`], which pairs it with the oldest statement still in
//! flight. It never changes a frame.

use std::sync::Arc;

use super::pipeline::ServerStage;
use super::relay::Verdict;
use super::state::AnsweredState;
use super::wire::{ServerFrame, ServerMessage, command_rows};
use crate::record::SessionLog;

/// Watches `C`, `E` and `Z` from the server; forwards everything.
#[derive(Debug, Default)]
pub struct RecordOutcomes {
    log: Option<Arc<SessionLog>>,
    rows: Option<u64>,
    error: Option<String>,
}

impl RecordOutcomes {
    /// Reports to `log`; without one the hook only forwards.
    pub fn new(log: Option<Arc<SessionLog>>) -> Self {
        RecordOutcomes {
            log,
            rows: None,
            error: None,
        }
    }
}

impl ServerStage for RecordOutcomes {
    #[inline]
    fn on_server(&mut self, frame: &ServerFrame<'_>, _state: &AnsweredState) -> Verdict {
        let Some(log) = &self.log else {
            return Verdict::Forward;
        };
        match frame.msg {
            ServerMessage::CommandComplete { tag } => {
                if let Some(n) = command_rows(tag) {
                    self.rows = Some(self.rows.unwrap_or(0).saturating_add(n));
                }
            }
            ServerMessage::ErrorResponse(fields) if self.error.is_none() => {
                let (code, message) = fields.code_and_message();
                self.error = Some(format!("{code}: {message}"));
            }
            ServerMessage::ReadyForQuery { .. } => log.finish(self.rows.take(), self.error.take()),
            _ => {}
        }
        Verdict::Forward
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Durable, Recorder, StatementOutcome, StatementRecord};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Outcomes(Mutex<Vec<(u64, StatementOutcome)>>);

    impl Recorder for Outcomes {
        fn statement(&self, _record: StatementRecord) -> Durable {
            Box::pin(async { Ok(0) })
        }
        fn outcome(&self, id: u64, outcome: StatementOutcome) {
            self.0.lock().unwrap().push((id, outcome));
        }
    }

    fn frame(hook: &mut RecordOutcomes, tag: u8, body: &[u8]) {
        let state = crate::proxy::postgres::state::tracker(false, false).1;
        assert!(matches!(
            hook.on_server(&ServerFrame::decode(tag, body), &state),
            Verdict::Forward
        ));
    }

    #[test]
    fn rows_and_errors_are_reported_at_ready_for_query() {
        let outcomes = Arc::new(Outcomes::default());
        let log = SessionLog::new(outcomes.clone(), "s", "alice", "pg");
        let mut hook = RecordOutcomes::new(Some(log.clone()));
        log.forwarded(1);
        log.forwarded(2);
        log.forwarded(3);
        // 1: a query with two statements.
        frame(&mut hook, b'T', b"\0\0");
        frame(&mut hook, b'C', b"SELECT 5\0");
        frame(&mut hook, b'C', b"INSERT 0 3\0");
        frame(&mut hook, b'Z', b"I");
        // 2: DDL, no count.
        frame(&mut hook, b'C', b"CREATE TABLE\0");
        frame(&mut hook, b'Z', b"I");
        // 3: an error.
        frame(
            &mut hook,
            b'E',
            b"SERROR\0C42P01\0Mrelation \"nope\" does not exist\0\0",
        );
        frame(&mut hook, b'Z', b"I");
        // A ReadyForQuery with nothing in flight changes nothing.
        frame(&mut hook, b'Z', b"I");
        let got = outcomes.0.lock().unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].0, got[0].1.rows, got[0].1.error.as_deref()),
            (1, Some(8), None)
        );
        assert_eq!((got[1].0, got[1].1.rows), (2, None));
        assert_eq!(
            got[2].1.error.as_deref(),
            Some("42P01: relation \"nope\" does not exist")
        );
    }

    #[test]
    fn malformed_frames_are_forwarded_without_a_count() {
        let mut hook = RecordOutcomes::new(Some(SessionLog::new(
            Arc::new(Outcomes::default()),
            "s",
            "u",
            "c",
        )));
        frame(&mut hook, b'C', b"");
        frame(&mut hook, b'C', b"\xff\xfe");
        frame(&mut hook, b'E', b"");
        assert_eq!(hook.rows, None);
        let mut none = RecordOutcomes::new(None);
        frame(&mut none, b'Z', b"I");
    }
}

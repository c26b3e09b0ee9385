//! The protocol state of one session, tracked once for every hook: which
//! answers the server owes (and so which client message each server message
//! answers, even in pipelined batches), prepared statements and portals as
//! the client sent them and as the server confirmed them, the
//! ReadyForQuery count (batch index) on both sides, and the transaction
//! status.
//!
//! Two halves share one queue of notes: [`SentState`], updated by the
//! client→server pipeline as each client message passes, and
//! [`AnsweredState`], updated by the server→client pipeline as each answer
//! passes. The pipelines update their half once per message, before any
//! hook sees it; hooks only read it.
//!
//! # How answers are matched
//!
//! Every client message the server answers (`Query`, `Parse`, `Bind`,
//! `Describe`, `Execute`, `Close`, `Sync`, `FunctionCall`) is noted in
//! order. Answers consume the notes in the server's order (ParseComplete,
//! BindComplete, ...). After an error the server skips to `Sync`, and so do
//! the notes; every ReadyForQuery re-synchronises them. A refused message a
//! guardrail replaces with a marker keeps the notes aligned: the marker
//! (a `Query` for a `Query`, a failing `Parse` otherwise) is answered in its
//! place.
//!
//! Notes are kept only when a hook needs them (masking, recorded result
//! rows); batch indices are counted whenever any hook is on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::wire::{ClientMessage, FieldDesc, ServerMessage, Target};

/// A client message the server will answer, in order.
#[derive(Debug)]
enum Note {
    Query {
        sql: Option<Arc<str>>,
    },
    Parse {
        name: Vec<u8>,
        sql: Arc<str>,
    },
    Bind {
        portal: Vec<u8>,
        statement: Vec<u8>,
        formats: Vec<i16>,
    },
    Describe {
        target: Target,
        name: Vec<u8>,
    },
    Execute {
        portal: Vec<u8>,
    },
    Close {
        target: Target,
        name: Vec<u8>,
    },
    Sync,
    FunctionCall,
}

impl Note {
    /// Answered by a ReadyForQuery of its own.
    fn is_sync_point(&self) -> bool {
        matches!(self, Note::Sync | Note::Query { .. } | Note::FunctionCall)
    }
}

/// The notes both halves share.
type Notes = Arc<Mutex<VecDeque<Note>>>;

fn lock(notes: &Notes) -> MutexGuard<'_, VecDeque<Note>> {
    notes.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new tracker: the client half and the server half. `active`: some hook
/// needs batch indices; `notes`: some hook needs to know what each answer
/// answers (implies `active`).
pub(crate) fn tracker(active: bool, notes: bool) -> (SentState, AnsweredState) {
    let shared = notes.then(Notes::default);
    (
        SentState {
            active: active || notes,
            notes: shared.clone(),
            sync_points: 0,
            batch: 0,
            portals: HashMap::new(),
        },
        AnsweredState {
            active: active || notes,
            notes: shared,
            ready_seen: 0,
            batch: 0,
            status: b'I',
            statements: HashMap::new(),
            portals: HashMap::new(),
            answer: Answer::Nothing,
        },
    )
}

/// Whether a query's text may hold a `COPY`, the one statement whose
/// answer's columns come from its text (ASCII, case-insensitive).
fn may_copy(sql: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"copy";
    sql.windows(NEEDLE.len())
        .any(|w| w.eq_ignore_ascii_case(NEEDLE))
}

fn text(b: &[u8]) -> Arc<str> {
    Arc::from(String::from_utf8_lossy(b).as_ref())
}

/// Sets `map[key]` to `value`, reusing the key's allocation when present
/// (the unnamed portal and statement are rebound all the time).
fn set_bytes(map: &mut HashMap<Vec<u8>, Vec<u8>>, key: &[u8], value: &[u8]) {
    match map.get_mut(key) {
        Some(v) => {
            v.clear();
            v.extend_from_slice(value);
        }
        None => {
            map.insert(key.to_vec(), value.to_vec());
        }
    }
}

/// The client half: what was sent.
#[derive(Debug)]
pub(crate) struct SentState {
    active: bool,
    notes: Option<Notes>,
    /// ReadyForQuery messages the server owes for what was sent so far.
    sync_points: u64,
    /// The batch (index of the ReadyForQuery that ends it) of the message
    /// last observed.
    batch: u64,
    /// Portal → the statement it was bound from, as sent.
    portals: HashMap<Vec<u8>, Vec<u8>>,
}

impl SentState {
    /// Notes one client message (once per message, before any hook).
    pub(crate) fn observe(&mut self, msg: &ClientMessage<'_>) {
        if !self.active {
            return;
        }
        self.batch = self.sync_points;
        // What every hook on needs: batch indices and portals as sent.
        match *msg {
            ClientMessage::Query { .. } => {
                self.sync_points += 1;
                // A simple query replaces the unnamed portal.
                self.portals.remove(&b""[..]);
            }
            // A FunctionCall too short for its OID still gets its own
            // ReadyForQuery (after the server's error).
            ClientMessage::Sync
            | ClientMessage::FunctionCall { .. }
            | ClientMessage::Malformed { tag: b'F', .. } => self.sync_points += 1,
            ClientMessage::Bind(b) => set_bytes(&mut self.portals, b.portal, b.statement),
            ClientMessage::Close(c) if c.target == Target::Portal => {
                self.portals.remove(c.name);
            }
            _ => {}
        }
        // What the masking needs: the answers owed, in order (only then are
        // names and texts copied).
        let Some(notes) = &self.notes else {
            return;
        };
        let note = match *msg {
            ClientMessage::Query { sql } => Note::Query {
                sql: may_copy(sql).then(|| text(sql)),
            },
            ClientMessage::Sync => Note::Sync,
            ClientMessage::FunctionCall { .. } | ClientMessage::Malformed { tag: b'F', .. } => {
                Note::FunctionCall
            }
            ClientMessage::Bind(b) => Note::Bind {
                portal: b.portal.to_vec(),
                statement: b.statement.to_vec(),
                formats: b.result_formats.iter().collect(),
            },
            ClientMessage::Close(c) => Note::Close {
                target: c.target,
                name: c.name.to_vec(),
            },
            ClientMessage::Parse(p) => Note::Parse {
                name: p.name.to_vec(),
                sql: text(p.sql),
            },
            ClientMessage::Describe(d) => Note::Describe {
                target: d.target,
                name: d.name.to_vec(),
            },
            ClientMessage::Execute { portal, .. } => Note::Execute {
                portal: portal.to_vec(),
            },
            // Flush, CopyData/CopyDone/CopyFail (part of a statement already
            // noted), Terminate, malformed messages: no answer of their own.
            _ => return,
        };
        lock(notes).push_back(note);
    }

    /// The batch of the message last observed: the index of the
    /// ReadyForQuery that will end the server's answer to it.
    pub(crate) fn batch(&self) -> u64 {
        self.batch
    }

    /// The statement `portal` was bound from, as the client sent it.
    pub(crate) fn portal_statement(&self, portal: &[u8]) -> Option<&[u8]> {
        self.portals.get(portal).map(Vec::as_slice)
    }
}

/// What the server message being shown answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Nothing noted (no notes kept, or an answer nobody asked for).
    Nothing,
    /// A simple query (rows, COPY, CommandComplete ...).
    Query,
    /// Describe of a statement (its RowDescription or NoData).
    DescribeStatement(Vec<u8>),
    /// Describe of a portal.
    DescribePortal(Vec<u8>),
    /// Execute of a portal (its rows, COPY, CommandComplete ...).
    Execute(Vec<u8>),
    /// Bind of a portal (BindComplete).
    Bind(Vec<u8>),
    /// Anything else noted (ParseComplete, CloseComplete, ...).
    Other,
}

/// A prepared statement the server confirmed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Statement {
    /// Its text.
    pub sql: Option<Arc<str>>,
    /// Its result columns, once a Describe answered them.
    pub fields: Option<Arc<Vec<FieldDesc>>>,
}

/// A portal the server confirmed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Portal {
    /// The statement it was bound from.
    pub statement: Vec<u8>,
    /// Result formats from Bind (`None`: as its RowDescription says).
    pub formats: Option<Vec<i16>>,
    /// Its result columns, from its statement's or its own Describe.
    pub fields: Option<Arc<Vec<FieldDesc>>>,
}

/// The server half: what was answered.
#[derive(Debug)]
pub(crate) struct AnsweredState {
    active: bool,
    notes: Option<Notes>,
    /// ReadyForQuery messages seen so far.
    ready_seen: u64,
    /// The batch the message last observed belongs to.
    batch: u64,
    /// Transaction status of the last ReadyForQuery.
    status: u8,
    statements: HashMap<Vec<u8>, Statement>,
    portals: HashMap<Vec<u8>, Portal>,
    answer: Answer,
}

impl AnsweredState {
    /// Notes one server message (once per message, before any hook).
    #[inline]
    pub(crate) fn observe(&mut self, msg: &ServerMessage<'_>) {
        if !self.active {
            return;
        }
        self.batch = self.ready_seen;
        match msg {
            // Rows and COPY data: the answer stays what it was.
            ServerMessage::DataRow(_) | ServerMessage::CopyData(_) => {}
            ServerMessage::ReadyForQuery { status } => {
                self.ready_seen += 1;
                self.status = *status;
                self.answer = Answer::Nothing;
                if *status == b'I' {
                    // Outside a transaction no portal survives.
                    self.portals.clear();
                }
                if let Some(notes) = &self.notes {
                    let mut notes = lock(notes);
                    while let Some(n) = notes.pop_front() {
                        if n.is_sync_point() {
                            break;
                        }
                    }
                }
            }
            other => {
                if let Some(notes) = self.notes.clone() {
                    let mut notes = lock(&notes);
                    self.answer = self.answered(other, &mut notes);
                }
            }
        }
    }

    fn answered(&mut self, msg: &ServerMessage<'_>, notes: &mut VecDeque<Note>) -> Answer {
        let front_answer = |notes: &VecDeque<Note>| match notes.front() {
            Some(Note::Query { .. }) => Answer::Query,
            Some(Note::Execute { portal }) => Answer::Execute(portal.clone()),
            _ => Answer::Nothing,
        };
        match msg {
            ServerMessage::ParseComplete => {
                if let Some(Note::Parse { .. }) = notes.front()
                    && let Some(Note::Parse { name, sql }) = notes.pop_front()
                {
                    self.statements.insert(
                        name,
                        Statement {
                            sql: Some(sql),
                            fields: None,
                        },
                    );
                }
                Answer::Other
            }
            ServerMessage::BindComplete => {
                if let Some(Note::Bind { .. }) = notes.front()
                    && let Some(Note::Bind {
                        portal,
                        statement,
                        formats,
                    }) = notes.pop_front()
                {
                    let fields = self
                        .statements
                        .get(&statement)
                        .and_then(|s| s.fields.clone());
                    self.portals.insert(
                        portal.clone(),
                        Portal {
                            statement,
                            formats: Some(formats),
                            fields,
                        },
                    );
                    return Answer::Bind(portal);
                }
                Answer::Other
            }
            ServerMessage::NoData | ServerMessage::RowDescription(_) => {
                let described = match notes.front() {
                    Some(Note::Describe { .. }) => notes.pop_front(),
                    _ => None,
                };
                match described {
                    Some(Note::Describe { target, name }) => {
                        let fields = match msg {
                            ServerMessage::RowDescription(rd) => rd.to_descs().ok().map(Arc::new),
                            _ => None,
                        };
                        if target == Target::Statement {
                            self.statements.entry(name.clone()).or_default().fields = fields;
                            Answer::DescribeStatement(name)
                        } else {
                            let p = self.portals.entry(name.clone()).or_default();
                            p.fields = fields;
                            p.formats = None;
                            Answer::DescribePortal(name)
                        }
                    }
                    _ => front_answer(notes),
                }
            }
            ServerMessage::CloseComplete => {
                if let Some(Note::Close { .. }) = notes.front()
                    && let Some(Note::Close { target, name }) = notes.pop_front()
                {
                    match target {
                        Target::Statement => {
                            self.statements.remove(&name);
                        }
                        Target::Portal => {
                            self.portals.remove(&name);
                        }
                    }
                }
                Answer::Other
            }
            ServerMessage::CommandComplete { .. }
            | ServerMessage::EmptyQueryResponse
            | ServerMessage::PortalSuspended => {
                let answer = front_answer(notes);
                if let Some(Note::Execute { .. }) = notes.front() {
                    notes.pop_front();
                }
                answer
            }
            ServerMessage::ErrorResponse(_) => {
                // Extended protocol: the server skips to Sync.
                while notes.front().is_some_and(|n| !n.is_sync_point()) {
                    notes.pop_front();
                }
                Answer::Nothing
            }
            _ => front_answer(notes),
        }
    }

    /// The batch (ReadyForQuery index) the message last observed belongs to.
    pub(crate) fn batch(&self) -> u64 {
        self.batch
    }

    /// What the message last observed answers (a DataRow: what the rows
    /// before it answered).
    pub(crate) fn answer(&self) -> &Answer {
        &self.answer
    }

    /// Transaction status of the last ReadyForQuery (`I`, `T` or `E`).
    #[allow(dead_code)] // part of the state's API; read by tests
    pub(crate) fn transaction_status(&self) -> u8 {
        self.status
    }

    /// The portal the oldest unanswered `Execute` runs, if the next answer
    /// belongs to one.
    pub(crate) fn executing(&self) -> Option<Vec<u8>> {
        let notes = lock(self.notes.as_ref()?);
        match notes.front() {
            Some(Note::Execute { portal }) => Some(portal.clone()),
            _ => None,
        }
    }

    /// The text of the simple query the next answer belongs to, when it
    /// was kept (it mentions COPY).
    pub(crate) fn query_text(&self) -> Option<Arc<str>> {
        let notes = lock(self.notes.as_ref()?);
        match notes.front() {
            Some(Note::Query { sql }) => sql.clone(),
            _ => None,
        }
    }

    /// A confirmed statement.
    pub(crate) fn statement(&self, name: &[u8]) -> Option<&Statement> {
        self.statements.get(name)
    }

    /// A confirmed portal.
    pub(crate) fn portal(&self, name: &[u8]) -> Option<&Portal> {
        self.portals.get(name)
    }

    /// Notes not answered yet (tests).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.notes.as_ref().map_or(0, |n| lock(n).len())
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn client(sent: &mut SentState, tag: u8, body: &[u8]) -> u64 {
        sent.observe(&ClientMessage::decode(tag, body));
        sent.batch()
    }

    fn server(answered: &mut AnsweredState, tag: u8, body: &[u8]) -> (u64, Answer) {
        answered.observe(&ServerMessage::decode(tag, body));
        (answered.batch(), answered.answer().clone())
    }

    #[test]
    fn answers_are_matched_to_pipelined_messages_and_batches_counted() {
        let (mut sent, mut answered) = tracker(true, true);
        // Batch 0: Parse + Describe + Bind + Execute + Sync; batch 1: a Query.
        assert_eq!(client(&mut sent, b'P', b"s1\0select 1\0\0\0"), 0);
        client(&mut sent, b'D', b"Ss1\0");
        client(&mut sent, b'B', b"p1\0s1\0\0\0\0\0\0\x01\0\x01");
        client(&mut sent, b'E', b"p1\0\0\0\0\0");
        assert_eq!(client(&mut sent, b'S', b""), 0);
        assert_eq!(client(&mut sent, b'Q', b"copy t to stdout\0"), 1);
        assert_eq!(sent.portal_statement(b"p1"), Some(&b"s1"[..]));
        assert_eq!(answered.pending(), 6);

        assert_eq!(server(&mut answered, b'1', b""), (0, Answer::Other));
        assert_eq!(server(&mut answered, b't', b"\0\0").1, Answer::Nothing);
        let t = b"\0\x01x\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0";
        assert_eq!(
            server(&mut answered, b'T', t).1,
            Answer::DescribeStatement(b"s1".to_vec())
        );
        let statement = answered.statement(b"s1").unwrap();
        assert_eq!(statement.sql.as_deref(), Some("select 1"));
        assert_eq!(statement.fields.as_ref().unwrap()[0].name, "x");
        assert_eq!(
            server(&mut answered, b'2', b"").1,
            Answer::Bind(b"p1".to_vec())
        );
        let portal = answered.portal(b"p1").unwrap();
        assert_eq!(portal.formats.as_deref(), Some(&[1i16][..]));
        assert!(portal.fields.is_some(), "described with its statement");
        assert_eq!(answered.executing(), Some(b"p1".to_vec()));
        server(&mut answered, b'D', b"\0\x01\0\0\0\x011");
        assert_eq!(
            server(&mut answered, b'C', b"SELECT 1\0").1,
            Answer::Execute(b"p1".to_vec())
        );
        assert_eq!(server(&mut answered, b'Z', b"T"), (0, Answer::Nothing));
        assert_eq!(answered.transaction_status(), b'T');
        assert!(
            answered.portal(b"p1").is_some(),
            "a transaction keeps portals"
        );
        // The Query: its text was kept (it mentions COPY).
        assert_eq!(answered.query_text().as_deref(), Some("copy t to stdout"));
        assert_eq!(server(&mut answered, b'H', b"\0\0\0").1, Answer::Query);
        assert_eq!(server(&mut answered, b'Z', b"I").0, 1);
        assert!(answered.portal(b"p1").is_none(), "idle: no portal survives");
        assert_eq!(answered.pending(), 0);
    }

    #[test]
    fn every_function_call_is_a_sync_point_even_a_malformed_one() {
        let (mut sent, _) = tracker(true, false);
        assert_eq!(client(&mut sent, b'F', b"\0\0\0\x07\0\0\0\0\0\0"), 0);
        assert_eq!(client(&mut sent, b'F', b"\0"), 1);
        assert_eq!(client(&mut sent, b'Q', b"select 1\0"), 2);
    }

    #[test]
    fn an_error_skips_the_notes_to_sync() {
        let (mut sent, mut answered) = tracker(false, true);
        client(&mut sent, b'P', b"\0oops\0\0\0");
        client(&mut sent, b'B', b"\0\0\0\0\0\0\0\0");
        client(&mut sent, b'E', b"\0\0\0\0\0");
        client(&mut sent, b'S', b"");
        client(&mut sent, b'Q', b"select 1\0");
        server(&mut answered, b'E', b"SERROR\0C42601\0Mx\0\0");
        assert_eq!(answered.pending(), 2, "Sync and Query left");
        server(&mut answered, b'Z', b"I");
        assert_eq!(answered.pending(), 1);
        assert_eq!(server(&mut answered, b'T', b"\0\0").1, Answer::Query);
    }

    #[test]
    fn off_it_keeps_nothing_and_without_notes_it_only_counts() {
        let (mut sent, mut answered) = tracker(false, false);
        client(&mut sent, b'Q', b"select 1\0");
        assert_eq!(client(&mut sent, b'Q', b"select 1\0"), 0);
        server(&mut answered, b'Z', b"I");
        assert_eq!(answered.batch(), 0);
        let (mut sent, mut answered) = tracker(true, false);
        client(&mut sent, b'Q', b"select 1\0");
        assert_eq!(client(&mut sent, b'Q', b"select 1\0"), 1);
        client(&mut sent, b'B', b"p\0s\0\0\0\0\0\0\0");
        assert_eq!(sent.portal_statement(b"p"), Some(&b"s"[..]));
        server(&mut answered, b'Z', b"I");
        assert_eq!(server(&mut answered, b'Z', b"I").0, 1);
        assert_eq!(answered.pending(), 0);
        assert_eq!(answered.executing(), None);
    }
}

//! The guardrail hooks of the relay: client→server judges every `Query` and
//! `Parse`; server→client puts the refusal where the client expects it.
//!
//! # How a refusal reaches the client in the right place
//!
//! A refused statement is not dropped: its message is *replaced* by a marker
//! the server cannot parse (`Query` → a `Query` of [`MARKER_SQL`]; `Parse` →
//! a `Parse` of it, same statement name). The server answers the marker the
//! way it answers any failing statement, and that is exactly the state the
//! client must see:
//!
//! - ordering: the answer comes after the answers to everything the client
//!   sent before (pipelined queries, earlier extended-protocol batches);
//! - extended protocol: after the failed `Parse` the server itself discards
//!   the client's `Bind`/`Describe`/`Execute` until `Sync` and answers the
//!   `Sync` with ReadyForQuery, as it would after any error;
//! - transactions: inside `BEGIN ... COMMIT` the error aborts the transaction
//!   on the server (ReadyForQuery `E`), so a later `COMMIT` rolls back, just
//!   as if the server had refused the statement. Leaving the transaction
//!   open instead would let `BEGIN; <refused>; <next>; COMMIT` commit half
//!   of what the client meant as one unit.
//!
//! The server→client hook counts ReadyForQuery messages (one per `Query`,
//! `Sync` or `FunctionCall` sent), so it knows which answer belongs to a
//! marker, and replaces that answer's syntax error (SQLSTATE 42601) with the
//! guardrail's ErrorResponse. If an earlier message of the same batch failed
//! first, the server skips the marker and the client sees that real error
//! (the refused statement did not run either way).
//!
//! Fast-path `FunctionCall` messages call a function by OID, past any SQL
//! text to inspect: with guardrails on they are refused the same way.
//!
//! The client's encoding matters to the parser (in SJIS, BIG5, GBK, UHC,
//! GB18030 and JOHAB a multi-byte character can end in `\` or `'`): the
//! server's ParameterStatus for `client_encoding` is watched, and while it
//! is one of those every statement is refused.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut as _, Bytes, BytesMut};

use super::frame::{cstr, error_code_and_message, error_message};
use super::relay::{Frame, FrameHook, Verdict};
use crate::guard::{Decision, Guardrails, is_parser_safe_encoding};

/// What a refused statement is replaced with: a syntax error on every
/// server, in every transaction state, with no side effect. It shows up in
/// the server's log as the trace of a refusal.
pub const MARKER_SQL: &str = "hoop_guardrail_refused_this_statement";

/// SQLSTATE the server answers [`MARKER_SQL`] with.
const MARKER_SQLSTATE: &str = "42601";

/// State the two directions share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Refusals waiting for their place in the server's answers:
    /// (index of the ReadyForQuery they precede, ErrorResponse to send).
    pending: Mutex<VecDeque<(u64, Bytes)>>,
    /// Fast path: `pending` is non-empty.
    has_pending: AtomicBool,
    /// The server reported a client encoding the parser cannot follow.
    unsafe_encoding: AtomicBool,
}

impl Shared {
    fn push(&self, at: u64, error: Bytes) {
        let mut q = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back((at, error));
        self.has_pending.store(true, Ordering::Release);
    }

    /// Notes a ParameterStatus body (`name\0value\0`).
    pub(crate) fn parameter_status(&self, body: &[u8]) {
        if let Some((name, rest)) = cstr(body)
            && name.eq_ignore_ascii_case(b"client_encoding")
        {
            let value = cstr(rest).map(|(v, _)| v).unwrap_or_default();
            let safe = is_parser_safe_encoding(&String::from_utf8_lossy(value));
            self.unsafe_encoding.store(!safe, Ordering::Release);
        }
    }
}

/// Client → server: judges `Query`, `Parse` and `FunctionCall`.
pub(crate) struct GuardStatements {
    guard: Arc<Guardrails>,
    shared: Arc<Shared>,
    /// ReadyForQuery messages the server owes for what was sent so far.
    sync_points: u64,
    /// The ErrorResponse for a refused `Parse` in the current batch, sent
    /// with the batch's `Sync`.
    batch_refusal: Option<Bytes>,
}

impl GuardStatements {
    pub(crate) fn new(guard: Arc<Guardrails>, shared: Arc<Shared>) -> Self {
        GuardStatements {
            guard,
            shared,
            sync_points: 0,
            batch_refusal: None,
        }
    }

    /// The refusal for `sql`, if any, as an ErrorResponse.
    fn judge(&self, sql: &[u8]) -> Option<Bytes> {
        if self.shared.unsafe_encoding.load(Ordering::Acquire) {
            let d = self.guard.unsafe_encoding("in force");
            return Some(refusal(d.sqlstate, &d.message));
        }
        let decision = match std::str::from_utf8(sql) {
            Ok(text) => self.guard.judge(text),
            Err(_) => Arc::new(self.guard.not_utf8()),
        };
        match &*decision {
            Decision::Allow => None,
            Decision::Deny(d) => {
                tracing::info!(
                    set = d.set.as_deref().unwrap_or("-"),
                    rule = %d.rule,
                    what = %d.what,
                    action = ?d.action,
                    "guardrail refused a statement"
                );
                Some(refusal(d.sqlstate, &d.message))
            }
        }
    }
}

fn refusal(code: &str, message: &str) -> Bytes {
    error_message(code, message, None).freeze()
}

impl FrameHook for GuardStatements {
    fn on_frame(&mut self, frame: Frame<'_>) -> Verdict {
        match frame.tag {
            b'Q' => {
                let sql = frame.body.strip_suffix(&[0]).unwrap_or(frame.body);
                super::relay::log_query(sql);
                let at = self.sync_points;
                self.sync_points += 1;
                match self.judge(sql) {
                    None => Verdict::Forward,
                    Some(error) => {
                        self.shared.push(at, error);
                        Verdict::Replace(marker_query())
                    }
                }
            }
            b'P' => {
                let Some((name, rest)) = cstr(frame.body) else {
                    // Malformed: the server will say so.
                    return Verdict::Forward;
                };
                let sql = cstr(rest).map(|(q, _)| q).unwrap_or(rest);
                match self.judge(sql) {
                    None => Verdict::Forward,
                    Some(error) => {
                        if self.batch_refusal.is_none() {
                            self.batch_refusal = Some(error);
                        }
                        Verdict::Replace(marker_parse(name))
                    }
                }
            }
            b'S' => {
                if let Some(error) = self.batch_refusal.take() {
                    self.shared.push(self.sync_points, error);
                }
                self.sync_points += 1;
                Verdict::Forward
            }
            b'F' => {
                let at = self.sync_points;
                self.sync_points += 1;
                self.shared.push(
                    at,
                    refusal(
                        "42501",
                        &format!(
                            "hoop: blocked: connection \"{}\" has guardrails, and fast-path \
                             function calls bypass them (use SELECT function(...))",
                            self.guard.connection()
                        ),
                    ),
                );
                Verdict::Replace(marker_query())
            }
            _ => Verdict::Forward,
        }
    }
}

/// Server → client: puts refusals in place, watches `client_encoding`.
pub(crate) struct PlaceRefusals {
    shared: Arc<Shared>,
    /// ReadyForQuery messages seen so far.
    ready_seen: u64,
}

impl PlaceRefusals {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PlaceRefusals {
            shared,
            ready_seen: 0,
        }
    }
}

impl FrameHook for PlaceRefusals {
    #[inline]
    fn on_frame(&mut self, frame: Frame<'_>) -> Verdict {
        match frame.tag {
            b'E' if self.shared.has_pending.load(Ordering::Acquire) => {
                let mut q = self
                    .shared
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if q.front().is_some_and(|(at, _)| *at == self.ready_seen)
                    && error_code_and_message(frame.body).0 == MARKER_SQLSTATE
                    && let Some((_, error)) = q.pop_front()
                {
                    self.shared
                        .has_pending
                        .store(!q.is_empty(), Ordering::Release);
                    return Verdict::Replace(error);
                }
                Verdict::Forward
            }
            b'Z' => {
                if self.shared.has_pending.load(Ordering::Acquire) {
                    let mut q = self
                        .shared
                        .pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    // A refusal whose marker the server skipped (an earlier
                    // error in the batch) is no longer owed.
                    while q.front().is_some_and(|(at, _)| *at <= self.ready_seen) {
                        q.pop_front();
                    }
                    self.shared
                        .has_pending
                        .store(!q.is_empty(), Ordering::Release);
                }
                self.ready_seen += 1;
                Verdict::Forward
            }
            b'S' => {
                self.shared.parameter_status(frame.body);
                Verdict::Forward
            }
            _ => Verdict::Forward,
        }
    }
}

fn marker_query() -> Bytes {
    let mut out = BytesMut::with_capacity(MARKER_SQL.len() + 6);
    out.put_u8(b'Q');
    out.put_u32(u32::try_from(MARKER_SQL.len() + 5).unwrap_or(u32::MAX));
    out.put_slice(MARKER_SQL.as_bytes());
    out.put_u8(0);
    out.freeze()
}

fn marker_parse(name: &[u8]) -> Bytes {
    // name, query, no parameter types.
    let body_len = name.len() + 1 + MARKER_SQL.len() + 1 + 2;
    let mut out = BytesMut::with_capacity(body_len + 5);
    out.put_u8(b'P');
    out.put_u32(u32::try_from(body_len + 4).unwrap_or(u32::MAX));
    out.put_slice(name);
    out.put_u8(0);
    out.put_slice(MARKER_SQL.as_bytes());
    out.put_u8(0);
    out.put_u16(0);
    out.freeze()
}

/// The hooks for one session: guarded when the connection has guardrails,
/// plain logging / pass-through otherwise (one branch per frame).
pub(crate) enum ClientHook {
    /// No guardrails: log simple queries at debug level.
    Plain(super::relay::LogQueries),
    /// Guardrails on.
    Guarded(GuardStatements),
}

impl FrameHook for ClientHook {
    #[inline]
    fn on_frame(&mut self, frame: Frame<'_>) -> Verdict {
        match self {
            ClientHook::Plain(h) => h.on_frame(frame),
            ClientHook::Guarded(h) => h.on_frame(frame),
        }
    }
}

/// Server-side counterpart of [`ClientHook`].
pub(crate) enum ServerHook {
    /// No guardrails.
    Plain(super::relay::PassThrough),
    /// Guardrails on.
    Guarded(PlaceRefusals),
}

impl FrameHook for ServerHook {
    #[inline]
    fn on_frame(&mut self, frame: Frame<'_>) -> Verdict {
        match self {
            ServerHook::Plain(h) => h.on_frame(frame),
            ServerHook::Guarded(h) => h.on_frame(frame),
        }
    }
}

/// The pair of hooks for a session on a connection with `guard` (if any);
/// `status_frames` are the ParameterStatus messages of the login.
pub(crate) fn hooks(
    guard: Option<Arc<Guardrails>>,
    status_frames: &[u8],
) -> (ClientHook, ServerHook) {
    match guard {
        None => (
            ClientHook::Plain(super::relay::LogQueries),
            ServerHook::Plain(super::relay::PassThrough),
        ),
        Some(guard) => {
            let shared = Arc::new(Shared::default());
            for_each_frame(status_frames, |tag, body| {
                if tag == b'S' {
                    shared.parameter_status(body);
                }
            });
            (
                ClientHook::Guarded(GuardStatements::new(guard, shared.clone())),
                ServerHook::Guarded(PlaceRefusals::new(shared)),
            )
        }
    }
}

/// Walks the complete tagged frames in `bytes`.
fn for_each_frame(mut bytes: &[u8], mut f: impl FnMut(u8, &[u8])) {
    while let (Some(&tag), Some(len)) = (bytes.first(), super::frame::tagged_len(bytes)) {
        let Ok(len) = usize::try_from(len) else {
            return;
        };
        let (Some(body), Some(rest)) = (bytes.get(5..len + 1), bytes.get(len + 1..)) else {
            return;
        };
        f(tag, body);
        bytes = rest;
    }
}

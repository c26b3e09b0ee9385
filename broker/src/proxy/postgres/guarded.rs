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
//! # Review and recording
//!
//! A statement a `review` rule matches is held: the hook answers the relay
//! with `Verdict::Wait` while [`crate::review::ReviewDesk`] uses an approval
//! for it (then it runs, once: a named statement so let through may be bound
//! once) or finds or makes the review request (then it is refused like a
//! blocked one, the ErrorResponse naming the request, with DETAIL
//! `hoop review request: ID` for tools and a HINT on how to follow it).
//!
//! With recording on, every statement — guarded or not, forwarded or refused
//! — gets [`SessionLog::begin`] with its text as received and the decision,
//! and the relay waits (`Verdict::Wait`) until the record is durable; a
//! record that is durable at once (a recorder that is done when called)
//! costs no extra round through the relay. Then the statement (or, for a
//! refusal, its marker, whose answer is the outcome) is forwarded with
//! [`SessionLog::forwarded`]. The outcome hook finishes one statement per
//! ReadyForQuery, so each `Query` and `FunctionCall` is paired with its own,
//! and in an extended-protocol batch (up to `Sync`) the first recorded
//! message — a `Parse`, or an `Execute` of a named statement, recorded with
//! the text of the `Parse` that made it (protocol `E`) — carries the batch's
//! outcome. A record that cannot be written refuses the statement (SQLSTATE
//! 58000, "audit trail unavailable"): no audit, no statement.
//!
//! The client's encoding matters to the parser (in SJIS, BIG5, GBK, UHC,
//! GB18030 and JOHAB a multi-byte character can end in `\` or `'`): the
//! server's ParameterStatus for `client_encoding` is watched, and while it
//! is one of those every statement is refused.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use bytes::Bytes;

use super::pipeline::{ClientStage, ServerStage};
use super::relay::{Pending, Verdict};
use super::state::{AnsweredState, SentState};
use super::wire::build::{error_message, error_message_with_detail};
use super::wire::{Bind, ClientFrame, ClientMessage, Named, ServerFrame, ServerMessage, Target};
use crate::guard::{Action, Decision, Denial, Guardrails, is_parser_safe_encoding};
use crate::record::{Durable, RecordError, SessionLog, StatementDecision, StatementId};
use crate::review::{ReviewAsk, ReviewDesk, ReviewError, ReviewOutcome};

/// What a refused statement is replaced with: a syntax error on every
/// server, in every transaction state, with no side effect. It shows up in
/// the server's log as the trace of a refusal.
pub const MARKER_SQL: &str = "hoop_guardrail_refused_this_statement";

/// SQLSTATE the server answers [`MARKER_SQL`] with.
const MARKER_SQLSTATE: &str = "42601";

/// SQLSTATE of a statement refused because its audit record could not be
/// written (system_error: the broker, not the statement, is at fault).
pub const SQLSTATE_AUDIT_UNAVAILABLE: &str = "58000";

/// Prefix of the DETAIL of a "held for review" error; the review request id
/// follows (`hoopctl exec --wait` reads it).
pub const REVIEW_DETAIL_PREFIX: &str = "hoop review request: ";

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

    /// Notes a ParameterStatus.
    pub(crate) fn parameter_status(&self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"client_encoding") {
            let safe = is_parser_safe_encoding(&String::from_utf8_lossy(value));
            self.unsafe_encoding.store(!safe, Ordering::Release);
        }
    }
}

/// What the session's reviews need: the desk and who is asking.
#[derive(Debug, Clone)]
pub(crate) struct ReviewContext {
    /// Stores, finds and uses reviews.
    pub desk: Arc<ReviewDesk>,
    /// Who sends this session's statements.
    pub requester: crate::review::Requester,
    /// The session.
    pub session_id: String,
    /// The connection.
    pub connection: String,
}

/// A value a [`Pending`] future leaves for the hook to pick up when the
/// relay shows the frame again.
type Slot<T> = Arc<Mutex<Option<T>>>;

fn take<T>(slot: &Slot<T>) -> Option<T> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// What the hook decided for the frame it is waiting on, and what it is
/// waiting for.
enum Step {
    /// Nothing in progress.
    Idle,
    /// A review is being made or used for the statement.
    Reviewing(Slot<Result<ReviewOutcome, ReviewError>>, Denial),
    /// The statement's record is being written; then `plan` applies.
    Recording(Slot<Result<StatementId, RecordError>>, Plan),
}

/// What happens to one statement frame once its record is durable.
struct Plan {
    /// For the record.
    decision: StatementDecision,
    /// `set/rule` for the record.
    rule: Option<String>,
    /// The ErrorResponse the client gets instead of the server's answer.
    refusal: Option<Bytes>,
    /// An approved review let it through: it may run once.
    single_use: bool,
}

impl Plan {
    fn allowed() -> Plan {
        Plan {
            decision: StatementDecision::Allowed,
            rule: None,
            refusal: None,
            single_use: false,
        }
    }

    fn blocked(rule: Option<String>, refusal: Bytes) -> Plan {
        Plan {
            decision: StatementDecision::Blocked,
            rule,
            refusal: Some(refusal),
            single_use: false,
        }
    }
}

/// A prepared statement the client made with `Parse` (for recording its
/// `Execute`s and for single use after a review).
#[derive(Debug)]
struct Prepared {
    sql: Arc<str>,
    decision: StatementDecision,
    rule: Option<String>,
    /// Let through by an approved review: one `Bind` allowed.
    single_use: bool,
    /// That one `Bind` happened.
    used: bool,
}

/// Client → server: judges `Query`, `Parse` and `FunctionCall` against the
/// guardrails (when the session has any), holds `review` statements, and
/// records every statement before it is forwarded (when recording is on).
pub(crate) struct GuardStatements {
    guard: Option<Arc<Guardrails>>,
    shared: Arc<Shared>,
    log: Option<Arc<SessionLog>>,
    reviews: Option<Arc<ReviewContext>>,
    /// The ErrorResponse for a refused message in the current batch, sent
    /// with the batch's `Sync`.
    batch_refusal: Option<Bytes>,
    /// A statement of the current batch was forwarded with its record: the
    /// batch's one outcome (at its ReadyForQuery) belongs to it.
    batch_forwarded: bool,
    /// The frame being waited on.
    step: Step,
    /// Prepared statements by name (`""` is the unnamed one), with the
    /// guard's decision on each (which portal runs which statement is the
    /// protocol state's, [`SentState::portal_statement`]).
    prepared: HashMap<Vec<u8>, Prepared>,
}

impl GuardStatements {
    pub(crate) fn new(
        guard: Option<Arc<Guardrails>>,
        shared: Arc<Shared>,
        log: Option<Arc<SessionLog>>,
        reviews: Option<Arc<ReviewContext>>,
    ) -> Self {
        GuardStatements {
            guard,
            shared,
            log,
            reviews,
            batch_refusal: None,
            batch_forwarded: false,
            step: Step::Idle,
            prepared: HashMap::new(),
        }
    }

    /// The guardrails' decision for `sql` (`None` without guardrails).
    fn judge(&self, sql: &[u8]) -> Option<Denial> {
        let guard = self.guard.as_ref()?;
        if self.shared.unsafe_encoding.load(Ordering::Acquire) {
            return Some(guard.unsafe_encoding("in force"));
        }
        let decision = match std::str::from_utf8(sql) {
            Ok(text) => guard.judge(text),
            Err(_) => Arc::new(guard.not_utf8()),
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
                Some(d.clone())
            }
        }
    }

    /// The plan for a statement the guardrails (if any) decided on, or a
    /// review to start.
    fn plan_for(&mut self, sql: &[u8]) -> Result<Plan, Verdict> {
        let Some(d) = self.judge(sql) else {
            return Ok(Plan::allowed());
        };
        let rule = Some(rule_name(&d));
        if d.action != Action::Review {
            return Ok(Plan::blocked(rule, refusal(d.sqlstate, &d.message)));
        }
        let Some(ctx) = self.reviews.clone() else {
            return Ok(Plan::blocked(
                rule,
                refusal(
                    d.sqlstate,
                    &format!(
                        "{} (query review is not available on this broker: the statement was \
                         refused)",
                        d.message
                    ),
                ),
            ));
        };
        let (rule_approvers, rule_approvals) = d.review.clone().unwrap_or_default();
        let ask = ReviewAsk {
            requester: ctx.requester.clone(),
            session_id: ctx.session_id.clone(),
            connection: ctx.connection.clone(),
            sql: String::from_utf8_lossy(sql).into_owned(),
            guardrail: rule_name(&d),
            rule_approvers,
            rule_approvals,
        };
        let slot: Slot<Result<ReviewOutcome, ReviewError>> = Arc::default();
        let out = slot.clone();
        let pending: Pending = Box::pin(async move {
            let outcome = ctx.desk.review(ask).await;
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        });
        self.step = Step::Reviewing(slot, d);
        Err(Verdict::Wait(pending))
    }

    /// The plan once the review step finished.
    fn plan_after_review(
        &self,
        outcome: Option<Result<ReviewOutcome, ReviewError>>,
        d: &Denial,
    ) -> Plan {
        let rule = Some(rule_name(d));
        match outcome {
            Some(Ok(ReviewOutcome::Run { request_id })) => Plan {
                decision: StatementDecision::ReviewApproved { request_id },
                rule,
                refusal: None,
                single_use: true,
            },
            Some(Ok(ReviewOutcome::Held {
                request_id,
                approvers,
                new,
            })) => {
                let connection = self
                    .reviews
                    .as_ref()
                    .map(|c| c.connection.as_str())
                    .unwrap_or_default();
                let error = held_for_review(d, &request_id, &approvers, new, connection);
                Plan {
                    decision: StatementDecision::HeldForReview { request_id },
                    rule,
                    refusal: Some(error),
                    single_use: false,
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "a statement could not be held for review");
                Plan::blocked(
                    rule,
                    refusal(
                        d.sqlstate,
                        &format!("{}, but the review could not be made: {e}", d.message),
                    ),
                )
            }
            None => Plan::blocked(
                rule,
                refusal(
                    d.sqlstate,
                    &format!("{}, but the review could not be made", d.message),
                ),
            ),
        }
    }

    /// Writes the record of `frame` under `plan` (waiting while it becomes
    /// durable), then applies the plan. `text` is the statement as recorded.
    fn record_then_apply(
        &mut self,
        frame: &ClientFrame<'_>,
        state: &SentState,
        plan: Plan,
        text: &[u8],
        protocol: char,
    ) -> Verdict {
        let Some(log) = &self.log else {
            return self.apply(frame, state, plan, None);
        };
        let mut durable: Durable = log.begin(
            &String::from_utf8_lossy(text),
            protocol,
            plan.decision.clone(),
            plan.rule.clone(),
        );
        // A recorder that is durable at once (or already was) costs no
        // round trip through the relay.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(result) = durable.as_mut().poll(&mut cx) {
            return self.apply(frame, state, plan, Some(result));
        }
        let slot: Slot<Result<StatementId, RecordError>> = Arc::default();
        let out = slot.clone();
        let pending: Pending = Box::pin(async move {
            let result = durable.await;
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        });
        self.step = Step::Recording(slot, plan);
        Verdict::Wait(pending)
    }

    /// Forwards or refuses `frame` as planned; `recorded` is the record's
    /// outcome (`None` when recording is off). A statement whose record
    /// failed is refused: no audit, no statement.
    fn apply(
        &mut self,
        frame: &ClientFrame<'_>,
        state: &SentState,
        mut plan: Plan,
        recorded: Option<Result<StatementId, RecordError>>,
    ) -> Verdict {
        let id = match recorded {
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                tracing::error!(error = %e, "statement refused: its audit record could not be written");
                plan.refusal = Some(refusal(
                    SQLSTATE_AUDIT_UNAVAILABLE,
                    "hoop: audit trail unavailable: the statement was not run because its audit \
                     record could not be written; try again, or tell the broker's operators",
                ));
                plan.single_use = false;
                None
            }
            None => None,
        };
        match frame.msg {
            ClientMessage::Query { .. } => {
                let at = state.batch();
                self.batch_forwarded = false;
                // A simple query replaces the unnamed statement (and portal:
                // the protocol state forgets that one).
                self.prepared.remove(&b""[..]);
                // The marker of a refusal is forwarded too: its answer is
                // this statement's outcome.
                self.forwarded(id);
                match plan.refusal {
                    None => Verdict::Forward,
                    Some(error) => {
                        self.shared.push(at, error);
                        Verdict::Replace(marker_query())
                    }
                }
            }
            ClientMessage::Parse(parse) => {
                let (name, sql) = (parse.name, parse.sql);
                self.forwarded(id);
                match plan.refusal {
                    None => {
                        self.prepared.insert(
                            name.to_vec(),
                            Prepared {
                                sql: Arc::from(String::from_utf8_lossy(sql).as_ref()),
                                decision: plan.decision,
                                rule: plan.rule,
                                single_use: plan.single_use,
                                used: false,
                            },
                        );
                        Verdict::Forward
                    }
                    Some(error) => {
                        self.prepared.remove(name);
                        if self.batch_refusal.is_none() {
                            self.batch_refusal = Some(error);
                        }
                        Verdict::Replace(marker_parse(name))
                    }
                }
            }
            ClientMessage::Execute { .. } => {
                self.forwarded(id);
                match plan.refusal {
                    None => Verdict::Forward,
                    Some(error) => {
                        if self.batch_refusal.is_none() {
                            self.batch_refusal = Some(error);
                        }
                        // A failing Parse makes the server skip to Sync.
                        Verdict::Replace(marker_parse(b""))
                    }
                }
            }
            ClientMessage::FunctionCall { .. } | ClientMessage::Malformed { tag: b'F', .. } => {
                let at = state.batch();
                self.batch_forwarded = false;
                self.forwarded(id);
                match plan.refusal {
                    None => Verdict::Forward,
                    Some(error) => {
                        self.shared.push(at, error);
                        Verdict::Replace(marker_query())
                    }
                }
            }
            _ => Verdict::Forward,
        }
    }

    /// Tells the log a recorded statement went to the server. One outcome
    /// comes per ReadyForQuery, so in an extended-protocol batch only the
    /// first recorded statement is paired with it (rows summed over the
    /// batch); later ones in the batch are recorded without an outcome.
    fn forwarded(&mut self, id: Option<StatementId>) {
        if let (Some(log), Some(id)) = (&self.log, id)
            && !self.batch_forwarded
        {
            log.forwarded(id);
            self.batch_forwarded = true;
        }
    }

    /// `Query`, `Parse`, `FunctionCall`: judge (or resume), record, decide.
    fn statement(&mut self, frame: &ClientFrame<'_>, state: &SentState) -> Verdict {
        let (text, protocol): (std::borrow::Cow<'_, [u8]>, char) = match frame.msg {
            ClientMessage::Query { sql } => (sql.into(), 'Q'),
            ClientMessage::Parse(parse) => (parse.sql.into(), 'P'),
            ClientMessage::FunctionCall { oid } => (fast_path_text(oid).into(), 'F'),
            // Too short for its OID: still a fast-path call, refused alike.
            ClientMessage::Malformed { tag: b'F', .. } => (fast_path_text(0).into(), 'F'),
            // Malformed: the server will say so.
            _ => return Verdict::Forward,
        };
        let plan = match std::mem::replace(&mut self.step, Step::Idle) {
            Step::Recording(slot, plan) => {
                let result = take(&slot)
                    .unwrap_or_else(|| Err(RecordError("the record was not confirmed".to_owned())));
                return self.apply(frame, state, plan, Some(result));
            }
            Step::Reviewing(slot, d) => self.plan_after_review(take(&slot), &d),
            Step::Idle => {
                if frame.tag == b'Q' {
                    super::relay::log_query(&text);
                }
                if protocol == 'F' {
                    self.fast_path_plan()
                } else {
                    match self.plan_for(&text) {
                        Ok(plan) => plan,
                        Err(wait) => return wait,
                    }
                }
            }
        };
        self.record_then_apply(frame, state, plan, &text, protocol)
    }

    /// Fast-path calls name a function by OID, past any SQL to inspect:
    /// with guardrails on they are refused.
    fn fast_path_plan(&self) -> Plan {
        match &self.guard {
            None => Plan::allowed(),
            Some(guard) => Plan::blocked(
                Some("fast-path-function-call".to_owned()),
                refusal(
                    "42501",
                    &format!(
                        "hoop: blocked: connection \"{}\" has guardrails, and fast-path \
                         function calls bypass them (use SELECT function(...))",
                        guard.connection()
                    ),
                ),
            ),
        }
    }

    /// `Bind`: remembers the portal's statement; a second `Bind` of a
    /// statement an approved review let through once is refused.
    fn bind(&mut self, bind: &Bind<'_>) -> Verdict {
        if let Some(p) = self.prepared.get_mut(bind.statement)
            && p.single_use
        {
            if p.used {
                let error = refusal(
                    "42501",
                    &format!(
                        "hoop: the approved review covered one run of this statement, and it \
                         ran; running it again needs a new review: {}",
                        p.sql
                    ),
                );
                if self.batch_refusal.is_none() {
                    self.batch_refusal = Some(error);
                }
                return Verdict::Replace(marker_parse(b""));
            }
            p.used = true;
        }
        Verdict::Forward
    }

    /// `Execute` of a portal bound from a named statement: recorded as a
    /// run of that statement (its text from the `Parse` seen).
    fn execute(&mut self, frame: &ClientFrame<'_>, portal: &[u8], state: &SentState) -> Verdict {
        if let Step::Recording(slot, plan) = std::mem::replace(&mut self.step, Step::Idle) {
            let result = take(&slot)
                .unwrap_or_else(|| Err(RecordError("the record was not confirmed".to_owned())));
            return self.apply(frame, state, plan, Some(result));
        }
        if self.log.is_none() {
            return Verdict::Forward;
        }
        let Some(statement) = state.portal_statement(portal).filter(|s| !s.is_empty()) else {
            return Verdict::Forward;
        };
        let Some(p) = self.prepared.get(statement) else {
            return Verdict::Forward;
        };
        let plan = Plan {
            decision: p.decision.clone(),
            rule: p.rule.clone(),
            refusal: None,
            single_use: false,
        };
        let sql = p.sql.clone();
        self.record_then_apply(frame, state, plan, sql.as_bytes(), 'E')
    }

    /// `Close` of a statement: forget it.
    fn close(&mut self, close: &Named<'_>) {
        if close.target == Target::Statement {
            self.prepared.remove(close.name);
        }
    }
}

/// The text a fast-path call is recorded with.
fn fast_path_text(oid: u32) -> Vec<u8> {
    // The OID as the protocol's Int32 (how it was always recorded).
    format!(
        "-- fast-path function call (function oid {})",
        oid.cast_signed()
    )
    .into_bytes()
}

/// `set/rule` of a denial (`unparsable`, `client-encoding` for the built-in checks).
fn rule_name(d: &Denial) -> String {
    match &d.set {
        Some(set) => format!("{set}/{}", d.rule),
        None => d.rule.clone(),
    }
}

fn refusal(code: &str, message: &str) -> Bytes {
    error_message(code, message, None).freeze()
}

/// The ErrorResponse of a statement held for review: the request id in the
/// message and (for tools) in DETAIL, and how to follow it in HINT.
fn held_for_review(d: &Denial, id: &str, approvers: &str, new: bool, connection: &str) -> Bytes {
    let message = format!(
        "{}: review request {id} ({}; approvers: {approvers})",
        d.message,
        if new { "created" } else { "still pending" },
    );
    let hint = format!(
        "follow it with `hoopctl requests show {id}`; once it is approved, run the same statement \
         again (it may run once), or let `hoopctl exec {connection} --wait -c SQL` wait for the \
         decision and run it"
    );
    error_message_with_detail(
        d.sqlstate,
        &message,
        &format!("{REVIEW_DETAIL_PREFIX}{id}"),
        Some(&hint),
    )
    .freeze()
}

impl ClientStage for GuardStatements {
    fn on_client(&mut self, frame: &ClientFrame<'_>, state: &SentState) -> Verdict {
        match frame.msg {
            ClientMessage::Query { .. }
            | ClientMessage::Parse(_)
            | ClientMessage::FunctionCall { .. }
            | ClientMessage::Malformed { tag: b'F', .. } => self.statement(frame, state),
            ClientMessage::Bind(bind) => self.bind(&bind),
            ClientMessage::Execute { portal, .. } => self.execute(frame, portal, state),
            ClientMessage::Close(close) => {
                self.close(&close);
                Verdict::Forward
            }
            ClientMessage::Sync => {
                if let Some(error) = self.batch_refusal.take() {
                    self.shared.push(state.batch(), error);
                }
                self.batch_forwarded = false;
                Verdict::Forward
            }
            _ => Verdict::Forward,
        }
    }
}

/// Server → client: puts refusals in place, watches `client_encoding`.
pub(crate) struct PlaceRefusals {
    shared: Arc<Shared>,
}

impl PlaceRefusals {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PlaceRefusals { shared }
    }
}

impl ServerStage for PlaceRefusals {
    #[inline]
    fn on_server(&mut self, frame: &ServerFrame<'_>, state: &AnsweredState) -> Verdict {
        match frame.msg {
            ServerMessage::ErrorResponse(fields)
                if self.shared.has_pending.load(Ordering::Acquire) =>
            {
                let mut q = self
                    .shared
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if q.front().is_some_and(|(at, _)| *at == state.batch())
                    && fields.get(b'C') == Some(MARKER_SQLSTATE.as_bytes())
                    && let Some((_, error)) = q.pop_front()
                {
                    self.shared
                        .has_pending
                        .store(!q.is_empty(), Ordering::Release);
                    return Verdict::Replace(error);
                }
                Verdict::Forward
            }
            ServerMessage::ReadyForQuery { .. } => {
                if self.shared.has_pending.load(Ordering::Acquire) {
                    let mut q = self
                        .shared
                        .pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    // A refusal whose marker the server skipped (an earlier
                    // error in the batch) is no longer owed.
                    while q.front().is_some_and(|(at, _)| *at <= state.batch()) {
                        q.pop_front();
                    }
                    self.shared
                        .has_pending
                        .store(!q.is_empty(), Ordering::Release);
                }
                Verdict::Forward
            }
            ServerMessage::ParameterStatus { name, value } => {
                self.shared.parameter_status(name, value);
                Verdict::Forward
            }
            _ => Verdict::Forward,
        }
    }
}

fn marker_query() -> Bytes {
    super::wire::build::query(MARKER_SQL.as_bytes())
}

fn marker_parse(name: &[u8]) -> Bytes {
    super::wire::build::parse(name, MARKER_SQL.as_bytes())
}

/// The hooks for one session: guarded when the session has guardrails or
/// its statements are recorded, plain logging / pass-through otherwise (one
/// branch per frame).
// One per session, matched on every frame: kept inline, not boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ClientHook {
    /// No guardrails, no recording: log simple queries at debug level
    /// (never parameter values, which travel in Bind).
    Plain,
    /// Guardrails and/or recording on.
    Guarded(GuardStatements),
}

impl ClientHook {
    /// Whether statements are judged or recorded (the protocol state must
    /// count batches for it).
    pub(crate) fn is_guarded(&self) -> bool {
        matches!(self, ClientHook::Guarded(_))
    }
}

impl ClientStage for ClientHook {
    #[inline]
    fn on_client(&mut self, frame: &ClientFrame<'_>, state: &SentState) -> Verdict {
        match self {
            ClientHook::Plain => {
                if let ClientMessage::Query { sql } = frame.msg {
                    super::relay::log_query(sql);
                }
                Verdict::Forward
            }
            ClientHook::Guarded(h) => h.on_client(frame, state),
        }
    }
}

/// Server-side counterpart of [`ClientHook`].
pub(crate) enum ServerHook {
    /// No guardrails, no recording.
    Plain,
    /// Refusals (guardrails, reviews, an unavailable audit trail) to place.
    Guarded(PlaceRefusals),
}

impl ServerStage for ServerHook {
    #[inline]
    fn on_server(&mut self, frame: &ServerFrame<'_>, state: &AnsweredState) -> Verdict {
        match self {
            ServerHook::Plain => Verdict::Forward,
            ServerHook::Guarded(h) => h.on_server(frame, state),
        }
    }
}

/// The pair of hooks for a session with guardrails `guard` (if any), its
/// statements recorded in `log` (if any) and `review` statements held with
/// `reviews` (if any); `status_frames` are the ParameterStatus messages of
/// the login.
pub(crate) fn hooks(
    guard: Option<Arc<Guardrails>>,
    log: Option<Arc<SessionLog>>,
    reviews: Option<Arc<ReviewContext>>,
    status_frames: &[u8],
) -> (ClientHook, ServerHook) {
    match (guard, log) {
        (None, None) => (ClientHook::Plain, ServerHook::Plain),
        (guard, log) => {
            let shared = Arc::new(Shared::default());
            for (tag, body) in super::wire::framing::frames(status_frames) {
                if let ServerMessage::ParameterStatus { name, value } =
                    ServerMessage::decode(tag, body)
                {
                    shared.parameter_status(name, value);
                }
            }
            (
                ClientHook::Guarded(GuardStatements::new(guard, shared.clone(), log, reviews)),
                ServerHook::Guarded(PlaceRefusals::new(shared)),
            )
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::proxy::postgres::pipeline::ClientPipeline;
    use crate::proxy::postgres::relay::FrameHook as _;
    use crate::proxy::postgres::state::tracker;
    use crate::proxy::postgres::wire::framing::frames;
    use crate::proxy::postgres::wire::{ErrorFields, Frame};
    use crate::record::{Recorder, StatementOutcome, StatementRecord};

    /// The hook as the relay runs it: behind the protocol state.
    type Guarded = ClientPipeline<GuardStatements>;

    fn pipeline(h: GuardStatements) -> Guarded {
        ClientPipeline::new(tracker(true, false).0, h)
    }

    fn error_code_and_message(body: &[u8]) -> (String, String) {
        ErrorFields::decode(body).code_and_message()
    }

    /// Keeps every record; durable at once, after a signal, or never.
    #[derive(Default)]
    struct Book {
        records: Mutex<Vec<StatementRecord>>,
        outcomes: Mutex<Vec<(StatementId, StatementOutcome)>>,
        fail: bool,
        slow: bool,
    }

    impl Recorder for Book {
        fn statement(&self, record: StatementRecord) -> Durable {
            let mut records = self.records.lock().unwrap();
            records.push(record);
            let id = records.len() as u64;
            let (fail, slow) = (self.fail, self.slow);
            Box::pin(async move {
                if slow {
                    tokio::task::yield_now().await;
                }
                if fail {
                    Err(RecordError("disk full".into()))
                } else {
                    Ok(id)
                }
            })
        }
        fn outcome(&self, id: StatementId, outcome: StatementOutcome) {
            self.outcomes.lock().unwrap().push((id, outcome));
        }
    }

    fn hook(book: &Arc<Book>) -> (Guarded, Arc<SessionLog>, Arc<Shared>) {
        let log = SessionLog::new(book.clone(), "s1", "alice", "pg");
        let shared = Arc::new(Shared::default());
        (
            pipeline(GuardStatements::new(
                None,
                shared.clone(),
                Some(log.clone()),
                None,
            )),
            log,
            shared,
        )
    }

    fn query(sql: &str) -> Vec<u8> {
        let mut b = sql.as_bytes().to_vec();
        b.push(0);
        b
    }

    /// Shows `body` as a `tag` frame until the hook decides, running what it waits on.
    async fn decide(h: &mut Guarded, tag: u8, body: &[u8]) -> Verdict {
        for _ in 0..4 {
            match h.on_frame(&Frame::decode(tag, body)) {
                Verdict::Wait(pending) => pending.await,
                other => return other,
            }
        }
        panic!("the hook kept waiting");
    }

    #[tokio::test]
    async fn every_statement_is_recorded_before_it_is_forwarded() {
        let book = Arc::new(Book {
            slow: true,
            ..Book::default()
        });
        let (mut h, log, _) = hook(&book);
        // A recorder that is not durable at once makes the relay wait.
        assert!(matches!(
            h.on_frame(&Frame::decode(b'Q', &query("select 1"))),
            Verdict::Wait(_)
        ));
        // Shown again (the relay drops nothing): decided after durability.
        h.guard.step = Step::Idle;
        book.records.lock().unwrap().clear();
        let v = decide(&mut h, b'Q', &query("select 1")).await;
        assert!(matches!(v, Verdict::Forward), "{v:?}");
        let records = book.records.lock().unwrap().clone();
        assert_eq!(records.len(), 1);
        assert_eq!(
            (records[0].sql.as_str(), records[0].protocol),
            ("select 1", 'Q')
        );
        assert_eq!(records[0].decision, StatementDecision::Allowed);
        log.finish(Some(1), None);
        assert_eq!(book.outcomes.lock().unwrap()[0].0, 1);
    }

    #[tokio::test]
    async fn a_statement_whose_record_fails_is_refused() {
        let book = Arc::new(Book {
            fail: true,
            ..Book::default()
        });
        let (mut h, _log, shared) = hook(&book);
        let v = decide(&mut h, b'Q', &query("select 1")).await;
        let Verdict::Replace(bytes) = v else {
            panic!("{v:?}")
        };
        assert!(
            bytes
                .windows(MARKER_SQL.len())
                .any(|w| w == MARKER_SQL.as_bytes())
        );
        let pending = shared.pending.lock().unwrap();
        let (at, error) = pending.front().unwrap();
        assert_eq!(*at, 0);
        let (code, message) = error_code_and_message(frames(error).next().unwrap().1);
        assert_eq!(code, SQLSTATE_AUDIT_UNAVAILABLE);
        assert!(message.contains("audit trail unavailable"), "{message}");
    }

    fn parse(name: &str, sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(name.as_bytes());
        b.push(0);
        b.extend_from_slice(sql.as_bytes());
        b.push(0);
        b.extend_from_slice(&[0, 0]);
        b
    }

    fn bind(portal: &str, statement: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(portal.as_bytes());
        b.push(0);
        b.extend_from_slice(statement.as_bytes());
        b.push(0);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        b
    }

    fn execute(portal: &str) -> Vec<u8> {
        let mut b = portal.as_bytes().to_vec();
        b.push(0);
        b.extend_from_slice(&[0, 0, 0, 0]);
        b
    }

    #[tokio::test]
    async fn executes_of_named_statements_are_recorded_with_the_parse_text() {
        let book = Arc::new(Book::default());
        let (mut h, log, _) = hook(&book);
        // Prepare (its own batch), then two runs, each its own batch.
        for (tag, body) in [
            (b'P', parse("q1", "select $1::int")),
            (b'S', Vec::new()),
            (b'B', bind("", "q1")),
            (b'E', execute("")),
            (b'S', Vec::new()),
            (b'B', bind("", "q1")),
            (b'E', execute("")),
            (b'S', Vec::new()),
        ] {
            assert!(matches!(decide(&mut h, tag, &body).await, Verdict::Forward));
        }
        let records = book.records.lock().unwrap().clone();
        let seen: Vec<_> = records
            .iter()
            .map(|r| (r.sql.as_str(), r.protocol))
            .collect();
        assert_eq!(
            seen,
            [
                ("select $1::int", 'P'),
                ("select $1::int", 'E'),
                ("select $1::int", 'E')
            ]
        );
        // One outcome per ReadyForQuery: three batches, three statements in flight.
        for _ in 0..3 {
            log.finish(None, None);
        }
        let ids: Vec<_> = book.outcomes.lock().unwrap().iter().map(|o| o.0).collect();
        assert_eq!(ids, [1, 2, 3]);

        // Parse + Bind + Execute in ONE batch: both recorded, one outcome.
        for (tag, body) in [
            (b'P', parse("q2", "select 2")),
            (b'B', bind("", "q2")),
            (b'E', execute("")),
            (b'S', Vec::new()),
        ] {
            assert!(matches!(decide(&mut h, tag, &body).await, Verdict::Forward));
        }
        assert_eq!(book.records.lock().unwrap().len(), 5);
        log.finish(None, None);
        log.finish(None, None);
        let ids: Vec<_> = book.outcomes.lock().unwrap().iter().map(|o| o.0).collect();
        assert_eq!(
            ids,
            [1, 2, 3, 4],
            "the batch's first record carries its outcome"
        );
    }

    #[tokio::test]
    async fn guardrail_refusals_are_recorded_as_blocked_with_their_rule() {
        let book = Arc::new(Book::default());
        let log = SessionLog::new(book.clone(), "s1", "alice", "pg");
        let reg = crate::guard::Registry::builtin();
        let sets = reg.resolve(&["no-destructive".to_owned()]).unwrap();
        let guard = Arc::new(Guardrails::new(
            "pg",
            &sets,
            crate::config::UnparsableAction::Block,
        ));
        let shared = Arc::new(Shared::default());
        let mut h = pipeline(GuardStatements::new(Some(guard), shared, Some(log), None));
        let v = decide(&mut h, b'Q', &query("drop table orders")).await;
        assert!(matches!(v, Verdict::Replace(_)), "{v:?}");
        let records = book.records.lock().unwrap().clone();
        assert_eq!(records[0].decision, StatementDecision::Blocked);
        assert_eq!(records[0].rule.as_deref(), Some("no-destructive/drop"));
        assert_eq!(records[0].sql, "drop table orders");
    }

    #[tokio::test]
    async fn a_statement_an_approved_review_let_through_is_bound_once() {
        let book = Arc::new(Book::default());
        let (mut h, _log, _) = hook(&book);
        let body = parse("del", "DELETE FROM orders WHERE id = $1");
        let plan = Plan {
            decision: StatementDecision::ReviewApproved {
                request_id: "r1".into(),
            },
            rule: Some("orders-review/orders-writes".into()),
            refusal: None,
            single_use: true,
        };
        let v = h
            .guard
            .apply(&Frame::decode(b'P', &body), &h.state, plan, Some(Ok(1)));
        assert!(matches!(v, Verdict::Forward));
        assert!(matches!(
            decide(&mut h, b'B', &bind("", "del")).await,
            Verdict::Forward
        ));
        assert!(matches!(
            decide(&mut h, b'E', &execute("")).await,
            Verdict::Forward
        ));
        assert!(matches!(decide(&mut h, b'S', &[]).await, Verdict::Forward));
        // The second run of the same prepared statement is refused at Bind.
        let v = decide(&mut h, b'B', &bind("", "del")).await;
        let Verdict::Replace(bytes) = v else {
            panic!("{v:?}")
        };
        assert!(
            bytes
                .windows(MARKER_SQL.len())
                .any(|w| w == MARKER_SQL.as_bytes())
        );
        let error = h.guard.batch_refusal.clone().unwrap();
        let (_, message) = error_code_and_message(frames(&error).next().unwrap().1);
        assert!(message.contains("needs a new review"), "{message}");
    }

    #[test]
    fn without_recording_or_guardrails_the_hooks_are_plain() {
        let (c, s) = hooks(None, None, None, b"");
        assert!(matches!(c, ClientHook::Plain));
        assert!(matches!(s, ServerHook::Plain));
        let log = SessionLog::new(Arc::new(Book::default()), "s", "u", "c");
        let (c, s) = hooks(None, Some(log), None, b"");
        assert!(matches!(c, ClientHook::Guarded(_)));
        assert!(matches!(s, ServerHook::Guarded(_)));
    }
}

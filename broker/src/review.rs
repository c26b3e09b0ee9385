//! Query review: a statement a guardrail `review` rule holds becomes a
//! review request that people approve like an access request; once approved,
//! that exact statement may run once, by the requester, on the connection it
//! came from, within the review's run window.
//!
//! A review is a row of the access-request table with `kind = "statement"`
//! (store migration 4), so it goes through the same machinery: approvers and
//! N-of-M counting, self-approval refused, decision deadline
//! (`request_ttl`), webhooks, `hoopctl approve`, the audit trail. This module
//! is the data path's side ([`ReviewDesk::review`]), called from the
//! Postgres relay's client→server hook (`proxy/postgres/guarded.rs`) while
//! the relay waits (`Verdict::Wait`):
//!
//! 1. an approved, unused review for the same statement key, requester and
//!    connection whose run window is open → it is marked used (atomically:
//!    of two runs racing for it one wins) and the statement runs;
//! 2. else a pending review for the same → the client is told its id again
//!    (re-running while waiting does not ask twice);
//! 3. else a new review request is made, announced to webhooks, and the
//!    client gets its id.
//!
//! What "the same statement" means ([`statement_key`]): PostgreSQL's
//! fingerprint (`pg_query::fingerprint`, which ignores constants) joined with
//! a digest of the statement deparsed from its parse tree (whitespace,
//! comments and keyword case gone, constants kept). So an approval of
//! `DELETE FROM orders WHERE id = 1` covers `delete from orders where id=1
//! -- again` but never `... WHERE id = 2`.
//!
//! Who approves (documented in `docs/guardrails.md`): the review rule's own
//! `approvers` when it names some; else those of the policy rule that grants
//! the requester the connection when it is an `access = "approval"` rule;
//! else the policy admins. Nobody at all → the statement is refused.

use std::sync::Arc;
use std::time::Duration;

use hoop_shared::api::RequestState;
use hoop_shared::policy::{Approvers, Outcome, Subject};
use sha2::{Digest as _, Sha256};

use crate::guard::ReviewApprovers;
use crate::notify::{Notifier, NotifyEvent};
use crate::policy::PolicyHolder;
use crate::store::{self, Event, RequestKind, RequestRow, Store, StoreError};

/// How long an approved statement may wait for its one run.
pub const REVIEW_RUN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Longest statement that can be held for review (longer ones are refused:
/// nobody reviews a megabyte of SQL).
pub const MAX_REVIEWED_SQL: usize = 64 * 1024;
/// Bound on the store work of one review step (the relay waits for it).
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a statement could not be put up for review.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The store failed.
    #[error("the review could not be stored: {0}")]
    Store(#[from] StoreError),
    /// Neither the rule, the granting policy rule nor the policy names anyone.
    #[error(
        "nobody may approve it: the review rule names no approvers, the policy rule granting \
         the connection is not an approval rule, and the policy has no admins"
    )]
    NoApprovers,
    /// The statement is longer than [`MAX_REVIEWED_SQL`].
    #[error("statements longer than {} KiB cannot be reviewed", MAX_REVIEWED_SQL / 1024)]
    TooLong,
    /// The store did not answer within [`REVIEW_TIMEOUT`].
    #[error("the review store did not answer within {}s", REVIEW_TIMEOUT.as_secs())]
    Timeout,
}

/// Who sent the statement (from the session's token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// Token subject (reviews are matched on it; self-approval is refused by it).
    pub subject: String,
    /// User name.
    pub user: String,
    /// Groups (for deciding who approves).
    pub groups: Vec<String>,
    /// A workload identity.
    pub workload: bool,
}

impl Requester {
    /// The requester behind an authenticated identity.
    pub fn of(who: &crate::auth::Identity) -> Requester {
        Requester {
            subject: who.subject.clone(),
            user: who.user.clone(),
            groups: who.groups.clone(),
            workload: who.kind == hoop_shared::api::IdentityKind::Workload,
        }
    }
}

/// One held statement.
#[derive(Debug, Clone)]
pub struct ReviewAsk {
    /// Who sent it.
    pub requester: Requester,
    /// The session it arrived in.
    pub session_id: String,
    /// The connection.
    pub connection: String,
    /// The statement text as received.
    pub sql: String,
    /// `set/rule` of the review rule.
    pub guardrail: String,
    /// The rule's own approvers, if it names any.
    pub rule_approvers: Option<ReviewApprovers>,
    /// The rule's approval count, if given.
    pub rule_approvals: Option<u32>,
}

/// What happens to the held statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// An approved review covers it: run it (the approval is now used).
    Run {
        /// The review request.
        request_id: String,
    },
    /// It waits for a decision on this review request.
    Held {
        /// The review request.
        request_id: String,
        /// "group sre; 1 approval needed".
        approvers: String,
        /// True when this statement made the request (false: it was waiting already).
        new: bool,
    },
}

/// The review side of the broker: store, webhooks, policy. Cheap to clone.
#[derive(Clone)]
pub struct ReviewDesk {
    store: Store,
    notifier: Notifier,
    policy: Arc<PolicyHolder>,
    request_ttl: Duration,
    run_window: Duration,
}

impl std::fmt::Debug for ReviewDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewDesk")
            .field("request_ttl", &self.request_ttl)
            .field("run_window", &self.run_window)
            .finish_non_exhaustive()
    }
}

impl ReviewDesk {
    /// A desk storing reviews in `store`, announcing them with `notifier`;
    /// a review waits `request_ttl` for its decision.
    pub fn new(
        store: Store,
        notifier: Notifier,
        policy: Arc<PolicyHolder>,
        request_ttl: Duration,
    ) -> ReviewDesk {
        ReviewDesk {
            store,
            notifier,
            policy,
            request_ttl,
            run_window: REVIEW_RUN_WINDOW,
        }
    }

    /// Uses an approval for `ask`, or finds or makes the review it waits for.
    pub async fn review(&self, ask: ReviewAsk) -> Result<ReviewOutcome, ReviewError> {
        tokio::time::timeout(REVIEW_TIMEOUT, self.review_untimed(ask))
            .await
            .unwrap_or(Err(ReviewError::Timeout))
    }

    async fn review_untimed(&self, ask: ReviewAsk) -> Result<ReviewOutcome, ReviewError> {
        if ask.sql.len() > MAX_REVIEWED_SQL {
            return Err(ReviewError::TooLong);
        }
        let key = statement_key(&ask.sql);
        let now = crate::app::now_unix();
        let who = &ask.requester;
        if let Some(row) = self
            .store
            .consume_review(&who.subject, &ask.connection, &key, now)
            .await?
        {
            self.event(
                "review.run",
                &ask,
                format!(
                    "review {}: the approved statement runs (its one use)",
                    row.id
                ),
            )
            .await;
            tracing::info!(review = %row.id, user = %who.user, "approved statement runs");
            return Ok(ReviewOutcome::Run { request_id: row.id });
        }
        if let Some(row) = self
            .store
            .pending_review(&who.subject, &ask.connection, &key, now)
            .await?
        {
            return Ok(ReviewOutcome::Held {
                approvers: approvers_line(&row),
                request_id: row.id,
                new: false,
            });
        }
        let (approvers, approvals) = self.approvers(&ask).ok_or(ReviewError::NoApprovers)?;
        let row = RequestRow {
            id: uuid::Uuid::new_v4().to_string(),
            subject: who.subject.clone(),
            user_name: who.user.clone(),
            connection: ask.connection.clone(),
            // What webhooks and lists show as the "why": the statement.
            reason: Some(format!("run once: {}", shorten(&ask.sql, 300))),
            duration_secs: self.run_window.as_secs(),
            rule: ask.guardrail.clone(),
            approvals_needed: approvals,
            approvers_json: serde_json::to_string(&approvers).unwrap_or_default(),
            state: store::RequestState::Pending,
            created_at: now,
            expires_at: now + self.request_ttl.as_secs(),
            decided_at: None,
            grant_ends_at: None,
            approvals: Vec::new(),
            kind: RequestKind::Statement,
            statement: Some(ask.sql.clone()),
            fingerprint: Some(key),
            session_id: Some(ask.session_id.clone()),
            consumed_at: None,
        };
        self.store.insert_request(row.clone()).await?;
        self.event(
            "review.create",
            &ask,
            format!(
                "review {}: guardrail {}; {} ({} approval(s)); statement: {}",
                row.id,
                ask.guardrail,
                approvers.describe(),
                approvals,
                ask.sql
            ),
        )
        .await;
        tracing::info!(review = %row.id, user = %who.user, connection = %ask.connection,
            guardrail = %ask.guardrail, "statement held for review");
        let view = crate::api::request_view(&row, now);
        debug_assert_eq!(view.state, RequestState::Pending);
        self.notifier.send(NotifyEvent::Created, &view);
        Ok(ReviewOutcome::Held {
            approvers: approvers_line(&row),
            request_id: row.id,
            new: true,
        })
    }

    /// Who decides on `ask` (see the module docs), with the count needed.
    fn approvers(&self, ask: &ReviewAsk) -> Option<(Approvers, u32)> {
        let needed = ask.rule_approvals.unwrap_or(1).max(1);
        if let Some(a) = &ask.rule_approvers {
            return Some((a.to_policy(), needed));
        }
        let active = self.policy.current();
        let subject = Subject {
            user: ask.requester.user.clone(),
            groups: ask.requester.groups.clone(),
            workload: ask.requester.workload,
        };
        let decision = active
            .policy
            .evaluate(&subject, &ask.connection, jiff::Timestamp::now());
        if let Outcome::Approval {
            approvers,
            approvals,
            ..
        } = decision.outcome
        {
            return Some((approvers, ask.rule_approvals.unwrap_or(approvals).max(1)));
        }
        (!active.policy.admins.is_empty()).then(|| {
            (
                Approvers {
                    groups: active.policy.admins.clone(),
                    users: Vec::new(),
                },
                needed,
            )
        })
    }

    async fn event(&self, kind: &str, ask: &ReviewAsk, detail: String) {
        let event = Event {
            at: crate::app::now_unix(),
            kind: kind.into(),
            user_name: Some(ask.requester.user.clone()),
            connection: Some(ask.connection.clone()),
            session_id: Some(ask.session_id.clone()),
            detail,
        };
        if let Err(e) = self.store.append_event(event).await {
            tracing::error!(%kind, "could not write audit event: {e}");
        }
    }
}

/// `text` cut to about `max` bytes (at a character boundary), with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", text.get(..end).unwrap_or_default())
}

fn approvers_line(row: &RequestRow) -> String {
    let who = crate::api::requests::approvers_of(row).describe();
    let n = row.approvals_needed;
    format!(
        "{who}; {n} approval{} needed",
        if n == 1 { "" } else { "s" }
    )
}

/// What an approval covers: `FINGERPRINT:DIGEST`, where FINGERPRINT is
/// PostgreSQL's (constants ignored) and DIGEST the first 16 hex digits of
/// SHA-256 over the statement deparsed from its parse tree (constants
/// kept, layout and comments gone). Text the parser cannot read is keyed by
/// its exact bytes.
pub fn statement_key(sql: &str) -> String {
    // The parser is C behind a safe API; a panic must not take the relay down.
    let parsed = std::panic::catch_unwind(|| {
        let fp = pg_query::fingerprint(
            sql,
            pg_query::ParserOptions::DEFAULT,
            pg_query::FingerprintOptions::FULL_RELNAME,
        )
        .ok()?;
        let canonical = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT)
            .ok()?
            .deparse(pg_query::DeparseOptions::default())
            .ok()?;
        Some((fp.hex, canonical))
    })
    .ok()
    .flatten();
    match parsed {
        Some((fp, canonical)) => format!("{fp}:{}", short_digest(canonical.as_bytes())),
        None => format!("raw:{}", short_digest(sql.as_bytes())),
    }
}

fn short_digest(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    hex::encode(d.get(..8).unwrap_or_default())
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_key_ignores_layout_but_not_values() {
        let k = statement_key("DELETE FROM orders WHERE id = 1");
        assert_eq!(
            k,
            statement_key("delete   from orders\n where id=1 -- once more")
        );
        assert_eq!(k, statement_key("/* c */ DELETE FROM orders WHERE id = 1;"));
        assert_ne!(k, statement_key("DELETE FROM orders WHERE id = 2"));
        assert_ne!(k, statement_key("DELETE FROM orders WHERE id = '1'"));
        assert_ne!(k, statement_key("DELETE FROM customers WHERE id = 1"));
        assert_ne!(
            k,
            statement_key("DELETE FROM orders WHERE id = 1; SELECT 1")
        );
        assert!(statement_key("DELETE FROM").starts_with("raw:"));
    }
}

//! Access requests and grants, the domain rules: the state a reader sees
//! (a pending request past its deadline, or a grant past its end, reads as
//! expired), who may decide, and the view every front end and webhook shows.
//! The HTTP endpoints are in `crate::api` (`api/requests.rs`); the approvers'
//! page in `crate::web`; statement reviews in [`crate::review`].

use hoop_shared::api::{AccessRequestView, ApprovalView, RequestState, StatementReview};
use hoop_shared::policy::Approvers;

use crate::auth::Identity;
use crate::policy::subject;
use crate::store::{self, RequestRow};

/// The approvers stored with a request.
pub fn approvers_of(row: &RequestRow) -> Approvers {
    serde_json::from_str(&row.approvers_json).unwrap_or_default()
}

/// The state a reader sees: pending past its deadline, or approved past its
/// grant, reads as expired.
pub fn effective_state(row: &RequestRow, now: u64) -> RequestState {
    match row.state {
        store::RequestState::Pending if now >= row.expires_at => RequestState::Expired,
        store::RequestState::Approved if row.grant_ends_at.is_some_and(|end| now >= end) => {
            RequestState::Expired
        }
        stored => stored.into(),
    }
}

/// The API view of a stored request.
pub fn view(row: &RequestRow, now: u64) -> AccessRequestView {
    AccessRequestView {
        id: row.id.clone(),
        requester: row.user_name.clone(),
        connection: row.connection.clone(),
        reason: row.reason.clone(),
        duration_secs: row.duration_secs,
        state: effective_state(row, now),
        rule: row.rule.clone(),
        approvers: approvers_of(row),
        approvals_needed: row.approvals_needed,
        approvals: row
            .approvals
            .iter()
            .map(|(approver, decision, comment, at)| ApprovalView {
                approver: approver.clone(),
                decision: decision.to_string(),
                comment: comment.clone(),
                at: *at,
            })
            .collect(),
        created_at: row.created_at,
        expires_at: row.expires_at,
        grant_ends_at: row.grant_ends_at,
        kind: row.kind.into(),
        statement: (row.kind == store::RequestKind::Statement).then(|| StatementReview {
            sql: row.statement.clone().unwrap_or_default(),
            fingerprint: row.fingerprint.clone().unwrap_or_default(),
            guardrail: row.rule.clone(),
            session_id: row.session_id.clone(),
            used_at: row.consumed_at,
        }),
    }
}

/// True when `who` may decide on (or revoke) `row`.
pub fn may_decide(who: &Identity, row: &RequestRow) -> bool {
    approvers_of(row).includes(&subject(who))
}

//! Access requests and approvals: just-in-time access.
//!
//! When the policy says `approval`, a person asks with a reason and a
//! duration (capped by the rule), approvers named by the rule decide, and the
//! approval that completes the count turns the request into a grant until
//! `grant_ends_at`; sessions opened under it end then. Self-approval is
//! refused, each approver counts once, decided, cancelled and expired
//! requests refuse further decisions, and concurrent approvals cannot grant
//! twice (the store serializes decisions). Every step is an audit event.
//!
//! Statement reviews (`kind = "statement"`, made by [`crate::review`] when a
//! guardrail `review` rule holds a statement) are rows of the same table and
//! go through exactly these endpoints: listed, shown, approved, denied,
//! cancelled and announced like access requests.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hoop_shared::api::{
    AccessRequestList, AccessRequestView, ApprovalView, CreateAccessRequest, DecisionRequest,
    ErrorCode, RequestState, StatementReview,
};
use hoop_shared::policy::{Approvers, Outcome};

use super::{ApiFailure, ApiJson, Caller};
use crate::app::{AppState, now_unix};
use crate::auth::Identity;
use crate::notify::NotifyEvent;
use crate::policy::subject;
use crate::store::{self, DecideError, Decision, Event, RequestRow};

/// Longest justification or comment accepted.
const MAX_TEXT_LEN: usize = 1000;
/// Most requests listed at once.
pub(crate) const LIST_LIMIT: usize = 200;

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

/// Trims `text`; `None` when empty; refused when longer than the limit.
pub(crate) fn clean_text(text: Option<String>, what: &str) -> Result<Option<String>, ApiFailure> {
    let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if text.as_ref().is_some_and(|t| t.len() > MAX_TEXT_LEN) {
        return Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("the {what} is longer than {MAX_TEXT_LEN} characters"),
        ));
    }
    Ok(text)
}

/// The optional JSON body of approve/deny/revoke (empty means no comment).
fn decision_body(body: &[u8]) -> Result<DecisionRequest, ApiFailure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecisionRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("the body is not a decision ({{\"comment\": \"...\"}}): {e}"),
        )
    })
}

fn unknown(id: &str) -> ApiFailure {
    ApiFailure::new(
        StatusCode::NOT_FOUND,
        ErrorCode::UnknownRequest,
        format!("no access request {id} that you may see"),
    )
    .hint("`hoopctl requests` lists yours; `hoopctl approve list` those you may decide")
}

fn closed(id: &str, state: RequestState) -> ApiFailure {
    ApiFailure::new(
        StatusCode::CONFLICT,
        ErrorCode::RequestClosed,
        format!("access request {id} is {state}; it can no longer be decided"),
    )
}

async fn audit(state: &AppState, kind: &str, who: &Identity, row: &RequestRow, detail: String) {
    state
        .audit(Event {
            at: now_unix(),
            kind: kind.into(),
            user_name: Some(who.user.clone()),
            connection: Some(row.connection.clone()),
            session_id: None,
            detail: format!("request {}: {detail}", row.id),
        })
        .await;
}

/// `POST /v1/requests`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    ApiJson(req): ApiJson<CreateAccessRequest>,
) -> Result<(StatusCode, Json<AccessRequestView>), ApiFailure> {
    let reason = clean_text(req.reason, "reason")?;
    if state.config.connection(&req.connection).is_none() {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownConnection,
            format!("no connection named {:?}", req.connection),
        )
        .hint("run `hoopctl connections` to list them"));
    }
    let decision = state.policy.decide(&who, &req.connection);
    let rule = decision.rule.clone().unwrap_or_default();
    let Outcome::Approval {
        justification,
        approvers,
        approvals,
        default_duration_secs,
        max_duration_secs,
        ..
    } = decision.outcome
    else {
        let (status, code, message) = match decision.outcome {
            Outcome::Deny => (
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                format!(
                    "{} is not allowed to use {}: {}",
                    who.user, req.connection, decision.explanation
                ),
            ),
            _ => (
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                format!(
                    "{} needs no approval for {} ({}); open a session directly",
                    who.user, req.connection, decision.explanation
                ),
            ),
        };
        return Err(ApiFailure::new(status, code, message));
    };
    if justification && reason.is_none() {
        return Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::JustificationRequired,
            format!("{} requires a justification (rule {rule})", req.connection),
        )
        .hint("say why with --reason TEXT"));
    }
    let duration = req.duration_secs.unwrap_or(default_duration_secs);
    if duration == 0 || duration > max_duration_secs {
        return Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!(
                "a grant of {} is not possible on {}: rule {rule} allows at most {}",
                humantime::format_duration(std::time::Duration::from_secs(duration)),
                req.connection,
                humantime::format_duration(std::time::Duration::from_secs(max_duration_secs)),
            ),
        )
        .hint("ask for a shorter --duration"));
    }
    let now = now_unix();
    let ttl = state
        .config
        .request_ttl
        .unwrap_or(crate::config::DEFAULT_REQUEST_TTL)
        .as_secs();
    let row = RequestRow {
        id: uuid::Uuid::new_v4().to_string(),
        subject: who.subject.clone(),
        user_name: who.user.clone(),
        connection: req.connection.clone(),
        reason: reason.clone(),
        duration_secs: duration,
        rule: rule.clone(),
        approvals_needed: approvals,
        approvers_json: serde_json::to_string(&approvers).unwrap_or_default(),
        state: store::RequestState::Pending,
        created_at: now,
        expires_at: now + ttl,
        decided_at: None,
        grant_ends_at: None,
        approvals: Vec::new(),
        kind: store::RequestKind::Access,
        statement: None,
        fingerprint: None,
        session_id: None,
        consumed_at: None,
    };
    state
        .store
        .insert_request(row.clone())
        .await
        .map_err(|e| ApiFailure::internal("store the access request", &e))?;
    audit(
        &state,
        "request.create",
        &who,
        &row,
        format!(
            "rule {rule}; {} for {}s; reason: {}",
            approvers.describe(),
            duration,
            reason.as_deref().unwrap_or("-")
        ),
    )
    .await;
    tracing::info!(request = %row.id, user = %who.user, connection = %row.connection, "access requested");
    let shown = view(&row, now);
    state.notifier.send(NotifyEvent::Created, &shown);
    Ok((StatusCode::CREATED, Json(shown)))
}

/// `GET /v1/requests`: the caller's requests.
pub async fn mine(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
) -> Result<Json<AccessRequestList>, ApiFailure> {
    let rows = state
        .store
        .requests_of(&who.subject, LIST_LIMIT)
        .await
        .map_err(|e| ApiFailure::internal("list access requests", &e))?;
    let now = now_unix();
    Ok(Json(AccessRequestList {
        requests: rows.iter().map(|r| view(r, now)).collect(),
    }))
}

/// True when `who` may decide on (or revoke) `row`.
fn may_decide(who: &Identity, row: &RequestRow) -> bool {
    approvers_of(row).includes(&subject(who))
}

/// `GET /v1/requests/{id}`: yours, or one you may decide.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<AccessRequestView>, ApiFailure> {
    let row = load(&state, &id).await?;
    let admin = state.policy.current().policy.is_admin(&subject(&who));
    if row.subject != who.subject && !may_decide(&who, &row) && !admin {
        return Err(unknown(&id));
    }
    Ok(Json(view(&row, now_unix())))
}

async fn load(state: &AppState, id: &str) -> Result<RequestRow, ApiFailure> {
    state
        .store
        .request(id)
        .await
        .map_err(|e| ApiFailure::internal("look up the access request", &e))?
        .ok_or_else(|| unknown(id))
}

/// `GET /v1/approvals`: pending requests the caller may decide.
pub async fn approvals(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
) -> Result<Json<AccessRequestList>, ApiFailure> {
    Ok(Json(AccessRequestList {
        requests: decidable_by(&state, &who).await?,
    }))
}

/// Pending requests `who` may still decide: someone else's, naming `who` as
/// an approver, not yet decided by `who` (the API list and the web page).
pub(crate) async fn decidable_by(
    state: &AppState,
    who: &Identity,
) -> Result<Vec<AccessRequestView>, ApiFailure> {
    let rows = state
        .store
        .pending_requests(LIST_LIMIT)
        .await
        .map_err(|e| ApiFailure::internal("list access requests", &e))?;
    let now = now_unix();
    Ok(rows
        .iter()
        .filter(|r| r.subject != who.subject && may_decide(who, r))
        .filter(|r| !r.approvals.iter().any(|(a, ..)| a == &who.user))
        .map(|r| view(r, now))
        .filter(|v| v.state == RequestState::Pending)
        .collect())
}

/// Records `who`'s `decision` (`approve` or `deny`) on request `id`: the one
/// path for the API and the web page (checks, store, audit).
pub(crate) async fn decide(
    state: Arc<AppState>,
    who: Identity,
    id: String,
    decision: Decision,
    comment: Option<String>,
) -> Result<Json<AccessRequestView>, ApiFailure> {
    let row = load(&state, &id).await?;
    if row.subject == who.subject {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::SelfApproval,
            format!("{} cannot {decision} their own access request", who.user),
        )
        .hint(format!("ask {} to decide", approvers_of(&row).describe())));
    }
    if !may_decide(&who, &row) {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!(
                "{} may not decide on this request: it needs {}",
                who.user,
                approvers_of(&row).describe()
            ),
        ));
    }
    let now = now_unix();
    let updated = state
        .store
        .decide(&id, &who.user, decision, comment.clone(), now)
        .await
        .map_err(|e| ApiFailure::internal("record the decision", &e))?;
    let row = match updated {
        Ok(row) => row,
        Err(DecideError::Unknown) => return Err(unknown(&id)),
        Err(DecideError::Closed(state_now)) => return Err(closed(&id, state_now)),
        Err(DecideError::AlreadyDecided) => {
            return Err(ApiFailure::new(
                StatusCode::CONFLICT,
                ErrorCode::RequestClosed,
                format!("{} has already decided on access request {id}", who.user),
            ));
        }
    };
    let kind = if decision == Decision::Deny {
        "request.deny"
    } else if row.state == store::RequestState::Approved {
        "request.approve.granted"
    } else {
        "request.approve"
    };
    audit(
        &state,
        kind,
        &who,
        &row,
        format!(
            "{decision} by {}: {}; {} of {} approvals",
            who.user,
            comment.as_deref().unwrap_or("-"),
            row.approvals
                .iter()
                .filter(|a| a.1 == Decision::Approve)
                .count(),
            row.approvals_needed
        ),
    )
    .await;
    tracing::info!(request = %row.id, by = %who.user, %decision, state = %row.state, "access request decided");
    let shown = view(&row, now);
    // Partial approvals (N-of-M still short) are not news for the channel.
    match row.state {
        store::RequestState::Denied => state.notifier.send(NotifyEvent::Denied, &shown),
        store::RequestState::Approved => state.notifier.send(NotifyEvent::Approved, &shown),
        _ => {}
    }
    Ok(Json(shown))
}

/// `POST /v1/requests/{id}/approve`.
pub async fn approve(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<AccessRequestView>, ApiFailure> {
    let comment = clean_text(decision_body(&body)?.comment, "comment")?;
    decide(state, who, id, Decision::Approve, comment).await
}

/// `POST /v1/requests/{id}/deny`: a reason is required.
pub async fn deny(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<AccessRequestView>, ApiFailure> {
    let Some(reason) = clean_text(decision_body(&body)?.comment, "reason")? else {
        return Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "denying needs a reason the requester will read",
        )
        .hint("hoopctl deny ID --reason TEXT"));
    };
    decide(state, who, id, Decision::Deny, Some(reason)).await
}

/// `POST /v1/requests/{id}/cancel`: the requester withdraws a pending request.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<AccessRequestView>, ApiFailure> {
    let row = load(&state, &id).await?;
    if row.subject != who.subject {
        return Err(unknown(&id));
    }
    let now = now_unix();
    let row = match state
        .store
        .transition(
            &id,
            store::RequestState::Pending,
            store::RequestState::Cancelled,
            now,
        )
        .await
        .map_err(|e| ApiFailure::internal("cancel the request", &e))?
    {
        Ok(row) => row,
        Err(DecideError::Closed(s)) => return Err(closed(&id, s)),
        Err(_) => return Err(unknown(&id)),
    };
    audit(
        &state,
        "request.cancel",
        &who,
        &row,
        "cancelled by the requester".into(),
    )
    .await;
    let shown = view(&row, now);
    state.notifier.send(NotifyEvent::Cancelled, &shown);
    Ok(Json(shown))
}

/// `POST /v1/requests/{id}/revoke`: an approver of the request or a policy
/// admin ends a grant; live sessions under it end.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<AccessRequestView>, ApiFailure> {
    let comment = clean_text(decision_body(&body)?.comment, "reason")?;
    let row = load(&state, &id).await?;
    let admin = state.policy.current().policy.is_admin(&subject(&who));
    if !may_decide(&who, &row) && !admin {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!(
                "{} may not revoke this grant: an approver ({}) or a policy admin may",
                who.user,
                approvers_of(&row).describe()
            ),
        ));
    }
    let now = now_unix();
    let row = match state
        .store
        .transition(
            &id,
            store::RequestState::Approved,
            store::RequestState::Revoked,
            now,
        )
        .await
        .map_err(|e| ApiFailure::internal("revoke the grant", &e))?
    {
        Ok(row) => row,
        Err(DecideError::Closed(s)) => {
            return Err(ApiFailure::new(
                StatusCode::CONFLICT,
                ErrorCode::RequestClosed,
                format!("access request {id} is {s}, not an active grant"),
            ));
        }
        Err(_) => return Err(unknown(&id)),
    };
    state.grants.revoke(&id);
    audit(
        &state,
        "request.revoke",
        &who,
        &row,
        format!(
            "revoked by {}: {}",
            who.user,
            comment.as_deref().unwrap_or("-")
        ),
    )
    .await;
    Ok(Json(view(&row, now)))
}

//! Audit endpoints: list and export the hash-chained log (policy admins and
//! members of the `auditors` group), and the public checkpoint keys (anyone:
//! they are what an auditor pins to verify an export offline).
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/v1/audit?since=&user=&connection=&kind=&limit=` | matching records, oldest first |
//! | GET | `/v1/audit/export` | JSON Lines: header with public keys, anchor, records, checkpoints |
//! | GET | `/v1/audit/keys` | the checkpoint signing keys |
//!
//! `since` is an RFC 3339 time (`2025-01-01T00:00:00Z`) or a duration back
//! from now (`2h`, `7d`); `kind` matches the kind or a kind starting with it
//! and a dot (`statement` matches `statement.allowed`). Every export is
//! itself an audit record (`audit.export`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Query as QueryParams, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use futures::StreamExt as _;
use hoop_shared::api::ErrorCode;
use hoop_shared::audit::{AuditKeys, AuditList, ExportLine};

use super::recordings::AUDITORS_GROUP;
use super::{ApiFailure, Caller};
use crate::app::{AppState, now_unix};
use crate::audit::{Query, ms};
use crate::auth::Identity;
use crate::store::Event;

/// Records per list answer by default.
const DEFAULT_LIMIT: u32 = 100;
/// Records per list answer at most (export has no limit).
const MAX_LIMIT: u32 = 10_000;

/// Query string of `GET /v1/audit`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    since: Option<String>,
    user: Option<String>,
    connection: Option<String>,
    kind: Option<String>,
    limit: Option<u32>,
}

/// Refuses everyone but policy admins and auditors.
fn require_auditor(state: &AppState, who: &Identity) -> Result<(), ApiFailure> {
    let admin = state
        .policy
        .current()
        .policy
        .is_admin(&crate::policy::subject(who));
    if admin || who.groups.iter().any(|g| g == AUDITORS_GROUP) {
        return Ok(());
    }
    Err(ApiFailure::new(
        StatusCode::FORBIDDEN,
        ErrorCode::Forbidden,
        format!(
            "{} may not read the audit log: policy admins and members of the {AUDITORS_GROUP:?} group may",
            who.user
        ),
    )
    .hint(format!("ask an admin to add you to the {AUDITORS_GROUP:?} group")))
}

/// `since`: RFC 3339, or a duration back from now.
fn parse_since(text: &str) -> Result<i64, ApiFailure> {
    let bad = || {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("since={text:?} is neither an RFC 3339 time nor a duration like 2h or 7d"),
        )
    };
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(ms(t));
    }
    let d: Duration = humantime::parse_duration(text).map_err(|_| bad())?;
    let t = SystemTime::now().checked_sub(d).ok_or_else(bad)?;
    Ok(ms(t))
}

/// `GET /v1/audit`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
    params: Result<QueryParams<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditList>, ApiFailure> {
    require_auditor(&state, &who)?;
    let QueryParams(p) = params.map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            e.body_text(),
        )
    })?;
    let query = Query {
        since_ms: p.since.as_deref().map(parse_since).transpose()?,
        actor: p.user.filter(|s| !s.is_empty()),
        connection: p.connection.filter(|s| !s.is_empty()),
        kind: p.kind.filter(|s| !s.is_empty()),
        session: None,
        limit: p.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    };
    let records = state
        .audit_log
        .query(query)
        .await
        .map_err(|e| ApiFailure::internal("read the audit log", &e))?;
    Ok(Json(AuditList { records }))
}

/// `GET /v1/audit/export`: JSON Lines.
pub async fn export(
    State(state): State<Arc<AppState>>,
    Caller(who): Caller,
) -> Result<impl IntoResponse, ApiFailure> {
    require_auditor(&state, &who)?;
    // The export is itself audited, before it is made (so it is in it).
    state
        .audit(Event {
            at: now_unix(),
            kind: "audit.export".into(),
            user_name: Some(who.user.clone()),
            connection: None,
            session_id: None,
            detail: String::new(),
        })
        .await;
    // Streamed: chunks of records read in one snapshot and sent as they
    // are read; memory does not grow with the log. A failure before the
    // first chunk is an error answer; a later one breaks the body off.
    let mut chunks = state.audit_log.export_stream();
    let first = match chunks.recv().await {
        Some(Ok(first)) => first,
        Some(Err(e)) => return Err(ApiFailure::internal("export the audit log", &e)),
        None => Vec::new(),
    };
    let rest = futures::stream::unfold(chunks, |mut chunks| async move {
        let next = chunks.recv().await?;
        Some((next.map(|c| jsonl(&c)), chunks))
    });
    let body = futures::stream::once(async move { Ok(jsonl(&first)) }).chain(rest);
    Ok((
        [(header::CONTENT_TYPE, "application/jsonl")],
        axum::body::Body::from_stream(body),
    ))
}

/// Export lines as JSON Lines.
fn jsonl(lines: &[ExportLine]) -> bytes::Bytes {
    let mut out = Vec::new();
    for line in lines {
        if serde_json::to_writer(&mut out, line).is_ok() {
            out.push(b'\n');
        }
    }
    out.into()
}

/// `GET /v1/audit/keys`: public, so an auditor can pin the key.
pub async fn keys(State(state): State<Arc<AppState>>) -> Result<Json<AuditKeys>, ApiFailure> {
    let keys = state
        .audit_log
        .keys()
        .await
        .map_err(|e| ApiFailure::internal("read the audit keys", &e))?;
    Ok(Json(AuditKeys {
        current: Some(state.audit_log.public_key().clone()),
        keys,
    }))
}

/// The audit routes (merged into the API router).
pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/v1/audit", axum::routing::get(list))
        .route("/v1/audit/export", axum::routing::get(export))
        .route("/v1/audit/keys", axum::routing::get(keys))
}
